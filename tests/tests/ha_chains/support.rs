//! Helpers the per-instance chain tests share: the verify API and CLI, journal rows by chain,
//! users made through a gateway.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sallyport_core::api::{ChainVerifyView, CreateUser, VerifyView};
use sallyport_core::audit::ChainError;
use sallyport_core::model::{Role, UserName};
use sallyport_gateway::control::Control;
use sallyport_gateway::dev::DevGateway;
use sqlx::Row;

use super::ha_common::{admin, Ha};

/// Longest wait for anything that should be quick.
pub(crate) const WITHIN: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An HTTPS client trusting `gw`'s API CA.
pub(crate) fn client(gw: &DevGateway) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(gw.ca_cert_path()).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `POST /v1/audit/verify` through `gw`, as its bootstrap admin (roles admin and auditor).
pub(crate) async fn verify_api(gw: &DevGateway) -> VerifyView {
    let reply = client(gw)
        .post(format!("{}/v1/audit/verify", gw.api_url()))
        .bearer_auth(gw.admin_token())
        .send()
        .await
        .unwrap();
    let status = reply.status();
    let body = reply.text().await.unwrap();
    assert!(status.is_success(), "verify answered {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The entry for `chain` (`None`: the shared chain) in a verify answer.
pub(crate) fn chain_of<'a>(v: &'a VerifyView, chain: Option<&str>) -> &'a ChainVerifyView {
    v.chains
        .iter()
        .find(|c| c.chain.as_deref() == chain)
        .unwrap_or_else(|| panic!("no chain {chain:?} in {v:#?}"))
}

/// The chain names in a verify answer, in its order.
pub(crate) fn chain_names(v: &VerifyView) -> Vec<Option<String>> {
    v.chains.iter().map(|c| c.chain.clone()).collect()
}

/// Asserts that `chain` verified with `count` records.
pub(crate) fn assert_intact(v: &VerifyView, chain: Option<&str>, count: u64) {
    let c = chain_of(v, chain);
    assert!(
        c.ok && c.error.is_none() && c.first_bad_seq.is_none(),
        "chain {chain:?} broken: {c:#?}"
    );
    assert_eq!(c.count, count, "chain {chain:?}: {c:#?}");
    assert_eq!(c.head_seq, count, "chain {chain:?}: {c:#?}");
    let recorded = c.recorded_head.as_ref().expect("no recorded head");
    assert_eq!(recorded.seq, c.head_seq, "chain {chain:?}: {c:#?}");
    assert_eq!(recorded.hash, c.head_hash, "chain {chain:?}: {c:#?}");
}

/// Asserts that `chain` is broken with `error`, and that the answer as a whole is not ok.
pub(crate) fn assert_broken(v: &VerifyView, chain: Option<&str>, error: ChainError) {
    assert!(!v.ok, "a broken journal verified: {v:#?}");
    let c = chain_of(v, chain);
    assert!(!c.ok, "chain {chain:?} verified: {c:#?}");
    assert_eq!(c.first_bad_seq, Some(error.first_bad_seq()), "{c:#?}");
    assert_eq!(c.error.as_ref(), Some(&error), "chain {chain:?}: {c:#?}");
}

/// `(chain, chain_seq, instance)` of every row of `audit_events`, by chain then chain seq.
pub(crate) async fn rows_by_chain(
    db: &sqlx::PgPool,
) -> BTreeMap<String, Vec<(i64, Option<String>)>> {
    let rows = sqlx::query(
        "SELECT chain, chain_seq, instance FROM audit_events ORDER BY chain, chain_seq",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut out: BTreeMap<String, Vec<(i64, Option<String>)>> = BTreeMap::new();
    for r in rows {
        out.entry(r.get("chain"))
            .or_default()
            .push((r.get("chain_seq"), r.get("instance")));
    }
    out
}

pub(crate) async fn count_rows(db: &sqlx::PgPool) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM audit_events")
        .fetch_one(db)
        .await
        .unwrap()
        .get("n")
}

/// Runs `sql` on the test's own connection to the database.
pub(crate) async fn exec(db: &sqlx::PgPool, sql: &str) {
    sqlx::query(sql)
        .execute(db)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A user name unique to this run.
pub(crate) fn unique(prefix: &str, i: usize) -> UserName {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{i}x{}", &tag[..8]).parse().unwrap()
}

pub(crate) async fn add_user(control: &Control, name: UserName) {
    control
        .create_user(
            &admin(),
            CreateUser {
                name,
                roles: vec![Role::Engineer],
                groups: Vec::new(),
            },
        )
        .await
        .unwrap();
}

/// `(chain, instance)` of the record of the creation of `user`.
pub(crate) async fn creation_chain(
    db: &sqlx::PgPool,
    user: &UserName,
) -> Option<(String, Option<String>)> {
    sqlx::query(
        "SELECT chain, instance FROM audit_events \
         WHERE event = 'access.user.create' AND user_name = $1",
    )
    .bind(user.as_str())
    .fetch_optional(db)
    .await
    .unwrap()
    .map(|r| (r.get("chain"), r.get("instance")))
}

/// How many `event` records the journal holds.
pub(crate) async fn count_event(db: &sqlx::PgPool, event: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE event = $1")
        .bind(event)
        .fetch_one(db)
        .await
        .unwrap()
        .get("n")
}

/// Verifies through `gw` while nothing is appended: the row count before and after the run
/// agree (retried a few times if a late record slipped in). Returns the answer and the count.
pub(crate) async fn quiet_verify(ha: &Ha, gw: &DevGateway) -> (VerifyView, i64) {
    for _ in 0..20 {
        let before = count_rows(&ha.db).await;
        let v = verify_api(gw).await;
        let after = count_rows(&ha.db).await;
        if before == after {
            return (v, after);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the journal never stood still for a verify run");
}

/// The CLI built by `cargo build -p sallyport-cli` (`target/debug/sallyport`).
pub(crate) fn cli_path() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/sallyport");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p sallyport-cli` first",
        bin.display()
    );
    bin
}

/// `sallyport audit verify` against `gw` as its bootstrap admin: exit code, stdout, stderr.
pub(crate) async fn cli_verify(gw: &DevGateway) -> (Option<i32>, String, String) {
    let child = tokio::process::Command::new(cli_path())
        .args(["audit", "verify"])
        .env("SALLYPORT_GATEWAY", gw.api_url())
        .env("SALLYPORT_CA_CERT", gw.ca_cert_path())
        .env("SALLYPORT_TOKEN", gw.admin_token())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(WITHIN, child.wait_with_output())
        .await
        .expect("sallyport audit verify did not finish")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// 1. Concurrent appends: one chain per gateway
// ---------------------------------------------------------------------------------------------
