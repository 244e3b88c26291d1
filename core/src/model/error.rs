use crate::time::TimeError;

/// Why a value from outside was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// A name (user, group, target, login) does not follow its rules.
    #[error("invalid {kind} {value:?}: {rule}")]
    InvalidName {
        /// Which kind of name.
        kind: &'static str,
        /// The text as given (truncated).
        value: String,
        /// The rule it broke.
        rule: &'static str,
    },
    /// An unknown role.
    #[error("invalid role {0:?}: expected admin, engineer or auditor")]
    InvalidRole(String),
    /// An unknown protocol.
    #[error("invalid protocol {0:?}: expected ssh, ssh-proxy, tcp, udp or icmp")]
    InvalidProtocol(String),
    /// An SSH public key that does not parse or is not allowed.
    #[error("invalid SSH public key: {0}")]
    InvalidKey(String),
    /// A host:port that does not parse.
    #[error("invalid address {value:?}: {why}")]
    InvalidAddress {
        /// The text as given.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A CIDR that does not parse or has host bits set.
    #[error("invalid CIDR {value:?}: {why}")]
    InvalidCidr {
        /// The text as given.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A port specification that does not parse or is out of range.
    #[error("invalid ports {value:?}: {why}")]
    InvalidPorts {
        /// The text as given.
        value: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A not-before/expiry pair that is empty, reversed or already over.
    #[error("invalid time window: {0}")]
    InvalidTimeWindow(&'static str),
    /// Text that is not a time.
    #[error(transparent)]
    InvalidTime(#[from] TimeError),
    /// A grant's reason is missing or unreadable.
    #[error("invalid reason: {0}")]
    InvalidReason(&'static str),
    /// A grant whose parts do not fit together.
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// An identifier that is not a UUID.
    #[error("invalid id {0:?}: expected a UUID")]
    InvalidId(String),
}

/// Truncates untrusted text before it is echoed back in an error.
pub(crate) fn shown(s: &str) -> String {
    s.chars().take(80).collect()
}
