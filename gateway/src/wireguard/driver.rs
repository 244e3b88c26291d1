//! The endpoint's one packet task: UDP datagrams, TUN packets, timers, policy changes and
//! device updates, handled in turn by one owner of all peer state (no locks on the path).
//!
//! ```text
//!  select! ─ UDP ─▶ front rate limiter (MAC1, cookies under load) ─▶ peer by key (handshake
//!          │        initiation) or receiver index ─▶ Tunn::decapsulate ─▶ path::outbound
//!          ├ TUN ─▶ parse ─▶ peer by VPN address ─▶ path::inbound
//!          ├ tick (100 ms) ─▶ Tunn::update_timers; each second: rate limiters reset, flows
//!          │                  expire, denial summaries, expired PSKs, stale filters, audit retry
//!          ├ change feed ─▶ recompile filters ─▶ FlowTable::retain_allowed (revocation)
//!          └ device updates (sync task) ─▶ Peers::upsert / remove
//! ```

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519;
use sallyport_core::audit::EventKind;
use sallyport_core::feed::Notice;
use sallyport_core::time::Timestamp;
use sallyport_core::vpn::flow::FlowEndReason;
use sallyport_core::vpn::packet;
use tokio::sync::{broadcast, mpsc, watch};

use super::keys::{GatewayKey, WgPublicKey};
use super::path::{self, Io, PathState};
use super::peers::{Peer, Peers};
use super::sync::PeerUpdate;

/// How often WireGuard timers run.
const TICK: Duration = Duration::from_millis(100);
/// Largest datagram or packet handled.
const BUF: usize = 65_536;
/// Packets taken from a ready socket in one turn before the other branches get theirs.
const BATCH: usize = 64;

