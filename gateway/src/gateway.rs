//! Assembles a running gateway from its parts and takes it down in order.
//!
//! ```text
//!  start: store (migrate) ─▶ control (snapshot) ─▶ API listener ─▶ expiry timer ─▶ gateway.start
//!  stop:  shutdown signal ─▶ API drains ─▶ timer ends ─▶ gateway.stop ─▶ store closes
//! ```

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use sallyport_core::audit::EventKind;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, ApiState, TokenIssuer};
use crate::control::{self, Actor, Control, ControlError};
use crate::secrets::GatewaySecrets;
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
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    instance: String,
    control: Arc<Control>,
    tokens: Arc<TokenIssuer>,
    secrets: Arc<GatewaySecrets>,
    api_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Starts every part; fails without leaving anything running.
    pub async fn start(parts: Parts) -> Result<Self, GatewayError> {
        crate::tls::install_crypto_provider();
        let store = Store::connect(&parts.store_url).await?;
        store.migrate().await?;
        let control = Control::open(store).await?;
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

        let router = api::router(ApiState {
            control: Arc::clone(&control),
            tokens: Arc::clone(&tokens),
        });
        let api_rx = shutdown_rx.clone();
        let tls = parts.api_tls;
        let api_task = tokio::spawn(async move {
            if let Err(e) = api::serve(listener, &tls, router, api_rx).await {
                tracing::error!(cause = %e, "API server stopped");
            }
        });
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
        tracing::info!(instance = %parts.instance, api = %api_addr, "sallyportd started");
        Ok(Self {
            instance: parts.instance,
            control,
            tokens,
            secrets: parts.secrets,
            api_addr,
            shutdown,
            tasks: vec![api_task, expiry_task],
        })
    }

    /// Where the API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
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
        self.control.store().close().await;
        tracing::info!(instance = %self.instance, "sallyportd stopped");
    }
}
