//! A throw-away PostgreSQL server: `initdb` in a temp dir, its own port, optional TLS with a CA
//! made at run time.
//!
//! ```text
//!   test ──sqlx (TCP, scram-sha-256)──> postgres -p PORT  (127.0.0.1 only; `hostssl` for TLS)
//!     │                                   ▲    ▲
//!     │  psql as superuser, Unix socket ──┘    │
//!     └──stdin pipe──> watchdog (sh) ──────────┘ fast shutdown, then rm -rf the temp dir
//! ```
//!
//! # Use
//!
//! Most tests share one server per test binary and take their own database:
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let url = sallyport_tests::postgres::PgServer::shared()?.fresh_database()?;
//! # Ok(()) }
//! ```
//!
//! [`PgServer::start`] and [`PgServer::start_tls`] give a server of the test's own (for tests
//! that restart, break or reconfigure it). The TLS server presents a certificate for `localhost`
//! and `127.0.0.1` signed by a CA generated for that server; its URLs carry
//! `sslmode=verify-full&sslrootcert=CA` and it accepts TCP logins only over TLS. The CA's key
//! never touches the disk; the server's key is written (mode 0600, owned by the server's user)
//! because PostgreSQL reads it from a file, and it goes with the temp dir.
//!
//! # Layout of the temp dir
//!
//! `data/` (the cluster), `postgres.log` (the server's stderr, quoted in start-up errors), the
//! Unix socket, and for TLS `ca.pem`, `server.crt`, `server.key`. When the harness runs as root
//! the dir belongs to the `postgres` system user and every PostgreSQL program runs as that user
//! (PostgreSQL refuses to run as root); the switch uses `std`'s `CommandExt::uid`/`gid`, which
//! also drops supplementary groups, so the pid the harness holds is the postmaster itself (no
//! `runuser` process in between). As any other user, everything runs as that user.
//!
//! # Roles and authentication
//!
//! The cluster's superuser is `postgres`, reachable only over the Unix socket (`trust`, in a
//! socket dir of mode 0700 that only its owner and root can enter). Tests log in as
//! `sallyport` with a random password (scram-sha-256) over TCP from 127.0.0.1 or ::1; that role
//! owns the database `sallyport` and every database made by [`PgServer::fresh_database`].
//!
//! # Clean-up
//!
//! Every server has a watchdog: a small `sh` started right after the postmaster, in its own
//! process group, with its stdin on a pipe whose write end only the test process holds
//! (close-on-exec, so no other child inherits it). The watchdog blocks reading that pipe. It
//! reads end-of-file when the harness drops the [`PgServer`] (also while unwinding from a
//! panic) **or when the test process exits or is killed in any way**, since the kernel then
//! closes the pipe. Either way it sends the postmaster SIGINT (fast shutdown), waits up to
//! 10 s for it to go, sends SIGKILL if it did not, and removes the temp dir. `Drop` waits for
//! the watchdog and only then reaps the postmaster, so the watchdog never signals a reused
//! pid. This is what makes the process-wide [`PgServer::shared`] server safe: statics are
//! never dropped, but the process's exit still closes the pipe.
//!
//! # Stopping and restarting a server of the test's own
//!
//! [`PgServer::stop`] and [`PgServer::restart`] (they take `&mut self`, so never the shared
//! server) take the database away for real and bring it back on the same data dir and port:
//!
//! ```text
//!   stop:    SIGINT ─▶ postmaster exits (a zombie: its pid stays ours) ─▶ new watchdog that
//!            only guards the temp dir ─▶ old watchdog told `release` ─▶ postmaster reaped
//!   restart: postgres -p SAME_PORT ─▶ new watchdog for the new pid ─▶ dir-only watchdog told
//!            `release` ─▶ wait for logins (if the port was taken meanwhile: an error naming it,
//!            and the server is stopped again)
//! ```
//!
//! There is a watchdog at every moment, and none ever holds the pid of a reaped process, so a
//! test that panics or dies while its server is stopped still leaves nothing behind, and the
//! `Drop` of a restarted server stops the new postmaster.

