//! Signing through the engineer's forwarded agent: find exactly the identity they logged in to
//! the gateway with (their certificate, if they used one), and ask for exactly one signature.
//! Nothing is kept: the signature goes to the target and the agent channel is closed after.

use std::future::Future;

use russh::keys::agent::client::{AgentClient, AgentStream};
use russh::keys::agent::AgentIdentity;
use russh::keys::HashAlg;
use russh::Signer;
use sallyport_core::model::Fingerprint;

use crate::ssh::auth::Identity;

/// Why the agent did not sign.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The onward connection's event loop is gone.
    #[error("the connection to the target ended")]
    Send(#[from] russh::SendError),
    /// The agent refused, or the channel to it failed.
    #[error("your agent did not sign ({0})")]
    Agent(russh::keys::Error),
    /// The target asked for a second signature in one login.
    #[error("the target asked for a second signature")]
    Again,
    /// The request to sign was not the `publickey` request it should be.
    #[error("unexpected login request to sign")]
    Request,
}

/// Signs once through `agent`, then refuses. With the target's host key, the request signed
/// (and sent: russh sends what the signer returns) is OpenSSH's
/// `publickey-hostbound-v00@openssh.com`, which names the host key, so that an agent holding
/// destination-constrained keys can check the hop (it refuses a forwarded signature without
/// it).
pub struct OneSignature<S: AgentStream + Send + Unpin> {
    agent: AgentClient<S>,
    used: bool,
    host_key: Option<Vec<u8>>,
}

impl<S: AgentStream + Send + Unpin> std::fmt::Debug for OneSignature<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneSignature")
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

impl<S: AgentStream + Send + Unpin> OneSignature<S> {
    /// A signer that asks `agent` once.
    pub fn new(agent: AgentClient<S>, host_key: Option<Vec<u8>>) -> Self {
        Self {
            agent,
            used: false,
            host_key,
        }
    }

    /// Whether the signature was asked for.
    pub fn used(&self) -> bool {
        self.used
    }

    /// The agent connection, for the requests before the signature.
    pub fn agent_mut(&mut self) -> &mut AgentClient<S> {
        &mut self.agent
    }

    /// The agent connection back (to close it).
    pub fn into_agent(self) -> AgentClient<S> {
        self.agent
    }
}

impl<S: AgentStream + Send + Unpin> Signer for OneSignature<S> {
    type Error = SignError;

    fn auth_sign(
        &mut self,
        key: &AgentIdentity,
        hash_alg: Option<HashAlg>,
        to_sign: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        let first = !self.used;
        self.used = true;
        let key = key.clone();
        let data = match &self.host_key {
            Some(host_key) => host_bound(&to_sign, host_key).ok_or(SignError::Request),
            None => Ok(to_sign),
        };
        async move {
            if !first {
                return Err(SignError::Again);
            }
            self.agent
                .sign_request(&key, hash_alg, data?)
                .await
                .map_err(SignError::Agent)
        }
    }
}

/// The method that names the server's host key in the signed request (OpenSSH 8.9+).
pub const HOSTBOUND: &str = "publickey-hostbound-v00@openssh.com";

/// Rewrites russh's `publickey` request to sign (`string session_id, byte 50, string user,
/// string service, string "publickey", bool TRUE, string algorithm, string key`) into the
/// `publickey-hostbound-v00@openssh.com` one (the same, that method name, and `string host_key`
/// appended). `None` if it is not such a request.
pub fn host_bound(to_sign: &[u8], host_key: &[u8]) -> Option<Vec<u8>> {
    let mut r = to_sign;
    let session_id = take_string(&mut r)?;
    let (&kind, rest) = r.split_first()?;
    r = rest;
    let user = take_string(&mut r)?;
    let service = take_string(&mut r)?;
    let method = take_string(&mut r)?;
    let (&has_signature, rest) = r.split_first()?;
    r = rest;
    let algorithm = take_string(&mut r)?;
    let key = take_string(&mut r)?;
    if kind != 50 || method != b"publickey" || has_signature != 1 || !r.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(to_sign.len() + HOSTBOUND.len() + host_key.len() + 8);
    put_string(&mut out, session_id);
    out.push(kind);
    put_string(&mut out, user);
    put_string(&mut out, service);
    put_string(&mut out, HOSTBOUND.as_bytes());
    out.push(1);
    put_string(&mut out, algorithm);
    put_string(&mut out, key);
    put_string(&mut out, host_key);
    Some(out)
}

