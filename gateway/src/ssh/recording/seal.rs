//! Recordings at rest: each chunk sealed with XChaCha20-Poly1305 under a key derived for its
//! session from the gateway's recording key.
//!
//! ```text
//!  recording key (32 bytes, secret source)
//!      │ HKDF-SHA256(salt "sallyport recording", info "sallyport recording v1" ‖ session id)
//!      ▼
//!  session key ──XChaCha20-Poly1305(nonce: 24 random bytes,
//!                                   AAD: "sallyport-rec-v1" ‖ session id ‖ channel ‖ chunk index)
//!      ▼
//!  sealed chunk = 0x01 ‖ nonce ‖ ciphertext ‖ tag      (stored as base64 text)
//! ```
//!
//! The additional data binds every chunk to its session, channel and position: a chunk moved
//! to another place (reordered, swapped between channels or sessions) or altered in any bit
//! fails to open. Nonces are random and 192 bits long, so they never repeat in practice. Derived
//! keys are zeroized when dropped (the cipher zeroizes its key; the HKDF output is held in
//! `Zeroizing`).

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::rngs::OsRng;
use rand::RngCore;
use sallyport_core::secret::Secret;
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::secrets::KEY_LEN;

/// The format byte of a sealed chunk.
const FORMAT_V1: u8 = 1;
/// Nonce length (XChaCha20).
const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;
const SALT: &[u8] = b"sallyport recording";
const INFO: &[u8] = b"sallyport recording v1";
const AAD_LABEL: &[u8] = b"sallyport-rec-v1";

/// Where a chunk belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkId {
    /// The SSH session.
    pub session: Uuid,
    /// The channel within it.
    pub channel: u32,
    /// The chunk's index within the channel's recording, from 0.
    pub chunk: u64,
}

impl ChunkId {
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_LABEL.len() + 16 + 4 + 8);
        aad.extend_from_slice(AAD_LABEL);
        aad.extend_from_slice(self.session.as_bytes());
        aad.extend_from_slice(&self.channel.to_be_bytes());
        aad.extend_from_slice(&self.chunk.to_be_bytes());
        aad
    }
}

/// Why a chunk could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The operating system's random source failed.
    #[error("no random nonce: {0}")]
    Rng(String),
    /// Encryption failed (a chunk beyond the cipher's limit).
    #[error("cannot encrypt a recording chunk")]
    Encrypt,
    /// The stored bytes are not a sealed chunk of a known format.
    #[error("not a sealed recording chunk ({0})")]
    Format(&'static str),
    /// Authentication failed: altered, moved, or sealed with another key.
    #[error("recording chunk fails authentication: altered, out of place, or sealed with another recording key")]
    Authentication,
}

/// The recording key, ready to derive per-session keys. `Debug` prints nothing of it.
pub struct RecordingKey {
    root: Secret<[u8; KEY_LEN]>,
}

impl fmt::Debug for RecordingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordingKey(<secret>)")
    }
}

impl RecordingKey {
    /// Wraps a copy of the gateway's recording key.
    pub fn new(secret: &Secret<[u8; KEY_LEN]>) -> Self {
        Self {
            root: secret.clone(),
        }
    }

    fn cipher(&self, session: Uuid) -> XChaCha20Poly1305 {
        let hk = Hkdf::<Sha256>::new(Some(SALT), self.root.expose_secret());
        let mut info = Vec::with_capacity(INFO.len() + 16);
        info.extend_from_slice(INFO);
        info.extend_from_slice(session.as_bytes());
        let mut okm = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expand cannot fail.
        let _ = hk.expand(&info, okm.as_mut_slice());
        XChaCha20Poly1305::new(Key::from_slice(okm.as_slice()))
    }

    /// Seals `plaintext` for its place `at`.
    pub fn seal(&self, at: ChunkId, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| SealError::Rng(e.to_string()))?;
        let aad = at.aad();
        let ciphertext = self
            .cipher(at.session)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens a chunk sealed for `at`.
    pub fn open(&self, at: ChunkId, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some((&format, rest)) = sealed.split_first() else {
            return Err(SealError::Format("empty"));
        };
        if format != FORMAT_V1 {
            return Err(SealError::Format("unknown format byte"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Format("too short"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = at.aad();
        self.cipher(at.session)
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> RecordingKey {
        RecordingKey::new(&Secret::new([b; KEY_LEN]))
    }

    fn at(chunk: u64) -> ChunkId {
        ChunkId {
            session: Uuid::from_u128(7),
            channel: 0,
            chunk,
        }
    }

    #[test]
    fn round_trip_and_no_plaintext() {
        let k = key(1);
        let text = b"[0.1, \"o\", \"top secret output\"]\n";
        let sealed = k.seal(at(0), text).unwrap();
        assert_eq!(sealed.len(), 1 + NONCE_LEN + text.len() + TAG_LEN);
        assert!(!sealed.windows(10).any(|w| w == b"top secret"));
        assert_eq!(k.open(at(0), &sealed).unwrap(), text);
        // Fresh nonce each time.
        assert_ne!(k.seal(at(0), text).unwrap(), sealed);
    }

    #[test]
    fn moved_altered_or_foreign_chunks_fail() {
        let k = key(1);
        let sealed = k.seal(at(3), b"hello").unwrap();
        assert_eq!(k.open(at(4), &sealed), Err(SealError::Authentication));
        let other_channel = ChunkId {
            channel: 1,
            ..at(3)
        };
        assert_eq!(
            k.open(other_channel, &sealed),
            Err(SealError::Authentication)
        );
        let other_session = ChunkId {
            session: Uuid::from_u128(8),
            ..at(3)
        };
        assert_eq!(
            k.open(other_session, &sealed),
            Err(SealError::Authentication)
        );
        assert_eq!(key(2).open(at(3), &sealed), Err(SealError::Authentication));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(k.open(at(3), &bad).is_err(), "bit flip at {i} accepted");
        }
        assert_eq!(k.open(at(3), &[]), Err(SealError::Format("empty")));
        assert_eq!(
            k.open(at(3), &[1, 2, 3]),
            Err(SealError::Format("too short"))
        );
    }

    #[test]
    fn debug_shows_no_key() {
        assert_eq!(format!("{:?}", key(0x41)), "RecordingKey(<secret>)");
    }
}