mod restart;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{chown, MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rand::distributions::Alphanumeric;
use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::ports::free_port;
use crate::process::spawn_watchdog;

/// How long the server may take to accept connections after it was started.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// How many ports to try when the server cannot bind its port (another process took it).
const START_ATTEMPTS: usize = 3;

/// How long `Drop` waits for the watchdog before killing both processes itself.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// How long [`PgServer::stop`] waits for the postmaster to exit after SIGINT.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// The login role and database that tests use.
const ROLE: &str = "sallyport";

/// Watchdog. `$1` = postmaster pid, `$2` = temp dir. On `gone` (the harness already reaped
/// the postmaster) it only removes the dir; otherwise (`stop`, or end-of-file because the test
/// process died) it shuts the server down first. The loop ends when the postmaster has removed
/// its pid file (clean shutdown) or no longer exists; SIGKILL only after 10 s. On `release`
/// (the harness stopped and will reap the postmaster, and another watchdog guards the dir) it
/// leaves without doing anything.
const WATCHDOG: &str = r#"
read -r word || word=
[ "$word" = release ] && exit 0
if [ "$word" != gone ]; then
    kill -INT "$1" 2>/dev/null
    i=0
    while [ -f "$2/data/postmaster.pid" ] && kill -0 "$1" 2>/dev/null; do
        if [ "$i" -ge 100 ]; then kill -KILL "$1" 2>/dev/null; break; fi
        sleep 0.1
        i=$((i + 1))
    done
fi
rm -rf -- "$2"
"#;

/// Watchdog of a stopped server ([`PgServer::stop`]): there is no postmaster to signal (`$1`
/// is unused), `$2` = temp dir. `release` (the server was started again and has a watchdog of
/// its own) leaves the dir; anything else, end-of-file included, removes it.
const STOPPED_WATCHDOG: &str = r#"
read -r word || word=
[ "$word" = release ] && exit 0
rm -rf -- "$2"
"#;

/// A running PostgreSQL server on 127.0.0.1; stopped and deleted on drop.
pub struct PgServer {
    port: u16,
    password: String,
    /// The CA file clients verify the server with; `Some` for a TLS server.
    ca: Option<PathBuf>,
    setup: Setup,
    server: Child,
    watchdog: Child,
    tether: Option<ChildStdin>,
    next_database: AtomicU64,
    /// Stopped by [`PgServer::stop`]: `server` is reaped, the watchdog guards only the dir.
    stopped: bool,
}

impl fmt::Debug for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No password here: Debug output ends up in test logs.
        f.debug_struct("PgServer")
            .field("port", &self.port)
            .field("pid", &self.server.id())
            .field("dir", &self.setup.dir.path())
            .field("ca", &self.ca)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl PgServer {
    /// Starts a plain (no TLS) server of the caller's own and waits until it accepts logins.
    pub fn start() -> Result<Self> {
        Self::start_with(false)
    }

    /// Starts a server with `ssl=on` and a fresh CA, accepting TCP logins over TLS only.
    pub fn start_tls() -> Result<Self> {
        Self::start_with(true)
    }

    /// The plain server shared by every test in this test binary, started on first use.
    /// Take a database of your own with [`PgServer::fresh_database`].
    pub fn shared() -> Result<&'static Self> {
        static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();
        Self::shared_from(&SHARED, false)
    }

