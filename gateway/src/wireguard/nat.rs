//! Source NAT for the VPN pool, when `[wireguard] nat = true`: sallyportd turns on IPv4
//! forwarding and loads one nftables table of its own (`nft -f -`, a child process), and
//! deletes that table when it stops. Nothing else in the ruleset is touched.
//!
//! ```text
//! table ip sallyport_vpn {
//!   chain forward     { type filter hook forward priority filter; policy accept;
//!                       iifname "sallyport0" oifname != "eth1" drop }
//!   chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//!                       ip saddr 100.64.0.0/10 oifname "eth1" masquerade }
//! }
//! ```

use std::io::Write;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

/// Why NAT could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatError {
    /// `nft` could not be run or refused the rules.
    #[error("nft failed: {0}")]
    Nft(String),
    /// Forwarding could not be turned on.
    #[error("cannot enable IPv4 forwarding: {0}")]
    Forwarding(std::io::Error),
}

/// The NAT rules sallyportd installed; removed on [`Nat::remove`].
#[derive(Debug)]
pub struct Nat {
    table: String,
}

/// The ruleset text (pure; the names are validated by the settings).
pub fn ruleset(table: &str, tun: &str, out_if: &str, pool: Ipv4Net) -> String {
    format!(
        "table ip {table} {{\n\
         \x20 chain forward {{ type filter hook forward priority filter; policy accept;\n\
         \x20   iifname \"{tun}\" oifname != \"{out_if}\" drop\n\
         \x20 }}\n\
         \x20 chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;\n\
         \x20   ip saddr {pool} oifname \"{out_if}\" masquerade\n\
         \x20 }}\n\
         }}\n"
    )
}

impl Nat {
    /// Enables forwarding and loads the table (replacing a leftover one of the same name).
    pub fn install(table: &str, tun: &str, out_if: &str, pool: Ipv4Net) -> Result<Self, NatError> {
        enable_forwarding()?;
        // A table left by a crashed run: delete it first (an error just means there was none).
        let _ = nft(&format!("delete table ip {table}\n"));
        nft(&ruleset(table, tun, out_if, pool))?;
        Ok(Self {
            table: table.to_owned(),
        })
    }

    /// Deletes the table.
    pub fn remove(self) {
        if let Err(e) = nft(&format!("delete table ip {}\n", self.table)) {
            tracing::warn!(cause = %e, table = %self.table, "could not remove the VPN NAT table");
        }
    }
}

/// Turns IPv4 forwarding on, unless it already is: under the packaged unit
/// (`ProtectKernelTunables=yes`) `/proc/sys` is read-only, and the host (user data, sysctl.d)
/// turns forwarding on before the service starts.
fn enable_forwarding() -> Result<(), NatError> {
    const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(PATH).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(PATH, b"1").map_err(NatError::Forwarding)
}

fn nft(script: &str) -> Result<(), NatError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NatError::Nft(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NatError::Nft(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NatError::Nft(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NatError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_names_only_its_own_table() {
        let r = ruleset("sp_t", "sp0", "eth1", "100.64.0.0/10".parse().unwrap());
        assert!(r.starts_with("table ip sp_t {"));
        assert!(r.contains("ip saddr 100.64.0.0/10 oifname \"eth1\" masquerade"));
        assert!(r.contains("iifname \"sp0\" oifname != \"eth1\" drop"));
    }
}
