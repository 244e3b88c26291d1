//! What can go wrong in the CLI, and the one mapping from each failure to its exit code.
//!
//! Every failure becomes one [`CliError`]; `main` prints it as one line (`error: …`) on stderr
//! and exits with [`CliError::exit_code`]. The codes are documented in [`EXIT_CODES_HELP`],
//! which `--help` shows.

use std::path::PathBuf;

use sallyport_core::model::ModelError;

/// Success.
pub const EXIT_OK: u8 = 0;
/// Bad arguments or local configuration, refused before any request (also clap's own code).
pub const EXIT_USAGE: u8 = 2;
/// No token, or the gateway refused it (401) or the caller's role (403).
pub const EXIT_AUTH: u8 = 3;
/// The named user, key, target or grant does not exist (404).
pub const EXIT_NOT_FOUND: u8 = 4;
/// The object already exists or the change conflicts with the current state (409).
pub const EXIT_CONFLICT: u8 = 5;
/// The gateway refused the request as invalid (400, 413, 422 and other 4xx).
pub const EXIT_INVALID: u8 = 6;
/// The gateway could not be reached, TLS failed, it failed (5xx), or it answered nonsense.
pub const EXIT_GATEWAY: u8 = 7;
/// `audit verify` found the journal's hash chain broken.
pub const EXIT_AUDIT_BROKEN: u8 = 8;
/// Writing the output failed (other than a closed pipe, which ends quietly with 0).
pub const EXIT_OUTPUT: u8 = 1;

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  output could not be written
  2  bad arguments or local configuration (nothing was sent)
  3  not authenticated or not allowed (no token, bad or expired token, wrong role)
  4  not found
  5  conflict (already exists, or not possible in the current state)
  6  request refused by the gateway as invalid
  7  gateway unreachable, TLS failure, or gateway error
  8  audit verification failed (a hash chain of the journal, or an export, is broken)

