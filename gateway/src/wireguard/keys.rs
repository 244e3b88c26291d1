//! WireGuard key material: device public keys as they travel (base64), the gateway's static key
//! from the secret source, and the preshared keys derived per device and epoch (pure, no I/O).
//!
//! The preshared key is never stored: it is HKDF-SHA256 of the gateway's WireGuard secret with
//! the device id and the PSK epoch, so the database holds only the epoch and its expiry, and a
//! new epoch (`vpn refresh`) gives an unrelated key.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use boringtun::x25519;
use hkdf::Hkdf;
use sallyport_core::secret::Secret;
use sallyport_core::vpn::device::DeviceId;
use sha2::Sha256;

use crate::secrets::{GatewaySecrets, KEY_LEN};

/// Domain separation for the preshared-key derivation.
const PSK_INFO: &[u8] = b"sallyport wireguard psk v1";

/// A WireGuard (x25519) public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WgPublicKey([u8; KEY_LEN]);

impl WgPublicKey {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// From raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// For boringtun.
    pub fn to_x25519(self) -> x25519::PublicKey {
        x25519::PublicKey::from(self.0)
    }
}

/// Why a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WgKeyError {
    /// Not standard base64 of 32 bytes.
    #[error("a WireGuard public key is the base64 of 32 bytes (44 characters ending in '=')")]
    Encoding,
    /// A low-order point (all zeros, and similar) that would give a predictable shared secret.
    #[error("this WireGuard public key is a low-order point and cannot be used")]
    Weak,
}

impl FromStr for WgPublicKey {
    type Err = WgKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 44 {
            return Err(WgKeyError::Encoding);
        }
        let bytes = STANDARD.decode(s).map_err(|_| WgKeyError::Encoding)?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| WgKeyError::Encoding)?;
        // A public key whose shared secret with a fresh secret is all zeros is a low-order point.
        let probe = x25519::StaticSecret::from([7u8; KEY_LEN]);
        let shared = probe.diffie_hellman(&x25519::PublicKey::from(bytes));
        if !shared.was_contributory() {
            return Err(WgKeyError::Weak);
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for WgPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for WgPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WgPublicKey({self})")
    }
}

impl serde::Serialize for WgPublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for WgPublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The gateway's static WireGuard key. `Debug` prints the public half only.
pub struct GatewayKey {
    private: x25519::StaticSecret,
    public: x25519::PublicKey,
    psk_root: Secret<[u8; KEY_LEN]>,
}

impl GatewayKey {
    /// From the secret source's `wireguard-key`.
    pub fn from_secrets(secrets: &GatewaySecrets) -> Self {
        let mut bytes = *secrets.wireguard_key().expose_secret();
        let key = Self::from_bytes(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        key
    }

    fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let private = x25519::StaticSecret::from(bytes);
        let public = x25519::PublicKey::from(&private);
        Self {
            private,
            public,
            psk_root: Secret::new(bytes),
        }
    }

    /// The private key (boringtun takes it by value; `StaticSecret` zeroizes on drop).
    pub fn private(&self) -> x25519::StaticSecret {
        self.private.clone()
    }

    /// The public key clients put in their `[Peer]`.
    pub fn public(&self) -> WgPublicKey {
        WgPublicKey(*self.public.as_bytes())
    }

    /// The x25519 public key, for boringtun.
    pub fn public_x25519(&self) -> &x25519::PublicKey {
        &self.public
    }

    /// The preshared key of `device` in `epoch`.
    pub fn psk(&self, device: &DeviceId, epoch: u64) -> Secret<[u8; KEY_LEN]> {
        let hk = Hkdf::<Sha256>::new(Some(PSK_INFO), self.psk_root.expose_secret());
        let mut info = Vec::with_capacity(16 + 8);
        info.extend_from_slice(device.as_uuid().as_bytes());
        info.extend_from_slice(&epoch.to_be_bytes());
        let mut out = [0u8; KEY_LEN];
        // 32 bytes is far below HKDF-SHA256's limit of 255 × 32, so this cannot fail.
        let _ = hk.expand(&info, &mut out);
        let psk = Secret::new(out);
        zeroize::Zeroize::zeroize(&mut out);
        psk
    }
}

impl fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GatewayKey {{ public: {}, private: <secret> }}",
            self.public()
        )
    }
}

/// Base64 of a secret, for the one answer that hands a PSK to its device.
pub fn secret_base64(secret: &Secret<[u8; KEY_LEN]>) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(STANDARD.encode(secret.expose_secret()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_round_trip_and_bad_ones_are_named() {
        let k = GatewayKey::from_bytes([9; KEY_LEN]).public();
        let text = k.to_string();
        assert_eq!(text.len(), 44);
        assert_eq!(text.parse::<WgPublicKey>().unwrap(), k);
        assert_eq!("abc".parse::<WgPublicKey>(), Err(WgKeyError::Encoding));
        let zeros = STANDARD.encode([0u8; 32]);
        assert_eq!(zeros.parse::<WgPublicKey>(), Err(WgKeyError::Weak));
        let short = STANDARD.encode([1u8; 31]);
        assert_eq!(short.parse::<WgPublicKey>(), Err(WgKeyError::Encoding));
    }

    #[test]
    fn psk_depends_on_device_epoch_and_key() {
        let a = GatewayKey::from_bytes([1; KEY_LEN]);
        let b = GatewayKey::from_bytes([2; KEY_LEN]);
        let d1 = DeviceId::from(uuid::Uuid::from_u128(1));
        let d2 = DeviceId::from(uuid::Uuid::from_u128(2));
        let p = |k: &GatewayKey, d, e| *k.psk(d, e).expose_secret();
        assert_eq!(p(&a, &d1, 1), p(&a, &d1, 1));
        assert_ne!(p(&a, &d1, 1), p(&a, &d1, 2));
        assert_ne!(p(&a, &d1, 1), p(&a, &d2, 1));
        assert_ne!(p(&a, &d1, 1), p(&b, &d1, 1));
    }

    #[test]
    fn debug_shows_no_private_key() {
        let k = GatewayKey::from_bytes([3; KEY_LEN]);
        let shown = format!("{k:?}");
        assert!(shown.contains(&k.public().to_string()));
        assert!(!shown.contains(&STANDARD.encode([3u8; 32])));
    }
}
