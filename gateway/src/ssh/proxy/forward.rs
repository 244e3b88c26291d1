//! The engineer's agent forwarded on to the target, only when the grant allows it
//! (`agent_forwarding`): each agent channel the target opens is joined to a new agent channel
//! to the engineer's client, after a `session-bind@openssh.com` for the gateway-to-target hop
//! with the forwarding flag set (what OpenSSH's client sends for a forwarded agent), so that
//! destination-restricted keys stay restricted further on.

use std::sync::{Arc, OnceLock};

use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentSessionBinding;
use russh::server;

use super::hostkey::AgentForwarder;

/// A forwarder through `handle`, and the slot for the onward connection's binding (set once
/// the key exchange is done).
pub fn forwarder(handle: server::Handle) -> (AgentForwarder, Arc<OnceLock<AgentSessionBinding>>) {
    let slot: Arc<OnceLock<AgentSessionBinding>> = Arc::new(OnceLock::new());
    let binding = Arc::clone(&slot);
    let forward: AgentForwarder = Arc::new(move |target_channel| {
        let handle = handle.clone();
        let binding = binding.get().cloned();
        tokio::spawn(async move {
            let Some(binding) = binding else {
                return;
            };
            let Ok(client_channel) = handle.channel_open_agent().await else {
                return;
            };
            let mut agent = AgentClient::connect(client_channel.into_stream());
            if let Err(e) = agent.bind_session(&binding, true).await {
                tracing::debug!(cause = %e, "the forwarded agent refused session-bind");
            }
            let mut to_client = agent.into_inner();
            let mut to_target = target_channel.into_stream();
            let _ = tokio::io::copy_bidirectional(&mut to_client, &mut to_target).await;
        });
    });
    (forward, slot)
}
