//! The command-line grammar (clap derive).
//!
//! Arguments are parsed into the core's validated types here, so a bad user name, CIDR, port
//! spec or key fails locally with a message naming the problem (exit 2) before any request.
//!
//! `grant` is both a verb and a group: `grant USER TARGET …` creates a grant, while
//! `grant list` and `grant show ID` are subcommands. Clap is told that positional values
//! matching a subcommand name select the subcommand, so a subject literally named `list` or
//! `show` must be written after `--`: `sallyport grant --reason … -- list db-1`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use reqwest::Url;
use sallyport_core::model::{
    Fingerprint, GrantId, GrantObject, GroupName, Login, PortSpec, ProtocolSet, Reason, Role,
    Subject, TargetAddress, TargetName, UserName,
};
use sallyport_core::secret::Secret;
use sallyport_core::time::Timestamp;

use crate::error::EXIT_CODES_HELP;
use crate::output::Format;
use crate::parse::{self, Since};
use crate::ssh_config::HostAlias;

const GRANT_HELP: &str = "\
Examples:
  sallyport grant alice db-1 --for 2h --reason INC-42          prints the new grant's id
  sallyport grant @dba 10.0.12.0/24 --proto tcp --ports 5432 --reason CHG-7
  sallyport grant list --user alice
  sallyport grant show 6f1c0b7e-93a4-4a43-9d3f-6c1b3f7a2e10

A user or target named `list` or `show` goes after `--`:
  sallyport grant --reason INC-42 -- list db-1";

const SSH_CONFIG_HELP: &str = "\
Examples:
  sallyport ssh-config >> ~/.ssh/config       then: ssh db-1
  sallyport ssh-config --user ubuntu --gateway-alias gw-prod
  sallyport ssh-config -o json

Add the known_hosts lines printed at the top to ~/.ssh/known_hosts: the gateway's block sets
StrictHostKeyChecking yes. Run it again when your grants change.";

const LOGIN_HELP: &str = "\
Examples:
  sallyport login                      as $USER, with the first registered key in ssh-agent
  sallyport login --user alice --key ~/.ssh/id_ed25519.pub
  sallyport login --no-certificate     token only (admins, auditors)

Needs SSH_AUTH_SOCK (an agent holding a key registered to you) and, for the certificate, a
running sallyport-agent (SALLYPORT_AGENT_SOCK, or its default socket). The token is saved in
~/.config/sallyport/profile.toml (SALLYPORT_PROFILE), mode 0600; later commands use it.";

/// `sallyport login`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Your sallyport user name (default: $USER).
    #[arg(long, env = "SALLYPORT_USER", value_name = "USER")]
    pub user: Option<UserName>,
    /// The agent key to sign with: its fingerprint (SHA256:…) or its .pub file (default: the
    /// first key the agent lists that is registered to you).
    #[arg(long, value_name = "FINGERPRINT|PUBFILE")]
    pub key: Option<String>,
    /// Only get an API token; no SSH certificate.
    #[arg(long)]
    pub no_certificate: bool,
}

/// sallyport: manage and audit access through a sallyport gateway.
#[derive(Debug, Parser)]
#[command(name = "sallyport", version, propagate_version = true, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Options valid before or after any verb.
    #[command(flatten)]
    pub global: GlobalOpts,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// Connection and output options.
