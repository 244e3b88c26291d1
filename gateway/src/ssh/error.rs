//! The SSH gateway's errors, and the one mapping from each to what the SSH client sees: a
//! channel-open failure (reason code and text), or a disconnect (reason code and text).
//!
//! | value | client sees |
//! |---|---|
//! | [`ChannelRefusal::Denied`], `ChannelType`, `BadDestination`, `Stopped` | `administratively prohibited: sallyport: …` |
//! | [`ChannelRefusal::Unreachable`] | `connect failed: sallyport: cannot reach …` |
//! | [`ChannelRefusal::ChannelLimit`], `AuditUnavailable` | `resource shortage: sallyport: …` |
//! | [`SessionEnd`] other than `Client` | `Received disconnect …: sallyport: …` |

use std::time::Duration;

use russh::{ChannelOpenFailure, Disconnect};
use sallyport_core::audit::TunnelCloseReason;
use sallyport_core::policy::Denial;

use super::auth::AuthRefusal;
use super::destination::BadDestination;
use super::upstream::ConnectError;

/// What the russh handler can fail with: russh's own errors, or the session task being gone
/// (then the connection ends).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The SSH protocol layer failed.
    #[error("ssh: {0}")]
    Russh(#[from] russh::Error),
    /// The session task ended; nothing can be decided for this connection any more.
    #[error("the session task has ended")]
    SessionGone,
}

/// A channel type jump mode never opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusedChannel {
    /// `x11` (X11 forwarding).
    X11,
    /// `forwarded-tcpip` sent by a client (only a server may send it).
    ForwardedTcpip,
    /// `direct-streamlocal@openssh.com` (a Unix socket on the gateway).
    Streamlocal {
        /// The socket path asked for, as shown.
        path: String,
    },
}

impl RefusedChannel {
    fn what(&self) -> &'static str {
        match self {
            RefusedChannel::X11 => "X11 forwarding",
            RefusedChannel::ForwardedTcpip => "forwarded-tcpip channels",
            RefusedChannel::Streamlocal { .. } => "Unix-socket forwarding",
        }
    }

    /// The stable code for `ssh.tunnel.denied`.
    pub fn code(&self) -> &'static str {
        match self {
            RefusedChannel::X11 => "x11-refused",
            RefusedChannel::ForwardedTcpip => "forwarded-tcpip-refused",
            RefusedChannel::Streamlocal { .. } => "streamlocal-refused",
        }
    }
}

/// Why a channel was not opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelRefusal {
    /// The policy said no.
    #[error("{destination}: {denial}")]
    Denied {
        /// `target:port` as asked.
        destination: String,
        /// Why.
        denial: Denial,
    },
    /// The request names no destination.
    #[error(transparent)]
    BadDestination(#[from] BadDestination),
    /// A channel type jump mode never opens.
    #[error("{} is not available on this gateway", .0.what())]
    ChannelType(RefusedChannel),
    /// The session has as many channels as allowed.
    #[error("at most {0} channels per session")]
    ChannelLimit(usize),
    /// The target could not be reached.
    #[error("cannot reach {destination}: {cause}")]
    Unreachable {
        /// `target:port` as asked.
        destination: String,
        /// Why.
        cause: ConnectError,
    },
    /// Access ended (revoked, expired, shutdown) while the tunnel was being set up.
    #[error("{destination}: closed before it opened ({})", .reason.as_str())]
    Stopped {
        /// `target:port` as asked.
        destination: String,
        /// Why.
        reason: TunnelCloseReason,
    },
    /// The tunnel could not be journaled, so it is not opened (audit first).
    #[error("the audit journal is unavailable; try again later")]
    AuditUnavailable,
}

impl ChannelRefusal {
    /// The one mapping to the SSH channel-open failure the client sees.
    pub fn open_failure(&self) -> ChannelOpenFailure {
        let code = match self {
            ChannelRefusal::Denied { .. }
            | ChannelRefusal::BadDestination(_)
            | ChannelRefusal::ChannelType(_)
            | ChannelRefusal::Stopped { .. } => 1,
            ChannelRefusal::Unreachable { .. } => 2,
            ChannelRefusal::ChannelLimit(_) | ChannelRefusal::AuditUnavailable => 4,
        };
        let hint = match self {
            ChannelRefusal::ChannelType(_) => {
                " (jump mode forwards TCP to granted targets only: ssh -J)"
            }
            _ => "",
        };
        ChannelOpenFailure::Other {
            code,
            reason: format!("sallyport: {self}{hint}"),
        }
    }

    /// The stable code for `ssh.tunnel.denied`.
    pub fn code(&self) -> &'static str {
        match self {
            ChannelRefusal::Denied { denial, .. } => denial.code(),
            ChannelRefusal::BadDestination(b) => b.code(),
            ChannelRefusal::ChannelType(kind) => kind.code(),
            ChannelRefusal::ChannelLimit(_) => "channel-limit",
            ChannelRefusal::Unreachable { .. } => "target-unreachable",
            ChannelRefusal::Stopped { reason, .. } => match reason {
                TunnelCloseReason::Revoked => "grant-revoked",
                TunnelCloseReason::Expired => "grant-expired",
                TunnelCloseReason::Shutdown => "shutdown",
                TunnelCloseReason::Client | TunnelCloseReason::Target | TunnelCloseReason::Idle => {
                    "closed-before-open"
                }
            },
            ChannelRefusal::AuditUnavailable => "audit-unavailable",
        }
    }
}

