use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use super::snapshot::{CompiledGrant, CompiledObject, Snapshot};
use crate::model::{
    Fingerprint, GrantId, GrantOptions, Host, Login, Protocol, TargetName, UserName,
};
use crate::time::Timestamp;

/// How the user proved who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A public key registered to the user; removing the key revokes access.
    Key(Fingerprint),
    /// An OpenSSH user certificate signed by the gateway's user CA (already checked for its
    /// validity window and principals by the SSH layer).
    Certificate {
        /// The certificate's serial, for the audit trail.
        serial: u64,
    },
}

/// Where the user wants to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A registered target by name (never resolved by DNS on the client's say-so).
    Target(TargetName),
    /// A literal address, which must fall in a granted CIDR or be a granted target's address.
    Address(IpAddr),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Target(t) => write!(f, "{t}"),
            Destination::Address(ip) => write!(f, "{ip}"),
        }
    }
}

/// One access question.
#[derive(Clone, Debug)]
pub struct Request {
    /// The authenticated user.
    pub user: UserName,
    /// How they authenticated.
    pub credential: Credential,
    /// The way in.
    pub protocol: Protocol,
    /// Where to.
    pub destination: Destination,
    /// Which port (ignored for ICMP).
    pub port: u16,
    /// The remote login, for proxy mode.
    pub login: Option<Login>,
}

/// Why access was refused. Default deny: anything not positively granted is [`Denial::NoGrant`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    /// The user is not known.
    UnknownUser,
    /// The user is disabled.
    UserDisabled,
    /// The key used is not (or no longer) registered to the user.
    KeyNotRegistered,
    /// The target name is not registered.
    UnknownTarget,
    /// No grant covers this destination and protocol.
    NoGrant,
    /// A grant covers the destination and protocol, but not this port.
    PortNotGranted,
    /// A grant covers the destination, but not this remote login.
    LoginNotGranted,
    /// The only matching grant has not started yet.
    NotYetValid(GrantId),
    /// The only matching grant has expired.
    Expired(GrantId),
    /// The grant an earlier decision rested on is gone (revoked or its subject changed).
    Revoked(GrantId),
}

impl Denial {
    /// A stable code for audit records and error messages.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::UnknownUser => "unknown-user",
            Denial::UserDisabled => "user-disabled",
            Denial::KeyNotRegistered => "key-not-registered",
            Denial::UnknownTarget => "unknown-target",
            Denial::NoGrant => "no-grant",
            Denial::PortNotGranted => "port-not-granted",
            Denial::LoginNotGranted => "login-not-granted",
            Denial::NotYetValid(_) => "grant-not-yet-valid",
            Denial::Expired(_) => "grant-expired",
            Denial::Revoked(_) => "grant-revoked",
        }
    }

    /// Ranks near misses so the most informative reason wins (higher is closer to allowed).
    fn closeness(&self) -> u8 {
        match self {
            Denial::NotYetValid(_) | Denial::Expired(_) => 3,
            Denial::LoginNotGranted => 2,
            Denial::PortNotGranted => 1,
            _ => 0,
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::UnknownUser => f.write_str("unknown user"),
            Denial::UserDisabled => f.write_str("user is disabled"),
            Denial::KeyNotRegistered => f.write_str("key is not registered to the user"),
            Denial::UnknownTarget => f.write_str("no such target"),
            Denial::NoGrant => f.write_str("no grant allows this destination and protocol"),
            Denial::PortNotGranted => f.write_str("no grant allows this port"),
            Denial::LoginNotGranted => f.write_str("no grant allows this remote login"),
            Denial::NotYetValid(g) => write!(f, "grant {g} has not started yet"),
            Denial::Expired(g) => write!(f, "grant {g} has expired"),
            Denial::Revoked(g) => write!(f, "grant {g} was revoked"),
        }
    }
}

/// Where an allowed connection goes: the registered target's host, or the literal address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectTo {
    /// Host to connect to.
    pub host: Host,
    /// Port to connect to.
    pub port: u16,
}

/// Proof that [`decide`] allowed a request. Only this module can make one; opening an upstream
/// connection or forwarding a packet takes it by value or reference. Not `Clone`.
#[derive(Debug)]
pub struct Allowed {
    grant: GrantId,
    user: UserName,
    credential: Credential,
    protocol: Protocol,
    destination: Destination,
    connect: ConnectTo,
    login: Option<Login>,
    expires_at: Timestamp,
    options: GrantOptions,
}