#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// Output format.
    #[arg(short = 'o', long, global = true, help_heading = "Global options", value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// The gateway's API URL, e.g. https://gateway.example.com:8443.
    #[arg(long, global = true, help_heading = "Global options", env = "SALLYPORT_GATEWAY", value_name = "URL", value_parser = parse::gateway_url)]
    pub gateway: Option<Url>,
    /// API token (visible to other local users in the process list; prefer SALLYPORT_TOKEN or
    /// --token-file).
    #[arg(long, global = true, help_heading = "Global options", env = "SALLYPORT_TOKEN", hide_env_values = true, value_name = "TOKEN",
          value_parser = parse::token)]
    pub token: Option<Secret<String>>,
    /// Read the API token from this file (takes precedence over --token and SALLYPORT_TOKEN).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "PATH"
    )]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA that signed the gateway's certificate; exactly this CA is trusted.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "SALLYPORT_CA_CERT",
        value_name = "PATH"
    )]
    pub ca_cert: Option<PathBuf>,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage users (admin).
    #[command(subcommand)]
    User(UserCmd),
    /// Manage users' SSH public keys (admin).
    #[command(subcommand)]
    Key(KeyCmd),
    /// Show groups and their members (admin).
    #[command(subcommand)]
    Group(GroupCmd),
    /// Manage targets (admin).
    #[command(subcommand)]
    Target(TargetCmd),
    /// Grant access (`grant USER|@GROUP TARGET|CIDR --reason …`), or `grant list` / `grant show`.
    #[command(after_help = GRANT_HELP)]
    Grant(GrantCmd),
    /// Revoke a grant (admin).
    Revoke {
        /// The grant's id.
        grant: GrantId,
    },
    /// Search and verify the audit journal (auditor).
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Issue API tokens (admin).
    #[command(subcommand)]
    Token(TokenCmd),
    /// List SSH sessions, replay and export their recordings (auditor).
    #[command(subcommand, after_help = SESSION_HELP)]
    Session(SessionCmd),
    /// Show who the token belongs to.
    Whoami,
    /// Log in with a key from your SSH agent: saves an API token, and puts a short-lived SSH
    /// certificate for your grants' logins into sallyport-agent.
    #[command(after_help = LOGIN_HELP)]
    Login(LoginArgs),
    /// Print the gateway's SSH user CA public key (for targets' TrustedUserCAKeys).
    #[command(name = "ssh-ca")]
    SshCa,
    /// Print a ~/.ssh/config block for the targets you may reach through the gateway.
    #[command(name = "ssh-config", after_help = SSH_CONFIG_HELP)]
    SshConfig(SshConfigArgs),
    /// Your WireGuard devices: enroll one (a key pair made here), renew its preshared key.
    #[command(subcommand)]
    Vpn(VpnCmd),
    /// WireGuard devices: list, revoke (admin; engineers their own).
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `sallyport user …`
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user.
    Add {
        /// The new user's name.
        name: UserName,
        /// A role (admin, engineer, auditor); repeat or separate with commas.
        #[arg(
            long = "role",
            value_name = "ROLE",
            required = true,
            value_delimiter = ','
        )]
        roles: Vec<Role>,
        /// A group to put the user in; repeat or separate with commas.
        #[arg(long = "group", value_name = "GROUP", value_delimiter = ',')]
        groups: Vec<GroupName>,
    },
    /// List users.
    List,
    /// Show one user.
    Show {
        /// The user.
        name: UserName,
    },
    /// Disable a user: refused everywhere, live sessions cut.
    Disable {
        /// The user.
        name: UserName,
    },
    /// Enable a disabled user.
    Enable {
        /// The user.
        name: UserName,
    },
    /// Set a user's groups (replaces them; no --group removes all).
    Groups {
        /// The user.
        name: UserName,
        /// A group; repeat or separate with commas.
        #[arg(long = "group", value_name = "GROUP", value_delimiter = ',')]
        groups: Vec<GroupName>,
    },
}

/// `sallyport key …`
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Register an SSH public key for a user.
    #[command(group(ArgGroup::new("key").required(true).args(["public_key", "file"])))]
    Add {
        /// The key's owner.
        user: UserName,
        /// The public key as one argument: "ssh-ed25519 AAAA… comment".
        #[arg(value_name = "PUBKEY", value_parser = parse::public_key)]
        public_key: Option<String>,
        /// Read the public key from this file (e.g. ~/.ssh/id_ed25519.pub).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// List keys, of one user or of everyone.
    List {
        /// Only this user's keys.
        user: Option<UserName>,
    },
    /// Remove a key by fingerprint.
    Remove {
        /// SHA256:… as `ssh-keygen -lf` prints it.
        #[arg(value_parser = parse::fingerprint)]
        fingerprint: Fingerprint,
    },
}

/// `sallyport group …`
#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// List groups and their members.
    List,
}

/// `sallyport target …`
#[derive(Debug, Subcommand)]
pub enum TargetCmd {
    /// Add a target.
    Add {
        /// The target's name.
        name: TargetName,
        /// HOST:PORT of its SSH server ([IPv6]:PORT for IPv6).
        #[arg(long, value_name = "HOST:PORT")]
        address: TargetAddress,
        /// Pin its SSH host key: one OpenSSH public key line.
        #[arg(long, value_name = "KEY", value_parser = parse::public_key, conflicts_with = "host_key_file")]
        host_key: Option<String>,
        /// Pin its SSH host key, read from this file (e.g. ssh_host_ed25519_key.pub).
        #[arg(long, value_name = "PATH")]
        host_key_file: Option<PathBuf>,
    },
    /// List targets.
    List,
    /// Remove a target.
    Remove {
        /// The target.
        name: TargetName,
    },
}

/// `sallyport grant …`: creates a grant from the positional form, or runs a subcommand.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct GrantCmd {
    /// `list` or `show`.
    #[command(subcommand)]
    pub action: Option<GrantAction>,
    /// The grant to create.
    #[command(flatten)]
    pub create: Option<GrantCreate>,
}

/// `sallyport grant list|show`
#[derive(Debug, Subcommand)]
pub enum GrantAction {
    /// List grants (engineers see their own).
    List {
        /// Only grants that reach this user.
        #[arg(long)]
        user: Option<UserName>,
    },
    /// Show one grant.
    Show {
        /// The grant's id.
        id: GrantId,
    },
}

