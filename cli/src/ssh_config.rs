//! `sallyport ssh-config`, the pure part: what the gateway says about itself, the caller's
//! grants and the target registry go in; an OpenSSH client configuration comes out, as text
//! for `~/.ssh/config` or as a JSON view. No I/O here; `commands::ssh_config` fetches.
//!
//! ```text
//!  GET /v1/whoami  ─┐
//!  GET /v1/gateway ─┤                    ┌─▶ render ─▶ Host blocks for ~/.ssh/config
//!  GET /v1/grants  ─┼─▶ Plan::build ─────┤
//!  GET /v1/targets ─┘   (active, ssh)    └─▶ serde ──▶ -o json
//! ```
//!
//! What is written:
//!
//! - one `Host` block for the gateway (HostName and Port of its SSH listener, `User` = the
//!   caller, `HostKeyAlias` = the alias so its known_hosts line does not depend on the address,
//!   `StrictHostKeyChecking yes`, `IdentitiesOnly yes`, no agent or X11 forwarding: in jump
//!   mode the gateway needs neither, and refuses both);
//! - one `Host` block per granted target (`HostName` = the target's *name*, which the gateway
//!   resolves from its registry, never by DNS; `Port` = the target's registered port;
//!   `ProxyJump` = the gateway alias);
//! - for a CIDR grant, a comment showing `ssh -J ALIAS ADDRESS` and a commented-out `Host`
//!   pattern the engineer may enable;
//! - a header with the known_hosts lines for the gateway and for targets with a pinned key.
//!
//! Every value written into the file is a validated type or is parsed again here (the
//! gateway's address and host keys), so an answer from the gateway cannot smuggle a directive
//! into the engineer's ssh configuration.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use sallyport_core::api::{GatewayView, GrantView, TargetView};
use sallyport_core::model::{
    Fingerprint, GrantId, GrantObject, GrantStatus, Host, Login, PortSpec, Protocol, SshPublicKey,
    TargetAddress, TargetName, UserName,
};
use sallyport_core::time::Timestamp;
use serde::Serialize;

/// The SSH port OpenSSH assumes.
const SSH_PORT: u16 = 22;

/// A name for the gateway in `~/.ssh/config`: `Host NAME`, used in every `ProxyJump`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HostAlias(String);

impl HostAlias {
    /// The alias.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HostAlias {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const RULE: &str = "1-63 characters of A-Z a-z 0-9 . _ -, not starting with - \
                            (no spaces or ssh_config pattern characters)";
        let ok = !s.is_empty()
            && s.len() <= 63
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(RULE.to_owned())
        }
    }
}

/// What went into a plan that cannot be turned into a configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// The gateway's `ssh_listen` is not `HOST:PORT`.
    #[error("the gateway's ssh_listen is not HOST:PORT: {0}")]
    Address(String),
    /// The gateway listens on every address and the API URL names no usable host instead.
    #[error("the gateway's SSH listener is on an unspecified address and the API URL has no host to use instead")]
    NoHost,
    /// The gateway's host key is not one allowed OpenSSH public key line.
    #[error("the gateway's host key is not usable: {0}")]
    HostKey(String),
    /// The host key and the fingerprint the gateway sent do not match.
    #[error("the gateway's host key has fingerprint {actual}, but the gateway says {claimed}")]
    FingerprintMismatch {
        /// Computed from the key.
        actual: Fingerprint,
        /// As sent.
        claimed: Fingerprint,
    },
    /// A granted target has the gateway alias as its name; the two `Host` blocks would merge.
    #[error(
        "target {0:?} has the same name as the gateway alias; choose another with --gateway-alias"
    )]
    AliasCollision(String),
}

