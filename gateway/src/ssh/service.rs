//! The SSH service: what every connection shares (the control plane, the russh configuration,
//! the failed-login limiter, per-user session counts), the accept loop with its connection
//! limit, and [`SshService::serve`], which runs one connection over any byte stream.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use russh::keys::PublicKey;
use russh::server::Config;
use russh::{MethodKind, MethodSet, SshId};
use sallyport_core::model::UserName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;
use uuid::Uuid;

use super::algorithms;
use super::handler::Handler;
use super::limiter::{Admission, AuthLimiter, LimiterSettings};
use super::proxy::observe::ObserverFactory;
use super::proxy::throttle::WindowThrottle;
use super::session::SessionTask;
use super::settings::SshSettings;
use crate::control::Control;
use crate::secrets::GatewaySecrets;

/// Events queued from russh to a session task before russh waits.
const EVENT_QUEUE: usize = 32;

/// How long shutdown waits for sessions to close their tunnels and journal it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared by every connection. Build with [`SshService::new`].
pub struct SshService {
    pub(super) control: Arc<Control>,
    pub(super) settings: SshSettings,
    config: Arc<Config>,
    pub(super) user_ca: PublicKey,
    limiter: Mutex<AuthLimiter>,
    sessions: Mutex<HashMap<UserName, usize>>,
    pub(super) shutdown: watch::Receiver<bool>,
    /// What watches proxied session channels (recordings, exec/SFTP audit); set once.
    observers: OnceLock<Arc<dyn ObserverFactory>>,
    /// This gateway's instance name in `ssh_sessions`; set once.
    instance: OnceLock<String>,
}

impl fmt::Debug for SshService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No key material: the russh config holds the host key.
        f.debug_struct("SshService")
            .field("listen", &self.settings.listen)
            .finish_non_exhaustive()
    }
}

impl SshService {
    /// The service for `control`, with the host key and user CA from `secrets`. Sessions end
    /// (tunnels closed with reason `shutdown`) when `shutdown` turns true.
    pub fn new(
        control: Arc<Control>,
        secrets: &GatewaySecrets,
        settings: SshSettings,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let config = Config {
            server_id: SshId::Standard("SSH-2.0-sallyport".into()),
            methods: MethodSet::from(&[MethodKind::PublicKey][..]),
            // Rejections take at least this long (constant time for russh's own checks too);
            // OpenSSH's first "none" probe is answered at once.
            auth_rejection_time: Duration::from_millis(500),
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![secrets.ssh_host_private_key()],
            preferred: algorithms::preferred(),
            max_auth_attempts: settings.max_auth_attempts,
            // A backstop: a connection where nothing at all happens (not even keepalive
            // answers) for this long is dropped by russh itself.
            inactivity_timeout: Some(settings.idle_timeout + settings.keepalive_interval * 4),
            keepalive_interval: Some(settings.keepalive_interval),
            keepalive_max: 3,
            channel_buffer_size: 32,
            event_buffer_size: 32,
            nodelay: true,
            ..Config::default()
        };
        let limiter = AuthLimiter::new(LimiterSettings {
            per_source: settings.auth_failures_per_source,
            per_user: settings.auth_failures_per_user,
            window: settings.auth_failure_window,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_tracked: 65_536,
        });
        Arc::new(Self {
            control,
            settings,
            config: Arc::new(config),
            user_ca: secrets.user_ca_public_key(),
            limiter: Mutex::new(limiter),
            sessions: Mutex::new(HashMap::new()),
            shutdown,
            observers: OnceLock::new(),
            instance: OnceLock::new(),
        })
    }

    /// Sets what watches every proxied session channel (once; later calls are ignored and
    /// return `false`).
    pub fn set_observers(&self, factory: Arc<dyn ObserverFactory>) -> bool {
        self.observers.set(factory).is_ok()
    }

    /// Sets the instance name its sessions are listed under (once; default `sallyportd`).
    pub fn set_instance(&self, instance: &str) -> bool {
        self.instance.set(instance.to_owned()).is_ok()
    }

    /// The instance name its sessions are listed under.
    pub(super) fn instance(&self) -> &str {
        self.instance
            .get()
            .map_or(sallyport_core::audit::SYSTEM_ACTOR, String::as_str)
    }

    /// What watches proxied session channels, if anything.
    pub(super) fn observer_factory(&self) -> Option<Arc<dyn ObserverFactory>> {
        self.observers.get().cloned()
    }

