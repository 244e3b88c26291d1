//! Grants in, decisions out. No I/O.
//!
//! The control plane compiles the store's users, keys, targets and grants into a [`Snapshot`]
//! and swaps it atomically on every change. A data path asks [`decide`] and gets a
//! [`Decision`]; only an allowing decision yields an [`Allowed`], and opening an upstream
//! connection or forwarding a packet takes one. Nothing else can construct it.
//!
//! ```text
//!  Request{user, credential, protocol, destination, port, login}
//!        │
//!        ▼
//!  Snapshot ── user active? ── credential still registered? ── a grant matching
//!                                                               object, protocol, port,
//!                                                               login, window at `now`?
//!        │                                                          │
//!        ▼                                                          ▼
//!  Deny(Denial) (default)                                   Allow(Allowed{grant id, …})
//! ```

mod decide;
mod snapshot;
mod ssh_view;
mod vpn_view;

pub use decide::{decide, Allowed, ConnectTo, Credential, Decision, Denial, Destination, Request};
pub use snapshot::Snapshot;
pub use ssh_view::SshGrant;
pub(crate) use vpn_view::{touches_special, VpnObject};

#[cfg(test)]
mod tests;