/// Everything a plan is built from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// `Host` name for the gateway.
    pub alias: &'a HostAlias,
    /// Who is asking (the gateway's `User`).
    pub caller: &'a UserName,
    /// `GET /v1/gateway`.
    pub gateway: &'a GatewayView,
    /// The API URL's host, used when the SSH listener's address is unspecified.
    pub api_host: Option<&'a str>,
    /// The grants that reach the caller (own and through groups).
    pub grants: &'a [GrantView],
    /// The target registry.
    pub targets: &'a [TargetView],
    /// `User` for the targets, if given.
    pub login: Option<&'a Login>,
    /// `IdentityFile` for the gateway, if given (checked by [`identity_file`]).
    pub identity_file: Option<&'a str>,
}

/// The configuration to write, before rendering. `-o json` prints this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The gateway's own entry.
    pub gateway: GatewayEntry,
    /// One per granted target, by name.
    pub targets: Vec<TargetEntry>,
    /// One per granted network, in address order.
    pub networks: Vec<NetworkEntry>,
    /// Granted target names that are not in the registry (the gateway would refuse them).
    pub unregistered: Vec<TargetName>,
}

/// `Host ALIAS` for the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayEntry {
    /// `Host`.
    pub alias: HostAlias,
    /// `HostName`: an IP address (no brackets) or a DNS name.
    pub host_name: String,
    /// `Port`.
    pub port: u16,
    /// `User`: the caller.
    pub user: UserName,
    /// `IdentityFile`, if given.
    pub identity_file: Option<String>,
    /// The host key, `ALGORITHM BASE64`.
    pub host_key: String,
    /// Its fingerprint.
    pub host_key_fingerprint: Fingerprint,
    /// The line to add to `~/.ssh/known_hosts` (keyed by the alias, see `HostKeyAlias`).
    pub known_hosts: String,
}

/// `Host NAME` for a granted target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetEntry {
    /// `Host` and `HostName` (the gateway resolves it).
    pub name: TargetName,
    /// Where the gateway connects, as registered.
    pub address: TargetAddress,
    /// `Port`: the registered port.
    pub port: u16,
    /// Whether a grant covers `port`; if not, only the ports below are open, for `ssh -L`.
    pub ssh_port_granted: bool,
    /// `User`, if `--user` was given.
    pub user: Option<Login>,
    /// The granted ports, one spec per grant.
    pub ports: Vec<PortSpec>,
    /// The grants, in id order.
    pub grants: Vec<GrantId>,
    /// When the last of them ends.
    pub expires_at: Timestamp,
    /// The known_hosts line for its pinned host key, if one is pinned.
    pub known_hosts: Option<String>,
}

/// A granted network (CIDR): no `Host` block, a comment and a commented-out pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkEntry {
    /// The network.
    pub cidr: String,
    /// The port `ssh` should use: 22 if granted, else the lowest granted port.
    pub port: u16,
    /// The granted ports, one spec per grant.
    pub ports: Vec<PortSpec>,
    /// An ssh_config `Host` pattern matching exactly the network, when one exists
    /// (IPv4 /8, /16, /24, /32; IPv6 /128).
    pub host_pattern: Option<String>,
    /// An address in it, for the example.
    pub example: String,
    /// The login for the example, if `--user` was given.
    pub user: Option<Login>,
    /// The grants, in id order.
    pub grants: Vec<GrantId>,
    /// When the last of them ends.
    pub expires_at: Timestamp,
}

