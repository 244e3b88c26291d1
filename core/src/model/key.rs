use std::fmt;

use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Algorithm, HashAlg, PublicKey};
use serde::{Deserialize, Serialize};

use super::error::ModelError;

/// The SHA-256 fingerprint of an SSH public key, as OpenSSH prints it (`SHA256:…`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The fingerprint of a parsed key.
    pub fn of(key: &PublicKey) -> Self {
        Self(key.fingerprint(HashAlg::Sha256).to_string())
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = ModelError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        let body = s
            .strip_prefix("SHA256:")
            .ok_or_else(|| ModelError::InvalidKey("fingerprint must start with SHA256:".into()))?;
        let ok = body.len() == 43
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
        if ok {
            Ok(Self(s))
        } else {
            Err(ModelError::InvalidKey(
                "fingerprint is not 43 base64 characters after SHA256:".into(),
            ))
        }
    }
}

impl From<Fingerprint> for String {
    fn from(f: Fingerprint) -> String {
        f.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An SSH public key in OpenSSH format, of an allowed algorithm and size.
///
/// Allowed: ed25519, ECDSA (P-256, P-384, P-521), RSA of at least 2048 bits, and the FIDO
/// (`sk-`) forms of ed25519 and ECDSA. DSA and certificates are refused here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshPublicKey {
    key: PublicKey,
    fingerprint: Fingerprint,
}

impl SshPublicKey {
    /// Parses one `algorithm base64 [comment]` line.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ModelError::InvalidKey("empty".into()));
        }
        if text.contains('\n') {
            return Err(ModelError::InvalidKey(
                "expected one key on one line".into(),
            ));
        }
        if text.contains("PRIVATE KEY") {
            return Err(ModelError::InvalidKey(
                "this is a private key; give the public key (the .pub file)".into(),
            ));
        }
        let key = PublicKey::from_openssh(text)
            .map_err(|e| ModelError::InvalidKey(format!("not an OpenSSH public key ({e})")))?;
        check_allowed(&key)?;
        let fingerprint = Fingerprint::of(&key);
        Ok(Self { key, fingerprint })
    }

    /// Wraps an already parsed key, checking the same rules.
    pub fn from_key(key: PublicKey) -> Result<Self, ModelError> {
        check_allowed(&key)?;
        let fingerprint = Fingerprint::of(&key);
        Ok(Self { key, fingerprint })
    }

    /// The SHA-256 fingerprint.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The algorithm name (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …).
    pub fn algorithm(&self) -> String {
        self.key.algorithm().as_str().to_owned()
    }

    /// The comment, possibly empty.
    pub fn comment(&self) -> &str {
        self.key.comment().as_str_lossy()
    }

    /// The key as one OpenSSH line, with its comment.
    pub fn to_openssh(&self) -> String {
        self.key.to_openssh().unwrap_or_default()
    }

    /// The parsed key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }
}

fn check_allowed(key: &PublicKey) -> Result<(), ModelError> {
    match key.algorithm() {
        Algorithm::Ed25519
        | Algorithm::SkEd25519
        | Algorithm::Ecdsa { .. }
        | Algorithm::SkEcdsaSha2NistP256 => Ok(()),
        Algorithm::Rsa { .. } => {
            let bits = match key.key_data() {
                KeyData::Rsa(rsa) => rsa.key_size(),
                _ => 0,
            };
            if bits >= 2048 {
                Ok(())
            } else {
                Err(ModelError::InvalidKey(format!(
                    "RSA keys must have at least 2048 bits, this one has {bits}"
                )))
            }
        }
        other => Err(ModelError::InvalidKey(format!(
            "algorithm {} is not allowed (use ed25519, ECDSA or RSA >= 2048 bits)",
            other.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";

    #[test]
    fn parses_ed25519_with_fingerprint() {
        let k = SshPublicKey::parse(ED).unwrap();
        assert_eq!(k.algorithm(), "ssh-ed25519");
        assert_eq!(k.comment(), "alice@laptop");
        assert!(k.fingerprint().as_str().starts_with("SHA256:"));
        assert_eq!(k.fingerprint().as_str().len(), 7 + 43);
        let again = SshPublicKey::parse(&k.to_openssh()).unwrap();
        assert_eq!(again.fingerprint(), k.fingerprint());
    }

    #[test]
    fn refuses_garbage_and_private_keys() {
        assert!(SshPublicKey::parse("").is_err());
        assert!(SshPublicKey::parse("ssh-ed25519 AAAA").is_err());
        assert!(SshPublicKey::parse("not a key").is_err());
        let e =
            SshPublicKey::parse(concat!("-----BEGIN OPENSSH ", "PRIVATE KEY-----")).unwrap_err();
        assert!(e.to_string().contains("private key"), "{e}");
        assert!(SshPublicKey::parse(&format!("{ED}\n{ED}")).is_err());
    }

    #[test]
    fn fingerprint_text_is_checked() {
        assert!(Fingerprint::try_from("SHA256:abc".to_owned()).is_err());
        assert!(Fingerprint::try_from("MD5:aa".to_owned()).is_err());
        let k = SshPublicKey::parse(ED).unwrap();
        assert!(Fingerprint::try_from(k.fingerprint().to_string()).is_ok());
    }
}
