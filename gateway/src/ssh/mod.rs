//! The SSH gateway, jump mode: engineers reach private hosts with stock OpenSSH through
//! sallyportd (`ssh -J`, `ProxyJump`), and only where a grant allows.
//!
//! ```text
//!  ssh -J alice@gw db-1
//!    │ TCP (one task per connection; at most max_connections)
//!    ▼
//!  russh server ── Handler: callbacks ─▶ SessionEvent ─▶ SessionTask (one per connection)
//!                                                          │ login: limiter ─▶ auth (snapshot,
//!                                                          │        user CA) ─▶ journal
//!                                                          │ direct-tcpip ─▶ decide(Ssh) ─▶ Allowed
//!                                                          ▼
//!                              tunnel task: upstream::connect(&Allowed) ─▶ journal open ─▶ relay
//!  change feed (Control::subscribe) ─▶ SessionTask: authenticate + recheck ─▶ stop tunnels /
//!                                                    end the session (reason in the journal)
//! ```
//!
//! # What is accepted
//!
//! - **Login**: public key only. A key registered to the user named in the login, or an
//!   OpenSSH user certificate signed by the gateway's user CA (rules in [`auth`]). Disabled
//!   users and removed keys are refused, and their live sessions end. Failed logins are counted
//!   per source address and per user name ([`limiter`]): each rejection is held back longer,
//!   and past the limit every attempt is refused and the connection dropped. Every refusal is
//!   journaled as `ssh.auth.failure` (source, user name tried, key fingerprint, reason).
//! - **Channels**: `direct-tcpip` only (what `ssh -J`, `-W`, `-L` and `-D` send), to a
//!   registered target name or a literal IP address, on a port a grant allows
//!   (`decide` with `Protocol::Ssh`). A shell, a command or a subsystem gets a message showing
//!   the `ssh -J` form and exit status 1. X11, agent forwarding, `tcpip-forward` (`-R`),
//!   streamlocal and anything else are refused; the channel-open refusals carry a message
//!   OpenSSH prints (`channel 0: open failed: administratively prohibited: sallyport: …`).
//!   The mapping of every refusal to what the client sees is in [`error`].
//! - **Revocation**: every change notice that may cut access (and a lagged feed) re-checks the
//!   session's login and every tunnel's [`Allowed`](sallyport_core::policy::Allowed); what no
//!   longer holds is closed at once, with `revoked` or `expired` in `ssh.tunnel.close`. Each
//!   tunnel also closes itself at its grant's expiry, and a certificate session ends at the
//!   certificate's expiry.
//!
//! # Algorithms
//!
//! Modern only (see [`algorithms`] and `docs/ssh.md`):
//!
//! - key exchange: `mlkem768x25519-sha256`, `curve25519-sha256`,
//!   `curve25519-sha256@libssh.org` (plus strict kex, `kex-strict-s-v00@openssh.com`);
//! - ciphers: `chacha20-poly1305@openssh.com`, `aes256-gcm@openssh.com`,
//!   `aes128-gcm@openssh.com` (all AEAD; no CBC, no CTR, so no MAC is used);
//! - host key: `ssh-ed25519` (from the secret source, never on disk);
//! - user signatures: `ssh-ed25519`, `ecdsa-sha2-nistp256/384/521`, `rsa-sha2-512`,
//!   `rsa-sha2-256`, `sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com`;
//!   never `ssh-rsa` (SHA-1) or DSA.
//!
//! # Limits
//!
//! `[ssh]` in the configuration ([`SshSettings`]): connections at once, sessions per user,
//! channels per session, handshake timeout (TCP accept to login), idle timeout (per tunnel,
//! and per session without tunnels), connect timeout, keepalives, failed-login limits.
//!
//! # Layout
//!
//! - `service`: [`SshService`] (shared state, accept loop, [`SshService::serve`] for any byte
//!   stream).
//! - `handler`: russh callbacks → `events` (the typed event stream).
//! - `session`: the per-session task (login, channels, notices, timers, the end).
//! - `tunnel`, `relay`, `upstream`: one tunnel's life, its byte copying, its TCP connect.
//! - `auth`, `limiter`, `destination`, `algorithms`: pure rules.
//! - `error`: refusals and how each reaches the client. `journal`: where `ssh.*` events go.
//! - `proxy`: proxy mode (`ssh -A login@target@gateway`): the onward login through the
//!   forwarded agent, the target's pinned host key, the session relay (`docs/ssh.md`).
//! - `observers`, `recording`: proxy-mode recordings (sealed asciicast chunks in the store)
//!   and the `ssh.exec` / `ssh.sftp.*` auditors.
//! - `settings`: `[ssh]`.

pub mod algorithms;
pub mod auth;
pub mod destination;
mod error;
mod events;
mod handler;
mod journal;
pub mod limiter;
pub mod observers;
pub mod proxy;
pub mod recording;
mod relay;
mod service;
mod session;
mod settings;
mod tunnel;
pub mod upstream;

pub use error::{ChannelRefusal, HandlerError, RefusedChannel, SessionEnd};
pub use service::SshService;
pub use settings::{SshSettings, DEFAULT_SSH_LISTEN};
