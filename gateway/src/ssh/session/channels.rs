//! Channels: `direct-tcpip` to what the policy allows, everything else refused with a message
//! the user can read; the tunnels' reports journaled.

use std::sync::Arc;

use russh::server::{ChannelOpenHandle, Msg};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use sallyport_core::audit::EventKind;
use sallyport_core::model::{Protocol, UserName};
use sallyport_core::policy::{decide, Decision, Request};
use sallyport_core::time::Timestamp;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::{Phase, SessionTask, TunnelEntry};
use crate::ssh::destination::{self, shown, Shown};
use crate::ssh::error::{ChannelRefusal, RefusedChannel};
use crate::ssh::events::{ChannelRequest, GlobalRequest};
use crate::ssh::journal;
use crate::ssh::tunnel::{self, TunnelReport, TunnelTask};

/// How long writing the jump-host message to a session channel may take.
const EXPLAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl SessionTask {
    fn channel_count(&self) -> usize {
        self.tunnels.len() + self.session_channels.len()
    }

    fn logged_in_user(&self) -> Option<UserName> {
        match &self.phase {
            Phase::Active(active) => Some(active.identity.user.clone()),
            Phase::Login(_) => None,
        }
    }

    /// Rejects a channel and journals `ssh.tunnel.denied`.
    async fn refuse_channel(
        &mut self,
        reply: ChannelOpenHandle,
        refusal: ChannelRefusal,
        target: String,
        port: u32,
    ) {
        tracing::info!(target = %target, port, reason = refusal.code(), "channel refused");
        let code = refusal.code();
        reply.reject(refusal.open_failure()).await;
        if let Some(user) = self.logged_in_user() {
            let kind = EventKind::SshTunnelDenied {
                user: user.clone(),
                target,
                port,
                reason: code.to_owned(),
            };
            self.journal(user.as_str(), kind).await;
        }
    }

    /// A `session` channel: accepted (within the channel limit) so that a shell or command
    /// request can be answered with a readable message.
    pub(super) async fn on_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
    ) {
        let limit = self.svc.settings.max_channels_per_session;
        if self.logged_in_user().is_none() {
            // Russh opens no channel before a login; refuse anything that says otherwise.
            return reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
        }
        if self.channel_count() >= limit {
            let refusal = ChannelRefusal::ChannelLimit(limit);
            return self
                .refuse_channel(reply, refusal, "session".into(), 0)
                .await;
        }
        if let Some(dest) = self.proxy_destination() {
            return self.on_open_proxy(channel, reply, dest).await;
        }
        reply.accept().await;
        self.session_channels.insert(channel.id(), channel);
    }

    /// `direct-tcpip`: parse, decide, and start a tunnel for an allowing decision.
    pub(super) async fn on_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: String,
        port: u32,
        reply: ChannelOpenHandle,
    ) {
        let target = shown(&host);
        let limit = self.svc.settings.max_channels_per_session;
        let (user, credential) = match &self.phase {
            Phase::Active(a) => (a.identity.user.clone(), a.identity.credential.clone()),
            Phase::Login(_) => {
                reply
                    .reject(ChannelOpenFailure::AdministrativelyProhibited)
                    .await;
                return;
            }
        };
        if self.channel_count() >= limit {
            let refusal = ChannelRefusal::ChannelLimit(limit);
            return self.refuse_channel(reply, refusal, target, port).await;
        }
        let (dest, port16) = match destination::parse(&host, port) {
            Ok(d) => d,
            Err(bad) => {
                return self
                    .refuse_channel(reply, ChannelRefusal::BadDestination(bad), target, port)
                    .await
            }
        };
        let asked = Shown(&dest, port16).to_string();
        let request = Request {
            user,
            credential,
            protocol: Protocol::Ssh,
            destination: dest.clone(),
            port: port16,
            login: None,
        };
        let allowed = match decide(&request, &self.svc.control.snapshot(), Timestamp::now()) {
            Decision::Allow(a) => Arc::new(a),
            Decision::Deny(denial) => {
                let refusal = ChannelRefusal::Denied {
                    destination: asked,
                    denial,
                };
                return self.refuse_channel(reply, refusal, target, port).await;
            }
        };
        let id = self.next_tunnel;
        self.next_tunnel += 1;
        let (stop_tx, stop) = watch::channel(None);
        self.tunnels.insert(
            id,
            TunnelEntry {
                allowed: Arc::clone(&allowed),
                stop: stop_tx,
                target: dest.to_string(),
                port: port16,
            },
        );
        if let Phase::Active(active) = &mut self.phase {
            active.idle_since = None;
            active.tunnels_opened += 1;
        }
        let task = TunnelTask {
            id,
            allowed,
            channel,
            reply,
            destination: asked.clone(),
            stop,
            reports: self.reports_tx.clone(),
            connect_timeout: self.svc.settings.connect_timeout,
            idle_timeout: self.svc.settings.idle_timeout,
        };
        let span = tracing::info_span!("tunnel", tunnel = id, to = %asked);
        tokio::spawn(tunnel::run(task).instrument(span));
    }

    /// X11, streamlocal, forwarded-tcpip: never.
    pub(super) async fn on_refused_channel(
        &mut self,
        kind: RefusedChannel,
        reply: ChannelOpenHandle,
    ) {
        let target = match &kind {
            RefusedChannel::X11 => "x11".to_owned(),
            RefusedChannel::ForwardedTcpip => "forwarded-tcpip".to_owned(),
            RefusedChannel::Streamlocal { path } => format!("unix:{path}"),
        };
        self.refuse_channel(reply, ChannelRefusal::ChannelType(kind), target, 0)
            .await;
    }

    /// Requests on a session channel. A shell, a command or a subsystem gets the message that
    /// this is a jump host and how to use it; everything else (pty, env, X11, agent forwarding)
    /// is refused.
    pub(super) async fn on_channel_request(
        &mut self,
        channel: ChannelId,
        request: ChannelRequest,
        reply: oneshot::Sender<bool>,
    ) {
        if self.proxy_destination().is_some() {
            return Self::on_proxy_request(request, reply);
        }
        match request {
            ChannelRequest::Shell | ChannelRequest::Exec(_) | ChannelRequest::Subsystem(_) => {
                tracing::info!(?request, "shell or command refused: jump host only");
                // Success, so that OpenSSH shows what follows instead of closing at once.
                let _ = reply.send(true);
                self.explain(channel).await;
            }
            ChannelRequest::Pty
            | ChannelRequest::Env
            | ChannelRequest::X11
            | ChannelRequest::AgentForward
            | ChannelRequest::WindowChange
            | ChannelRequest::Signal => {
                tracing::debug!(?request, "channel request refused");
                let _ = reply.send(false);
            }
        }
    }

    /// Writes the jump-host message on stderr, exit status 1, and closes the channel.
    async fn explain(&mut self, id: ChannelId) {
        let (Some(channel), Some(user)) =
            (self.session_channels.remove(&id), self.logged_in_user())
        else {
            return;
        };
        let jump = self.svc.jump_spec(&user);
        let text = format!(
            "sallyport: this gateway is a jump host; it runs no shell and no command.\r\n\
             Reach a target through it:\r\n\
             \x20   ssh -J {jump} TARGET\r\n\
             or in ~/.ssh/config: ProxyJump {jump}  (`sallyport ssh-config` writes it)\r\n"
        );
        let _ = tokio::time::timeout(EXPLAIN_TIMEOUT, async {
            let _ = channel.extended_data_bytes(1, text.into_bytes()).await;
            let _ = channel.exit_status(1).await;
            let _ = channel.eof().await;
            let _ = channel.close().await;
        })
        .await;
    }

    /// Global requests: remote forwarding (`-R`) is never granted.
    pub(super) async fn on_global_request(
        &mut self,
        request: GlobalRequest,
        reply: oneshot::Sender<bool>,
    ) {
        let _ = reply.send(false);
        let (target, port) = match request {
            GlobalRequest::Tcpip { address, port } => (format!("listen:{address}"), port),
            GlobalRequest::Streamlocal { path } => (format!("listen:unix:{path}"), 0),
            GlobalRequest::CancelTcpip | GlobalRequest::CancelStreamlocal => return,
        };
        tracing::info!(%target, port, "remote forwarding refused");
        if let Some(user) = self.logged_in_user() {
            let kind = EventKind::SshTunnelDenied {
                user: user.clone(),
                target,
                port,
                reason: "remote-forwarding-refused".into(),
            };
            self.journal(user.as_str(), kind).await;
        }
    }

    /// A tunnel's report: journal its open (and give the go-ahead only once that is in the
    /// journal), its refusal, or its close.
    pub(super) async fn on_report(&mut self, report: TunnelReport) {
        let Some(user) = self.logged_in_user() else {
            return;
        };
        match report {
            TunnelReport::Connected { id, address, ack } => {
                let Some(t) = self.tunnels.get(&id) else {
                    let _ = ack.send(false);
                    return;
                };
                let kind = EventKind::SshTunnelOpened {
                    user: user.clone(),
                    tunnel: id,
                    target: t.target.clone(),
                    port: t.port,
                    address: address.to_string(),
                    grant: t.allowed.grant(),
                };
                let journaled =
                    journal::record(&self.svc.control, user.as_str(), self.peer, &self.id, kind)
                        .await;
                match journaled {
                    Ok(()) => {
                        let _ = ack.send(true);
                    }
                    Err(e) => {
                        tracing::error!(cause = %e, "tunnel refused: ssh.tunnel.open could not be journaled");
                        let _ = ack.send(false);
                        self.forget_tunnel(id);
                    }
                }
            }
            TunnelReport::Refused { id, refusal } => {
                if let Some(t) = self.forget_tunnel(id) {
                    let kind = EventKind::SshTunnelDenied {
                        user: user.clone(),
                        target: t.target,
                        port: u32::from(t.port),
                        reason: refusal.code().to_owned(),
                    };
                    self.journal(user.as_str(), kind).await;
                }
            }
            TunnelReport::Finished { id, duration } => {
                tracing::debug!(tunnel = id, ?duration, "proxied channel finished");
                self.forget_tunnel(id);
            }
            TunnelReport::Closed {
                id,
                outcome,
                duration,
            } => {
                if let Some(t) = self.forget_tunnel(id) {
                    let kind = EventKind::SshTunnelClosed {
                        user: user.clone(),
                        tunnel: id,
                        target: t.target,
                        port: t.port,
                        grant: t.allowed.grant(),
                        reason: outcome.reason,
                        bytes_to_target: outcome.to_target,
                        bytes_to_client: outcome.to_client,
                        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                    };
                    self.journal(user.as_str(), kind).await;
                }
            }
        }
    }

    fn forget_tunnel(&mut self, id: u64) -> Option<TunnelEntry> {
        let entry = self.tunnels.remove(&id);
        if self.tunnels.is_empty() {
            if let Phase::Active(active) = &mut self.phase {
                active.idle_since = Some(Instant::now());
            }
        }
        entry
    }
}
