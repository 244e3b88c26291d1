//! The store and control-plane suite, run against both backends: SQLite in a temp dir and a
//! real PostgreSQL server started by the harness (a test fails, not skips, without it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use sallyport_core::api::{AuditQuery, CreateGrant, CreateTarget, CreateUser};
use sallyport_core::audit::ChainError;
use sallyport_core::feed::Change;
use sallyport_core::model::{Protocol, Role, Subject, UserState};
use sallyport_core::policy::{decide, Credential, Destination, Request};
use sallyport_core::time::Timestamp;
use sallyport_gateway::control::{Actor, Control, ControlError};
use sallyport_gateway::store::Store;
use sallyport_tests::backends::Backend;
use sallyport_tests::postgres::PgServer;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";

fn admin() -> Actor {
    Actor {
        name: "root-admin".into(),
        source: Some("192.0.2.7".parse().unwrap()),
    }
}

fn user_req(name: &str, groups: &[&str]) -> CreateUser {
    CreateUser {
        name: name.parse().unwrap(),
        roles: vec![Role::Engineer],
        groups: groups.iter().map(|g| g.parse().unwrap()).collect(),
    }
}

fn grant_req(subject: &str, object: &str) -> CreateGrant {
    CreateGrant {
        subject: subject.parse().unwrap(),
        object: object.parse().unwrap(),
        protocols: vec![],
        ports: None,
        logins: vec![],
        options: Default::default(),
        not_before: None,
        expires_at: None,
        duration_secs: None,
        reason: "INC-42 database migration".parse().unwrap(),
    }
}

async fn seed_admin(c: &Control) {
    let req = CreateUser {
        name: "root-admin".parse().unwrap(),
        roles: vec![Role::Admin],
        groups: vec![],
    };
    c.create_user(&Actor::system(), req).await.unwrap();
}

async fn head(c: &Control) -> u64 {
    c.store().journal_head().await.unwrap().seq
}

sallyport_tests::both_backends!(
    users_and_groups,
    keys,
    targets_and_grants,
    invalid_input_writes_nothing,
    journal_records_every_change,
    journal_search_filters,
    tampering_is_named,
    revocation_reaches_the_feed_and_the_snapshot,
    expiry_is_journaled_once,
    concurrent_writers_keep_one_chain,
    two_gateways_on_one_database_keep_one_chain,
    failed_policy_reload_fails_closed,
    reserved_and_busy_verify,
);

async fn users_and_groups(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    let alice = c
        .create_user(&admin(), user_req("alice", &["ops", "db"]))
        .await
        .unwrap();
    assert_eq!(alice.groups.len(), 2);
    let dup = c
        .create_user(&admin(), user_req("alice", &[]))
        .await
        .unwrap_err();
    assert!(matches!(dup, ControlError::Conflict(_)), "{dup:?}");
    let disabled = c
        .set_user_state(&admin(), &alice.name, UserState::Disabled)
        .await
        .unwrap();
    assert_eq!(disabled.state, UserState::Disabled);
    let stored = c.store().get_user(&alice.name).await.unwrap().unwrap();
    assert_eq!(stored.state, UserState::Disabled);
    c.set_user_groups(&admin(), &alice.name, ["ops".parse().unwrap()].into())
        .await
        .unwrap();
    let groups = c.store().list_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].0.as_str(), "ops");
    let missing = c
        .set_user_state(&admin(), &"nobody".parse().unwrap(), UserState::Disabled)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, ControlError::NotFound { kind: "user", .. }),
        "{missing:?}"
    );
    assert_eq!(c.store().list_users().await.unwrap().len(), 2);
}

async fn keys(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    c.create_user(&admin(), user_req("alice", &[]))
        .await
        .unwrap();
    let alice = "alice".parse().unwrap();
    let k = c.add_key(&admin(), &alice, KEY).await.unwrap();
    assert!(k.key.fingerprint().as_str().starts_with("SHA256:"));
    let dup = c.add_key(&admin(), &alice, KEY).await.unwrap_err();
    assert!(matches!(dup, ControlError::Conflict(_)), "{dup:?}");
    assert_eq!(c.store().list_keys(Some(&alice)).await.unwrap().len(), 1);
    assert_eq!(c.store().key_owners().await.unwrap().len(), 1);
    let removed = c.remove_key(&admin(), k.key.fingerprint()).await.unwrap();
    assert_eq!(removed.user, alice);
    assert!(c.store().list_keys(None).await.unwrap().is_empty());
    let again = c
        .remove_key(&admin(), k.key.fingerprint())
        .await
        .unwrap_err();
    assert!(
        matches!(again, ControlError::NotFound { kind: "key", .. }),
        "{again:?}"
    );
}

