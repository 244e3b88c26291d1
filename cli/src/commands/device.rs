//! `device list` and `device revoke ID`.

use serde::Deserialize;

use super::Ctx;
use crate::error::CliError;
use crate::output::{or_dash, Table};

/// A device as the gateway shows it.
#[derive(Debug, Deserialize)]
pub struct DeviceView {
    /// Its id.
    pub id: String,
    /// Owner.
    pub user: String,
    /// Name.
    pub name: String,
    /// VPN address.
    pub address: String,
    /// PSK expiry.
    pub psk_expires_at: String,
    /// Revoked.
    pub revoked_at: Option<String>,
}

pub(super) async fn list(ctx: &Ctx, user: Option<String>) -> Result<(), CliError> {
    let query: Vec<(&str, String)> = user.into_iter().map(|u| ("user", u)).collect();
    let reply = ctx.api.get(&["devices"], &query).await?;
    ctx.out.list(&reply.url, reply.body, table)
}

pub(super) async fn revoke(ctx: &Ctx, id: String) -> Result<(), CliError> {
    let reply = ctx
        .api
        .post::<()>(&["devices", &id, "revoke"], None)
        .await?;
    ctx.out.one(&reply.url, reply.body, |d: &DeviceView| {
        table(std::slice::from_ref(d))
    })
}

/// ID USER NAME ADDRESS PSK-EXPIRES REVOKED
pub fn table(devices: &[DeviceView]) -> Table {
    let mut t = Table::new(&["ID", "USER", "NAME", "ADDRESS", "PSK-EXPIRES", "REVOKED"]);
    for d in devices {
        t.row([
            d.id.clone(),
            d.user.clone(),
            d.name.clone(),
            d.address.clone(),
            d.psk_expires_at.clone(),
            or_dash(d.revoked_at.as_ref()),
        ]);
    }
    t
}
