//! `sallyportd dev`: everything local on embedded defaults. SQLite under the state directory,
//! every secret generated in memory, the API on loopback with a certificate from a CA made at
//! start-up (only its public certificate is written, to `STATE_DIR/api-ca.pem`), and a
//! bootstrap admin token (`STATE_DIR/admin.token`, mode 0600).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sallyport_core::api::CreateUser;
use sallyport_core::audit::EventKind;
use sallyport_core::model::{Role, UserName};

use crate::control::{Actor, ControlError};
use crate::gateway::{Gateway, GatewayError, Parts};
use crate::secrets::GatewaySecrets;

/// The bootstrap admin's name.
pub const ADMIN_USER: &str = "admin";
/// How long the bootstrap token lives.
pub const ADMIN_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);
/// The default API address.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8443";
/// The default SSH address.
pub const DEFAULT_SSH_LISTEN: &str = "127.0.0.1:2222";

/// What `dev` needs.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The state directory (created, mode 0700).
    pub state_dir: PathBuf,
    /// The API address.
    pub api_listen: SocketAddr,
    /// The SSH gateway's address.
    pub ssh_listen: SocketAddr,
}

/// `dev`'s SSH limits where they differ from the defaults (`sallyportd dev
/// --ssh-max-connections N --ssh-max-sessions-per-user N`), e.g. for the benchmark lab's
/// thousands of idle sessions. `None` keeps [`crate::ssh::SshSettings::default`]'s value.
#[derive(Debug, Clone, Copy, Default)]
pub struct DevSshLimits {
    /// `ssh.max_connections`.
    pub max_connections: Option<usize>,
    /// `ssh.max_sessions_per_user`.
    pub max_sessions_per_user: Option<usize>,
}

/// A dev gateway on a store other than its own SQLite file: several dev gateways on one
/// PostgreSQL, as the HA tests run them. They should share `secrets` (as production gateways
/// share SSM), so that clients see one SSH host key.
#[derive(Debug, Clone)]
pub struct DevStore {
    /// The store URL (`postgres://…`).
    pub url: String,
    /// This gateway's instance name.
    pub instance: String,
    /// How it follows the other gateways.
    pub propagation: crate::control::PropagationOptions,
    /// Secrets shared with the other gateways (generated when `None`).
    pub secrets: Option<Arc<GatewaySecrets>>,
}

/// A running dev gateway.
#[derive(Debug)]
pub struct DevGateway {
    gateway: Gateway,
    state_dir: PathBuf,
    admin_token: String,
}

impl DevGateway {
    /// Starts a dev gateway.
    pub async fn start(opts: DevOptions) -> Result<Self, GatewayError> {
        Self::start_with_limits(opts, DevSshLimits::default()).await
    }

    /// Starts a dev gateway with other SSH limits.
    pub async fn start_with_limits(
        opts: DevOptions,
        limits: DevSshLimits,
    ) -> Result<Self, GatewayError> {
        Self::start_with_store(opts, limits, None).await
    }

    /// Starts a dev gateway on `store` (`None`: SQLite in the state directory, instance `dev`).
    pub async fn start_with_store(
        opts: DevOptions,
        limits: DevSshLimits,
        store: Option<DevStore>,
    ) -> Result<Self, GatewayError> {
        Self::start_full(opts, limits, store, None).await
    }

    /// Starts a dev gateway with a WireGuard endpoint (`sallyportd dev --wg-listen ADDR`).
    pub async fn start_with_vpn(
        opts: DevOptions,
        limits: DevSshLimits,
        wireguard: crate::wireguard::WireguardSettings,
    ) -> Result<Self, GatewayError> {
        Self::start_full(opts, limits, None, Some(wireguard)).await
    }