impl Allowed {
    /// The grant that allowed it.
    pub fn grant(&self) -> GrantId {
        self.grant
    }

    /// The user.
    pub fn user(&self) -> &UserName {
        &self.user
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The destination as asked.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Where to connect.
    pub fn connect_to(&self) -> &ConnectTo {
        &self.connect
    }

    /// The remote login (proxy mode).
    pub fn login(&self) -> Option<&Login> {
        self.login.as_ref()
    }

    /// When the grant ends; the data path must cut the session then.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// The SSH options of the grant that allowed it (agent and port forwarding).
    pub fn options(&self) -> GrantOptions {
        self.options
    }
}

/// The answer to a [`Request`].
#[derive(Debug)]
pub enum Decision {
    /// Allowed, under a grant.
    Allow(Allowed),
    /// Refused.
    Deny(Denial),
}

impl Decision {
    /// The allowance, or the reason for refusal.
    pub fn into_result(self) -> Result<Allowed, Denial> {
        match self {
            Decision::Allow(a) => Ok(a),
            Decision::Deny(d) => Err(d),
        }
    }

    /// Whether access was allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// Decides `request` against `snapshot` at `now`. Default deny.
pub fn decide(request: &Request, snapshot: &Snapshot, now: Timestamp) -> Decision {
    match decide_inner(request, snapshot, now) {
        Ok(a) => Decision::Allow(a),
        Err(d) => Decision::Deny(d),
    }
}

fn decide_inner(req: &Request, snapshot: &Snapshot, now: Timestamp) -> Result<Allowed, Denial> {
    let entry = snapshot.users.get(&req.user).ok_or(Denial::UnknownUser)?;
    if !entry.active {
        return Err(Denial::UserDisabled);
    }
    if let Credential::Key(fp) = &req.credential {
        if !entry.keys.contains(fp) {
            return Err(Denial::KeyNotRegistered);
        }
    }
    let (dest_ip, dest_target) = match &req.destination {
        Destination::Target(name) => {
            let t = snapshot.targets.get(name).ok_or(Denial::UnknownTarget)?;
            (t.address.host.ip(), Some(t))
        }
        Destination::Address(ip) => (Some(ip.to_canonical()), None),
    };

    let mut best: Option<(&CompiledGrant, Timestamp)> = None;
    let mut miss = Denial::NoGrant;
    for g in &entry.grants {
        if !g.protocols.contains(req.protocol) || !object_matches(g, &req.destination, dest_ip) {
            continue;
        }
        let verdict = if req.protocol.has_ports() && !g.ports.contains(req.port) {
            Err(Denial::PortNotGranted)
        } else if req.protocol == Protocol::SshProxy
            && !req.login.as_ref().is_some_and(|l| g.logins.contains(l))
        {
            Err(Denial::LoginNotGranted)
        } else if now < g.not_before {
            Err(Denial::NotYetValid(g.id))
        } else if now >= g.expires_at {
            Err(Denial::Expired(g.id))
        } else {
            Ok(())
        };
        match verdict {
            Ok(()) => {
                if best.is_none_or(|(_, exp)| g.expires_at > exp) {
                    best = Some((g, g.expires_at));
                }
            }
            Err(d) => {
                if d.closeness() > miss.closeness() {
                    miss = d;
                }
            }
        }
    }
    let (g, _) = best.ok_or(miss)?;
    let connect = match (dest_target, dest_ip) {
        (Some(t), _) => ConnectTo {
            host: t.address.host.clone(),
            port: req.port,
        },
        (None, Some(ip)) => ConnectTo {
            host: Host::Ip(ip),
            port: req.port,
        },
        (None, None) => return Err(Denial::NoGrant),
    };
    Ok(Allowed {
        grant: g.id,
        user: req.user.clone(),
        credential: req.credential.clone(),
        protocol: req.protocol,
        destination: req.destination.clone(),
        connect,
        login: req.login.clone(),
        expires_at: g.expires_at,
        options: g.options,
    })
}

fn object_matches(g: &CompiledGrant, dest: &Destination, dest_ip: Option<IpAddr>) -> bool {
    match (&g.object, dest) {
        (CompiledObject::Target { name, .. }, Destination::Target(want)) => name == want,
        (CompiledObject::Target { ip: Some(ip), .. }, Destination::Address(_)) => {
            Some(*ip) == dest_ip
        }
        (CompiledObject::Target { ip: None, .. }, Destination::Address(_)) => false,
        (CompiledObject::Cidr(net), _) => dest_ip.is_some_and(|ip| cidr_allows(net, ip)),
    }
}

/// Destinations a broad grant must never reach by accident: the gateway's own loopback, link
/// local (the instance metadata service, 169.254.169.254, and its IPv6 form), unspecified,
/// multicast and broadcast. A CIDR grant reaches an address in one of these only if the grant's
/// whole network lies inside that range — an admin granted it explicitly.
pub(super) const SPECIAL: &[(IpAddr, u8)] = &[
    (IpAddr::V4(std::net::Ipv4Addr::new(0, 0, 0, 0)), 8),
    (IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)), 8),
    (IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 0, 0)), 16),
    (IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 0)), 4),
    (IpAddr::V4(std::net::Ipv4Addr::new(255, 255, 255, 255)), 32),
    (IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 128),
    (IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 128),
    (
        IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
        10,
    ),
    (
        IpAddr::V6(std::net::Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)),
        8,
    ),
    // The instance metadata service's IPv6 address.
    (
        IpAddr::V6(std::net::Ipv6Addr::new(
            0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254,
        )),
        128,
    ),
];

