//! What a `direct-tcpip` request names, parsed into a policy [`Destination`]. Pure.
//!
//! The host is taken as the client typed it (OpenSSH's `-J` sends the name as typed): a literal
//! IP address (IPv6 with or without brackets) or a registered target name. Nothing is resolved
//! here; a name that is not a registered target is refused by the policy as `unknown-target`.

use std::fmt;
use std::net::IpAddr;

use sallyport_core::model::TargetName;
use sallyport_core::policy::Destination;

/// Longest host text kept in messages and audit records.
const MAX_SHOWN: usize = 255;

/// A `direct-tcpip` request that does not name a destination at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadDestination {
    /// The port is 0 or above 65535.
    #[error("port {0} is not a TCP port")]
    Port(u32),
    /// The host is neither an IP address nor a well-formed target name.
    #[error("{0:?} is neither a target name nor an IP address")]
    Host(String),
}

impl BadDestination {
    /// The stable code for audit records.
    pub fn code(&self) -> &'static str {
        match self {
            BadDestination::Port(_) => "bad-port",
            BadDestination::Host(_) => "bad-destination",
        }
    }
}

/// Parses the host and port of a `direct-tcpip` request.
pub fn parse(host: &str, port: u32) -> Result<(Destination, u16), BadDestination> {
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(BadDestination::Port(port))?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok((Destination::Address(ip.to_canonical()), port));
    }
    let lower = host.to_ascii_lowercase();
    match lower.parse::<TargetName>() {
        Ok(name) => Ok((Destination::Target(name), port)),
        Err(_) => Err(BadDestination::Host(shown(host))),
    }
}

/// Client-supplied text made safe for a message or an audit record: control characters
/// replaced, at most 255 characters.
pub fn shown(text: &str) -> String {
    text.chars()
        .take(MAX_SHOWN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A destination and port as text, for messages (`db-1:22`, `[2001:db8::1]:22`).
#[derive(Debug)]
pub struct Shown<'a>(pub &'a Destination, pub u16);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Destination::Address(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.1),
            other => write!(f, "{other}:{}", self.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names() {
        let (d, p) = parse("10.0.12.7", 22).unwrap();
        assert_eq!(d, Destination::Address("10.0.12.7".parse().unwrap()));
        assert_eq!(p, 22);
        let (d, _) = parse("[2001:db8::1]", 22).unwrap();
        assert_eq!(d, Destination::Address("2001:db8::1".parse().unwrap()));
        let (d, _) = parse("::ffff:127.0.0.1", 22).unwrap();
        assert_eq!(d, Destination::Address("127.0.0.1".parse().unwrap()));
        let (d, _) = parse("DB-1", 5432).unwrap();
        assert_eq!(d, Destination::Target("db-1".parse().unwrap()));
        assert_eq!(Shown(&d, 5432).to_string(), "db-1:5432");
    }

    #[test]
    fn garbage_is_refused_and_never_resolved() {
        assert_eq!(parse("db-1", 0), Err(BadDestination::Port(0)));
        assert_eq!(parse("db-1", 70_000), Err(BadDestination::Port(70_000)));
        for bad in ["", "a b", "db_1;rm", "-x", "a\u{0}b", "x/y"] {
            assert!(
                matches!(parse(bad, 22), Err(BadDestination::Host(_))),
                "{bad:?}"
            );
        }
        let Err(BadDestination::Host(shown)) = parse(&"\u{7}".repeat(1000), 22) else {
            panic!("refused");
        };
        assert_eq!(shown.len(), 255);
        assert!(!shown.contains('\u{7}'));
    }
}
