//! A small async client for the sallyport extensions, used by `sallyport login`.
//!
//! ```no_run
//! # async fn f() -> Result<(), sallyport_agent::error::AgentError> {
//! use std::time::Duration;
//! use sallyport_agent::client::SallyportAgentClient;
//! let mut agent = SallyportAgentClient::connect(&sallyport_agent::default_socket_path()).await?;
//! let public = agent.generate_ed25519("alice@sallyport", Duration::from_secs(8 * 3600)).await?;
//! // ... have the gateway sign `public` into a certificate `cert`, then:
//! # let cert: russh::keys::ssh_key::Certificate = todo!();
//! agent.add_certificate(&cert).await?;
//! # Ok(()) }
//! ```

use std::path::Path;
use std::time::Duration;

use russh::keys::ssh_key::{Certificate, PublicKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::AgentError;
use crate::proto;

/// How long one request may take before the client gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a `sallyport-agent` (or any ssh-agent, for the standard requests).
#[derive(Debug)]
pub struct SallyportAgentClient {
    stream: UnixStream,
}

impl SallyportAgentClient {
    /// Connects to the agent socket at `path`.
    pub async fn connect(path: &Path) -> Result<Self, AgentError> {
        let stream = UnixStream::connect(path).await?;
        Ok(Self { stream })
    }

    /// Has the agent generate an ed25519 key that it holds for `lifetime` (1 s ..= 24 h, whole
    /// seconds, rounded up) and returns its public key (with `comment` set).
    pub async fn generate_ed25519(
        &mut self,
        comment: &str,
        lifetime: Duration,
    ) -> Result<PublicKey, AgentError> {
        let secs = lifetime
            .as_secs()
            .saturating_add(u64::from(lifetime.subsec_nanos() > 0));
        let secs = u32::try_from(secs)
            .ok()
            .filter(|s| (1..=proto::MAX_GENERATED_LIFETIME_SECS).contains(s))
            .ok_or(AgentError::Lifetime)?;
        let body = proto::encode_generate_ed25519(comment, secs)
            .map_err(|e| AgentError::Encode(e.to_string()))?;
        let reply = self.request(&body).await?;
        if reply.first() == Some(&proto::msg::FAILURE) {
            return Err(AgentError::Refused);
        }
        let blob = proto::parse_success_with_blob(&reply)
            .map_err(|_| AgentError::Protocol("expected SUCCESS with a public key"))?;
        let mut key = PublicKey::from_bytes(&blob)
            .map_err(|_| AgentError::Protocol("malformed public key"))?;
        key.set_comment(comment);
        Ok(key)
    }

    /// Attaches `cert` (for a key this agent generated and still holds).
    pub async fn add_certificate(&mut self, cert: &Certificate) -> Result<(), AgentError> {
        let body =
            proto::encode_add_certificate(cert).map_err(|e| AgentError::Encode(e.to_string()))?;
        match self.request(&body).await?.as_slice() {
            [proto::msg::SUCCESS] => Ok(()),
            [proto::msg::FAILURE] => Err(AgentError::Refused),
            _ => Err(AgentError::Protocol("expected SUCCESS or FAILURE")),
        }
    }

    /// Sends one message body and returns the reply body.
    pub async fn request(&mut self, body: &[u8]) -> Result<Vec<u8>, AgentError> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.request_inner(body))
            .await
            .map_err(|_| AgentError::Io(std::io::ErrorKind::TimedOut.into()))?
    }

    async fn request_inner(&mut self, body: &[u8]) -> Result<Vec<u8>, AgentError> {
        if body.len() > proto::MAX_MESSAGE_LEN {
            return Err(AgentError::Encode("request over 256 KiB".into()));
        }
        self.stream.write_all(&proto::frame(body)).await?;
        let len = self.stream.read_u32().await?;
        let len = proto::body_len(len).map_err(|_| AgentError::Protocol("reply length"))?;
        let mut reply = vec![0u8; len];
        self.stream.read_exact(&mut reply).await?;
        Ok(reply)
    }
}
