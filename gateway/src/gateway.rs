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
use crate::ssh::observers::SessionObservers;
use crate::ssh::{SshService, SshSettings};
use crate::store::{Journaled, Store, StoreError};
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
    /// The WireGuard endpoint could not start.
    #[error(transparent)]
    Vpn(#[from] crate::wireguard::EndpointError),
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
    /// How this gateway follows others on the same PostgreSQL (`[store]`); unused on SQLite.
    pub propagation: control::PropagationOptions,
    /// The WireGuard endpoint (`[wireguard]`); `None`: no VPN.
    pub wireguard: Option<crate::wireguard::WireguardSettings>,
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
    observers: Arc<SessionObservers>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    journal: JournalWriter,
    journal_task: JoinHandle<()>,
    sinks_shutdown: watch::Sender<bool>,
    sink_tasks: Vec<JoinHandle<()>>,
    wireguard: Option<crate::wireguard::RunningEndpoint>,
    /// SQLite only: the exclusive lock beside the database file, held while the gateway runs.
    _instance_lock: Option<crate::store::InstanceLock>,
}

impl Gateway {
    /// Starts every part; fails without leaving anything running.
    pub async fn start(parts: Parts) -> Result<Self, GatewayError> {
        crate::tls::install_crypto_provider();
        let instance_lock =
            crate::store::InstanceLock::acquire_for(&parts.store_url, &parts.instance)?;
        let store = Store::connect(&parts.store_url).await?;
        store.set_instance(&parts.instance);
        store.migrate().await?;
        // Sessions this instance left live when it last stopped without ending them (a crash).
        let orphans = store
            .end_orphan_sessions(
                &parts.instance,
                sallyport_core::time::Timestamp::now(),
                "gateway-restart",
            )
            .await?;
        if orphans > 0 {
            tracing::warn!(
                orphans,
                "ended sessions left live by this instance's last run"
            );
        }
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
        let login = Arc::new(api::login::LoginService::new(
            Arc::clone(&parts.secrets),
            api::login::LoginSettings {
                token_ttl: parts.ssh.login_token_ttl,
                cert_max_validity: parts.ssh.certificate_max_validity,
                failures_per_source: parts.ssh.auth_failures_per_source,
                failures_per_user: parts.ssh.auth_failures_per_user,
                failure_window: parts.ssh.auth_failure_window,
            },
        ));
        let observers = SessionObservers::new(
            Arc::clone(&control),
            &parts.secrets,
            parts.ssh.recording.clone(),
        );
        let ssh = SshService::new(
            Arc::clone(&control),
            &parts.secrets,
            SshSettings {
                listen: ssh_addr,
                ..parts.ssh
            },
            shutdown_rx.clone(),
        );
        ssh.set_instance(&parts.instance);
        ssh.set_observers(
            Arc::clone(&observers) as Arc<dyn crate::ssh::proxy::observe::ObserverFactory>
        );
        let gateway_view = Arc::new(gateway_view(&parts.secrets, ssh_addr)?);

        let wg_key = Arc::new(crate::wireguard::GatewayKey::from_secrets(&parts.secrets));
        let (vpn, wg_bound) =
            crate::wireguard::prepare(&control, &wg_key, parts.wireguard.as_ref())?;
        let wireguard = match wg_bound {
            Some((bound, settings)) => Some(crate::wireguard::RunningEndpoint::start(
                bound,
                crate::wireguard::EndpointParts {
                    settings,
                    control: Arc::clone(&control),
                    devices: Arc::clone(&vpn),
                    key: wg_key,
                    journal: journal.clone(),
                    shutdown: shutdown_rx.clone(),
                },
            )?),
            None => None,
        };
        let router = api::router(ApiState {
            control: Arc::clone(&control),
            tokens: Arc::clone(&tokens),
            gateway: gateway_view,
            login,
            vpn: Arc::clone(&vpn),
            recordings: Arc::new(crate::ssh::recording::RecordingKey::new(
                parts.secrets.recording_key(),
            )),
        });
        let api_rx = shutdown_rx.clone();
        let tls = parts.api_tls;
        let api_task = tokio::spawn(async move {
            if let Err(e) = api::serve(listener, &tls, router, api_rx).await {
                tracing::error!(cause = %e, "API server stopped");
            }
        });
        let ssh_task = Arc::clone(&ssh).spawn_listener(ssh_listener);
        let mut tasks = Vec::new();
        if store.backend() == crate::store::Backend::Postgres {
            if let Some(dir) = &parts.propagation.spool_dir {
                store.enable_spool(dir).await?;
                if let Err(e) = store.drain_spool().await {
                    tracing::warn!(cause = %e, "audit events spooled by an earlier run are not journaled yet");
                }
            }
            tasks.push(control::spawn_propagation(
                Arc::clone(&control),
                &parts.store_url,
                &parts.instance,
                parts.propagation.clone(),
                shutdown_rx.clone(),
            )?);
        }
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
            observers,
            shutdown,
            tasks: {
                tasks.extend([api_task, expiry_task, ssh_task]);
                tasks
            },
            journal,
            journal_task,
            sinks_shutdown,
            sink_tasks,
            wireguard,
            _instance_lock: instance_lock,
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

    /// Where the WireGuard endpoint listens (UDP), if it runs.
    pub fn wireguard_addr(&self) -> Option<SocketAddr> {
        self.wireguard.as_ref().map(|w| w.addr())
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
        // Recordings and exec/SFTP events still queued are stored before the stop record.
        self.observers.drain(Duration::from_secs(5)).await;
        // VPN flows end (reason shutdown) and are journaled before the stop record.
        if let Some(wg) = self.wireguard {
            wg.stop().await;
        }
        let stop = EventKind::GatewayStopped {
            instance: self.instance.clone(),
        };
        // Spooled like session events when the database is out of reach (journaled by the next
        // start's drain), so an outage cannot hide that the gateway stopped.
        let stop = Actor::system().event(stop);
        match self.control.store().journal_or_spool(&stop).await {
            Ok(Journaled::Committed(_)) => {}
            Ok(Journaled::Spooled) => {
                tracing::warn!("database unreachable: the stop is spooled locally");
            }
            Err(e) => tracing::error!(cause = %e, "could not journal the stop"),
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
