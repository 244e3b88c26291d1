//! One module per verb group: each turns parsed arguments into API calls and prints the answer.
//!
//! # Layout
//!
//! - `users`: `user …` and `group list`.
//! - `keys`: `key …`.
//! - `targets`: `target …`.
//! - `grants`: `grant …` and `revoke`.
//! - `audit`: `audit search` (paged) and `audit verify`.
//! - `audit_tools`: `audit tail [-f]`, `audit export`, `audit verify --file` (offline),
//!   `audit backlog`.
//! - `session`: `session list|show|play|export|kill` (recordings replayed with their timing).
//! - `tokens`: `token issue` and `whoami`.
//! - `ssh_config`: `ssh-config`.
//! - `login`: `login` (challenge-response with the SSH agent, certificate into sallyport-agent).
//! - `vpn`: `vpn enroll` (key pair in memory, wg-quick file, QR) and `vpn refresh`.
//! - `device`: `device list` and `device revoke`.

mod audit;
mod audit_tools;
mod device;
mod grants;
mod keys;
mod login;
mod session;
mod ssh_config;
mod targets;
mod tokens;
mod users;
mod vpn;

use std::path::Path;

use sallyport_core::model::{GrantId, ModelError};

use crate::args::{AuditCmd, Cli, Command, GroupCmd, SshConfigArgs, TokenCmd, UserCmd};
use crate::client::ApiClient;
use crate::error::CliError;
use crate::output::Out;

/// What every command needs: the client and the output.
#[derive(Debug)]
pub struct Ctx {
    /// The gateway client.
    pub api: ApiClient,
    /// Where results go.
    pub out: Out,
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let out = Out::new(cli.global.output);
    // Local inputs (files, cross-field rules) are checked before any connection is set up.
    match Prepared::from(cli.command)? {
        Prepared::Completions(shell) => completions(shell, out),
        Prepared::VerifyExport(path) => audit_tools::verify_file(out, &path),
        Prepared::Login(args) => login::run(&cli.global, args, out).await,
        Prepared::Remote(remote) => {
            let ctx = Ctx {
                api: ApiClient::connect(&cli.global)?,
                out,
            };
            remote.run(&ctx).await
        }
    }
}

/// A command line whose local inputs have been checked.
enum Prepared {
    /// Needs no gateway.
    Completions(clap_complete::Shell),
    /// `audit verify --file`: offline, needs no gateway.
    VerifyExport(std::path::PathBuf),
    /// `login`: talks to the gateway without a token.
    Login(crate::args::LoginArgs),
    /// Talks to the gateway.
    Remote(Box<Remote>),
}

/// A command that talks to the gateway.
enum Remote {
    User(UserCmd),
    Group,
    Key(keys::KeyAction),
    Target(targets::TargetAction),
    Grant(grants::GrantAction),
    Revoke(GrantId),
    Audit(AuditCmd),
    Token(TokenCmd),
    Session(crate::args::SessionCmd),
    WhoAmI,
    SshCa,
    SshConfig(SshConfigArgs),
    VpnEnroll(vpn::Enroll),
    VpnRefresh(vpn::Refresh),
    DeviceList(Option<String>),
    DeviceRevoke(String),
}

impl Prepared {
    fn from(command: Command) -> Result<Self, CliError> {
        let remote = match command {
            Command::Completions { shell } => return Ok(Prepared::Completions(shell)),
            Command::Login(args) => return Ok(Prepared::Login(args)),
            Command::Audit(AuditCmd::Verify { file: Some(path) }) => {
                return Ok(Prepared::VerifyExport(path))
            }
            Command::User(cmd) => Remote::User(cmd),
            Command::Group(GroupCmd::List) => Remote::Group,
            Command::Key(cmd) => Remote::Key(keys::prepare(cmd)?),
            Command::Target(cmd) => Remote::Target(targets::prepare(cmd)?),
            Command::Grant(cmd) => Remote::Grant(grants::prepare(cmd)?),
            Command::Revoke { grant } => Remote::Revoke(grant),
            Command::Audit(cmd) => Remote::Audit(cmd),
            Command::Token(cmd) => Remote::Token(cmd),
            Command::Session(cmd) => Remote::Session(cmd),
            Command::Whoami => Remote::WhoAmI,
            Command::SshCa => Remote::SshCa,
            Command::SshConfig(args) => Remote::SshConfig(args),
            Command::Vpn(crate::args::VpnCmd::Enroll { name, file, qr }) => {
                Remote::VpnEnroll(vpn::Enroll { name, file, qr })
            }
            Command::Vpn(crate::args::VpnCmd::Refresh { device, file }) => {
                Remote::VpnRefresh(vpn::Refresh { device, file })
            }
            Command::Device(crate::args::DeviceCmd::List { user }) => Remote::DeviceList(user),
            Command::Device(crate::args::DeviceCmd::Revoke { id }) => Remote::DeviceRevoke(id),
        };
        Ok(Prepared::Remote(Box::new(remote)))
    }
}

impl Remote {
    async fn run(self, ctx: &Ctx) -> Result<(), CliError> {
        match self {
            Remote::User(cmd) => users::run(ctx, cmd).await,
            Remote::Group => users::groups(ctx).await,
            Remote::Key(action) => keys::run(ctx, action).await,
            Remote::Target(action) => targets::run(ctx, action).await,
            Remote::Grant(action) => grants::run(ctx, action).await,
            Remote::Revoke(id) => grants::revoke(ctx, id).await,
            Remote::Audit(cmd) => audit::run(ctx, cmd).await,
            Remote::Token(cmd) => tokens::issue(ctx, cmd).await,
            Remote::Session(cmd) => session::run(ctx, cmd).await,
            Remote::WhoAmI => tokens::whoami(ctx).await,
            Remote::SshCa => login::ssh_ca(ctx).await,
            Remote::SshConfig(args) => ssh_config::run(ctx, args).await,
            Remote::VpnEnroll(args) => vpn::enroll(ctx, args).await,
            Remote::VpnRefresh(args) => vpn::refresh(ctx, args).await,
            Remote::DeviceList(user) => device::list(ctx, user).await,
            Remote::DeviceRevoke(id) => device::revoke(ctx, id).await,
        }
    }
}

fn completions(shell: clap_complete::Shell, out: Out) -> Result<(), CliError> {
    use clap::CommandFactory as _;
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "sallyport", &mut buf);
    out.text(&String::from_utf8_lossy(&buf))
}

/// Reads a one-line OpenSSH public key from a file and checks it locally.
pub(crate) fn read_public_key(what: &'static str, path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadFile {
        what,
        path: path.to_owned(),
        source,
    })?;
    if text.contains("PRIVATE KEY") {
        // Checked before the one-line rule, so the message says what is actually wrong.
        return Err(ModelError::InvalidKey(
            "this is a private key; give the public key (the .pub file)".into(),
        )
        .into());
    }
    Ok(crate::parse::public_key(&text)?)
}
