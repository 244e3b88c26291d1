//! The onward connection's russh client handler: the target's host key must be the one pinned
//! in the target registry (or, only with `dangerous_trust_first_use_host_keys`, any key when
//! none is pinned). The target may open an agent channel back only when the grant allows agent
//! forwarding; it may open nothing else.

use std::sync::{Arc, Mutex, PoisonError};

use russh::client::{ChannelOpenHandle, Msg, Session};
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::Channel;
use sallyport_core::model::Fingerprint;

/// How the target's host key is checked.
#[derive(Debug, Clone)]
pub enum HostKeyPolicy {
    /// It must be this key.
    Pinned(PublicKey),
    /// No key is pinned and the configuration trusts whatever the target shows.
    TrustAny,
    /// No key is pinned: refuse.
    Refuse,
}

impl HostKeyPolicy {
    /// Whether `presented` passes.
    pub fn accepts(&self, presented: &PublicKey) -> bool {
        match self {
            HostKeyPolicy::Pinned(pinned) => pinned.key_data() == presented.key_data(),
            HostKeyPolicy::TrustAny => true,
            HostKeyPolicy::Refuse => false,
        }
    }

    /// The pinned key's fingerprint.
    pub fn expected(&self) -> Option<Fingerprint> {
        match self {
            HostKeyPolicy::Pinned(k) => Some(Fingerprint::of(k)),
            HostKeyPolicy::TrustAny | HostKeyPolicy::Refuse => None,
        }
    }
}

/// What the handler saw of the host key (read after the handshake).
#[derive(Debug, Default)]
pub struct HostKeySeen {
    /// The key the target presented.
    pub presented: Option<PublicKey>,
    /// Whether it passed.
    pub accepted: bool,
    /// The server's version string.
    pub server_id: String,
}

/// Opens an agent channel back to the engineer's client for the target (only when the grant
/// allows agent forwarding).
pub type AgentForwarder = Arc<dyn Fn(Channel<Msg>) + Send + Sync>;

/// The onward connection's handler.
pub struct OnwardHandler {
    policy: HostKeyPolicy,
    seen: Arc<Mutex<HostKeySeen>>,
    agent: Option<AgentForwarder>,
}

impl std::fmt::Debug for OnwardHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnwardHandler")
            .field("policy", &self.policy)
            .field("forwards_agent", &self.agent.is_some())
            .finish_non_exhaustive()
    }
}

impl OnwardHandler {
    /// A handler checking the host key against `policy`; what it saw goes to `seen`.
    pub fn new(
        policy: HostKeyPolicy,
        seen: Arc<Mutex<HostKeySeen>>,
        agent: Option<AgentForwarder>,
    ) -> Self {
        Self {
            policy,
            seen,
            agent,
        }
    }
}

impl russh::client::Handler for OnwardHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // A host certificate is judged by its key (host CAs are not supported yet).
            PublicKeyOrCertificate::Certificate(cert) => {
                PublicKey::new(cert.public_key().clone(), "")
            }
        };
        let accepted = self.policy.accepts(&presented);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.presented = Some(presented);
        seen.accepted = accepted;
        Ok(accepted)
    }

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        _names: &russh::Names,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let id: String = String::from_utf8_lossy(session.remote_sshid())
            .chars()
            .take(128)
            .collect();
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .server_id = id;
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        match &self.agent {
            Some(forward) => {
                reply.accept().await;
                forward(channel);
            }
            // Dropping the handle rejects the channel.
            None => drop(reply),
        }
        Ok(())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _connected_address: &str,
        _connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        drop(reply);
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        drop(reply);
        Ok(())
    }

    async fn server_channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        drop(reply);
        Ok(())
    }

    async fn server_channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        drop(reply);
        Ok(())
    }

    async fn server_channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        drop(reply);
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        drop(reply);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::ssh_key::private::Ed25519Keypair;
    use russh::keys::PrivateKey;

    fn key(seed: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
            .public_key()
            .clone()
    }

    #[test]
    fn only_the_pinned_key_passes() {
        let pinned = HostKeyPolicy::Pinned(key(1));
        assert!(pinned.accepts(&key(1)));
        assert!(!pinned.accepts(&key(2)));
        assert_eq!(pinned.expected(), Some(Fingerprint::of(&key(1))));
        assert!(!HostKeyPolicy::Refuse.accepts(&key(1)));
        assert!(HostKeyPolicy::TrustAny.accepts(&key(2)));
        assert_eq!(HostKeyPolicy::Refuse.expected(), None);
    }
}
