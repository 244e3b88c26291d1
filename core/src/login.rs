//! Challenge-response login for the API (`sallyport login`). Pure: keys, time and randomness
//! are arguments.
//!
//! ```text
//!  POST /v1/login/challenge {user}       ─▶ ChallengeKey::issue ─▶ "sallyport-login:v1:USER:EXP:NONCE:MAC"
//!  agent signs SSHSIG(namespace, sha512, challenge text) with a key registered to USER
//!  POST /v1/login {user, challenge, public_key, signature}
//!        ─▶ ChallengeKey::check (MAC, user, expiry) ─▶ verify_proof (SSHSIG by that key)
//!        ─▶ (gateway) key registered to the active user? nonce unused? ─▶ API token
//! ```
//!
//! The challenge is stateless: its MAC (HMAC-SHA256 under a key derived with HKDF-SHA256 from
//! the JWT signing key, label [`HKDF_INFO`]) binds the user name, the expiry and a random
//! nonce, so any gateway sharing the secrets accepts it. The gateway records each answered
//! nonce in the store until its expiry, so a challenge is single use across gateways.
//!
//! The signature is an OpenSSH SSHSIG (`ssh-keygen -Y sign` format, PEM armoured) with the
//! namespace [`NAMESPACE`] and hash `sha512` over the challenge text's bytes. The namespace keeps
//! a login signature from being valid anywhere else (git commits, files, SSH sessions).

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use russh::keys::ssh_key::{HashAlg, PublicKey, SshSig};
use sha2::Sha256;

use crate::model::UserName;
use crate::secret::Secret;
use crate::time::Timestamp;

/// The SSHSIG namespace of login signatures.
pub const NAMESPACE: &str = "sallyport-login@sallyport";
/// The hash the SSHSIG must use.
pub const HASH: HashAlg = HashAlg::Sha512;
/// How long a challenge may be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(60);
/// The HKDF label of the challenge MAC key (distinct from every other use of the JWT key).
pub const HKDF_INFO: &[u8] = b"sallyport login challenge mac v1";
/// Longest challenge text accepted for checking.
pub const MAX_CHALLENGE_LEN: usize = 256;
/// Longest PEM signature accepted for checking.
pub const MAX_SIGNATURE_LEN: usize = 16 * 1024;

const PREFIX: &str = "sallyport-login:v1";

/// Why a challenge or its answer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginProofError {
    /// The challenge text is not one this gateway wrote.
    #[error("the challenge is malformed")]
    Malformed,
    /// The challenge's MAC does not verify (forged, or from another deployment).
    #[error("the challenge was not issued by this gateway")]
    BadMac,
    /// The challenge was issued for another user.
    #[error("the challenge was issued for another user")]
    WrongUser,
    /// The challenge is too old.
    #[error("the challenge has expired; ask for a new one")]
    Expired,
    /// The signature is not an SSHSIG PEM block.
    #[error("the signature is not an SSH signature (-----BEGIN SSH SIGNATURE-----)")]
    SignatureFormat,
    /// The signature is by another key than the one named.
    #[error("the signature is by another key than public_key")]
    SignatureKey,
    /// Wrong namespace or hash.
    #[error("the signature must use namespace {NAMESPACE} and hash sha512")]
    SignatureParameters,
    /// The signature does not verify over the challenge.
    #[error("the signature does not verify over the challenge")]
    SignatureInvalid,
}

impl LoginProofError {
    /// A stable code for the audit journal.
    pub fn code(&self) -> &'static str {
        match self {
            LoginProofError::Malformed => "challenge-malformed",
            LoginProofError::BadMac => "challenge-forged",
            LoginProofError::WrongUser => "challenge-wrong-user",
            LoginProofError::Expired => "challenge-expired",
            LoginProofError::SignatureFormat => "signature-malformed",
            LoginProofError::SignatureKey => "signature-key-mismatch",
            LoginProofError::SignatureParameters => "signature-parameters",
            LoginProofError::SignatureInvalid => "signature-invalid",
        }
    }
}

