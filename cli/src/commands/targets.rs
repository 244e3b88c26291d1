//! `target add|list|remove`.

use sallyport_core::api::{CreateTarget, TargetView};
use sallyport_core::model::TargetName;

use super::{read_public_key, Ctx};
use crate::args::TargetCmd;
use crate::error::CliError;
use crate::output::{or_dash, Table};

/// A `target` command with its host key read and checked.
#[derive(Debug)]
pub enum TargetAction {
    /// Add a target.
    Add(CreateTarget),
    /// List targets.
    List,
    /// Remove a target.
    Remove(TargetName),
}

pub(super) fn prepare(cmd: TargetCmd) -> Result<TargetAction, CliError> {
    Ok(match cmd {
        TargetCmd::Add {
            name,
            address,
            host_key,
            host_key_file,
        } => {
            let host_key = match (host_key, host_key_file) {
                (Some(key), _) => Some(key),
                (None, Some(path)) => Some(read_public_key("host key file", &path)?),
                (None, None) => None,
            };
            TargetAction::Add(CreateTarget {
                name,
                address,
                host_key,
            })
        }
        TargetCmd::List => TargetAction::List,
        TargetCmd::Remove { name } => TargetAction::Remove(name),
    })
}

pub(super) async fn run(ctx: &Ctx, action: TargetAction) -> Result<(), CliError> {
    let reply = match action {
        TargetAction::Add(body) => ctx.api.post(&["targets"], Some(&body)).await?,
        TargetAction::List => {
            let reply = ctx.api.get(&["targets"], &[]).await?;
            return ctx.out.list(&reply.url, reply.body, targets_table);
        }
        TargetAction::Remove(name) => ctx.api.delete(&["targets", name.as_str()], &[]).await?,
    };
    ctx.out.one(&reply.url, reply.body, |t: &TargetView| {
        targets_table(std::slice::from_ref(t))
    })
}

/// NAME ADDRESS HOST-KEY ADDED
pub fn targets_table(targets: &[TargetView]) -> Table {
    let mut t = Table::new(&["NAME", "ADDRESS", "HOST-KEY", "ADDED"]);
    for target in targets {
        t.row([
            target.id.to_string(),
            target.address.to_string(),
            or_dash(target.host_key_fingerprint.as_ref()),
            target.created_at.to_string(),
        ]);
    }
    t
}
