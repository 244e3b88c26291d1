//! Starting and stopping the endpoint: the UDP socket, the TUN device, NAT, the sync task and
//! the packet task.

use std::net::SocketAddr;
use std::sync::Arc;

use boringtun::noise::rate_limiter::RateLimiter;
use sallyport_core::vpn::denials::DenialSummarizer;
use sallyport_core::vpn::flow::FlowConfig;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::audit::AuditQueue;
use super::driver::Driver;
use super::nat::{Nat, NatError};
use super::path::{Io, PathState};
use super::peers::Peers;
use super::{GatewayKey, VpnDevices, WireguardSettings};
use crate::audit::JournalWriter;
use crate::control::Control;

/// The MTU of the TUN device (WireGuard's usual 1420 on a 1500-byte path).
pub const TUN_MTU: u16 = 1420;
/// How long a denial summary window lasts, and how many kinds it tracks.
const DENIAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
const DENIAL_KEYS: usize = 4096;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The UDP socket.
    #[error("cannot listen on {addr} (UDP) for WireGuard: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TUN device (needs CAP_NET_ADMIN and /dev/net/tun).
    #[error("cannot create the TUN device {name}: {source}")]
    Tun {
        /// Its name.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// NAT.
    #[error(transparent)]
    Nat(#[from] NatError),
}

/// A bound UDP socket, before the rest starts (its address goes into enrollment answers).
#[derive(Debug)]
pub struct BoundEndpoint {
    udp: std::net::UdpSocket,
    addr: SocketAddr,
}

impl BoundEndpoint {
    /// Binds `settings.listen`.
    pub fn bind(settings: &WireguardSettings) -> Result<Self, EndpointError> {
        let bind_err = |source| EndpointError::Bind {
            addr: settings.listen,
            source,
        };
        let udp = std::net::UdpSocket::bind(settings.listen).map_err(bind_err)?;
        udp.set_nonblocking(true).map_err(bind_err)?;
        let addr = udp.local_addr().map_err(bind_err)?;
        Ok(Self { udp, addr })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A running endpoint.
#[derive(Debug)]
pub struct RunningEndpoint {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    nat: Option<Nat>,
}

/// What the endpoint needs.
#[derive(Debug)]
pub struct EndpointParts {
    /// `[wireguard]`.
    pub settings: WireguardSettings,
    /// The policy and its change feed.
    pub control: Arc<Control>,
    /// Devices and their notices.
    pub devices: Arc<VpnDevices>,
    /// The gateway's key.
    pub key: Arc<GatewayKey>,
    /// Where VPN events go.
    pub journal: JournalWriter,
    /// Turns true at shutdown.
    pub shutdown: watch::Receiver<bool>,
}

impl RunningEndpoint {
    /// Creates the TUN device and NAT, and starts the tasks.
    pub fn start(bound: BoundEndpoint, parts: EndpointParts) -> Result<Self, EndpointError> {
        let s = &parts.settings;
        let pool = s.address_pool().map_err(|e| EndpointError::Tun {
            name: s.tun_name.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let tun_err = |source| EndpointError::Tun {
            name: s.tun_name.clone(),
            source,
        };
        let tun = tun_rs::DeviceBuilder::new()
            .name(&s.tun_name)
            .ipv4(pool.gateway_address(), pool.net().prefix_len(), None)
            .mtu(TUN_MTU)
            .build_async()
            .map_err(tun_err)?;
        let udp =
            tokio::net::UdpSocket::from_std(bound.udp).map_err(|source| EndpointError::Bind {
                addr: bound.addr,
                source,
            })?;
        let nat = if s.nat {
            let out_if = s.nat_out_interface.clone().unwrap_or_default();
            Some(Nat::install(
                &s.nat_table,
                &s.tun_name,
                &out_if,
                pool.net(),
            )?)
        } else {
            None
        };
        let public = parts.key.public_x25519();
        let front = Arc::new(RateLimiter::new(public, s.handshakes_per_second));
        // The per-Tunn limiter only checks MACs again: the front one already rate limited.
        let inner = Arc::new(RateLimiter::new(public, u64::MAX / 2));
        let driver = Driver {
            peers: Peers::new(
                Arc::clone(&parts.key),
                Arc::clone(&inner),
                FlowConfig::default(),
            ),
            state: PathState {
                control: Arc::clone(&parts.control),
                filters: Default::default(),
                recheck: Default::default(),
                denials: DenialSummarizer::new(DENIAL_WINDOW, DENIAL_KEYS),
                audit: AuditQueue::new(parts.journal),
                reply: vec![0u8; 2048],
            },
            front,
            inner,
            private: parts.key.private(),
            key: Arc::clone(&parts.key),
        };
        let (tx, rx) = mpsc::channel(64);
        let sync = super::sync::spawn(
            Arc::clone(&parts.control),
            &parts.devices,
            tx,
            parts.shutdown.clone(),
        );
        let feed = parts.control.subscribe();
        let io = Io { udp, tun };
        let run = tokio::spawn(driver.run(io, feed, rx, parts.shutdown));
        tracing::info!(listen = %bound.addr, tun = %s.tun_name, pool = %pool.net(), nat = s.nat, "WireGuard endpoint started");
        Ok(Self {
            addr: bound.addr,
            tasks: vec![sync, run],
            nat,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the tasks (after the shutdown signal) and removes NAT.
    pub async fn stop(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(nat) = self.nat {
            nat.remove();
        }
    }
}
