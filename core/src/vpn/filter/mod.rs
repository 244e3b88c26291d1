//! One user's grants, compiled for the packet path.
//!
//! [`UserFilter::compile`] takes the user's grants in force at `now` (their own and their
//! groups') that allow `tcp`, `udp` or `icmp` on a CIDR or on a target whose host is an IP
//! literal, and flattens them into a short array of rules: address and mask as integers, the
//! protocol bit set, the port ranges, sorted by expiry (latest first, so the first rule that
//! matches is the one [`decide`](crate::policy::decide) would pick). A user holds a handful of
//! grants, so a linear scan over a few cache lines beats a prefix trie here; the benchmark
//! (`core/benches/vpn_filter.rs`) measures it with 10,000 users × 10 grants loaded.
//!
//! The filter is immutable. It is valid until [`UserFilter::valid_until`] (the next grant start
//! or expiry) or until the control plane changes; then the driver compiles a new one and swaps
//! it in, and calls [`crate::vpn::flow::FlowTable::retain_allowed`].
//!
//! Addresses are judged as they appear in the packet: an IPv4-mapped IPv6 destination is an
//! IPv6 address (IPv4 grants do not reach it).

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::packet::Transport;
use crate::model::{GrantId, PortRange, Protocol, ProtocolSet, UserName};
use crate::policy::{touches_special, Snapshot, VpnObject};
use crate::time::Timestamp;

/// Why a packet was dropped. [`FlowDenial::code`] is the `reason` of `vpn.flow.denied`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowDenial {
    /// The user is not known (deleted, or never was).
    UnknownUser,
    /// The user is disabled.
    UserDisabled,
    /// No grant reaches the destination address.
    NoGrantForDestination,
    /// A grant reaches the destination only through a broad CIDR, and the destination is a
    /// special address (loopback, link local, metadata service, multicast, broadcast).
    SpecialDestination,
    /// Grants reach the destination, but none for this protocol.
    ProtocolNotGranted,
    /// Grants reach the destination with this protocol, but none for this port.
    PortNotGranted,
    /// A non-first fragment that belongs to no flow the client started.
    FragmentWithoutFlow,
    /// The device's flow table is full.
    FlowTableFull,
    /// The packet's inner source address is not the device's address.
    SpoofedSource,
}

impl FlowDenial {
    /// A stable code for audit records.
    pub fn code(self) -> &'static str {
        match self {
            FlowDenial::UnknownUser => "unknown-user",
            FlowDenial::UserDisabled => "user-disabled",
            FlowDenial::NoGrantForDestination => "no-grant-for-destination",
            FlowDenial::SpecialDestination => "special-destination",
            FlowDenial::ProtocolNotGranted => "protocol-not-granted",
            FlowDenial::PortNotGranted => "port-not-granted",
            FlowDenial::FragmentWithoutFlow => "fragment-without-flow",
            FlowDenial::FlowTableFull => "flow-table-full",
            FlowDenial::SpoofedSource => "spoofed-source",
        }
    }
}

impl fmt::Display for FlowDenial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlowDenial::UnknownUser => "unknown user",
            FlowDenial::UserDisabled => "user is disabled",
            FlowDenial::NoGrantForDestination => "no grant reaches this destination",
            FlowDenial::SpecialDestination => "special destination not granted explicitly",
            FlowDenial::ProtocolNotGranted => "no grant allows this protocol here",
            FlowDenial::PortNotGranted => "no grant allows this port here",
            FlowDenial::FragmentWithoutFlow => "fragment of no known flow",
            FlowDenial::FlowTableFull => "flow table full",
            FlowDenial::SpoofedSource => "inner source address is not the device's",
        })
    }
}

/// One grant as a rule.
#[derive(Clone, Debug)]
struct Rule {
    /// IPv6 rule (else IPv4).
    v6: bool,
    /// Network bits (IPv4 in the low 32 bits).
    network: u128,
    /// Prefix mask in the same layout.
    mask: u128,
    /// A CIDR grant whose network overlaps a special destination range: an address inside
    /// must also pass [`VpnObject::reaches`] (the policy's own rule). False for every other
    /// grant, which then reaches exactly its network.
    special: bool,
    protocols: ProtocolSet,
    /// The first port ranges, inline (most grants name one to three), as `(first, last)`;
    /// unused slots are `(1, 0)`, which holds no port.
    inline_ports: [(u16, u16); INLINE_PORTS],
    /// Any further ranges: `UserFilter::ports[more_ports.0..more_ports.1]`.
    more_ports: (u32, u32),
    id: GrantId,
    object: VpnObject,
    expires_at: Timestamp,
}

