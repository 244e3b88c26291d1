//! Device enrollment, PSK refresh and revocation: each a store transaction with its journal
//! record, then a notice to the endpoint so that it adds, rebuilds or drops the device's `Tunn`.
//!
//! ```text
//!  POST /v1/vpn/devices ──▶ VpnDevices::enroll ──▶ BEGIN; allocate address; INSERT;
//!                                                   journal vpn.device.enroll; COMMIT
//!                                                ──▶ DeviceNotice::Upsert ──▶ endpoint task
//!  refresh ──▶ new PSK epoch (UPDATE) ──▶ Upsert          revoke ──▶ UPDATE ──▶ Revoked
//! ```
//!
//! Each of these transactions also moves the control version (`announce`): on PostgreSQL the
//! other gateways hear of it at once (LISTEN/NOTIFY, docs/ha.md) and re-read their devices on
//! the `Resynced` notice it becomes. The endpoint also re-reads the active devices every few
//! seconds, in case a notification was missed.

use std::sync::Arc;
use std::time::Duration;

use sallyport_core::audit::{Event, EventKind};
use sallyport_core::model::UserName;
use sallyport_core::secret::Secret;
use sallyport_core::time::Timestamp;
use sallyport_core::vpn::device::DeviceId;
use sallyport_core::vpn::filter::UserFilter;
use tokio::sync::broadcast;

use super::{AddressPool, DeviceName, GatewayKey, WgPublicKey};
use crate::control::{Actor, Control, ControlError};
use crate::secrets::KEY_LEN;
use crate::store::{StoreError, StoredDevice, WriteTx};

/// Most devices one user may enroll (revoked ones do not count).
pub const MAX_DEVICES_PER_USER: usize = 16;

/// What the endpoint is told after a committed change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceNotice {
    /// A device was enrolled or its preshared key changed: (re)build its `Tunn`.
    Upsert(DeviceId),
    /// A device was revoked: drop its `Tunn` and end its flows.
    Revoked(DeviceId),
}

/// What a client needs to configure its tunnel (the answer to enroll and refresh). Holds the
/// preshared key: not `Debug`-printable beyond its fields' own rules, never logged.
#[derive(Debug)]
pub struct Enrolled {
    /// The device.
    pub device: StoredDevice,
    /// The gateway's public key.
    pub gateway_public_key: WgPublicKey,
    /// `Endpoint =`.
    pub endpoint: String,
    /// `AllowedIPs =`: what the user's grants reach now.
    pub allowed_ips: Vec<String>,
    /// The preshared key.
    pub psk: Secret<[u8; KEY_LEN]>,
}

/// The VPN's public side when the endpoint runs.
#[derive(Debug)]
pub struct VpnEndpointInfo {
    /// What clients put in `Endpoint =`.
    pub endpoint: String,
    /// The address pool.
    pub pool: AddressPool,
    /// How long a preshared key lasts.
    pub psk_lifetime: Duration,
}