/// The key that MACs challenges. `Debug` shows nothing of it.
pub struct ChallengeKey(Secret<[u8; 32]>);

impl fmt::Debug for ChallengeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChallengeKey(<secret>)")
    }
}

/// A challenge this gateway issued (or checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The text the client signs and sends back.
    pub text: String,
    /// The user it is for.
    pub user: UserName,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
    /// Its random part (base64url), the key of the used-challenge record.
    pub nonce: String,
}

impl ChallengeKey {
    /// Derives the MAC key from the JWT signing key.
    pub fn derive(jwt_key: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(None, jwt_key);
        let mut okm = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expand cannot fail.
        if hk.expand(HKDF_INFO, &mut okm).is_err() {
            okm = [0u8; 32];
        }
        let key = Self(Secret::new(okm));
        zeroize::Zeroize::zeroize(&mut okm);
        key
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail; fall back to an empty MAC
        // input that can never match rather than panic.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret())
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        m.update(body.as_bytes());
        m
    }

    /// A new challenge for `user`, valid for [`CHALLENGE_TTL`] from `now`.
    pub fn issue(&self, user: &UserName, now: Timestamp, nonce: [u8; 16]) -> Challenge {
        let expires_at = now.saturating_add(CHALLENGE_TTL);
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let body = format!("{PREFIX}:{user}:{}:{nonce}", expires_at.as_millis());
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&body).finalize().into_bytes());
        Challenge {
            text: format!("{body}:{tag}"),
            user: user.clone(),
            expires_at,
            nonce,
        }
    }

    /// Checks a challenge text sent back for `user` at `now`: written by this key, for this
    /// user, not expired.
    pub fn check(
        &self,
        text: &str,
        user: &UserName,
        now: Timestamp,
    ) -> Result<Challenge, LoginProofError> {
        if text.len() > MAX_CHALLENGE_LEN {
            return Err(LoginProofError::Malformed);
        }
        let (body, tag) = text.rsplit_once(':').ok_or(LoginProofError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| LoginProofError::Malformed)?;
        self.mac(body)
            .verify_slice(&tag)
            .map_err(|_| LoginProofError::BadMac)?;
        let rest = body
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or(LoginProofError::Malformed)?;
        let mut parts = rest.split(':');
        let (Some(name), Some(expires), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(LoginProofError::Malformed);
        };
        if name != user.as_str() {
            return Err(LoginProofError::WrongUser);
        }
        let expires_at = Timestamp::from_millis(
            expires
                .parse::<i64>()
                .map_err(|_| LoginProofError::Malformed)?,
        );
        if now >= expires_at {
            return Err(LoginProofError::Expired);
        }
        Ok(Challenge {
            text: text.to_owned(),
            user: user.clone(),
            expires_at,
            nonce: nonce.to_owned(),
        })
    }
}

/// The bytes an agent signs to answer `challenge` (the SSHSIG signed-data blob).
pub fn signed_data(challenge: &str) -> Result<Vec<u8>, russh::keys::ssh_key::Error> {
    SshSig::signed_data(NAMESPACE, HASH, challenge.as_bytes())
}

/// Checks that `signature_pem` is an SSHSIG by `key` over `challenge` in the login namespace.
pub fn verify_proof(
    challenge: &str,
    key: &PublicKey,
    signature_pem: &str,
) -> Result<(), LoginProofError> {
    if signature_pem.len() > MAX_SIGNATURE_LEN {
        return Err(LoginProofError::SignatureFormat);
    }
    let sig = SshSig::from_pem(signature_pem).map_err(|_| LoginProofError::SignatureFormat)?;
    if sig.public_key() != key.key_data() {
        return Err(LoginProofError::SignatureKey);
    }
    if sig.namespace() != NAMESPACE || sig.hash_alg() != HASH {
        return Err(LoginProofError::SignatureParameters);
    }
    key.verify(NAMESPACE, challenge.as_bytes(), &sig)
        .map_err(|_| LoginProofError::SignatureInvalid)
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;
