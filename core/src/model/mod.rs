//! Validated domain types. Untrusted text becomes one of these at the edge (API body, CLI
//! argument, config file) or is refused with a [`ModelError`] that names the problem.

mod error;
mod grant;
mod key;
mod names;
mod ports;
mod target;
mod user;

#[cfg(test)]
mod parse_props;

pub use error::ModelError;
pub use grant::{
    Grant, GrantId, GrantObject, GrantOptions, GrantStatus, Protocol, ProtocolSet, Reason, Subject,
};
pub use key::{Fingerprint, SshPublicKey};
pub use names::{GroupName, Login, TargetName, UserName};
pub use ports::{PortRange, PortSpec};
pub use target::{Host, Target, TargetAddress};
pub use user::{Role, User, UserState};
