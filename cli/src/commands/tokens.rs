//! `token issue` and `whoami`.

use sallyport_core::api::{IssueToken, TokenView, WhoAmI};

use super::Ctx;
use crate::args::TokenCmd;
use crate::error::CliError;
use crate::output::{decode, joined, Format, Table};

/// Prints the new token alone in table mode (so it can be captured), the whole view in JSON.
pub(super) async fn issue(ctx: &Ctx, cmd: TokenCmd) -> Result<(), CliError> {
    let TokenCmd::Issue { user, ttl } = cmd;
    let body = IssueToken {
        user,
        ttl_secs: ttl.map(|d| d.as_secs().max(1)),
    };
    let reply = ctx.api.post(&["tokens"], Some(&body)).await?;
    match ctx.out.format() {
        Format::Json => ctx.out.json(&reply.body),
        Format::Table => {
            let view: TokenView = decode(&reply.url, reply.body)?;
            ctx.out.text(&format!("{}\n", view.token))
        }
    }
}

pub(super) async fn whoami(ctx: &Ctx) -> Result<(), CliError> {
    let reply = ctx.api.get(&["whoami"], &[]).await?;
    ctx.out.one(&reply.url, reply.body, whoami_table)
}

/// USER ROLES TOKEN-EXPIRES
pub fn whoami_table(w: &WhoAmI) -> Table {
    let mut t = Table::new(&["USER", "ROLES", "TOKEN-EXPIRES"]);
    t.row([
        w.user.to_string(),
        joined(&w.roles),
        w.token_expires_at.to_string(),
    ]);
    t
}
