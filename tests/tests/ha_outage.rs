//! Two gateways lose their PostgreSQL for a while (a TCP relay between them and the server is
//! cut: connections closed, new ones refused) and get it back. What must hold (docs/ha.md):
//!
//! - within `offline_grace`, decisions continue on the last snapshot: a live session goes on
//!   and a new jump through B works; its audit events are spooled locally (fsync'd);
//! - an admin change during the outage is answered 5xx and never applied later;
//! - after `offline_grace` without the database, everything is denied: the live session ends;
//! - when the database is back, both gateways resync, access resumes, and every audit event
//!   of the outage reaches the journal (no loss, no duplicate) with an intact chain.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ha_common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use ha_common::{Ha, HaOptions};
use sallyport_gateway::control::PropagationOptions;
use sallyport_gateway::store::SPOOL_FILE;

const GRACE: Duration = Duration::from_secs(6);

fn api_client(ha: &Ha) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ha.a.ca_cert_path()).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_keeps_the_last_snapshot_then_fails_closed_and_loses_no_event() {
    let ha = Ha::start(HaOptions {
        cut: true,
        propagation: PropagationOptions {
            offline_grace: GRACE,
            resync_interval: Duration::from_secs(1),
            ..Default::default()
        },
    })
    .await;
    let relay = ha.relay.as_ref().unwrap();
    let grant = ha.grant(ha.ca(), Duration::from_secs(600)).await;
    ha.wait_sees(ha.cb(), grant, true, Duration::from_secs(1))
        .await;
    let (mut live, _stdin) = ha.live_cat("gwb").await;

    // The database goes away.
    relay.set_cut(true);
    let cut_at = Instant::now();

    // An admin change during the outage: refused with a 5xx, in the background.
    let client = api_client(&ha);
    let url = format!("{}/v1/users", ha.a.api_url());
    let token = ha.a.admin_token();
    let change = tokio::spawn(async move {
        client
            .post(url)
            .bearer_auth(token)
            .json(&serde_json::json!({"name": "mallory", "roles": ["admin"]}))
            .send()
            .await
            .map(|r| r.status())
    });

    // Within the grace period: the last snapshot still decides, events are spooled.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, stderr) = ha.jump_once("gwb").await;
    assert!(
        ok,
        "a jump through B within the grace period failed: {stderr}"
    );
    assert!(
        cut_at.elapsed() < GRACE,
        "the in-grace jump took too long to prove anything"
    );
    let spool = ha.dir.path().join("gw-b").join(SPOOL_FILE);
    let spooled = std::fs::read_to_string(&spool).unwrap_or_default();
    assert!(
        spooled.contains("ssh.session.start"),
        "B did not spool its events: {spooled:?}"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(10), live.wait())
            .await
            .is_err(),
        "the live session ended within the grace period"
    );

    // Past the grace period: the live session on B is cut.
    let status = tokio::time::timeout(GRACE + Duration::from_secs(10), live.wait())
        .await
        .expect("the live session outlived the grace period by 10 s")
        .unwrap();
    let ended = cut_at.elapsed();
    assert!(!status.success());
    assert!(
        // The grace counts from the last successful contact, up to one resync interval (1 s)
        // before the cut.
        ended >= GRACE - Duration::from_secs(1),
        "the session ended {ended:?} after the cut, before the grace"
    );
    eprintln!("live session on B ended {ended:?} after the database went away (grace {GRACE:?})");
    assert!(ha.cb().is_degraded() && ha.ca().is_degraded());
    let (ok, _) = ha.jump_once("gwb").await;
    assert!(!ok, "a jump through B was allowed past the grace period");

    let status = change.await.unwrap().expect("the API did not answer");
    assert!(
        status.is_server_error(),
        "an admin change during the outage was answered {status}"
    );

    // The database comes back: both resync, access resumes.
    relay.set_cut(false);
    let back = Instant::now();
    while ha.ca().is_degraded() || ha.cb().is_degraded() {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "gateways still deny all 20 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "both gateways resumed {:?} after the database came back",
        back.elapsed()
    );
    assert!(ha.sees(ha.cb(), grant) && ha.sees(ha.ca(), grant));
    let (ok, stderr) = ha.jump_once("gwb").await;
    assert!(ok, "a jump through B failed after recovery: {stderr}");

    // The refused change was never applied.
    let mallory: Option<(String,)> =
        sqlx::query_as("SELECT name FROM users WHERE name = 'mallory'")
            .fetch_optional(&ha.db)
            .await
            .unwrap();
    assert_eq!(mallory, None, "a change answered 5xx was applied");

    // Nothing lost: every session that started also ended, in the journal; the spool is
    // empty; no event is journaled twice; the chain verifies.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let starts: BTreeSet<String> = ha
            .events("ssh.session.start")
            .await
            .into_iter()
            .filter_map(|r| r.session)
            .collect();
        let ends: BTreeSet<String> = ha
            .events("ssh.session.end")
            .await
            .into_iter()
            .filter_map(|r| r.session)
            .collect();
        if starts.len() == 3 && starts == ends {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sessions started {starts:?}, ended {ends:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = ha.ca().store().journal_after(0, 100_000).await.unwrap();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for r in &all {
        *ids.entry(r.id.as_str()).or_default() += 1;
    }
    assert!(
        ids.values().all(|&n| n == 1),
        "an event was journaled twice"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&spool).map(|m| m.len()).unwrap_or(0) > 0 {
        assert!(Instant::now() < deadline, "B's spool was not drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The live session ended during the outage, when its row could not be written: the drain
    // completed it from the journal.
    let listed_live: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM ssh_sessions WHERE ended_at IS NULL")
            .fetch_all(&ha.db)
            .await
            .unwrap();
    assert!(
        listed_live.is_empty(),
        "sessions that ended are still listed live: {listed_live:?}"
    );
    // Every session has its row, also the one that began during the outage (written from its
    // spooled ssh.session.start when B drained).
    let started: BTreeSet<String> = ha
        .events("ssh.session.start")
        .await
        .into_iter()
        .filter_map(|r| r.session)
        .collect();
    let rows: BTreeSet<String> = sqlx::query_as::<_, (String,)>("SELECT id FROM ssh_sessions")
        .fetch_all(&ha.db)
        .await
        .unwrap()
        .into_iter()
        .map(|(id,)| id)
        .collect();
    assert_eq!(
        rows, started,
        "ssh_sessions rows against the journal's sessions"
    );
    let verified = ha.ca().store().verify_journal().await.unwrap();
    assert_eq!(verified.error(), None, "{verified:?}");
    ha.shutdown().await;
}
