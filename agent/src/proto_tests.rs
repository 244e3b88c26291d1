use russh::keys::ssh_encoding::Encode;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};

use super::*;

fn keypair(seed: u8) -> Ed25519Keypair {
    Ed25519Keypair::from_seed(&[seed; 32])
}

fn put<T: Encode + ?Sized>(out: &mut Vec<u8>, v: &T) {
    v.encode(out).unwrap();
}

/// `SSH_AGENTC_ADD_ID_CONSTRAINED` for an ed25519 key, with raw constraint bytes appended.
fn add_constrained(seed: u8, constraints: &[u8]) -> Vec<u8> {
    let mut m = vec![msg::ADD_ID_CONSTRAINED];
    KeypairData::Ed25519(keypair(seed)).encode(&mut m).unwrap();
    put(&mut m, "comment");
    m.extend_from_slice(constraints);
    m
}

#[test]
fn frames_split_wait_and_refuse_oversize() {
    let framed = frame(&[msg::REQUEST_IDENTITIES]);
    assert_eq!(framed, vec![0, 0, 0, 1, 11]);
    assert_eq!(split_frame(&framed).unwrap(), Some((&[11u8][..], 5)));
    assert_eq!(split_frame(&framed[..3]).unwrap(), None);
    assert_eq!(split_frame(&framed[..4]).unwrap(), None);
    assert!(split_frame(&[0, 0, 0, 0]).is_err());
    let too_big = u32::try_from(MAX_MESSAGE_LEN + 1).unwrap().to_be_bytes();
    assert!(split_frame(&too_big).is_err());
    assert!(body_len(u32::try_from(MAX_MESSAGE_LEN).unwrap()).is_ok());
}

#[test]
fn parses_simple_requests() {
    assert!(matches!(
        parse_request(&[msg::REQUEST_IDENTITIES]).unwrap(),
        Request::RequestIdentities
    ));
    assert!(matches!(
        parse_request(&[msg::REMOVE_ALL_IDENTITIES]).unwrap(),
        Request::RemoveAllIdentities
    ));
    let mut lock = vec![msg::LOCK];
    put(&mut lock, "pw");
    match parse_request(&lock).unwrap() {
        Request::Lock { passphrase } => assert_eq!(passphrase.expose_secret(), b"pw"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn parses_sign_request() {
    let key = KeyData::Ed25519(keypair(1).public);
    let mut m = vec![msg::SIGN_REQUEST];
    put(&mut m, &key.encode_vec().unwrap());
    put(&mut m, &b"data"[..]);
    put(&mut m, &sign_flags::RSA_SHA2_256);
    match parse_request(&m).unwrap() {
        Request::Sign {
            key: k,
            data,
            flags,
        } => {
            assert_eq!(k, key);
            assert_eq!(data, b"data");
            assert_eq!(flags, 2);
        }
        other => panic!("{other:?}"),
    }
    m.push(0);
    assert!(matches!(
        parse_request(&m),
        Err(ParseError::TrailingBytes(1))
    ));
}

#[test]
fn parses_add_identity_with_lifetime() {
    let mut c = vec![constraint::LIFETIME];
    put(&mut c, &60u32);
    match parse_request(&add_constrained(2, &c)).unwrap() {
        Request::AddIdentity { key, constraints } => {
            assert_eq!(constraints.lifetime_secs, Some(60));
            assert!(constraints.destinations.is_empty());
            assert_eq!(key.comment, "comment");
            assert!(key.cert.is_none());
            let debug = format!("{key:?}");
            assert!(!debug.contains(&format!("{:?}", keypair(2).private.to_bytes())));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refuses_constraints_it_cannot_honour() {
    // confirm (no prompt here), maxsign, an unknown number, an unknown extension, a repeat.
    assert!(matches!(
        parse_request(&add_constrained(3, &[constraint::CONFIRM])),
        Err(ParseError::UnsupportedConstraint(_))
    ));
    let mut maxsign = vec![constraint::MAXSIGN];
    put(&mut maxsign, &5u32);
    assert!(parse_request(&add_constrained(3, &maxsign)).is_err());
    assert!(parse_request(&add_constrained(3, &[42])).is_err());
    let mut ext_c = vec![constraint::EXTENSION];
    put(&mut ext_c, "sk-provider@openssh.com");
    put(&mut ext_c, "/usr/lib/x.so");
    assert!(matches!(
        parse_request(&add_constrained(3, &ext_c)),
        Err(ParseError::UnsupportedConstraint(name)) if name == "sk-provider@openssh.com"
    ));
    let mut twice = vec![constraint::LIFETIME];
    put(&mut twice, &1u32);
    twice.push(constraint::LIFETIME);
    put(&mut twice, &2u32);
    assert!(parse_request(&add_constrained(3, &twice)).is_err());
}

#[test]
fn refuses_unknown_messages_and_extensions() {
    assert!(matches!(
        parse_request(&[200]),
        Err(ParseError::UnsupportedMessage(200))
    ));
    assert!(matches!(parse_request(&[]), Err(ParseError::Empty)));
    let mut m = vec![msg::EXTENSION];
    put(&mut m, "query");
    assert!(matches!(
        parse_request(&m),
        Err(ParseError::UnsupportedExtension(_))
    ));
}

#[test]
fn generate_extension_round_trips_and_bounds_lifetime() {
    let body = encode_generate_ed25519("alice", 3600).unwrap();
    match parse_request(&body).unwrap() {
        Request::GenerateEd25519 {
            comment,
            lifetime_secs,
        } => {
            assert_eq!(comment, "alice");
            assert_eq!(lifetime_secs, 3600);
        }
        other => panic!("{other:?}"),
    }
    assert!(parse_request(&encode_generate_ed25519("a", 0).unwrap()).is_err());
    assert!(parse_request(&encode_generate_ed25519("a", 86_401).unwrap()).is_err());
    assert!(parse_request(&encode_generate_ed25519("a", 86_400).unwrap()).is_ok());
}

#[test]
fn replies_encode() {
    assert_eq!(Reply::Success.encode(), vec![6]);
    assert_eq!(Reply::Failure.encode(), vec![5]);
    let ids = Reply::Identities(vec![IdentityEntry {
        blob: vec![1, 2],
        comment: "c".into(),
    }]);
    assert_eq!(
        ids.encode(),
        vec![12, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 0, 0, 0, 1, b'c']
    );
    let blob = Reply::SuccessWithBlob(vec![9]).encode();
    assert_eq!(parse_success_with_blob(&blob).unwrap(), vec![9]);
    assert!(parse_success_with_blob(&[5]).is_err());
}