pub(super) fn cidr_allows(net: &IpNet, ip: IpAddr) -> bool {
    if !net.contains(&ip) {
        return false;
    }
    for (addr, len) in SPECIAL {
        let Ok(range) = IpNet::new(*addr, *len) else {
            continue;
        };
        if range.contains(&ip) {
            return net.prefix_len() >= range.prefix_len() && range.contains(&net.network());
        }
    }
    true
}

impl Snapshot {
    /// Re-checks an earlier allowance against this (newer) snapshot at `now`: the user is still
    /// active, the key still registered, and the same grant still in force. Data paths call this
    /// for every live session on each change notice.
    pub fn recheck(&self, allowed: &Allowed, now: Timestamp) -> Result<(), Denial> {
        let entry = self.users.get(&allowed.user).ok_or(Denial::UnknownUser)?;
        if !entry.active {
            return Err(Denial::UserDisabled);
        }
        if let Credential::Key(fp) = &allowed.credential {
            if !entry.keys.contains(fp) {
                return Err(Denial::KeyNotRegistered);
            }
        }
        let g = entry
            .grants
            .iter()
            .find(|g| g.id == allowed.grant)
            .ok_or(Denial::Revoked(allowed.grant))?;
        if now < g.not_before {
            return Err(Denial::NotYetValid(g.id));
        }
        if now >= g.expires_at {
            return Err(Denial::Expired(g.id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod special_destination_tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn broad_grants_do_not_reach_special_addresses() {
        let everything = net("0.0.0.0/0");
        assert!(cidr_allows(&everything, "10.0.12.7".parse().unwrap()));
        assert!(cidr_allows(&everything, "8.8.8.8".parse().unwrap()));
        for special in [
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(
                !cidr_allows(&everything, special.parse().unwrap()),
                "{special}"
            );
        }
        let v6 = net("::/0");
        assert!(cidr_allows(&v6, "2001:db8::1".parse().unwrap()));
        for special in ["::1", "fe80::1", "ff02::1", "fd00:ec2::254", "::"] {
            assert!(!cidr_allows(&v6, special.parse().unwrap()), "{special}");
        }
        assert!(!cidr_allows(
            &net("169.254.0.0/15"),
            "169.254.169.254".parse().unwrap()
        ));
    }

    #[test]
    fn explicit_grants_do() {
        assert!(cidr_allows(
            &net("169.254.169.254/32"),
            "169.254.169.254".parse().unwrap()
        ));
        assert!(cidr_allows(
            &net("127.0.0.0/8"),
            "127.0.0.1".parse().unwrap()
        ));
        assert!(cidr_allows(
            &net("127.0.0.1/32"),
            "127.0.0.1".parse().unwrap()
        ));
        assert!(cidr_allows(
            &net("fd00:ec2::254/128"),
            "fd00:ec2::254".parse().unwrap()
        ));
        assert!(!cidr_allows(
            &net("127.0.0.1/32"),
            "127.0.0.2".parse().unwrap()
        ));
    }
}
