//! Who is logging in: credential checks against the policy snapshot. Pure (the time and the
//! client's address are arguments).
//!
//! - A **public key** must be registered to the user named in the login (the SSH user name is
//!   the sallyport user name), and the user must be active.
//! - An **OpenSSH user certificate** must be signed by the gateway's user CA, be a user
//!   certificate, be inside its validity window, list the user name among its principals (an
//!   empty list, which OpenSSH reads as "anyone", is refused), and carry only critical options
//!   this gateway enforces:
//!   - `source-address`: the client's address must be inside one of the listed CIDRs;
//!   - `force-command`: refused. Jump mode runs no command, so it cannot honour a certificate
//!     that restricts its holder to one; failing closed is the only faithful reading;
//!   - anything else (`verify-required`, unknown options): refused.
//!
//!   The extension `permit-port-forwarding` is required to open tunnels, as `sshd` requires it
//!   for forwarding (the session's channels are refused without it; login still succeeds).
//!
//! Russh has already verified the signature over the session and, for a certificate, the
//! certificate's own signature and its window against the system clock (such a refusal never
//! reaches this module; the session records it when the connection ends).

use std::net::IpAddr;

use ipnet::IpNet;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Algorithm, Certificate, PublicKey};
use sallyport_core::model::{Fingerprint, SshPublicKey, UserName};
use sallyport_core::policy::{Credential, Denial, Snapshot};

use super::algorithms::user_signature_allowed;

/// The certificate extension that allows port forwarding (tunnels).
pub const PERMIT_PORT_FORWARDING: &str = "permit-port-forwarding";

/// Why a login was refused. Each has a stable code for `ssh.auth.failure`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthRefusal {
    /// The user name is not a valid sallyport user name.
    #[error("not a valid user name")]
    InvalidUserName,
    /// No such user.
    #[error("unknown user")]
    UnknownUser,
    /// The user is disabled.
    #[error("user is disabled")]
    UserDisabled,
    /// The key is not registered to the user.
    #[error("key is not registered to the user")]
    KeyNotRegistered,
    /// The signature algorithm is not allowed (e.g. `ssh-rsa`, SHA-1).
    #[error("signature algorithm {0} is not allowed")]
    Algorithm(String),
    /// The key itself is not allowed (DSA, short RSA).
    #[error("key not allowed: {0}")]
    KeyNotAllowed(String),
    /// The certificate is not signed by the gateway's user CA.
    #[error("certificate is not signed by the gateway's user CA")]
    CertificateAuthority,
    /// A host certificate was offered as a user certificate.
    #[error("not a user certificate")]
    CertificateType,
    /// Outside the certificate's validity window.
    #[error("certificate is expired or not yet valid")]
    CertificateExpired,
    /// The user name is not among the certificate's principals (or the list is empty).
    #[error("user is not a principal of the certificate")]
    CertificatePrincipal,
    /// The client's address is outside the certificate's `source-address`.
    #[error("source address not allowed by the certificate")]
    CertificateSourceAddress,
    /// The certificate carries a critical option this gateway does not enforce.
    #[error("certificate critical option {0:?} is not supported")]
    CertificateOption(String),
    /// Too many failures from this source or for this user name.
    #[error("too many failed attempts")]
    RateLimited,
    /// The user has as many sessions as allowed.
    #[error("too many sessions for this user")]
    SessionLimit,
    /// A method other than public key (password, keyboard-interactive).
    #[error("only public-key authentication is accepted")]
    Method,
    /// The connection ended without any credential being accepted (e.g. a certificate russh
    /// refused before it reached this module).
    #[error("no credential was accepted")]
    NoCredential,
    /// The login could not be journaled, so it is refused (audit first).
    #[error("the audit journal is unavailable")]
    AuditUnavailable,
}

impl AuthRefusal {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthRefusal::InvalidUserName => "invalid-user-name",
            AuthRefusal::UnknownUser => "unknown-user",
            AuthRefusal::UserDisabled => "user-disabled",
            AuthRefusal::KeyNotRegistered => "key-not-registered",
            AuthRefusal::Algorithm(_) => "algorithm-not-allowed",
            AuthRefusal::KeyNotAllowed(_) => "key-not-allowed",
            AuthRefusal::CertificateAuthority => "certificate-untrusted-ca",
            AuthRefusal::CertificateType => "certificate-not-user",
            AuthRefusal::CertificateExpired => "certificate-expired",
            AuthRefusal::CertificatePrincipal => "certificate-principal",
            AuthRefusal::CertificateSourceAddress => "certificate-source-address",
            AuthRefusal::CertificateOption(_) => "certificate-critical-option",
            AuthRefusal::RateLimited => "rate-limited",
            AuthRefusal::SessionLimit => "session-limit",
            AuthRefusal::Method => "method-not-allowed",
            AuthRefusal::NoCredential => "no-credential-accepted",
            AuthRefusal::AuditUnavailable => "audit-unavailable",
        }
    }
}

impl From<Denial> for AuthRefusal {
    fn from(d: Denial) -> Self {
        match d {
            Denial::UnknownUser => AuthRefusal::UnknownUser,
            Denial::UserDisabled => AuthRefusal::UserDisabled,
            Denial::KeyNotRegistered => AuthRefusal::KeyNotRegistered,
            // Not reachable from the login checks; refuse as the closest thing.
            _ => AuthRefusal::KeyNotRegistered,
        }
    }
}