/// What the packet task owns.
pub struct Driver {
    pub(super) peers: Peers,
    pub(super) state: PathState,
    pub(super) front: Arc<RateLimiter>,
    pub(super) inner: Arc<RateLimiter>,
    pub(super) private: x25519::StaticSecret,
    pub(super) key: Arc<GatewayKey>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// Runs until `shutdown`, then ends every flow (reason `shutdown`) and drops the peers.
    pub async fn run(
        mut self,
        io: Io,
        mut feed: broadcast::Receiver<Notice>,
        mut updates: mpsc::Receiver<PeerUpdate>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut ubuf = vec![0u8; BUF];
        let mut tbuf = vec![0u8; BUF];
        let mut out = vec![0u8; BUF + 64];
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                r = io.udp.recv_from(&mut ubuf) => match r {
                    Ok((n, from)) => {
                        let datagram = ubuf.get(..n).unwrap_or_default();
                        self.datagram(datagram, from, &mut out, &io).await;
                        // Whatever else is ready, without going back through select!.
                        for _ in 0..BATCH {
                            let Ok((n, from)) = io.udp.try_recv_from(&mut ubuf) else {
                                break;
                            };
                            let datagram = ubuf.get(..n).unwrap_or_default();
                            self.datagram(datagram, from, &mut out, &io).await;
                        }
                    }
                    Err(e) => tracing::debug!(cause = %e, "UDP receive failed"),
                },
                r = io.tun.recv(&mut tbuf) => match r {
                    Ok(n) => {
                        let pkt = tbuf.get(..n).unwrap_or_default();
                        self.tun_packet(pkt, &mut out, &io).await;
                        for _ in 0..BATCH {
                            let Ok(n) = io.tun.try_recv(&mut tbuf) else {
                                break;
                            };
                            let pkt = tbuf.get(..n).unwrap_or_default();
                            self.tun_packet(pkt, &mut out, &io).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!(cause = %e, "TUN read failed; the VPN endpoint stops");
                        break;
                    }
                },
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    self.timers(&mut out, &io).await;
                    if ticks % 10 == 0 {
                        self.second();
                    }
                }
                n = feed.recv() => match n {
                    Ok(notice) => self.policy_changed(notice.change.may_cut_access()),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.policy_changed(true),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                u = updates.recv() => match u {
                    Some(u) => self.update(u),
                    None => break,
                },
                _ = shutdown.changed() => break,
            }
        }
        let now = Timestamp::now();
        for mut peer in self.peers.drain() {
            let ended = peer.flows.end_all(FlowEndReason::Shutdown, now);
            self.state.ended(&peer, ended);
        }
        self.state.audit.drain().await;
    }

    /// One WireGuard datagram from `from`.
    async fn datagram(&mut self, datagram: &[u8], from: SocketAddr, out: &mut [u8], io: &Io) {
        let mut cookie = [0u8; 64];
        let index = match self
            .front
            .verify_packet(Some(from.ip()), datagram, &mut cookie)
        {
            Ok(Packet::HandshakeInit(p)) => {
                let Ok(half) = parse_handshake_anon(&self.private, self.key.public_x25519(), &p)
                else {
                    return;
                };
                let key = WgPublicKey::from_bytes(half.peer_static_public);
                match self.peers.by_key(&key) {
                    Some(peer) => peer.index,
                    None => {
                        tracing::debug!(peer = %from, "handshake from an unknown or inactive device");
                        return;
                    }
                }
            }
            Ok(Packet::HandshakeResponse(p)) => p.receiver_idx >> 8,
            Ok(Packet::PacketCookieReply(p)) => p.receiver_idx >> 8,
            Ok(Packet::PacketData(p)) => p.receiver_idx >> 8,
            Err(TunnResult::WriteToNetwork(reply)) => {
                // Under load: a cookie reply instead of a handshake.
                let _ = io.udp.send_to(reply, from).await;
                return;
            }
            Err(_) => return,
        };
        let is_init = matches!(
            Tunn::parse_incoming_packet(datagram),
            Ok(Packet::HandshakeInit(_))
        );
        let Some(peer) = self.peers.by_index(index) else {
            return;
        };
        match peer.tunn.decapsulate(Some(from.ip()), datagram, out) {
            TunnResult::Done => {}
            TunnResult::Err(e) => {
                tracing::debug!(device = %peer.device.id, error = ?e, "datagram refused");
            }
            TunnResult::WriteToNetwork(reply) => {
                peer.endpoint = Some(from);
                let _ = io.udp.send_to(reply, from).await;
                // Packets queued while there was no session.
                while let TunnResult::WriteToNetwork(more) = peer.tunn.decapsulate(None, &[], out) {
                    let _ = io.udp.send_to(more, from).await;
                }
                if is_init {
                    let kind = EventKind::VpnHandshake {
                        user: peer.device.user.clone(),
                        device: peer.device.id,
                        source: from.to_string(),
                    };
                    self.state
                        .audit
                        .push(peer.device.user.as_str(), Some(from), kind);
                }
            }
            TunnResult::WriteToTunnelV4(pkt, _) | TunnResult::WriteToTunnelV6(pkt, _) => {
                peer.endpoint = Some(from);
                path::outbound(peer, pkt, &mut self.state, io).await;
            }
        }
    }

    /// One packet from the TUN device.
    async fn tun_packet(&mut self, pkt: &[u8], out: &mut [u8], io: &Io) {
        let Ok(info) = packet::parse(pkt) else {
            return;
        };
        let IpAddr::V4(dst) = info.dst else {
            return;
        };
        if let Some(peer) = self.peers.by_address(dst) {
            path::inbound(peer, pkt, &info, out, io).await;
        }
    }

    async fn timers(&mut self, out: &mut [u8], io: &Io) {
        for peer in self.peers.iter_mut() {
            match peer.tunn.update_timers(out) {
                TunnResult::WriteToNetwork(data) => path::send(io, peer.endpoint, data).await,
                TunnResult::Err(e) => {
                    tracing::trace!(device = %peer.device.id, error = ?e, "timer")
                }
                _ => {}
            }
        }
    }

    /// Once a second.
    fn second(&mut self) {
        self.front.reset_count();
        self.inner.reset_count();
        let now = Timestamp::now();
        // Preshared keys that expired: the tunnel stops until `sallyport vpn refresh`.
        for mut peer in self.peers.remove_expired(now) {
            tracing::info!(device = %peer.device.id, "preshared key expired: peer removed");
            let ended = peer.flows.end_all(FlowEndReason::Revoked, now);
            self.state.ended(&peer, ended);
        }
        // Filters whose window passed (a grant started or expired).
        let mut users: HashSet<_> = std::mem::take(&mut self.state.recheck);
        for (user, f) in &self.state.filters {
            if !f.is_current(now) {
                users.insert(user.clone());
            }
        }
        if !users.is_empty() {
            self.recheck(&users, now);
        }
        for peer in self.peers.iter_mut() {
            let ended = peer.flows.expire(now);
            self.state.ended(peer, ended);
        }
        for summary in self.state.denials.flush(now) {
            let d = &summary.denied;
            let actor = d.user.to_string();
            self.state.audit.push(&actor, None, summary.event());
        }
        self.state.audit.retry();
    }

    /// A control-plane change: new filters from the new snapshot. When access may have been
    /// taken away, every flow is re-checked at once.
    fn policy_changed(&mut self, may_cut: bool) {
        let now = Timestamp::now();
        if may_cut {
            let users: HashSet<_> = self.state.filters.keys().cloned().collect();
            self.recheck(&users, now);
        } else {
            self.state.filters.clear();
        }
    }

    /// Recompiles `users`' filters and ends the flows they no longer allow.
    fn recheck(&mut self, users: &HashSet<sallyport_core::model::UserName>, now: Timestamp) {
        let snapshot = self.state.control.snapshot();
        for user in users {
            let f = sallyport_core::vpn::filter::UserFilter::compile(&snapshot, user, now);
            self.state.filters.insert(user.clone(), f);
        }
        for peer in self.peers.iter_mut() {
            if !users.contains(&peer.device.user) {
                continue;
            }
            let Some(f) = self.state.filters.get(&peer.device.user) else {
                continue;
            };
            let ended = peer.flows.retain_allowed(f, now);
            self.state.ended(peer, ended);
        }
    }

    fn update(&mut self, u: PeerUpdate) {
        let now = Timestamp::now();
        let removed: Vec<Peer> = match u {
            PeerUpdate::Upsert(d) => self.peers.upsert(d, now),
            PeerUpdate::Remove(id) => self.peers.remove(&id).into_iter().collect(),
            PeerUpdate::All(devices) => {
                let have = self.peers.epochs();
                let mut removed = Vec::new();
                let wanted: HashSet<_> = devices.iter().map(|d| d.id).collect();
                for id in have.keys().filter(|id| !wanted.contains(id)) {
                    removed.extend(self.peers.remove(id));
                }
                for d in devices {
                    let same = have.get(&d.id) == Some(&d.psk_epoch);
                    if !same && d.psk_expires_at > now {
                        removed.extend(self.peers.upsert(d, now));
                    }
                }
                removed
            }
        };
        for mut peer in removed {
            tracing::info!(device = %peer.device.id, "VPN peer removed");
            let ended = peer.flows.end_all(FlowEndReason::Revoked, now);
            self.state.ended(&peer, ended);
        }
    }
}
