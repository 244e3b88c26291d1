//! One audit hash chain per gateway instance (issue #8, docs/ha.md "Audit journal with several
//! gateways"), proven on a real PostgreSQL with two in-process gateways (`gw-a`, `gw-b`):
//!
//! - gateways appending at once each build their own chain, contiguous from 1, every record
//!   naming its gateway; `POST /v1/audit/verify` through either reports every chain;
//! - an append waits for its own chain's head row only: with `gw-a`'s head row locked by a
//!   bare transaction, `gw-b` changes things (and carries an SSH session) while `gw-a`'s change
//!   waits until the lock goes;
//! - tampering with one chain (edit, removal of its newest record, a record moved to another
//!   chain) is reported on that chain at the right seq while the others verify;
//! - a journal from before per-instance chains (migration 0007, one shared chain) survives
//!   migration 0008: the shared chain still verifies, gateways start their own chains beside it,
//!   and tampering with a legacy record is still found (PostgreSQL and SQLite).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ha_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ha_common::{admin, Ha, HaOptions};
use sallyport_core::api::{ChainVerifyView, CreateUser, VerifyView};
use sallyport_core::audit::{ChainError, ChainHead, Event, EventKind, Record};
use sallyport_core::model::{Role, UserName};
use sallyport_core::time::Timestamp;
use sallyport_gateway::control::Control;
use sallyport_gateway::dev::{DevGateway, DevOptions, DevSshLimits, DevStore};
use sallyport_gateway::store::Store;
use sallyport_tests::postgres::PgServer;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

/// Longest wait for anything that should be quick.
const WITHIN: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An HTTPS client trusting `gw`'s API CA.
fn client(gw: &DevGateway) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(gw.ca_cert_path()).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `POST /v1/audit/verify` through `gw`, as its bootstrap admin (roles admin and auditor).
async fn verify_api(gw: &DevGateway) -> VerifyView {
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
fn chain_of<'a>(v: &'a VerifyView, chain: Option<&str>) -> &'a ChainVerifyView {
    v.chains
        .iter()
        .find(|c| c.chain.as_deref() == chain)
        .unwrap_or_else(|| panic!("no chain {chain:?} in {v:#?}"))
}

/// The chain names in a verify answer, in its order.
fn chain_names(v: &VerifyView) -> Vec<Option<String>> {
    v.chains.iter().map(|c| c.chain.clone()).collect()
}