/// `sallyport grant USER|@GROUP TARGET|CIDR …`
#[derive(Debug, Args)]
pub struct GrantCreate {
    /// Who: a user, or @group.
    #[arg(value_name = "USER|@GROUP")]
    pub subject: Subject,
    /// What: a target name, or a CIDR (10.0.12.0/24).
    #[arg(value_name = "TARGET|CIDR")]
    pub object: GrantObject,
    /// Protocols, comma-separated: ssh, ssh-proxy, tcp, udp, icmp (default ssh).
    #[arg(long = "proto", value_name = "P,...")]
    pub protocols: Option<ProtocolSet>,
    /// Ports: 22, 8000-8100, 22,443, or all (default: the target's port, or 22).
    #[arg(long, value_name = "SPEC")]
    pub ports: Option<PortSpec>,
    /// A remote login for ssh-proxy; repeat for several.
    #[arg(long = "login", value_name = "LOGIN")]
    pub logins: Vec<Login>,
    /// Let proxy mode forward the engineer's agent on to the target, and certificates from
    /// `sallyport login` carry permit-agent-forwarding.
    #[arg(long)]
    pub allow_agent_forwarding: bool,
    /// Let certificates from `sallyport login` carry permit-port-forwarding.
    #[arg(long)]
    pub allow_port_forwarding: bool,
    /// How long from the start: 30m, 8h, 2d (default: the gateway's, 8h).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse::duration, conflicts_with = "until")]
    pub duration: Option<Duration>,
    /// End, RFC 3339 (e.g. 2026-01-31T17:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub until: Option<Timestamp>,
    /// Start, RFC 3339 (default now).
    #[arg(long, value_name = "TIME")]
    pub from: Option<Timestamp>,
    /// Why (ticket, incident); recorded in the audit journal.
    #[arg(long)]
    pub reason: Reason,
}

/// `sallyport audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Search the journal, oldest first.
    Search(AuditSearch),
    /// Show the newest events; with -f, keep printing new ones as they are journaled.
    Tail(AuditTail),
    /// Write a run of the journal as JSON lines with its hash-chain anchors (verifiable offline
    /// with `audit verify --file`).
    Export(AuditExport),
    /// Verify every hash chain of the journal on the gateway (one line per chain, exit 8 if one
    /// is broken), or an export file offline (--file).
    Verify {
        /// An export file to check offline (no gateway needed).
        #[arg(long, value_name = "EXPORT")]
        file: Option<PathBuf>,
    },
    /// How far each audit sink (CloudWatch Logs, stdout) is behind the journal.
    Backlog,
}

