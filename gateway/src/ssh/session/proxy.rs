//! Proxy-mode session channels (`ssh -A login@target@gateway`): decided here like a jump
//! tunnel (the `Allowed` joins the session's tunnels, so revocation, expiry and shutdown stop
//! it the same way), run by [`crate::ssh::proxy`].

use std::sync::Arc;

use russh::server::{ChannelOpenHandle, Msg};
use russh::Channel;
use sallyport_core::audit::EventKind;
use sallyport_core::model::Protocol;
use sallyport_core::policy::{decide, Decision, Destination, Request};
use sallyport_core::time::Timestamp;
use tokio::sync::{oneshot, watch};
use tracing::Instrument;

use super::{Phase, SessionTask, TunnelEntry};
use crate::ssh::error::ChannelRefusal;
use crate::ssh::events::ChannelRequest;
use crate::ssh::proxy::throttle::WindowThrottle;
use crate::ssh::proxy::{self, username::ProxyDestination, ProxyTask};

impl SessionTask {
    /// The connection's window throttle (shared with its russh handler).
    pub fn with_window(mut self, window: Arc<WindowThrottle>) -> Self {
        self.window = window;
        self
    }

    /// Where this session's channels go, in proxy mode.
    pub(super) fn proxy_destination(&self) -> Option<ProxyDestination> {
        match &self.phase {
            Phase::Active(active) => active.proxy.clone(),
            Phase::Login(_) => None,
        }
    }

    /// A session channel in proxy mode: decide, then hand it to a proxy task.
    pub(super) async fn on_open_proxy(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        dest: ProxyDestination,
    ) {
        let Phase::Active(active) = &self.phase else {
            return drop(reply);
        };
        let identity = active.identity.clone();
        let snapshot = self.svc.control.snapshot();
        let port = snapshot.target(&dest.target).map_or(22, |t| t.address.port);
        let request = Request {
            user: identity.user.clone(),
            credential: identity.credential.clone(),
            protocol: Protocol::SshProxy,
            destination: Destination::Target(dest.target.clone()),
            port,
            login: Some(dest.login.clone()),
        };
        let allowed = match decide(&request, &snapshot, Timestamp::now()) {
            Decision::Allow(a) => Arc::new(a),
            Decision::Deny(denial) => {
                tracing::info!(to = %dest, reason = denial.code(), "proxy channel refused");
                let kind = EventKind::SshProxyLoginFailed {
                    user: identity.user.clone(),
                    target: dest.target.to_string(),
                    login: dest.login.to_string(),
                    reason: denial.code().to_owned(),
                };
                let refusal = ChannelRefusal::Denied {
                    destination: dest.to_string(),
                    denial,
                };
                reply.reject(refusal.open_failure()).await;
                self.journal(identity.user.as_str(), kind).await;
                return;
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
                target: dest.target.to_string(),
                port,
            },
        );
        if let Phase::Active(active) = &mut self.phase {
            active.idle_since = None;
            active.tunnels_opened += 1;
        }
        reply.accept().await;
        let span = tracing::info_span!("proxy", tunnel = id, to = %dest);
        let task = ProxyTask {
            id,
            svc: Arc::clone(&self.svc),
            session_id: self.id.clone(),
            peer: self.peer,
            handle: self.handle.clone(),
            channel,
            allowed,
            identity,
            dest,
            stop,
            reports: self.reports_tx.clone(),
            throttle: Arc::clone(&self.window),
        };
        let factory = self.svc.observer_factory();
        tokio::spawn(proxy::run(task, factory).instrument(span));
    }

    /// Requests on a proxied session channel are answered at once (the proxy task replays them
    /// on the target's channel; an answer that waited for the target would hold the connection
    /// loop the agent channel needs). Only X11 is refused.
    pub(super) fn on_proxy_request(request: ChannelRequest, reply: oneshot::Sender<bool>) {
        let ok = !matches!(request, ChannelRequest::X11);
        let _ = reply.send(ok);
    }
}
