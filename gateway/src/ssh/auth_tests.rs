//! The certificate and key rules, one by one, on certificates made in memory.

use std::collections::BTreeSet;

use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::PrivateKey;
use sallyport_core::model::{Role, User, UserState};
use sallyport_core::time::Timestamp;

use super::*;

const NOW: u64 = 1_800_000_000;

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn user(name: &str, state: UserState) -> User {
    User {
        name: name.parse().unwrap(),
        roles: BTreeSet::from([Role::Engineer]),
        groups: BTreeSet::new(),
        state,
        created_at: Timestamp::from_millis(0),
    }
}

/// alice (active, owns key 1), bob (disabled, owns key 2).
fn world() -> Snapshot {
    let fp = |seed| Fingerprint::of(key(seed).public_key());
    Snapshot::compile(
        1,
        &[
            user("alice", UserState::Active),
            user("bob", UserState::Disabled),
        ],
        &[
            ("alice".parse().unwrap(), fp(1)),
            ("bob".parse().unwrap(), fp(2)),
        ],
        &[],
        &[],
    )
}

struct Cert {
    principals: Vec<&'static str>,
    after: u64,
    before: u64,
    kind: CertType,
    options: Vec<(&'static str, &'static str)>,
    extensions: Vec<&'static str>,
}

impl Default for Cert {
    fn default() -> Self {
        Self {
            principals: vec!["alice"],
            after: NOW - 60,
            before: NOW + 3600,
            kind: CertType::User,
            options: Vec::new(),
            extensions: vec![PERMIT_PORT_FORWARDING],
        }
    }
}

impl Cert {
    fn sign(self, subject: &PrivateKey, ca: &PrivateKey) -> Certificate {
        let mut b = Builder::new(
            [7u8; 16],
            subject.public_key().key_data().clone(),
            self.after,
            self.before,
        )
        .unwrap();
        b.serial(42).unwrap();
        b.key_id("alice@laptop").unwrap();
        b.cert_type(self.kind).unwrap();
        if self.principals.is_empty() {
            // OpenSSH reads an empty list as "any user"; the gateway refuses it.
            b.all_principals_valid().unwrap();
        }
        for p in self.principals {
            b.valid_principal(p).unwrap();
        }
        for (k, v) in self.options {
            b.critical_option(k, v).unwrap();
        }
        for e in self.extensions {
            b.extension(e, "").unwrap();
        }
        b.sign(ca).unwrap()
    }
}

fn check(cert: &Certificate, ca: &PrivateKey, source: &str) -> Result<Identity, AuthRefusal> {
    check_certificate(
        &world(),
        &"alice".parse().unwrap(),
        cert,
        ca.public_key(),
        source.parse().unwrap(),
        NOW,
    )
}

#[test]
fn a_good_certificate_logs_in_with_its_serial() {
    let ca = key(9);
    let id = check(&Cert::default().sign(&key(5), &ca), &ca, "10.0.0.1").unwrap();
    assert_eq!(id.user.as_str(), "alice");
    assert_eq!(id.credential, Credential::Certificate { serial: 42 });
    assert_eq!(id.fingerprint, Fingerprint::of(key(5).public_key()));
    assert_eq!(id.method(), "certificate");
    let info = id.certificate.unwrap();
    assert!(info.permits_forwarding);
    assert_eq!(info.key_id, "alice@laptop");
    assert_eq!(info.valid_before, NOW + 3600);
}

