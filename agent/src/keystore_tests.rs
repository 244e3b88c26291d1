use russh::keys::signature::Verifier;
use russh::keys::ssh_encoding::Decode;
use russh::keys::ssh_key::certificate::Builder;
use russh::keys::ssh_key::{PrivateKey, Signature};

use super::*;

const T0: u64 = 1_900_000_000;

fn new_key(seed: u8, comment: &str) -> NewKey {
    NewKey {
        keypair: KeypairData::Ed25519(Ed25519Keypair::from_seed(&[seed; 32])),
        cert: None,
        comment: comment.into(),
    }
}

fn public(seed: u8) -> KeyData {
    KeyData::Ed25519(Ed25519Keypair::from_seed(&[seed; 32]).public)
}

fn lifetime(secs: u32) -> KeyConstraints {
    KeyConstraints {
        lifetime_secs: Some(secs),
        destinations: Vec::new(),
    }
}

fn pass(p: &str) -> Secret<Vec<u8>> {
    Secret::new(p.as_bytes().to_vec())
}

fn user_cert(subject: &KeyData, valid_before: u64) -> Certificate {
    let ca = PrivateKey::from(Ed25519Keypair::from_seed(&[99; 32]));
    let mut b = Builder::new(vec![7u8; 16], subject.clone(), T0 - 60, valid_before).unwrap();
    b.serial(1).unwrap();
    b.key_id("alice/session-1").unwrap();
    b.cert_type(CertType::User).unwrap();
    b.valid_principal("alice").unwrap();
    b.sign(&ca).unwrap()
}

#[test]
fn adds_lists_signs_and_removes() {
    let now = Instant::now();
    let mut ks = Keystore::new();
    ks.add(new_key(1, "one"), KeyConstraints::default(), &[], now, T0)
        .unwrap();
    ks.add(new_key(2, "two"), KeyConstraints::default(), &[], now, T0)
        .unwrap();
    let ids = ks.list(&[], now, T0);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].comment, "one");
    assert_eq!(ids[0].blob, public(1).encode_vec().unwrap());

    let sig = ks.sign(&public(1), b"msg", 0, &[], now, T0).unwrap();
    let sig = Signature::decode(&mut sig.as_slice()).unwrap();
    assert!(public(1).verify(b"msg", &sig).is_ok());
    assert!(public(2).verify(b"msg", &sig).is_err());
    assert_eq!(
        ks.sign(&public(3), b"msg", 0, &[], now, T0),
        Err(KeystoreError::NotFound)
    );

    // Adding the same key again replaces it.
    ks.add(new_key(1, "uno"), KeyConstraints::default(), &[], now, T0)
        .unwrap();
    assert_eq!(ks.len(), 2);
    ks.remove(&public(1), &[], T0).unwrap();
    assert_eq!(ks.remove(&public(1), &[], T0), Err(KeystoreError::NotFound));
    assert_eq!(ks.list(&[], now, T0).len(), 1);
    ks.remove_all().unwrap();
    assert!(ks.is_empty());
}

#[test]
fn lifetimes_expire() {
    let now = Instant::now();
    let mut ks = Keystore::new();
    ks.add(new_key(1, "short"), lifetime(10), &[], now, T0)
        .unwrap();
    ks.add(
        new_key(2, "forever"),
        KeyConstraints::default(),
        &[],
        now,
        T0,
    )
    .unwrap();
    assert_eq!(ks.next_expiry(), Some(now + Duration::from_secs(10)));
    let later = now + Duration::from_secs(11);
    // Expired but not yet reaped: neither listed nor usable.
    assert_eq!(ks.list(&[], later, T0).len(), 1);
    assert!(ks.sign(&public(1), b"m", 0, &[], later, T0).is_err());
    assert_eq!(ks.remove_expired(later), 1);
    assert_eq!(ks.len(), 1);
    assert_eq!(ks.next_expiry(), None);
}

