//! The five keys the gateway holds in memory, and what is derived from them (pure, no I/O).

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use sallyport_core::secret::Secret;
use zeroize::Zeroizing;

use super::error::SecretsError;
use super::path::SecretName;

/// Length in bytes of every gateway secret.
pub const KEY_LEN: usize = 32;

/// The gateway's key material: five 32-byte secrets, each zeroized on drop.
///
/// `Debug` prints only the names. There is no `Clone`: share it behind an `Arc`.
pub struct GatewaySecrets {
    ssh_host_key: Secret<[u8; KEY_LEN]>,
    user_ca_key: Secret<[u8; KEY_LEN]>,
    wireguard_key: Secret<[u8; KEY_LEN]>,
    jwt_signing_key: Secret<[u8; KEY_LEN]>,
    recording_key: Secret<[u8; KEY_LEN]>,
}

impl GatewaySecrets {
    /// Five fresh keys from the operating system's CSPRNG, for `sallyportd dev` and for
    /// `secrets init`.
    pub fn generate() -> Result<Self, SecretsError> {
        let fresh = || -> Result<Secret<[u8; KEY_LEN]>, SecretsError> {
            let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
            OsRng
                .try_fill_bytes(bytes.as_mut_slice())
                .map_err(SecretsError::Rng)?;
            Ok(Secret::new(*bytes))
        };
        Ok(Self {
            ssh_host_key: fresh()?,
            user_ca_key: fresh()?,
            wireguard_key: fresh()?,
            jwt_signing_key: fresh()?,
            recording_key: fresh()?,
        })
    }

    /// Assembles the five keys; used by the loaders in this module.
    pub(super) fn from_parts(
        ssh_host_key: Secret<[u8; KEY_LEN]>,
        user_ca_key: Secret<[u8; KEY_LEN]>,
        wireguard_key: Secret<[u8; KEY_LEN]>,
        jwt_signing_key: Secret<[u8; KEY_LEN]>,
        recording_key: Secret<[u8; KEY_LEN]>,
    ) -> Self {
        Self {
            ssh_host_key,
            user_ca_key,
            wireguard_key,
            jwt_signing_key,
            recording_key,
        }
    }

    /// The secret stored under `name`.
    pub fn get(&self, name: SecretName) -> &Secret<[u8; KEY_LEN]> {
        match name {
            SecretName::SshHostKey => &self.ssh_host_key,
            SecretName::UserCaKey => &self.user_ca_key,
            SecretName::WireguardKey => &self.wireguard_key,
            SecretName::JwtSigningKey => &self.jwt_signing_key,
            SecretName::RecordingKey => &self.recording_key,
        }
    }

    /// The SSH host key's ed25519 seed.
    pub fn ssh_host_key(&self) -> &Secret<[u8; KEY_LEN]> {
        &self.ssh_host_key
    }

    /// The SSH user CA key's ed25519 seed.
    pub fn user_ca_key(&self) -> &Secret<[u8; KEY_LEN]> {
        &self.user_ca_key
    }

    /// The WireGuard static private key (x25519; clamped by the WireGuard implementation).
    pub fn wireguard_key(&self) -> &Secret<[u8; KEY_LEN]> {
        &self.wireguard_key
    }

    /// The key that signs API tokens.
    pub fn jwt_signing_key(&self) -> &Secret<[u8; KEY_LEN]> {
        &self.jwt_signing_key
    }

    /// The key that protects session recordings.
    pub fn recording_key(&self) -> &Secret<[u8; KEY_LEN]> {
        &self.recording_key
    }

    /// The SSH host key as an ed25519 private key for russh. The returned key zeroizes its
    /// own copy of the seed on drop.
    pub fn ssh_host_private_key(&self) -> PrivateKey {
        ed25519_from_seed(&self.ssh_host_key)
    }

    /// The SSH host public key, as clients see it in `known_hosts`.
    pub fn ssh_host_public_key(&self) -> PublicKey {
        self.ssh_host_private_key().public_key().clone()
    }