impl Rule {
    fn covers_address(&self, v6: bool, bits: u128) -> bool {
        self.v6 == v6 && bits & self.mask == self.network
    }
}

/// A user's VPN grants at one instant, ready for [`UserFilter::check`]. Empty (deny all) for an
/// unknown or disabled user.
#[derive(Clone, Debug)]
pub struct UserFilter {
    user: UserName,
    refusal: Option<FlowDenial>,
    rules: Box<[Rule]>,
    /// The port ranges of all rules, end to end.
    ports: Box<[PortRange]>,
    compiled_at: Timestamp,
    valid_until: Option<Timestamp>,
    allowed_ips: Vec<IpNet>,
}

/// Port ranges kept inside a rule; more spill to `UserFilter::ports`.
const INLINE_PORTS: usize = 3;

const VPN_PROTOCOLS: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Icmp];

fn address_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

fn prefix_mask(v6: bool, len: u8) -> u128 {
    let bits: u32 = if v6 { 128 } else { 32 };
    let all = u128::MAX >> (128 - bits);
    let host = all.checked_shr(u32::from(len)).unwrap_or(0);
    all & !host
}

impl UserFilter {
    /// Compiles `user`'s filter from `snapshot` at `now`.
    pub fn compile(snapshot: &Snapshot, user: &UserName, now: Timestamp) -> Self {
        let mut filter = Self::deny_all(user.clone(), FlowDenial::UnknownUser, now);
        let Some((active, grants)) = snapshot.vpn_grants(user) else {
            return filter;
        };
        if !active {
            filter.refusal = Some(FlowDenial::UserDisabled);
            return filter;
        }
        filter.refusal = None;
        let relevant = grants.into_iter().filter(|g| {
            VPN_PROTOCOLS.iter().any(|p| g.protocols.contains(*p))
                && g.object != VpnObject::Unresolved
                && g.not_before < g.expires_at
        });
        let mut rules = Vec::new();
        let mut ports: Vec<PortRange> = Vec::new();
        for g in relevant {
            for t in [g.not_before, g.expires_at] {
                if t > now && filter.valid_until.is_none_or(|v| t < v) {
                    filter.valid_until = Some(t);
                }
            }
            if now < g.not_before || now >= g.expires_at {
                continue;
            }
            let net = match g.object {
                VpnObject::Cidr(net) => net,
                VpnObject::Address(ip) => IpNet::from(ip),
                VpnObject::Unresolved => continue,
            };
            let (v6, network) = address_bits(net.network());
            let ranges = g.ports.ranges();
            let mut inline_ports = [(1, 0); INLINE_PORTS];
            for (slot, r) in inline_ports.iter_mut().zip(ranges) {
                *slot = (r.first(), r.last());
            }
            let first = u32::try_from(ports.len()).unwrap_or(u32::MAX);
            ports.extend_from_slice(ranges.get(INLINE_PORTS..).unwrap_or_default());
            let last = u32::try_from(ports.len()).unwrap_or(u32::MAX);
            rules.push(Rule {
                v6,
                network,
                mask: prefix_mask(v6, net.prefix_len()),
                special: matches!(g.object, VpnObject::Cidr(_)) && touches_special(&net),
                protocols: g.protocols,
                inline_ports,
                more_ports: (first, last),
                id: g.id,
                object: g.object,
                expires_at: g.expires_at,
            });
            filter.allowed_ips.push(net);
        }
        rules.sort_by(|a, b| b.expires_at.cmp(&a.expires_at).then(a.id.cmp(&b.id)));
        filter.rules = rules.into_boxed_slice();
        filter.ports = ports.into_boxed_slice();
        filter.allowed_ips = IpNet::aggregate(&filter.allowed_ips);
        filter
    }