async fn targets_and_grants(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    c.create_user(&admin(), user_req("alice", &["ops"]))
        .await
        .unwrap();
    let t = CreateTarget {
        name: "db-1".parse().unwrap(),
        address: "10.0.12.7:5432".parse().unwrap(),
        host_key: Some(KEY.into()),
    };
    let target = c.create_target(&admin(), t).await.unwrap();
    assert!(target.host_key.is_some());
    let g = c
        .create_grant(&admin(), grant_req("alice", "db-1"))
        .await
        .unwrap();
    assert_eq!(
        g.ports.to_string(),
        "5432",
        "a target grant defaults to the target's port"
    );
    assert!(g.protocols.contains(Protocol::Ssh));
    assert_eq!(g.granted_by.as_str(), "root-admin");
    let hours = g.not_before.until(g.expires_at).as_secs() / 3600;
    assert_eq!(hours, 8, "default window is 8 hours");
    let group = c
        .create_grant(&admin(), grant_req("@ops", "10.0.0.0/16"))
        .await
        .unwrap();
    assert_eq!(group.ports.to_string(), "22");

    let busy = c
        .remove_target(&admin(), &"db-1".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(busy, ControlError::Conflict(_)), "{busy:?}");
    let revoked = c.revoke_grant(&admin(), g.id).await.unwrap();
    assert_eq!(revoked.revoked.as_ref().unwrap().1.as_str(), "root-admin");
    let twice = c.revoke_grant(&admin(), g.id).await.unwrap_err();
    assert!(matches!(twice, ControlError::Conflict(_)), "{twice:?}");
    c.remove_target(&admin(), &"db-1".parse().unwrap())
        .await
        .unwrap();
    assert!(c.store().list_targets().await.unwrap().is_empty());

    let listed = c
        .store()
        .list_grants(Some(&[Subject::Group("ops".parse().unwrap())]))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, group.id);
    assert!(c
        .store()
        .get_grant(g.id)
        .await
        .unwrap()
        .unwrap()
        .revoked
        .is_some());
}

async fn invalid_input_writes_nothing(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    c.create_user(&admin(), user_req("alice", &[]))
        .await
        .unwrap();
    let before = head(&c).await;
    let alice = "alice".parse().unwrap();

    let bad_key = c
        .add_key(&admin(), &alice, "ssh-ed25519 AAAAnotakey")
        .await
        .unwrap_err();
    assert!(matches!(bad_key, ControlError::Invalid(_)), "{bad_key:?}");
    let unknown_user = c
        .add_key(&admin(), &"bob".parse().unwrap(), KEY)
        .await
        .unwrap_err();
    assert!(
        matches!(unknown_user, ControlError::NotFound { kind: "user", .. }),
        "{unknown_user:?}"
    );
    let unknown_target = c
        .create_grant(&admin(), grant_req("alice", "db-9"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            unknown_target,
            ControlError::NotFound { kind: "target", .. }
        ),
        "{unknown_target:?}"
    );
    let unknown_group = c
        .create_grant(&admin(), grant_req("@nobody", "10.0.0.0/8"))
        .await
        .unwrap_err();
    assert!(
        matches!(unknown_group, ControlError::NotFound { kind: "group", .. }),
        "{unknown_group:?}"
    );
    let mut reversed = grant_req("alice", "10.0.0.0/8");
    reversed.not_before = Some(Timestamp::now().saturating_add(Duration::from_secs(3600)));
    reversed.expires_at = Some(Timestamp::now());
    assert!(matches!(
        c.create_grant(&admin(), reversed).await.unwrap_err(),
        ControlError::Invalid(_)
    ));
    let mut tcp = grant_req("alice", "10.0.0.0/8");
    tcp.protocols = vec![Protocol::Tcp];
    assert!(matches!(
        c.create_grant(&admin(), tcp).await.unwrap_err(),
        ControlError::Invalid(_)
    ));
    let mut proxy = grant_req("alice", "10.0.0.0/8");
    proxy.protocols = vec![Protocol::SshProxy];
    assert!(matches!(
        c.create_grant(&admin(), proxy).await.unwrap_err(),
        ControlError::Invalid(_)
    ));

    assert_eq!(head(&c).await, before, "refused changes journal nothing");
    assert!(
        c.store().list_grants(None).await.unwrap().is_empty(),
        "refused changes store nothing"
    );
    assert!(c.store().list_keys(None).await.unwrap().is_empty());
}

