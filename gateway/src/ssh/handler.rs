//! The russh [`Handler`](russh::server::Handler): every callback becomes a [`SessionEvent`] on
//! the session's queue; callbacks that need an answer wait for the session task's verdict and
//! apply it. Nothing is decided here.

use std::sync::Arc;

use russh::keys::Certificate;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, MethodKind, MethodSet, Pty, Sig};
use tokio::sync::{mpsc, oneshot};

use super::destination::shown;
use super::error::{HandlerError, RefusedChannel};
use super::events::{AuthAttempt, AuthVerdict, ChannelRequest, GlobalRequest, SessionEvent};
use super::proxy::throttle::WindowThrottle;

/// Turns russh's callbacks into events for one session task.
#[derive(Debug)]
pub struct Handler {
    events: mpsc::Sender<SessionEvent>,
    /// The window russh tops the client up to (cut while a proxied channel sets up).
    window: Option<Arc<WindowThrottle>>,
}

impl Handler {
    /// A handler feeding `events`.
    pub fn new(events: mpsc::Sender<SessionEvent>) -> Self {
        Self {
            events,
            window: None,
        }
    }

    /// The same, with the window target taken from `window`.
    pub fn with_window(mut self, window: Arc<WindowThrottle>) -> Self {
        self.window = Some(window);
        self
    }

    async fn send(&self, event: SessionEvent) -> Result<(), HandlerError> {
        self.events
            .send(event)
            .await
            .map_err(|_| HandlerError::SessionGone)
    }

    async fn auth(&self, user: &str, attempt: AuthAttempt) -> Result<Auth, HandlerError> {
        let (reply, verdict) = oneshot::channel();
        self.send(SessionEvent::Auth {
            user: user.to_owned(),
            attempt,
            reply,
        })
        .await?;
        let verdict: AuthVerdict = verdict.await.map_err(|_| HandlerError::SessionGone)?;
        if verdict.accept {
            return Ok(Auth::Accept);
        }
        if !verdict.delay.is_zero() {
            // The limiter's delay: a rejection costs the guesser time.
            tokio::time::sleep(verdict.delay).await;
        }
        Ok(Auth::Reject {
            proceed_with_methods: Some(MethodSet::from(&[MethodKind::PublicKey][..])),
            partial_success: false,
        })
    }

    async fn request(
        &self,
        channel: ChannelId,
        request: ChannelRequest,
        session: &mut Session,
    ) -> Result<(), HandlerError> {
        let (reply, answer) = oneshot::channel();
        self.send(SessionEvent::ChannelRequest {
            channel,
            request,
            reply,
        })
        .await?;
        if answer.await.map_err(|_| HandlerError::SessionGone)? {
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn global(&self, request: GlobalRequest) -> Result<bool, HandlerError> {
        let (reply, answer) = oneshot::channel();
        self.send(SessionEvent::GlobalRequest { request, reply })
            .await?;
        answer.await.map_err(|_| HandlerError::SessionGone)
    }

    async fn refuse(
        &self,
        kind: RefusedChannel,
        reply: ChannelOpenHandle,
    ) -> Result<(), HandlerError> {
        self.send(SessionEvent::OpenRefused { kind, reply }).await
    }
}

impl russh::server::Handler for Handler {
    type Error = HandlerError;

    fn adjust_window(&mut self, _channel: ChannelId, current: u32) -> u32 {
        self.window.as_ref().map_or(current, |w| w.target())
    }

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        self.auth(user, AuthAttempt::None).await
    }

    async fn auth_password(&mut self, user: &str, _password: &str) -> Result<Auth, Self::Error> {
        self.auth(user, AuthAttempt::Password).await
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        _response: Option<russh::server::Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        self.auth(user, AuthAttempt::KeyboardInteractive).await
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let attempt = AuthAttempt::KeyOffered {
            key: offer.public_key.clone(),
            algorithm: offer.algorithm.clone(),
        };
        self.auth(user, attempt).await
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let attempt = AuthAttempt::Key {
            key: key.public_key.clone(),
            algorithm: key.algorithm.clone(),
        };
        self.auth(user, attempt).await
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        let attempt = AuthAttempt::Certificate(Box::new(certificate.clone()));
        self.auth(user, attempt).await
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        let client: String = String::from_utf8_lossy(session.remote_sshid())
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(128)
            .collect();
        self.send(SessionEvent::Authenticated { client }).await
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.send(SessionEvent::OpenSession { channel, reply })
            .await
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(RefusedChannel::X11, reply).await
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.send(SessionEvent::OpenDirectTcpip {
            channel,
            host: host_to_connect.to_owned(),
            port: port_to_connect,
            reply,
        })
        .await
    }

    async fn channel_open_forwarded_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse(RefusedChannel::ForwardedTcpip, reply).await
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let kind = RefusedChannel::Streamlocal {
            path: shown(socket_path),
        };
        self.refuse(kind, reply).await
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.send(SessionEvent::ChannelClosed { channel }).await
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.request(channel, ChannelRequest::Pty, session).await
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.request(channel, ChannelRequest::X11, session).await
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.request(channel, ChannelRequest::Env, session).await
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.request(channel, ChannelRequest::Shell, session).await
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = shown(&String::from_utf8_lossy(data));
        self.request(channel, ChannelRequest::Exec(command), session)
            .await
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let request = ChannelRequest::Subsystem(shown(name));
        self.request(channel, request, session).await
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.request(channel, ChannelRequest::WindowChange, session)
            .await
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        // Russh sends the reply from the returned value.
        let (reply, answer) = oneshot::channel();
        self.send(SessionEvent::ChannelRequest {
            channel,
            request: ChannelRequest::AgentForward,
            reply,
        })
        .await?;
        answer.await.map_err(|_| HandlerError::SessionGone)
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        _signal: Sig,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.request(channel, ChannelRequest::Signal, session).await
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.global(GlobalRequest::Tcpip {
            address: shown(address),
            port: *port,
        })
        .await
    }

    async fn cancel_tcpip_forward(
        &mut self,
        _address: &str,
        _port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.global(GlobalRequest::CancelTcpip).await
    }

    async fn streamlocal_forward(
        &mut self,
        socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.global(GlobalRequest::Streamlocal {
            path: shown(socket_path),
        })
        .await
    }

    async fn cancel_streamlocal_forward(
        &mut self,
        _socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.global(GlobalRequest::CancelStreamlocal).await
    }
}
