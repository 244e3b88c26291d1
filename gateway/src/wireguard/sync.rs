//! Keeps the endpoint's peers in step with the store: a device notice from this gateway's API
//! at once; a full re-read of the active devices on every `Resynced` notice of the control feed
//! (a device change made through another gateway on the same PostgreSQL arrives as one), and
//! every [`RESYNC_EVERY`] in case a notification was missed. Store reads happen here, never on
//! the packet path.

use std::sync::Arc;
use std::time::Duration;

use sallyport_core::feed::Change;
use sallyport_core::vpn::device::DeviceId;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use super::{DeviceNotice, VpnDevices};
use crate::control::Control;
use crate::store::StoredDevice;

/// How often every active device is re-read.
pub const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// What the packet loop is told.
#[derive(Debug)]
pub enum PeerUpdate {
    /// (Re)build this device's peer.
    Upsert(StoredDevice),
    /// Drop this device's peer (revoked).
    Remove(DeviceId),
    /// These are all the active devices.
    All(Vec<StoredDevice>),
}

/// Starts the sync task.
pub fn spawn(
    control: Arc<Control>,
    devices: &VpnDevices,
    updates: mpsc::Sender<PeerUpdate>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let mut notices = devices.subscribe();
    let mut feed = control.subscribe();
    tokio::spawn(async move {
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        loop {
            let update = tokio::select! {
                _ = shutdown.changed() => return,
                _ = resync.tick() => all(&control).await,
                n = notices.recv() => match n {
                    Ok(DeviceNotice::Revoked(id)) => Some(PeerUpdate::Remove(id)),
                    Ok(DeviceNotice::Upsert(id)) => one(&control, &id).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => all(&control).await,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                n = feed.recv() => match n {
                    Ok(n) if n.change == Change::Resynced => all(&control).await,
                    Ok(_) => None,
                    Err(broadcast::error::RecvError::Lagged(_)) => all(&control).await,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if let Some(u) = update {
                if updates.send(u).await.is_err() {
                    return;
                }
            }
        }
    })
}

async fn all(control: &Control) -> Option<PeerUpdate> {
    match control.store().active_devices().await {
        Ok(d) => Some(PeerUpdate::All(d)),
        Err(e) => {
            tracing::warn!(cause = %e, "cannot read VPN devices; keeping the current peers");
            None
        }
    }
}

async fn one(control: &Control, id: &DeviceId) -> Option<PeerUpdate> {
    match control.store().get_device(id).await {
        Ok(Some(d)) if d.revoked_at.is_none() => Some(PeerUpdate::Upsert(d)),
        Ok(_) => Some(PeerUpdate::Remove(*id)),
        Err(e) => {
            tracing::warn!(cause = %e, device = %id, "cannot read a VPN device");
            None
        }
    }
}
