use proptest::prelude::*;
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::PrivateKey;

use super::*;
use crate::model::Login;

const H: Duration = Duration::from_secs(3600);

fn at(s: i64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + s * 1000)
}

fn secs(s: i64) -> u64 {
    (1_800_000_000 + s) as u64
}

fn alice() -> UserName {
    "alice".parse().unwrap()
}

fn gid(i: u64) -> GrantId {
    format!("00000000-0000-4000-8000-{i:012x}").parse().unwrap()
}

fn grant(i: u64, jump: bool, logins: &[&str], expires: i64) -> SshGrant {
    SshGrant {
        id: gid(i),
        jump,
        logins: logins.iter().map(|l| l.parse::<Login>().unwrap()).collect(),
        expires_at: at(expires),
        options: GrantOptions::default(),
    }
}

fn session() -> Uuid {
    Uuid::from_u128(0x1234)
}

#[test]
fn no_grant_no_certificate() {
    assert_eq!(
        plan(&alice(), &[], at(0), DEFAULT_MAX_VALIDITY, session()),
        Err(PlanError::NoSshGrant)
    );
    assert_eq!(
        plan(
            &alice(),
            &[grant(1, true, &[], 3600)],
            at(0),
            Duration::ZERO,
            session()
        ),
        Err(PlanError::ZeroValidity)
    );
}

#[test]
fn jump_only_grant_gives_the_user_name() {
    let p = plan(
        &alice(),
        &[grant(1, true, &[], 3600)],
        at(0),
        8 * H,
        session(),
    )
    .unwrap();
    assert_eq!(p.principals, ["alice"]);
    assert_eq!(p.valid_after, secs(-60));
    assert_eq!(p.valid_before, secs(3600));
    assert_eq!(
        p.key_id,
        "sallyport:alice:00000000-0000-0000-0000-000000001234"
    );
    assert_eq!(p.extensions(), ["permit-pty"]);
    assert_eq!(p.grants, [gid(1)]);
}

#[test]
fn validity_is_capped_by_the_maximum_and_the_earliest_principal() {
    let grants = [
        grant(1, true, &[], 20 * 3600),
        grant(2, false, &["root"], 2 * 3600),
        grant(3, false, &["root", "deploy"], 5 * 3600),
        grant(4, false, &["deploy"], 4 * 3600),
    ];
    let p = plan(&alice(), &grants, at(0), 8 * H, session()).unwrap();
    assert_eq!(p.principals, ["alice", "deploy", "root"]);
    // root lasts until 5 h (grant 3), deploy until 5 h, alice until 20 h: capped at 5 h.
    assert_eq!(p.valid_before, secs(5 * 3600));
    let p = plan(&alice(), &grants, at(0), H, session()).unwrap();
    assert_eq!(p.valid_before, secs(3600));
}

#[test]
fn forwarding_only_when_granted() {
    let mut g = grant(1, true, &[], 3600);
    g.options.port_forwarding = true;
    let p = plan(&alice(), &[g.clone()], at(0), 8 * H, session()).unwrap();
    assert_eq!(p.extensions(), ["permit-port-forwarding", "permit-pty"]);
    g.options.agent_forwarding = true;
    let p = plan(&alice(), &[g], at(0), 8 * H, session()).unwrap();
    assert_eq!(
        p.extensions(),
        [
            "permit-agent-forwarding",
            "permit-port-forwarding",
            "permit-pty"
        ]
    );
}

#[test]
fn signs_a_user_certificate_that_verifies() {
    let ca = PrivateKey::from(Ed25519Keypair::from_seed(&[1; 32]));
    let subject = PrivateKey::from(Ed25519Keypair::from_seed(&[2; 32]));
    let mut g = grant(1, false, &["root"], 3600);
    g.options.port_forwarding = true;
    let p = plan(&alice(), &[g], at(0), 8 * H, session()).unwrap();
    let cert = sign(&p, subject.public_key(), &ca, 42, [9; 32]).unwrap();
    assert_eq!(cert.cert_type(), CertType::User);
    assert_eq!(cert.serial(), 42);
    assert_eq!(cert.valid_principals(), ["alice", "root"]);
    assert_eq!(cert.key_id(), p.key_id);
    assert_eq!(cert.valid_after(), p.valid_after);
    assert_eq!(cert.valid_before(), p.valid_before);
    assert!(cert.critical_options().is_empty());
    let ext: Vec<&str> = cert.extensions().keys().map(String::as_str).collect();
    assert_eq!(ext, ["permit-port-forwarding", "permit-pty"]);
    assert_eq!(cert.signature_key(), ca.public_key().key_data());
    assert!(cert.verify_signature().is_ok());
    assert_eq!(cert.public_key(), subject.public_key().key_data());
    // The CA never certifies its own key.
    assert!(sign(&p, ca.public_key(), &ca, 1, [0; 32]).is_err());
}

fn arb_grant() -> impl Strategy<Value = SshGrant> {
    (
        1u64..50,
        any::<bool>(),
        proptest::collection::vec(
            prop::sample::select(vec!["root", "deploy", "alice", "pg"]),
            0..3,
        ),
        -100i64..100_000,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(i, jump, logins, exp, af, pf)| {
            let mut g = grant(i, jump || logins.is_empty(), &logins, exp);
            g.options = GrantOptions {
                agent_forwarding: af,
                port_forwarding: pf,
            };
            g
        })
}

proptest! {
    #[test]
    fn plan_follows_the_grants(
        grants in proptest::collection::vec(arb_grant(), 0..6),
        max in 1u64..50_000,
    ) {
        let now = at(0);
        let max = Duration::from_secs(max);
        let live: Vec<&SshGrant> = grants.iter().filter(|g| g.expires_at > now).collect();
        match plan(&alice(), &grants, now, max, session()) {
            Err(e) => {
                prop_assert_eq!(e, PlanError::NoSshGrant);
                // Refused only when nothing is live (or it ends within the current second).
                prop_assert!(live.iter().all(|g| g.expires_at.as_millis() / 1000 <= now.as_millis() / 1000));
            }
            Ok(p) => {
                prop_assert_eq!(p.principals[0].as_str(), "alice");
                let mut want: Vec<String> = live.iter().flat_map(|g| g.logins.iter().map(|l| l.to_string())).collect();
                want.push("alice".into());
                want.sort();
                want.dedup();
                let mut got = p.principals.clone();
                got.sort();
                prop_assert_eq!(got, want);
                prop_assert!(p.valid_before > secs(0));
                prop_assert!(p.valid_before <= secs(0) + max.as_secs());
                prop_assert!(live.iter().any(|g| g.expires_at.as_millis() / 1000 >= p.valid_before as i64));
                // Every principal keeps a grant for the whole validity.
                for pr in &p.principals {
                    let lasts = live.iter().filter(|g| pr == "alice" || g.logins.iter().any(|l| l.as_str() == pr));
                    prop_assert!(lasts.clone().any(|g| g.expires_at.as_millis() / 1000 >= p.valid_before as i64));
                }
                prop_assert_eq!(p.options.port_forwarding, live.iter().any(|g| g.options.port_forwarding));
                prop_assert_eq!(p.options.agent_forwarding, live.iter().any(|g| g.options.agent_forwarding));
                prop_assert!(p.extensions().contains(&PERMIT_PTY));
            }
        }
    }
}
