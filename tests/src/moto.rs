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
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::ports::free_port;

/// How long `moto_server` may take to answer HTTP (it imports a lot of Python on start-up, and
/// the machine may be busy compiling).
const START_DEADLINE: Duration = Duration::from_secs(90);

/// How many ports to try when the server exits during start-up (e.g. its port was taken).
const START_ATTEMPTS: usize = 3;

/// Watchdog: waits on stdin; `release` means the harness cleaned up itself, end-of-file without
/// it means the test process died, so kill the server and remove its log directory.
/// `$1` = server pid, `$2` = directory to remove.
const WATCHDOG: &str = r#"
read -r word || word=
[ "$word" = release ] && exit 0
kill -KILL "$1" 2>/dev/null
rm -rf -- "$2"
"#;

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
    server: Child,
    watchdog: Child,
    tether: Option<ChildStdin>,
    /// Holds the server's log; removed on drop.
    dir: TempDir,
}

impl fmt::Debug for MotoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MotoServer")
            .field("port", &self.port)
            .field("pid", &self.server.id())
            .field("log", &self.log_path())
            .finish_non_exhaustive()
    }
}

impl MotoServer {
    /// Starts `moto_server` on a free loopback port and waits until it answers HTTP.
    pub fn start() -> Result<Self> {
        let exe = find_moto_server()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&exe)? {
                Ok(server) => return Ok(server),
                Err(exited_early) => last_error = Some(exited_early),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("moto_server did not start")))
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
        let server = Command::new(exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Own process group: a terminal's Ctrl-C reaches the test, and the watchdog cleans up.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let watchdog = spawn_watchdog(WATCHDOG, server.id(), dir.path());
        let (watchdog, tether) = match watchdog {
            Ok(w) => w,
            Err(e) => {
                let mut server = server;
                let _ = server.kill();
                let _ = server.wait();
                return Err(e);
            }
        };
        let mut moto = MotoServer {
            port,
            server,
            watchdog,
            tether: Some(tether),
            dir,
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = moto.server.try_wait().context("polling moto_server")? {
                return Ok(Err(anyhow::anyhow!(
                    "moto_server exited during start-up ({status}); its log:\n{}",
                    moto.log()
                )));
            }
            if answers_http(port) {
                return Ok(Ok(moto));
            }
            if Instant::now() >= deadline {
                bail!(
                    "moto_server did not answer HTTP on 127.0.0.1:{port} within {:?}; its log:\n{}",
                    START_DEADLINE,
                    moto.log()
                );
            }
            sleep(Duration::from_millis(100));
        }
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

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // The server is reaped: tell the watchdog to leave, so it never signals a reused pid.
        if let Some(mut tether) = self.tether.take() {
            let _ = tether.write_all(b"release\n");
        }
        let _ = self.watchdog.wait();
    }
}

/// Starts `sh -c SCRIPT sh PID DIR` with its stdin on a pipe whose write end this process
/// holds (close-on-exec, so no other child inherits it).
pub(crate) fn spawn_watchdog(script: &str, pid: u32, dir: &Path) -> Result<(Child, ChildStdin)> {
    let mut watchdog = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(pid.to_string())
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Own process group, so Ctrl-C on the test does not kill the watchdog before it acts.
        .process_group(0)
        .spawn()
        .context("starting the watchdog shell /bin/sh")?;
    match watchdog.stdin.take() {
        Some(tether) => Ok((watchdog, tether)),
        None => {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            bail!("the watchdog shell has no stdin pipe")
        }
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
