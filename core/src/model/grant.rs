use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{shown, ModelError};
use super::names::{GroupName, Login, TargetName, UserName};
use super::ports::PortSpec;
use crate::time::Timestamp;

/// The longest a single grant may run.
pub const MAX_GRANT_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A grant's identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GrantId(Uuid);

impl GrantId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl FromStr for GrantId {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(Self)
            .map_err(|_| ModelError::InvalidId(shown(s)))
    }
}

impl TryFrom<String> for GrantId {
    type Error = ModelError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<GrantId> for String {
    fn from(g: GrantId) -> String {
        g.to_string()
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Who a grant is for: a user (`alice`) or every member of a group (`@ops`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Subject {
    /// One user.
    User(UserName),
    /// Every member of a group, now and later.
    Group(GroupName),
}

impl FromStr for Subject {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix('@') {
            Some(g) => Ok(Subject::Group(g.parse()?)),
            None => Ok(Subject::User(s.parse()?)),
        }
    }
}

impl TryFrom<String> for Subject {
    type Error = ModelError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Subject> for String {
    fn from(s: Subject) -> String {
        s.to_string()
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(u) => write!(f, "{u}"),
            Subject::Group(g) => write!(f, "@{g}"),
        }
    }
}

/// What a grant reaches: a registered target or a CIDR range of the private subnets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum GrantObject {
    /// A target by name.
    Target(TargetName),
    /// Every address in a network (no host bits set).
    Cidr(IpNet),
}

impl FromStr for GrantObject {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let looks_like_address =
            s.contains('/') || s.contains(':') || s.parse::<std::net::IpAddr>().is_ok();
        if !looks_like_address {
            return Ok(GrantObject::Target(s.parse()?));
        }
        let bad = |why| ModelError::InvalidCidr {
            value: shown(s),
            why,
        };
        let net: IpNet = match s.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => match s.parse::<std::net::IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => return Err(bad("expected ADDRESS/PREFIX, e.g. 10.0.12.0/24")),
            },
        };
        if net.trunc() != net {
            return Err(bad("host bits are set; did you mean the network address?"));
        }
        Ok(GrantObject::Cidr(net))
    }
}

impl TryFrom<String> for GrantObject {
    type Error = ModelError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<GrantObject> for String {
    fn from(o: GrantObject) -> String {
        o.to_string()
    }
}

impl fmt::Display for GrantObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantObject::Target(t) => write!(f, "{t}"),
            GrantObject::Cidr(n) => write!(f, "{n}"),
        }
    }
}

/// A way in that a grant may allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// SSH jump (`ssh -J`, `direct-tcpip`).
    #[serde(rename = "ssh")]
    Ssh,
    /// SSH proxy mode with the forwarded agent, for the grant's logins.
    #[serde(rename = "ssh-proxy")]
    SshProxy,
    /// VPN TCP.
    #[serde(rename = "tcp")]
    Tcp,
    /// VPN UDP.
    #[serde(rename = "udp")]
    Udp,
    /// VPN ICMP (no ports).
    #[serde(rename = "icmp")]
    Icmp,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 5] = [
        Protocol::Ssh,
        Protocol::SshProxy,
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Icmp,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ssh => "ssh",
            Protocol::SshProxy => "ssh-proxy",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Protocol::Ssh => 1,
            Protocol::SshProxy => 2,
            Protocol::Tcp => 4,
            Protocol::Udp => 8,
            Protocol::Icmp => 16,
        }
    }

    /// Whether the protocol is checked against the grant's ports.
    pub fn has_ports(self) -> bool {
        !matches!(self, Protocol::Icmp)
    }
}

impl FromStr for Protocol {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| ModelError::InvalidProtocol(shown(s)))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty set of protocols, as a bit set (cheap to test on the packet path).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Protocol>", into = "Vec<Protocol>")]
pub struct ProtocolSet(u8);

impl ProtocolSet {
    /// The set holding the given protocols; refuses an empty set.
    pub fn new(protocols: impl IntoIterator<Item = Protocol>) -> Result<Self, ModelError> {
        let bits = protocols.into_iter().fold(0u8, |b, p| b | p.bit());
        if bits == 0 {
            Err(ModelError::InvalidGrant("at least one protocol is needed"))
        } else {
            Ok(Self(bits))
        }
    }

