//! `sallyport login` over the API, against an in-process dev gateway over real TLS: the
//! challenge-response login (replay, wrong key, forged signature, disabled user, rate limit)
//! and certificate issuance (principals and validity from the grants, checked with
//! `ssh-keygen -L` and against the user CA's public key).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::process::Command;
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::{Certificate, LineEnding, PrivateKey, PublicKey, SshSig};
use sallyport_core::login::{HASH, NAMESPACE};
use sallyport_core::model::Fingerprint;
use sallyport_core::time::Timestamp;
use sallyport_gateway::dev::{DevGateway, DevOptions};
use serde_json::{json, Value};

struct Fixture {
    gw: DevGateway,
    http: Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let gw = DevGateway::start(DevOptions {
        state_dir: dir.path().join("state"),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ssh_listen: "127.0.0.1:0".parse().unwrap(),
    })
    .await
    .unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(gw.ca_cert_path()).unwrap()).unwrap();
    let http = Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Fixture {
        gw,
        http,
        _dir: dir,
    }
}

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn openssh(k: &PublicKey) -> String {
    k.to_openssh().unwrap()
}

fn sign(k: &PrivateKey, text: &str) -> String {
    SshSig::sign(k, NAMESPACE, HASH, text.as_bytes())
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap()
}

impl Fixture {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.gw.api_url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        let (s, v) = self
            .call(method, path, Some(&self.gw.admin_token()), Some(body))
            .await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }

    /// An engineer with key `seed` registered.
    async fn engineer(&self, name: &str, seed: u8) {
        self.admin(
            Method::POST,
            "/v1/users",
            json!({"name": name, "roles": ["engineer"]}),
        )
        .await;
        self.admin(
            Method::POST,
            &format!("/v1/users/{name}/keys"),
            json!({"public_key": openssh(key(seed).public_key())}),
        )
        .await;
    }

    async fn challenge(&self, user: &str, keys: &[&PrivateKey]) -> Value {
        let fps: Vec<String> = keys
            .iter()
            .map(|k| Fingerprint::of(k.public_key()).to_string())
            .collect();
        let (s, v) = self
            .call(
                Method::POST,
                "/v1/login/challenge",
                None,
                Some(json!({"user": user, "keys": fps})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn answer(&self, user: &str, challenge: &str, k: &PrivateKey) -> (StatusCode, Value) {
        let body = json!({
            "user": user,
            "challenge": challenge,
            "public_key": openssh(k.public_key()),
            "signature": sign(k, challenge),
        });
        self.call(Method::POST, "/v1/login", None, Some(body)).await
    }

    async fn login(&self, user: &str, k: &PrivateKey) -> String {
        let c = self.challenge(user, &[k]).await;
        let (s, v) = self.answer(user, c["challenge"].as_str().unwrap(), k).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    async fn events(&self, kind: &str) -> Vec<Value> {
        let (s, v) = self
            .call(
                Method::GET,
                &format!("/v1/audit/events?type={kind}"),
                Some(&self.gw.admin_token()),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["events"].as_array().unwrap().clone()
    }
}

fn refused(resp: &(StatusCode, Value), needle: &str) {
    assert_eq!(resp.0, StatusCode::UNAUTHORIZED, "{:?}", resp.1);
    let msg = resp.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
}

#[tokio::test]
async fn challenge_response_login_refuses_replay_wrong_keys_and_disabled_users() {
    let f = start().await;
    f.engineer("alice", 1).await;
    let alice = key(1);
    let stranger = key(9);

    // The hint says which keys are registered.
    let c = f.challenge("alice", &[&stranger, &alice]).await;
    assert_eq!(c["namespace"], NAMESPACE);
    assert_eq!(
        c["accepted_keys"],
        json!([Fingerprint::of(alice.public_key()).to_string()])
    );
    let text = c["challenge"].as_str().unwrap().to_owned();

    // A valid answer gives a token that works.
    let (s, v) = f.answer("alice", &text, &alice).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["roles"], json!(["engineer"]));
    let token = v["token"].as_str().unwrap();
    let who = f.call(Method::GET, "/v1/whoami", Some(token), None).await;
    assert_eq!(who.1["user"], "alice", "{:?}", who.1);

    // The same challenge again is refused.
    refused(&f.answer("alice", &text, &alice).await, "already used");

    // A key not registered to alice, with a valid signature, is refused.
    let c = f.challenge("alice", &[]).await;
    let text = c["challenge"].as_str().unwrap().to_owned();
    refused(&f.answer("alice", &text, &stranger).await, "not registered");
    // A signature over something else is refused, and so is a challenge for another user.
    let body = json!({
        "user": "alice", "challenge": text,
        "public_key": openssh(alice.public_key()), "signature": sign(&alice, "other"),
    });
    refused(
        &f.call(Method::POST, "/v1/login", None, Some(body)).await,
        "does not verify",
    );
    f.engineer("bob", 2).await;
    refused(&f.answer("bob", &text, &key(2)).await, "another user");
    // A tampered challenge is refused.
    let forged = text.replacen("alice", "alicf", 1);
    refused(&f.answer("alice", &forged, &alice).await, "not issued");

    // A disabled user cannot log in, and the hint no longer lists their key.
    let c = f.challenge("alice", &[&alice]).await;
    f.admin(Method::POST, "/v1/users/alice/disable", json!({}))
        .await;
    refused(
        &f.answer("alice", c["challenge"].as_str().unwrap(), &alice)
            .await,
        "disabled",
    );
    assert_eq!(
        f.challenge("alice", &[&alice]).await["accepted_keys"],
        json!([])
    );

    // Journaled.
    let ok = f.events("api.login.success").await;
    assert_eq!(ok.len(), 1, "{ok:?}");
    assert_eq!(ok[0]["user"], "alice");
    let reasons: Vec<String> = f
        .events("api.login.failure")
        .await
        .iter()
        .map(|e| e["data"]["reason"].as_str().unwrap_or("?").to_owned())
        .collect();
    for want in [
        "challenge-replayed",
        "key-not-registered",
        "signature-invalid",
        "challenge-wrong-user",
        "challenge-forged",
        "user-disabled",
    ] {
        assert!(
            reasons.iter().any(|r| r == want),
            "{want} not in {reasons:?}"
        );
    }
    f.gw.shutdown().await;
}

#[tokio::test]
async fn repeated_failures_are_rate_limited() {
    let f = start().await;
    f.engineer("carol", 3).await;
    let wrong = key(8);
    let mut failures = 0;
    let limited_at = loop {
        assert!(failures <= 12, "no 429 after {failures} failures");
        let c = f
            .call(
                Method::POST,
                "/v1/login/challenge",
                None,
                Some(json!({"user": "carol"})),
            )
            .await;
        if c.0 == StatusCode::TOO_MANY_REQUESTS {
            break c;
        }
        let r = f
            .answer("carol", c.1["challenge"].as_str().unwrap(), &wrong)
            .await;
        if r.0 == StatusCode::TOO_MANY_REQUESTS {
            break r;
        }
        assert_eq!(r.0, StatusCode::UNAUTHORIZED, "{:?}", r.1);
        failures += 1;
    };
    assert!(failures >= 9, "limited after only {failures} failures");
    assert!(
        limited_at.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many failed logins"),
        "{:?}",
        limited_at.1
    );
    let reasons = f.events("api.login.failure").await;
    assert!(reasons.len() >= failures, "{reasons:?}");
    f.gw.shutdown().await;
}

/// `ssh-keygen -L -f FILE`'s fields.
fn keygen_list(cert_line: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id-cert.pub");
    std::fs::write(&path, format!("{cert_line}\n")).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn certificates_follow_the_grants() {
    let f = start().await;
    f.engineer("dave", 4).await;
    f.engineer("erin", 5).await;
    f.admin(
        Method::POST,
        "/v1/targets",
        json!({"name": "db-1", "address": "127.0.0.1:22"}),
    )
    .await;
    f.admin(
        Method::POST,
        "/v1/grants",
        json!({"subject": "dave", "object": "db-1", "protocols": ["ssh"], "duration_secs": 6 * 3600,
               "reason": "INC-1", "options": {"port_forwarding": true}}),
    )
    .await;
    let proxy = f
        .admin(
            Method::POST,
            "/v1/grants",
            json!({"subject": "dave", "object": "db-1", "protocols": ["ssh-proxy"],
               "logins": ["root", "deploy"], "duration_secs": 2 * 3600, "reason": "INC-2"}),
        )
        .await;
    assert_eq!(
        proxy["options"],
        json!({"agent_forwarding": false, "port_forwarding": false})
    );

    let token = f.login("dave", &key(4)).await;
    let subject = key(40);
    let before = Timestamp::now();
    let (s, v) = f
        .call(
            Method::POST,
            "/v1/ssh/certificate",
            Some(&token),
            Some(json!({"public_key": openssh(subject.public_key())})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["principals"], json!(["dave", "deploy", "root"]));
    assert_eq!(
        v["extensions"],
        json!(["permit-port-forwarding", "permit-pty"])
    );
    let cert = Certificate::from_openssh(v["certificate"].as_str().unwrap()).unwrap();
    // Valid until the proxy grant's end (2 h), not the 8 h maximum or the jump grant's 6 h.
    let two_h = (before.as_millis() / 1000 + 2 * 3600) as u64;
    assert!(
        cert.valid_before() >= two_h - 5 && cert.valid_before() <= two_h + 5,
        "{} vs {two_h}",
        cert.valid_before()
    );
    assert!(cert.valid_after() <= (before.as_millis() / 1000 - 59) as u64);
    assert_eq!(cert.public_key(), subject.public_key().key_data());
    assert!(
        cert.key_id().starts_with("sallyport:dave:"),
        "{}",
        cert.key_id()
    );

    // Signed by the CA the gateway publishes.
    let (s, ca) = f
        .call(Method::GET, "/v1/ssh/user-ca", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{ca}");
    let ca_key = PublicKey::from_openssh(ca["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(cert.signature_key(), ca_key.key_data());
    assert!(cert.verify_signature().is_ok());

    // OpenSSH reads it the same way.
    let listed = keygen_list(v["certificate"].as_str().unwrap());
    assert!(
        listed.contains("Type: ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!(
            "Signing CA: ED25519 {}",
            ca["fingerprint"].as_str().unwrap()
        )),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("Serial: {}", v["serial"])),
        "{listed}"
    );
    let principals: Vec<&str> = listed
        .lines()
        .skip_while(|l| !l.trim().starts_with("Principals:"))
        .skip(1)
        .take_while(|l| !l.trim().starts_with("Critical Options:"))
        .map(str::trim)
        .collect();
    assert_eq!(principals, ["dave", "deploy", "root"], "{listed}");
    let extensions: Vec<&str> = listed
        .lines()
        .skip_while(|l| !l.trim().starts_with("Extensions:"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        extensions,
        ["permit-port-forwarding", "permit-pty"],
        "{listed}"
    );
    assert!(!listed.contains("permit-agent-forwarding"), "{listed}");

    // Journaled with what it says.
    let issued = f.events("ssh.certificate.issue").await;
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["data"]["serial"], v["serial"], "{issued:?}");
    assert_eq!(issued[0]["data"]["principals"], v["principals"]);

    // Without an SSH grant: a clear refusal.
    let erin = f.login("erin", &key(5)).await;
    let (s, v) = f
        .call(
            Method::POST,
            "/v1/ssh/certificate",
            Some(&erin),
            Some(json!({"public_key": openssh(key(50).public_key())})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("no grant"),
        "{v}"
    );
    // A certificate is not a key to certify.
    let (s, _) = f
        .call(
            Method::POST,
            "/v1/ssh/certificate",
            Some(&token),
            Some(json!({"public_key": cert.to_openssh().unwrap()})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    f.gw.shutdown().await;
}

/// A challenge is single use on both store backends (several gateways share PostgreSQL).
#[tokio::test]
async fn used_challenges_on_sqlite_and_postgres() {
    use sallyport_gateway::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let pg = sallyport_tests::postgres::PgServer::shared()
        .unwrap_or_else(|e| panic!("PostgreSQL is required: {e:#}"));
    let urls = [
        format!("sqlite://{}", dir.path().join("s.db").display()),
        pg.fresh_database().unwrap(),
    ];
    for url in urls {
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let alice = "alice".parse().unwrap();
        let now = Timestamp::now();
        let exp = now.saturating_add(Duration::from_secs(60));
        assert!(
            store
                .claim_login_challenge("n1", &alice, exp, now)
                .await
                .unwrap(),
            "{url}"
        );
        assert!(
            !store
                .claim_login_challenge("n1", &alice, exp, now)
                .await
                .unwrap(),
            "{url}"
        );
        assert!(store
            .claim_login_challenge("n2", &alice, exp, now)
            .await
            .unwrap());
        // Expired rows are cleared; the MAC refuses their challenges anyway.
        let later = exp.saturating_add(Duration::from_secs(1));
        assert!(store
            .claim_login_challenge("n1", &alice, later, later)
            .await
            .unwrap());
        store.close().await;
    }
}