/// Asserts that `chain` verified with `count` records.
fn assert_intact(v: &VerifyView, chain: Option<&str>, count: u64) {
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
fn assert_broken(v: &VerifyView, chain: Option<&str>, error: ChainError) {
    assert!(!v.ok, "a broken journal verified: {v:#?}");
    let c = chain_of(v, chain);
    assert!(!c.ok, "chain {chain:?} verified: {c:#?}");
    assert_eq!(c.first_bad_seq, Some(error.first_bad_seq()), "{c:#?}");
    assert_eq!(c.error.as_ref(), Some(&error), "chain {chain:?}: {c:#?}");
}

/// `(chain, chain_seq, instance)` of every row of `audit_events`, by chain then chain seq.
async fn rows_by_chain(db: &sqlx::PgPool) -> BTreeMap<String, Vec<(i64, Option<String>)>> {
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

async fn count_rows(db: &sqlx::PgPool) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM audit_events")
        .fetch_one(db)
        .await
        .unwrap()
        .get("n")
}

/// Runs `sql` on the test's own connection to the database.
async fn exec(db: &sqlx::PgPool, sql: &str) {
    sqlx::query(sql)
        .execute(db)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A user name unique to this run.
fn unique(prefix: &str, i: usize) -> UserName {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{i}x{}", &tag[..8]).parse().unwrap()
}

async fn add_user(control: &Control, name: UserName) {
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
async fn creation_chain(db: &sqlx::PgPool, user: &UserName) -> Option<(String, Option<String>)> {
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
async fn count_event(db: &sqlx::PgPool, event: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE event = $1")
        .bind(event)
        .fetch_one(db)
        .await
        .unwrap()
        .get("n")
}

/// Verifies through `gw` while nothing is appended: the row count before and after the run
/// agree (retried a few times if a late record slipped in). Returns the answer and the count.
async fn quiet_verify(ha: &Ha, gw: &DevGateway) -> (VerifyView, i64) {
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
fn cli_path() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/sallyport");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p sallyport-cli` first",
        bin.display()
    );
    bin
}

/// `sallyport audit verify` against `gw` as its bootstrap admin: exit code, stdout, stderr.
async fn cli_verify(gw: &DevGateway) -> (Option<i32>, String, String) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_appending_at_once_each_keep_their_own_chain() {
    const CHANGES: usize = 25;
    let ha = Ha::start(HaOptions::default()).await;
    let grant = ha.grant(ha.ca(), Duration::from_secs(600)).await;
    ha.wait_sees(ha.cb(), grant, true, Duration::from_secs(1))
        .await;

    // Admin changes through A and through B, and a jump through each, all at once.
    let a_users: Vec<UserName> = (0..CHANGES).map(|i| unique("ca", i)).collect();
    let b_users: Vec<UserName> = (0..CHANGES).map(|i| unique("cb", i)).collect();
    let through = |control: &Arc<Control>, users: Vec<UserName>| {
        let control = Arc::clone(control);
        async move {
            for u in users {
                add_user(&control, u).await;
            }
        }
    };
    let started = Instant::now();
    let (on_a, on_b, (ok_a, err_a), (ok_b, err_b)) =
        tokio::time::timeout(Duration::from_secs(120), async {
            tokio::join!(
                tokio::spawn(through(ha.ca(), a_users.clone())),
                tokio::spawn(through(ha.cb(), b_users.clone())),
                ha.jump_once("gwa"),
                ha.jump_once("gwb"),
            )
        })
        .await
        .expect("concurrent appends did not finish within 120 s");
    on_a.expect("admin changes through A");
    on_b.expect("admin changes through B");
    assert!(ok_a, "jump through A failed: {err_a}");
    assert!(ok_b, "jump through B failed: {err_b}");
    eprintln!(
        "{} admin changes and two jumps took {:?}",
        2 * CHANGES,
        started.elapsed()
    );

    // Both sessions have ended in the journal (so it stands still from here).
    let deadline = Instant::now() + WITHIN;
    while count_event(&ha.db, "ssh.session.end").await < 2 {
        assert!(
            Instant::now() < deadline,
            "the sessions' ends were not journaled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Each admin change is in the chain of the gateway it went through.
    for (users, instance) in [(&a_users, "gw-a"), (&b_users, "gw-b")] {
        for u in users {
            assert_eq!(
                creation_chain(&ha.db, u).await,
                Some((instance.to_owned(), Some(instance.to_owned()))),
                "the creation of {u} through {instance}"
            );
        }
    }
    // And each session's records are in the chain of the gateway that carried it.
    let sessions = sqlx::query(
        "SELECT DISTINCT chain, instance FROM audit_events WHERE event = 'ssh.session.start'",
    )
    .fetch_all(&ha.db)
    .await
    .unwrap();
    let sessions: BTreeSet<(String, Option<String>)> = sessions
        .iter()
        .map(|r| (r.get("chain"), r.get("instance")))
        .collect();
    assert_eq!(
        sessions,
        BTreeSet::from([
            ("gw-a".to_owned(), Some("gw-a".to_owned())),
            ("gw-b".to_owned(), Some("gw-b".to_owned()))
        ])
    );

    // Two instance chains, nothing else; each contiguous from 1; every record names its
    // gateway; each chain's recorded head is its last record.
    let (view_a, total) = quiet_verify(&ha, &ha.a).await;
    let chains = rows_by_chain(&ha.db).await;
    assert_eq!(
        chains.keys().cloned().collect::<Vec<_>>(),
        ["gw-a", "gw-b"],
        "chains in the journal"
    );
    let mut lengths = BTreeMap::new();
    for (chain, rows) in &chains {
        for (i, (seq, instance)) in rows.iter().enumerate() {
            assert_eq!(*seq, i as i64 + 1, "chain {chain} is not contiguous");
            assert_eq!(
                instance.as_deref(),
                Some(chain.as_str()),
                "chain {chain} seq {seq}"
            );
        }
        let head: i64 = sqlx::query("SELECT seq FROM chain_heads WHERE chain = $1")
            .bind(chain)
            .fetch_one(&ha.db)
            .await
            .unwrap()
            .get("seq");
        assert_eq!(head, rows.len() as i64, "chain {chain}'s recorded head");
        assert!(
            rows.len() > CHANGES,
            "chain {chain} has {} records",
            rows.len()
        );
        lengths.insert(chain.clone(), rows.len() as u64);
    }

    // The API, through either gateway, reports both chains intact, adding up to every row.
    let (view_b, total_b) = quiet_verify(&ha, &ha.b).await;
    assert_eq!(
        total, total_b,
        "the journal moved between the two verify runs"
    );
    for v in [&view_a, &view_b] {
        assert!(v.ok, "{v:#?}");
        assert_eq!(
            chain_names(v),
            [Some("gw-a".to_owned()), Some("gw-b".to_owned())]
        );
        assert_intact(v, Some("gw-a"), lengths["gw-a"]);
        assert_intact(v, Some("gw-b"), lengths["gw-b"]);
        assert_eq!(v.count, total as u64, "{v:#?}");
        assert_eq!(v.count, v.chains.iter().map(|c| c.count).sum::<u64>());
    }
    assert_eq!(view_a.chains, view_b.chains, "A and B disagree");
    let (code, stdout, stderr) = cli_verify(&ha.b).await;
    assert_eq!(code, Some(0), "sallyport audit verify: {stdout}{stderr}");
    for chain in ["gw-a", "gw-b"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("chain {chain}: ")))
            .unwrap_or_else(|| panic!("no line for chain {chain}: {stdout}"));
        assert!(
            line.starts_with(&format!("chain {chain}: {} records, ", lengths[chain]))
                && line.ends_with(", ok"),
            "{line}"
        );
    }
    assert!(
        stdout.contains(&format!("OK: {total} events in 2 chains")),
        "{stdout}"
    );
    ha.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 2. No cross-instance lock
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_chain_head_holds_up_only_its_own_gateway() {
    let ha = Ha::start(HaOptions::default()).await;
    let grant = ha.grant(ha.cb(), Duration::from_secs(600)).await;
    ha.wait_sees(ha.cb(), grant, true, Duration::from_secs(1))
        .await;
    ha.wait_sees(ha.ca(), grant, true, Duration::from_secs(1))
        .await;

    // A bare transaction locks A's head row, as an append of A's would.
    let mut lock = ha.db.begin().await.unwrap();
    let a_head: i64 = sqlx::query("SELECT seq FROM chain_heads WHERE chain = 'gw-a' FOR UPDATE")
        .fetch_one(&mut *lock)
        .await
        .unwrap()
        .get("seq");
    assert!(a_head > 0, "gw-a has journaled nothing yet");
    let b_before = sqlx::query("SELECT seq FROM chain_heads WHERE chain = 'gw-b'")
        .fetch_one(&ha.db)
        .await
        .unwrap()
        .get::<i64, _>("seq");

    // A's change waits for the lock.
    let held = Instant::now();
    let on_a = unique("lockeda", 0);
    let pending = tokio::spawn({
        let control = Arc::clone(ha.ca());
        let name = on_a.clone();
        async move { add_user(&control, name).await }
    });

    // B's changes go through meanwhile, journaled in B's chain.
    for i in 0..3 {
        let on_b = unique("lockedb", i);
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), add_user(ha.cb(), on_b.clone()))
            .await
            .expect("an admin change through B waited for A's chain head");
        eprintln!(
            "change through B with A's head locked took {:?}",
            started.elapsed()
        );
        assert_eq!(
            creation_chain(&ha.db, &on_b).await,
            Some(("gw-b".to_owned(), Some("gw-b".to_owned())))
        );
    }
    // So does an SSH session through B (the audit hot path).
    let (ok, stderr) = tokio::time::timeout(WITHIN, ha.jump_once("gwb"))
        .await
        .expect("a jump through B waited for A's chain head");
    assert!(ok, "jump through B failed with A's head locked: {stderr}");
    let b_now = sqlx::query("SELECT seq FROM chain_heads WHERE chain = 'gw-b'")
        .fetch_one(&ha.db)
        .await
        .unwrap()
        .get::<i64, _>("seq");
    assert!(
        b_now >= b_before + 4,
        "B's head moved {b_before} -> {b_now}"
    );

    // A's change is still waiting, uncommitted, at least 500 ms into the lock.
    tokio::time::sleep_until((held + Duration::from_millis(500)).into()).await;
    assert!(
        !pending.is_finished(),
        "the change through A completed while its chain head was locked"
    );
    // It waits on the lock (not on anything else): one backend of this database waits for a
    // lock that the bare transaction holds.
    let holder: i32 = sqlx::query("SELECT pg_backend_pid() AS pid")
        .fetch_one(&mut *lock)
        .await
        .unwrap()
        .get("pid");
    let waiting: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND $1 = ANY (pg_blocking_pids(pid))",
    )
    .bind(holder)
    .fetch_one(&ha.db)
    .await
    .unwrap()
    .get("n");
    assert!(waiting >= 1, "no backend waits for the locked head of gw-a");
    assert_eq!(creation_chain(&ha.db, &on_a).await, None);
    let a_still: i64 = sqlx::query("SELECT seq FROM chain_heads WHERE chain = 'gw-a'")
        .fetch_one(&ha.db)
        .await
        .unwrap()
        .get("seq");
    assert_eq!(a_still, a_head, "A's head moved under the lock");

    // Released: A's change completes, in A's chain, after B's records.
    lock.rollback().await.unwrap();
    let released = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the change through A did not complete after the lock was released")
        .unwrap();
    eprintln!(
        "change through A completed {:?} after the release ({:?} after it began)",
        released.elapsed(),
        held.elapsed()
    );
    assert_eq!(
        creation_chain(&ha.db, &on_a).await,
        Some(("gw-a".to_owned(), Some("gw-a".to_owned())))
    );

    let deadline = Instant::now() + WITHIN;
    while count_event(&ha.db, "ssh.session.end").await < 1 {
        assert!(
            Instant::now() < deadline,
            "B's session end was not journaled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (v, total) = quiet_verify(&ha, &ha.a).await;
    assert!(v.ok, "{v:#?}");
    assert_eq!(v.count, total as u64);
    ha.shutdown().await;
}

/// A gateway starting up (`Store::migrate`, which makes sure of the `audit_position`
/// sequence) while another gateway holds its chain head (an append in flight, or one whose
/// connection hangs mid-transaction) must not hold up a third gateway's appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_starting_up_does_not_hold_up_the_others_appends() {
    let ha = Ha::start(HaOptions::default()).await;
    let mut lock = ha.db.begin().await.unwrap();
    sqlx::query("SELECT seq FROM chain_heads WHERE chain = 'gw-a' FOR UPDATE")
        .fetch_one(&mut *lock)
        .await
        .unwrap();

    // gw-c starts: connects and migrates.
    let url = ha.url.clone();
    let starting = tokio::spawn(async move {
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        store
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let on_b = unique("startb", 0);
    let started = Instant::now();
    let done = tokio::time::timeout(Duration::from_secs(5), add_user(ha.cb(), on_b.clone())).await;
    let took = started.elapsed();
    lock.rollback().await.unwrap();
    let store = tokio::time::timeout(Duration::from_secs(10), starting)
        .await
        .expect("the starting gateway did not finish migrating after the release")
        .unwrap();
    store.close().await;
    assert!(
        done.is_ok(),
        "a change through B waited {took:?} (gave up) while gw-c started up beside gw-a's locked head"
    );
    eprintln!("change through B during gw-c's start-up took {took:?}");
    assert_eq!(
        creation_chain(&ha.db, &on_b).await,
        Some(("gw-b".to_owned(), Some("gw-b".to_owned())))
    );
    ha.shutdown().await;
}

/// Verification while both gateways append never reports an intact journal broken (positions
/// commit out of order across chains on PostgreSQL), and never counts past the final chains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifying_while_both_gateways_append_finds_nothing_broken() {
    const CHANGES: usize = 40;
    let ha = Ha::start(HaOptions::default()).await;
    let through = |control: &Arc<Control>, prefix: &'static str| {
        let control = Arc::clone(control);
        tokio::spawn(async move {
            for i in 0..CHANGES {
                add_user(&control, unique(prefix, i)).await;
            }
        })
    };
    let (wa, wb) = (through(ha.ca(), "va"), through(ha.cb(), "vb"));
    let mut runs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(wa.is_finished() && wb.is_finished()) {
        assert!(Instant::now() < deadline, "the writers did not finish");
        let gw = if runs.len() % 2 == 0 { &ha.a } else { &ha.b };
        runs.push(verify_api(gw).await);
    }
    wa.await.unwrap();
    wb.await.unwrap();
    let (last, total) = quiet_verify(&ha, &ha.b).await;
    assert!(last.ok, "{last:#?}");
    assert_eq!(last.count, total as u64);
    eprintln!("{} verify runs while both gateways appended", runs.len());
    assert!(
        runs.len() >= 2,
        "only {} verify runs overlapped the writers",
        runs.len()
    );
    for v in &runs {
        assert!(v.ok, "a verify run during appends: {v:#?}");
        for c in &v.chains {
            assert!(
                c.count <= chain_of(&last, c.chain.as_deref()).count,
                "{v:#?}"
            );
        }
    }
    ha.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Tampering with one chain
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_one_chain_is_reported_on_that_chain_only() {
    let ha = Ha::start(HaOptions::default()).await;
    // The shared chain: records journaled by a store with no instance (a tool's).
    let tool = Store::connect(&ha.url).await.unwrap();
    for i in 0..3 {
        let user = unique("shared", i);
        tool.append_event(&Event::new(
            Timestamp::now(),
            "tool",
            EventKind::UserDisabled { user },
        ))
        .await
        .unwrap();
    }
    // B's chain outgrows A's, so that a record of B's can be moved into A's seq space.
    let a_len = ha.ca().store().journal_head().await.unwrap().seq;
    let mut i = 0;
    while ha.cb().store().journal_head().await.unwrap().seq < a_len + 4 {
        add_user(ha.cb(), unique("tb", i)).await;
        i += 1;
    }

    let (v, _) = quiet_verify(&ha, &ha.a).await;
    assert!(v.ok, "{v:#?}");
    assert_eq!(
        chain_names(&v),
        [None, Some("gw-a".to_owned()), Some("gw-b".to_owned())]
    );
    let b_len = chain_of(&v, Some("gw-b")).count;
    let a_len = chain_of(&v, Some("gw-a")).count;
    assert_intact(&v, None, 3);
    let intact = |v: &VerifyView| {
        assert_intact(v, None, 3);
        assert_intact(v, Some("gw-a"), a_len);
    };

    // (a) One record of B's edited.
    let k = 3;
    let actor: String =
        sqlx::query("SELECT actor FROM audit_events WHERE chain = 'gw-b' AND chain_seq = $1")
            .bind(k)
            .fetch_one(&ha.db)
            .await
            .unwrap()
            .get("actor");
    exec(
        &ha.db,
        &format!(
            "UPDATE audit_events SET actor = 'mallory' WHERE chain = 'gw-b' AND chain_seq = {k}"
        ),
    )
    .await;
    for gw in [&ha.a, &ha.b] {
        let v = verify_api(gw).await;
        assert_broken(&v, Some("gw-b"), ChainError::Altered { seq: k as u64 });
        assert_eq!(chain_of(&v, Some("gw-b")).count, k as u64 - 1);
        assert_eq!(chain_of(&v, Some("gw-b")).head_seq, k as u64 - 1);
        intact(&v);
    }
    let (code, stdout, stderr) = cli_verify(&ha.a).await;
    assert_eq!(code, Some(8), "sallyport audit verify: {stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "BROKEN in chain gw-b at seq {k}: record {k} was altered"
        )),
        "{stderr}"
    );
    for line in [
        format!("BROKEN in chain gw-b at seq {k}"),
        format!("chain gw-a: {a_len} records, "),
        "chain (shared): 3 records, ".to_owned(),
    ] {
        assert!(stdout.contains(&line), "no {line:?} in {stdout}");
    }
    assert!(!stdout.contains("OK:"), "{stdout}");
    let outcome = tool.verify_journal().await.unwrap();
    let broken: Vec<_> = outcome.broken().collect();
    assert_eq!(
        broken,
        [(Some("gw-b"), &ChainError::Altered { seq: k as u64 })],
        "{outcome:?}"
    );
    sqlx::query("UPDATE audit_events SET actor = $1 WHERE chain = 'gw-b' AND chain_seq = $2")
        .bind(&actor)
        .bind(k)
        .execute(&ha.db)
        .await
        .unwrap();
    assert!(
        verify_api(&ha.a).await.ok,
        "restoring the record restores the chain"
    );

    // (b) B's newest record removed (kept aside to be put back).
    exec(&ha.db, "DROP TABLE IF EXISTS kept_aside").await;
    exec(
        &ha.db,
        &format!(
            "CREATE TABLE kept_aside AS SELECT * FROM audit_events \
             WHERE chain = 'gw-b' AND chain_seq = {b_len}"
        ),
    )
    .await;
    exec(
        &ha.db,
        &format!("DELETE FROM audit_events WHERE chain = 'gw-b' AND chain_seq = {b_len}"),
    )
    .await;
    for gw in [&ha.a, &ha.b] {
        let v = verify_api(gw).await;
        assert_broken(
            &v,
            Some("gw-b"),
            ChainError::Truncated {
                head_seq: b_len,
                last_seq: b_len - 1,
            },
        );
        assert_eq!(chain_of(&v, Some("gw-b")).count, b_len - 1);
        intact(&v);
    }
    exec(&ha.db, "INSERT INTO audit_events SELECT * FROM kept_aside").await;
    exec(&ha.db, "DROP TABLE kept_aside").await;
    assert!(
        verify_api(&ha.a).await.ok,
        "putting the record back restores the chain"
    );

    // (c) A record of B's moved to A's chain (at a seq A has not reached).
    let k = a_len + 1;
    assert!(
        k < b_len,
        "B's chain ({b_len}) is not longer than A's ({a_len}) + 1"
    );
    exec(
        &ha.db,
        &format!("UPDATE audit_events SET chain = 'gw-a' WHERE chain = 'gw-b' AND chain_seq = {k}"),
    )
    .await;
    for gw in [&ha.a, &ha.b] {
        let v = verify_api(gw).await;
        assert_broken(
            &v,
            Some("gw-b"),
            ChainError::Gap {
                expected: k,
                found: k + 1,
            },
        );
        assert_eq!(chain_of(&v, Some("gw-b")).count, k - 1);
        intact(&v);
    }
    exec(
        &ha.db,
        &format!("UPDATE audit_events SET chain = 'gw-b' WHERE chain = 'gw-a' AND chain_seq = {k}"),
    )
    .await;
    assert!(
        verify_api(&ha.a).await.ok,
        "moving the record back restores the chain"
    );

    // (d) B's head row removed: B's records form a chain the journal has no head for.
    let hash: String = sqlx::query("SELECT hash FROM chain_heads WHERE chain = 'gw-b'")
        .fetch_one(&ha.db)
        .await
        .unwrap()
        .get("hash");
    exec(&ha.db, "DELETE FROM chain_heads WHERE chain = 'gw-b'").await;
    for gw in [&ha.a, &ha.b] {
        let v = verify_api(gw).await;
        assert_broken(&v, Some("gw-b"), ChainError::Headless { last_seq: b_len });
        assert_eq!(chain_of(&v, Some("gw-b")).recorded_head, None);
        intact(&v);
    }
    sqlx::query("INSERT INTO chain_heads (chain, seq, hash) VALUES ('gw-b', $1, $2)")
        .bind(b_len as i64)
        .bind(&hash)
        .execute(&ha.db)
        .await
        .unwrap();

    assert!(
        verify_api(&ha.a).await.ok,
        "putting the head back restores the chain"
    );

    // (e) A record of B's edited so that it no longer even reads back (its data not JSON).
    let data: String =
        sqlx::query("SELECT data FROM audit_events WHERE chain = 'gw-b' AND chain_seq = 2")
            .fetch_one(&ha.db)
            .await
            .unwrap()
            .get("data");
    exec(
        &ha.db,
        "UPDATE audit_events SET data = 'not json' WHERE chain = 'gw-b' AND chain_seq = 2",
    )
    .await;
    let v = verify_api(&ha.b).await;
    assert_broken(&v, Some("gw-b"), ChainError::Altered { seq: 2 });
    intact(&v);
    sqlx::query("UPDATE audit_events SET data = $1 WHERE chain = 'gw-b' AND chain_seq = 2")
        .bind(&data)
        .execute(&ha.db)
        .await
        .unwrap();

    let (v, total) = quiet_verify(&ha, &ha.b).await;
    assert!(v.ok, "{v:#?}");
    assert_eq!(v.count, total as u64);
    tool.close().await;
    ha.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 4. Migration of a journal from before per-instance chains
// ---------------------------------------------------------------------------------------------

/// Records in the legacy journal.
const LEGACY: u64 = 12;

/// A copy of migrations 0001–0007 (the schema before per-instance chains).
fn migrations_before_0008() -> tempfile::TempDir {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let dir = tempfile::tempdir().unwrap();
    let mut copied = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let version: u32 = match name.split('_').next().and_then(|v| v.parse().ok()) {
            Some(v) => v,
            None => continue,
        };
        if version <= 7 && name.ends_with(".sql") {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
            copied.push(version);
        }
    }
    copied.sort_unstable();
    assert_eq!(copied, (1..=7).collect::<Vec<_>>(), "migrations 0001–0007");
    dir
}

async fn any_pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap()
}

