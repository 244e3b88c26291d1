//! Test support for sallyport's suites: real programs started by the harness.
//!
//! # Layout
//!
//! - `ports`: free loopback ports.
//! - `postgres`: a throw-away PostgreSQL server (initdb in a temp dir, own port, optional TLS
//!   with a CA made at run time).
//! - `moto`: a throw-away `moto_server` serving the AWS APIs (SSM, CloudWatch Logs) on loopback.

#![forbid(unsafe_code)]

pub mod moto;
pub mod ports;
pub mod postgres;
