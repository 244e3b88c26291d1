//! The agent's identities, in memory only, without I/O: add, generate, attach a certificate,
//! list, sign, remove, lock, and expiry. Time comes in as arguments (`now`, a monotonic
//! [`Instant`], and `now_unix` for certificate validity), so tests need no clock.
//!
//! Every private key lives in an ssh-key [`KeypairData`], whose private halves zeroize
//! themselves on drop; removing an identity (by request, `remove all`, or expiry) drops it.
//! `Debug` shows counts and algorithms, never key material.

use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use rand::RngCore;
use russh::keys::signature::Signer;
use russh::keys::ssh_encoding::Encode;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{Certificate, HashAlg};
use sallyport_core::secret::Secret;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::constraints::{self, DestConstraint, SessionBinding};
use crate::error::KeystoreError;
use crate::proto::{sign_flags, IdentityEntry, KeyConstraints, NewKey};

/// Most identities held at once.
pub const MAX_IDENTITIES: usize = 1024;
/// Longest delay after repeated wrong unlock passphrases (as OpenSSH: 0.1 s steps up to 10 s).
const MAX_UNLOCK_FAILURES: u32 = 100;

/// One identity: a key pair, maybe a certificate, and its limits.
struct Entry {
    keypair: KeypairData,
    public: KeyData,
    /// The certificate as a key blob value (`KeyData::Certificate`).
    cert: Option<KeyData>,
    /// Whether the plain key is offered too (generated keys: yes; `ssh-add` of a cert: no).
    list_plain: bool,
    comment: String,
    expires_at: Option<Instant>,
    destinations: Vec<DestConstraint>,
    /// Made by `generate-ed25519@sallyport` (only these take `add-certificate@sallyport`).
    generated: bool,
}

impl Entry {
    fn matches(&self, key: &KeyData) -> bool {
        self.cert.as_ref() == Some(key)
            || ((self.cert.is_none() || self.list_plain) && &self.public == key)
    }

    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }
}

enum LockState {
    Unlocked,
    /// Only a salted hash of the passphrase is kept.
    Locked {
        salt: [u8; 16],
        hash: Secret<[u8; 32]>,
    },
}

/// The identities and lock state. Share it behind one mutex in the driver.
pub struct Keystore {
    entries: Vec<Entry>,
    lock: LockState,
    failed_unlocks: u32,
}

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<String> = self
            .entries
            .iter()
            .map(|e| e.public.algorithm().as_str().to_owned())
            .collect();
        f.debug_struct("Keystore")
            .field("identities", &algorithms)
            .field("locked", &self.is_locked())
            .finish_non_exhaustive()
    }
}

impl Default for Keystore {
    fn default() -> Self {
        Self::new()
    }
}