/// Builds the database at `url` at migration 0007 and journals [`LEGACY`] records the way the
/// code before 0008 did: one shared chain (`ChainHead::append`, layout v1) whose head is
/// `journal_head`. Some records name an instance (0007), the first ones none.
async fn legacy_database(url: &str) -> Vec<Record> {
    let pool = any_pool(url).await;
    let dir = migrations_before_0008();
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    migrator.run(&pool).await.unwrap();

    let mut head = ChainHead::default();
    let mut records = Vec::new();
    for i in 0..LEGACY {
        let event = Event::new(
            Timestamp::from_millis(1_700_000_000_000 + i as i64 * 1000),
            "admin",
            EventKind::UserDisabled {
                user: format!("legacy{i}").parse().unwrap(),
            },
        );
        let record = head.append(&event);
        assert_eq!(record.chain, None);
        head = ChainHead::from(&record);
        let instance = (i >= LEGACY / 2).then(|| "gw-old".to_owned());
        sqlx::query(
            "INSERT INTO audit_events (seq, id, time_ms, event, code, version, actor, user_name, \
             target, session, source, data, prev_hash, hash, instance) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(record.seq as i64)
        .bind(record.id.clone())
        .bind(record.time.as_millis())
        .bind(record.event.clone())
        .bind(record.code.clone())
        .bind(i64::from(record.version))
        .bind(record.actor.clone())
        .bind(record.user.clone())
        .bind(record.target.clone())
        .bind(record.session.clone())
        .bind(record.source.clone())
        .bind(record.data.to_string())
        .bind(record.prev_hash.clone())
        .bind(record.hash.clone())
        .bind(instance)
        .execute(&pool)
        .await
        .unwrap();
        records.push(record);
    }
    sqlx::query("UPDATE journal_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(head.seq as i64)
        .bind(head.hash.clone())
        .execute(&pool)
        .await
        .unwrap();
    // A sink that had shipped part of the shared chain.
    sqlx::query(
        "INSERT INTO sink_checkpoints (sink, seq, updated_at, delivered) VALUES ('stdout', 5, 0, 5)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    records
}

/// After 0008 (applied by `Store::migrate`), before any gateway appended: the shared chain holds
/// every legacy record, its head moved to `chain_heads`, `journal_head` is gone, the sink's
/// checkpoint belongs to the shared chain, and verification reports the one chain intact.
async fn check_migrated(url: &str, legacy: &[Record]) {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let outcome = store.verify_journal().await.unwrap();
    assert_eq!(outcome.error(), None, "{outcome:?}");
    assert_eq!(outcome.chains.len(), 1, "{outcome:?}");
    let shared = &outcome.chains[0];
    assert_eq!(shared.chain, None);
    assert_eq!(shared.summary.count, LEGACY);
    let last = ChainHead::from(legacy.last().unwrap());
    assert_eq!(shared.summary.head, last);
    assert_eq!(shared.recorded_head.as_ref(), Some(&last));
    assert_eq!(store.chain_head(None).await.unwrap(), Some(last.clone()));

    // The records read back are the ones written, with their place in the shared chain.
    let back = store.chain_after(None, 0, 1000).await.unwrap();
    assert_eq!(back.len(), legacy.len());
    for ((r, instance), want) in back.iter().zip(legacy) {
        assert_eq!(r.chain, None);
        assert_eq!(
            r.pos,
            Some(want.seq),
            "position of legacy record {}",
            want.seq
        );
        let mut r = r.clone();
        r.pos = None;
        assert_eq!(&r, want);
        assert_eq!(instance.is_some(), want.seq > LEGACY / 2);
    }

    let pool = any_pool(url).await;
    assert!(
        sqlx::query("SELECT seq FROM journal_head")
            .fetch_all(&pool)
            .await
            .is_err(),
        "journal_head survived migration 0008"
    );
    let row =
        sqlx::query("SELECT chain, seq, delivered FROM sink_checkpoints WHERE sink = 'stdout'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(row.get::<String, _>("chain"), "");
    assert_eq!(row.get::<i64, _>("seq"), 5);
    assert_eq!(row.get::<i64, _>("delivered"), 5);
    pool.close().await;
    store.close().await;
}

/// With a gateway `instance` running on the migrated database: its records form its own chain
/// from seq 1 beside the closed shared chain, both verify through its API, and editing a legacy
/// record breaks the shared chain only.
async fn check_gateway_beside_legacy(url: &str, gw: &DevGateway, instance: &str) {
    add_user(gw.gateway().control(), unique("after", 0)).await;
    let pool = any_pool(url).await;

    let v = verify_api(gw).await;
    assert!(v.ok, "{v:#?}");
    assert_eq!(chain_names(&v), [None, Some(instance.to_owned())]);
    assert_intact(&v, None, LEGACY);
    let own = chain_of(&v, Some(instance)).count;
    assert!(own >= 3, "{v:#?}");
    assert_intact(&v, Some(instance), own);

    let rows = sqlx::query(
        "SELECT seq, chain, chain_seq, instance FROM audit_events WHERE seq > $1 ORDER BY seq",
    )
    .bind(LEGACY as i64)
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut next = 1;
    for r in &rows {
        assert_eq!(
            r.get::<String, _>("chain"),
            instance,
            "a new record outside its chain"
        );
        assert_eq!(
            r.get::<Option<String>, _>("instance").as_deref(),
            Some(instance)
        );
        let seq: i64 = r.get("chain_seq");
        if seq <= own as i64 {
            assert_eq!(seq, next, "the new chain does not start at 1 or has a gap");
            next += 1;
        }
    }
    assert_eq!(next - 1, own as i64);
    let shared: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE chain = ''")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(
        shared, LEGACY as i64,
        "the shared chain grew after migration"
    );

    // A legacy record edited: the shared chain is broken there, the new one is not.
    sqlx::query("UPDATE audit_events SET actor = 'mallory' WHERE chain = '' AND chain_seq = 5")
        .execute(&pool)
        .await
        .unwrap();
    let v = verify_api(gw).await;
    assert_broken(&v, None, ChainError::Altered { seq: 5 });
    assert_eq!(chain_of(&v, None).count, 4);
    let c = chain_of(&v, Some(instance));
    assert!(c.ok, "{c:#?}");
    // A legacy record removed from the end: truncation of the shared chain.
    sqlx::query("UPDATE audit_events SET actor = 'admin' WHERE chain = '' AND chain_seq = 5")
        .execute(&pool)
        .await
        .unwrap();
    assert!(verify_api(gw).await.ok);
    sqlx::query("DELETE FROM audit_events WHERE chain = '' AND chain_seq = $1")
        .bind(LEGACY as i64)
        .execute(&pool)
        .await
        .unwrap();
    let v = verify_api(gw).await;
    assert_broken(
        &v,
        None,
        ChainError::Truncated {
            head_seq: LEGACY,
            last_seq: LEGACY - 1,
        },
    );
    assert!(chain_of(&v, Some(instance)).ok, "{v:#?}");
    pool.close().await;
}

fn dev_options(state_dir: &Path) -> DevOptions {
    DevOptions {
        state_dir: state_dir.to_owned(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ssh_listen: "127.0.0.1:0".parse().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_single_chain_survives_migration_0008_on_postgres() {
    let server = PgServer::shared().unwrap_or_else(|e| panic!("{e:#}"));
    let url = server.fresh_database().unwrap();
    let legacy = legacy_database(&url).await;
    check_migrated(&url, &legacy).await;

    let dir = tempfile::tempdir().unwrap();
    let gw = DevGateway::start_with_store(
        dev_options(&dir.path().join("gw-new")),
        DevSshLimits::default(),
        Some(DevStore {
            url: url.clone(),
            instance: "gw-new".into(),
            propagation: Default::default(),
            secrets: None,
        }),
    )
    .await
    .unwrap();
    check_gateway_beside_legacy(&url, &gw, "gw-new").await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_single_chain_survives_migration_0008_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&state)
            .unwrap();
    }
    let url = format!("sqlite://{}?mode=rwc", state.join("sallyport.db").display());
    let legacy = legacy_database(&url).await;
    check_migrated(&url, &legacy).await;

    // `sallyportd dev` on that file: instance `dev`.
    let gw = DevGateway::start(dev_options(&state)).await.unwrap();
    check_gateway_beside_legacy(&url, &gw, "dev").await;
    gw.shutdown().await;
}
