//! Everything up to a started session on the target: the client's requests, the onward
//! connection and login through the forwarded agent, the target's channel with the requests
//! replayed. Any failure is a [`Refusal`] the engineer reads.

use std::sync::Arc;

use russh::keys::agent::client::AgentClient;
use russh::server;
use russh::{Channel, ChannelReadHalf};
use sallyport_core::audit::EventKind;
use sallyport_core::policy::Allowed;

use super::hostkey::HostKeyPolicy;
use super::onward::{self, Onward, OnwardError};
use super::relay::Observers;
use super::setup::{Setup, Start};
use super::username::ProxyDestination;
use super::{forward, Refusal, LOGIN_TIMEOUT, NO_AGENT};
use crate::ssh::auth::Identity;
use crate::ssh::service::SshService;

/// The host-key rule for the target.
fn host_key_policy(svc: &SshService, dest: &ProxyDestination) -> HostKeyPolicy {
    let snapshot = svc.control.snapshot();
    match snapshot
        .target(&dest.target)
        .and_then(|t| t.host_key.as_ref())
    {
        Some(key) => HostKeyPolicy::Pinned(key.key().clone()),
        None if svc.settings.dangerous_trust_first_use_host_keys => HostKeyPolicy::TrustAny,
        None => HostKeyPolicy::Refuse,
    }
}

/// Everything up to a started session on the target: the client's requests, the onward
/// connection and login, the target's channel with the requests replayed.
pub(super) async fn reach(
    svc: &Arc<SshService>,
    handle: &server::Handle,
    allowed: &Arc<Allowed>,
    identity: &Identity,
    dest: &ProxyDestination,
    read: &mut ChannelReadHalf,
    observers: &Observers,
) -> Result<(Onward, Setup, Channel<russh::client::Msg>), Refusal> {
    let settings = &svc.settings;
    let forward_agent = allowed.options().agent_forwarding;
    let forwarder = forward_agent.then(|| forward::forwarder(handle.clone()));
    let binding_slot = forwarder.as_ref().map(|(_, slot)| Arc::clone(slot));
    // The key exchange runs while the client sends its requests.
    let connecting = {
        let allowed = Arc::clone(allowed);
        let policy = host_key_policy(svc, dest);
        let agent = forwarder.map(|(f, _)| f);
        let timeout = settings.connect_timeout;
        let keepalive = settings.keepalive_interval;
        tokio::spawn(
            async move { onward::connect(&allowed, policy, agent, timeout, keepalive).await },
        )
    };
    let aborter = connecting.abort_handle();
    let _abort = scopeguard(move || aborter.abort());

    let mut setup = Setup::collect(read, &settings.proxy_env, observers)
        .await
        .map_err(Refusal::interrupted)?;
    if !setup.agent {
        return Err(Refusal::told("agent-not-forwarded", NO_AGENT.to_owned()));
    }
    let connected = setup
        .while_reading(read, &settings.proxy_env, observers, connecting)
        .await
        .map_err(Refusal::interrupted)?;
    let mut onward = match connected {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Err(onward_refusal(identity, dest, e)),
        Err(_) => {
            return Err(Refusal::told(
                "target-handshake",
                "the connection to the target failed".into(),
            ))
        }
    };
    if let (Some(slot), Some(binding)) = (&binding_slot, onward.handle.agent_session_binding()) {
        let _ = slot.set(binding.clone());
    }
    let agent_channel = setup
        .while_reading(
            read,
            &settings.proxy_env,
            observers,
            handle.channel_open_agent(),
        )
        .await
        .map_err(Refusal::interrupted)?
        .map_err(|e| {
            Refusal::told(
                "agent-not-forwarded",
                format!("{NO_AGENT} (the agent channel could not be opened: {e})"),
            )
        })?;
    let agent = AgentClient::connect(agent_channel.into_stream());
    let login = onward::log_in(
        &mut onward,
        agent,
        identity,
        &dest.login,
        settings.connect_timeout.max(LOGIN_TIMEOUT),
    );
    setup
        .while_reading(read, &settings.proxy_env, observers, login)
        .await
        .map_err(Refusal::interrupted)?
        .map_err(|e| Refusal::told(e.code(), e.to_string()))?;

    let replay = Setup {
        agent: setup.agent,
        pty: setup.pty.clone(),
        env: setup.env.clone(),
        start: setup.start.clone(),
        ..Setup::default()
    };
    let started = start_target(&onward, &replay, forward_agent);
    let target = setup
        .while_reading(read, &settings.proxy_env, observers, started)
        .await
        .map_err(Refusal::interrupted)??;
    Ok((onward, setup, target))
}

/// The refusal for an onward failure (with `ssh.hostkey.mismatch` for a host key).
fn onward_refusal(identity: &Identity, dest: &ProxyDestination, e: OnwardError) -> Refusal {
    let mut refusal = Refusal::told(e.code(), e.to_string());
    if let OnwardError::HostKey {
        expected,
        presented,
    } = e
    {
        tracing::warn!(target = %dest.target, %presented, "target host key refused");
        refusal.event = Some(EventKind::SshHostKeyMismatch {
            user: identity.user.clone(),
            target: dest.target.clone(),
            expected,
            presented,
        });
    }
    refusal
}

/// Opens the target's session channel and replays the client's requests; the start request
/// waits for the target's answer.
async fn start_target(
    onward: &Onward,
    setup: &Setup,
    forward_agent: bool,
) -> Result<Channel<russh::client::Msg>, Refusal> {
    let failed = |e: russh::Error| {
        Refusal::told(
            "target-channel",
            format!("the target refused a session channel ({e})"),
        )
    };
    let mut channel = onward.handle.channel_open_session().await.map_err(failed)?;
    if forward_agent && setup.agent {
        channel.agent_forward(false).await.map_err(failed)?;
    }
    if let Some(pty) = &setup.pty {
        channel
            .request_pty(
                false,
                &pty.term,
                pty.cols,
                pty.rows,
                pty.pix_width,
                pty.pix_height,
                &pty.modes,
            )
            .await
            .map_err(failed)?;
    }
    for (name, value) in &setup.env {
        channel
            .set_env(false, name.as_str(), value.as_str())
            .await
            .map_err(failed)?;
    }
    let start = setup.start.clone().unwrap_or(Start::Shell);
    match &start {
        Start::Shell => channel.request_shell(true).await,
        Start::Exec(command) => channel.exec(true, command.clone()).await,
        Start::Subsystem(name) => channel.request_subsystem(true, name.as_str()).await,
    }
    .map_err(failed)?;
    loop {
        match channel.wait().await {
            Some(russh::ChannelMsg::Success) => return Ok(channel),
            Some(russh::ChannelMsg::Failure) => {
                return Err(Refusal::told(
                    "target-refused-start",
                    format!("the target refused the {}", start.what()),
                ))
            }
            Some(russh::ChannelMsg::Close) | None => {
                return Err(Refusal::told(
                    "target-refused-start",
                    format!(
                        "the target closed the channel before the {} started",
                        start.what()
                    ),
                ))
            }
            Some(_) => {}
        }
    }
}

/// Runs `f` on drop.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