    /// Whether `p` is in the set.
    pub fn contains(self, p: Protocol) -> bool {
        self.0 & p.bit() != 0
    }

    /// The protocols, in a fixed order.
    pub fn iter(self) -> impl Iterator<Item = Protocol> {
        Protocol::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl TryFrom<Vec<Protocol>> for ProtocolSet {
    type Error = ModelError;

    fn try_from(v: Vec<Protocol>) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<ProtocolSet> for Vec<Protocol> {
    fn from(s: ProtocolSet) -> Vec<Protocol> {
        s.iter().collect()
    }
}

impl FromStr for ProtocolSet {
    type Err = ModelError;

    /// `ssh,tcp` style.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let protocols = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Protocol>, _>>()?;
        Self::new(protocols)
    }
}

impl fmt::Display for ProtocolSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Protocol::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// Why access was granted: 1–500 printable characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Reason {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Err(ModelError::InvalidReason("a reason is required"));
        }
        if t.chars().count() > 500 {
            return Err(ModelError::InvalidReason("at most 500 characters"));
        }
        if t.chars().any(char::is_control) {
            return Err(ModelError::InvalidReason(
                "control characters are not allowed",
            ));
        }
        Ok(Self(t.to_owned()))
    }
}

impl TryFrom<String> for Reason {
    type Error = ModelError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Reason> for String {
    fn from(r: Reason) -> String {
        r.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a grant is in its life at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantStatus {
    /// Its window has not opened yet.
    Pending,
    /// In force.
    Active,
    /// Its window closed.
    Expired,
    /// An admin revoked it.
    Revoked,
}

/// SSH features a grant may allow beyond reaching the target. Both off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantOptions {
    /// Proxy mode may forward the engineer's agent on to the target; certificates carry
    /// `permit-agent-forwarding`.
    #[serde(default)]
    pub agent_forwarding: bool,
    /// Certificates carry `permit-port-forwarding`.
    #[serde(default)]
    pub port_forwarding: bool,
}

impl GrantOptions {
    /// Both options of `self` and `other` (what either allows).
    pub fn union(self, other: GrantOptions) -> GrantOptions {
        GrantOptions {
            agent_forwarding: self.agent_forwarding || other.agent_forwarding,
            port_forwarding: self.port_forwarding || other.port_forwarding,
        }
    }
}

impl fmt::Display for GrantOptions {
    /// `agent-forwarding,port-forwarding`, or `-` when neither is allowed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.agent_forwarding, "agent-forwarding"),
            (self.port_forwarding, "port-forwarding"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if names.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// Access for a subject to an object, for protocols and ports, within a time window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Identifier.
    pub id: GrantId,
    /// Who.
    pub subject: Subject,
    /// To what.
    pub object: GrantObject,
    /// How.
    pub protocols: ProtocolSet,
    /// Which ports (ignored for ICMP).
    pub ports: PortSpec,
    /// Remote logins allowed in proxy mode; empty unless `ssh-proxy` is granted.
    pub logins: BTreeSet<Login>,
    /// SSH forwarding options.
    pub options: GrantOptions,
    /// From when.
    pub not_before: Timestamp,
    /// Until when (exclusive).
    pub expires_at: Timestamp,
    /// Why.
    pub reason: Reason,
    /// The admin who granted it.
    pub granted_by: UserName,
    /// When it was created.
    pub created_at: Timestamp,
    /// When and by whom it was revoked, if it was.
    pub revoked: Option<(Timestamp, UserName)>,
}

impl Grant {
    /// Checks the grant's own consistency at creation time `now`.
    pub fn check(&self, now: Timestamp) -> Result<(), ModelError> {
        if self.expires_at <= self.not_before {
            return Err(ModelError::InvalidTimeWindow(
                "expiry must be after the start",
            ));
        }
        if self.expires_at <= now {
            return Err(ModelError::InvalidTimeWindow("expiry is in the past"));
        }
        if self.not_before.until(self.expires_at) > MAX_GRANT_DURATION {
            return Err(ModelError::InvalidTimeWindow(
                "a grant may last at most 366 days",
            ));
        }
        let proxy = self.protocols.contains(Protocol::SshProxy);
        if proxy && self.logins.is_empty() {
            return Err(ModelError::InvalidGrant(
                "ssh-proxy grants need at least one login",
            ));
        }
        if !proxy && !self.logins.is_empty() {
            return Err(ModelError::InvalidGrant(
                "logins apply only to ssh-proxy grants",
            ));
        }
        let ssh = proxy || self.protocols.contains(Protocol::Ssh);
        if !ssh && self.options != GrantOptions::default() {
            return Err(ModelError::InvalidGrant(
                "agent and port forwarding apply only to ssh and ssh-proxy grants",
            ));
        }
        Ok(())
    }

    /// The grant's status at `now`.
    pub fn status(&self, now: Timestamp) -> GrantStatus {
        if self.revoked.is_some() {
            GrantStatus::Revoked
        } else if now < self.not_before {
            GrantStatus::Pending
        } else if now >= self.expires_at {
            GrantStatus::Expired
        } else {
            GrantStatus::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects() {
        assert!(matches!(
            "db-1".parse::<GrantObject>().unwrap(),
            GrantObject::Target(_)
        ));
        assert!(matches!(
            "10.0.12.0/24".parse::<GrantObject>().unwrap(),
            GrantObject::Cidr(_)
        ));
        assert_eq!(
            "10.0.12.7".parse::<GrantObject>().unwrap().to_string(),
            "10.0.12.7/32"
        );
        assert_eq!(
            "2001:db8::/32".parse::<GrantObject>().unwrap().to_string(),
            "2001:db8::/32"
        );
        assert!("10.0.12.7/24".parse::<GrantObject>().is_err());
        assert!("10.0.12.0/33".parse::<GrantObject>().is_err());
        assert!("10.0.300.0/24".parse::<GrantObject>().is_err());
        assert!("DB_1".parse::<GrantObject>().is_err());
    }

    #[test]
    fn subjects() {
        assert_eq!(
            "@ops".parse::<Subject>().unwrap(),
            Subject::Group("ops".parse().unwrap())
        );
        assert_eq!("alice".parse::<Subject>().unwrap().to_string(), "alice");
        assert!("@".parse::<Subject>().is_err());
    }

    #[test]
    fn protocol_sets() {
        let s: ProtocolSet = "tcp, ssh".parse().unwrap();
        assert_eq!(s.to_string(), "ssh,tcp");
        assert!(s.contains(Protocol::Tcp) && !s.contains(Protocol::Udp));
        assert!("".parse::<ProtocolSet>().is_err());
        assert!("ssh,telnet".parse::<ProtocolSet>().is_err());
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"["ssh","tcp"]"#);
    }

    #[test]
    fn options_default_off_parse_strictly_and_need_ssh() {
        let o: GrantOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(o, GrantOptions::default());
        assert_eq!(o.to_string(), "-");
        let o: GrantOptions = serde_json::from_str(r#"{"port_forwarding": true}"#).unwrap();
        assert!(o.port_forwarding && !o.agent_forwarding);
        assert_eq!(o.to_string(), "port-forwarding");
        assert!(serde_json::from_str::<GrantOptions>(r#"{"x11": true}"#).is_err());
        let now = crate::time::Timestamp::from_millis(1_000_000);
        let mut g = Grant {
            id: GrantId::random(),
            subject: "alice".parse().unwrap(),
            object: "10.0.0.0/24".parse().unwrap(),
            protocols: "tcp".parse().unwrap(),
            ports: "80".parse().unwrap(),
            logins: BTreeSet::new(),
            options: GrantOptions {
                agent_forwarding: false,
                port_forwarding: true,
            },
            not_before: now,
            expires_at: now.saturating_add(Duration::from_secs(60)),
            reason: "x".parse().unwrap(),
            granted_by: "admin".parse().unwrap(),
            created_at: now,
            revoked: None,
        };
        assert!(g.check(now).is_err());
        g.protocols = "ssh,tcp".parse().unwrap();
        assert!(g.check(now).is_ok());
    }

    #[test]
    fn reasons() {
        assert!("".parse::<Reason>().is_err());
        assert!("  ".parse::<Reason>().is_err());
        assert!("a\u{1b}[2J".parse::<Reason>().is_err());
        assert_eq!("  INC-42 ".parse::<Reason>().unwrap().as_str(), "INC-42");
    }
}
