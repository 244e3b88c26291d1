//! What can go wrong reading or writing the gateway's secrets.
//!
//! No variant holds or prints a secret value, nor an upstream error that could quote one
//! (base64 decode errors name the offending byte, so they are dropped, not wrapped).

use super::path::SsmPathError;

/// An error from a secret source. Every variant about one parameter names it; none carries
/// its value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// The SSM path is not valid.
    #[error(transparent)]
    InvalidPath(#[from] SsmPathError),
    /// Reading the parameters under the path (`GetParametersByPath`) failed.
    #[error("reading SSM parameters under {path} failed")]
    Read {
        /// The path being read.
        path: String,
        /// The AWS error.
        #[source]
        source: Box<aws_sdk_ssm::Error>,
    },
    /// Checking which parameters already exist (`GetParameters`) failed.
    #[error("checking for existing SSM parameters under {path} failed")]
    Check {
        /// The path being checked.
        path: String,
        /// The AWS error.
        #[source]
        source: Box<aws_sdk_ssm::Error>,
    },
    /// Writing one parameter (`PutParameter`) failed; those before it were written.
    #[error(
        "writing SSM parameter {name} failed{}",
        if written.is_empty() { String::new() } else { format!(" (already written: {})", written.join(", ")) }
    )]
    Write {
        /// The parameter's full name.
        name: String,
        /// The parameters written before this one failed.
        written: Vec<String>,
        /// The AWS error.
        #[source]
        source: Box<aws_sdk_ssm::Error>,
    },
    /// One or more of the five parameters do not exist.
    #[error("SSM parameter(s) missing: {}", names.join(", "))]
    Missing {
        /// The full names of the missing parameters.
        names: Vec<String>,
    },
    /// A parameter exists but is not a `SecureString`.
    #[error("SSM parameter {name} is of type {found}, not SecureString")]
    NotSecureString {
        /// The parameter's full name.
        name: String,
        /// The type it has (`String`, `StringList`, ...).
        found: String,
    },
    /// SSM returned a parameter without a value.
    #[error("SSM parameter {name} has no value")]
    NoValue {
        /// The parameter's full name.
        name: String,
    },
    /// A parameter's value is not standard (padded) base64.
    #[error("SSM parameter {name} is not valid standard base64")]
    InvalidBase64 {
        /// The parameter's full name.
        name: String,
    },
    /// A parameter's value decodes to the wrong number of bytes.
    #[error("SSM parameter {name} decodes to {len} bytes; 32 are required")]
    WrongLength {
        /// The parameter's full name.
        name: String,
        /// How many bytes it decoded to.
        len: usize,
    },
    /// `init` found parameters already present and was not asked to rotate them.
    #[error(
        "SSM parameter(s) already exist: {}; nothing was written (rotate to replace them)",
        names.join(", ")
    )]
    AlreadyExist {
        /// The full names of the parameters that exist.
        names: Vec<String>,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng(#[source] rand::Error),
}
