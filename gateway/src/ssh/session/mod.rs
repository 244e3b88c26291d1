//! The per-session task: one per connection, the only place where anything about the session
//! is decided. It takes the typed events from the russh handler, the control plane's change
//! notices, its tunnels' reports, its timers and the shutdown signal, in one `select!` loop.
//!
//! ```text
//!  Phase::Login ── accepted credential ──▶ Phase::Active ── SessionEnd ──▶ finish
//!    deadline: handshake timeout            tunnels: id → {Arc<Allowed>, stop}
//!                                            deadlines: idle (no tunnels), certificate expiry
//!  notices (and Lagged) ─▶ Active: authenticate(user, credential)? else end the session
//!                                  recheck(allowed) per tunnel? else stop it (revoked/expired)
//! ```
//!
//! # Layout
//!
//! - `mod.rs`: the state, the loop, change notices, timers, the end of the session.
//! - `login`: login attempts.
//! - `channels`: channel opens and requests, tunnel reports.

mod book;
mod channels;
mod login;
mod proxy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{Handle, Msg, RunningSession};
use russh::{Channel, ChannelId};
use sallyport_core::audit::{EventKind, TunnelCloseReason};
use sallyport_core::feed::{Change, Notice};
use sallyport_core::policy::Allowed;
use sallyport_core::time::Timestamp;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use super::auth::{AuthRefusal, Identity};
use super::error::SessionEnd;
use super::events::{AuthVerdict, SessionEvent};
use super::handler::Handler;
use super::journal;
use super::service::{shutdown_requested, SshService, UserSlot};
use super::tunnel::{instant_of, TunnelReport};

/// How long the end of a session waits for its tunnels to report their close.
const TUNNEL_DRAIN: Duration = Duration::from_secs(3);

/// How long the end of a session waits for russh to send the disconnect and close.
const DISCONNECT_WAIT: Duration = Duration::from_secs(2);

/// Tunnel reports queued before a tunnel waits.
const REPORT_QUEUE: usize = 64;

/// Where a session is.
#[derive(Debug)]
enum Phase {
    /// Not logged in yet.
    Login(Login),
    /// Logged in.
    Active(Box<Active>),
}

#[derive(Debug)]
struct Login {
    /// Log in by then or be disconnected.
    deadline: Instant,
    /// Attempts seen, including `none`.
    attempts: u32,
    /// Failures journaled.
    failures: u32,
    /// Failures counted by the limiter (taken back if the connection logs in).
    counted: u32,
    /// The last user name tried (shown form).
    last_user: Option<String>,
}

#[derive(Debug)]
struct Active {
    identity: Identity,
    started: Instant,
    /// When the session last had no tunnel (`None` while it has some).
    idle_since: Option<Instant>,
    /// When the login certificate expires.
    certificate_deadline: Option<Instant>,
    _slot: UserSlot,
    tunnels_opened: u64,
    /// Proxy mode (`login@target`): where every session channel goes.
    proxy: Option<super::proxy::username::ProxyDestination>,
}

/// A live tunnel, as its session sees it.
#[derive(Debug)]
struct TunnelEntry {
    allowed: Arc<Allowed>,
    stop: watch::Sender<Option<TunnelCloseReason>>,
    /// The destination as asked (target name or IP).
    target: String,
    port: u16,
}

/// Why the loop woke up on a timer.
#[derive(Debug, Clone, Copy)]
enum Timer {
    Handshake,
    Idle,
    CertificateExpiry,
}

/// One session's state.
#[derive(Debug)]
pub struct SessionTask {
    svc: Arc<SshService>,
    id: String,
    peer: SocketAddr,
    handle: Handle,
    phase: Phase,
    tunnels: HashMap<u64, TunnelEntry>,
    session_channels: HashMap<ChannelId, Channel<Msg>>,
    next_tunnel: u64,
    reports_tx: mpsc::Sender<TunnelReport>,
    reports: mpsc::Receiver<TunnelReport>,
    /// The window russh tops the client up to, shared with the handler (proxy mode cuts it
    /// while a channel sets up).
    window: Arc<super::proxy::throttle::WindowThrottle>,
}

impl SessionTask {
    /// A session for a connection from `peer` whose login must complete by `deadline`.
    pub fn new(
        svc: Arc<SshService>,
        id: String,
        peer: SocketAddr,
        handle: Handle,
        deadline: Instant,
    ) -> Self {
        let (reports_tx, reports) = mpsc::channel(REPORT_QUEUE);
        Self {
            svc,
            id,
            peer,
            handle,
            phase: Phase::Login(Login {
                deadline,
                attempts: 0,
                failures: 0,
                counted: 0,
                last_user: None,
            }),
            tunnels: HashMap::new(),
            session_channels: HashMap::new(),
            next_tunnel: 1,
            reports_tx,
            reports,
            window: Arc::new(super::proxy::throttle::WindowThrottle::new(u32::MAX)),
        }
    }