/// What a certificate login carries beyond the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Serial.
    pub serial: u64,
    /// Key id (names the user and login session when the gateway issued it).
    pub key_id: String,
    /// End of the validity window (Unix seconds); the session ends then.
    pub valid_before: u64,
    /// Whether `permit-port-forwarding` is present. It governs forwarding on the targets that
    /// trust the CA; the gateway's own jump tunnels are governed by grants alone.
    pub permits_forwarding: bool,
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user: UserName,
    /// What the policy re-checks on every change.
    pub credential: Credential,
    /// The key that signed (a certificate's subject key).
    pub fingerprint: Fingerprint,
    /// For a certificate login.
    pub certificate: Option<CertificateInfo>,
}

impl Identity {
    /// `publickey` or `certificate`.
    pub fn method(&self) -> &'static str {
        match self.certificate {
            Some(_) => "certificate",
            None => "publickey",
        }
    }
}

/// The login's user name, parsed.
pub fn parse_user(name: &str) -> Result<UserName, AuthRefusal> {
    name.parse().map_err(|_| AuthRefusal::InvalidUserName)
}

/// The cheap checks before a signature is asked for: the algorithm, and the user known and
/// active. (Whether the key is registered is checked after the signature, since russh does not
/// say at this stage whether the key comes inside a certificate.)
pub fn check_offer(
    snapshot: &Snapshot,
    user: &UserName,
    algorithm: &Algorithm,
) -> Result<(), AuthRefusal> {
    if !user_signature_allowed(algorithm) {
        return Err(AuthRefusal::Algorithm(algorithm.as_str().to_owned()));
    }
    Ok(snapshot.check_user(user)?)
}

/// A verified public-key login.
pub fn check_key(
    snapshot: &Snapshot,
    user: &UserName,
    key: &PublicKey,
    algorithm: &Algorithm,
) -> Result<Identity, AuthRefusal> {
    if !user_signature_allowed(algorithm) {
        return Err(AuthRefusal::Algorithm(algorithm.as_str().to_owned()));
    }
    let key = SshPublicKey::from_key(key.clone())
        .map_err(|e| AuthRefusal::KeyNotAllowed(e.to_string()))?;
    let credential = Credential::Key(key.fingerprint().clone());
    snapshot.authenticate(user, &credential)?;
    Ok(Identity {
        user: user.clone(),
        credential,
        fingerprint: key.fingerprint().clone(),
        certificate: None,
    })
}

/// A verified certificate login, checked against the user CA at `now_unix` (seconds) from
/// `source`.
pub fn check_certificate(
    snapshot: &Snapshot,
    user: &UserName,
    cert: &Certificate,
    ca: &PublicKey,
    source: IpAddr,
    now_unix: u64,
) -> Result<Identity, AuthRefusal> {
    check_certificate_for(snapshot, user, user.as_str(), cert, ca, source, now_unix)
}

/// [`check_certificate`] for `user`, with `principal` the name that must be among the
/// certificate's principals (jump mode: the user name; proxy mode: the remote login).
pub fn check_certificate_for(
    snapshot: &Snapshot,
    user: &UserName,
    principal: &str,
    cert: &Certificate,
    ca: &PublicKey,
    source: IpAddr,
    now_unix: u64,
) -> Result<Identity, AuthRefusal> {
    if cert.signature_key() != ca.key_data() || cert.verify_signature().is_err() {
        return Err(AuthRefusal::CertificateAuthority);
    }
    if cert.cert_type() != CertType::User {
        return Err(AuthRefusal::CertificateType);
    }
    if !(cert.valid_after() <= now_unix && now_unix < cert.valid_before()) {
        return Err(AuthRefusal::CertificateExpired);
    }
    if !cert.valid_principals().iter().any(|p| p == principal) {
        return Err(AuthRefusal::CertificatePrincipal);
    }
    for (name, value) in cert.critical_options().iter() {
        match name.as_str() {
            "source-address" => {
                if !source_allowed(value, source) {
                    return Err(AuthRefusal::CertificateSourceAddress);
                }
            }
            other => {
                return Err(AuthRefusal::CertificateOption(
                    other.chars().take(64).collect(),
                ))
            }
        }
    }
    let subject = SshPublicKey::from_key(PublicKey::new(cert.public_key().clone(), ""))
        .map_err(|e| AuthRefusal::KeyNotAllowed(e.to_string()))?;
    let credential = Credential::Certificate {
        serial: cert.serial(),
    };
    snapshot.authenticate(user, &credential)?;
    Ok(Identity {
        user: user.clone(),
        credential,
        fingerprint: subject.fingerprint().clone(),
        certificate: Some(CertificateInfo {
            serial: cert.serial(),
            key_id: cert.key_id().chars().take(128).collect(),
            valid_before: cert.valid_before(),
            permits_forwarding: cert.extensions().contains_key(PERMIT_PORT_FORWARDING),
        }),
    })
}

/// `source-address`: a comma-separated list of addresses and CIDRs. Anything unparsable
/// refuses the login.
fn source_allowed(list: &str, source: IpAddr) -> bool {
    let source = source.to_canonical();
    let mut any = false;
    for item in list.split(',').map(str::trim) {
        let net = match item.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => match item.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => return false,
            },
        };
        any |= net.contains(&source);
    }
    any
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
