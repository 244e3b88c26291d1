//! Server processes tied to the test process, shared by the harness's servers.
//!
//! ```text
//!   test ──stdin pipe──▶ watchdog (sh) ──kills──▶ server   (if the test process dies)
//! ```
//!
//! A small watchdog shell holds the read end of a pipe whose write end only this process holds
//! (close-on-exec, so no other child inherits it). When the test process exits in any way, the
//! kernel closes the pipe, the watchdog reads end-of-file and cleans up. On a normal drop the
//! harness reaps the server itself and tells the watchdog `release` first, so the watchdog never
//! signals a pid that was already reaped and reused.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Watchdog for a server that may simply be killed: `$1` = server pid, `$2` = directory to
/// remove. End-of-file without `release` means the test process died.
const KILL_WATCHDOG: &str = r#"
read -r word || word=
[ "$word" = release ] && exit 0
kill -KILL "$1" 2>/dev/null
rm -rf -- "$2"
"#;

/// A server child with its watchdog; `Drop` kills and reaps the server, then releases the
/// watchdog.
#[derive(Debug)]
pub(crate) struct Tethered {
    server: Child,
    watchdog: Child,
    tether: Option<ChildStdin>,
}

impl Tethered {
    /// Spawns `cmd` in its own process group (a terminal's Ctrl-C reaches the test, and the
    /// watchdog cleans up) with a kill-and-remove watchdog for `dir`.
    pub(crate) fn spawn(cmd: &mut Command, what: &str, dir: &Path) -> Result<Self> {
        let server = cmd
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        match spawn_watchdog(KILL_WATCHDOG, server.id(), dir) {
            Ok((watchdog, tether)) => Ok(Self {
                server,
                watchdog,
                tether: Some(tether),
            }),
            Err(e) => {
                let mut server = server;
                let _ = server.kill();
                let _ = server.wait();
                Err(e)
            }
        }
    }

    /// The server's pid.
    pub(crate) fn id(&self) -> u32 {
        self.server.id()
    }

    /// Polls `ready` every `poll` until it holds or `deadline` passes. The outer error is fatal;
    /// the inner one means the server exited during start-up (most likely its port was taken)
    /// and another attempt on a new port may help. `log` is shown with either.
    pub(crate) fn wait_ready(
        &mut self,
        what: &str,
        deadline: Duration,
        poll: Duration,
        ready: impl Fn() -> bool,
        log: impl Fn() -> String,
    ) -> Result<Result<()>> {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self
                .server
                .try_wait()
                .with_context(|| format!("polling {what}"))?
            {
                return Ok(Err(anyhow!(
                    "{what} exited during start-up ({status}); its log:\n{}",
                    log()
                )));
            }
            if ready() {
                return Ok(Ok(()));
            }
            if Instant::now() >= until {
                bail!(
                    "{what} did not answer within {deadline:?}; its log:\n{}",
                    log()
                );
            }
            sleep(poll);
        }
    }
}

impl Drop for Tethered {
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

/// Runs `attempt` up to `attempts` times while it reports a retryable failure (the inner
/// error); a fatal (outer) error ends at once.
pub(crate) fn with_retries<T>(
    attempts: usize,
    what: &str,
    mut attempt: impl FnMut() -> Result<Result<T>>,
) -> Result<T> {
    let mut last = None;
    for _ in 0..attempts {
        match attempt()? {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("{what} did not start")))
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
