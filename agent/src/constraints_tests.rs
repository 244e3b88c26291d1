use russh::keys::signature::Signer;
use russh::keys::ssh_encoding::Encode;
use russh::keys::ssh_key::private::Ed25519Keypair;

use super::*;

fn host(seed: u8) -> Ed25519Keypair {
    Ed25519Keypair::from_seed(&[seed; 32])
}

fn key(seed: u8) -> KeyData {
    KeyData::Ed25519(host(seed).public)
}

fn hop_bytes(user: &str, hostname: &str, keys: &[(KeyData, bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    user.encode(&mut out).unwrap();
    hostname.encode(&mut out).unwrap();
    b"".as_slice().encode(&mut out).unwrap();
    for (k, is_ca) in keys {
        k.encode_vec().unwrap().encode(&mut out).unwrap();
        u8::from(*is_ca).encode(&mut out).unwrap();
    }
    out
}

fn constraint_bytes(from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    from.encode(&mut inner).unwrap();
    to.encode(&mut inner).unwrap();
    b"".as_slice().encode(&mut inner).unwrap();
    let mut out = Vec::new();
    inner.encode(&mut out).unwrap();
    out
}

/// What `ssh-add -h gw -h 'gw>target'` sends (user pattern on the last hop).
fn gw_then_target(user: &str) -> Vec<DestConstraint> {
    let mut blob = constraint_bytes(
        &hop_bytes("", "", &[]),
        &hop_bytes("", "gw", &[(key(1), false)]),
    );
    blob.extend(constraint_bytes(
        &hop_bytes("", "gw", &[(key(1), false)]),
        &hop_bytes(user, "target", &[(key(2), false)]),
    ));
    parse_destinations(&blob).unwrap()
}

fn binding(seed: u8, sid: u8, forwarded: bool) -> SessionBinding {
    SessionBinding {
        host_key: key(seed),
        session_id: vec![sid; 32],
        forwarded,
    }
}

fn userauth(sid: u8, user: &str, k: &KeyData, hostkey: Option<&KeyData>) -> Vec<u8> {
    let mut d = Vec::new();
    vec![sid; 32].encode(&mut d).unwrap();
    50u8.encode(&mut d).unwrap();
    user.encode(&mut d).unwrap();
    "ssh-connection".encode(&mut d).unwrap();
    let method = if hostkey.is_some() {
        "publickey-hostbound-v00@openssh.com"
    } else {
        "publickey"
    };
    method.encode(&mut d).unwrap();
    1u8.encode(&mut d).unwrap();
    "ssh-ed25519".encode(&mut d).unwrap();
    k.encode_vec().unwrap().encode(&mut d).unwrap();
    if let Some(h) = hostkey {
        h.encode_vec().unwrap().encode(&mut d).unwrap();
    }
    d
}

#[test]
fn patterns_match_like_openssh() {
    assert!(match_pattern("alice", "alice"));
    assert!(match_pattern("alice", "a*"));
    assert!(match_pattern("alice", "*"));
    assert!(match_pattern("alice", "al?ce"));
    assert!(match_pattern("", "*"));
    assert!(match_pattern("abcabc", "*bc"));
    assert!(!match_pattern("alice", "bob"));
    assert!(!match_pattern("alice", "a?"));
    assert!(!match_pattern("alice", ""));
}

#[test]
fn parses_and_checks_hop_consistency() {
    let d = gw_then_target("");
    assert_eq!(d.len(), 2);
    assert_eq!(d[1].to.hostname.as_deref(), Some("target"));
    // "to" without keys, and "from" with a user, are refused.
    let bad_to = constraint_bytes(&hop_bytes("", "", &[]), &hop_bytes("", "gw", &[]));
    assert!(parse_destinations(&bad_to).is_err());
    let bad_from = constraint_bytes(
        &hop_bytes("u", "", &[]),
        &hop_bytes("", "gw", &[(key(1), false)]),
    );
    assert!(parse_destinations(&bad_from).is_err());
    assert!(parse_destinations(&[]).is_err());
    assert!(parse_destinations(&[0, 0, 0, 9, 1]).is_err());
}

#[test]
fn unconstrained_or_local_use_is_permitted() {
    assert!(identity_permitted(&[], &[binding(9, 1, false)], Some("u"), 0).is_ok());
    assert!(identity_permitted(&gw_then_target(""), &[], None, 0).is_ok());
}

#[test]
fn hops_follow_the_constraints() {
    let d = gw_then_target("");
    // On gw (agent forwarded there): visible, since it may be used beyond gw.
    assert!(identity_permitted(&d, &[binding(1, 1, true)], None, 0).is_ok());
    // Logging in to gw itself, or to target through gw: allowed.
    assert!(identity_permitted(&d, &[binding(1, 1, false)], Some("u"), 0).is_ok());
    let through = [binding(1, 1, true), binding(2, 2, false)];
    assert!(identity_permitted(&d, &through, Some("u"), 0).is_ok());
    // Another host directly, or through gw: refused.
    assert!(identity_permitted(&d, &[binding(3, 1, false)], Some("u"), 0).is_err());
    let elsewhere = [binding(1, 1, true), binding(3, 2, false)];
    assert!(identity_permitted(&d, &elsewhere, Some("u"), 0).is_err());
    // Signing on a forwarding binding, or forwarding through an auth binding: refused.
    assert!(identity_permitted(&d, &[binding(1, 1, true)], Some("u"), 0).is_err());
    let after_auth = [binding(1, 1, false), binding(2, 2, false)];
    assert!(identity_permitted(&d, &after_auth, Some("u"), 0).is_err());
    // Forwarded on to target: not visible there (no constraint goes beyond target).
    let at_target = [binding(1, 1, true), binding(2, 2, true)];
    assert!(identity_permitted(&d, &at_target, None, 0).is_err());
}

#[test]
fn user_patterns_restrict_the_last_hop() {
    let d = gw_then_target("deploy*");
    let through = [binding(1, 1, true), binding(2, 2, false)];
    assert!(identity_permitted(&d, &through, Some("deploy-1"), 0).is_ok());
    assert!(identity_permitted(&d, &through, Some("root"), 0).is_err());
}

#[test]
fn sign_check_requires_matching_userauth() {
    let d = gw_then_target("");
    let me = key(7);
    let through = [binding(1, 1, true), binding(2, 2, false)];
    let good = userauth(2, "u", &me, Some(&key(2)));
    assert!(check_sign(&d, &through, &me, &good, 0).is_ok());
    // Unbound connection, non-userauth data, stale session id, missing or wrong host key.
    assert!(check_sign(&d, &[], &me, &good, 0).is_err());
    assert!(check_sign(&d, &through, &me, b"SSHSIG....", 0).is_err());
    assert!(check_sign(&d, &through, &me, &userauth(1, "u", &me, Some(&key(2))), 0).is_err());
    assert!(check_sign(&d, &through, &me, &userauth(2, "u", &me, None), 0).is_err());
    assert!(check_sign(&d, &through, &me, &userauth(2, "u", &me, Some(&key(3))), 0).is_err());
    // A userauth for another key.
    assert!(check_sign(
        &d,
        &through,
        &me,
        &userauth(2, "u", &key(8), Some(&key(2))),
        0
    )
    .is_err());
    // Direct login to gw without a hostbound request is fine (first hop).
    let direct = [binding(1, 1, false)];
    assert!(check_sign(&d, &direct, &me, &userauth(1, "u", &me, None), 0).is_ok());
    // Unconstrained keys sign anything.
    assert!(check_sign(&[], &[], &me, b"anything", 0).is_ok());
}

fn bind_msg(host_seed: u8, sid: u8, forwarding: bool) -> SessionBind {
    let session_id = vec![sid; 32];
    let signature = host(host_seed).try_sign(&session_id).unwrap();
    SessionBind {
        host_key: key(host_seed),
        session_id,
        signature,
        is_forwarding: forwarding,
    }
}

#[test]
fn bindings_verify_and_follow_openssh_rules() {
    let mut b = Bindings::default();
    // A signature by another key is refused.
    let mut forged = bind_msg(1, 1, true);
    forged.signature = host(2).try_sign(&forged.session_id).unwrap();
    assert!(b.bind(&forged).is_err());
    assert!(b.bind(&bind_msg(1, 1, true)).is_ok());
    // Repeat: accepted, not recorded twice. Same sid, other key: refused.
    assert!(b.bind(&bind_msg(1, 1, true)).is_ok());
    assert_eq!(b.as_slice().len(), 1);
    assert!(b.bind(&bind_msg(2, 1, true)).is_err());
    assert!(b.bind(&bind_msg(2, 2, false)).is_ok());
    // Nothing after a binding for authentication.
    assert!(b.bind(&bind_msg(3, 3, true)).is_err());
    let mut many = Bindings::default();
    for i in 0..16u8 {
        assert!(many.bind(&bind_msg(1, i + 10, true)).is_ok());
    }
    assert!(many.bind(&bind_msg(1, 99, true)).is_err());
}

fn host_cert(host_seed: u8, principal: &str, valid: std::ops::Range<u64>) -> KeyData {
    use russh::keys::ssh_key::certificate::Builder;
    use russh::keys::ssh_key::PrivateKey;
    let ca = PrivateKey::from(host(50));
    let mut b = Builder::new(vec![0u8; 16], key(host_seed), valid.start, valid.end).unwrap();
    b.cert_type(CertType::Host).unwrap();
    b.key_id("host").unwrap();
    b.valid_principal(principal).unwrap();
    KeyData::Certificate(Box::new(b.sign(&ca).unwrap()))
}

#[test]
fn host_ca_keyspecs_match_valid_host_certificates() {
    let now = 1_900_000_000;
    let blob = constraint_bytes(
        &hop_bytes("", "", &[]),
        &hop_bytes("", "target", &[(key(50), true)]),
    );
    let d = parse_destinations(&blob).unwrap();
    let bound = |hk: KeyData| {
        vec![SessionBinding {
            host_key: hk,
            session_id: vec![1; 32],
            forwarded: false,
        }]
    };
    let good = bound(host_cert(2, "target", now - 10..now + 10));
    assert!(identity_permitted(&d, &good, Some("u"), now).is_ok());
    // Wrong principal, expired, or the plain host key (the CA keyspec matches certs only).
    let other_name = bound(host_cert(2, "elsewhere", now - 10..now + 10));
    assert!(identity_permitted(&d, &other_name, Some("u"), now).is_err());
    let expired = bound(host_cert(2, "target", now - 10..now - 1));
    assert!(identity_permitted(&d, &expired, Some("u"), now).is_err());
    assert!(identity_permitted(&d, &bound(key(2)), Some("u"), now).is_err());
    // A host certificate binds with a signature by its key.
    let cert = host_cert(2, "target", now - 10..now + 10);
    let session_id = vec![4u8; 32];
    let mut b = Bindings::default();
    let bind = SessionBind {
        host_key: cert,
        signature: host(2).try_sign(&session_id).unwrap(),
        session_id,
        is_forwarding: false,
    };
    assert!(b.bind(&bind).is_ok());
}
