//! The algorithms the SSH server offers: modern ones only. The list is documented in the module
//! docs of [`crate::ssh`] and in `docs/ssh.md`; a test below keeps the three in step.

use std::borrow::Cow;

use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
use russh::{cipher, compression, kex, mac, Preferred};

/// Key exchange, most preferred first, and the two protocol markers: RFC 8308 extension
/// negotiation (`server-sig-algs`) and OpenSSH's strict key exchange (the Terrapin fix).
pub const KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::EXTENSION_SUPPORT_AS_SERVER,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
];

/// Ciphers: authenticated encryption only (no CBC, no CTR with a separate MAC).
pub const CIPHERS: &[cipher::Name] = &[
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
];

/// The same ciphers in the order the gateway asks for them on proxy mode's onward connection,
/// where it is the client and its order decides: AES-GCM first, which the x86-64 and ARM
/// processors the gateway runs on do in hardware (the `aes` crate detects it), ahead of
/// ChaCha20-Poly1305, which is done in software.
pub const ONWARD_CIPHERS: &[cipher::Name] = &[
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
    cipher::CHACHA20_POLY1305,
];

/// MACs. Every cipher above carries its own authentication, so no MAC is ever used; the
/// encrypt-then-MAC SHA-2 names are offered only because the key-exchange message has the field.
pub const MACS: &[mac::Name] = &[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM];

/// Host key and user signature algorithms (`server-sig-algs`): ed25519, ECDSA, RSA with SHA-2,
/// and the FIDO (`sk-`) forms. Never `ssh-rsa` (SHA-1) or DSA. The host key itself is ed25519.
pub const SIGNATURES: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
    Algorithm::SkEd25519,
    Algorithm::SkEcdsaSha2NistP256,
];

/// The preference lists handed to russh.
pub fn preferred() -> Preferred {
    Preferred {
        kex: Cow::Borrowed(KEX),
        key: Cow::Borrowed(SIGNATURES),
        host_key_certificates: Cow::Borrowed(&[]),
        cipher: Cow::Borrowed(CIPHERS),
        mac: Cow::Borrowed(MACS),
        compression: Cow::Borrowed(&[compression::NONE]),
    }
}

/// Whether a user may sign a login with `algorithm` (the algorithm named in the request).
pub fn user_signature_allowed(algorithm: &Algorithm) -> bool {
    SIGNATURES.contains(algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_weak_is_offered() {
        let names: Vec<String> = KEX
            .iter()
            .map(|k| k.as_ref().to_owned())
            .chain(CIPHERS.iter().map(|c| c.as_ref().to_owned()))
            .chain(MACS.iter().map(|m| m.as_ref().to_owned()))
            .chain(SIGNATURES.iter().map(|a| a.as_str().to_owned()))
            .collect();
        for name in &names {
            for weak in [
                "sha1", "cbc", "ctr", "group1", "group14", "dss", "3des", "none",
            ] {
                assert!(!name.contains(weak), "{name} looks weak ({weak})");
            }
            assert_ne!(name, "ssh-rsa", "SHA-1 RSA signatures are not offered");
        }
        assert!(!user_signature_allowed(&Algorithm::Rsa { hash: None }));
        assert!(!user_signature_allowed(&Algorithm::Dsa));
        assert!(user_signature_allowed(&Algorithm::Ed25519));
    }

    #[test]
    fn the_documented_list_matches() {
        let doc = include_str!("../../../docs/ssh.md");
        for name in KEX
            .iter()
            .map(|k| k.as_ref().to_owned())
            .chain(CIPHERS.iter().map(|c| c.as_ref().to_owned()))
            .chain(SIGNATURES.iter().map(|a| a.as_str().to_owned()))
        {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/ssh.md does not list {name}"
            );
        }
    }
}