    async fn start_full(
        opts: DevOptions,
        limits: DevSshLimits,
        store: Option<DevStore>,
        wireguard: Option<crate::wireguard::WireguardSettings>,
    ) -> Result<Self, GatewayError> {
        let io = |what: String| move |source| GatewayError::Io { what, source };
        create_private_dir(&opts.state_dir)
            .map_err(io(format!("cannot create {}", opts.state_dir.display())))?;
        let state_dir = opts
            .state_dir
            .canonicalize()
            .map_err(io(format!("cannot resolve {}", opts.state_dir.display())))?;

        let mut names = vec!["localhost".to_owned(), opts.api_listen.ip().to_string()];
        if !opts.api_listen.ip().is_loopback() {
            names.push("127.0.0.1".to_owned());
        }
        let api_tls = crate::tls::generate(&names)?;
        let ca_path = state_dir.join("api-ca.pem");
        if let Some(pem) = &api_tls.ca_pem {
            std::fs::write(&ca_path, pem)
                .map_err(io(format!("cannot write {}", ca_path.display())))?;
        }

        let sqlite = format!("sqlite://{}", state_dir.join("sallyport.db").display());
        let (instance, store_url, propagation, secrets) = match store {
            None => ("dev".to_owned(), sqlite, Default::default(), None),
            Some(s) => {
                let mut propagation = s.propagation;
                propagation
                    .spool_dir
                    .get_or_insert_with(|| state_dir.clone());
                (s.instance, s.url, propagation, s.secrets)
            }
        };
        let secrets = match secrets {
            Some(s) => s,
            None => Arc::new(GatewaySecrets::generate()?),
        };
        let parts = Parts {
            instance,
            store_url,
            secrets,
            api_tls,
            api_listen: opts.api_listen,
            ssh: {
                let defaults = crate::ssh::SshSettings::default();
                crate::ssh::SshSettings {
                    listen: opts.ssh_listen,
                    max_connections: limits.max_connections.unwrap_or(defaults.max_connections),
                    max_sessions_per_user: limits
                        .max_sessions_per_user
                        .unwrap_or(defaults.max_sessions_per_user),
                    ..defaults
                }
            },
            audit: Default::default(),
            propagation,
            wireguard,
        };
        let gateway = Gateway::start(parts).await?;

        let admin: UserName = ADMIN_USER.parse().map_err(ControlError::from)?;
        if gateway.control().store().get_user(&admin).await?.is_none() {
            let req = CreateUser {
                name: admin.clone(),
                roles: vec![Role::Admin, Role::Auditor],
                groups: Vec::new(),
            };
            gateway.control().create_user(&Actor::system(), req).await?;
        }
        let issued = gateway.tokens().issue(&admin, ADMIN_TOKEN_TTL)?;
        let record = EventKind::TokenIssued {
            user: admin,
            token_id: issued.id.clone(),
            expires_at: issued.expires_at,
        };
        gateway.control().record(&Actor::system(), record).await?;
        let token_path = state_dir.join("admin.token");
        write_private_file(&token_path, issued.token.as_bytes())
            .map_err(io(format!("cannot write {}", token_path.display())))?;
        Ok(Self {
            gateway,
            state_dir,
            admin_token: issued.token,
        })
    }

    /// `https://ADDR`.
    pub fn api_url(&self) -> String {
        format!("https://{}", self.gateway.api_addr())
    }

    /// Where the SSH gateway listens.
    pub fn ssh_addr(&self) -> SocketAddr {
        self.gateway.ssh_addr()
    }

    /// The CA certificate clients should trust.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.state_dir.join("api-ca.pem")
    }

    /// The bootstrap admin token (user `admin`, roles admin and auditor).
    pub fn admin_token(&self) -> String {
        self.admin_token.clone()
    }

    /// The SQLite file.
    pub fn database_path(&self) -> PathBuf {
        self.state_dir.join("sallyport.db")
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The running gateway.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// What to tell the person who started it.
    pub fn banner(&self) -> String {
        format!(
            "sallyport dev gateway is running (state in {dir}; secrets in memory only)\n\
             \n  API          {url}\n  API CA       {ca}\n  admin token  {dir}/admin.token (user {ADMIN_USER}, expires in 12 h)\n\
             \x20 SSH          {ssh} (jump host: ssh -J USER@{ssh} TARGET)\n\
             \x20 SSH host key {host_key}\n\
             {wireguard}\
             \nPoint the CLI at it:\n\
             \n  export SALLYPORT_GATEWAY={url}\n  export SALLYPORT_CA_CERT={ca}\n  export SALLYPORT_TOKEN=$(cat {dir}/admin.token)\n\
             \n  sallyport user add alice --role engineer\n  sallyport audit search --user alice\n\
             \nStop with Ctrl-C.",
            dir = self.state_dir.display(),
            url = self.api_url(),
            ca = self.ca_cert_path().display(),
            ssh = self.ssh_addr(),
            wireguard = match self.gateway.wireguard_addr() {
                Some(addr) => format!(
                    "\x20 WireGuard    {addr} (UDP; engineers: sallyport vpn enroll)\n"
                ),
                None => String::new(),
            },
            host_key = sallyport_core::model::Fingerprint::of(
                &self.gateway.secrets().ssh_host_public_key()
            ),
        )
    }

    /// Stops the gateway.
    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its old mode through open(); set it explicitly.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()
}