impl Plan {
    /// Builds the plan: active grants with protocol `ssh`, joined with the registry.
    pub fn build(input: Inputs<'_>) -> Result<Self, PlanError> {
        let gateway = gateway_entry(&input)?;
        let registry: BTreeMap<&TargetName, &TargetView> =
            input.targets.iter().map(|t| (&t.id, t)).collect();

        let mut by_target: BTreeMap<TargetName, Vec<&GrantView>> = BTreeMap::new();
        let mut by_network: BTreeMap<(IpAddr, u8), Vec<&GrantView>> = BTreeMap::new();
        for g in input.grants.iter().filter(|g| usable(g)) {
            match &g.object {
                GrantObject::Target(name) => by_target.entry(name.clone()).or_default().push(g),
                GrantObject::Cidr(net) => by_network
                    .entry((net.network(), net.prefix_len()))
                    .or_default()
                    .push(g),
            }
        }

        let mut targets = Vec::new();
        let mut unregistered = Vec::new();
        for (name, grants) in by_target {
            if name.as_str() == input.alias.as_str() {
                return Err(PlanError::AliasCollision(name.to_string()));
            }
            let Some(target) = registry.get(&name) else {
                unregistered.push(name);
                continue;
            };
            targets.push(target_entry(target, &grants, input.login));
        }
        let networks = by_network
            .into_values()
            .filter_map(|grants| network_entry(&grants, input.login))
            .collect();
        Ok(Self {
            gateway,
            targets,
            networks,
            unregistered,
        })
    }
}

/// Active now and for `ssh` (jump mode).
fn usable(g: &GrantView) -> bool {
    g.status == GrantStatus::Active && g.protocols.contains(&Protocol::Ssh)
}

fn gateway_entry(input: &Inputs<'_>) -> Result<GatewayEntry, PlanError> {
    let info = input.gateway;
    let address: TargetAddress = info
        .ssh_listen
        .parse()
        .map_err(|e: sallyport_core::model::ModelError| PlanError::Address(e.to_string()))?;
    let host_name = match &address.host {
        Host::Ip(ip) if ip.is_unspecified() => api_host(input.api_host)?,
        Host::Ip(ip) => ip.to_string(),
        Host::Dns(name) => name.clone(),
    };
    let key =
        SshPublicKey::parse(&info.ssh_host_key).map_err(|e| PlanError::HostKey(e.to_string()))?;
    if *key.fingerprint() != info.ssh_host_key_fingerprint {
        return Err(PlanError::FingerprintMismatch {
            actual: key.fingerprint().clone(),
            claimed: info.ssh_host_key_fingerprint.clone(),
        });
    }
    let host_key = bare_key(&key);
    Ok(GatewayEntry {
        known_hosts: format!("{} {host_key}", input.alias.as_str()),
        alias: input.alias.clone(),
        host_name,
        port: address.port,
        user: input.caller.clone(),
        identity_file: input.identity_file.map(str::to_owned),
        host_key,
        host_key_fingerprint: key.fingerprint().clone(),
    })
}

/// The API URL's host as a `HostName`: an IP literal without brackets, or a DNS name.
fn api_host(host: Option<&str>) -> Result<String, PlanError> {
    let host = host.ok_or(PlanError::NoHost)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if ip.is_unspecified() {
            return Err(PlanError::NoHost);
        }
        return Ok(ip.to_string());
    }
    // Checked like any registered host name, so nothing but a DNS name gets through.
    match format!("{bare}:{SSH_PORT}").parse::<TargetAddress>() {
        Ok(TargetAddress {
            host: Host::Dns(name),
            ..
        }) => Ok(name),
        _ => Err(PlanError::NoHost),
    }
}

/// `ALGORITHM BASE64`, without the comment (which is free text).
fn bare_key(key: &SshPublicKey) -> String {
    let line = key.to_openssh();
    let mut fields = line.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(algorithm), Some(base64)) => format!("{algorithm} {base64}"),
        _ => line.clone(),
    }
}

/// Checks an `--identity-file` path: ssh_config can hold it (in quotes if it has spaces).
pub fn identity_file(text: &str) -> Result<String, String> {
    if text.is_empty()
        || text.starts_with('-')
        || text.contains('"')
        || text.chars().any(char::is_control)
    {
        return Err(
            "expected a path without quotes or control characters, not starting with -".into(),
        );
    }
    Ok(text.to_owned())
}

/// An `IdentityFile` argument: quoted if it has spaces.
fn quoted(path: &str) -> String {
    if path.contains(char::is_whitespace) {
        format!("\"{path}\"")
    } else {
        path.to_owned()
    }
}