#[test]
fn certificate_rules() {
    let ca = key(9);
    let subject = key(5);
    let cases: Vec<(Cert, AuthRefusal)> = vec![
        (
            Cert {
                before: NOW,
                ..Cert::default()
            },
            AuthRefusal::CertificateExpired,
        ),
        (
            Cert {
                after: NOW + 1,
                ..Cert::default()
            },
            AuthRefusal::CertificateExpired,
        ),
        (
            Cert {
                principals: vec!["bob", "root"],
                ..Cert::default()
            },
            AuthRefusal::CertificatePrincipal,
        ),
        (
            Cert {
                principals: vec![],
                ..Cert::default()
            },
            AuthRefusal::CertificatePrincipal,
        ),
        (
            Cert {
                kind: CertType::Host,
                ..Cert::default()
            },
            AuthRefusal::CertificateType,
        ),
        (
            Cert {
                options: vec![("force-command", "/bin/true")],
                ..Cert::default()
            },
            AuthRefusal::CertificateOption("force-command".into()),
        ),
        (
            Cert {
                options: vec![("verify-required", "")],
                ..Cert::default()
            },
            AuthRefusal::CertificateOption("verify-required".into()),
        ),
        (
            Cert {
                options: vec![("source-address", "192.168.0.0/16,10.9.9.9")],
                ..Cert::default()
            },
            AuthRefusal::CertificateSourceAddress,
        ),
        (
            Cert {
                options: vec![("source-address", "10.0.0.0/8,garbage")],
                ..Cert::default()
            },
            AuthRefusal::CertificateSourceAddress,
        ),
    ];
    for (cert, want) in cases {
        let got = check(&cert.sign(&subject, &ca), &ca, "10.0.0.1");
        assert_eq!(got, Err(want.clone()), "{}", want.code());
    }
    let ok = Cert {
        options: vec![("source-address", "192.168.0.0/16,10.0.0.0/8")],
        ..Cert::default()
    };
    assert!(check(&ok.sign(&subject, &ca), &ca, "10.0.0.1").is_ok());
    assert!(check(&Cert::default().sign(&subject, &ca), &ca, "::ffff:10.0.0.1").is_ok());
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let ca = key(9);
    let rogue = key(8);
    let cert = Cert::default().sign(&key(5), &rogue);
    assert_eq!(
        check(&cert, &ca, "10.0.0.1"),
        Err(AuthRefusal::CertificateAuthority)
    );
}

#[test]
fn certificate_without_forwarding_logs_in_and_says_so() {
    let ca = key(9);
    let cert = Cert {
        extensions: vec!["permit-pty"],
        ..Cert::default()
    }
    .sign(&key(5), &ca);
    let id = check(&cert, &ca, "10.0.0.1").unwrap();
    assert!(!id.certificate.unwrap().permits_forwarding);
}

#[test]
fn certificate_for_a_disabled_user_is_refused() {
    let ca = key(9);
    let cert = Cert {
        principals: vec!["bob"],
        ..Cert::default()
    }
    .sign(&key(5), &ca);
    let got = check_certificate(
        &world(),
        &"bob".parse().unwrap(),
        &cert,
        ca.public_key(),
        "10.0.0.1".parse().unwrap(),
        NOW,
    );
    assert_eq!(got, Err(AuthRefusal::UserDisabled));
}

#[test]
fn keys_must_be_registered_to_an_active_user() {
    let snap = world();
    let alice: UserName = "alice".parse().unwrap();
    let bob: UserName = "bob".parse().unwrap();
    let ed = Algorithm::Ed25519;
    let id = check_key(&snap, &alice, key(1).public_key(), &ed).unwrap();
    assert_eq!(
        id.credential,
        Credential::Key(Fingerprint::of(key(1).public_key()))
    );
    assert_eq!(id.method(), "publickey");
    assert_eq!(
        check_key(&snap, &alice, key(2).public_key(), &ed),
        Err(AuthRefusal::KeyNotRegistered)
    );
    assert_eq!(
        check_key(&snap, &bob, key(2).public_key(), &ed),
        Err(AuthRefusal::UserDisabled)
    );
    let sha1 = Algorithm::Rsa { hash: None };
    assert!(matches!(
        check_offer(&snap, &alice, &sha1),
        Err(AuthRefusal::Algorithm(_))
    ));
    assert_eq!(
        check_offer(&snap, &"carol".parse().unwrap(), &ed),
        Err(AuthRefusal::UnknownUser)
    );
    assert_eq!(check_offer(&snap, &alice, &ed), Ok(()));
    assert_eq!(
        parse_user("Robert'); DROP"),
        Err(AuthRefusal::InvalidUserName)
    );
}