async fn journal_records_every_change(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    c.create_user(&admin(), user_req("alice", &[]))
        .await
        .unwrap();
    let alice = "alice".parse().unwrap();
    c.add_key(&admin(), &alice, KEY).await.unwrap();
    let g = c
        .create_grant(&admin(), grant_req("alice", "10.1.0.0/16"))
        .await
        .unwrap();
    c.revoke_grant(&admin(), g.id).await.unwrap();
    c.set_user_state(&admin(), &alice, UserState::Disabled)
        .await
        .unwrap();

    let q = AuditQuery {
        user: Some("alice".into()),
        ..AuditQuery::default()
    };
    let records = c.store().search_journal(&q).await.unwrap();
    let names: Vec<&str> = records.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "access.user.create",
            "access.key.add",
            "access.grant.create",
            "access.grant.revoke",
            "access.user.disable"
        ]
    );
    for r in &records {
        assert_eq!(r.actor, "root-admin");
        assert_eq!(r.source.as_deref(), Some("192.0.2.7"));
    }
    assert_eq!(records[2].data["grant"], g.id.to_string());
    let outcome = c.store().verify_journal().await.unwrap();
    assert_eq!(outcome.error(), None);
    assert_eq!(outcome.count(), 6);
}

async fn journal_search_filters(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    for i in 0..5 {
        c.create_user(&admin(), user_req(&format!("u{i}"), &[]))
            .await
            .unwrap();
    }
    c.create_target(
        &admin(),
        CreateTarget {
            name: "web".parse().unwrap(),
            address: "10.0.0.5:443".parse().unwrap(),
            host_key: None,
        },
    )
    .await
    .unwrap();
    let store = c.store();
    let by_type = store
        .search_journal(&AuditQuery {
            event_type: Some("access.user".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_type.len(), 6, "prefix match on the dotted name");
    let exact = store
        .search_journal(&AuditQuery {
            event_type: Some("access.target.create".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(exact.len(), 1);
    assert_eq!(exact[0].target.as_deref(), Some("web"));
    let no_partial = store
        .search_journal(&AuditQuery {
            event_type: Some("access.us".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(
        no_partial.is_empty(),
        "a prefix matches whole dotted segments only"
    );
    let page = store
        .search_journal(&AuditQuery {
            limit: Some(2),
            after_seq: Some(2),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
    let future = Timestamp::now().saturating_add(Duration::from_secs(60));
    let none = store
        .search_journal(&AuditQuery {
            since: Some(future),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    let all_until = store
        .search_journal(&AuditQuery {
            until: Some(future),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all_until.len(), 7);
}

/// Edits the journal behind the store's back, as an attacker with database access would.
async fn raw(b: &Backend, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&b.url).await.unwrap();
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

async fn tampering_is_named(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    for i in 0..6 {
        c.create_user(&admin(), user_req(&format!("u{i}"), &[]))
            .await
            .unwrap();
    }
    assert_eq!(c.store().verify_journal().await.unwrap().error(), None);

    raw(
        &b,
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 4",
    )
    .await;
    let e = c
        .store()
        .verify_journal()
        .await
        .unwrap()
        .error()
        .cloned()
        .unwrap();
    assert_eq!(e, ChainError::Altered { seq: 4 });
    assert_eq!(e.first_bad_seq(), 4);
    raw(
        &b,
        "UPDATE audit_events SET actor = 'root-admin' WHERE seq = 4",
    )
    .await;
    assert_eq!(
        c.store().verify_journal().await.unwrap().error(),
        None,
        "restoring the row restores the chain"
    );

    raw(&b, "DELETE FROM audit_events WHERE seq = 3").await;
    assert_eq!(
        c.store()
            .verify_journal()
            .await
            .unwrap()
            .error()
            .unwrap()
            .first_bad_seq(),
        3
    );

    let c2 = b.control().await.unwrap();
    raw(&b, "DELETE FROM audit_events WHERE seq >= 3").await;
    let e = c2
        .store()
        .verify_journal()
        .await
        .unwrap()
        .error()
        .cloned()
        .unwrap();
    assert!(
        matches!(
            e,
            ChainError::Truncated {
                head_seq: 7,
                last_seq: 2
            }
        ),
        "{e:?}"
    );
}

async fn revocation_reaches_the_feed_and_the_snapshot(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    c.create_user(&admin(), user_req("alice", &[]))
        .await
        .unwrap();
    let alice = "alice".parse().unwrap();
    let key = c.add_key(&admin(), &alice, KEY).await.unwrap();
    let g = c
        .create_grant(&admin(), grant_req("alice", "10.0.0.0/16"))
        .await
        .unwrap();
    let req = Request {
        user: alice,
        credential: Credential::Key(key.key.fingerprint().clone()),
        protocol: Protocol::Ssh,
        destination: Destination::Address("10.0.3.4".parse().unwrap()),
        port: 22,
        login: None,
    };
    let allowed = decide(&req, &c.snapshot(), Timestamp::now())
        .into_result()
        .unwrap();
    assert_eq!(allowed.grant(), g.id);

    let mut feed = c.subscribe();
    c.revoke_grant(&admin(), g.id).await.unwrap();
    let notice = tokio::time::timeout(Duration::from_secs(1), feed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notice.change, Change::GrantRevoked(g.id));
    assert!(notice.change.may_cut_access());
    let snap = c.snapshot();
    assert!(
        snap.version() >= notice.version,
        "the snapshot is in place before the notice"
    );
    assert!(snap.recheck(&allowed, Timestamp::now()).is_err());
    assert!(!decide(&req, &snap, Timestamp::now()).is_allowed());

    c.remove_key(&admin(), key.key.fingerprint()).await.unwrap();
    let notice = tokio::time::timeout(Duration::from_secs(1), feed.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(notice.change, Change::KeyRemoved { .. }));
}

async fn expiry_is_journaled_once(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    c.create_user(&admin(), user_req("alice", &[]))
        .await
        .unwrap();
    let mut req = grant_req("alice", "10.0.0.0/16");
    req.duration_secs = Some(1);
    let g = c.create_grant(&admin(), req).await.unwrap();
    assert_eq!(
        c.snapshot().next_transition_after(Timestamp::now()),
        Some(g.expires_at)
    );
    let mut feed = c.subscribe();
    assert_eq!(
        c.expire_due(Timestamp::now()).await.unwrap(),
        0,
        "not due yet"
    );
    let later = g.expires_at.saturating_add(Duration::from_millis(1));
    assert_eq!(c.expire_due(later).await.unwrap(), 1);
    assert_eq!(c.expire_due(later).await.unwrap(), 0, "recorded once");
    let notice = feed.recv().await.unwrap();
    assert_eq!(notice.change, Change::GrantExpired(g.id));
    let q = AuditQuery {
        event_type: Some("access.grant.expire".into()),
        ..AuditQuery::default()
    };
    let records = c.store().search_journal(&q).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].actor, "sallyportd");
}

async fn concurrent_writers_keep_one_chain(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let c = std::sync::Arc::clone(&c);
        tasks.push(tokio::spawn(async move {
            c.create_user(&admin(), user_req(&format!("w{i}"), &["team"]))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let outcome = c.store().verify_journal().await.unwrap();
    assert_eq!(outcome.error(), None);
    assert_eq!(outcome.count(), 21);
}

#[tokio::test]
async fn postgres_over_verified_tls() {
    let server = PgServer::shared_tls().unwrap_or_else(|e| panic!("PostgreSQL is required: {e:#}"));
    let url = server.fresh_database().unwrap();
    assert!(url.contains("sslmode=verify-full"));
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let c = Control::open(store).await.unwrap();
    seed_admin(&c).await;
    assert_eq!(c.store().verify_journal().await.unwrap().count(), 1);

    // The same server, but trusting another CA: the connection must be refused.
    let other = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&other).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong-ca.pem");
    std::fs::write(&wrong, ca.pem()).unwrap();
    let ca_path = server.ca_cert_path().unwrap();
    let bad_url = url.replace(&ca_path.display().to_string(), &wrong.display().to_string());
    assert_ne!(bad_url, url);
    let err = Store::connect(&bad_url).await.unwrap_err().to_string();
    assert!(err.contains("cannot connect"), "{err}");
    assert!(
        !err.contains(&password_of(&url)),
        "the password never appears in errors: {err}"
    );
}

fn password_of(url: &str) -> String {
    url::Url::parse(url).unwrap().password().unwrap().to_owned()
}

#[tokio::test]
async fn unsupported_urls_are_refused_by_name() {
    let err = Store::connect("mysql://u:secretpw@h/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsupported database URL"), "{err}");
    assert!(!err.contains("secretpw"), "{err}");
}

async fn two_gateways_on_one_database_keep_one_chain(b: Backend) {
    // Two stores, two pools, two writer mutexes: only the database orders them (PostgreSQL's
    // row lock on journal_head, SQLite's write lock taken by BEGIN IMMEDIATE).
    let a = b.control().await.unwrap();
    let other = b.control().await.unwrap();
    seed_admin(&a).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let c = std::sync::Arc::clone(if i % 2 == 0 { &a } else { &other });
        tasks.push(tokio::spawn(async move {
            c.create_user(&admin(), user_req(&format!("g{i}"), &[]))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let outcome = other.store().verify_journal().await.unwrap();
    assert_eq!(outcome.error(), None);
    assert_eq!(outcome.count(), 17);
}

async fn failed_policy_reload_fails_closed(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    c.create_user(&admin(), user_req("alice", &[]))
        .await
        .unwrap();
    let alice: sallyport_core::model::UserName = "alice".parse().unwrap();
    c.create_grant(&admin(), grant_req("alice", "10.0.0.0/16"))
        .await
        .unwrap();
    let req = Request {
        user: alice.clone(),
        credential: Credential::Certificate { serial: 1 },
        protocol: Protocol::Ssh,
        destination: Destination::Address("10.0.0.9".parse().unwrap()),
        port: 22,
        login: None,
    };
    assert!(decide(&req, &c.snapshot(), Timestamp::now()).is_allowed());

    // A row the policy cannot read (edited behind the gateway's back) breaks the reload.
    raw(
        &b,
        "UPDATE users SET roles = 'superuser' WHERE name = 'alice'",
    )
    .await;
    let mut feed = c.subscribe();
    let err = c
        .create_user(&admin(), user_req("bob", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, ControlError::PolicyReload(_)), "{err:?}");
    assert!(
        c.store()
            .get_user(&"bob".parse().unwrap())
            .await
            .unwrap()
            .is_some(),
        "the change itself was committed"
    );
    assert!(c.is_degraded());
    assert!(
        !decide(&req, &c.snapshot(), Timestamp::now()).is_allowed(),
        "deny-all while the policy is unknown"
    );
    let notice = feed.recv().await.unwrap();
    assert_eq!(
        notice.version,
        c.snapshot().version(),
        "data paths are told to re-check"
    );

    raw(
        &b,
        "UPDATE users SET roles = 'engineer' WHERE name = 'alice'",
    )
    .await;
    c.recover().await.unwrap();
    assert!(!c.is_degraded());
    assert!(decide(&req, &c.snapshot(), Timestamp::now()).is_allowed());
}

async fn reserved_and_busy_verify(b: Backend) {
    let c = b.control().await.unwrap();
    seed_admin(&c).await;
    let reserved = c
        .create_user(&admin(), user_req("sallyportd", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(reserved, ControlError::Conflict(_)),
        "{reserved:?}"
    );
    // Verifying while writers append never reports an intact journal as broken.
    let writer = {
        let c = std::sync::Arc::clone(&c);
        tokio::spawn(async move {
            for i in 0..30 {
                c.create_user(&admin(), user_req(&format!("v{i}"), &[]))
                    .await
                    .unwrap();
            }
        })
    };
    for _ in 0..10 {
        assert_eq!(c.store().verify_journal().await.unwrap().error(), None);
    }
    writer.await.unwrap();
    assert_eq!(c.store().verify_journal().await.unwrap().error(), None);
}
