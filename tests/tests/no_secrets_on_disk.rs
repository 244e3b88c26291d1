//! After a dev gateway has run (and done admin work), no private key material exists anywhere
//! in its state directory: no PEM or OpenSSH private key blocks, and none of the secrets' bytes,
//! raw, base64 or hex, in any file (the SQLite database and its WAL included).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use sallyport_core::api::{CreateGrant, CreateUser};
use sallyport_core::model::Role;
use sallyport_gateway::control::Actor;
use sallyport_gateway::dev::{DevGateway, DevOptions};
use sallyport_gateway::secrets::SecretName;
use sallyport_tests::leaks::{assert_absent, contains, read_tree, Needles};

#[tokio::test]
async fn dev_state_dir_holds_no_private_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let gw = DevGateway::start(DevOptions {
        state_dir: state.clone(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ssh_listen: "127.0.0.1:0".parse().unwrap(),
    })
    .await
    .unwrap();
    let secrets: Vec<(SecretName, Vec<u8>)> = SecretName::ALL
        .iter()
        .map(|n| (*n, gw.gateway().secrets().get(*n).expose_secret().to_vec()))
        .collect();
    let host_key = gw.gateway().secrets().ssh_host_private_key();
    let host_key_pem = host_key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .unwrap()
        .to_string();
    let control = gw.gateway().control().clone();
    let actor = Actor::system();
    control
        .create_user(
            &actor,
            CreateUser {
                name: "alice".parse().unwrap(),
                roles: vec![Role::Engineer],
                groups: vec![],
            },
        )
        .await
        .unwrap();
    let grant = CreateGrant {
        subject: "alice".parse().unwrap(),
        object: "10.0.0.0/16".parse().unwrap(),
        protocols: vec![],
        ports: None,
        logins: vec![],
        options: Default::default(),
        not_before: None,
        expires_at: None,
        duration_secs: None,
        reason: "check".parse().unwrap(),
    };
    let actor = Actor {
        name: "admin".into(),
        source: None,
    };
    control.create_grant(&actor, grant).await.unwrap();
    // Read every file while running (the WAL holds the newest pages) and after the stop.
    let mut snapshots: Vec<(std::path::PathBuf, Vec<u8>)> = read_tree(&state);
    let running = snapshots.len();
    gw.shutdown().await;
    snapshots.extend(read_tree(&state));
    assert!(
        snapshots.iter().any(|(p, _)| p.ends_with("sallyport.db")),
        "the scan covers the database"
    );
    assert!(running >= 3, "database, CA and token at least");

    let mut needles = Needles::new();
    for (name, bytes) in &secrets {
        needles.secret(format!("{name:?}"), bytes);
    }
    let key_body: String = host_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    needles.literal("host key OpenSSH body", &key_body.as_bytes()[..40]);
    assert_absent(&snapshots, &needles);
    // The needles would be found if they were there: the scanner is not blind.
    let probe = [b"xx".as_slice(), &secrets[0].1, b"yy"].concat();
    assert!(contains(&probe, &secrets[0].1));
}
