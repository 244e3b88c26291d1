//! Connection tracking for one device: which flows the client started, so that only their
//! return traffic comes back, with per-flow counters for `vpn.flow.start` / `vpn.flow.end`.
//!
//! A flow is keyed by protocol, client address and port, remote address and port; an ICMP echo
//! flow uses the echo identifier as both ports. The table is bounded ([`FlowConfig::max_flows`]):
//! a packet that would start a flow in a full table gets [`FlowVerdict::Full`] and is dropped.
//! Flows end after an idle timeout that depends on the protocol and, for TCP, the state (an
//! established connection lasts longer than one that saw FIN or RST), when the user's new filter
//! no longer allows them ([`FlowTable::retain_allowed`], reason `revoked`), or all at once
//! ([`FlowTable::end_all`]). The table keeps no clock: every call takes `now`.
//!
//! [`FlowTable::outbound`] does not judge a packet: the driver calls
//! [`crate::vpn::filter::UserFilter::check`] on every outbound packet first, so the very next
//! packet after a revocation is dropped, and passes the grant it returned. The table records it.
//!
//! Fragments: a non-first fragment has no ports. Outbound, it is forwarded only when the client
//! has a live flow with the same protocol to the same remote address (and the filter allowed
//! that protocol there); inbound, only when a flow of the client's matches the same way. Its
//! bytes count towards the most recent such flow.

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::filter::{FlowDenial, UserFilter};
use super::packet::{PacketInfo, TcpFlags, Transport};
use crate::model::{GrantId, Protocol};
use crate::time::Timestamp;

/// Bounds and idle timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// The most flows the table holds.
    pub max_flows: usize,
    /// TCP after the client's SYN, until the remote answers.
    pub tcp_opening: Duration,
    /// TCP once established.
    pub tcp_established: Duration,
    /// TCP after a FIN or RST either way.
    pub tcp_closing: Duration,
    /// UDP.
    pub udp: Duration,
    /// ICMP echo.
    pub icmp: Duration,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            max_flows: 4096,
            tcp_opening: Duration::from_secs(60),
            tcp_established: Duration::from_secs(3600),
            tcp_closing: Duration::from_secs(30),
            udp: Duration::from_secs(120),
            icmp: Duration::from_secs(30),
        }
    }
}

/// A flow's identity: who started it, to where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// `tcp`, `udp` or `icmp`.
    pub protocol: Protocol,
    /// The client's (device's) address.
    pub client: IpAddr,
    /// The client's port, or the echo identifier.
    pub client_port: u16,
    /// The remote address.
    pub remote: IpAddr,
    /// The remote port, or the echo identifier.
    pub remote_port: u16,
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sock = |ip: IpAddr, port: u16| match ip {
            IpAddr::V6(_) => format!("[{ip}]:{port}"),
            IpAddr::V4(_) => format!("{ip}:{port}"),
        };
        write!(
            f,
            "{} {} -> {}",
            self.protocol,
            sock(self.client, self.client_port),
            sock(self.remote, self.remote_port)
        )
    }
}

/// A flow's number within its table (for the driver's bookkeeping and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(pub u64);

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow-{}", self.0)
    }
}

/// Packets and bytes (whole IP packets) each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    /// Client → remote packets.
    pub packets_out: u64,
    /// Client → remote bytes.
    pub bytes_out: u64,
    /// Remote → client packets.
    pub packets_in: u64,
    /// Remote → client bytes.
    pub bytes_in: u64,
}

/// A new flow: the fields of `vpn.flow.start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowStart {
    /// Its number.
    pub id: FlowId,
    /// Its 5-tuple.
    pub key: FlowKey,
    /// The grant that allowed its first packet.
    pub grant: GrantId,
    /// When.
    pub at: Timestamp,
}

/// What to do with an outbound packet the filter allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowVerdict {
    /// It starts a flow: forward it and journal `vpn.flow.start`.
    Started(FlowStart),
    /// It belongs to a flow: forward it.
    Existing(FlowId),
    /// Forward it without tracking: an ICMP message other than an echo request, or a TCP RST
    /// of no known flow. Nothing comes back for it.
    Untracked,
    /// A non-first fragment of no live flow: drop it ([`FlowDenial::FragmentWithoutFlow`]).
    NoFlow,
    /// The table is full: drop it ([`FlowDenial::FlowTableFull`]).
    Full,
}

