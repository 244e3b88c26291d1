//! Test support for sallyport's suites: real programs started by the harness.
//!
//! # Layout
//!
//! - `ports`: free loopback ports.
//! - `postgres`: a throw-away PostgreSQL server (initdb in a temp dir, own port, optional TLS
//!   with a CA made at run time).
//! - `sshd`: a throw-away OpenSSH `sshd` (own host key and configuration in a temp dir, own
//!   port), the target of the SSH gateway's end-to-end tests.
//! - `moto`: a throw-away `moto_server` serving the AWS APIs (SSM, CloudWatch Logs) on loopback.
//! - `fault`: a fault-injecting HTTP proxy between an AWS SDK client and `moto_server`
//!   (throttling, 5xx, dropped connections, refused or delayed answers).
//! - `netns`: network namespaces, veth pairs, wireguard-go interfaces, programs run inside
//!   them; all removed on drop (the WireGuard end-to-end tests).
//! - `cloudwatch`: reading back what reached a CloudWatch Logs stream.
//! - `leaks`: scanning a state directory for private key material (secrets' bytes raw, hex or
//!   base64, PEM / OpenSSH private-key markers).

#![forbid(unsafe_code)]

pub mod backends;
pub mod cloudwatch;
pub mod fault;
pub mod leaks;
pub mod moto;
pub mod netns;
pub mod ports;
pub mod postgres;
mod process;
pub mod sshd;
