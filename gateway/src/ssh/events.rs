//! The typed event stream: everything russh reports about one connection, as one enum that the
//! session task handles with total `match`es (a new variant must be decided explicitly).

use std::fmt;
use std::time::Duration;

use russh::keys::{Algorithm, Certificate, PublicKey};
use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelId};
use tokio::sync::oneshot;

use super::error::RefusedChannel;

/// One thing that happened on the connection.
pub enum SessionEvent {
    /// A login attempt; the session answers on `reply`.
    Auth {
        /// The user name as sent.
        user: String,
        /// What was offered.
        attempt: AuthAttempt,
        /// The verdict.
        reply: oneshot::Sender<AuthVerdict>,
    },
    /// Russh sent the login's success to the client.
    Authenticated {
        /// The client's version string, as sent.
        client: String,
    },
    /// A `session` channel (a shell, a command or a subsystem will follow).
    OpenSession {
        /// The channel.
        channel: Channel<Msg>,
        /// Accept or reject it.
        reply: ChannelOpenHandle,
    },
    /// A `direct-tcpip` channel: `ssh -J`, `-W`, `-L`, `-D`.
    OpenDirectTcpip {
        /// The channel.
        channel: Channel<Msg>,
        /// The host as the client sent it.
        host: String,
        /// The port as the client sent it.
        port: u32,
        /// Accept or reject it.
        reply: ChannelOpenHandle,
    },
    /// A channel type jump mode never opens.
    OpenRefused {
        /// Which.
        kind: RefusedChannel,
        /// Reject it.
        reply: ChannelOpenHandle,
    },
    /// A request on a session channel.
    ChannelRequest {
        /// The channel.
        channel: ChannelId,
        /// What is asked.
        request: ChannelRequest,
        /// Success (`true`) or failure.
        reply: oneshot::Sender<bool>,
    },
    /// A global request (`-R` and friends).
    GlobalRequest {
        /// What is asked.
        request: GlobalRequest,
        /// Success (`true`) or failure.
        reply: oneshot::Sender<bool>,
    },
    /// The client closed a channel.
    ChannelClosed {
        /// The channel.
        channel: ChannelId,
    },
}

/// What a login attempt offers.
#[derive(Debug)]
pub enum AuthAttempt {
    /// The `none` method (OpenSSH's first probe).
    None,
    /// A password (never looked at).
    Password,
    /// Keyboard-interactive.
    KeyboardInteractive,
    /// A public key offered, its signature not yet checked.
    KeyOffered {
        /// The key (for a certificate, its subject key).
        key: PublicKey,
        /// The algorithm named in the request.
        algorithm: Algorithm,
    },
    /// A public key whose signature russh verified.
    Key {
        /// The key.
        key: PublicKey,
        /// The signature's algorithm.
        algorithm: Algorithm,
    },
    /// An OpenSSH certificate whose signature russh verified.
    Certificate(Box<Certificate>),
}

impl AuthAttempt {
    /// The method's name in audit records.
    pub fn method(&self) -> &'static str {
        match self {
            AuthAttempt::None => "none",
            AuthAttempt::Password => "password",
            AuthAttempt::KeyboardInteractive => "keyboard-interactive",
            AuthAttempt::KeyOffered { .. } | AuthAttempt::Key { .. } => "publickey",
            AuthAttempt::Certificate(_) => "certificate",
        }
    }
}

/// The answer to a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthVerdict {
    /// Accept (the login succeeds, or the offered key may go on to sign).
    pub accept: bool,
    /// Hold the rejection back this long (the failed-login limiter's delay).
    pub delay: Duration,
}

impl AuthVerdict {
    /// Accept.
    pub const ACCEPT: AuthVerdict = AuthVerdict {
        accept: true,
        delay: Duration::ZERO,
    };
    /// Reject at once.
    pub const REJECT: AuthVerdict = AuthVerdict {
        accept: false,
        delay: Duration::ZERO,
    };
}

/// A request on a session channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelRequest {
    /// `pty-req`.
    Pty,
    /// `shell`.
    Shell,
    /// `exec` (the command, as shown).
    Exec(String),
    /// `subsystem` (its name, as shown).
    Subsystem(String),
    /// `env`.
    Env,
    /// `x11-req`.
    X11,
    /// `auth-agent-req@openssh.com` (agent forwarding).
    AgentForward,
    /// `window-change`.
    WindowChange,
    /// `signal`.
    Signal,
}

/// A global request: a remote forwarding (`-R`) and its cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalRequest {
    /// `tcpip-forward` (`ssh -R`).
    Tcpip {
        /// The bind address asked for, as shown.
        address: String,
        /// The port.
        port: u32,
    },
    /// `cancel-tcpip-forward`.
    CancelTcpip,
    /// `streamlocal-forward@openssh.com` (`-R` to a Unix socket).
    Streamlocal {
        /// The socket path, as shown.
        path: String,
    },
    /// `cancel-streamlocal-forward@openssh.com`.
    CancelStreamlocal,
}

impl fmt::Debug for SessionEvent {
    // By hand: russh's channel-open handle has no `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEvent::Auth { user, attempt, .. } => f
                .debug_struct("Auth")
                .field("user", user)
                .field("method", &attempt.method())
                .finish_non_exhaustive(),
            SessionEvent::Authenticated { client } => f
                .debug_struct("Authenticated")
                .field("client", client)
                .finish(),
            SessionEvent::OpenSession { channel, .. } => f
                .debug_struct("OpenSession")
                .field("channel", &channel.id())
                .finish_non_exhaustive(),
            SessionEvent::OpenDirectTcpip {
                channel,
                host,
                port,
                ..
            } => f
                .debug_struct("OpenDirectTcpip")
                .field("channel", &channel.id())
                .field("host", host)
                .field("port", port)
                .finish_non_exhaustive(),
            SessionEvent::OpenRefused { kind, .. } => f
                .debug_struct("OpenRefused")
                .field("kind", kind)
                .finish_non_exhaustive(),
            SessionEvent::ChannelRequest {
                channel, request, ..
            } => f
                .debug_struct("ChannelRequest")
                .field("channel", channel)
                .field("request", request)
                .finish_non_exhaustive(),
            SessionEvent::GlobalRequest { request, .. } => f
                .debug_struct("GlobalRequest")
                .field("request", request)
                .finish_non_exhaustive(),
            SessionEvent::ChannelClosed { channel } => f
                .debug_struct("ChannelClosed")
                .field("channel", channel)
                .finish(),
        }
    }
}
