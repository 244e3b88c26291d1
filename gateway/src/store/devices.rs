//! `vpn_devices`: WireGuard devices enrolled by engineers (migration 0003). No key material is
//! stored: the device's public key, its address, and the epoch and expiry of its preshared key.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use sallyport_core::model::UserName;
use sallyport_core::time::Timestamp;
use sallyport_core::vpn::device::DeviceId;
use sqlx::any::AnyRow;

use super::rows::{int, opt_text, opt_time, parse, text, time};
use super::{Store, StoreError, WriteTx};
use crate::wireguard::{DeviceName, WgPublicKey};

/// An enrolled device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDevice {
    /// Its id.
    pub id: DeviceId,
    /// Owner.
    pub user: UserName,
    /// The owner's name for it.
    pub name: DeviceName,
    /// Its WireGuard public key.
    pub public_key: WgPublicKey,
    /// Its VPN address.
    pub address: Ipv4Addr,
    /// The preshared key's epoch (the key is derived from it).
    pub psk_epoch: u64,
    /// When the preshared key stops working.
    pub psk_expires_at: Timestamp,
    /// When it was enrolled.
    pub created_at: Timestamp,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

const COLUMNS: &str = "id, user_name, name, public_key, address, psk_epoch, psk_expires_at, \
                       created_at, revoked_at, revoked_by";

impl Store {
    /// Devices of one user, or of everyone, revoked ones included.
    pub async fn list_devices(
        &self,
        user: Option<&UserName>,
    ) -> Result<Vec<StoredDevice>, StoreError> {
        let rows = match user {
            Some(u) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM vpn_devices WHERE user_name = $1 ORDER BY created_at, id"
                ))
                .bind(u.to_string())
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM vpn_devices ORDER BY user_name, created_at, id"
                ))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(device_from_row).collect()
    }

    /// Devices that are not revoked (the endpoint's peers).
    pub async fn active_devices(&self) -> Result<Vec<StoredDevice>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM vpn_devices WHERE revoked_at IS NULL ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    /// One device.
    pub async fn get_device(&self, id: &DeviceId) -> Result<Option<StoredDevice>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM vpn_devices WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(device_from_row).transpose()
    }
}

impl WriteTx {
    /// Every address handed out so far (revoked devices included: addresses are not reused).
    pub async fn device_addresses(&mut self) -> Result<BTreeSet<Ipv4Addr>, StoreError> {
        let rows = sqlx::query("SELECT address FROM vpn_devices")
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| parse(|| "vpn_devices.address".into(), &text(r, "address")?))
            .collect()
    }

    /// Enrolls a device; refuses a public key or address in use.
    pub async fn insert_device(&mut self, d: &StoredDevice) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO vpn_devices (id, user_name, name, public_key, address, psk_epoch, \
             psk_expires_at, created_at, revoked_at, revoked_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)",
        )
        .bind(d.id.to_string())
        .bind(d.user.to_string())
        .bind(d.name.to_string())
        .bind(d.public_key.to_string())
        .bind(d.address.to_string())
        .bind(i64::try_from(d.psk_epoch).unwrap_or(i64::MAX))
        .bind(d.psk_expires_at.as_millis())
        .bind(d.created_at.as_millis())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| StoreError::conflict_or(e, "device public key", &d.public_key.to_string()))?;
        Ok(())
    }

    /// One device, inside the transaction.
    pub async fn get_device(&mut self, id: &DeviceId) -> Result<StoredDevice, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM vpn_devices WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "device",
                name: id.to_string(),
            })?;
        device_from_row(&row)
    }

    /// Moves a device to a new PSK epoch.
    pub async fn set_device_psk(
        &mut self,
        id: &DeviceId,
        epoch: u64,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE vpn_devices SET psk_epoch = $1, psk_expires_at = $2 WHERE id = $3")
            .bind(i64::try_from(epoch).unwrap_or(i64::MAX))
            .bind(expires_at.as_millis())
            .bind(id.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Marks a device revoked.
    pub async fn revoke_device(
        &mut self,
        id: &DeviceId,
        at: Timestamp,
        by: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE vpn_devices SET revoked_at = $1, revoked_by = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(at.as_millis())
        .bind(by.to_owned())
        .bind(id.to_string())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

fn device_from_row(row: &AnyRow) -> Result<StoredDevice, StoreError> {
    let id_text = text(row, "id")?;
    let what = |col: &str| format!("vpn_devices.{col} of {id_text}");
    Ok(StoredDevice {
        id: parse(|| what("id"), &id_text)?,
        user: parse(|| what("user_name"), &text(row, "user_name")?)?,
        name: parse(|| what("name"), &text(row, "name")?)?,
        public_key: parse(|| what("public_key"), &text(row, "public_key")?)?,
        address: parse(|| what("address"), &text(row, "address")?)?,
        psk_epoch: u64::try_from(int(row, "psk_epoch")?).map_err(|e| StoreError::Corrupt {
            what: what("psk_epoch"),
            why: e.to_string(),
        })?,
        psk_expires_at: time(row, "psk_expires_at")?,
        created_at: time(row, "created_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
        revoked_by: opt_text(row, "revoked_by")?,
    })
}
