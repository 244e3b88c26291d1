//! The packet path around the I/O-free core (`sallyport_core::vpn`): decapsulated packets
//! from a device out to the TUN device, and packets from the TUN device back to a device.
//!
//! ```text
//!  device ─▶ inner source == device address? ─▶ parse ─▶ user's filter (every packet)
//!        ─▶ flow table ─▶ TUN          denied: reject reply into the tunnel + vpn.flow.denied
//!  TUN ─▶ parse ─▶ device by destination ─▶ flow table: return traffic only ─▶ encapsulate
//! ```

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use boringtun::noise::TunnResult;
use sallyport_core::model::UserName;
use sallyport_core::time::Timestamp;
use sallyport_core::vpn::denials::{DenialSummarizer, DeniedPacket};
use sallyport_core::vpn::filter::{FlowDenial, UserFilter};
use sallyport_core::vpn::flow::{EndedFlow, FlowVerdict};
use sallyport_core::vpn::packet::{self, PacketInfo};
use sallyport_core::vpn::reject;

use super::audit::AuditQueue;
use super::peers::Peer;
use crate::control::Control;

/// The sockets the path writes to.
pub struct Io {
    /// The WireGuard UDP socket.
    pub udp: tokio::net::UdpSocket,
    /// The TUN device.
    pub tun: tun_rs::AsyncDevice,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io").finish_non_exhaustive()
    }
}

/// The path's state apart from the peers.
#[derive(Debug)]
pub struct PathState {
    /// The policy, for compiling filters.
    pub control: Arc<Control>,
    /// Each user's compiled filter.
    pub filters: HashMap<UserName, UserFilter>,
    /// Users whose filter was recompiled on the packet path: their flows are re-checked on the
    /// next tick.
    pub recheck: HashSet<UserName>,
    /// `vpn.flow.denied` summaries.
    pub denials: DenialSummarizer,
    /// Events on their way to the journal.
    pub audit: AuditQueue,
    /// Scratch buffer for reject replies.
    pub reply: Vec<u8>,
}

impl PathState {
    /// The user's current filter, compiled if missing or stale.
    pub fn filter(&mut self, user: &UserName, now: Timestamp) -> &UserFilter {
        let fresh = self.filters.get(user).is_some_and(|f| f.is_current(now));
        if !fresh {
            let stale = self.filters.contains_key(user);
            let f = UserFilter::compile(&self.control.snapshot(), user, now);
            if stale {
                self.recheck.insert(user.clone());
            }
            self.filters.insert(user.clone(), f);
        }
        // Inserted just above when missing.
        self.filters
            .entry(user.clone())
            .or_insert_with(|| UserFilter::compile(&self.control.snapshot(), user, now))
    }

    /// Journals ended flows of `peer`.
    pub fn ended(&mut self, peer: &Peer, flows: Vec<EndedFlow>) {
        for f in flows {
            let kind = f.event(peer.device.user.clone(), peer.device.id);
            self.audit
                .push(peer.device.user.as_str(), peer.endpoint, kind);
        }
    }

    fn deny(&mut self, peer: &Peer, info: &PacketInfo, why: FlowDenial, now: Timestamp) {
        let denied = DeniedPacket::new(peer.device.user.clone(), peer.device.id, info, why);
        if let Some(summary) = self.denials.record(denied, now) {
            self.audit
                .push(peer.device.user.as_str(), peer.endpoint, summary.event());
        }
    }
}

/// A decapsulated packet from `peer`, bound for the private subnets.
pub async fn outbound(peer: &mut Peer, pkt: &[u8], state: &mut PathState, io: &Io) {
    let now = Timestamp::now();
    let Ok(info) = packet::parse(pkt) else {
        tracing::trace!(device = %peer.device.id, "unparsable packet from a device dropped");
        return;
    };
    if info.src != IpAddr::V4(peer.device.address) {
        state.deny(peer, &info, FlowDenial::SpoofedSource, now);
        return;
    }
    let verdict = state
        .filter(&peer.device.user, now)
        .check(info.dst, &info.transport);
    let grant = match verdict {
        Ok(grant) => grant,
        Err(why) => {
            state.deny(peer, &info, why, now);
            send_reject(peer, pkt, &info, state, io).await;
            return;
        }
    };
    match peer.flows.outbound(&info, grant, now) {
        FlowVerdict::Started(start) => {
            let kind = start.event(peer.device.user.clone(), peer.device.id);
            state
                .audit
                .push(peer.device.user.as_str(), peer.endpoint, kind);
        }
        FlowVerdict::Existing(_) | FlowVerdict::Untracked => {}
        v @ (FlowVerdict::NoFlow | FlowVerdict::Full) => {
            if let Some(why) = v.denial() {
                state.deny(peer, &info, why, now);
            }
            return;
        }
    }
    let len = info.len.min(pkt.len());
    if let Err(e) = io.tun.send(pkt.get(..len).unwrap_or(pkt)).await {
        tracing::debug!(cause = %e, "TUN write failed");
    }
}

async fn send_reject(
    peer: &mut Peer,
    pkt: &[u8],
    info: &PacketInfo,
    state: &mut PathState,
    io: &Io,
) {
    let Some(reply) = reject::reject(pkt, info) else {
        return;
    };
    let Some(to) = peer.endpoint else {
        return;
    };
    if let TunnResult::WriteToNetwork(out) = peer.tunn.encapsulate(&reply, &mut state.reply) {
        let _ = io.udp.send_to(out, to).await;
    }
}

/// A packet from the TUN device: to a device, if it belongs to a flow that device started.
pub async fn inbound(peer: &mut Peer, pkt: &[u8], info: &PacketInfo, out: &mut [u8], io: &Io) {
    if peer.flows.inbound(info, Timestamp::now()).is_none() {
        return;
    }
    let Some(to) = peer.endpoint else {
        return;
    };
    let len = info.len.min(pkt.len());
    match peer.tunn.encapsulate(pkt.get(..len).unwrap_or(pkt), out) {
        TunnResult::WriteToNetwork(data) => {
            let _ = io.udp.send_to(data, to).await;
        }
        TunnResult::Err(e) => tracing::debug!(error = ?e, "encapsulate failed"),
        _ => {}
    }
}

/// Sends what a `Tunn` asks to send to `to`.
pub async fn send(io: &Io, to: Option<SocketAddr>, data: &[u8]) {
    if let Some(to) = to {
        let _ = io.udp.send_to(data, to).await;
    }
}