/// Why a session (one SSH connection) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The client disconnected (or its connection broke).
    Client,
    /// The user was disabled or the key removed.
    Revoked(Denial),
    /// The login certificate expired.
    Expired,
    /// No tunnel for the idle timeout.
    Idle(Duration),
    /// The gateway is shutting down.
    Shutdown,
    /// No successful login within the handshake timeout.
    HandshakeTimeout(Duration),
    /// Locked out by the failed-login limiter.
    RateLimited(Duration),
    /// Login refused for good (session limit, audit journal unavailable).
    LoginRefused(AuthRefusal),
    /// The change feed closed, so revocations could no longer be seen: fail closed.
    FeedClosed,
    /// An admin ended the session (`POST /v1/sessions/{id}/kill`, on any gateway).
    Killed,
}

impl SessionEnd {
    /// The one mapping to the disconnect the client sees; `None` when the client left.
    pub fn disconnect(&self) -> Option<(Disconnect, String)> {
        let (reason, text) = match self {
            SessionEnd::Client => return None,
            SessionEnd::Revoked(d) => (Disconnect::ByApplication, format!("access revoked: {d}")),
            SessionEnd::Expired => (
                Disconnect::ByApplication,
                "your login certificate expired".to_owned(),
            ),
            SessionEnd::Idle(after) => (
                Disconnect::ByApplication,
                format!("idle for {}", humantime::format_duration(*after)),
            ),
            SessionEnd::Shutdown | SessionEnd::FeedClosed => (
                Disconnect::ByApplication,
                "the gateway is shutting down".to_owned(),
            ),
            SessionEnd::HandshakeTimeout(after) => (
                Disconnect::ByApplication,
                format!("no login within {}", humantime::format_duration(*after)),
            ),
            SessionEnd::RateLimited(retry) => (
                Disconnect::TooManyConnections,
                format!(
                    "too many failed logins; try again in {} s",
                    retry.as_secs().max(1)
                ),
            ),
            SessionEnd::LoginRefused(r) => {
                (Disconnect::ByApplication, format!("login refused: {r}"))
            }
            SessionEnd::Killed => (
                Disconnect::ByApplication,
                "session ended by an administrator".to_owned(),
            ),
        };
        Some((reason, format!("sallyport: {text}")))
    }

    /// The `reason` of `ssh.session.end`.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            SessionEnd::Client => "client",
            SessionEnd::Revoked(_) => "revoked",
            SessionEnd::Expired => "expired",
            SessionEnd::Idle(_) => "idle",
            SessionEnd::Shutdown => "shutdown",
            SessionEnd::Killed => "killed",
            SessionEnd::HandshakeTimeout(_)
            | SessionEnd::RateLimited(_)
            | SessionEnd::LoginRefused(_)
            | SessionEnd::FeedClosed => "error",
        }
    }

    /// What the session's tunnels are closed with.
    pub fn tunnel_reason(&self) -> TunnelCloseReason {
        match self {
            SessionEnd::Client => TunnelCloseReason::Client,
            SessionEnd::Revoked(_) | SessionEnd::Killed => TunnelCloseReason::Revoked,
            SessionEnd::Expired => TunnelCloseReason::Expired,
            SessionEnd::Idle(_) => TunnelCloseReason::Idle,
            SessionEnd::Shutdown
            | SessionEnd::FeedClosed
            | SessionEnd::HandshakeTimeout(_)
            | SessionEnd::RateLimited(_)
            | SessionEnd::LoginRefused(_) => TunnelCloseReason::Shutdown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_well_and_keep_their_codes() {
        let r = ChannelRefusal::Denied {
            destination: "db-1:5432".into(),
            denial: Denial::PortNotGranted,
        };
        let ChannelOpenFailure::Other { code, reason } = r.open_failure() else {
            panic!("custom text");
        };
        assert_eq!(code, 1);
        assert_eq!(reason, "sallyport: db-1:5432: no grant allows this port");
        assert_eq!(r.code(), "port-not-granted");
        let x = ChannelRefusal::ChannelType(RefusedChannel::X11);
        assert!(x.open_failure().description().contains("ssh -J"));
        let limit = ChannelRefusal::ChannelLimit(16);
        assert_eq!(limit.open_failure().code(), 4);
        assert_eq!(limit.code(), "channel-limit");
    }

    #[test]
    fn session_ends_map_to_disconnects() {
        assert!(SessionEnd::Client.disconnect().is_none());
        let (_, text) = SessionEnd::Revoked(Denial::UserDisabled)
            .disconnect()
            .unwrap();
        assert_eq!(text, "sallyport: access revoked: user is disabled");
        assert_eq!(
            SessionEnd::Revoked(Denial::UserDisabled).audit_reason(),
            "revoked"
        );
        assert_eq!(
            SessionEnd::Expired.tunnel_reason(),
            TunnelCloseReason::Expired
        );
        let (code, _) = SessionEnd::RateLimited(Duration::from_secs(30))
            .disconnect()
            .unwrap();
        assert!(matches!(code, Disconnect::TooManyConnections));
    }
}