fn take_string<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = r.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    let (s, rest) = (rest.get(..len)?, rest.get(len..)?);
    *r = rest;
    Some(s)
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(s);
}

/// Whether a server's version string is OpenSSH 8.9 or later (which accepts
/// [`HOSTBOUND`]).
pub fn supports_host_bound(server_id: &str) -> bool {
    let Some(version) = server_id.strip_prefix("SSH-2.0-OpenSSH_") else {
        return false;
    };
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (8, 9)
}

/// The agent identity the engineer logged in to the gateway with: the plain key for a key
/// login; for a certificate login, the certificate with the same subject key, serial and key
/// id.
pub fn find_identity(identities: Vec<AgentIdentity>, login: &Identity) -> Option<AgentIdentity> {
    identities.into_iter().find(|candidate| {
        let same_key = Fingerprint::of(&candidate.public_key()) == login.fingerprint;
        match (candidate, &login.certificate) {
            (AgentIdentity::PublicKey { .. }, None) => same_key,
            (AgentIdentity::Certificate { certificate, .. }, Some(info)) => {
                same_key
                    && certificate.serial() == info.serial
                    && certificate.valid_before() == info.valid_before
                    && certificate
                        .key_id()
                        .chars()
                        .take(128)
                        .eq(info.key_id.chars())
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::ssh_key::private::Ed25519Keypair;
    use russh::keys::PrivateKey;
    use sallyport_core::policy::Credential;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    #[test]
    fn the_publickey_request_becomes_host_bound() {
        let mut req = Vec::new();
        put_string(&mut req, b"SID");
        req.push(50);
        for s in [&b"root"[..], b"ssh-connection", b"publickey"] {
            put_string(&mut req, s);
        }
        req.push(1);
        put_string(&mut req, b"ssh-ed25519");
        put_string(&mut req, b"KEYBLOB");
        let out = host_bound(&req, b"HOSTKEY").unwrap();
        let mut r = &out[..];
        assert_eq!(take_string(&mut r).unwrap(), b"SID");
        assert_eq!(r[0], 50);
        r = &r[1..];
        assert_eq!(take_string(&mut r).unwrap(), b"root");
        assert_eq!(take_string(&mut r).unwrap(), b"ssh-connection");
        assert_eq!(take_string(&mut r).unwrap(), HOSTBOUND.as_bytes());
        assert_eq!(r[0], 1);
        r = &r[1..];
        assert_eq!(take_string(&mut r).unwrap(), b"ssh-ed25519");
        assert_eq!(take_string(&mut r).unwrap(), b"KEYBLOB");
        assert_eq!(take_string(&mut r).unwrap(), b"HOSTKEY");
        assert!(r.is_empty());
        // Anything else is refused.
        assert!(host_bound(&req[..req.len() - 1], b"HOSTKEY").is_none());
        assert!(host_bound(b"", b"HOSTKEY").is_none());
    }

    #[test]
    fn host_bound_needs_openssh_8_9() {
        assert!(supports_host_bound(
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"
        ));
        assert!(supports_host_bound("SSH-2.0-OpenSSH_8.9"));
        assert!(supports_host_bound("SSH-2.0-OpenSSH_10.0"));
        assert!(!supports_host_bound("SSH-2.0-OpenSSH_8.8p1"));
        assert!(!supports_host_bound("SSH-2.0-dropbear_2022.83"));
        assert!(!supports_host_bound("SSH-2.0-sallyport"));
    }

    #[test]
    fn finds_the_key_logged_in_with_and_nothing_else() {
        let mine = key(1);
        let other = key(2);
        let fp = Fingerprint::of(mine.public_key());
        let login = Identity {
            user: "alice".parse().unwrap(),
            credential: Credential::Key(fp.clone()),
            fingerprint: fp,
            certificate: None,
        };
        let ids = vec![
            AgentIdentity::from(other.public_key().clone()),
            AgentIdentity::from(mine.public_key().clone()),
        ];
        let found = find_identity(ids, &login).unwrap();
        assert_eq!(found.public_key().key_data(), mine.public_key().key_data());
        let ids = vec![AgentIdentity::from(other.public_key().clone())];
        assert!(find_identity(ids, &login).is_none());
    }
}