    /// The TLS server shared by every test in this test binary, started on first use.
    pub fn shared_tls() -> Result<&'static Self> {
        static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();
        Self::shared_from(&SHARED, true)
    }

    fn shared_from(
        cell: &'static OnceLock<Result<Self, String>>,
        tls: bool,
    ) -> Result<&'static Self> {
        // The error is kept as text so that every test sharing the server fails with it.
        match cell.get_or_init(|| Self::start_with(tls).map_err(|e| format!("{e:#}"))) {
            Ok(server) => Ok(server),
            Err(e) => Err(anyhow!("the shared PostgreSQL server did not start: {e}")),
        }
    }

    /// URL of the `sallyport` database: `postgres://sallyport:PW@127.0.0.1:PORT/sallyport`, or
    /// for a TLS server `postgres://sallyport:PW@localhost:PORT/sallyport?sslmode=verify-full&
    /// sslrootcert=/path/ca.pem`.
    pub fn url(&self) -> String {
        self.url_for(ROLE)
    }

    /// Creates a new, empty database with a unique name, owned by `sallyport`, and returns
    /// its URL (same form as [`PgServer::url`]).
    pub fn fresh_database(&self) -> Result<String> {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("sallyport_test_{n}");
        self.setup
            .psql(self.port, &format!("CREATE DATABASE {name} OWNER {ROLE};"))
            .with_context(|| format!("creating database {name}"))?;
        Ok(self.url_for(&name))
    }

    /// The CA certificate (PEM) that signed a TLS server's certificate; `None` without TLS.
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        self.ca.clone()
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log so far (best effort), for a failing test's message.
    pub fn log(&self) -> String {
        self.setup.log()
    }

    fn url_for(&self, database: &str) -> String {
        let (port, pw) = (self.port, &self.password);
        match &self.ca {
            None => format!("postgres://{ROLE}:{pw}@127.0.0.1:{port}/{database}"),
            Some(ca) => format!(
                "postgres://{ROLE}:{pw}@localhost:{port}/{database}?sslmode=verify-full&sslrootcert={}",
                ca.display()
            ),
        }
    }

    fn start_with(tls: bool) -> Result<Self> {
        let bindir = find_bindir()?;
        let owner = Owner::for_server()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&bindir, owner, tls)? {
                Ok(server) => return Ok(server),
                Err(port_taken) => last_error = Some(port_taken),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("PostgreSQL did not start")))
    }

    /// One attempt. The outer error is fatal; the inner one means the port was taken and
    /// another attempt with a new port may succeed.
    fn start_once(bindir: &Path, owner: Option<Owner>, tls: bool) -> Result<Result<Self>> {
        let setup = Setup::new(bindir, owner)?;
        setup.initdb()?;
        setup.write_owned(
            &setup.data().join("pg_hba.conf"),
            pg_hba(tls).as_bytes(),
            0o600,
        )?;
        let ca = if tls {
            Some(setup.write_tls_files()?)
        } else {
            None
        };
        let port = free_port();
        let server = setup.spawn_postgres(port, tls)?;
        let (watchdog, tether) = match spawn_watchdog(WATCHDOG, server.id(), setup.dir.path()) {
            Ok(w) => w,
            Err(e) => {
                let mut server = server;
                let _ = server.kill();
                let _ = server.wait();
                return Err(e);
            }
        };
        // From here on, Drop cleans up whatever happens.
        let mut pg = PgServer {
            port,
            password: random_password(),
            ca,
            setup,
            server,
            watchdog,
            tether: Some(tether),
            next_database: AtomicU64::new(0),
            stopped: false,
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = pg.server.try_wait().context("polling postgres")? {
                let log = pg.log();
                let error = anyhow!("postgres exited during start-up ({status}); its log:\n{log}");
                if log.contains("could not bind") || log.contains("already in use") {
                    return Ok(Err(error));
                }
                return Err(error);
            }
            if pg.setup.psql(port, "SELECT 1;").is_ok() {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "postgres did not accept connections within {START_DEADLINE:?}; its log:\n{}",
                    pg.log()
                );
            }
            sleep(Duration::from_millis(100));
        }
        // Over stdin, not argv: the password stays out of the process list.
        let sql = format!(
            "CREATE ROLE {ROLE} LOGIN PASSWORD '{}';\nCREATE DATABASE {ROLE} OWNER {ROLE};\n",
            pg.password
        );
        pg.setup
            .psql(port, &sql)
            .context("creating the sallyport role and database")?;
        Ok(Ok(pg))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // If the postmaster is already gone (and now reaped), the watchdog must not signal it.
        let word: &[u8] = match self.server.try_wait() {
            Ok(Some(_)) => b"gone\n",
            _ => b"stop\n",
        };
        if let Some(mut tether) = self.tether.take() {
            let _ = tether.write_all(word);
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        while matches!(self.watchdog.try_wait(), Ok(None)) && Instant::now() < deadline {
            sleep(Duration::from_millis(20));
        }
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        // Normally a no-op on an exited (zombie) postmaster; reaping it comes last.
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The account PostgreSQL runs as, when the harness runs as root.
#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

impl Owner {
    /// `Some(postgres)` when running as root (PostgreSQL refuses root), `None` otherwise.
    fn for_server() -> Result<Option<Self>> {
        let euid = fs::metadata("/proc/self")
            .context("reading /proc/self to learn the effective uid")?
            .uid();
        if euid != 0 {
            return Ok(None);
        }
        let out = Command::new("getent")
            .args(["passwd", "postgres"])
            .output()
            .context("running getent passwd postgres")?;
        let line = String::from_utf8_lossy(&out.stdout);
        let mut fields = line.trim().split(':').skip(2);
        let (Some(uid), Some(gid)) = (fields.next(), fields.next()) else {
            bail!(
                "running as root, but there is no `postgres` system user to run PostgreSQL as: \
                 install the Debian package `postgresql` (apt-get install postgresql)"
            );
        };
        Ok(Some(Owner {
            uid: uid.parse().context("parsing the postgres uid")?,
            gid: gid.parse().context("parsing the postgres gid")?,
        }))
    }
}

/// The temp dir and the programs that work on it.
#[derive(Debug)]
struct Setup {
    bindir: PathBuf,
    owner: Option<Owner>,
    dir: TempDir,
}

impl Setup {
    fn new(bindir: &Path, owner: Option<Owner>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sallyport-pg-")
            .tempdir()
            .context("creating a temp dir for PostgreSQL")?;
        // The temp dir is created with mode 0700; hand it to the server's user.
        if let Some(o) = owner {
            chown(dir.path(), Some(o.uid), Some(o.gid))
                .with_context(|| format!("chown postgres {}", dir.path().display()))?;
        }
        Ok(Setup {
            bindir: bindir.to_owned(),
            owner,
            dir,
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.log_path())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path().display()))
    }

    /// A PostgreSQL program from `bindir`, as the server's user, with a clean environment.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C")
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        if let Some(o) = self.owner {
            cmd.uid(o.uid).gid(o.gid);
        }
        cmd
    }

    fn initdb(&self) -> Result<()> {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.data())
            .args(["--username=postgres", "--auth=trust", "--encoding=UTF8"])
            .args(["--locale=C", "--no-sync", "--no-instructions"])
            .output()
            .context("running initdb")?;
        check("initdb", &out)
    }

    fn spawn_postgres(&self, port: u16, tls: bool) -> Result<Child> {
        let log = File::create(self.log_path()).context("creating postgres.log")?;
        self.spawn_postgres_logging(port, tls, log)
    }

    /// The log from byte `from` on (what a restart wrote), best effort.
    fn log_since(&self, from: u64) -> String {
        let log = self.log();
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        log.get(from..).unwrap_or(&log).to_owned()
    }

    /// `postgres` with its stderr into `log`.
    fn spawn_postgres_logging(&self, port: u16, tls: bool, log: File) -> Result<Child> {
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(self.dir.path());
        let settings = [
            "listen_addresses=127.0.0.1",
            "unix_socket_permissions=0700",
            "password_encryption=scram-sha-256",
            "max_connections=300",
            "shared_buffers=32MB",
            // Throw-away data: durability buys nothing and costs seconds per test.
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
        ];
        for setting in settings {
            cmd.arg("-c").arg(setting);
        }
        if tls {
            let (cert, key) = (
                self.dir.path().join("server.crt"),
                self.dir.path().join("server.key"),
            );
            cmd.args(["-c", "ssl=on", "-c", "ssl_min_protocol_version=TLSv1.2"])
                .arg("-c")
                .arg(format!("ssl_cert_file={}", cert.display()))
                .arg("-c")
                .arg(format!("ssl_key_file={}", key.display()));
        }
        cmd.stdout(Stdio::null())
            .stderr(log)
            // Own process group: Ctrl-C reaches the test; the watchdog does the shutdown.
            .process_group(0)
            .spawn()
            .context("starting postgres")
    }

    /// Runs SQL as the superuser over the Unix socket, statement by statement, stopping at the
    /// first error. The SQL goes over stdin.
    fn psql(&self, port: u16, sql: &str) -> Result<()> {
        let mut child = self
            .command("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-U", "postgres", "-d", "postgres"])
            .arg("-h")
            .arg(self.dir.path())
            .arg("-p")
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running psql")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(sql.as_bytes()).context("writing to psql")?;
        }
        let out = child.wait_with_output().context("waiting for psql")?;
        check("psql", &out)
    }

    /// Writes a file and gives it to the server's user with `mode`.
    fn write_owned(&self, path: &Path, contents: &[u8], mode: u32) -> Result<()> {
        let _ = fs::remove_file(path);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(contents)
            .with_context(|| format!("writing {}", path.display()))?;
        if let Some(o) = self.owner {
            chown(path, Some(o.uid), Some(o.gid))
                .with_context(|| format!("chown postgres {}", path.display()))?;
        }
        Ok(())
    }

    /// Makes a CA (its key stays in memory) and a server certificate for `localhost` and
    /// `127.0.0.1`; writes `ca.pem`, `server.crt` and `server.key`. Returns the CA's path.
    fn write_tls_files(&self) -> Result<PathBuf> {
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sallyport test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .context("self-signing the CA")?;

        let key = KeyPair::generate().context("generating the server key")?;
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .context("server certificate parameters")?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .context("signing the server certificate")?;

        let dir = self.dir.path();
        let ca_path = dir.join("ca.pem");
        self.write_owned(&ca_path, ca_cert.pem().as_bytes(), 0o644)?;
        self.write_owned(&dir.join("server.crt"), cert.pem().as_bytes(), 0o644)?;
        // PostgreSQL insists: owned by the server's user, no access for group or others.
        self.write_owned(
            &dir.join("server.key"),
            key.serialize_pem().as_bytes(),
            0o600,
        )?;
        Ok(ca_path)
    }
}

