//! The onward SSH connection to the target: TCP through [`upstream::connect`] (which takes the
//! policy's `Allowed` token), the key exchange with the host key checked ([`hostkey`]), then the
//! login as the grant's remote login with one signature from the engineer's forwarded agent:
//!
//! ```text
//!  agent channel (auth-agent@openssh.com, opened back to the engineer's client)
//!    session-bind@openssh.com(target host key, session id, target's signature, forwarding=0)
//!    request identities ─▶ the one the engineer logged in to the gateway with
//!    sign (once) ─▶ userauth publickey to the target ─▶ close the agent channel
//! ```
//!
//! The binding is the one OpenSSH's own client sends before it authenticates (the hop that
//! signs is not a forwarding hop), so that a key loaded with `ssh-add -h 'gateway>target'`
//! signs for that target and for no other.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use russh::client::{self, AuthResult};
use russh::keys::agent::client::{AgentClient, AgentStream};
use russh::keys::agent::AgentIdentity;
use russh::keys::{Algorithm, HashAlg, PublicKey};
use russh::{compression, kex, mac, Preferred, SshId};
use sallyport_core::model::{Fingerprint, Login};
use sallyport_core::policy::Allowed;
use std::borrow::Cow;
use tokio::io::AsyncWriteExt;

use super::agent_sign::{find_identity, supports_host_bound, OneSignature, SignError};
use super::hostkey::{AgentForwarder, HostKeyPolicy, HostKeySeen, OnwardHandler};
use crate::ssh::algorithms;
use crate::ssh::auth::Identity;
use crate::ssh::upstream::{self, ConnectError};

/// Key exchange with the client's markers (the server's list names the server's).
const KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::EXTENSION_SUPPORT_AS_CLIENT,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
];

/// A logged-in connection to the target.
pub struct Onward {
    /// The russh client handle.
    pub handle: client::Handle<OnwardHandler>,
    /// The target's host key, as verified.
    pub host_key: PublicKey,
    /// The target's version string.
    pub server_id: String,
}

impl std::fmt::Debug for Onward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Onward")
            .field("host_key", &Fingerprint::of(&self.host_key))
            .finish_non_exhaustive()
    }
}

/// Why the onward connection failed. Each has a stable code (`ssh.proxy.login.failure`) and
/// a message for the engineer.
#[derive(Debug, thiserror::Error)]
pub enum OnwardError {
    /// TCP failed.
    #[error("cannot reach the target: {0}")]
    Unreachable(#[from] ConnectError),
    /// The SSH handshake failed or took too long.
    #[error("the SSH handshake with the target failed ({0})")]
    Handshake(String),
    /// The host key is not the pinned one, or none is pinned.
    #[error("{}", host_key_message(.expected.as_ref(), .presented))]
    HostKey {
        /// The pinned key.
        expected: Option<Fingerprint>,
        /// What the target showed.
        presented: Fingerprint,
    },
    /// No session-bind, no identities, no matching identity, or the agent would not sign.
    #[error("{0}")]
    Agent(String),
    /// The target refused the login.
    #[error("the target refused {0} with your key")]
    Refused(Login),
}

fn host_key_message(expected: Option<&Fingerprint>, presented: &Fingerprint) -> String {
    match expected {
        Some(e) => format!(
            "the target's host key {presented} is not the pinned key {e}: refusing to connect \
             (possible man-in-the-middle; an admin must re-pin the key if it really changed)"
        ),
        None => format!(
            "the target has no pinned host key (it shows {presented}); an admin must register \
             it before proxy mode connects"
        ),
    }
}

impl OnwardError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            OnwardError::Unreachable(_) => "target-unreachable",
            OnwardError::Handshake(_) => "target-handshake",
            OnwardError::HostKey {
                expected: Some(_), ..
            } => "host-key-mismatch",
            OnwardError::HostKey { expected: None, .. } => "host-key-not-pinned",
            OnwardError::Agent(_) => "agent-refused",
            OnwardError::Refused(_) => "target-refused-login",
        }
    }
}

fn config(keepalive: Duration) -> Arc<client::Config> {
    Arc::new(client::Config {
        client_id: SshId::Standard("SSH-2.0-sallyport".into()),
        preferred: Preferred {
            kex: Cow::Borrowed(KEX),
            key: Cow::Borrowed(algorithms::SIGNATURES),
            host_key_certificates: Cow::Borrowed(&[]),
            cipher: Cow::Borrowed(algorithms::ONWARD_CIPHERS),
            mac: Cow::Borrowed(&[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM]),
            compression: Cow::Borrowed(&[compression::NONE]),
        },
        inactivity_timeout: None,
        keepalive_interval: Some(keepalive),
        keepalive_max: 3,
        channel_buffer_size: 32,
        nodelay: true,
        ..client::Config::default()
    })
}