/// `sallyport audit tail`
#[derive(Debug, Args)]
pub struct AuditTail {
    /// How many of the newest events to show first.
    #[arg(short = 'n', long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub lines: u32,
    /// Keep printing new events (Ctrl-C to stop). With -o json, one JSON object per line.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

/// `sallyport audit export`
#[derive(Debug, Args)]
pub struct AuditExport {
    /// Per chain, from its first record at or after this time: a duration ago (24h, 7d) or
    /// RFC 3339. Default: the start of each chain.
    #[arg(long, value_name = "DURATION|TIME", value_parser = parse::since)]
    pub since: Option<Since>,
    /// Per chain, up to the last record before its first one at or after this time (RFC 3339).
    /// Default: each chain's head now.
    #[arg(long, value_name = "TIME")]
    pub until: Option<Timestamp>,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

/// `sallyport audit search`
#[derive(Debug, Args)]
pub struct AuditSearch {
    /// Events by or about this user.
    #[arg(long, value_parser = parse::filter)]
    pub user: Option<String>,
    /// Events of this type (access.grant.create) or prefix (access.grant).
    #[arg(long = "type", value_name = "TYPE", value_parser = parse::filter)]
    pub event_type: Option<String>,
    /// Events about this target.
    #[arg(long, value_parser = parse::filter)]
    pub target: Option<String>,
    /// Events of this session.
    #[arg(long, value_parser = parse::filter)]
    pub session: Option<String>,
    /// Events of this hash chain: a gateway instance, or `(shared)` for the records from
    /// before per-instance chains (as the CHAIN column shows them).
    #[arg(long, value_name = "INSTANCE|(shared)", value_parser = parse::chain)]
    pub chain: Option<String>,
    /// From: a duration ago (1h, 2d) or an RFC 3339 time.
    #[arg(long, value_name = "DURATION|TIME", value_parser = parse::since)]
    pub since: Option<Since>,
    /// Until (exclusive), RFC 3339.
    #[arg(long, value_name = "TIME")]
    pub until: Option<Timestamp>,
    /// At most this many events.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit: u32,
}

/// `sallyport ssh-config`
#[derive(Debug, Args)]
pub struct SshConfigArgs {
    /// The Host name for the gateway itself, used in every ProxyJump.
    #[arg(long, value_name = "NAME", default_value = "sallyport")]
    pub gateway_alias: HostAlias,
    /// The login on the targets (User in each target's block; default: ssh's, your local name).
    #[arg(long, value_name = "LOGIN")]
    pub user: Option<Login>,
    /// The key to offer the gateway (IdentityFile; a .pub whose private half is in your agent
    /// works too). Without it, ssh offers its default key files only (IdentitiesOnly).
    #[arg(long, value_name = "PATH", value_parser = crate::ssh_config::identity_file)]
    pub identity_file: Option<String>,
}

/// `sallyport vpn …`
#[derive(Debug, Subcommand)]
pub enum VpnCmd {
    /// Enroll this device: make a WireGuard key pair in memory, register its public key, and
    /// write (or print) a wg-quick file.
    Enroll {
        /// A name for the device (default `device`).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Write the wg-quick file here (mode 0600) instead of printing it.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Also print the file as a terminal QR code (for the mobile apps).
        #[arg(long)]
        qr: bool,
    },
    /// Renew a device's preshared key (a new one; the old stops working).
    Refresh {
        /// The device id (default: the one named in --file).
        device: Option<String>,
        /// A wg-quick file from `vpn enroll` to update in place.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
}

/// `sallyport device …`
#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// List devices (admins and auditors: everyone's, or one user's).
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a device: its tunnel stops at once.
    Revoke {
        /// The device id.
        id: String,
    },
}

/// `sallyport token …`
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue an API token for a user; prints the token once.
    Issue {
        /// For whom.
        user: UserName,
        /// Lifetime (default 1h, at most 24h).
        #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
        ttl: Option<Duration>,
    },
}

const SESSION_HELP: &str = "\
Examples:
  sallyport session list --live
  sallyport session list --user alice --since 24h -o json
  sallyport session play 6f1c0b7e-93a4-4a43-9d3f-6c1b3f7a2e10 --speed 2 --idle-limit 2s
  sallyport session export 6f1c0b7e-93a4-4a43-9d3f-6c1b3f7a2e10 --out rec.cast
                                                    then: asciinema play rec.cast
  sallyport session kill 6f1c0b7e-93a4-4a43-9d3f-6c1b3f7a2e10";

/// `sallyport session …`
#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// List SSH sessions, newest first.
    List(SessionList),
    /// Show one session and its recorded channels.
    Show {
        /// The session id (the `session` field of its audit events).
        #[arg(value_parser = parse::session_id)]
        id: String,
    },
    /// Replay a recording in this terminal with its timing.
    Play(SessionPlay),
    /// Write a recording as an asciicast v2 file, for asciinema and other players.
    Export(SessionExport),
    /// End a live session on whichever gateway runs it (admin).
    Kill {
        /// The session id (the `session` field of its audit events).
        #[arg(value_parser = parse::session_id)]
        id: String,
    },
}

/// `sallyport session list`
#[derive(Debug, Args)]
pub struct SessionList {
    /// Only sessions still running.
    #[arg(long, conflicts_with = "ended")]
    pub live: bool,
    /// Only sessions that ended.
    #[arg(long)]
    pub ended: bool,
    /// Only this user's sessions.
    #[arg(long)]
    pub user: Option<UserName>,
    /// Only proxy sessions to this target.
    #[arg(long)]
    pub target: Option<TargetName>,
    /// Started since: a duration ago (1h, 2d) or an RFC 3339 time.
    #[arg(long, value_name = "DURATION|TIME", value_parser = parse::since)]
    pub since: Option<Since>,
    /// At most this many.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
}

/// `sallyport session play`
#[derive(Debug, Args)]
pub struct SessionPlay {
    /// The session id.
    #[arg(value_parser = parse::session_id)]
    pub id: String,
    /// The recorded channel (default: the session's first).
    #[arg(long)]
    pub channel: Option<u32>,
    /// Speed factor: 2 plays twice as fast, 0.5 half as fast.
    #[arg(long, default_value_t = 1.0, value_parser = parse::speed)]
    pub speed: f64,
    /// Shorten every pause longer than this to this (like asciinema's -i), e.g. 2s.
    #[arg(short = 'i', long, value_name = "DURATION", value_parser = parse::duration)]
    pub idle_limit: Option<Duration>,
}

/// `sallyport session export`
#[derive(Debug, Args)]
pub struct SessionExport {
    /// The session id.
    #[arg(value_parser = parse::session_id)]
    pub id: String,
    /// The recorded channel (default: the session's first).
    #[arg(long)]
    pub channel: Option<u32>,
    /// Write to this file (created with mode 0600) instead of standard output. (`-o` is the
    /// output format for every command.)
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