#[test]
fn lock_hides_and_refuses_until_unlocked() {
    let now = Instant::now();
    let mut ks = Keystore::new();
    ks.add(new_key(1, "k"), KeyConstraints::default(), &[], now, T0)
        .unwrap();
    assert!(ks.lock(&pass("")).is_err());
    ks.lock(&pass("pw")).unwrap();
    assert!(ks.lock(&pass("pw")).is_err());
    assert!(ks.list(&[], now, T0).is_empty());
    assert_eq!(
        ks.sign(&public(1), b"m", 0, &[], now, T0),
        Err(KeystoreError::Locked)
    );
    assert_eq!(ks.remove_all(), Err(KeystoreError::Locked));
    assert!(ks.generate_ed25519("g".into(), 60, now).is_err());
    let (_, d1) = ks.unlock(&pass("wrong")).unwrap_err();
    let (_, d2) = ks.unlock(&pass("wrong")).unwrap_err();
    assert_eq!(
        (d1, d2),
        (Duration::from_millis(100), Duration::from_millis(200))
    );
    ks.unlock(&pass("pw")).unwrap();
    assert!(ks.unlock(&pass("pw")).is_err());
    assert_eq!(ks.list(&[], now, T0).len(), 1);
}

#[test]
fn generated_key_takes_a_certificate_and_expires_with_it() {
    let now = Instant::now();
    let mut ks = Keystore::new();
    assert!(ks.generate_ed25519("g".into(), 0, now).is_err());
    assert!(ks.generate_ed25519("g".into(), 86_401, now).is_err());
    let key = ks.generate_ed25519("alice".into(), 3600, now).unwrap();
    let other = ks.generate_ed25519("alice".into(), 3600, now).unwrap();
    assert_ne!(key, other, "each generated key is fresh");
    let cert = user_cert(&key, T0 + 600);
    ks.add_certificate(cert.clone(), now, T0).unwrap();
    let ids = ks.list(&[], now, T0);
    assert_eq!(
        ids.len(),
        3,
        "certificate and plain key, plus the other key"
    );
    assert_eq!(ids[0].blob, cert.to_bytes().unwrap());
    // Signing through the certificate identity uses the key.
    let cert_id = KeyData::Certificate(Box::new(cert));
    let sig = ks.sign(&cert_id, b"m", 0, &[], now, T0).unwrap();
    let sig = Signature::decode(&mut sig.as_slice()).unwrap();
    assert!(key.verify(b"m", &sig).is_ok());
    // The certificate's end (600 s) comes before the key's (3600 s).
    assert_eq!(ks.next_expiry(), Some(now + Duration::from_secs(600)));
    assert_eq!(ks.remove_expired(now + Duration::from_secs(600)), 1);
    assert_eq!(ks.list(&[], now, T0).len(), 1);
}

#[test]
fn certificates_are_refused_unless_they_fit() {
    let now = Instant::now();
    let mut ks = Keystore::new();
    ks.add(new_key(1, "added"), KeyConstraints::default(), &[], now, T0)
        .unwrap();
    // Not a generated key.
    assert!(ks
        .add_certificate(user_cert(&public(1), T0 + 600), now, T0)
        .is_err());
    // Unknown key, expired certificate, tampered certificate.
    assert!(ks
        .add_certificate(user_cert(&public(5), T0 + 600), now, T0)
        .is_err());
    let key = ks.generate_ed25519("g".into(), 60, now).unwrap();
    assert!(ks
        .add_certificate(user_cert(&key, T0 - 1), now, T0)
        .is_err());
    let good = user_cert(&key, T0 + 600);
    let mut bytes = good.to_bytes().unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    if let Ok(bad) = Certificate::from_bytes(&bytes) {
        assert!(ks.add_certificate(bad, now, T0).is_err());
    }
    ks.add_certificate(good, now, T0).unwrap();
    // The key's own lifetime (60 s) stays the earlier end.
    assert_eq!(ks.next_expiry(), Some(now + Duration::from_secs(60)));
}

#[test]
fn debug_never_shows_key_material() {
    let now = Instant::now();
    let mut ks = Keystore::new();
    ks.add(new_key(1, "k"), KeyConstraints::default(), &[], now, T0)
        .unwrap();
    let debug = format!("{ks:?}");
    assert!(debug.contains("ssh-ed25519"));
    let private = Ed25519Keypair::from_seed(&[1; 32]).private.to_bytes();
    assert!(!debug.contains(&format!("{private:?}")));
    assert!(!debug.contains("01, 1, 1"));
}