/// Connects to where `allowed` says and completes the key exchange with the host key checked
/// against `policy`, all within `timeout`.
pub async fn connect(
    allowed: &Allowed,
    policy: HostKeyPolicy,
    agent: Option<AgentForwarder>,
    timeout: Duration,
    keepalive: Duration,
) -> Result<Onward, OnwardError> {
    let (stream, _address) = upstream::connect(allowed, timeout).await?;
    let seen = Arc::new(Mutex::new(HostKeySeen::default()));
    let expected = policy.expected();
    let handler = OnwardHandler::new(policy, Arc::clone(&seen), agent);
    let result = tokio::time::timeout(
        timeout,
        client::connect_stream(config(keepalive), stream, handler),
    )
    .await;
    let seen = {
        let mut s = seen.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *s)
    };
    match (result, seen) {
        (
            Ok(Ok(handle)),
            HostKeySeen {
                presented: Some(host_key),
                accepted: true,
                server_id,
            },
        ) => Ok(Onward {
            handle,
            host_key,
            server_id,
        }),
        (
            _,
            HostKeySeen {
                presented: Some(key),
                accepted: false,
                ..
            },
        ) => Err(OnwardError::HostKey {
            expected,
            presented: Fingerprint::of(&key),
        }),
        (Ok(Ok(_)), _) => Err(OnwardError::Handshake("no host key was checked".into())),
        (Ok(Err(e)), _) => Err(OnwardError::Handshake(e.to_string())),
        (Err(_), _) => Err(OnwardError::Handshake(format!(
            "no answer within {}",
            humantime::format_duration(timeout)
        ))),
    }
}

/// The hash for an RSA signature (`rsa-sha2-512` or `-256`, never SHA-1).
async fn rsa_hash(handle: &client::Handle<OnwardHandler>, key: &AgentIdentity) -> Option<HashAlg> {
    let public = key.public_key();
    if !matches!(public.algorithm(), Algorithm::Rsa { .. }) {
        return None;
    }
    match handle.best_supported_rsa_hash().await {
        Ok(Some(Some(h))) => Some(h),
        _ => Some(HashAlg::Sha512),
    }
}

/// Logs in to the target as `login` with the identity the engineer logged in to the gateway
/// with, signing through `agent` (once). Closes the agent channel before returning.
pub async fn log_in<S>(
    onward: &mut Onward,
    agent: AgentClient<S>,
    identity: &Identity,
    login: &Login,
    timeout: Duration,
) -> Result<(), OnwardError>
where
    S: AgentStream + Send + Unpin + 'static,
{
    // OpenSSH 8.9+ targets get the host-bound request, which destination-constrained keys
    // need; older ones the plain `publickey` one.
    let host_key = supports_host_bound(&onward.server_id)
        .then(|| onward.host_key.to_bytes().ok())
        .flatten();
    let mut signer = OneSignature::new(agent, host_key);
    let result = tokio::time::timeout(timeout, sign_in(onward, &mut signer, identity, login))
        .await
        .unwrap_or_else(|_| {
            Err(OnwardError::Agent(
                "your forwarded agent did not answer in time".into(),
            ))
        });
    // Close the agent channel: EOF, then dropping the stream closes it.
    let mut stream = signer.into_agent().into_inner();
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    drop(stream);
    result
}

async fn sign_in<S>(
    onward: &mut Onward,
    signer: &mut OneSignature<S>,
    identity: &Identity,
    login: &Login,
) -> Result<(), OnwardError>
where
    S: AgentStream + Send + Unpin + 'static,
{
    let agent = signer.agent_mut();
    if let Some(binding) = onward.handle.agent_session_binding() {
        // An agent without session-bind (OpenSSH before 8.9) still signs with keys that carry
        // no destination constraint; one with it enforces them.
        if let Err(e) = agent.bind_session(binding, false).await {
            tracing::debug!(cause = %e, "the forwarded agent refused session-bind");
        }
    }
    let identities = agent.request_identities().await.map_err(|e| {
        OnwardError::Agent(format!("your forwarded agent did not list its keys ({e})"))
    })?;
    let what = if identity.certificate.is_some() {
        "certificate"
    } else {
        "key"
    };
    let chosen = find_identity(identities, identity).ok_or_else(|| {
        OnwardError::Agent(format!(
            "your forwarded agent does not hold the {what} you logged in with ({})",
            identity.fingerprint
        ))
    })?;
    let hash = rsa_hash(&onward.handle, &chosen).await;
    let result = match chosen {
        AgentIdentity::PublicKey { key, .. } => {
            onward
                .handle
                .authenticate_publickey_with(login.as_str(), key, hash, signer)
                .await
        }
        AgentIdentity::Certificate { certificate, .. } => {
            onward
                .handle
                .authenticate_certificate_with(login.as_str(), certificate, hash, signer)
                .await
        }
    };
    match result {
        Ok(AuthResult::Success) => Ok(()),
        Ok(AuthResult::Failure { .. }) => Err(OnwardError::Refused(login.clone())),
        Err(SignError::Agent(e)) => Err(OnwardError::Agent(format!(
            "your forwarded agent refused to sign for this target ({e}); a key restricted \
             with ssh-add -h must name it"
        ))),
        Err(e) => Err(OnwardError::Agent(e.to_string())),
    }
}
