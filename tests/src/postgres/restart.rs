//! Stopping and restarting a server of the test's own ("the database goes away for real"):
//! fast shutdown, the same data directory and port on restart, the watchdog handed over so the
//! server is still removed however the test ends.

use super::*;

impl PgServer {
    /// The temp dir (cluster, log, socket); removed when the server is dropped.
    pub fn dir(&self) -> &Path {
        self.setup.dir.path()
    }

    /// Whether the server is stopped ([`PgServer::stop`] without a successful
    /// [`PgServer::restart`] since).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Stops the server as an operator would (fast shutdown: SIGINT to the postmaster, which
    /// ends every session and checkpoints) and waits up to 30 s until it has exited. The data
    /// dir stays; [`PgServer::restart`] brings the server back. Dropping a stopped server
    /// removes its dir. Fails if the server is already stopped or does not exit in time (then
    /// it is left running, and `Drop` still stops it).
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            bail!("PostgreSQL on port {} is already stopped", self.port);
        }
        let pid = self.server.id();
        // The postmaster is an unreaped child of ours, so its pid cannot have been reused.
        signal(pid, "INT")?;
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        while !has_exited(pid) {
            if Instant::now() >= deadline {
                bail!(
                    "postgres (pid {pid}) did not exit within {SHUTDOWN_DEADLINE:?} of SIGINT; \
                     its log:\n{}",
                    self.log()
                );
            }
            sleep(Duration::from_millis(20));
        }
        self.untether_exited()
    }

    /// Starts a stopped server again: `postgres` on the same data dir and the same port (URLs
    /// and the password stay valid), and waits up to 60 s until it accepts logins. If the port
    /// was taken while the server was stopped, the error says so and the server stays stopped
    /// (a later `restart` may succeed once the port is free).
    pub fn restart(&mut self) -> Result<()> {
        if !self.stopped {
            bail!(
                "PostgreSQL on port {} is running: restart() needs a stop() first",
                self.port
            );
        }
        let log_from = fs::metadata(self.setup.log_path()).map_or(0, |m| m.len());
        let log = OpenOptions::new()
            .append(true)
            .open(self.setup.log_path())
            .context("opening postgres.log to append")?;
        let server = self
            .setup
            .spawn_postgres_logging(self.port, self.ca.is_some(), log)?;
        let pid = server.id();
        // Tether the new postmaster before the old watchdog lets go of the dir.
        if let Err(e) = self.replace_watchdog(WATCHDOG, pid) {
            let mut server = server;
            let _ = server.kill();
            let _ = server.wait();
            return Err(e);
        }
        // The old `server` was reaped by `stop`; from here on `Drop` stops the new one.
        self.server = server;
        self.stopped = false;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if has_exited(pid) {
                let log = self.setup.log_since(log_from);
                self.untether_exited()?;
                if log.contains("could not bind") || log.contains("already in use") {
                    bail!(
                        "PostgreSQL could not listen on 127.0.0.1:{} again: the port was taken \
                         while the server was stopped (it stays stopped); its log:\n{log}",
                        self.port
                    );
                }
                bail!("postgres exited while restarting (it stays stopped); its log:\n{log}");
            }
            if self.setup.psql(self.port, "SELECT 1;").is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "postgres did not accept connections within {START_DEADLINE:?} of a \
                     restart; its log:\n{}",
                    self.setup.log_since(log_from)
                );
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// The postmaster has exited but is not reaped yet: hand the dir to a watchdog that signals
    /// nobody, release the old one, then reap. The server is then stopped.
    fn untether_exited(&mut self) -> Result<()> {
        self.replace_watchdog(STOPPED_WATCHDOG, 0)?;
        self.server.wait().context("reaping postgres")?;
        self.stopped = true;
        Ok(())
    }

    /// Starts a new watchdog (`script`, for `pid`) over the temp dir, then tells the current
    /// one `release` and waits for it (bounded). On error the current one stays in place.
    fn replace_watchdog(&mut self, script: &str, pid: u32) -> Result<()> {
        let (watchdog, tether) = spawn_watchdog(script, pid, self.setup.dir.path())?;
        let mut old = std::mem::replace(&mut self.watchdog, watchdog);
        if let Some(mut old_tether) = self.tether.replace(tether) {
            let _ = old_tether.write_all(b"release\n");
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        while matches!(old.try_wait(), Ok(None)) && Instant::now() < deadline {
            sleep(Duration::from_millis(10));
        }
        // A watchdog that did not leave in time is only a shell: kill it, it holds nothing.
        let _ = old.kill();
        let _ = old.wait();
        Ok(())
    }
}

/// Sends `SIG` (e.g. `INT`) to `pid` with the shell's `kill` (no `unsafe` here).
fn signal(pid: u32, sig: &str) -> Result<()> {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg("kill -s \"$1\" \"$2\"")
        .arg("sh")
        .arg(sig)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running kill -s {sig} {pid}"))?;
    check("kill", &out)
}

/// Whether the child `pid` has exited: it is a zombie (not yet reaped, so the pid is still
/// ours) or, if it was reaped after all, gone from /proc.
fn has_exited(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "PID (COMM) STATE …": COMM may hold spaces and parentheses, STATE follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X')),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}
