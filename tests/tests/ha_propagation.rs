//! Two gateways on one real PostgreSQL: a change made through one reaches the other's policy
//! snapshot and live sessions within a second (LISTEN/NOTIFY), a lost LISTEN connection is
//! caught up by a resync, and OpenSSH `ssh -J` through either gateway sees the same truth.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ha_common;

use std::time::{Duration, Instant};

use ha_common::{admin, Ha, HaOptions};
use sallyport_gateway::control::PropagationOptions;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_made_on_a_lets_alice_jump_through_b_within_a_second() {
    let ha = Ha::start(HaOptions::default()).await;
    // Nothing granted yet: B refuses.
    let (ok, stderr) = ha.jump_once("gwb").await;
    assert!(!ok, "jump through B allowed without a grant");
    assert!(stderr.contains("no grant"), "{stderr}");

    let grant = ha.grant(ha.ca(), Duration::from_secs(600)).await;
    let took = ha.wait_sees(ha.cb(), grant, true, SECOND).await;
    eprintln!("B saw A's grant after {took:?}");
    let (ok, stderr) = ha.jump_once("gwb").await;
    assert!(ok, "jump through B refused after a grant on A: {stderr}");
    ha.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_on_a_ends_a_live_session_on_b_within_a_second() {
    let ha = Ha::start(HaOptions::default()).await;
    let grant = ha.grant(ha.ca(), Duration::from_secs(600)).await;
    ha.wait_sees(ha.cb(), grant, true, SECOND).await;
    let (mut child, _stdin) = ha.live_cat("gwb").await;

    let revoked = Instant::now();
    ha.ca().revoke_grant(&admin(), grant).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the session on B still runs 5 s after the revocation on A")
        .unwrap();
    let took = revoked.elapsed();
    assert!(!status.success());
    assert!(
        took < SECOND,
        "the session on B ended {took:?} after the revocation"
    );
    eprintln!("session on B ended {took:?} after the revocation on A");

    // B journaled the cut, naming the grant.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let closes = ha.events("ssh.tunnel.close").await;
        if let Some(c) = closes.iter().find(|r| r.data["grant"] == grant.to_string()) {
            assert_eq!(c.data["reason"], "revoked");
            break;
        }
        assert!(Instant::now() < deadline, "no ssh.tunnel.close: {closes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And a new jump through B is refused.
    let (ok, _) = ha.jump_once("gwb").await;
    assert!(!ok, "jump through B allowed after the revocation");
    ha.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listen_connection_is_caught_up_and_b_is_unaffected() {
    let ha = Ha::start(HaOptions::default()).await;
    let a_pid = ha
        .wait_listener("gw-a", None, Duration::from_secs(10))
        .await;
    let b_pid = ha
        .wait_listener("gw-b", None, Duration::from_secs(10))
        .await;
    let first = ha.grant(ha.cb(), Duration::from_secs(600)).await;
    ha.wait_sees(ha.ca(), first, true, SECOND).await;

    // Kill A's LISTEN connection and change something through B at once: A may miss the
    // notification and must catch up by itself.
    ha.terminate(a_pid).await;
    let gone = Instant::now();
    while ha.listener_pid("gw-a").await == Some(a_pid) {
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "backend {a_pid} still there"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let missed = ha.grant(ha.cb(), Duration::from_secs(600)).await;
    let took = ha
        .wait_sees(ha.ca(), missed, true, Duration::from_secs(10))
        .await;
    eprintln!("A caught up with a change made while its LISTEN was down after {took:?}");
    let a_new = ha
        .wait_listener("gw-a", Some(a_pid), Duration::from_secs(10))
        .await;
    assert_ne!(a_new, a_pid);

    // B never noticed: same connection, and it still hears A's changes at once.
    assert_eq!(ha.listener_pid("gw-b").await, Some(b_pid));
    let on_a = ha.grant(ha.ca(), Duration::from_secs(600)).await;
    ha.wait_sees(ha.cb(), on_a, true, SECOND).await;

    // A honours a later revocation made on B, live session included.
    let (mut child, _stdin) = ha.live_cat("gwa").await;
    for g in [first, missed, on_a] {
        ha.cb().revoke_grant(&admin(), g).await.unwrap();
    }
    let revoked = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the session on A outlived the revocations on B")
        .unwrap();
    assert!(!status.success());
    let took = revoked.elapsed();
    assert!(
        took < SECOND,
        "the session on A ended {took:?} after the last revocation"
    );
    ha.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_notification_is_caught_by_the_periodic_resync() {
    // A short resync interval; the notification is suppressed by changing the store behind
    // the gateways' backs (as if NOTIFY were lost), then moving the control version.
    let ha = Ha::start(HaOptions {
        cut: false,
        propagation: PropagationOptions {
            resync_interval: Duration::from_secs(2),
            ..Default::default()
        },
    })
    .await;
    let grant = ha.grant(ha.ca(), Duration::from_secs(600)).await;
    ha.wait_sees(ha.cb(), grant, true, SECOND).await;
    sqlx::query("UPDATE grants SET revoked_at = 1, revoked_by = 'admin' WHERE id = $1")
        .bind(grant.to_string())
        .execute(&ha.db)
        .await
        .unwrap();
    sqlx::query("UPDATE control_version SET seq = seq + 1 WHERE id = 1")
        .execute(&ha.db)
        .await
        .unwrap();
    let started = Instant::now();
    ha.wait_sees(ha.ca(), grant, false, Duration::from_secs(5))
        .await;
    ha.wait_sees(ha.cb(), grant, false, Duration::from_secs(5))
        .await;
    eprintln!("both resynced within {:?}", started.elapsed());
    ha.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_expiry_timers_record_an_expiry_once() {
    let ha = Ha::start(HaOptions::default()).await;
    let grant = ha.grant(ha.ca(), Duration::from_secs(2)).await;
    ha.wait_sees(ha.cb(), grant, true, SECOND).await;
    // Both gateways' timers wake at the expiry; one claims it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let expiries: Vec<_> = ha
        .events("access.grant.expire")
        .await
        .into_iter()
        .filter(|r| r.data["grant"] == grant.to_string())
        .collect();
    assert_eq!(expiries.len(), 1, "{expiries:?}");
    assert!(!ha.sees(ha.ca(), grant) && !ha.sees(ha.cb(), grant));
    ha.shutdown().await;
}
