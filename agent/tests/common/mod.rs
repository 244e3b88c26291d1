//! Starts the real `sallyport-agent` binary and drives it with OpenSSH's tools.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running agent on a socket in its own temp dir; killed and reaped on drop.
pub struct AgentProcess {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl AgentProcess {
    /// Starts `sallyport-agent --foreground --socket DIR/s/agent.sock` and waits for its
    /// `SSH_AUTH_SOCK=` line (at most 10 s).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s").join("agent.sock");
        let child = spawn_on(&socket).expect("agent starts");
        Self { child, socket, dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `ssh-add ARGS` against this agent.
    pub fn ssh_add(&self, args: &[&str]) -> Output {
        self.tool("ssh-add", args, &[])
    }

    /// Runs a tool with `SSH_AUTH_SOCK` pointing at this agent, stdin closed, bounded by 30 s.
    pub fn tool(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("SSH_AUTH_SOCK", &self.socket)
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_bounded(cmd)
    }

    /// `ssh-add -l` output (stdout), empty when the agent has no identities.
    pub fn list(&self) -> String {
        let out = self.ssh_add(&["-l"]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if stdout.contains("The agent has no identities.") {
            assert_eq!(out.status.code(), Some(1));
            return String::new();
        }
        assert!(out.status.success(), "{}", text(&out));
        stdout
    }

    /// Writes a fresh key pair with ssh-keygen into the test dir; returns the private key path.
    pub fn keygen(&self, name: &str, kind: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut args = vec!["-q", "-t", kind, "-N", "", "-C", name, "-f"];
        let p = path.to_str().unwrap().to_owned();
        args.push(&p);
        if kind == "rsa" {
            args.extend(["-b", "2048"]);
        }
        let out = self.tool("ssh-keygen", &args, &[]);
        assert!(out.status.success(), "ssh-keygen: {}", text(&out));
        path
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns the agent on `socket`; `Err(output)` if it exits before listening.
pub fn spawn_on(socket: &Path) -> Result<Child, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sallyport-agent"))
        .arg("--foreground")
        .arg("--socket")
        .arg(socket)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    if first.starts_with("SSH_AUTH_SOCK=") {
        assert_eq!(
            first.trim(),
            format!("SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;", socket.display())
        );
        // Drain stderr so the agent never blocks on a full pipe.
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("agent: {line}");
                }
            });
        }
        Ok(child)
    } else {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        Err(text(&out))
    }
}

/// Runs a command with a 30 s bound (killed after that).
pub fn run_bounded(mut cmd: Command) -> Output {
    let child = cmd.spawn().unwrap();
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(id.to_string())
                .status();
            panic!("{cmd:?} did not finish within 30 s");
        }
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `f` every 50 ms until it is true or `limit` passes; returns the elapsed time.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The SHA-256 fingerprint of a public key file, as `ssh-add -l` prints it.
pub fn fingerprint(pubkey: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(pubkey)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}
