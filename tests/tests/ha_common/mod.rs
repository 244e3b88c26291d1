//! What the HA suites share: two in-process gateways (`gw-a`, `gw-b`) on one real PostgreSQL
//! database (the harness's shared server, or with [`Ha::start_on`] a server of the test's own;
//! a database of the test's own either way), one target `sshd`,
//! and an OpenSSH client configuration that can jump through either.
//!
//! ```text
//!                       ┌─ gw-a (API, SSH, LISTEN as sallyport-listen/gw-a) ─┐
//!   ssh -J gwa|gwb ─────┤                                                    ├─ [TcpCut] ─ PostgreSQL
//!                       └─ gw-b (API, SSH, LISTEN as sallyport-listen/gw-b) ─┘
//!                                      └──────────▶ sshd (127.0.0.1, the target)
//! ```
//!
//! With [`HaOptions::cut`], the gateways reach PostgreSQL through a TCP relay the test can cut
//! (existing connections closed, new ones refused) and restore: "the database is unreachable"
//! without stopping the shared server.

#![allow(dead_code)] // Each suite uses part of it.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;
use sallyport_core::api::{CreateGrant, CreateUser};
use sallyport_core::audit::Record;
use sallyport_core::model::{GrantId, GrantObject, PortSpec, Protocol, Role, Subject, UserName};
use sallyport_core::time::Timestamp;
use sallyport_gateway::control::{listener_name, Actor, Control, PropagationOptions};
use sallyport_gateway::dev::{DevGateway, DevOptions, DevSshLimits, DevStore};
use sallyport_gateway::secrets::GatewaySecrets;
use sallyport_tests::postgres::PgServer;
use sallyport_tests::sshd::{Sshd, SshdOptions};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;

/// How the pair is set up.
#[derive(Debug, Clone, Default)]
pub struct HaOptions {
    /// Reach PostgreSQL through a relay the test can cut.
    pub cut: bool,
    /// The gateways' propagation settings.
    pub propagation: PropagationOptions,
}

/// Two gateways on one database, a target and a client configuration.
pub struct Ha {
    pub a: DevGateway,
    pub b: DevGateway,
    /// The database URL, direct (not through the relay), for the test's own queries.
    pub url: String,
    pub db: PgPool,
    pub relay: Option<TcpCut>,
    pub sshd: Sshd,
    pub alice: UserName,
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
}

pub fn admin() -> Actor {
    Actor {
        name: "admin".into(),
        source: None,
    }
}

fn new_key() -> PrivateKey {
    let mut seed = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut seed);
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

impl Ha {
    /// The pair on a database of its own on the harness's shared server.
    pub async fn start(opts: HaOptions) -> Ha {
        let server = PgServer::shared().unwrap_or_else(|e| panic!("{e:#}"));
        Ha::start_on(server, opts).await
    }

    /// The pair on a database of its own on `server` (e.g. a server of the test's own, that
    /// the test stops and restarts; `server` is only borrowed while the pair starts).
    pub async fn start_on(server: &PgServer, opts: HaOptions) -> Ha {
        let url = server.fresh_database().unwrap();
        let relay = if opts.cut {
            Some(TcpCut::start(SocketAddr::from(([127, 0, 0, 1], server.port()))).await)
        } else {
            None
        };
        let gw_url = match &relay {
            Some(r) => url.replace(
                &format!(":{}/", server.port()),
                &format!(":{}/", r.addr().port()),
            ),
            None => url.clone(),
        };
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(GatewaySecrets::generate().unwrap());
        let start = |name: &'static str| {
            let store = DevStore {
                url: gw_url.clone(),
                instance: name.to_owned(),
                propagation: opts.propagation.clone(),
                secrets: Some(Arc::clone(&secrets)),
            };
            let state_dir = dir.path().join(name);
            async move {
                DevGateway::start_with_store(
                    DevOptions {
                        state_dir,
                        api_listen: "127.0.0.1:0".parse().unwrap(),
                        ssh_listen: "127.0.0.1:0".parse().unwrap(),
                    },
                    DevSshLimits::default(),
                    Some(store),
                )
                .await
                .unwrap()
            }
        };
        // One after the other: each creates the bootstrap admin if it is missing.
        let a = start("gw-a").await;
        let b = start("gw-b").await;
        let db = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap();

