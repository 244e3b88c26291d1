//! Signs a [`CertificatePlan`] into an OpenSSH user certificate.

use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::{Certificate, PrivateKey, PublicKey};

use super::CertificatePlan;

/// Why a certificate could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// A field was refused by the certificate encoder, or the signature failed.
    #[error("cannot build the certificate: {0}")]
    Build(#[from] russh::keys::ssh_key::Error),
    /// The subject key is not one a certificate may be issued for.
    #[error("the key to certify is not allowed: {0}")]
    Subject(&'static str),
}

/// Signs `plan` for `subject` with the CA key `ca`. `serial` and `nonce` come from the caller's
/// CSPRNG.
pub fn sign(
    plan: &CertificatePlan,
    subject: &PublicKey,
    ca: &PrivateKey,
    serial: u64,
    nonce: [u8; 32],
) -> Result<Certificate, SignError> {
    if subject.key_data() == ca.public_key().key_data() {
        return Err(SignError::Subject("it is the CA key itself"));
    }
    if plan.principals.is_empty() {
        return Err(SignError::Subject("no principals"));
    }
    let mut b = Builder::new(
        nonce.to_vec(),
        subject.key_data().clone(),
        plan.valid_after,
        plan.valid_before,
    )?;
    b.serial(serial)?;
    b.cert_type(CertType::User)?;
    b.key_id(plan.key_id.clone())?;
    for p in &plan.principals {
        b.valid_principal(p.clone())?;
    }
    for e in plan.extensions() {
        b.extension(e, "")?;
    }
    Ok(b.sign(ca)?)
}
