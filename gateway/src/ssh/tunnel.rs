//! One jump tunnel, from an allowing decision to its close: connect, have the session journal
//! `ssh.tunnel.open` (audit first), accept the channel, relay, report how it ended.
//!
//! ```text
//!  session: decide ─Allow(Allowed)─▶ spawn run(TunnelTask)
//!  tunnel:  connect(&Allowed) ──▶ Connected{ack} ──▶ session journals ssh.tunnel.open ──▶ ack
//!           accept channel ──▶ relay ◀── stop (revoked/expired/idle/shutdown) from the session
//!           Closed{outcome} ──▶ session journals ssh.tunnel.close
//! ```
//!
//! The session can stop the tunnel at any step; before the channel is accepted, a stop rejects
//! it with the reason.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{ChannelOpenHandle, Msg};
use russh::Channel;
use sallyport_core::audit::TunnelCloseReason;
use sallyport_core::policy::Allowed;
use sallyport_core::time::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::error::ChannelRefusal;
use super::relay::{self, stopped, RelayOutcome, StopSignal};
use super::upstream;

/// What a tunnel tells its session.
#[derive(Debug)]
pub enum TunnelReport {
    /// Connected to the target; the session journals the open and answers on `ack` (`false`:
    /// do not open).
    Connected {
        /// The tunnel.
        id: u64,
        /// The address connected to.
        address: SocketAddr,
        /// The session's go-ahead.
        ack: oneshot::Sender<bool>,
    },
    /// The channel was rejected (unreachable, or stopped before it opened).
    Refused {
        /// The tunnel.
        id: u64,
        /// Why.
        refusal: ChannelRefusal,
    },
    /// A proxied session channel ended; it journaled its own events (`ssh.proxy.*`).
    Finished {
        /// The tunnel.
        id: u64,
        /// How long it was open.
        duration: Duration,
    },
    /// The tunnel closed.
    Closed {
        /// The tunnel.
        id: u64,
        /// How.
        outcome: RelayOutcome,
        /// How long it was open.
        duration: Duration,
    },
}

/// Everything one tunnel needs.
pub struct TunnelTask {
    /// The tunnel's number in its session.
    pub id: u64,
    /// The decision; the connection is opened to where it says.
    pub allowed: Arc<Allowed>,
    /// The client's channel.
    pub channel: Channel<Msg>,
    /// Accepts or rejects the channel.
    pub reply: ChannelOpenHandle,
    /// `target:port` as asked, for messages.
    pub destination: String,
    /// The session's stop signal.
    pub stop: StopSignal,
    /// Reports to the session.
    pub reports: mpsc::Sender<TunnelReport>,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Idle timeout.
    pub idle_timeout: Duration,
}

impl fmt::Debug for TunnelTask {
    // By hand: russh's channel-open handle has no `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunnelTask")
            .field("id", &self.id)
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

/// Runs one tunnel to its end.
pub async fn run(task: TunnelTask) {
    let TunnelTask {
        id,
        allowed,
        channel,
        reply,
        destination,
        mut stop,
        reports,
        connect_timeout,
        idle_timeout,
    } = task;
    let expires = instant_of(allowed.expires_at());
    let stopped_early = |reason| ChannelRefusal::Stopped {
        destination: destination.clone(),
        reason,
    };

    let connected = tokio::select! {
        r = upstream::connect(&allowed, connect_timeout) => r,
        reason = stopped(&mut stop) => {
            return refuse(id, reply, stopped_early(reason), &reports).await;
        }
        () = tokio::time::sleep_until(expires) => {
            return refuse(id, reply, stopped_early(TunnelCloseReason::Expired), &reports).await;
        }
    };
    let (stream, address) = match connected {
        Ok(c) => c,
        Err(cause) => {
            let refusal = ChannelRefusal::Unreachable {
                destination: destination.clone(),
                cause,
            };
            return refuse(id, reply, refusal, &reports).await;
        }
    };

    let (ack, acked) = oneshot::channel();
    if reports
        .send(TunnelReport::Connected { id, address, ack })
        .await
        .is_err()
    {
        // The session is gone: so is the client.
        reply
            .reject(stopped_early(TunnelCloseReason::Client).open_failure())
            .await;
        return;
    }
    let go = tokio::select! {
        r = acked => r.unwrap_or(false),
        reason = stopped(&mut stop) => {
            return refuse(id, reply, stopped_early(reason), &reports).await;
        }
    };
    if !go {
        // The session could not journal the open; it has already forgotten this tunnel.
        reply
            .reject(ChannelRefusal::AuditUnavailable.open_failure())
            .await;
        return;
    }

    reply.accept().await;
    tracing::debug!(%address, "tunnel open");
    let opened = Instant::now();
    let outcome = relay::relay(channel, stream, &mut stop, expires, idle_timeout).await;
    tracing::debug!(
        reason = outcome.reason.as_str(),
        up = outcome.to_target,
        down = outcome.to_client,
        "tunnel closed"
    );
    let _ = reports
        .send(TunnelReport::Closed {
            id,
            outcome,
            duration: opened.elapsed(),
        })
        .await;
}

async fn refuse(
    id: u64,
    reply: ChannelOpenHandle,
    refusal: ChannelRefusal,
    reports: &mpsc::Sender<TunnelReport>,
) {
    tracing::debug!(cause = %refusal, "tunnel refused");
    reply.reject(refusal.open_failure()).await;
    let _ = reports.send(TunnelReport::Refused { id, refusal }).await;
}

/// The monotonic instant of a wall-clock time (now if it has passed; about a century away if
/// it is further than the clock can count).
pub fn instant_of(at: Timestamp) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    let wait = Timestamp::now().until(at);
    now.checked_add(wait)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}
