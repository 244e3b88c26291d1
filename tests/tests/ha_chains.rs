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
#[path = "ha_chains/migration.rs"]
mod migration;
#[path = "ha_chains/support.rs"]
mod support;
#[path = "ha_chains/tamper.rs"]
mod tamper;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ha_common::{Ha, HaOptions};
use sallyport_core::model::UserName;
use sallyport_gateway::control::Control;
use sallyport_gateway::store::Store;
use sqlx::Row;

use support::*;

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