    /// The SSH user CA key as an ed25519 private key, for signing user certificates.
    pub fn user_ca_private_key(&self) -> PrivateKey {
        ed25519_from_seed(&self.user_ca_key)
    }

    /// The SSH user CA public key, as targets list it in `TrustedUserCAKeys`.
    pub fn user_ca_public_key(&self) -> PublicKey {
        self.user_ca_private_key().public_key().clone()
    }
}

fn ed25519_from_seed(seed: &Secret<[u8; KEY_LEN]>) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(seed.expose_secret()))
}

impl fmt::Debug for GatewaySecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only. Deliberately not `debug_struct`, so that a field added later cannot be
        // printed by accident.
        f.write_str("GatewaySecrets { ")?;
        for (i, name) in SecretName::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}: <secret>")?;
        }
        f.write_str(" }")
    }
}

#[cfg(test)]
mod tests {
    use russh::keys::Algorithm;

    use super::*;

    fn fixed() -> GatewaySecrets {
        let k = |b: u8| Secret::new([b; KEY_LEN]);
        GatewaySecrets::from_parts(k(1), k(2), k(3), k(4), k(5))
    }

    #[test]
    fn debug_prints_names_only() {
        let s = fixed();
        let shown = format!("{s:?}");
        assert_eq!(
            shown,
            "GatewaySecrets { ssh-host-key: <secret>, user-ca-key: <secret>, \
             wireguard-key: <secret>, jwt-signing-key: <secret>, recording-key: <secret> }"
        );
        let pretty = format!("{s:#?}");
        for b in 1u8..=5 {
            // Neither the decimal nor hex form of any key byte run appears.
            assert!(!pretty.contains(&format!("{b}, {b}, {b}")));
            assert!(!pretty.contains(&format!("0{b}0{b}0{b}")));
        }
    }

    #[test]
    fn generate_gives_distinct_random_keys() {
        let a = GatewaySecrets::generate().unwrap();
        let b = GatewaySecrets::generate().unwrap();
        for x in SecretName::ALL {
            assert!(!a.get(x).ct_eq(b.get(x).expose_secret()), "{x} repeated");
            for y in SecretName::ALL {
                if x != y {
                    assert!(!a.get(x).ct_eq(a.get(y).expose_secret()), "{x} == {y}");
                }
            }
        }
    }

    #[test]
    fn accessors_match_get() {
        let s = fixed();
        assert!(s.ssh_host_key().ct_eq(&[1; KEY_LEN]));
        assert!(s.user_ca_key().ct_eq(&[2; KEY_LEN]));
        assert!(s.wireguard_key().ct_eq(&[3; KEY_LEN]));
        assert!(s.jwt_signing_key().ct_eq(&[4; KEY_LEN]));
        assert!(s.recording_key().ct_eq(&[5; KEY_LEN]));
        for name in SecretName::ALL {
            assert!(std::ptr::eq(s.get(name), s.get(name)));
        }
    }

    #[test]
    fn ssh_keys_are_ed25519_and_deterministic_from_the_seed() {
        let s = fixed();
        let host = s.ssh_host_private_key();
        assert_eq!(host.algorithm(), Algorithm::Ed25519);
        assert_eq!(host.public_key(), &s.ssh_host_public_key());
        assert_eq!(s.ssh_host_public_key(), fixed().ssh_host_public_key());
        let ca = s.user_ca_private_key();
        assert_eq!(ca.algorithm(), Algorithm::Ed25519);
        assert_eq!(ca.public_key(), &s.user_ca_public_key());
        assert_ne!(s.ssh_host_public_key(), s.user_ca_public_key());
        // The RFC 8032 test vector 1: seed 9d61b19d... gives public key d75a9801...
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let k = ed25519_from_seed(&Secret::new(seed));
        let pk = k.public_key().key_data().ed25519().unwrap();
        assert_eq!(
            hex::encode(pk.as_ref()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }
}
