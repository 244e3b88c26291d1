//! The e2e harness: a dev gateway in a temporary directory, and runs of the real binary with
//! only the environment a user would set.

use std::path::{Path, PathBuf};

use sallyport_gateway::dev::{DevGateway, DevOptions};
use serde_json::Value;

pub const ALICE_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";
pub const BOB_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAg5uDwf/q+pBmbcdgH/hpZr4HtV3TXebhNw9mfYoi9q bob@test";
pub const BOB_FP: &str = "SHA256:T1gHBmezYSIRvjNkDEJ8GRmIha8Q+61Ejorvnqm9Ceo";
pub const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPITWS1nLghsjfxZQEojvcnbEVelkOOvZTUY4TlFYSgM host@test";
pub const HOST_FP: &str = "SHA256:VFdP8KryP05yr1iOp8FIxgOkpkGJS8sovd6VSoKd3Us";

/// One finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns the run.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "sallyport {:?} failed:\n{}",
            self.args, self.stderr
        );
        self
    }

    /// Asserts failure with `code`, a single `error:`-style line on stderr mentioning `needle`,
    /// and nothing on stdout.
    pub fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(
            self.code, code,
            "sallyport {:?}: stdout {:?} stderr {:?}",
            self.args, self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "sallyport {:?}: {needle:?} not in {:?}",
            self.args,
            self.stderr
        );
        assert!(
            self.stdout.is_empty(),
            "sallyport {:?} printed {:?}",
            self.args,
            self.stdout
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{:?}: not JSON ({e}): {}", self.args, self.stdout))
    }
}

/// A dev gateway in a temporary state directory.
pub struct Harness {
    pub gw: DevGateway,
    pub url: String,
    pub ca: PathBuf,
    pub admin: String,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let gw = DevGateway::start(DevOptions {
            state_dir: dir.path().to_path_buf(),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            ssh_listen: "127.0.0.1:0".parse().unwrap(),
        })
        .await
        .unwrap_or_else(|e| panic!("dev gateway: {e}"));
        let (url, ca, admin) = (gw.api_url(), gw.ca_cert_path(), gw.admin_token());
        Self {
            gw,
            url,
            ca,
            admin,
            _dir: dir,
        }
    }

    /// A dev gateway on another store (PostgreSQL), journaling as `store.instance`.
    // Used by audit_tools.rs only; e2e.rs uses the rest of this module.
    #[allow(dead_code)]
    pub async fn start_with_store(store: sallyport_gateway::dev::DevStore) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let gw = DevGateway::start_with_store(
            DevOptions {
                state_dir: dir.path().to_path_buf(),
                api_listen: "127.0.0.1:0".parse().unwrap(),
                ssh_listen: "127.0.0.1:0".parse().unwrap(),
            },
            sallyport_gateway::dev::DevSshLimits::default(),
            Some(store),
        )
        .await
        .unwrap_or_else(|e| panic!("dev gateway: {e}"));
        let (url, ca, admin) = (gw.api_url(), gw.ca_cert_path(), gw.admin_token());
        Self {
            gw,
            url,
            ca,
            admin,
            _dir: dir,
        }
    }

    /// Runs `sallyport ARGS` with this gateway, its CA and `token` in the environment only.
    pub async fn run_as(&self, token: Option<&str>, args: &[&str]) -> Run {
        self.run_with(&self.url, &self.ca, token, args).await
    }

    pub async fn run_with(&self, url: &str, ca: &Path, token: Option<&str>, args: &[&str]) -> Run {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sallyport"));
        cmd.env_clear()
            .env("SALLYPORT_GATEWAY", url)
            .env("SALLYPORT_CA_CERT", ca)
            .args(args);
        if let Some(t) = token {
            cmd.env("SALLYPORT_TOKEN", t);
        }
        let out = cmd.output().await.unwrap();
        Run {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Runs as the bootstrap admin.
    pub async fn admin(&self, args: &[&str]) -> Run {
        self.run_as(Some(&self.admin.clone()), args).await
    }

    /// The number of grants the admin sees.
    pub async fn grant_count(&self) -> usize {
        self.admin(&["grant", "list", "-o", "json"])
            .await
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len()
    }

    /// A token for `user` issued through the CLI.
    pub async fn token_for(&self, user: &str, ttl: &str) -> String {
        let run = self
            .admin(&["token", "issue", user, "--ttl", ttl])
            .await
            .ok();
        let token = run.stdout.trim().to_owned();
        assert!(
            !token.is_empty() && !token.contains(char::is_whitespace),
            "{run:?}"
        );
        token
    }
}

pub async fn tamper(db: &Path, sql: &str) {
    use sqlx::Connection as _;
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
    let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
    assert_eq!(done.rows_affected(), 1, "{sql}");
    conn.close().await.unwrap();
}
