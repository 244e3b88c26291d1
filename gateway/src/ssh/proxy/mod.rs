//! Proxy mode: `ssh -A login@target@gateway`. The gateway terminates the engineer's SSH session,
//! logs in to the target for them with one signature from their forwarded agent, and relays
//! the session, so that it can be recorded and audited while the gateway holds no key for any
//! target.
//!
//! ```text
//!  login: user name `login@target` ─▶ [`auth`]: the key's owner / the certificate's user
//!  session channel ─▶ session task: decide(SshProxy, target, login) ─▶ Allowed ─▶ run(ProxyTask)
//!  run:  onward::connect(&Allowed) (TCP + key exchange, host key pinned)   ┐ at the same time
//!        setup: pty, env (allow-list), auth-agent-req, shell/exec/subsystem ┘
//!        no agent forwarded ─▶ "use ssh -A", exit status 1
//!        agent channel back to the client ─▶ session-bind ─▶ one signature ─▶ close it
//!        journal ssh.proxy.login.success ─▶ target channel: replay the requests ─▶ relay
//!        journal ssh.proxy.close ─▶ TunnelReport::Finished to the session
//! ```
//!
//! Revocation, expiry and shutdown reach a proxied channel as they reach a jump tunnel: the
//! session task keeps its `Allowed` with the tunnels and stops it through the same signal.
//!
//! # Layout
//!
//! - `username`: `login@target`. `auth`: who a proxy-mode credential belongs to.
//! - `onward`, `hostkey`, `agent_sign`: the onward connection, its host key, the agent signature.
//! - `reach`: from the client's requests to a started session on the target. `setup`: the
//!   client's requests before the target is ready. `relay`: the copying after.
//! - `throttle`: the client's window cut while a channel is being connected.
//! - `forward`: the agent forwarded on to the target (only when the grant allows it).
//! - `observe`: what recorders and auditors see of each channel.

pub mod agent_sign;
pub mod auth;
mod forward;
pub mod hostkey;
pub mod observe;
pub mod onward;
mod reach;
mod relay;
mod setup;
pub mod throttle;
pub mod username;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{self, Msg};
use russh::{Channel, ChannelWriteHalf};
use sallyport_core::audit::{EventKind, TunnelCloseReason};
use sallyport_core::model::Fingerprint;
use sallyport_core::policy::Allowed;
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::observe::{ChannelContext, ObserverFactory};
use self::relay::{Ends, Observers};
use self::setup::Interrupted;
use self::throttle::WindowThrottle;
use self::username::ProxyDestination;
use super::auth::Identity;
use super::journal;
use super::relay::{stopped, StopSignal};
use super::service::SshService;
use super::tunnel::{instant_of, TunnelReport};

/// How long writing a refusal to the client may take.
const EXPLAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Time for the agent's answers and the target's verdict on the login (an agent may ask its
/// user to confirm a signature: `ssh-add -c`).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The message when the client did not forward its agent.
pub const NO_AGENT: &str = "proxy mode needs your agent: use ssh -A";

/// Everything one proxied session channel needs.
pub struct ProxyTask {
    /// Its number among the session's tunnels.
    pub id: u64,
    /// The SSH service.
    pub svc: Arc<SshService>,
    /// The session's id (as journaled).
    pub session_id: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// The session's russh handle (agent channel, exit-signal).
    pub handle: server::Handle,
    /// The client's session channel (already accepted).
    pub channel: Channel<Msg>,
    /// The decision.
    pub allowed: Arc<Allowed>,
    /// Who logged in, and with what.
    pub identity: Identity,
    /// Where to.
    pub dest: ProxyDestination,
    /// The session's stop signal.
    pub stop: StopSignal,
    /// Reports to the session.
    pub reports: mpsc::Sender<TunnelReport>,
    /// The connection's window throttle (held until the target is ready).
    pub throttle: Arc<WindowThrottle>,
}

impl std::fmt::Debug for ProxyTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyTask")
            .field("id", &self.id)
            .field("dest", &self.dest)
            .finish_non_exhaustive()
    }
}

/// Why a proxied channel did not get to its target.
struct Refusal {
    /// Stable code for `ssh.proxy.login.failure` (`None`: nothing to journal, e.g. the client
    /// left).
    code: Option<&'static str>,
    /// What the engineer reads on stderr (`None`: the client is gone).
    message: Option<String>,
    /// Why the channel ended.
    reason: TunnelCloseReason,
    /// One more event to journal first (`ssh.hostkey.mismatch`).
    event: Option<EventKind>,
}

impl Refusal {
    fn told(code: &'static str, message: String) -> Self {
        Self {
            code: Some(code),
            message: Some(message),
            reason: TunnelCloseReason::Target,
            event: None,
        }
    }

    fn interrupted(why: Interrupted) -> Self {
        match why {
            Interrupted::ClientGone => Self {
                code: None,
                message: None,
                reason: TunnelCloseReason::Client,
                event: None,
            },
            Interrupted::Overflow => Self::told(
                "client-input-overflow",
                format!(
                    "more than {} MiB of input arrived before the target was ready",
                    setup::MAX_PENDING / (1024 * 1024)
                ),
            ),
        }
    }