    /// The settings in force.
    pub fn settings(&self) -> &SshSettings {
        &self.settings
    }

    /// Runs one connection to its end: the SSH handshake, the login, the session's tunnels.
    /// `peer` is the client's address (limits and audit records use it).
    pub async fn serve<S>(self: &Arc<Self>, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let id = Uuid::new_v4().to_string();
        let span =
            tracing::info_span!("ssh", session = %id, peer = %peer, user = tracing::field::Empty);
        let svc = Arc::clone(self);
        async move {
            // Subscribe before anything is decided, so that no change after a decision is
            // missed.
            let feed = svc.control.subscribe();
            let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
            let deadline = tokio::time::Instant::now() + svc.settings.handshake_timeout;
            let window = Arc::new(WindowThrottle::new(svc.config.window_size));
            let handler = Handler::new(events_tx).with_window(Arc::clone(&window));
            let started = tokio::time::timeout_at(
                deadline,
                russh::server::run_stream(Arc::clone(&svc.config), stream, handler),
            )
            .await;
            let running = match started {
                Ok(Ok(running)) => running,
                Ok(Err(e)) => {
                    tracing::debug!(cause = %e, "SSH version exchange failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("no SSH version string within the handshake timeout");
                    return;
                }
            };
            let task = SessionTask::new(Arc::clone(&svc), id, peer, running.handle(), deadline)
                .with_window(window);
            task.run(events, running, feed).await;
        }
        .instrument(span)
        .await
    }

    /// Accepts connections on `listener` until shutdown, one task each, at most
    /// `max_connections` at once (more are closed at once); then waits for the sessions to
    /// close their tunnels.
    pub fn spawn_listener(self: Arc<Self>, listener: std::net::TcpListener) -> JoinHandle<()> {
        tokio::spawn(async move {
            let listener = match listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(cause = %e, "SSH listener unusable");
                    return;
                }
            };
            let permits = Arc::new(Semaphore::new(self.settings.max_connections));
            let mut shutdown = self.shutdown.clone();
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    () = shutdown_requested(&mut shutdown) => break,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                                tracing::warn!(%peer, limit = self.settings.max_connections, "SSH connection refused: too many connections");
                                continue;
                            };
                            let _ = stream.set_nodelay(true);
                            let svc = Arc::clone(&self);
                            connections.spawn(async move {
                                svc.serve(stream, peer).await;
                                drop(permit);
                            });
                        }
                        Err(e) => {
                            // Out of file descriptors and the like: do not spin.
                            tracing::warn!(cause = %e, "SSH accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                }
            }
            drop(listener);
            let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
                while connections.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    left = connections.len(),
                    "SSH sessions did not drain in time"
                );
                connections.shutdown().await;
            }
        })
    }

    /// Whether a login attempt from `peer` for `user` may be checked now.
    pub(super) fn admit(&self, peer: SocketAddr, user: &str) -> Admission {
        self.limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(peer.ip(), user, Instant::now())
    }

    /// Counts a failed login; returns how long to hold back its rejection.
    pub(super) fn record_failure(&self, peer: SocketAddr, user: &str) -> Duration {
        self.limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record_failure(peer.ip(), user, Instant::now())
    }

    /// Takes back the failures a connection counted before it logged in.
    pub(super) fn forgive(&self, peer: SocketAddr, user: &str, count: u32) {
        self.limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .forgive(peer.ip(), user, count, Instant::now());
    }

    /// Takes one of `user`'s session slots, if any is free.
    pub(super) fn take_slot(self: &Arc<Self>, user: &UserName) -> Option<UserSlot> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let count = sessions.entry(user.clone()).or_insert(0);
        if *count >= self.settings.max_sessions_per_user {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            svc: Arc::clone(self),
            user: user.clone(),
        })
    }

    /// How this gateway is named in the message a shell request gets.
    pub(super) fn jump_spec(&self, user: &UserName) -> String {
        let listen = self.settings.listen;
        let host = if listen.ip().is_unspecified() {
            "GATEWAY".to_owned()
        } else {
            listen.ip().to_string()
        };
        match listen.port() {
            22 => format!("{user}@{host}"),
            port => format!("{user}@{host}:{port}"),
        }
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
pub(super) async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, never held across an await.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// One of a user's session slots; given back on drop.
#[derive(Debug)]
pub struct UserSlot {
    svc: Arc<SshService>,
    user: UserName,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut sessions = self
            .svc
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = sessions.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                sessions.remove(&self.user);
            }
        }
    }
}
