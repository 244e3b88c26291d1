//! `[wireguard]` in the configuration file. Absent: no WireGuard endpoint (the device API
//! answers that the VPN is off).

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer};

use super::pool::{AddressPool, DEFAULT_POOL};

/// The WireGuard endpoint's settings. Every key but `endpoint` has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WireguardSettings {
    /// UDP listen address. Default `0.0.0.0:51820`.
    pub listen: SocketAddr,
    /// What clients put in `Endpoint =` (`host:port`, e.g. the load balancer's name). Default:
    /// the listen address (fine for `dev`; set it for `run`).
    pub endpoint: Option<String>,
    /// The VPN address pool (IPv4). The gateway's TUN device takes the first host address;
    /// each device gets one stable address from the rest. Default `100.64.0.0/10`.
    pub pool: Ipv4Net,
    /// The TUN device's name. Default `sallyport0`.
    pub tun_name: String,
    /// How long a device's preshared key works before `sallyport vpn refresh`. Default `12h`.
    #[serde(deserialize_with = "duration")]
    pub psk_lifetime: Duration,
    /// Let sallyportd enable IPv4 forwarding and install source NAT for the pool (an nftables
    /// table of its own, `nat_table`, removed on stop) towards `nat_out_interface`. Default off:
    /// the operator's own rules (`packaging/vpn-nat.sh`) do it.
    pub nat: bool,
    /// The interface NAT applies to (the gateway's interface into the private subnets).
    /// Required when `nat = true`.
    pub nat_out_interface: Option<String>,
    /// The nftables table sallyportd owns when `nat = true`. Default `sallyport_vpn`.
    pub nat_table: String,
    /// Handshake initiations per second (all devices together) before cookie replies are
    /// required (WireGuard's DoS mitigation). Default 1000.
    pub handshakes_per_second: u64,
}

impl Default for WireguardSettings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_WG_LISTEN,
            endpoint: None,
            pool: default_pool(),
            tun_name: "sallyport0".to_owned(),
            psk_lifetime: Duration::from_secs(12 * 3600),
            nat: false,
            nat_out_interface: None,
            nat_table: "sallyport_vpn".to_owned(),
            handshakes_per_second: 1000,
        }
    }
}

/// The default UDP listen address for `run`.
pub const DEFAULT_WG_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 51820);

fn default_pool() -> Ipv4Net {
    DEFAULT_POOL.parse().unwrap_or_else(|_| {
        Ipv4Net::new(std::net::Ipv4Addr::new(100, 64, 0, 0), 10).unwrap_or_default()
    })
}

impl WireguardSettings {
    /// Checks the values; the error names the key (`wireguard.…`).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        AddressPool::new(self.pool).map_err(|e| ("wireguard.pool", e.to_string()))?;
        let name_ok = !self.tun_name.is_empty()
            && self.tun_name.len() < 16
            && self
                .tun_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err((
                "wireguard.tun_name",
                "1-15 characters of A-Z a-z 0-9 - _ .".into(),
            ));
        }
        if self.psk_lifetime < Duration::from_secs(5)
            || self.psk_lifetime > Duration::from_secs(30 * 86400)
        {
            return Err(("wireguard.psk_lifetime", "between 5s and 30 days".into()));
        }
        if self.nat && self.nat_out_interface.is_none() {
            return Err((
                "wireguard.nat_out_interface",
                "required when nat = true".into(),
            ));
        }
        let table_ok = !self.nat_table.is_empty()
            && self.nat_table.len() <= 32
            && self
                .nat_table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !table_ok {
            return Err((
                "wireguard.nat_table",
                "1-32 characters of A-Z a-z 0-9 _".into(),
            ));
        }
        if let Some(ifname) = &self.nat_out_interface {
            let ok = !ifname.is_empty()
                && ifname.len() < 16
                && ifname
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err((
                    "wireguard.nat_out_interface",
                    "an interface name: 1-15 characters of A-Z a-z 0-9 - _ .".into(),
                ));
            }
        }
        if self.handshakes_per_second == 0 {
            return Err((
                "wireguard.handshakes_per_second",
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The pool (checked by [`WireguardSettings::validate`]).
    pub fn address_pool(&self) -> Result<AddressPool, super::pool::PoolError> {
        AddressPool::new(self.pool)
    }

    /// What clients put in `Endpoint =`.
    pub fn client_endpoint(&self, bound: SocketAddr) -> String {
        self.endpoint.clone().unwrap_or_else(|| bound.to_string())
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!("{text:?} is not a duration like \"12h\" ({e})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let s = WireguardSettings::default();
        s.validate().unwrap();
        assert_eq!(s.listen.port(), 51820);
        assert_eq!(s.pool.to_string(), "100.64.0.0/10");
        assert_eq!(s.psk_lifetime, Duration::from_secs(12 * 3600));
    }

    #[test]
    fn bad_values_name_the_key() {
        let s: WireguardSettings = toml::from_str("nat = true\n").unwrap();
        assert_eq!(s.validate().unwrap_err().0, "wireguard.nat_out_interface");
        let s: WireguardSettings = toml::from_str("pool = \"10.0.0.0/30\"\n").unwrap();
        assert_eq!(s.validate().unwrap_err().0, "wireguard.pool");
        let s: WireguardSettings = toml::from_str("tun_name = \"a very long name!\"\n").unwrap();
        assert_eq!(s.validate().unwrap_err().0, "wireguard.tun_name");
        let s: WireguardSettings = toml::from_str("psk_lifetime = \"2s\"\n").unwrap();
        assert_eq!(s.validate().unwrap_err().0, "wireguard.psk_lifetime");
        let e = toml::from_str::<WireguardSettings>("psk_lifetime = \"soon\"\n").unwrap_err();
        assert!(e.to_string().contains("psk_lifetime"), "{e}");
        let e = toml::from_str::<WireguardSettings>("bogus = 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
