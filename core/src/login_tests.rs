use proptest::prelude::*;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::{LineEnding, PrivateKey, SshSig};

use super::*;

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn alice() -> UserName {
    "alice".parse().unwrap()
}

fn at(s: i64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + s * 1000)
}

fn sign(k: &PrivateKey, namespace: &str, msg: &str) -> String {
    SshSig::sign(k, namespace, HASH, msg.as_bytes())
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap()
}

#[test]
fn challenge_round_trip_and_refusals() {
    let k = ChallengeKey::derive(&[7; 32]);
    let c = k.issue(&alice(), at(0), [1; 16]);
    assert!(c.text.starts_with("sallyport-login:v1:alice:"));
    assert_eq!(c.expires_at, at(60));
    let back = k.check(&c.text, &alice(), at(59)).unwrap();
    assert_eq!(back.nonce, c.nonce);
    assert_eq!(
        k.check(&c.text, &alice(), at(60)),
        Err(LoginProofError::Expired)
    );
    assert_eq!(
        k.check(&c.text, &"bob".parse().unwrap(), at(1)),
        Err(LoginProofError::WrongUser)
    );
    let other = ChallengeKey::derive(&[8; 32]);
    assert_eq!(
        other.check(&c.text, &alice(), at(1)),
        Err(LoginProofError::BadMac)
    );
    // Moving the expiry breaks the MAC.
    let forged = c.text.replacen(
        &at(60).as_millis().to_string(),
        &at(600).as_millis().to_string(),
        1,
    );
    assert_eq!(
        k.check(&forged, &alice(), at(1)),
        Err(LoginProofError::BadMac)
    );
    assert_eq!(
        k.check("x", &alice(), at(1)),
        Err(LoginProofError::Malformed)
    );
    // Fresh nonces make distinct challenges.
    assert_ne!(k.issue(&alice(), at(0), [2; 16]).text, c.text);
}

#[test]
fn derived_key_differs_from_the_jwt_key() {
    let jwt = [9u8; 32];
    let k = ChallengeKey::derive(&jwt);
    assert_ne!(k.0.expose_secret(), &jwt);
    assert_eq!(format!("{k:?}"), "ChallengeKey(<secret>)");
}

#[test]
fn proofs() {
    let k = key(1);
    let text = "sallyport-login:v1:alice:1:abc:def";
    let good = sign(&k, NAMESPACE, text);
    assert_eq!(verify_proof(text, k.public_key(), &good), Ok(()));
    assert_eq!(
        verify_proof("sallyport-login:v1:alice:2:abc:def", k.public_key(), &good),
        Err(LoginProofError::SignatureInvalid)
    );
    assert_eq!(
        verify_proof(text, key(2).public_key(), &good),
        Err(LoginProofError::SignatureKey)
    );
    assert_eq!(
        verify_proof(text, k.public_key(), &sign(&k, "git", text)),
        Err(LoginProofError::SignatureParameters)
    );
    assert_eq!(
        verify_proof(text, k.public_key(), "not a signature"),
        Err(LoginProofError::SignatureFormat)
    );
}

#[test]
fn agent_style_signature_over_signed_data_verifies() {
    // What the CLI does: the agent signs the SSHSIG blob, the CLI wraps the raw signature.
    use russh::keys::ssh_key::Signature;
    use signature_shim::sign_raw;
    let k = key(3);
    let text = "sallyport-login:v1:alice:1:abc:def";
    let blob = signed_data(text).unwrap();
    let raw: Signature = sign_raw(&k, &blob);
    let sig = SshSig::new(k.public_key().key_data().clone(), NAMESPACE, HASH, raw).unwrap();
    let pem = sig.to_pem(LineEnding::LF).unwrap();
    assert_eq!(verify_proof(text, k.public_key(), &pem), Ok(()));
}

mod signature_shim {
    use russh::keys::ssh_key::{PrivateKey, Signature};

    pub fn sign_raw(k: &PrivateKey, msg: &[u8]) -> Signature {
        russh::keys::signature::Signer::try_sign(k, msg).unwrap()
    }
}

proptest! {
    #[test]
    fn check_never_panics_and_refuses_junk(text in ".{0,300}") {
        let k = ChallengeKey::derive(&[7; 32]);
        prop_assert!(k.check(&text, &alice(), at(0)).is_err());
    }

    #[test]
    fn any_single_change_is_refused(pos in 0usize..120, byte in 0x21u8..0x7f) {
        let k = ChallengeKey::derive(&[7; 32]);
        let c = k.issue(&alice(), at(0), [5; 16]);
        let mut b = c.text.clone().into_bytes();
        let i = pos % b.len();
        prop_assume!(b[i] != byte);
        b[i] = byte;
        let t = String::from_utf8(b).unwrap();
        prop_assert!(k.check(&t, &alice(), at(1)).is_err());
    }
}
