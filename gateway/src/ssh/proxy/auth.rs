//! Proxy-mode logins. The SSH user name names the destination (`login@target`), not the
//! sallyport user, so the user is the one the credential belongs to:
//!
//! - a **public key**: the user it is registered to (fingerprints are unique), then the same
//!   checks as jump mode ([`auth::check_key`]);
//! - an **OpenSSH user certificate** from the gateway's user CA: the user its key id names
//!   (`sallyport:USER:SESSION`, as `sallyport login` issues them; otherwise the key id's start,
//!   up to the first space, `@`, `:`, `/` or `;`). Both that user and the remote login must be
//!   among its principals (the same certificate then logs in to the target as that login);
//!   otherwise the same checks as jump mode ([`auth::check_certificate_for`]).

use std::net::IpAddr;

use russh::keys::{Algorithm, Certificate, PublicKey};
use sallyport_core::model::{Fingerprint, UserName};
use sallyport_core::policy::Snapshot;

use super::username::ProxyDestination;
use crate::ssh::algorithms::user_signature_allowed;
use crate::ssh::auth::{self, AuthRefusal, Identity};
use crate::ssh::events::AuthAttempt;

/// Before the signature: only the algorithm can be checked (russh does not say whether the
/// key comes inside a certificate).
pub fn check_offer(algorithm: &Algorithm) -> Result<(), AuthRefusal> {
    if user_signature_allowed(algorithm) {
        Ok(())
    } else {
        Err(AuthRefusal::Algorithm(algorithm.as_str().to_owned()))
    }
}

/// A verified public-key login: the key's owner.
pub fn check_key(
    snapshot: &Snapshot,
    key: &PublicKey,
    algorithm: &Algorithm,
) -> Result<Identity, AuthRefusal> {
    let owner = snapshot
        .key_owner(&Fingerprint::of(key))
        .cloned()
        .ok_or(AuthRefusal::KeyNotRegistered)?;
    auth::check_key(snapshot, &owner, key, algorithm)
}

/// A verified certificate login for `dest`.
pub fn check_certificate(
    snapshot: &Snapshot,
    dest: &ProxyDestination,
    cert: &Certificate,
    ca: &PublicKey,
    source: IpAddr,
    now_unix: u64,
) -> Result<Identity, AuthRefusal> {
    let owner = certificate_owner(cert.key_id()).ok_or(AuthRefusal::UnknownUser)?;
    if !cert.valid_principals().iter().any(|p| p == owner.as_str()) {
        return Err(AuthRefusal::CertificatePrincipal);
    }
    auth::check_certificate_for(
        snapshot,
        &owner,
        dest.login.as_str(),
        cert,
        ca,
        source,
        now_unix,
    )
}

/// One proxy-mode login attempt, as [`crate::ssh::session`] checks a jump-mode one: `None`
/// for an offered key that may go on to sign, the identity for a verified credential.
pub(crate) fn check_attempt(
    snapshot: &Snapshot,
    dest: &ProxyDestination,
    attempt: AuthAttempt,
    ca: &PublicKey,
    source: IpAddr,
    now_unix: u64,
) -> Result<Option<Identity>, AuthRefusal> {
    match attempt {
        AuthAttempt::None | AuthAttempt::Password | AuthAttempt::KeyboardInteractive => {
            Err(AuthRefusal::Method)
        }
        AuthAttempt::KeyOffered { algorithm, .. } => check_offer(&algorithm).map(|()| None),
        AuthAttempt::Key { key, algorithm } => check_key(snapshot, &key, &algorithm).map(Some),
        AuthAttempt::Certificate(cert) => {
            check_certificate(snapshot, dest, &cert, ca, source, now_unix).map(Some)
        }
    }
}

/// The user a certificate's key id names.
pub fn certificate_owner(key_id: &str) -> Option<UserName> {
    let prefix = format!("{}:", sallyport_core::ssh_ca::KEY_ID_PREFIX);
    key_id
        .strip_prefix(&prefix)
        .unwrap_or(key_id)
        .split([' ', '@', ':', '/', ';'])
        .next()
        .and_then(|name| name.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_from_key_id() {
        assert_eq!(certificate_owner("alice@test").unwrap().as_str(), "alice");
        assert_eq!(
            certificate_owner("alice login 2026-11-28")
                .unwrap()
                .as_str(),
            "alice"
        );
        assert_eq!(certificate_owner("bob:abc").unwrap().as_str(), "bob");
        assert_eq!(
            certificate_owner("sallyport:carol:6f1c0a8e-0d55-4a43-9a6e-2b8c1d7f4e21")
                .unwrap()
                .as_str(),
            "carol"
        );
        assert!(certificate_owner("").is_none());
        assert!(certificate_owner("Not A User").is_none());
    }

    #[test]
    fn offers_follow_the_algorithm_list() {
        assert!(check_offer(&Algorithm::Ed25519).is_ok());
        assert!(check_offer(&Algorithm::Rsa { hash: None }).is_err());
    }
}
