//! The reference: the VPN rules read literally over the store rows.

use super::*;
use crate::model::{GrantObject, Subject};

/// Special ranges (as in the policy's own reference), written out independently.
const SPECIAL: [&str; 10] = [
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "fe80::/10",
    "ff00::/8",
    "fd00:ec2::254/128",
];

/// Prefix containment by bit arithmetic, same family only.
pub(super) fn inside(net: &IpNet, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpNet::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(n.prefix_len()));
            u32::from(a) & mask.unwrap_or(0) == u32::from(n.network())
        }
        (IpNet::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(n.prefix_len()));
            u128::from(a) & mask.unwrap_or(0) == u128::from(n.network())
        }
        _ => false,
    }
}

/// A special address is reached only by a grant lying wholly inside its special range.
fn special_ok(net: &IpNet, ip: IpAddr) -> bool {
    SPECIAL
        .iter()
        .map(|s| s.parse::<IpNet>().unwrap())
        .filter(|sp| inside(sp, ip))
        .all(|sp| inside(&sp, net.network()) && inside(&sp, net.broadcast()))
}

#[derive(Debug)]
pub(super) enum Expected {
    /// Allowed under any of these (all expiring last).
    Allow(Vec<GrantId>),
    /// Denied for this reason.
    Deny(FlowDenial),
}

/// The grants of `user` that the VPN uses at `now`, with the network each reaches and whether
/// it is a CIDR grant.
pub(super) fn vpn_grants<'a>(
    w: &'a World,
    user: &User,
    now: Timestamp,
) -> Vec<(&'a Grant, IpNet, bool)> {
    let vpn = [Protocol::Tcp, Protocol::Udp, Protocol::Icmp];
    w.grants
        .iter()
        .filter(|g| g.revoked.is_none())
        .filter(|g| match &g.subject {
            Subject::User(n) => *n == user.name,
            Subject::Group(group) => user.groups.contains(group),
        })
        .filter(|g| vpn.iter().any(|p| g.protocols.contains(*p)))
        .filter(|g| g.not_before <= now && now < g.expires_at)
        .filter_map(|g| match &g.object {
            GrantObject::Cidr(net) => Some((g, *net, true)),
            GrantObject::Target(t) => {
                let t = w.targets.iter().find(|x| &x.name == t)?;
                t.address.host.ip().map(|ip| (g, IpNet::from(ip), false))
            }
        })
        .collect()
}

pub(super) fn reference(
    w: &World,
    user: &UserName,
    now: Timestamp,
    dst: IpAddr,
    t: &Transport,
) -> Expected {
    let Some(u) = w.users.iter().find(|u| &u.name == user) else {
        return Expected::Deny(FlowDenial::UnknownUser);
    };
    if u.state != UserState::Active {
        return Expected::Deny(FlowDenial::UserDisabled);
    }
    let protocol = match t {
        Transport::Tcp(_) => Some(Protocol::Tcp),
        Transport::Udp(_) => Some(Protocol::Udp),
        Transport::Icmp(_) => Some(Protocol::Icmp),
        Transport::Fragment { protocol: 6 } => Some(Protocol::Tcp),
        Transport::Fragment { protocol: 17 } => Some(Protocol::Udp),
        Transport::Fragment { protocol: 1 | 58 } => Some(Protocol::Icmp),
        _ => None,
    };
    let port = match t {
        Transport::Tcp(x) => Some(x.dst_port),
        Transport::Udp(x) => Some(x.dst_port),
        _ => None,
    };
    let mut hits: Vec<&Grant> = Vec::new();
    let mut miss = (0, FlowDenial::NoGrantForDestination);
    for (g, net, cidr) in vpn_grants(w, u, now) {
        if !inside(&net, dst) {
            continue;
        }
        let reason = if cidr && !special_ok(&net, dst) {
            (1, FlowDenial::SpecialDestination)
        } else if !protocol.is_some_and(|p| g.protocols.contains(p)) {
            (2, FlowDenial::ProtocolNotGranted)
        } else if port.is_some_and(|p| {
            !g.ports
                .ranges()
                .iter()
                .any(|r| r.first() <= p && p <= r.last())
        }) {
            (3, FlowDenial::PortNotGranted)
        } else {
            hits.push(g);
            continue;
        };
        if reason.0 > miss.0 {
            miss = reason;
        }
    }
    match hits.iter().map(|g| g.expires_at).max() {
        Some(latest) => Expected::Allow(
            hits.iter()
                .filter(|g| g.expires_at == latest)
                .map(|g| g.id)
                .collect(),
        ),
        None => Expected::Deny(miss.1),
    }
}

/// The next instant after `now` at which one of `user`'s VPN grants starts or ends.
pub(super) fn next_change(w: &World, user: &UserName, now: Timestamp) -> Option<Timestamp> {
    let u = w.users.iter().find(|u| &u.name == user)?;
    if u.state != UserState::Active {
        return None;
    }
    let vpn = [Protocol::Tcp, Protocol::Udp, Protocol::Icmp];
    w.grants
        .iter()
        .filter(|g| g.revoked.is_none())
        .filter(|g| match &g.subject {
            Subject::User(n) => *n == u.name,
            Subject::Group(group) => u.groups.contains(group),
        })
        .filter(|g| vpn.iter().any(|p| g.protocols.contains(*p)))
        .filter(|g| match &g.object {
            GrantObject::Cidr(_) => true,
            GrantObject::Target(t) => w
                .targets
                .iter()
                .any(|x| &x.name == t && x.address.host.ip().is_some()),
        })
        .flat_map(|g| [g.not_before, g.expires_at])
        .filter(|t| *t > now)
        .min()
}
