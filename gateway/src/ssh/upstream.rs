//! Opening the TCP connection to a target. The only way in is [`connect`], and it takes the
//! policy's [`Allowed`] token: there is no connecting without a decision.
//!
//! The address comes from the token ([`Allowed::connect_to`]): the registered target's host or
//! the literal IP the client named. A target registered with a DNS name is resolved here, by the
//! gateway's resolver, and a name that resolves to a loopback, link-local (including the
//! instance-metadata address 169.254.169.254), unspecified or multicast address is refused: an
//! admin who means such an address registers it as a literal IP, where the policy's rules for
//! special-purpose destinations apply.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sallyport_core::model::Host;
use sallyport_core::policy::Allowed;
use tokio::net::TcpStream;

/// Why a target could not be reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Nothing answered in time.
    #[error("timed out after {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The target's DNS name did not resolve.
    #[error("its name {name} does not resolve ({source})")]
    Resolve {
        /// The registered name.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// The target's DNS name resolved only to addresses the gateway will not connect to.
    #[error("its name {name} resolves to {address}, a special-purpose address")]
    SpecialAddress {
        /// The registered name.
        name: String,
        /// The address.
        address: IpAddr,
    },
    /// The connection was refused or failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Connects to where `allowed` says, within `timeout`. Returns the stream and the address
/// connected to.
pub async fn connect(
    allowed: &Allowed,
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let to = allowed.connect_to();
    let attempt = async {
        let candidates: Vec<SocketAddr> = match &to.host {
            Host::Ip(ip) => vec![SocketAddr::new(ip.to_canonical(), to.port)],
            Host::Dns(name) => resolve(name, to.port).await?,
        };
        let mut last = None;
        for addr in candidates {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    // Interactive SSH inside the tunnel: no Nagle delay on keystrokes.
                    let _ = stream.set_nodelay(true);
                    return Ok((stream, addr));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(ConnectError::Io(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address to connect to")
        })))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
}

async fn resolve(name: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
        .await
        .map_err(|source| ConnectError::Resolve {
            name: name.to_owned(),
            source,
        })?
        .map(|a| SocketAddr::new(a.ip().to_canonical(), a.port()))
        .collect();
    let usable: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|a| !special_purpose(a.ip()))
        .collect();
    match (usable.is_empty(), found.first()) {
        (false, _) => Ok(usable),
        (true, Some(first)) => Err(ConnectError::SpecialAddress {
            name: name.to_owned(),
            address: first.ip(),
        }),
        (true, None) => Err(ConnectError::Resolve {
            name: name.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        }),
    }
}

/// Addresses a DNS answer must not lead the gateway to.
fn special_purpose(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_addresses() {
        for ip in [
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(special_purpose(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.12.7", "192.168.1.1", "2001:db8::1"] {
            assert!(!special_purpose(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let e = resolve("localhost", 22).await.unwrap_err();
        assert!(matches!(e, ConnectError::SpecialAddress { .. }), "{e:?}");
    }
}
