//! Assembles a running gateway from its parts and takes it down in order.
//!
//! ```text
//!  start: store (migrate) ─▶ control (snapshot) ─▶ journal writer ─▶ audit shippers
//!         ─▶ API + SSH listeners ─▶ expiry timer ─▶ gateway.start
//!  stop:  shutdown signal ─▶ API drains, SSH sessions close their tunnels (reason shutdown)
//!         ─▶ timer ends ─▶ gateway.stop ─▶ journal writer drains
//!         ─▶ shippers ship what is pending (5 s at most) ─▶ store closes
//! ```

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use sallyport_core::audit::EventKind;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, ApiState, TokenIssuer};
use crate::audit::{self as sinks, JournalWriter, ShipperOptions};
use crate::config::AuditConfig;
use crate::control::{self, Actor, Control, ControlError};
use crate::secrets::GatewaySecrets;
use crate::ssh::{SshService, SshSettings};
use crate::store::{Store, StoreError};
use crate::tls::{ApiTls, TlsError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The control plane failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Secrets could not be loaded.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    /// A token could not be signed.
    #[error("cannot sign a token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    /// A listener or a file could not be opened.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// What a gateway is made of.
#[derive(Debug)]
pub struct Parts {
    /// Instance name for audit records.
    pub instance: String,
    /// The store URL.
    pub store_url: String,
    /// The secrets, loaded or generated.
    pub secrets: Arc<GatewaySecrets>,
    /// The API's TLS configuration.
    pub api_tls: ApiTls,
    /// Where the API listens.
    pub api_listen: SocketAddr,
    /// The SSH gateway's listener and limits (`[ssh]`).
    pub ssh: SshSettings,
    /// Where the audit journal is shipped (`[audit]`).
    pub audit: AuditConfig,
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    instance: String,
    control: Arc<Control>,
    tokens: Arc<TokenIssuer>,
    secrets: Arc<GatewaySecrets>,
    api_addr: SocketAddr,
    ssh_addr: SocketAddr,
    ssh: Arc<SshService>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    journal: JournalWriter,
    journal_task: JoinHandle<()>,
    sinks_shutdown: watch::Sender<bool>,
    sink_tasks: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Starts every part; fails without leaving anything running.
    pub async fn start(parts: Parts) -> Result<Self, GatewayError> {
        crate::tls::install_crypto_provider();
        let store = Store::connect(&parts.store_url).await?;
        store.migrate().await?;
        let control = Control::open(store.clone()).await?;
        let (journal, journal_task) = JournalWriter::spawn(store.clone());
        let (sinks_shutdown, sinks_rx) = watch::channel(false);
        let sink_tasks = spawn_sinks(&store, &parts.instance, &parts.audit, &sinks_rx).await;
        let tokens = Arc::new(TokenIssuer::new(
            parts.secrets.jwt_signing_key().expose_secret(),
        ));
        let listener = TcpListener::bind(parts.api_listen).map_err(|source| GatewayError::Io {
            what: format!("cannot listen on {} for the API", parts.api_listen),
            source,
        })?;
        let api_addr = listener.local_addr().map_err(|source| GatewayError::Io {
            what: "API listener address".into(),
            source,
        })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ssh_listener =
            TcpListener::bind(parts.ssh.listen).map_err(|source| GatewayError::Io {
                what: format!("cannot listen on {} for SSH", parts.ssh.listen),
                source,
            })?;
        let ssh_addr = ssh_listener
            .local_addr()
            .map_err(|source| GatewayError::Io {
                what: "SSH listener address".into(),
                source,
            })?;
        let ssh = SshService::new(
            Arc::clone(&control),
            &parts.secrets,
            SshSettings {
                listen: ssh_addr,
                ..parts.ssh
            },
            shutdown_rx.clone(),
        );
        let gateway_view = Arc::new(gateway_view(&parts.secrets, ssh_addr)?);

        let router = api::router(ApiState {
            control: Arc::clone(&control),
            tokens: Arc::clone(&tokens),
            gateway: gateway_view,
        });
        let api_rx = shutdown_rx.clone();
        let tls = parts.api_tls;
        let api_task = tokio::spawn(async move {
            if let Err(e) = api::serve(listener, &tls, router, api_rx).await {
                tracing::error!(cause = %e, "API server stopped");
            }
        });
        let ssh_task = Arc::clone(&ssh).spawn_listener(ssh_listener);
        let expiry_task = control::spawn_expiry_watcher(Arc::clone(&control), shutdown_rx);
        control
            .record(
                &Actor::system(),
                EventKind::GatewayStarted {
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    instance: parts.instance.clone(),
                },
            )
            .await?;
        tracing::info!(instance = %parts.instance, api = %api_addr, ssh = %ssh_addr, "sallyportd started");
        Ok(Self {
            instance: parts.instance,
            control,
            tokens,
            secrets: parts.secrets,
            api_addr,
            ssh_addr,
            ssh,
            shutdown,
            tasks: vec![api_task, expiry_task, ssh_task],
            journal,
            journal_task,
            sinks_shutdown,
            sink_tasks,
        })
    }

    /// The group-commit journal writer, for high-rate events (SSH, VPN).
    pub fn journal(&self) -> &JournalWriter {
        &self.journal
    }

    /// Where the API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where the SSH gateway listens.
    pub fn ssh_addr(&self) -> SocketAddr {
        self.ssh_addr
    }

    /// The SSH service (tests drive connections over in-memory pipes with
    /// [`SshService::serve`]).
    pub fn ssh_service(&self) -> &Arc<SshService> {
        &self.ssh
    }

    /// The control plane.
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// The token issuer.
    pub fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }

    /// The secrets in memory (tests look for them on disk to prove they are not there).
    #[doc(hidden)]
    pub fn secrets(&self) -> &GatewaySecrets {
        &self.secrets
    }

    /// Stops listeners, drains, journals the stop and closes the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let stop = EventKind::GatewayStopped {
            instance: self.instance.clone(),
        };
        if let Err(e) = self.control.record(&Actor::system(), stop).await {
            tracing::error!(cause = %e, "could not journal the stop");
        }
        // The writer ends once every handle is gone and its queue is written.
        drop(self.journal);
        if tokio::time::timeout(Duration::from_secs(5), self.journal_task)
            .await
            .is_err()
        {
            tracing::warn!("the journal writer is still held elsewhere; not waiting for it");
        }
        let _ = self.sinks_shutdown.send(true);
        for t in self.sink_tasks {
            let _ = t.await;
        }
        self.control.store().close().await;
        tracing::info!(instance = %self.instance, "sallyportd stopped");
    }
}