impl Keystore {
    /// An empty, unlocked keystore.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            lock: LockState::Unlocked,
            failed_unlocks: 0,
        }
    }

    /// Whether the agent is locked.
    pub fn is_locked(&self) -> bool {
        matches!(self.lock, LockState::Locked { .. })
    }

    /// Number of identities held (expired ones not yet reaped included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no identity is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn unlocked(&self) -> Result<(), KeystoreError> {
        if self.is_locked() {
            Err(KeystoreError::Locked)
        } else {
            Ok(())
        }
    }

    /// Adds (or replaces) a key from `ssh-add`.
    pub fn add(
        &mut self,
        key: NewKey,
        constraints: KeyConstraints,
        bindings: &[SessionBinding],
        now: Instant,
        now_unix: u64,
    ) -> Result<(), KeystoreError> {
        self.unlocked()?;
        let NewKey {
            keypair,
            cert,
            comment,
        } = key;
        let public = KeyData::try_from(&keypair).map_err(|_| KeystoreError::Signing)?;
        let cert = cert.map(|c| KeyData::Certificate(Box::new(c)));
        let identity = cert.clone().unwrap_or_else(|| public.clone());
        let expires_at = constraints
            .lifetime_secs
            .map(|s| now + Duration::from_secs(u64::from(s)));
        let entry = Entry {
            keypair,
            public,
            list_plain: cert.is_none(),
            cert,
            comment,
            expires_at,
            destinations: constraints.destinations,
            generated: false,
        };
        if let Some(pos) = self.position(&identity) {
            if let Some(old) = self.entries.get(pos) {
                constraints::identity_permitted(&old.destinations, bindings, None, now_unix)
                    .map_err(KeystoreError::NotPermitted)?;
            }
            self.entries.remove(pos);
        } else if self.entries.len() >= MAX_IDENTITIES {
            return Err(KeystoreError::Full);
        }
        self.entries.push(entry);
        Ok(())
    }

    fn position(&self, key: &KeyData) -> Option<usize> {
        self.entries.iter().position(|e| e.matches(key))
    }

    /// `generate-ed25519@sallyport`: a fresh ed25519 key held for `lifetime_secs`.
    pub fn generate_ed25519(
        &mut self,
        comment: String,
        lifetime_secs: u32,
        now: Instant,
    ) -> Result<KeyData, KeystoreError> {
        self.unlocked()?;
        if !(1..=crate::proto::MAX_GENERATED_LIFETIME_SECS).contains(&lifetime_secs) {
            return Err(KeystoreError::Lifetime("1..=86400 seconds"));
        }
        if self.entries.len() >= MAX_IDENTITIES {
            return Err(KeystoreError::Full);
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(seed.as_mut_slice())
            .map_err(|_| KeystoreError::Rng)?;
        let keypair = Ed25519Keypair::from_seed(&seed);
        let public = KeyData::Ed25519(keypair.public);
        self.entries.push(Entry {
            keypair: KeypairData::Ed25519(keypair),
            public: public.clone(),
            cert: None,
            list_plain: true,
            comment,
            expires_at: Some(now + Duration::from_secs(u64::from(lifetime_secs))),
            destinations: Vec::new(),
            generated: true,
        });
        Ok(public)
    }

    /// `add-certificate@sallyport`: attaches a user certificate to a generated key; the pair
    /// then expires at the earlier of the key's lifetime and the certificate's `valid_before`.
    pub fn add_certificate(
        &mut self,
        cert: Certificate,
        now: Instant,
        now_unix: u64,
    ) -> Result<(), KeystoreError> {
        self.unlocked()?;
        if cert.cert_type() != CertType::User {
            return Err(KeystoreError::Certificate("not a user certificate"));
        }
        if cert.valid_before() <= now_unix {
            return Err(KeystoreError::Certificate("already expired"));
        }
        if cert.verify_signature().is_err() {
            return Err(KeystoreError::Certificate("CA signature does not verify"));
        }
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.generated && !e.expired(now) && &e.public == cert.public_key())
            .ok_or(KeystoreError::Certificate(
                "not for a key this agent generated",
            ))?;
        let cert_end = now + Duration::from_secs(cert.valid_before() - now_unix);
        entry.expires_at = Some(entry.expires_at.map_or(cert_end, |t| t.min(cert_end)));
        entry.cert = Some(KeyData::Certificate(Box::new(cert)));
        entry.list_plain = true;
        Ok(())
    }

    /// The identities this connection may see: none while locked; certificates first.
    pub fn list(
        &self,
        bindings: &[SessionBinding],
        now: Instant,
        now_unix: u64,
    ) -> Vec<IdentityEntry> {
        if self.is_locked() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for e in self.entries.iter().filter(|e| !e.expired(now)) {
            if constraints::identity_permitted(&e.destinations, bindings, None, now_unix).is_err() {
                continue;
            }
            let mut push = |key: &KeyData| {
                if let Ok(blob) = key.encode_vec() {
                    out.push(IdentityEntry {
                        blob,
                        comment: e.comment.clone(),
                    });
                }
            };
            if let Some(cert) = &e.cert {
                push(cert);
            }
            if e.cert.is_none() || e.list_plain {
                push(&e.public);
            }
        }
        out
    }

    /// Signs `data` with the identity `key`; returns the encoded signature
    /// (`string algorithm, string blob`). RSA needs the rsa-sha2-256 or -512 flag: SHA-1
    /// (`ssh-rsa`) is refused.
    pub fn sign(
        &self,
        key: &KeyData,
        data: &[u8],
        flags: u32,
        bindings: &[SessionBinding],
        now: Instant,
        now_unix: u64,
    ) -> Result<Vec<u8>, KeystoreError> {
        self.unlocked()?;
        let entry = self
            .entries
            .iter()
            .find(|e| !e.expired(now) && e.matches(key))
            .ok_or(KeystoreError::NotFound)?;
        constraints::check_sign(&entry.destinations, bindings, key, data, now_unix)
            .map_err(KeystoreError::NotPermitted)?;
        let signature = match &entry.keypair {
            KeypairData::Ed25519(kp) => kp.try_sign(data),
            KeypairData::Rsa(kp) => {
                let hash = if flags & sign_flags::RSA_SHA2_256 != 0 {
                    HashAlg::Sha256
                } else if flags & sign_flags::RSA_SHA2_512 != 0 {
                    HashAlg::Sha512
                } else {
                    return Err(KeystoreError::RefusedAlgorithm("ssh-rsa (SHA-1)"));
                };
                (kp, Some(hash)).try_sign(data)
            }
            _ => return Err(KeystoreError::Signing),
        }
        .map_err(|_| KeystoreError::Signing)?;
        signature.encode_vec().map_err(|_| KeystoreError::Signing)
    }

    /// Removes the identity `key` (a certificate removes its entry, key included).
    pub fn remove(
        &mut self,
        key: &KeyData,
        bindings: &[SessionBinding],
        now_unix: u64,
    ) -> Result<(), KeystoreError> {
        self.unlocked()?;
        let pos = self.position(key).ok_or(KeystoreError::NotFound)?;
        if let Some(e) = self.entries.get(pos) {
            constraints::identity_permitted(&e.destinations, bindings, None, now_unix)
                .map_err(KeystoreError::NotPermitted)?;
        }
        self.entries.remove(pos);
        Ok(())
    }

    /// Removes every identity.
    pub fn remove_all(&mut self) -> Result<(), KeystoreError> {
        self.unlocked()?;
        self.entries.clear();
        Ok(())
    }

    /// Drops every identity regardless of lock state (shutdown).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Removes identities whose time has come; returns how many.
    pub fn remove_expired(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| !e.expired(now));
        before - self.entries.len()
    }

    /// When the next identity expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.entries.iter().filter_map(|e| e.expires_at).min()
    }

    /// Locks with a non-empty passphrase.
    pub fn lock(&mut self, passphrase: &Secret<Vec<u8>>) -> Result<(), KeystoreError> {
        if self.is_locked() || passphrase.expose_secret().is_empty() {
            return Err(KeystoreError::Passphrase);
        }
        let mut salt = [0u8; 16];
        OsRng
            .try_fill_bytes(&mut salt)
            .map_err(|_| KeystoreError::Rng)?;
        let hash = lock_hash(&salt, passphrase);
        self.lock = LockState::Locked { salt, hash };
        Ok(())
    }

    /// Unlocks if `passphrase` matches (constant-time compare). On a wrong passphrase returns
    /// the delay the driver should wait before answering (grows by 0.1 s per failure, to 10 s).
    pub fn unlock(
        &mut self,
        passphrase: &Secret<Vec<u8>>,
    ) -> Result<(), (KeystoreError, Duration)> {
        let LockState::Locked { salt, hash } = &self.lock else {
            return Err((KeystoreError::Passphrase, Duration::ZERO));
        };
        let candidate = lock_hash(salt, passphrase);
        if !passphrase.expose_secret().is_empty() && hash.ct_eq(candidate.expose_secret()) {
            self.lock = LockState::Unlocked;
            self.failed_unlocks = 0;
            return Ok(());
        }
        self.failed_unlocks = (self.failed_unlocks + 1).min(MAX_UNLOCK_FAILURES);
        Err((
            KeystoreError::Passphrase,
            Duration::from_millis(100 * u64::from(self.failed_unlocks)),
        ))
    }
}

fn lock_hash(salt: &[u8; 16], passphrase: &Secret<Vec<u8>>) -> Secret<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(passphrase.expose_secret());
    Secret::new(h.finalize().into())
}

#[cfg(test)]
#[path = "keystore_tests.rs"]
mod tests;
