use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::{shown, ModelError};
use super::key::SshPublicKey;
use super::names::TargetName;
use crate::time::Timestamp;

/// Where a target lives: an IP address or a DNS name (resolved by the gateway's own resolver,
/// never chosen by the client).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A literal address.
    Ip(IpAddr),
    /// A DNS name, lower case.
    Dns(String),
}

impl Host {
    /// The literal address, if the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(ip.to_canonical()),
            Host::Dns(_) => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Dns(name) => f.write_str(name),
        }
    }
}

/// `HOST:PORT` with `HOST` an IPv4 address, a bracketed IPv6 address or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetAddress {
    /// The host.
    pub host: Host,
    /// The TCP port.
    pub port: u16,
}

impl FromStr for TargetAddress {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| ModelError::InvalidAddress {
            value: shown(s),
            why,
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest
                .split_once("]:")
                .ok_or_else(|| bad("expected [IPv6]:PORT"))?;
            let ip: std::net::Ipv6Addr = h.parse().map_err(|_| bad("not an IPv6 address"))?;
            (Host::Ip(IpAddr::V6(ip)), p)
        } else {
            let (h, p) = s
                .rsplit_once(':')
                .ok_or_else(|| bad("expected HOST:PORT"))?;
            if h.contains(':') {
                return Err(bad("IPv6 addresses go in brackets: [2001:db8::1]:22"));
            }
            let host = match h.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Dns(
                    dns_name(h)
                        .ok_or_else(|| bad("host is neither an IP address nor a DNS name"))?,
                ),
            };
            (host, p)
        };
        let port: u16 = port
            .parse()
            .map_err(|_| bad("port is a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("port 0 is not a port"));
        }
        Ok(Self { host, port })
    }
}

fn dns_name(h: &str) -> Option<String> {
    let lower = h.to_ascii_lowercase();
    let lower = lower.strip_suffix('.').unwrap_or(&lower).to_owned();
    let ok = !lower.is_empty()
        && lower.len() <= 253
        && lower.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    ok.then_some(lower)
}

impl TryFrom<String> for TargetAddress {
    type Error = ModelError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TargetAddress> for String {
    fn from(a: TargetAddress) -> String {
        a.to_string()
    }
}

impl fmt::Display for TargetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A named host in the private subnets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Unique name, what engineers type.
    pub name: TargetName,
    /// Where it is.
    pub address: TargetAddress,
    /// Its SSH host key, pinned; proxy mode refuses any other.
    pub host_key: Option<SshPublicKey>,
    /// When it was added.
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a: TargetAddress = "10.0.12.7:22".parse().unwrap();
        assert_eq!(a.host.ip(), Some("10.0.12.7".parse().unwrap()));
        assert_eq!(a.to_string(), "10.0.12.7:22");
        let b: TargetAddress = "[2001:db8::1]:2222".parse().unwrap();
        assert_eq!(b.to_string(), "[2001:db8::1]:2222");
        let c: TargetAddress = "DB.Internal.:5432".parse().unwrap();
        assert_eq!(c.to_string(), "db.internal:5432");
        for bad in [
            "10.0.0.1",
            "10.0.0.1:0",
            "10.0.0.1:70000",
            "2001:db8::1:22",
            "a b:22",
            ":22",
            "[::1]22",
        ] {
            assert!(bad.parse::<TargetAddress>().is_err(), "{bad}");
        }
    }
}
