//! sallyportd, the access gateway daemon.

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod control;
pub mod dev;
pub mod gateway;
pub mod audit;
pub mod secrets;
pub mod ssh;
pub mod store;
pub mod tls;
