//! sallyportd, the access gateway daemon: the drivers around the I/O-free core.
//!
//! ```text
//!   sallyport CLI ──HTTPS──▶ api ──▶ control ──▶ store (SQLite | PostgreSQL)
//!                                      │  └─ journal (hash chain, same transaction)
//!                                      ▼
//!                          policy::Snapshot (ArcSwap) + change feed
//!                                      │
//!   engineers ──SSH──────▶ ssh ────────┘ decide / recheck ──▶ targets in private subnets
//!   journal ──▶ audit sinks ──▶ CloudWatch Logs, stdout
//!   secrets (SSM Parameter Store, or generated for dev) ──▶ host key, CA, JWT key, …
//! ```
//!
//! # Layout
//!
//! - [`gateway`]: assembles a running gateway and stops it in order.
//! - [`dev`]: `sallyportd dev`, everything local on embedded defaults.
//! - [`config`]: the `run` configuration file.
//! - [`control`]: admin operations, the policy snapshot, the change feed, grant expiry.
//! - [`store`]: sqlx repositories over SQLite or PostgreSQL, and the audit journal.
//! - [`api`]: the HTTPS API (rustls, JWT bearer tokens, roles).
//! - [`secrets`]: secret sources (SSM Parameter Store, generated).
//! - [`tls`]: the API's certificates and the process-wide crypto provider.
//! - [`ssh`]: the SSH gateway.
//! - [`wireguard`]: the WireGuard endpoint, devices, and the VPN packet path.
//! - [`audit`]: the group-commit journal writer and the audit sinks (CloudWatch Logs, stdout).

#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod config;
pub mod control;
pub mod dev;
pub mod gateway;
pub mod secrets;
pub mod ssh;
pub mod store;
pub mod tls;
pub mod wireguard;
