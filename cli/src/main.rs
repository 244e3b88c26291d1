//! `sallyport`: one CLI for admins, auditors and engineers, over the gateway's HTTPS API.
//!
//! ```text
//!   argv ──clap (args, parse)──▶ typed command ──commands::*──▶ client (HTTPS, bearer token)
//!         bad input: exit 2                                        │
//!                                                  gateway JSON ◀──┘
//!                                                       │
//!                                  output: table (default) or -o json ──▶ stdout
//!                                  error: one line on stderr ──▶ exit code below
//! ```
//!
//! # Exit codes
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success (also when stdout is a pipe closed early, as with `| head`) |
//! | 1 | output could not be written |
//! | 2 | bad arguments or local configuration; nothing was sent (clap's usage code) |
//! | 3 | not authenticated or not allowed: no token, bad or expired token (401), wrong role (403) |
//! | 4 | not found (404) |
//! | 5 | conflict: already exists, or not possible in the current state (409) |
//! | 6 | the gateway refused the request as invalid (400, 413, 422, other 4xx) |
//! | 7 | gateway unreachable, TLS failure, timeout, gateway error (5xx, 408, 429) or a malformed answer |
//! | 8 | `audit verify`: the journal's hash chain is broken |
//!
//! The same table is in `--help` ([`error::EXIT_CODES_HELP`]); the mapping is
//! [`error::CliError::exit_code`].
//!
//! # Layout
//!
//! - [`args`]: the clap grammar; arguments become core types (`UserName`, `GrantObject`, …).
//! - [`parse`]: value parsers for the rest (gateway URL, durations, `--since`, keys).
//! - [`client`]: the HTTPS client (trusts exactly `SALLYPORT_CA_CERT`) and error mapping.
//! - [`commands`]: one module per verb group.
//! - [`output`]: tables and JSON.
//! - [`ssh_config`]: `ssh-config`'s pure part: grants and targets in, `~/.ssh/config` out.
//! - [`error`]: [`error::CliError`] and the exit codes.

#![forbid(unsafe_code)]

mod args;
mod client;
mod commands;
mod error;
mod output;
mod parse;
mod profile;
mod ssh_config;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::args::Cli;
use crate::error::{CliError, EXIT_OK, EXIT_OUTPUT};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(error::EXIT_USAGE));
        }
    };
    // The process-wide provider for rustls; reqwest picks it up. Err only if already set.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(EXIT_OUTPUT);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) if e.is_closed_pipe() => ExitCode::from(EXIT_OK),
        // A verification verdict, not a malfunction: printed as is.
        Err(e @ CliError::AuditBroken { .. }) => {
            report(&output::clean(&e.to_string()));
            ExitCode::from(e.exit_code())
        }
        Err(e) => {
            report(&format!("error: {}", output::clean(&e.to_string())));
            ExitCode::from(e.exit_code())
        }
    }
}

/// One line on stderr; if even that fails there is nobody left to tell.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