    /// A filter that refuses everything with `reason` (for a revoked device, or before the
    /// first snapshot).
    pub fn deny_all(user: UserName, reason: FlowDenial, now: Timestamp) -> Self {
        Self {
            user,
            refusal: Some(reason),
            rules: Box::new([]),
            ports: Box::new([]),
            compiled_at: now,
            valid_until: None,
            allowed_ips: Vec::new(),
        }
    }

    /// The user.
    pub fn user(&self) -> &UserName {
        &self.user
    }

    /// When it was compiled.
    pub fn compiled_at(&self) -> Timestamp {
        self.compiled_at
    }

    /// When it must be compiled again: the next start or expiry of one of the user's VPN
    /// grants. `None` if nothing is scheduled.
    pub fn valid_until(&self) -> Option<Timestamp> {
        self.valid_until
    }

    /// Whether the filter still describes the grants at `now` (no scheduled change passed).
    pub fn is_current(&self, now: Timestamp) -> bool {
        self.valid_until.is_none_or(|t| now < t)
    }

    /// The networks the user may reach, merged into the fewest prefixes (for the device's
    /// WireGuard `AllowedIPs`). Broad grants still exclude special destinations at
    /// [`UserFilter::check`].
    pub fn allowed_ips(&self) -> Vec<IpNet> {
        self.allowed_ips.clone()
    }

    /// How many grants the filter holds.
    pub fn grant_count(&self) -> usize {
        self.rules.len()
    }

    /// Whether a packet to `dst` with `transport` may go out, and under which grant. A non-first
    /// fragment is allowed here when some grant reaches `dst` with its protocol on any port;
    /// the flow table then admits it only for an existing flow.
    pub fn check(&self, dst: IpAddr, transport: &Transport) -> Result<GrantId, FlowDenial> {
        let port = match transport {
            Transport::Tcp(t) => Some(t.dst_port),
            Transport::Udp(u) => Some(u.dst_port),
            Transport::Icmp(_) | Transport::Fragment { .. } | Transport::Other { .. } => None,
        };
        self.check_parts(dst, transport.protocol(), port)
    }

    /// [`UserFilter::check`] on the parts of a packet: protocol `None` is one no grant allows;
    /// port `None` skips the port check (ICMP, fragments).
    pub fn check_parts(
        &self,
        dst: IpAddr,
        protocol: Option<Protocol>,
        port: Option<u16>,
    ) -> Result<GrantId, FlowDenial> {
        if let Some(refusal) = self.refusal {
            return Err(refusal);
        }
        let (v6, bits) = address_bits(dst);
        if let Some(protocol) = protocol {
            let port = port.filter(|_| protocol.has_ports());
            for r in self.rules.iter() {
                if !r.covers_address(v6, bits) || !r.protocols.contains(protocol) {
                    continue;
                }
                if port.is_some_and(|p| !self.rule_allows_port(r, p)) {
                    continue;
                }
                if r.special && !r.object.reaches(dst) {
                    continue;
                }
                return Ok(r.id);
            }
        }
        Err(self.why_not(dst, v6, bits, protocol))
    }

    fn rule_allows_port(&self, r: &Rule, port: u16) -> bool {
        if r.inline_ports.iter().any(|(a, b)| *a <= port && port <= *b) {
            return true;
        }
        let (first, last) = (r.more_ports.0 as usize, r.more_ports.1 as usize);
        let more = self.ports.get(first..last).unwrap_or_default();
        more.iter().any(|pr| pr.contains(port))
    }

    /// The closest miss, for the denial reason (slow path).
    fn why_not(&self, dst: IpAddr, v6: bool, bits: u128, protocol: Option<Protocol>) -> FlowDenial {
        let mut best = FlowDenial::NoGrantForDestination;
        let rank = |d: FlowDenial| match d {
            FlowDenial::SpecialDestination => 1,
            FlowDenial::ProtocolNotGranted => 2,
            FlowDenial::PortNotGranted => 3,
            _ => 0,
        };
        for r in self.rules.iter().filter(|r| r.covers_address(v6, bits)) {
            let miss = if r.special && !r.object.reaches(dst) {
                FlowDenial::SpecialDestination
            } else if !protocol.is_some_and(|p| r.protocols.contains(p)) {
                FlowDenial::ProtocolNotGranted
            } else {
                FlowDenial::PortNotGranted
            };
            if rank(miss) > rank(best) {
                best = miss;
            }
        }
        best
    }
}
