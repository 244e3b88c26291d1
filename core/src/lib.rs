//! sallyport's I/O-free core.
//!
//! Everything here is bytes or values in, decisions or values out: no sockets, no database, no
//! runtime. The gateway's drivers (store, API, SSH, WireGuard) and the CLI build on it.
//!
//! ```text
//!   untrusted text ──parse──▶ model (UserName, Cidr, PortSpec, Grant …)
//!                                  │
//!   store rows ──compile──▶ policy::Snapshot ──decide(request, now)──▶ Decision
//!                                                                      ├─ Allow(Allowed)  ─▶ data path
//!                                                                      └─ Deny(Denial)    ─▶ audit
//!   admin change / session event ──▶ audit::Event ──chain──▶ hash-linked journal record
//! ```
//!
//! # Layout
//!
//! - [`model`]: validated domain types: names, roles, users, SSH keys, targets, grants.
//! - [`time`]: [`time::Timestamp`], milliseconds since the Unix epoch, RFC 3339 on the wire.
//! - [`policy`]: the compiled [`policy::Snapshot`] and [`policy::decide`], the only source of
//!   [`policy::Allowed`].
//! - [`feed`]: the control-plane change notices that data paths listen to.
//! - [`audit`]: the typed, versioned audit event enum and the journal's hash chain and verifier.
//! - [`api`]: request and response bodies of the HTTPS API, shared by gateway and CLI.
//! - [`recording`]: asciicast v2 writer and reader, playback schedule, SFTP audit tracker.
//! - [`secret`]: [`secret::Secret`], the one wrapper for key material.
//! - [`login`]: the API's challenge-response login (stateless MACed challenges, SSHSIG proofs).
//! - [`ssh_ca`]: SSH user certificates: principals, validity and extensions from the grants.
//! - [`vpn`]: the VPN data path's packet parser, per-user filter, flow table and reject replies.

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod feed;
pub mod login;
pub mod model;
pub mod policy;
pub mod recording;
pub mod secret;
pub mod ssh_ca;
pub mod time;
pub mod vpn;