Environment:
  SALLYPORT_GATEWAY   gateway URL (https://HOST:PORT)
  SALLYPORT_TOKEN     API token (prefer this or --token-file over --token)
  SALLYPORT_CA_CERT   PEM file of the CA that signed the gateway's certificate
  SALLYPORT_PROFILE   login profile `sallyport login` writes (default
                      ~/.config/sallyport/profile.toml); used when no token is given
  SALLYPORT_AGENT_SOCK  sallyport-agent's socket, for `sallyport login`";

/// A failure of one CLI invocation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// An argument or file content did not validate (names the value and the rule).
    #[error(transparent)]
    Invalid(#[from] ModelError),
    /// A file named on the command line could not be read.
    #[error("cannot read {what} {path}: {source}")]
    ReadFile {
        /// What the file was for.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Local configuration is missing or unusable (no gateway URL, no CA certificate, …).
    #[error("{0}")]
    Config(&'static str),
    /// The CA certificate file could not be used.
    #[error("cannot use CA certificate {path}: {why}")]
    CaCert {
        /// The path as given.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// No API token is available, or the token file is empty.
    #[error("{0}")]
    NoToken(&'static str),
    /// The gateway answered with an error status.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code, if the body had one.
        code: Option<String>,
        /// The server's message (one line), or a description of the status.
        message: String,
    },
    /// The request did not get an answer: connection, TLS or timeout failure.
    #[error("{what} {url}: {cause}")]
    Transport {
        /// What failed ("cannot connect to", "TLS handshake failed with", …).
        what: &'static str,
        /// The URL requested.
        url: String,
        /// The underlying causes, joined.
        cause: String,
    },
    /// The gateway answered with a body that is not what the API promises.
    #[error("unexpected answer from {url}: {why}")]
    BadResponse {
        /// The URL requested.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// `audit verify` found a hash chain broken (the first broken one; the others are listed
    /// on standard output).
    #[error("BROKEN in chain {chain} at seq {seq}: {problem}")]
    AuditBroken {
        /// The chain: a gateway instance, or `(shared)`.
        chain: String,
        /// The first bad sequence number in that chain.
        seq: u64,
        /// What is wrong there.
        problem: String,
    },
    /// `audit verify --file` found the export broken, or the file is not an export.
    #[error("BROKEN export {path}: {problem}")]
    ExportBroken {
        /// The file as given.
        path: PathBuf,
        /// What is wrong, with the first bad sequence number or line.
        problem: String,
    },
    /// Standard output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
    /// A file could not be written.
    #[error("cannot write {what} {path}: {source}")]
    WriteFile {
        /// What the file is for.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The login profile is unusable.
    #[error("login profile {path}: {why} (remove it and run `sallyport login`)")]
    Profile {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An SSH agent (OpenSSH's, or sallyport-agent) could not be used.
    #[error("{which}: {why}")]
    Agent {
        /// Which agent and what was being done.
        which: &'static str,
        /// What went wrong.
        why: String,
    },
    /// No key in the agent can log in as the user.
    #[error("{0}")]
    NoLoginKey(String),
}

impl CliError {
    /// The process exit code for this failure (see [`EXIT_CODES_HELP`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Invalid(_)
            | CliError::ReadFile { .. }
            | CliError::Config(_)
            | CliError::CaCert { .. } => EXIT_USAGE,
            CliError::NoToken(_) => EXIT_AUTH,
            CliError::Api { status, .. } => match status {
                401 | 403 => EXIT_AUTH,
                404 => EXIT_NOT_FOUND,
                409 => EXIT_CONFLICT,
                408 | 429 => EXIT_GATEWAY,
                400..=499 => EXIT_INVALID,
                _ => EXIT_GATEWAY,
            },
            CliError::Transport { .. } | CliError::BadResponse { .. } => EXIT_GATEWAY,
            CliError::AuditBroken { .. } | CliError::ExportBroken { .. } => EXIT_AUDIT_BROKEN,
            CliError::Output(_) | CliError::WriteFile { .. } => EXIT_OUTPUT,
            CliError::Profile { .. } | CliError::Agent { .. } => EXIT_USAGE,
            CliError::NoLoginKey(_) => EXIT_AUTH,
        }
    }

    /// Whether this is a closed output pipe (`sallyport … | head`), which is not a failure.
    pub fn is_closed_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> CliError {
        CliError::Api {
            status,
            code: None,
            message: "m".into(),
        }
    }

    #[test]
    fn statuses_map_to_classes() {
        assert_eq!(api(401).exit_code(), EXIT_AUTH);
        assert_eq!(api(403).exit_code(), EXIT_AUTH);
        assert_eq!(api(404).exit_code(), EXIT_NOT_FOUND);
        assert_eq!(api(409).exit_code(), EXIT_CONFLICT);
        assert_eq!(api(400).exit_code(), EXIT_INVALID);
        assert_eq!(api(413).exit_code(), EXIT_INVALID);
        assert_eq!(api(422).exit_code(), EXIT_INVALID);
        assert_eq!(api(429).exit_code(), EXIT_GATEWAY);
        assert_eq!(api(500).exit_code(), EXIT_GATEWAY);
        assert_eq!(api(503).exit_code(), EXIT_GATEWAY);
    }

    #[test]
    fn local_failures_map_to_usage_or_auth() {
        let bad: ModelError = "Bob"
            .parse::<sallyport_core::model::UserName>()
            .unwrap_err();
        assert_eq!(CliError::Invalid(bad).exit_code(), EXIT_USAGE);
        assert_eq!(CliError::Config("x").exit_code(), EXIT_USAGE);
        assert_eq!(CliError::NoToken("x").exit_code(), EXIT_AUTH);
        let t = CliError::Transport {
            what: "cannot connect to",
            url: "https://h/".into(),
            cause: "refused".into(),
        };
        assert_eq!(t.exit_code(), EXIT_GATEWAY);
        assert_eq!(t.to_string(), "cannot connect to https://h/: refused");
        let b = CliError::AuditBroken {
            chain: "gw-a".into(),
            seq: 3,
            problem: "altered".into(),
        };
        assert_eq!(b.exit_code(), EXIT_AUDIT_BROKEN);
        assert_eq!(b.to_string(), "BROKEN in chain gw-a at seq 3: altered");
    }

    #[test]
    fn closed_pipe_is_not_a_failure() {
        let e = CliError::Output(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(e.is_closed_pipe());
        assert!(
            !CliError::Output(std::io::Error::from(std::io::ErrorKind::Other)).is_closed_pipe()
        );
    }
}