fn target_entry(target: &TargetView, grants: &[&GrantView], login: Option<&Login>) -> TargetEntry {
    let port = target.address.port;
    let known_hosts = target
        .host_key
        .as_deref()
        .and_then(|k| SshPublicKey::parse(k).ok())
        .map(|key| {
            let host = if port == SSH_PORT {
                target.id.to_string()
            } else {
                format!("[{}]:{port}", target.id)
            };
            format!("{host} {}", bare_key(&key))
        });
    let (ports, ids, expires_at) = summary(grants);
    TargetEntry {
        name: target.id.clone(),
        address: target.address.clone(),
        port,
        ssh_port_granted: grants.iter().any(|g| g.ports.contains(port)),
        user: login.cloned(),
        ports,
        grants: ids,
        expires_at,
        known_hosts,
    }
}

fn network_entry(grants: &[&GrantView], login: Option<&Login>) -> Option<NetworkEntry> {
    let first = grants.first()?;
    let GrantObject::Cidr(net) = &first.object else {
        return None;
    };
    let port = if grants.iter().any(|g| g.ports.contains(SSH_PORT)) {
        SSH_PORT
    } else {
        grants
            .iter()
            .filter_map(|g| g.ports.ranges().first().map(|r| r.first()))
            .min()
            .unwrap_or(SSH_PORT)
    };
    let example = net
        .hosts()
        .next()
        .unwrap_or_else(|| net.network())
        .to_string();
    let (ports, ids, expires_at) = summary(grants);
    Some(NetworkEntry {
        cidr: net.to_string(),
        port,
        ports,
        host_pattern: host_pattern(net.network(), net.prefix_len()),
        example,
        user: login.cloned(),
        grants: ids,
        expires_at,
    })
}

/// Ports per grant, grant ids in order, and the latest end.
fn summary(grants: &[&GrantView]) -> (Vec<PortSpec>, Vec<GrantId>, Timestamp) {
    let mut sorted: Vec<&&GrantView> = grants.iter().collect();
    sorted.sort_by_key(|g| g.id);
    let mut ports: Vec<PortSpec> = Vec::new();
    for g in &sorted {
        if !ports.contains(&g.ports) {
            ports.push(g.ports.clone());
        }
    }
    let ids = sorted.iter().map(|g| g.id).collect();
    let expires_at = sorted
        .iter()
        .map(|g| g.expires_at)
        .max()
        .unwrap_or(Timestamp::from_millis(0));
    (ports, ids, expires_at)
}

/// `10.0.12.*` for 10.0.12.0/24 and the like; `None` when no ssh_config pattern is exact.
fn host_pattern(network: IpAddr, prefix: u8) -> Option<String> {
    match network {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let kept: Vec<String> = o.iter().map(u8::to_string).collect();
            match prefix {
                32 => Some(v4.to_string()),
                24 | 16 | 8 => {
                    let n = usize::from(prefix / 8);
                    Some(format!("{}.*", kept.get(..n)?.join(".")))
                }
                _ => None,
            }
        }
        IpAddr::V6(v6) => (prefix == 128).then(|| v6.to_string()),
    }
}