/// Devices: enroll, refresh, revoke, list. Shared as `Arc<VpnDevices>`.
#[derive(Debug)]
pub struct VpnDevices {
    control: Arc<Control>,
    key: Arc<GatewayKey>,
    info: Option<VpnEndpointInfo>,
    notices: broadcast::Sender<DeviceNotice>,
}

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The WireGuard endpoint is not configured on this gateway.
    #[error("the WireGuard VPN is not enabled on this gateway ([wireguard] in its configuration)")]
    Disabled,
    /// The device belongs to someone else.
    #[error("device {0} is not yours")]
    NotOwner(DeviceId),
    /// The device is revoked.
    #[error("device {0} is revoked")]
    Revoked(DeviceId),
    /// Too many devices.
    #[error("at most {MAX_DEVICES_PER_USER} active devices per user; revoke one first")]
    TooMany,
    /// No address left.
    #[error(transparent)]
    Pool(#[from] super::PoolError),
    /// The control plane or store failed.
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl From<StoreError> for DeviceError {
    fn from(e: StoreError) -> Self {
        DeviceError::Control(ControlError::Store(e))
    }
}

impl VpnDevices {
    /// The device service; `info` is `None` when the endpoint is off.
    pub fn new(control: Arc<Control>, key: Arc<GatewayKey>, info: Option<VpnEndpointInfo>) -> Self {
        let (notices, _) = broadcast::channel(1024);
        Self {
            control,
            key,
            info,
            notices,
        }
    }

    /// Follows committed device changes.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceNotice> {
        self.notices.subscribe()
    }

    /// The gateway's WireGuard key.
    pub fn key(&self) -> &Arc<GatewayKey> {
        &self.key
    }

    /// The store's devices (all, or one user's).
    pub async fn list(&self, user: Option<&UserName>) -> Result<Vec<StoredDevice>, DeviceError> {
        Ok(self.control.store().list_devices(user).await?)
    }

    fn info(&self) -> Result<&VpnEndpointInfo, DeviceError> {
        self.info.as_ref().ok_or(DeviceError::Disabled)
    }

    /// Enrolls `public_key` for `user`.
    pub async fn enroll(
        &self,
        actor: &Actor,
        user: &UserName,
        name: DeviceName,
        public_key: WgPublicKey,
    ) -> Result<Enrolled, DeviceError> {
        let info = self.info()?;
        let now = Timestamp::now();
        let mut tx = self.control.store().write().await?;
        let active = self
            .control
            .store()
            .list_devices(Some(user))
            .await?
            .into_iter()
            .filter(|d| d.revoked_at.is_none())
            .count();
        if active >= MAX_DEVICES_PER_USER {
            return Err(DeviceError::TooMany);
        }
        let used = tx.device_addresses().await?;
        let address = info.pool.allocate(&used)?;
        let device = StoredDevice {
            id: DeviceId::random(),
            user: user.clone(),
            name,
            public_key,
            address,
            psk_epoch: 1,
            psk_expires_at: now.saturating_add(info.psk_lifetime),
            created_at: now,
            revoked_at: None,
            revoked_by: None,
        };
        tx.insert_device(&device).await?;
        tx.journal(&event(actor, now, super::events::enrolled(&device)))
            .await?;
        announce(&mut tx, "device.enroll", &device.id).await?;
        tx.commit().await?;
        let _ = self.notices.send(DeviceNotice::Upsert(device.id));
        Ok(self.answer(device, now))
    }

    /// A new PSK epoch for `id`, by its owner.
    pub async fn refresh(
        &self,
        actor: &Actor,
        owner: &UserName,
        id: &DeviceId,
    ) -> Result<Enrolled, DeviceError> {
        let info = self.info()?;
        let now = Timestamp::now();
        let mut tx = self.control.store().write().await?;
        let mut device = tx.get_device(id).await?;
        if &device.user != owner {
            return Err(DeviceError::NotOwner(*id));
        }
        if device.revoked_at.is_some() {
            return Err(DeviceError::Revoked(*id));
        }
        device.psk_epoch = device.psk_epoch.saturating_add(1);
        device.psk_expires_at = now.saturating_add(info.psk_lifetime);
        tx.set_device_psk(id, device.psk_epoch, device.psk_expires_at)
            .await?;
        tx.journal(&event(actor, now, super::events::refreshed(&device)))
            .await?;
        announce(&mut tx, "device.refresh", &device.id).await?;
        tx.commit().await?;
        let _ = self.notices.send(DeviceNotice::Upsert(device.id));
        Ok(self.answer(device, now))
    }

    /// Revokes `id`. `owner` is `Some(user)` when a non-admin asks: only their own device.
    pub async fn revoke(
        &self,
        actor: &Actor,
        owner: Option<&UserName>,
        id: &DeviceId,
    ) -> Result<StoredDevice, DeviceError> {
        let now = Timestamp::now();
        let mut tx = self.control.store().write().await?;
        let mut device = tx.get_device(id).await?;
        if owner.is_some_and(|o| o != &device.user) {
            return Err(DeviceError::NotOwner(*id));
        }
        if device.revoked_at.is_some() {
            // Nothing changes; nothing to journal.
            return Ok(device);
        }
        tx.revoke_device(id, now, &actor.name).await?;
        tx.journal(&event(actor, now, super::events::revoked(&device)))
            .await?;
        announce(&mut tx, "device.revoke", &device.id).await?;
        tx.commit().await?;
        device.revoked_at = Some(now);
        device.revoked_by = Some(actor.name.clone());
        let _ = self.notices.send(DeviceNotice::Revoked(device.id));
        Ok(device)
    }

    fn answer(&self, device: StoredDevice, now: Timestamp) -> Enrolled {
        let filter = UserFilter::compile(&self.control.snapshot(), &device.user, now);
        let allowed_ips: Vec<String> = filter.allowed_ips().iter().map(|n| n.to_string()).collect();
        let endpoint = self
            .info
            .as_ref()
            .map(|i| i.endpoint.clone())
            .unwrap_or_default();
        Enrolled {
            psk: self.key.psk(&device.id, device.psk_epoch),
            device,
            gateway_public_key: self.key.public(),
            endpoint,
            allowed_ips,
        }
    }
}

fn event(actor: &Actor, now: Timestamp, kind: EventKind) -> Event {
    Event::new(now, actor.name.clone(), kind).with_source(actor.source.map(|s| s.to_string()))
}

/// Moves the control version inside a device change's transaction, so that other gateways on
/// the same PostgreSQL learn of it when it commits. Their propagation task decodes the unknown
/// kind as `Resynced`, on which their endpoints re-read the active devices and recompile filters.
async fn announce(tx: &mut WriteTx, kind: &str, id: &DeviceId) -> Result<(), StoreError> {
    tx.bump_control_version(|v| {
        serde_json::json!({ "v": v, "c": [[kind, id.to_string()]] }).to_string()
    })
    .await
    .map(|_| ())
}
