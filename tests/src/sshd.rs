//! A throw-away OpenSSH `sshd`: its own host key and configuration in a temp dir, on a free
//! loopback port, as the target behind the gateway in end-to-end tests.
//!
//! ```text
//!   ssh -J gw ──▶ sallyportd ──TCP──▶ /usr/sbin/sshd -D -e -f DIR/sshd_config  (127.0.0.1:PORT)
//!                                       ▲
//!   test ──stdin pipe──▶ watchdog (sh) ─┘ kills it if the test process dies
//! ```
//!
//! [`Sshd::start`] writes a host key (`ssh-keygen`, in the temp dir: a test target's key, not a
//! gateway secret), `authorized_keys` for `root` with the keys given, optionally a
//! `TrustedUserCAKeys` file, and a configuration with what these machines need (LAB.md):
//! `StrictModes no`, `UsePAM no`, `MaxStartups 200` (so that 50 jumps at once are not
//! dropped), public keys only, listening on 127.0.0.1 only. It waits until the port answers
//! with an SSH version string. `Drop` kills the server; the watchdog does it if the test process
//! dies first. Logs go to `DIR/sshd.log` ([`Sshd::log`]).

use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::ports::free_port;
use crate::process::{with_retries, Tethered};

/// The sshd binary (it must be started by absolute path).
pub const SSHD: &str = "/usr/sbin/sshd";

/// How long sshd may take to answer.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// Ports to try when sshd cannot bind (another process took the port).
const START_ATTEMPTS: usize = 3;

/// What the target accepts.
#[derive(Debug, Clone, Default)]
pub struct SshdOptions {
    /// OpenSSH public key lines allowed to log in as `root`.
    pub authorized_keys: Vec<String>,
    /// A user CA (one OpenSSH public key line) whose certificates are accepted.
    pub trusted_user_ca: Option<String>,
}

/// A running `sshd` on 127.0.0.1; killed on drop.
pub struct Sshd {
    port: u16,
    /// Dropped before `dir`: the server is gone before its directory is removed.
    process: Tethered,
    host_key: String,
    dir: TempDir,
}

impl fmt::Debug for Sshd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sshd")
            .field("port", &self.port)
            .field("pid", &self.process.id())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Sshd {
    /// Starts sshd on a free loopback port and waits until it answers.
    pub fn start(opts: &SshdOptions) -> Result<Self> {
        if !Path::new(SSHD).is_file() {
            bail!("{SSHD} not found: install openssh-server (scripts/test --deps-only does)");
        }
        // Privilege separation wants this directory.
        fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
        with_retries(START_ATTEMPTS, "sshd", || Self::start_once(opts))
    }

    fn start_once(opts: &SshdOptions) -> Result<Result<Self>> {
        let dir = tempfile::Builder::new()
            .prefix("sallyport-sshd-")
            .tempdir()
            .context("creating a temp dir for sshd")?;
        let d = dir.path();
        let host_key = d.join("host_ed25519");
        let keygen = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "sallyport-test-target",
                "-f",
            ])
            .arg(&host_key)
            .output()
            .context("running ssh-keygen (install openssh-client)")?;
        if !keygen.status.success() {
            bail!(
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&keygen.stderr)
            );
        }
        let host_public = fs::read_to_string(d.join("host_ed25519.pub"))?;
        let authorized = d.join("authorized_keys");
        write_private(&authorized, &(opts.authorized_keys.join("\n") + "\n"))?;
        let port = free_port();
        let mut config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\n\
             AuthorizedKeysFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             MaxStartups 200\nMaxSessions 100\nLogLevel VERBOSE\nPrintMotd no\n\
             AllowTcpForwarding no\nX11Forwarding no\nSubsystem sftp internal-sftp\n",
            host_key.display(),
            authorized.display(),
        );
        if let Some(ca) = &opts.trusted_user_ca {
            let ca_path = d.join("user_ca.pub");
            write_private(&ca_path, &format!("{ca}\n"))?;
            config.push_str(&format!("TrustedUserCAKeys {}\n", ca_path.display()));
        }
        let config_path = d.join("sshd_config");
        write_private(&config_path, &config)?;
        let log_path = d.join("sshd.log");
        let log = File::create(&log_path)?;
        let mut cmd = Command::new(SSHD);
        cmd.args(["-D", "-e", "-f"])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let process = Tethered::spawn(&mut cmd, "sshd", d)?;
        let mut sshd = Sshd {
            port,
            process,
            host_key: host_public.trim().to_owned(),
            dir,
        };
        let ready = sshd.process.wait_ready(
            "sshd",
            START_DEADLINE,
            Duration::from_millis(50),
            || answers_ssh(port),
            || fs::read_to_string(&log_path).unwrap_or_default(),
        )?;
        Ok(ready.map(|()| sshd))
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its host public key, one OpenSSH line (for `known_hosts`).
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// Its `known_hosts` line.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key)
    }

    /// Its temp dir.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// True if 127.0.0.1:`port` sends an SSH version string.
fn answers_ssh(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = [0u8; 4];
    s.read_exact(&mut head).is_ok() && &head == b"SSH-"
}
