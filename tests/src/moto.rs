//! A throw-away `moto_server` serving the AWS APIs (SSM Parameter Store, CloudWatch Logs) on
//! loopback.
//!
//! ```text
//!   test ──AWS SDK (endpoint_url)──> moto_server -H 127.0.0.1 -p PORT   (one per MotoServer)
//!     │                                   ▲
//!     └──stdin pipe──> watchdog (sh) ─────┘ kills it if the test process dies
//! ```
//!
//! [`MotoServer::start`] looks for `moto_server` in `target/pyenv/bin/` under the workspace root
//! (where `scripts/test` installs `moto[server]`), then on `PATH`. It picks a free port, starts
//! the server, and waits until it answers HTTP. Nothing global is set: point the client at
//! [`MotoServer::endpoint_url`] and give it the dummy credentials from [`aws_env`]
//! (`AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1`), e.g. with
//! `aws_config::defaults(..).endpoint_url(..).region(..).credentials_provider(..)` or by setting
//! those variables on a child process you spawn. Each server starts empty; one per test keeps
//! tests independent.
//!
//! `Drop` kills the server. A small watchdog shell, tethered to the test process by a pipe on
//! its stdin, kills the server if the test process dies without dropping it (SIGKILL, abort):
//! when the process exits the kernel closes the pipe, the watchdog reads end-of-file and cleans
//! up. On a normal drop the harness tells the watchdog `release` first, so the watchdog never
//! signals a pid the harness has already reaped.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::ports::free_port;
use crate::process::{with_retries, Tethered};

/// How long `moto_server` may take to answer HTTP (it imports a lot of Python on start-up, and
/// the machine may be busy compiling).
const START_DEADLINE: Duration = Duration::from_secs(90);

/// How many ports to try when the server exits during start-up (e.g. its port was taken).
const START_ATTEMPTS: usize = 3;

/// The environment an AWS client needs to talk to moto: dummy credentials and a region.
pub fn aws_env() -> [(&'static str, &'static str); 3] {
    [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ]
}

/// A running `moto_server` on 127.0.0.1; killed on drop.
pub struct MotoServer {
    port: u16,
    /// Dropped before `dir`: the server is gone before its directory is removed.
    process: Tethered,
    /// Holds the server's log; removed on drop.
    dir: TempDir,
}

impl fmt::Debug for MotoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MotoServer")
            .field("port", &self.port)
            .field("pid", &self.process.id())
            .field("log", &self.log_path())
            .finish_non_exhaustive()
    }
}

impl MotoServer {
    /// Starts `moto_server` on a free loopback port and waits until it answers HTTP.
    pub fn start() -> Result<Self> {
        let exe = find_moto_server()?;
        with_retries(START_ATTEMPTS, "moto_server", || Self::start_once(&exe))
    }

    /// One attempt. The outer error is fatal; the inner one means the server exited during
    /// start-up (most likely its port was taken) and a new port may help.
    fn start_once(exe: &Path) -> Result<Result<Self>> {
        let dir = tempfile::Builder::new()
            .prefix("sallyport-moto-")
            .tempdir()
            .context("creating a temp dir for moto_server")?;
        let log_path = dir.path().join("moto.log");
        let log = File::create(&log_path).context("creating moto_server's log file")?;
        let log_err = log.try_clone().context("cloning the log file handle")?;
        let port = free_port();
        let mut cmd = Command::new(exe);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let process = Tethered::spawn(&mut cmd, &exe.display().to_string(), dir.path())?;
        let mut moto = MotoServer { port, process, dir };
        let ready = moto.process.wait_ready(
            "moto_server",
            START_DEADLINE,
            Duration::from_millis(100),
            || answers_http(port),
            || std::fs::read_to_string(&log_path).unwrap_or_default(),
        )?;
        Ok(ready.map(|()| moto))
    }

    /// `http://127.0.0.1:PORT`, for the AWS SDK's `endpoint_url` or `AWS_ENDPOINT_URL`.
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the server's stdout and stderr go (useful in a failing test's message).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("moto.log")
    }

    /// The server's log so far (best effort).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path().display()))
    }
}

/// True if something on 127.0.0.1:`port` answers an HTTP request with an HTTP status line.
fn answers_http(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(5));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    let request = b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

/// `moto_server` from `target/pyenv/bin` under the workspace root, else from `PATH`.
fn find_moto_server() -> Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| Path::new("."));
    let venv = workspace.join("target/pyenv/bin/moto_server");
    if venv.is_file() {
        return Ok(venv);
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("moto_server"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_default();
    match on_path {
        Some(exe) => Ok(exe),
        None => bail!(
            "moto_server not found in {} or on PATH: run `scripts/test --deps-only` (installs \
             moto[server] from PyPI into target/pyenv) or `pip install 'moto[server]'`",
            venv.display()
        ),
    }
}
