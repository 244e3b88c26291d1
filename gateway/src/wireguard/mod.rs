//! The WireGuard endpoint: one boringtun `Tunn` per enrolled device, driven by sallyport's own
//! UDP and TUN loops, with every packet checked against its user's compiled grants
//! (`sallyport_core::vpn`). Devices are enrolled through the API (`POST /v1/vpn/devices`).
//!
//! # Layout
//!
//! - `settings`: [`WireguardSettings`] (`[wireguard]` in the configuration file).
//! - `keys`: [`WgPublicKey`], the gateway's [`GatewayKey`], preshared keys derived per device
//!   and epoch (never stored).
//! - `pool`: [`AddressPool`], stable VPN addresses for devices.
//! - `device`: [`DeviceName`].
//! - `service`: [`VpnDevices`]: enroll, refresh, revoke (store + journal), and the notices the
//!   endpoint follows. `events`: device changes as audit events.
//! - `endpoint`: [`BoundEndpoint`] / [`RunningEndpoint`]: UDP socket, TUN device, NAT, tasks.
//! - `driver`: the packet task (one owner of all peer state). `path`: outbound and inbound
//!   packets through the core's filter and flow table. `peers`: `Tunn`s and their lookups.
//! - `sync`: keeps peers in step with the store. `audit`: VPN events to the journal writer,
//!   never blocking the packet path. `nat`: the nftables table for source NAT.

mod audit;
mod device;
mod driver;
mod endpoint;
mod events;
mod keys;
mod nat;
mod path;
mod peers;
mod pool;
mod service;
mod settings;
mod sync;

pub use device::{DeviceName, DeviceNameError};
pub use endpoint::{BoundEndpoint, EndpointError, EndpointParts, RunningEndpoint, TUN_MTU};
pub use keys::{secret_base64, GatewayKey, WgKeyError, WgPublicKey};
pub use nat::NatError;
pub use pool::{AddressPool, PoolError, DEFAULT_POOL};
pub use service::{
    DeviceError, DeviceNotice, Enrolled, VpnDevices, VpnEndpointInfo, MAX_DEVICES_PER_USER,
};
pub use settings::{WireguardSettings, DEFAULT_WG_LISTEN};

use std::sync::Arc;

use crate::control::Control;

/// The UDP socket, bound, with the settings to start the endpoint with.
pub type Prepared = Option<(BoundEndpoint, WireguardSettings)>;

/// Before the listeners start: the device service (for the API) and, when `[wireguard]` is
/// set, the bound UDP socket with its settings, to be started with [`RunningEndpoint::start`].
pub fn prepare(
    control: &Arc<Control>,
    key: &Arc<GatewayKey>,
    settings: Option<&WireguardSettings>,
) -> Result<(Arc<VpnDevices>, Prepared), EndpointError> {
    let Some(s) = settings else {
        let devices = VpnDevices::new(Arc::clone(control), Arc::clone(key), None);
        return Ok((Arc::new(devices), None));
    };
    let bound = BoundEndpoint::bind(s)?;
    let pool = s.address_pool().map_err(|e| EndpointError::Tun {
        name: s.tun_name.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let info = VpnEndpointInfo {
        endpoint: s.client_endpoint(bound.addr()),
        pool,
        psk_lifetime: s.psk_lifetime,
    };
    let devices = VpnDevices::new(Arc::clone(control), Arc::clone(key), Some(info));
    Ok((Arc::new(devices), Some((bound, s.clone()))))
}
