//! Typed errors of the agent library, and what the other side sees for each.

use std::io;

/// Why a request from a client could not be parsed. Every variant is answered with
/// `SSH_AGENT_FAILURE` (the ssh-agent protocol has no error detail); the variant is only logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The message has no type byte.
    #[error("empty message")]
    Empty,
    /// A field was cut short or was malformed (length, UTF-8, mpint).
    #[error("malformed field: {0}")]
    Encoding(#[from] russh::keys::ssh_encoding::Error),
    /// A key, certificate or signature did not decode.
    #[error("malformed key, certificate or signature: {0}")]
    Key(#[from] russh::keys::ssh_key::Error),
    /// Bytes were left over after the last field of the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// The message type is not one the agent implements.
    #[error("unsupported message type {0}")]
    UnsupportedMessage(u8),
    /// An `SSH_AGENTC_EXTENSION` this agent does not implement.
    #[error("unsupported extension {0:?}")]
    UnsupportedExtension(String),
    /// A key constraint this agent does not implement (refused so that no key is added with
    /// fewer restrictions than the client asked for).
    #[error("unsupported key constraint {0}")]
    UnsupportedConstraint(String),
    /// A private key of a type the agent does not hold (only ed25519 and RSA).
    #[error("unsupported private key type {0:?}")]
    UnsupportedKeyType(String),
    /// A field that parsed but whose value is not allowed (named in the message).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Why the keystore refused an operation. Answered with `SSH_AGENT_FAILURE`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The agent is locked; only unlock is accepted.
    #[error("the agent is locked")]
    Locked,
    /// No identity with that public key or certificate.
    #[error("no such identity")]
    NotFound,
    /// The identity's destination constraints do not allow this use on this connection.
    #[error("not permitted by the key's destination constraints: {0}")]
    NotPermitted(&'static str),
    /// A signature with SHA-1 (`ssh-rsa`) or an unknown flag was asked for.
    #[error("refused signature algorithm: {0}")]
    RefusedAlgorithm(&'static str),
    /// Signing failed inside the crypto library.
    #[error("signing failed")]
    Signing,
    /// The certificate does not fit (not for a generated key we hold, expired, not a user cert).
    #[error("certificate refused: {0}")]
    Certificate(&'static str),
    /// A lifetime outside what the agent accepts.
    #[error("invalid lifetime: {0}")]
    Lifetime(&'static str),
    /// Lock or unlock with a wrong or empty passphrase, or lock while locked.
    #[error("wrong passphrase or lock state")]
    Passphrase,
    /// The session binding was refused (bad signature, duplicate, too many, after auth bind).
    #[error("session binding refused: {0}")]
    SessionBind(&'static str),
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Rng,
    /// The agent already holds as many identities as it accepts.
    #[error("too many identities")]
    Full,
}

/// Errors of [`crate::client::SallyportAgentClient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The agent socket could not be reached or the connection broke.
    #[error("agent socket: {0}")]
    Io(#[from] io::Error),
    /// The agent answered `SSH_AGENT_FAILURE` (it refused the request; the agent logs why).
    #[error("the agent refused the request")]
    Refused,
    /// The agent's answer was not what the protocol says.
    #[error("unexpected answer from the agent: {0}")]
    Protocol(&'static str),
    /// The request could not be encoded (e.g. a comment or certificate too large).
    #[error("cannot encode request: {0}")]
    Encode(String),
    /// A lifetime outside 1..=86400 seconds.
    #[error("lifetime must be between 1 second and 24 hours")]
    Lifetime,
}
