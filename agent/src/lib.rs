//! `sallyport-agent`: the engineer's in-memory ssh-agent.
//!
//! A standard ssh-agent (draft-miller-ssh-agent) on a Unix socket that holds keys and OpenSSH
//! certificates in memory only, removes and zeroizes each at its expiry, enforces OpenSSH's
//! destination constraints (`ssh-add -h`, `session-bind@openssh.com`), refuses what it does not
//! understand, and adds two extensions that `sallyport login` uses: generate an ed25519 key in
//! the agent, and attach the user certificate the gateway signed for it.
//!
//! ```text
//!   ssh / ssh-add / sallyport login
//!          │ SSH_AUTH_SOCK (0600 socket in a 0700 dir, peer uid checked)
//!          ▼
//!   server (tokio: one task per connection + an expiry task)
//!          │ bytes ──▶ proto::parse_request ──▶ Request
//!          │           keystore / constraints (pure) ──▶ Reply ──▶ proto ──▶ bytes
//!          ▼
//!   Keystore { identities, lock }   (no disk, no logs of key material)
//! ```
//!
//! # Layout
//! - [`proto`]: framing, request parsing, reply encoding (I/O-free; fuzzed).
//! - [`constraints`]: destination constraints and session bindings (I/O-free).
//! - [`keystore`]: identities, signing, lock, expiry (I/O-free).
//! - [`server`]: the Unix-socket driver: accept, peer check, per-connection loop, expiry timer.
//! - [`client`]: [`client::SallyportAgentClient`] for the sallyport extensions.
//! - [`error`]: typed errors.
//! - `main.rs`: the `sallyport-agent` binary (socket setup, signals).

#![forbid(unsafe_code)]

pub mod client;
pub mod constraints;
pub mod error;
pub mod keystore;
pub mod proto;
pub mod server;

use std::path::PathBuf;

/// Environment variable `sallyport login` reads for the agent socket.
pub const SOCKET_ENV: &str = "SALLYPORT_AGENT_SOCK";

/// The default socket: `$XDG_RUNTIME_DIR/sallyport-agent.sock`, else
/// `/tmp/sallyport-agent-$UID/agent.sock`.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("sallyport-agent.sock"),
        None => fallback_socket_dir().join("agent.sock"),
    }
}

/// `/tmp/sallyport-agent-$UID`, the directory of the fallback socket (created 0700).
pub fn fallback_socket_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/sallyport-agent-{}", current_uid()))
}

/// The process's real uid.
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Where `sallyport login` finds the agent: `$SALLYPORT_AGENT_SOCK`, else the default.
pub fn socket_path_from_env() -> PathBuf {
    std::env::var_os(SOCKET_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(default_socket_path)
}

/// Fuzzing entry point: parse one message body, and split frames off arbitrary bytes.
#[doc(hidden)]
pub fn fuzz_parse(data: &[u8]) {
    let _ = proto::parse_request(data);
    let mut rest = data;
    while let Ok(Some((body, used))) = proto::split_frame(rest) {
        let _ = proto::parse_request(body);
        rest = rest.get(used..).unwrap_or_default();
    }
}
