//! What the SSH suites share: a dev gateway with users, keys and grants made through the
//! control plane, certificates signed by its user CA, and journal look-ups.

#![allow(dead_code)] // Each suite uses part of it.

pub mod client;
pub mod jump;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{Certificate, PrivateKey};
use sallyport_core::api::{CreateGrant, CreateUser};
use sallyport_core::audit::Record;
use sallyport_core::model::{
    Fingerprint, GrantId, GrantObject, PortSpec, Protocol, Role, Subject, UserName,
};
use sallyport_gateway::control::{Actor, Control};
use sallyport_gateway::dev::{DevGateway, DevOptions};

/// A dev gateway in a temp dir, SSH and API on free loopback ports.
pub struct Lab {
    pub gw: DevGateway,
    pub dir: tempfile::TempDir,
}

/// A user with one registered ed25519 key.
pub struct TestUser {
    pub name: UserName,
    pub key: PrivateKey,
}

impl TestUser {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.key.public_key())
    }
}

/// A fresh ed25519 key.
pub fn new_key() -> PrivateKey {
    let mut seed = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut seed);
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

pub fn admin() -> Actor {
    Actor {
        name: "admin".into(),
        source: None,
    }
}

impl Lab {
    pub async fn start() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let gw = DevGateway::start(DevOptions {
            state_dir: dir.path().join("state"),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            ssh_listen: "127.0.0.1:0".parse().unwrap(),
        })
        .await
        .unwrap();
        Lab { gw, dir }
    }

    pub fn control(&self) -> &Arc<Control> {
        self.gw.gateway().control()
    }

    /// An engineer with a fresh registered key.
    pub async fn user(&self, name: &str) -> TestUser {
        let name: UserName = name.parse().unwrap();
        self.control()
            .create_user(
                &admin(),
                CreateUser {
                    name: name.clone(),
                    roles: vec![Role::Engineer],
                    groups: Vec::new(),
                },
            )
            .await
            .unwrap();
        let key = new_key();
        let line = key.public_key().to_openssh().unwrap();
        self.control()
            .add_key(&admin(), &name, &line)
            .await
            .unwrap();
        TestUser { name, key }
    }

    /// An `ssh` grant for `user` to `object` (a target name or a CIDR) on `ports`, for
    /// `duration`.
    pub async fn grant(
        &self,
        user: &UserName,
        object: &str,
        ports: &str,
        duration: Duration,
    ) -> GrantId {
        let grant = self
            .control()
            .create_grant(
                &admin(),
                CreateGrant {
                    subject: Subject::User(user.clone()),
                    object: object.parse::<GrantObject>().unwrap(),
                    protocols: vec![Protocol::Ssh],
                    ports: Some(ports.parse::<PortSpec>().unwrap()),
                    logins: Vec::new(),
                    options: Default::default(),
                    not_before: None,
                    expires_at: None,
                    duration_secs: Some(duration.as_secs()),
                    reason: "test".parse().unwrap(),
                },
            )
            .await
            .unwrap();
        grant.id
    }

    /// Every journal record named `event`, oldest first.
    pub async fn events(&self, event: &str) -> Vec<Record> {
        self.control()
            .store()
            .journal_after(0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.event == event)
            .collect()
    }

    /// Waits until a record named `event` satisfies `pred`; returns it.
    pub async fn wait_event(
        &self,
        event: &str,
        within: Duration,
        pred: impl Fn(&Record) -> bool,
    ) -> Record {
        let deadline = Instant::now() + within;
        loop {
            if let Some(r) = self.events(event).await.into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no {event} record within {within:?}; journal: {:#?}",
                self.events_brief().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `name data` of every record, for failure messages.
    pub async fn events_brief(&self) -> Vec<String> {
        self.control()
            .store()
            .journal_after(0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {}", r.event, r.data))
            .collect()
    }

    /// A user certificate for `subject`, signed by `ca` (the gateway's user CA unless a test
    /// wants another), valid from `after` to `before` (Unix seconds).
    pub fn certificate(
        &self,
        subject: &PrivateKey,
        principal: &str,
        ca: &PrivateKey,
        after: u64,
        before: u64,
    ) -> Certificate {
        let mut nonce = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut b = Builder::new(
            nonce,
            subject.public_key().key_data().clone(),
            after,
            before,
        )
        .unwrap();
        b.serial(4242).unwrap();
        b.key_id(format!("{principal}@test")).unwrap();
        b.cert_type(CertType::User).unwrap();
        b.valid_principal(principal).unwrap();
        for ext in ["permit-port-forwarding", "permit-pty"] {
            b.extension(ext, "").unwrap();
        }
        b.sign(ca).unwrap()
    }

    /// The gateway's user CA (in memory; never written to disk).
    pub fn user_ca(&self) -> PrivateKey {
        self.gw.gateway().secrets().user_ca_private_key()
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