/// What `GET /v1/gateway` answers: the SSH address and host key.
fn gateway_view(
    secrets: &GatewaySecrets,
    ssh_addr: SocketAddr,
) -> Result<sallyport_core::api::GatewayView, GatewayError> {
    let key = secrets.ssh_host_public_key();
    let line = key.to_openssh().map_err(|e| GatewayError::Io {
        what: "encoding the SSH host key".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(sallyport_core::api::GatewayView {
        ssh_listen: ssh_addr.to_string(),
        ssh_host_key: line.trim().to_owned(),
        ssh_host_key_fingerprint: sallyport_core::model::Fingerprint::of(&key),
    })
}

/// Starts a shipper for each configured sink.
async fn spawn_sinks(
    store: &Store,
    instance: &str,
    audit: &AuditConfig,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let opts = ShipperOptions::new(instance);
    if audit.stdout {
        let sink = sinks::LinesSink::stdout();
        tasks.push(sinks::spawn_shipper(
            store.clone(),
            sink,
            opts.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(cw) = &audit.cloudwatch {
        let client = sinks::cloudwatch_client(cw.region.clone(), cw.endpoint_url.clone()).await;
        let stream = cw.stream.clone().unwrap_or_else(|| instance.to_owned());
        let sink = sinks::CloudWatchSink::new(client, &cw.log_group, stream, cw.create_log_group);
        tasks.push(sinks::spawn_shipper(
            store.clone(),
            sink,
            opts,
            shutdown.clone(),
        ));
    }
    tasks
}