        let alice: UserName = "alice".parse().unwrap();
        let control = a.gateway().control();
        control
            .create_user(
                &admin(),
                CreateUser {
                    name: alice.clone(),
                    roles: vec![Role::Engineer],
                    groups: Vec::new(),
                },
            )
            .await
            .unwrap();
        let key = new_key();
        let line = key.public_key().to_openssh().unwrap();
        control.add_key(&admin(), &alice, &line).await.unwrap();
        let sshd = Sshd::start(&SshdOptions {
            authorized_keys: vec![line],
            trusted_user_ca: None,
        })
        .unwrap();

        let client = dir.path().join("client");
        std::fs::create_dir(&client).unwrap();
        let key_path = client.join("alice");
        std::fs::write(
            &key_path,
            key.to_openssh(LineEnding::LF).unwrap().as_bytes(),
        )
        .unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let host_key = secrets
            .ssh_host_public_key()
            .to_openssh()
            .unwrap()
            .trim()
            .to_owned();
        let (pa, pb) = (a.ssh_addr().port(), b.ssh_addr().port());
        std::fs::write(
            client.join("known_hosts"),
            format!(
                "[127.0.0.1]:{pa} {host_key}\n[127.0.0.1]:{pb} {host_key}\n{}\n",
                sshd.known_hosts_line()
            ),
        )
        .unwrap();
        let config = client.join("config");
        std::fs::write(
            &config,
            format!(
                "Host gwa\n  HostName 127.0.0.1\n  Port {pa}\n  User alice\n\
                 Host gwb\n  HostName 127.0.0.1\n  Port {pb}\n  User alice\n\
                 Host *\n  IdentityFile {dir}/alice\n  IdentitiesOnly yes\n\
                 UserKnownHostsFile {dir}/known_hosts\n  GlobalKnownHostsFile /dev/null\n\
                 StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 20\n\
                 KexAlgorithms curve25519-sha256\n  ControlMaster no\n  ControlPath none\n  \
                 LogLevel INFO\n",
                dir = client.display(),
            ),
        )
        .unwrap();
        Ha {
            a,
            b,
            url,
            db,
            relay,
            sshd,
            alice,
            config,
            dir,
        }
    }

    pub fn ca(&self) -> &Arc<Control> {
        self.a.gateway().control()
    }

    pub fn cb(&self) -> &Arc<Control> {
        self.b.gateway().control()
    }

    /// An `ssh` grant for alice to the target, made through `control`.
    pub async fn grant(&self, control: &Control, duration: Duration) -> GrantId {
        control
            .create_grant(
                &admin(),
                CreateGrant {
                    subject: Subject::User(self.alice.clone()),
                    object: "127.0.0.1/32".parse::<GrantObject>().unwrap(),
                    protocols: vec![Protocol::Ssh],
                    ports: Some(self.sshd.port().to_string().parse::<PortSpec>().unwrap()),
                    logins: Vec::new(),
                    options: Default::default(),
                    not_before: None,
                    expires_at: None,
                    duration_secs: Some(duration.as_secs()),
                    reason: "ha test".parse().unwrap(),
                },
            )
            .await
            .unwrap()
            .id
    }

    /// Whether `control`'s snapshot has `grant` in force for alice.
    pub fn sees(&self, control: &Control, grant: GrantId) -> bool {
        control
            .snapshot()
            .active_grants(&self.alice, Timestamp::now())
            .contains(&grant)
    }

    /// Waits until `control`'s snapshot does (or, `want = false`, does not) have `grant`;
    /// returns how long that took.
    pub async fn wait_sees(
        &self,
        control: &Control,
        grant: GrantId,
        want: bool,
        within: Duration,
    ) -> Duration {
        let start = Instant::now();
        while self.sees(control, grant) != want {
            assert!(
                start.elapsed() < within,
                "grant {grant} still {} after {within:?}",
                if want { "missing" } else { "present" }
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        start.elapsed()
    }

    /// `ssh -J VIA -p TARGET root@127.0.0.1 COMMAND`, VIA = `gwa` or `gwb`.
    pub fn jump(&self, via: &str, command: &str) -> Child {
        let port = self.sshd.port().to_string();
        Command::new("ssh")
            .arg("-F")
            .arg(&self.config)
            .args(["-J", via, "-p", &port, "root@127.0.0.1", command])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// `ssh -J VIA … cat`, proven to carry data; returns the client and its stdin (held open).
    pub async fn live_cat(&self, via: &str) -> (Child, ChildStdin) {
        let mut child = self.jump(via, "cat");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello\n").await.unwrap();
        stdin.flush().await.unwrap();
        let mut line = [0u8; 6];
        let read = tokio::time::timeout(
            Duration::from_secs(30),
            child.stdout.as_mut().unwrap().read_exact(&mut line),
        )
        .await;
        if !matches!(read, Ok(Ok(_))) {
            let _ = child.start_kill();
            let out = child.wait_with_output().await.unwrap();
            panic!(
                "no echo through {via}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(&line, b"hello\n");
        (child, stdin)
    }

    /// Runs `ssh -J VIA … true` to the end; its exit status and stderr.
    pub async fn jump_once(&self, via: &str) -> (bool, String) {
        let child = self.jump(via, "true");
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("ssh did not finish")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The backend pid of `instance`'s LISTEN connection, if it is connected.
    pub async fn listener_pid(&self, instance: &str) -> Option<i32> {
        sqlx::query("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
            .bind(listener_name(instance))
            .fetch_optional(&self.db)
            .await
            .unwrap()
            .map(|r| r.get::<i32, _>("pid"))
    }

    /// Waits for `instance`'s LISTEN connection (other than `not`); returns its pid.
    pub async fn wait_listener(&self, instance: &str, not: Option<i32>, within: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(pid) = self.listener_pid(instance).await {
                if Some(pid) != not {
                    return pid;
                }
            }
            assert!(
                start.elapsed() < within,
                "{instance} did not LISTEN within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Ends a backend with `pg_terminate_backend` (the test's role owns it).
    pub async fn terminate(&self, pid: i32) {
        let ok: bool = sqlx::query("SELECT pg_terminate_backend($1) AS ok")
            .bind(pid)
            .fetch_one(&self.db)
            .await
            .unwrap()
            .get("ok");
        assert!(ok, "pg_terminate_backend({pid}) refused");
    }

    /// Every journal record named `event` (read directly from the database).
    pub async fn events(&self, event: &str) -> Vec<Record> {
        self.ca()
            .store()
            .journal_after(0, 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event == event)
            .collect()
    }

    pub async fn shutdown(self) {
        self.a.shutdown().await;
        self.b.shutdown().await;
    }
}

/// A TCP relay to PostgreSQL that the test can cut: while cut, every relayed connection is
/// closed and new ones are closed as soon as they are accepted.
pub struct TcpCut {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<JoinHandle<()>>>>,
    task: JoinHandle<()>,
}

impl Drop for TcpCut {
    fn drop(&mut self) {
        self.task.abort();
        for t in self.live.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

impl TcpCut {
    pub async fn start(upstream: SocketAddr) -> TcpCut {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (c, l) = (Arc::clone(&cut), Arc::clone(&live));
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                let mut live = l.lock().unwrap();
                live.retain(|t| !t.is_finished());
                live.push(relay);
            }
        });
        TcpCut {
            addr,
            cut,
            live,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every relayed connection and refuses new ones (`true`), or lets them through again.
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
        if cut {
            for t in self.live.lock().unwrap().drain(..) {
                t.abort();
            }
        }
    }
}