    fn stopped(reason: TunnelCloseReason) -> Self {
        Self {
            code: Some(reason.as_str()),
            message: Some(format!(
                "access ended before the target was reached ({})",
                reason.as_str()
            )),
            reason,
            event: None,
        }
    }
}

/// Runs one proxied session channel to its end.
pub async fn run(task: ProxyTask, factory: Option<Arc<dyn ObserverFactory>>) {
    let ProxyTask {
        id,
        svc,
        session_id,
        peer,
        handle,
        channel,
        allowed,
        identity,
        dest,
        mut stop,
        reports,
        throttle,
    } = task;
    let ctx = ChannelContext {
        session_id: uuid::Uuid::parse_str(&session_id).unwrap_or_default(),
        channel: u32::from(channel.id()),
        user: identity.user.clone(),
        target: dest.target.clone(),
        login: dest.login.clone(),
        grant: allowed.grant(),
        source: peer,
    };
    let observers = Observers::new(factory.map(|f| f.observers(&ctx)).unwrap_or_default());
    let (mut read, write) = channel.split();
    let expires = instant_of(allowed.expires_at());
    let opened = Instant::now();
    let journal_event = |kind: EventKind| {
        let svc = Arc::clone(&svc);
        let session_id = session_id.clone();
        let user = identity.user.clone();
        async move {
            let name = kind.name();
            let r = journal::record(&svc.control, user.as_str(), peer, &session_id, kind).await;
            if let Err(e) = &r {
                tracing::error!(cause = %e, event = name, "could not journal an SSH event");
            }
            r.is_ok()
        }
    };

    let held = throttle.hold();
    let reached = tokio::select! {
        r = reach::reach(&svc, &handle, &allowed, &identity, &dest, &mut read, &observers) => r,
        reason = stopped(&mut stop) => Err(Refusal::stopped(reason)),
        () = tokio::time::sleep_until(expires) => Err(Refusal::stopped(TunnelCloseReason::Expired)),
    };
    drop(held);
    let (onward, setup, target) = match reached {
        Ok(r) => r,
        Err(refusal) => {
            if let Some(event) = refusal.event {
                journal_event(event).await;
            }
            if let Some(code) = refusal.code {
                let kind = EventKind::SshProxyLoginFailed {
                    user: identity.user.clone(),
                    target: dest.target.to_string(),
                    login: dest.login.to_string(),
                    reason: code.to_owned(),
                };
                journal_event(kind).await;
            }
            // Stop reading first: russh would wait for this channel's queue before it sends
            // anything else, the refusal included.
            drop(read);
            if let Some(message) = &refusal.message {
                tracing::info!(
                    reason = refusal.code.unwrap_or("client"),
                    end = refusal.reason.as_str(),
                    %message,
                    "proxy refused"
                );
                explain(&write, message).await;
            }
            observers.each(|o| o.closed());
            finish(&reports, id, opened).await;
            return;
        }
    };
    let kind = EventKind::SshProxyLoginSucceeded {
        user: identity.user.clone(),
        channel: id,
        target: dest.target.clone(),
        login: dest.login.clone(),
        grant: allowed.grant(),
        fingerprint: identity.fingerprint.clone(),
        host_key: Fingerprint::of(&onward.host_key),
    };
    if !journal_event(kind).await {
        explain(&write, "the audit journal is unavailable; refusing").await;
        observers.each(|o| o.closed());
        finish(&reports, id, opened).await;
        return;
    }
    tracing::info!(target = %dest.target, login = %dest.login, "proxied session started");
    let (target_read, target_write) = target.split();
    let ends = Ends {
        client_read: &mut read,
        client_write: &write,
        server: &handle,
        target_read,
        target_write,
        observers: &observers,
        pending: setup.pending,
        pending_eof: setup.eof,
        throttle: &throttle,
    };
    let end = relay::relay(ends, &mut stop, expires, svc.settings.idle_timeout).await;
    observers.each(|o| o.closed());
    drop(onward);
    let kind = EventKind::SshProxyClosed {
        user: identity.user.clone(),
        channel: id,
        target: dest.target.clone(),
        login: dest.login.clone(),
        grant: allowed.grant(),
        reason: end.reason,
        exit_status: end.exit_status,
        bytes_to_target: end.to_target,
        bytes_to_client: end.to_client,
        duration_ms: u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    journal_event(kind).await;
    finish(&reports, id, opened).await;
}

async fn finish(reports: &mpsc::Sender<TunnelReport>, id: u64, opened: Instant) {
    let _ = reports
        .send(TunnelReport::Finished {
            id,
            duration: opened.elapsed(),
        })
        .await;
}

/// Writes `sallyport: MESSAGE` on the client's stderr, exit status 1, and closes the channel.
async fn explain(write: &ChannelWriteHalf<Msg>, message: &str) {
    let text = format!("sallyport: {message}\r\n");
    let _ = tokio::time::timeout(EXPLAIN_TIMEOUT, async {
        let _ = write.extended_data_bytes(1, text.into_bytes()).await;
        let _ = write.exit_status(1).await;
        let _ = write.eof().await;
        let _ = write.close().await;
    })
    .await;
}