/// Client authentication: superuser over the socket; the rest by password over loopback TCP,
/// and over TLS only (`hostssl`) for a TLS server.
fn pg_hba(tls: bool) -> String {
    let host = if tls { "hostssl" } else { "host" };
    format!(
        "# Written by sallyport-tests.\n\
         local all postgres trust\n\
         {host} all {ROLE} 127.0.0.1/32 scram-sha-256\n\
         {host} all {ROLE} ::1/128 scram-sha-256\n"
    )
}

fn random_password() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn check(program: &str, out: &Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "{program} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The newest `/usr/lib/postgresql/N/bin`, else `pg_config --bindir`, else the dir on `PATH`
/// that holds both `initdb` and `postgres`.
fn find_bindir() -> Result<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_server(bin))
        .max_by_key(|(version, _)| *version);
    if let Some((_, bin)) = newest {
        return Ok(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&bin) {
            return Ok(bin);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(bin) = std::env::split_paths(&path).find(|dir| has_server(dir)) {
            return Ok(bin);
        }
    }
    bail!(
        "PostgreSQL server programs (initdb, postgres) not found in /usr/lib/postgresql/*/bin, \
         `pg_config --bindir` or PATH: install the Debian package `postgresql` \
         (apt-get install postgresql), e.g. with `scripts/test --deps-only`"
    )
}
