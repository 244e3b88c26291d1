//! Bodies of `sallyport login`'s endpoints: the challenge-response login and SSH certificates.

use serde::{Deserialize, Serialize};

use crate::model::{Fingerprint, GrantId, Role, UserName};
use crate::time::Timestamp;

/// Most key fingerprints a challenge request may ask about.
pub const MAX_KEY_HINTS: usize = 32;

/// `POST /v1/login/challenge`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginChallengeRequest {
    /// Who is logging in.
    pub user: UserName,
    /// Fingerprints of keys the client could sign with (at most 32); the reply says which of
    /// them are registered to the user, as SSH's own public-key query does, so the client asks
    /// its agent for one signature only.
    #[serde(default)]
    pub keys: Vec<Fingerprint>,
}

/// A login challenge.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginChallengeView {
    /// The text to sign (SSHSIG) and send back.
    pub challenge: String,
    /// The SSHSIG namespace to sign in.
    pub namespace: String,
    /// When the challenge stops being accepted.
    pub expires_at: Timestamp,
    /// Which of the asked-about keys are registered to the user (empty for an unknown or
    /// disabled user).
    pub accepted_keys: Vec<Fingerprint>,
}

/// `POST /v1/login`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Who is logging in.
    pub user: UserName,
    /// The challenge, as received.
    pub challenge: String,
    /// The signing key, one OpenSSH public key line; must be registered to the user.
    pub public_key: String,
    /// The SSHSIG over the challenge (`-----BEGIN SSH SIGNATURE-----` armour).
    pub signature: String,
}

/// A successful login.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginView {
    /// The user.
    pub user: UserName,
    /// Their roles.
    pub roles: Vec<Role>,
    /// The bearer token.
    pub token: String,
    /// Its id.
    pub token_id: String,
    /// When it expires.
    pub expires_at: Timestamp,
}

/// `POST /v1/ssh/certificate`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// The key to certify, one OpenSSH public key line (a fresh key from sallyport-agent).
    pub public_key: String,
}

/// An issued SSH user certificate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CertificateView {
    /// The certificate, one OpenSSH line (`ssh-ed25519-cert-v01@openssh.com AAAA…`).
    pub certificate: String,
    /// Its serial.
    pub serial: u64,
    /// Its key id.
    pub key_id: String,
    /// Its principals.
    pub principals: Vec<String>,
    /// Valid from.
    pub valid_after: Timestamp,
    /// Valid until.
    pub valid_before: Timestamp,
    /// Its extensions.
    pub extensions: Vec<String>,
    /// The grants its principals rest on.
    pub grants: Vec<GrantId>,
}

/// `GET /v1/ssh/user-ca`: what targets list in `TrustedUserCAKeys`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserCaView {
    /// The CA's public key, one OpenSSH line.
    pub public_key: String,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
}
