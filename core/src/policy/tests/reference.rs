//! The reference: the rules read literally over the store rows.

use super::*;

// ---------------------------------------------------------------------------------------------
// The reference: the rules read literally over the store rows.

pub(super) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

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

/// Ranges a broad CIDR grant must not reach by accident: loopback, link local (and the instance
/// metadata service), unspecified, multicast, broadcast.
pub(super) const SPECIAL: [&str; 10] = [
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

/// Whether a CIDR grant on `net` reaches the canonical address `ip`: inside it, and if `ip` is
/// special, the grant names only special addresses of that range (its first and last address
/// both lie in the range).
pub(super) fn cidr_reaches(net: &IpNet, ip: IpAddr) -> bool {
    let explicit = |sp: &IpNet| inside(sp, net.network()) && inside(sp, net.broadcast());
    let special = SPECIAL.iter().map(|sp| sp.parse::<IpNet>().unwrap());
    inside(net, ip) && special.filter(|sp| inside(sp, ip)).all(|sp| explicit(&sp))
}

#[derive(Debug)]
pub(super) enum Expected {
    /// Allowed under any of `ids`, all expiring at `expires_at`.
    Allow {
        ids: Vec<GrantId>,
        expires_at: Timestamp,
        connect: ConnectTo,
    },
    /// Denied for any one of these reasons.
    Deny(Vec<Denial>),
}

pub(super) fn reference(w: &World, r: &Request, now: Timestamp) -> Expected {
    let deny = |d| Expected::Deny(vec![d]);
    let Some(u) = w.users.iter().find(|u| u.name == r.user) else {
        return deny(Denial::UnknownUser);
    };
    if u.state != UserState::Active {
        return deny(Denial::UserDisabled);
    }
    if let Credential::Key(k) = &r.credential {
        if !w.keys.contains(&(u.name.clone(), k.clone())) {
            return deny(Denial::KeyNotRegistered);
        }
    }
    let target = |name: &TargetName| w.targets.iter().find(|t| &t.name == name);
    let target_ip = |t: &Target| t.address.host.ip().map(canonical);
    let (dest_ip, host) = match &r.destination {
        Destination::Target(name) => match target(name) {
            Some(t) => (target_ip(t), t.address.host.clone()),
            None => return deny(Denial::UnknownTarget),
        },
        Destination::Address(ip) => (Some(canonical(*ip)), Host::Ip(canonical(*ip))),
    };
    let mut hits: Vec<&Grant> = Vec::new();
    let mut misses: Vec<(u8, Denial)> = Vec::new();
    for g in w.grants.iter().filter(|g| g.revoked.is_none()) {
        let for_user = match &g.subject {
            Subject::User(n) => *n == u.name,
            Subject::Group(group) => u.groups.contains(group),
        };
        let reaches = match (&g.object, &r.destination) {
            (GrantObject::Target(name), Destination::Target(want)) => {
                target(name).is_some() && name == want
            }
            (GrantObject::Target(name), Destination::Address(_)) => target(name)
                .and_then(target_ip)
                .is_some_and(|ip| Some(ip) == dest_ip),
            (GrantObject::Cidr(net), _) => dest_ip.is_some_and(|ip| cidr_reaches(net, ip)),
        };
        if !for_user || !reaches || !g.protocols.contains(r.protocol) {
            continue;
        }
        let port_ok = r.protocol == Icmp
            || (g.ports.ranges().iter()).any(|pr| pr.first() <= r.port && r.port <= pr.last());
        let login_ok =
            r.protocol != SshProxy || r.login.as_ref().is_some_and(|l| g.logins.contains(l));
        match () {
            () if !port_ok => misses.push((1, Denial::PortNotGranted)),
            () if !login_ok => misses.push((2, Denial::LoginNotGranted)),
            () if now < g.not_before => misses.push((3, Denial::NotYetValid(g.id))),
            () if now >= g.expires_at => misses.push((3, Denial::Expired(g.id))),
            () => hits.push(g),
        }
    }
    if let Some(latest) = hits.iter().map(|g| g.expires_at).max() {
        let ids = hits.iter().filter(|g| g.expires_at == latest);
        return Expected::Allow {
            ids: ids.map(|g| g.id).collect(),
            expires_at: latest,
            connect: ConnectTo { host, port: r.port },
        };
    }
    match misses.iter().map(|(rank, _)| *rank).max() {
        Some(best) => {
            let closest = misses.into_iter().filter(|(rank, _)| *rank == best);
            Expected::Deny(closest.map(|(_, d)| d).collect())
        }
        None => deny(Denial::NoGrant),
    }
}