/// The configuration text. `generated_at` and `api` only go into the header comment.
pub fn render(plan: &Plan, generated_at: Timestamp, api: &str) -> String {
    let gw = &plan.gateway;
    let alias = gw.alias.as_str();
    let mut out = String::new();
    let mut line = |text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(&format!(
        "# sallyport ssh-config for {} from {api} at {generated_at}.",
        gw.user
    ));
    line("# Grants expire: run it again when yours change.");
    line("#");
    line("# Add these lines to ~/.ssh/known_hosts (host keys as the gateway's API reports them):");
    line(&format!("#   {}", gw.known_hosts));
    for t in &plan.targets {
        if let Some(k) = &t.known_hosts {
            line(&format!("#   {k}"));
        }
    }
    line(&format!(
        "# The gateway's host key fingerprint is {}.",
        gw.host_key_fingerprint
    ));
    let unpinned: Vec<String> = plan
        .targets
        .iter()
        .filter(|t| t.known_hosts.is_none())
        .map(|t| t.name.to_string())
        .collect();
    if !unpinned.is_empty() {
        line(&format!(
            "# No host key is pinned at the gateway for {}: check it with the host's owner.",
            unpinned.join(", ")
        ));
    }
    line("");

    line(&format!(
        "# The gateway (jump mode): `ssh -J {alias} HOST`, or ProxyJump as below."
    ));
    line(&format!("Host {alias}"));
    line(&format!("    HostName {}", gw.host_name));
    line(&format!("    Port {}", gw.port));
    line(&format!("    User {}", gw.user));
    line(&format!("    HostKeyAlias {alias}"));
    line("    StrictHostKeyChecking yes");
    if let Some(path) = &gw.identity_file {
        line(&format!("    IdentityFile {}", quoted(path)));
    }
    line("    IdentitiesOnly yes");
    line("    ForwardAgent no");
    line("    ForwardX11 no");

    for t in &plan.targets {
        line("");
        let grants = ids(&t.grants);
        if t.ssh_port_granted {
            line(&format!(
                "# {} ({}): {grants}, until {}.",
                t.name, t.address, t.expires_at
            ));
            line(&format!("Host {}", t.name));
            line(&format!("    HostName {}", t.name));
            line(&format!("    Port {}", t.port));
            if let Some(user) = &t.user {
                line(&format!("    User {user}"));
            }
            line(&format!("    ProxyJump {alias}"));
        } else {
            let port = t
                .ports
                .first()
                .and_then(|p| p.ranges().first())
                .map_or(t.port, |r| r.first());
            line(&format!(
                "# {} ({}): {grants}, until {}, covers ports {} but not its SSH port {}.",
                t.name,
                t.address,
                t.expires_at,
                joined(&t.ports),
                t.port
            ));
            line(&format!(
                "#   Forward one instead: ssh -N -L {port}:{}:{port} {alias}",
                t.name
            ));
        }
    }

    for n in &plan.networks {
        line("");
        let port = if n.port == SSH_PORT {
            String::new()
        } else {
            format!(" -p {}", n.port)
        };
        let at = n
            .user
            .as_ref()
            .map_or_else(String::new, |u| format!("{u}@"));
        line(&format!(
            "# {} (ports {}): {}, until {}.",
            n.cidr,
            joined(&n.ports),
            ids(&n.grants),
            n.expires_at
        ));
        line(&format!(
            "# Any address in it, through the gateway: ssh -J {alias}{port} {at}{}",
            n.example
        ));
        if let Some(pattern) = &n.host_pattern {
            line("# or uncomment to send every address in it through the gateway:");
            line(&format!("# Host {pattern}"));
            line(&format!("#     ProxyJump {alias}"));
        }
    }

    if !plan.unregistered.is_empty() {
        line("");
        let names: Vec<String> = plan.unregistered.iter().map(ToString::to_string).collect();
        line(&format!(
            "# Granted but not registered as targets (the gateway refuses them): {}.",
            names.join(", ")
        ));
    }
    if plan.targets.is_empty() && plan.networks.is_empty() {
        line("");
        line("# No active ssh grant reaches you; ask an admin for one.");
    }
    out
}

fn ids(grants: &[GrantId]) -> String {
    let list: Vec<String> = grants.iter().map(ToString::to_string).collect();
    match list.as_slice() {
        [one] => format!("grant {one}"),
        _ => format!("grants {}", list.join(", ")),
    }
}

fn joined(ports: &[PortSpec]) -> String {
    let list: Vec<String> = ports.iter().map(ToString::to_string).collect();
    list.join(" ")
}

#[cfg(test)]
#[path = "ssh_config_tests.rs"]
mod tests;