impl FlowVerdict {
    /// Whether the packet goes on.
    pub fn forward(&self) -> bool {
        !matches!(self, FlowVerdict::NoFlow | FlowVerdict::Full)
    }

    /// Why it was dropped, for `vpn.flow.denied`.
    pub fn denial(&self) -> Option<FlowDenial> {
        match self {
            FlowVerdict::NoFlow => Some(FlowDenial::FragmentWithoutFlow),
            FlowVerdict::Full => Some(FlowDenial::FlowTableFull),
            _ => None,
        }
    }
}

/// Why a flow ended: the `reason` of `vpn.flow.end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowEndReason {
    /// TCP: FIN or RST seen, then quiet for the closing timeout.
    Closed,
    /// No packet either way for the idle timeout.
    Idle,
    /// The user's filter no longer allows it (grant revoked or expired, user disabled).
    Revoked,
    /// Ended by the driver: device revoked, tunnel gone, gateway stopping.
    Shutdown,
}

impl FlowEndReason {
    /// The name in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowEndReason::Closed => "closed",
            FlowEndReason::Idle => "idle",
            FlowEndReason::Revoked => "revoked",
            FlowEndReason::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for FlowEndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flow that ended: the fields of `vpn.flow.end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndedFlow {
    /// Its number.
    pub id: FlowId,
    /// Its 5-tuple.
    pub key: FlowKey,
    /// The grant that allowed its first packet.
    pub grant: GrantId,
    /// Packets and bytes each way.
    pub counters: FlowCounters,
    /// Its first packet.
    pub started_at: Timestamp,
    /// Its last packet (idle, closed), or when it was cut (revoked, shutdown).
    pub ended_at: Timestamp,
    /// Why.
    pub reason: FlowEndReason,
}

impl EndedFlow {
    /// How long it lasted, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        u64::try_from(self.started_at.until(self.ended_at).as_millis()).unwrap_or(u64::MAX)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// TCP: the client sent SYN, no answer yet.
    Opening,
    /// TCP established; UDP and ICMP always.
    Open,
    /// TCP: FIN or RST seen.
    Closing,
}

#[derive(Clone, Debug)]
struct Flow {
    id: FlowId,
    grant: GrantId,
    state: State,
    started_at: Timestamp,
    last_seen: Timestamp,
    counters: FlowCounters,
}

/// Protocol, client address, remote address: what a fragment can be matched on.
type Pair = (Protocol, IpAddr, IpAddr);

/// One device's flows.
#[derive(Debug)]
pub struct FlowTable {
    config: FlowConfig,
    flows: HashMap<FlowKey, Flow>,
    /// Live flows per pair, oldest first (for fragments).
    pairs: HashMap<Pair, Vec<FlowKey>>,
    next_id: u64,
}

fn len64(info: &PacketInfo) -> u64 {
    u64::try_from(info.len).unwrap_or(u64::MAX)
}

impl FlowTable {
    /// An empty table.
    pub fn new(config: FlowConfig) -> Self {
        Self {
            config,
            flows: HashMap::new(),
            pairs: HashMap::new(),
            next_id: 1,
        }
    }

    /// The bounds and timeouts.
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// How many flows are live.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is live.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// A live flow's counters.
    pub fn counters(&self, key: &FlowKey) -> Option<FlowCounters> {
        self.flows.get(key).map(|f| f.counters)
    }

    /// Records an outbound packet that `UserFilter::check` allowed under `grant`.
    pub fn outbound(&mut self, info: &PacketInfo, grant: GrantId, now: Timestamp) -> FlowVerdict {
        let (src, dst) = (info.src, info.dst);
        let (key, flags) = match info.transport {
            Transport::Tcp(t) => (
                key(Protocol::Tcp, src, t.src_port, dst, t.dst_port),
                Some(t.flags),
            ),
            Transport::Udp(u) => (key(Protocol::Udp, src, u.src_port, dst, u.dst_port), None),
            Transport::Icmp(i) => match i.echo {
                Some(e) if e.request => (key(Protocol::Icmp, src, e.id, dst, e.id), None),
                _ => return FlowVerdict::Untracked,
            },
            Transport::Fragment { protocol } => {
                return self.fragment(info, protocol, (src, dst), true, now);
            }
            Transport::Other { .. } => return FlowVerdict::Untracked,
        };
        if let Some(flow) = self.flows.get_mut(&key) {
            flow.counters.packets_out += 1;
            flow.counters.bytes_out += len64(info);
            flow.last_seen = now;
            if let Some(flags) = flags {
                tcp_transition(&mut flow.state, flags);
            }
            return FlowVerdict::Existing(flow.id);
        }
        let state = match flags {
            Some(f) if f.has(TcpFlags::RST) => return FlowVerdict::Untracked,
            Some(f) if f.has(TcpFlags::FIN) => State::Closing,
            Some(f) if f.has(TcpFlags::SYN) && !f.has(TcpFlags::ACK) => State::Opening,
            _ => State::Open,
        };
        if self.flows.len() >= self.config.max_flows {
            return FlowVerdict::Full;
        }
        let id = FlowId(self.next_id);
        self.next_id += 1;
        self.flows.insert(
            key,
            Flow {
                id,
                grant,
                state,
                started_at: now,
                last_seen: now,
                counters: FlowCounters {
                    packets_out: 1,
                    bytes_out: len64(info),
                    ..FlowCounters::default()
                },
            },
        );
        self.pairs
            .entry((key.protocol, key.client, key.remote))
            .or_default()
            .push(key);
        FlowVerdict::Started(FlowStart {
            id,
            key,
            grant,
            at: now,
        })
    }

    /// Matches an inbound packet (remote → client) to a flow the client started; `None` means
    /// drop it. ICMP errors match the flow of the packet they quote.
    pub fn inbound(&mut self, info: &PacketInfo, now: Timestamp) -> Option<FlowId> {
        let (client, remote) = (info.dst, info.src);
        let (key, flags) = match info.transport {
            Transport::Tcp(t) => (
                key(Protocol::Tcp, client, t.dst_port, remote, t.src_port),
                Some(t.flags),
            ),
            Transport::Udp(u) => (
                key(Protocol::Udp, client, u.dst_port, remote, u.src_port),
                None,
            ),
            Transport::Icmp(i) => match (i.echo, i.quoted) {
                (Some(e), _) if !e.request => {
                    (key(Protocol::Icmp, client, e.id, remote, e.id), None)
                }
                (None, Some(q)) if q.src == client => {
                    (key(q.protocol, q.src, q.src_port, q.dst, q.dst_port), None)
                }
                _ => return None,
            },
            Transport::Fragment { protocol } => {
                return match self.fragment(info, protocol, (client, remote), false, now) {
                    FlowVerdict::Existing(id) => Some(id),
                    _ => None,
                };
            }
            Transport::Other { .. } => return None,
        };
        let flow = self.flows.get_mut(&key)?;
        flow.counters.packets_in += 1;
        flow.counters.bytes_in += len64(info);
        flow.last_seen = now;
        if let Some(flags) = flags {
            if flow.state == State::Opening && !flags.has(TcpFlags::RST) {
                flow.state = State::Open;
            }
            tcp_transition(&mut flow.state, flags);
        }
        Some(flow.id)
    }

    /// A non-first fragment between `client` and `remote` (outbound or inbound).
    fn fragment(
        &mut self,
        info: &PacketInfo,
        protocol: u8,
        (client, remote): (IpAddr, IpAddr),
        outbound: bool,
        now: Timestamp,
    ) -> FlowVerdict {
        let Some(p) = super::packet::protocol_of(protocol) else {
            return FlowVerdict::NoFlow;
        };
        let last = self
            .pairs
            .get(&(p, client, remote))
            .and_then(|keys| keys.last());
        let Some(flow) = last.and_then(|k| self.flows.get_mut(k)) else {
            return FlowVerdict::NoFlow;
        };
        if outbound {
            flow.counters.packets_out += 1;
            flow.counters.bytes_out += len64(info);
        } else {
            flow.counters.packets_in += 1;
            flow.counters.bytes_in += len64(info);
        }
        flow.last_seen = now;
        FlowVerdict::Existing(flow.id)
    }

    /// Ends the flows `filter` no longer allows (after a filter swap), reason `revoked`.
    pub fn retain_allowed(&mut self, filter: &UserFilter, now: Timestamp) -> Vec<EndedFlow> {
        self.end_where(now, |key, _| {
            let port = match key.protocol {
                Protocol::Icmp => None,
                _ => Some(key.remote_port),
            };
            filter
                .check_parts(key.remote, Some(key.protocol), port)
                .is_err()
                .then_some((FlowEndReason::Revoked, now))
        })
    }

    /// Ends the flows idle past their timeout at `now`.
    pub fn expire(&mut self, now: Timestamp) -> Vec<EndedFlow> {
        let config = self.config;
        self.end_where(now, |key, flow| {
            let timeout = match (key.protocol, flow.state) {
                (Protocol::Tcp, State::Opening) => config.tcp_opening,
                (Protocol::Tcp, State::Closing) => config.tcp_closing,
                (Protocol::Tcp, State::Open) => config.tcp_established,
                (Protocol::Udp, _) => config.udp,
                _ => config.icmp,
            };
            let reason = match flow.state {
                State::Closing => FlowEndReason::Closed,
                _ => FlowEndReason::Idle,
            };
            (flow.last_seen.until(now) >= timeout).then_some((reason, flow.last_seen))
        })
    }

    /// Ends every flow (device revoked, tunnel gone, shutdown).
    pub fn end_all(&mut self, reason: FlowEndReason, now: Timestamp) -> Vec<EndedFlow> {
        self.end_where(now, |_, _| Some((reason, now)))
    }

    /// The earliest instant at which [`FlowTable::expire`] would end a flow.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.flows
            .iter()
            .map(|(k, f)| {
                let timeout = match (k.protocol, f.state) {
                    (Protocol::Tcp, State::Opening) => self.config.tcp_opening,
                    (Protocol::Tcp, State::Closing) => self.config.tcp_closing,
                    (Protocol::Tcp, State::Open) => self.config.tcp_established,
                    (Protocol::Udp, _) => self.config.udp,
                    _ => self.config.icmp,
                };
                f.last_seen.saturating_add(timeout)
            })
            .min()
    }

    fn end_where(
        &mut self,
        _now: Timestamp,
        mut ends: impl FnMut(&FlowKey, &Flow) -> Option<(FlowEndReason, Timestamp)>,
    ) -> Vec<EndedFlow> {
        let mut ended = Vec::new();
        self.flows.retain(|key, flow| match ends(key, flow) {
            Some((reason, at)) => {
                ended.push(EndedFlow {
                    id: flow.id,
                    key: *key,
                    grant: flow.grant,
                    counters: flow.counters,
                    started_at: flow.started_at,
                    ended_at: at.max(flow.started_at),
                    reason,
                });
                false
            }
            None => true,
        });
        let touched: HashSet<Pair> = ended
            .iter()
            .map(|e| (e.key.protocol, e.key.client, e.key.remote))
            .collect();
        for pair in touched {
            if let Some(keys) = self.pairs.get_mut(&pair) {
                keys.retain(|k| self.flows.contains_key(k));
                if keys.is_empty() {
                    self.pairs.remove(&pair);
                }
            }
        }
        ended.sort_by_key(|e| e.id);
        ended
    }
}

fn key(protocol: Protocol, client: IpAddr, cport: u16, remote: IpAddr, rport: u16) -> FlowKey {
    FlowKey {
        protocol,
        client,
        client_port: cport,
        remote,
        remote_port: rport,
    }
}

fn tcp_transition(state: &mut State, flags: TcpFlags) {
    if flags.has(TcpFlags::RST) || flags.has(TcpFlags::FIN) {
        *state = State::Closing;
    }
}
