//! The endpoint's peers: one boringtun `Tunn` per enrolled device whose preshared key is
//! valid, found by static public key (handshake initiation), by receiver index (every other
//! message), or by VPN address (packets coming back from the TUN device).
//!
//! Dropping a [`Peer`] (device revoked, preshared key expired or renewed, shutdown) drops its
//! `Tunn` at once, in the packet task. boringtun 0.7 zeroizes only its `x25519::StaticSecret`
//! copy of the gateway key; the preshared key, the handshake's chaining keys and hashes (plain
//! arrays) and the session keys (`ring` `LessSafeKey`s) sit inline in the `Tunn`, one heap block
//! here (`Box<Tunn>`), which sallyportd's global allocator (`zeroizing_alloc::ZeroAlloc`,
//! gateway/src/main.rs) overwrites with zeros when it is freed. Tested by
//! `gateway/tests/zeroize_on_free.rs` (and its control, `zeroize_on_free_control.rs`). Stack
//! copies boringtun makes while it works are not covered. See docs/vpn.md, "Keys".

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::Tunn;
use sallyport_core::time::Timestamp;
use sallyport_core::vpn::device::DeviceId;
use sallyport_core::vpn::flow::{FlowConfig, FlowTable};

use super::keys::{GatewayKey, WgPublicKey};
use crate::store::StoredDevice;

/// Receiver indexes are 24 bits (boringtun shifts them left by 8 for its sessions).
const INDEX_SPACE: u32 = 1 << 24;

/// One device's tunnel and flows.
pub struct Peer {
    /// The device as the store has it.
    pub device: StoredDevice,
    /// Its receiver index.
    pub index: u32,
    /// The WireGuard state machine, boxed: its keys live in this one heap block, which the
    /// zeroizing allocator overwrites when the peer is dropped.
    pub tunn: Box<Tunn>,
    /// Where its last authenticated datagram came from.
    pub endpoint: Option<SocketAddr>,
    /// Its flows.
    pub flows: FlowTable,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the Tunn: boringtun's handshake Debug prints the preshared key.
        f.debug_struct("Peer")
            .field("device", &self.device.id)
            .field("index", &self.index)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Every peer, with the lookups the packet path needs.
pub struct Peers {
    by_index: HashMap<u32, Peer>,
    by_key: HashMap<WgPublicKey, u32>,
    by_address: HashMap<Ipv4Addr, u32>,
    by_device: HashMap<DeviceId, u32>,
    next_index: u32,
    key: Arc<GatewayKey>,
    limiter: Arc<RateLimiter>,
    flow_config: FlowConfig,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("count", &self.by_index.len())
            .finish_non_exhaustive()
    }
}

impl Peers {
    /// No peers yet. `limiter` is shared by every `Tunn` (handshake MACs and cookies).
    pub fn new(key: Arc<GatewayKey>, limiter: Arc<RateLimiter>, flow_config: FlowConfig) -> Self {
        Self {
            by_index: HashMap::new(),
            by_key: HashMap::new(),
            by_address: HashMap::new(),
            by_device: HashMap::new(),
            next_index: 1,
            key,
            limiter,
            flow_config,
        }
    }

    /// Adds `device`, replacing (and returning) a peer of the same device, key or address.
    /// A device whose preshared key has expired is not added.
    pub fn upsert(&mut self, device: StoredDevice, now: Timestamp) -> Vec<Peer> {
        let mut removed = Vec::new();
        if let Some(p) = self.remove(&device.id) {
            removed.push(p);
        }
        let clash = [
            self.by_key.get(&device.public_key).copied(),
            self.by_address.get(&device.address).copied(),
        ];
        for index in clash.into_iter().flatten() {
            if let Some(p) = self.remove_index(index) {
                removed.push(p);
            }
        }
        if device.revoked_at.is_some() || device.psk_expires_at <= now {
            return removed;
        }
        let Some(index) = self.free_index() else {
            tracing::error!(device = %device.id, "no free WireGuard receiver index");
            return removed;
        };
        let psk = self.key.psk(&device.id, device.psk_epoch);
        let tunn = Tunn::new(
            self.key.private(),
            device.public_key.to_x25519(),
            Some(*psk.expose_secret()),
            None,
            index,
            Some(Arc::clone(&self.limiter)),
        );
        self.by_key.insert(device.public_key, index);
        self.by_address.insert(device.address, index);
        self.by_device.insert(device.id, index);
        self.by_index.insert(
            index,
            Peer {
                device,
                index,
                tunn: Box::new(tunn),
                endpoint: None,
                flows: FlowTable::new(self.flow_config),
            },
        );
        removed
    }

    /// Removes a device's peer.
    pub fn remove(&mut self, device: &DeviceId) -> Option<Peer> {
        let index = *self.by_device.get(device)?;
        self.remove_index(index)
    }

    fn remove_index(&mut self, index: u32) -> Option<Peer> {
        let peer = self.by_index.remove(&index)?;
        self.by_key.remove(&peer.device.public_key);
        self.by_address.remove(&peer.device.address);
        self.by_device.remove(&peer.device.id);
        Some(peer)
    }

    fn free_index(&mut self) -> Option<u32> {
        for _ in 0..INDEX_SPACE {
            let candidate = self.next_index;
            self.next_index = (self.next_index + 1) % INDEX_SPACE;
            if candidate != 0 && !self.by_index.contains_key(&candidate) {
                return Some(candidate);
            }
        }
        None
    }

    /// The peer with receiver index `index` (from a message's receiver field, shifted back).
    pub fn by_index(&mut self, index: u32) -> Option<&mut Peer> {
        self.by_index.get_mut(&index)
    }

    /// The peer of a static public key.
    pub fn by_key(&mut self, key: &WgPublicKey) -> Option<&mut Peer> {
        let index = *self.by_key.get(key)?;
        self.by_index.get_mut(&index)
    }

    /// The peer of a VPN address.
    pub fn by_address(&mut self, addr: Ipv4Addr) -> Option<&mut Peer> {
        let index = *self.by_address.get(&addr)?;
        self.by_index.get_mut(&index)
    }

    /// Every peer.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Peer> {
        self.by_index.values_mut()
    }

    /// The devices present, with their PSK epochs (for the periodic resync).
    pub fn epochs(&self) -> HashMap<DeviceId, u64> {
        self.by_index
            .values()
            .map(|p| (p.device.id, p.device.psk_epoch))
            .collect()
    }

    /// Removes every peer whose preshared key has expired.
    pub fn remove_expired(&mut self, now: Timestamp) -> Vec<Peer> {
        let expired: Vec<u32> = self
            .by_index
            .values()
            .filter(|p| p.device.psk_expires_at <= now)
            .map(|p| p.index)
            .collect();
        expired
            .into_iter()
            .filter_map(|i| self.remove_index(i))
            .collect()
    }

    /// Removes every peer (shutdown).
    pub fn drain(&mut self) -> Vec<Peer> {
        let all: Vec<u32> = self.by_index.keys().copied().collect();
        all.into_iter()
            .filter_map(|i| self.remove_index(i))
            .collect()
    }
}