    /// Runs the session until it ends, then closes it down.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<SessionEvent>,
        running: RunningSession<Handler>,
        mut feed: broadcast::Receiver<Notice>,
    ) {
        tokio::pin!(running);
        let mut shutdown = self.svc.shutdown.clone();
        let mut connected = true;
        let end = loop {
            let (deadline, timer) = self.next_deadline();
            tokio::select! {
                result = &mut running => {
                    connected = false;
                    if let Err(e) = result {
                        tracing::debug!(cause = %e, "connection ended with an error");
                    }
                    break SessionEnd::Client;
                }
                () = shutdown_requested(&mut shutdown) => break SessionEnd::Shutdown,
                event = events.recv() => match event {
                    Some(event) => {
                        if let Some(end) = self.on_event(event).await {
                            break end;
                        }
                    }
                    None => break SessionEnd::Client,
                },
                Some(report) = self.reports.recv() => self.on_report(report).await,
                notice = feed.recv() => {
                    if let Some(end) = self.on_notice(notice) {
                        break end;
                    }
                }
                () = sleep_until(deadline) => {
                    if let Some(end) = self.on_timer(timer) {
                        break end;
                    }
                }
            }
        };
        self.finish(end, events, running, connected).await;
    }

    /// Every event, decided. Returns how the session ends, if it does.
    async fn on_event(&mut self, event: SessionEvent) -> Option<SessionEnd> {
        match event {
            SessionEvent::Auth {
                user,
                attempt,
                reply,
            } => return self.on_auth(user, attempt, reply).await,
            SessionEvent::Authenticated { client } => self.on_authenticated(client).await,
            SessionEvent::OpenSession { channel, reply } => {
                self.on_open_session(channel, reply).await
            }
            SessionEvent::OpenDirectTcpip {
                channel,
                host,
                port,
                reply,
            } => self.on_direct_tcpip(channel, host, port, reply).await,
            SessionEvent::OpenRefused { kind, reply } => self.on_refused_channel(kind, reply).await,
            SessionEvent::ChannelRequest {
                channel,
                request,
                reply,
            } => self.on_channel_request(channel, request, reply).await,
            SessionEvent::GlobalRequest { request, reply } => {
                self.on_global_request(request, reply).await
            }
            SessionEvent::ChannelClosed { channel } => {
                self.session_channels.remove(&channel);
            }
        }
        None
    }

    /// A change notice: re-check the login and every tunnel if it may take access away (and
    /// after a lag, when notices were missed).
    fn on_notice(&mut self, notice: Result<Notice, RecvError>) -> Option<SessionEnd> {
        match notice {
            // An admin ended this session, through this gateway or another.
            Ok(Notice {
                change: Change::SessionKilled(id),
                ..
            }) if id == self.id && matches!(self.phase, Phase::Active(_)) => {
                Some(SessionEnd::Killed)
            }
            Ok(n) if !n.change.may_cut_access() => None,
            Ok(_) => self.recheck(),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "change feed lagged: re-checking everything");
                self.recheck()
            }
            // The control plane is gone: revocations can no longer be seen.
            Err(RecvError::Closed) => Some(SessionEnd::FeedClosed),
        }
    }

    fn recheck(&mut self) -> Option<SessionEnd> {
        let Phase::Active(active) = &self.phase else {
            return None;
        };
        let snapshot = self.svc.control.snapshot();
        if let Err(denial) =
            snapshot.authenticate(&active.identity.user, &active.identity.credential)
        {
            return Some(SessionEnd::Revoked(denial));
        }
        let now = Timestamp::now();
        for (id, tunnel) in &self.tunnels {
            if let Err(denial) = snapshot.recheck(&tunnel.allowed, now) {
                let reason = match denial {
                    sallyport_core::policy::Denial::Expired(_) => TunnelCloseReason::Expired,
                    _ => TunnelCloseReason::Revoked,
                };
                tracing::info!(tunnel = id, cause = %denial, "cutting tunnel");
                tunnel.stop.send_replace(Some(reason));
            }
        }
        None
    }

    fn next_deadline(&self) -> (Option<Instant>, Timer) {
        match &self.phase {
            Phase::Login(login) => (Some(login.deadline), Timer::Handshake),
            Phase::Active(active) => {
                let idle = active
                    .idle_since
                    .map(|since| since + self.svc.settings.idle_timeout);
                match (idle, active.certificate_deadline) {
                    (Some(i), Some(c)) if c <= i => (Some(c), Timer::CertificateExpiry),
                    (Some(i), _) => (Some(i), Timer::Idle),
                    (None, Some(c)) => (Some(c), Timer::CertificateExpiry),
                    (None, None) => (None, Timer::Idle),
                }
            }
        }
    }

    fn on_timer(&mut self, timer: Timer) -> Option<SessionEnd> {
        let now = Instant::now();
        let (deadline, _) = self.next_deadline();
        if deadline.is_none_or(|d| d > now) {
            return None;
        }
        match timer {
            Timer::Handshake => Some(SessionEnd::HandshakeTimeout(
                self.svc.settings.handshake_timeout,
            )),
            Timer::Idle => Some(SessionEnd::Idle(self.svc.settings.idle_timeout)),
            Timer::CertificateExpiry => Some(SessionEnd::Expired),
        }
    }

    /// The user logged in earlier and russh told the client: the session starts.
    async fn on_authenticated(&mut self, client: String) {
        let Phase::Active(active) = &self.phase else {
            return;
        };
        let user = active.identity.user.clone();
        // What the session's `ssh_sessions` row needs, so that the row can be written from the
        // event when the spool drains (the database was out of reach when the session began).
        let (mode, target, login) = match &active.proxy {
            Some(dest) => ("proxy", Some(dest.target.clone()), Some(dest.login.clone())),
            None => ("jump", None, None),
        };
        let kind = EventKind::SshSessionStarted {
            user: user.clone(),
            client: client.clone(),
            mode: Some(mode.to_owned()),
            target,
            login,
        };
        self.journal(user.as_str(), kind).await;
        self.book_start(&client).await;
    }

    /// Journals an event; a failure is logged (callers that must fail closed use
    /// [`journal::record`] directly).
    async fn journal(&self, actor: &str, kind: EventKind) {
        let name = kind.name();
        if let Err(e) = journal::record(&self.svc.control, actor, self.peer, &self.id, kind).await {
            tracing::error!(cause = %e, event = name, "could not journal an SSH event");
        }
    }

    /// Closes the session down: stops the tunnels and journals their closes, journals the end
    /// of the session (or a login that never succeeded), and disconnects the client.
    async fn finish(
        mut self,
        end: SessionEnd,
        mut events: mpsc::Receiver<SessionEvent>,
        running: std::pin::Pin<&mut RunningSession<Handler>>,
        connected: bool,
    ) {
        let mut running = running;
        tracing::debug!(reason = end.audit_reason(), "session ending");
        let reason = end.tunnel_reason();
        for tunnel in self.tunnels.values() {
            tunnel.stop.send_replace(Some(reason));
        }
        let drain_until = Instant::now() + TUNNEL_DRAIN;
        while !self.tunnels.is_empty() {
            tokio::select! {
                Some(report) = self.reports.recv() => self.on_report(report).await,
                // Keep russh moving (a full queue would stall the channel closes); refuse
                // whatever still comes in.
                Some(event) = events.recv() => refuse_late(event).await,
                () = tokio::time::sleep_until(drain_until) => {
                    tracing::warn!(left = self.tunnels.len(), "tunnels did not report their close in time");
                    break;
                }
            }
        }
        match &self.phase {
            Phase::Active(active) => {
                let user = active.identity.user.clone();
                let kind = EventKind::SshSessionEnded {
                    user: user.clone(),
                    reason: end.audit_reason().to_owned(),
                    duration_ms: u64::try_from(active.started.elapsed().as_millis())
                        .unwrap_or(u64::MAX),
                    tunnels: active.tunnels_opened,
                };
                self.journal(user.as_str(), kind).await;
                self.book_end(end.audit_reason()).await;
            }
            Phase::Login(login) => {
                let unexplained = login.attempts > 0 && login.failures == 0;
                if let (true, Some(user)) = (unexplained, login.last_user.clone()) {
                    // Russh refused something this session never saw (a certificate outside
                    // its window, a bad signature): still a failed login.
                    self.fail(&user, "unknown", None, AuthRefusal::NoCredential, true)
                        .await;
                }
            }
        }
        if !connected {
            return;
        }
        if let Some((code, text)) = end.disconnect() {
            let _ = tokio::time::timeout(
                DISCONNECT_WAIT,
                self.handle.disconnect(code, text, "en".into()),
            )
            .await;
        }
        // Let russh flush the disconnect and close; then drop the connection regardless.
        let _ = tokio::time::timeout(DISCONNECT_WAIT, async {
            loop {
                tokio::select! {
                    _ = &mut running => break,
                    Some(event) = events.recv() => refuse_late(event).await,
                }
            }
        })
        .await;
    }
}

/// Refuses an event that arrives while the session is closing.
async fn refuse_late(event: SessionEvent) {
    match event {
        SessionEvent::Auth { reply, .. } => {
            let _ = reply.send(AuthVerdict::REJECT);
        }
        SessionEvent::ChannelRequest { reply, .. } | SessionEvent::GlobalRequest { reply, .. } => {
            let _ = reply.send(false);
        }
        // Dropping an open handle rejects the channel.
        SessionEvent::OpenSession { .. }
        | SessionEvent::OpenDirectTcpip { .. }
        | SessionEvent::OpenRefused { .. }
        | SessionEvent::Authenticated { .. }
        | SessionEvent::ChannelClosed { .. } => {}
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The monotonic deadline of a certificate's `valid_before` (Unix seconds).
fn certificate_deadline(valid_before: u64) -> Instant {
    let at = i64::try_from(valid_before.saturating_mul(1000)).unwrap_or(i64::MAX);
    instant_of(Timestamp::from_millis(at))
}
