//! Device changes as audit events.

use std::net::IpAddr;

use sallyport_core::audit::EventKind;

use crate::store::StoredDevice;

/// `vpn.device.enroll`.
pub fn enrolled(d: &StoredDevice) -> EventKind {
    EventKind::VpnDeviceEnrolled {
        user: d.user.clone(),
        device: d.id,
        name: d.name.to_string(),
        address: IpAddr::V4(d.address),
        public_key: d.public_key.to_string(),
    }
}

/// `vpn.device.refresh`.
pub fn refreshed(d: &StoredDevice) -> EventKind {
    EventKind::VpnDeviceRefreshed {
        user: d.user.clone(),
        device: d.id,
        name: d.name.to_string(),
        psk_expires_at: d.psk_expires_at,
    }
}

/// `vpn.device.revoke`.
pub fn revoked(d: &StoredDevice) -> EventKind {
    EventKind::VpnDeviceRevoked {
        user: d.user.clone(),
        device: d.id,
        name: d.name.to_string(),
    }
}
