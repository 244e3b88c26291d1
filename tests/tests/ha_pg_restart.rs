//! Two gateways lose their PostgreSQL for real: the server of the test's own is stopped (fast
//! shutdown, every backend ended) and started again on the same data dir and port
//! (`PgServer::stop`/`restart`). With `offline_grace` well above the downtime, what must hold
//! (docs/ha.md, "When the database is unreachable"):
//!
//! - during the downtime the last snapshot decides: live sessions go on, a new jump through A
//!   works, and its audit events are spooled in A's state dir; an admin change waits for the
//!   database (at most the pool's 10 s) and is acknowledged only once committed;
//! - after the restart both gateways resync by themselves: a grant made through A is honoured
//!   through B within seconds, a revocation made through B ends the sessions still live on A and
//!   B within about a second, the sessions from before the outage are still carrying data;
//! - no audit event is lost: the spools drain to empty, every session's start and end is in the
//!   journal exactly once, the change is there if and only if it was acknowledged, and every
//!   chain (gw-a, gw-b) verifies.
//!
//! The first tests check the harness itself: stop/restart keep the data, a port taken while the
//! server is stopped gives a clear error, and a stopped server (also one a panicking test holds)
//! leaves nothing behind.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ha_common;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ha_common::{admin, Ha, HaOptions};
use sallyport_core::time::Timestamp;
use sallyport_gateway::control::PropagationOptions;
use sallyport_gateway::store::SPOOL_FILE;
use sallyport_tests::postgres::PgServer;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Far longer than the downtime: the gateways must never fail closed in this test.
const GRACE: Duration = Duration::from_secs(15);

/// How long PostgreSQL stays stopped.
const DOWNTIME: Duration = Duration::from_secs(3);

fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1)).is_ok()
}

#[test]
fn a_stopped_server_refuses_connections_and_restarts_with_its_data() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut pg = PgServer::start().unwrap();
    let url = pg.fresh_database().unwrap();
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE kept (v int8)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO kept VALUES (42)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let dir = pg.dir().to_owned();
    let port = pg.port();

    pg.stop().unwrap();
    assert!(pg.is_stopped());
    assert!(!accepts_tcp(port), "a stopped server accepts connections");
    assert!(
        dir.join("data").is_dir(),
        "stop removed the data dir: {pg:?}"
    );
    let again = pg.stop().unwrap_err().to_string();
    assert!(again.contains("already stopped"), "{again}");

    pg.restart().unwrap();
    assert!(!pg.is_stopped());
    assert_eq!(pg.port(), port);
    let again = pg.restart().unwrap_err().to_string();
    assert!(again.contains("needs a stop() first"), "{again}");
    rt.block_on(async {
        // Same URL, same password, same data.
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let v: i64 = sqlx::query_scalar("SELECT v FROM kept")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(v, 42);
        conn.close().await.unwrap();
    });
    // A second round works as well, and the log keeps every run.
    pg.stop().unwrap();
    pg.restart().unwrap();
    assert!(pg.fresh_database().is_ok());
    let log = pg.log();
    assert!(
        log.matches("database system is ready to accept connections")
            .count()
            >= 3,
        "{log}"
    );

    drop(pg);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        !accepts_tcp(port),
        "the restarted server still runs after drop"
    );
}

#[test]
fn a_restart_onto_a_taken_port_fails_clearly_and_stays_stopped() {
    let mut pg = PgServer::start().unwrap();
    let port = pg.port();
    pg.stop().unwrap();
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    let err = format!("{:#}", pg.restart().unwrap_err());
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("taken"),
        "{err}"
    );
    assert!(pg.is_stopped());
    drop(squatter);
    pg.restart().unwrap();
    assert!(accepts_tcp(port));
}

#[test]
fn a_server_stopped_when_its_test_panics_leaves_nothing_behind() {
    let mut seen = None;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut pg = PgServer::start().unwrap();
        seen = Some(pg.dir().to_owned());
        pg.stop().unwrap();
        panic!("on purpose, while the server is stopped");
    }));
    assert!(outcome.is_err());
    let dir = seen.unwrap();
    assert!(!dir.exists(), "{} left behind", dir.display());
}

fn api_client(ha: &Ha) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ha.a.ca_cert_path()).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn spool_text(ha: &Ha, gateway: &str) -> String {
    let path = ha.dir.path().join(gateway).join(SPOOL_FILE);
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The live `cat` session still echoes.
async fn still_echoes(child: &mut tokio::process::Child, stdin: &mut tokio::process::ChildStdin) {
    stdin.write_all(b"again\n").await.unwrap();
    stdin.flush().await.unwrap();
    let mut line = [0u8; 6];
    tokio::time::timeout(
        Duration::from_secs(30),
        child.stdout.as_mut().unwrap().read_exact(&mut line),
    )
    .await
    .expect("a live session no longer echoes after the restart")
    .unwrap();
    assert_eq!(&line, b"again\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_postgres_restart_within_the_grace_keeps_sessions_and_loses_no_event() {
    let mut pg = PgServer::start().unwrap();
    let ha = Ha::start_on(
        &pg,
        HaOptions {
            cut: false,
            propagation: PropagationOptions {
                offline_grace: GRACE,
                resync_interval: Duration::from_secs(1),
                ..Default::default()
            },
        },
    )
    .await;
    let first = ha.grant(ha.ca(), Duration::from_secs(600)).await;
    ha.wait_sees(ha.cb(), first, true, Duration::from_secs(5))
        .await;
    let (mut on_a, mut in_a) = ha.live_cat("gwa").await;
    let (mut on_b, mut in_b) = ha.live_cat("gwb").await;

    // PostgreSQL stops (the postmaster ends every backend, the gateways' LISTEN included).
    let stopping = Instant::now();
    tokio::task::block_in_place(|| pg.stop()).unwrap();
    let down = Instant::now();
    let down_ms = Timestamp::now().as_millis();
    eprintln!("PostgreSQL stopped in {:?}", down - stopping);

    // An admin change through A's API, and a new jump through A, while it is down.
    let client = api_client(&ha);
    let url = format!("{}/v1/users", ha.a.api_url());
    let token = ha.a.admin_token();
    let change = tokio::spawn(async move {
        let sent = Instant::now();
        let status = client
            .post(url)
            .bearer_auth(token)
            .json(&serde_json::json!({"name": "mallory", "roles": ["admin"]}))
            .send()
            .await
            .map(|r| r.status());
        (status, sent.elapsed())
    });
    let jump = ha.jump("gwa", "true");
    let jump = tokio::spawn(async move {
        let out = jump.wait_with_output().await;
        (out, down.elapsed())
    });
    // The whole downtime, however soon they answer: the live sessions must ride it out.
    tokio::time::sleep(DOWNTIME.saturating_sub(down.elapsed())).await;
    let jump_done = jump.is_finished();
    let spooled_in_downtime = spool_text(&ha, "gw-a");
    let degraded = ha.ca().is_degraded() || ha.cb().is_degraded();
    let live_ended = on_a.try_wait().unwrap().is_some() || on_b.try_wait().unwrap().is_some();

    // PostgreSQL comes back on the same port and data dir.
    let restarting = Instant::now();
    tokio::task::block_in_place(|| pg.restart()).unwrap();
    let back = Instant::now();
    let back_ms = Timestamp::now().as_millis();
    eprintln!(
        "PostgreSQL was down {:?}, restarted in {:?}",
        back - down,
        back - restarting
    );

    // What happened during the downtime (checked now, so the report has the whole story).
    let (status, answered) = tokio::time::timeout(Duration::from_secs(60), change)
        .await
        .expect("the API never answered the change")
        .unwrap();
    let (out, jumped) = tokio::time::timeout(Duration::from_secs(60), jump)
        .await
        .expect("the jump through A never finished")
        .unwrap();
    let out = out.unwrap();
    eprintln!(
        "during the downtime: change answered {status:?} after {answered:?}, jump through A \
         finished {:?} after {jumped:?}",
        out.status
    );
    assert!(!degraded, "a gateway failed closed within the grace period");
    assert!(!live_ended, "a live session ended during the downtime");
    // What docs/ha.md promises for the downtime. A miss is collected, not asserted at once, so
    // the rest (recovery, no event lost) is still checked; the test fails at the end with all.
    let mut outage: Vec<String> = Vec::new();
    if !(jump_done && out.status.success()) {
        outage.push(format!(
            "a jump through A started in the downtime did not complete within it ({DOWNTIME:?}): \
             it finished {jumped:?} after the stop, {} ({:?} after the restart); stderr {:?}",
            out.status,
            jumped.saturating_sub(back - down),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if !spooled_in_downtime.contains("ssh.session.start") {
        outage.push(format!(
            "A's spool held no ssh.session.start at the end of the downtime: \
             {spooled_in_downtime:?}"
        ));
    }
    let status = status.expect("the API did not answer");
    // An admin change waits for the database up to the pool's acquire timeout (10 s): here the
    // database is back within it, so the change commits and only then is acknowledged.
    if !(status.is_success() || status.is_server_error()) || answered > Duration::from_secs(15) {
        outage.push(format!(
            "an admin change sent in the downtime was answered {status} {answered:?} after it \
             was sent: neither committed nor refused within the pool's 10 s"
        ));
    }
    // The sessions from before the outage survived it.
    assert!(on_a.try_wait().unwrap().is_none(), "the session on A ended");
    assert!(on_b.try_wait().unwrap().is_none(), "the session on B ended");
    still_echoes(&mut on_a, &mut in_a).await;
    still_echoes(&mut on_b, &mut in_b).await;

    // Both resync: a grant made through A is honoured through B.
    let second = ha
        .ca()
        .create_grant(
            &admin(),
            sallyport_core::api::CreateGrant {
                subject: sallyport_core::model::Subject::User(ha.alice.clone()),
                object: "127.0.0.1/32".parse().unwrap(),
                protocols: vec![sallyport_core::model::Protocol::Ssh],
                ports: Some(ha.sshd.port().to_string().parse().unwrap()),
                logins: Vec::new(),
                options: Default::default(),
                not_before: None,
                expires_at: None,
                duration_secs: Some(600),
                reason: "after the restart".parse().unwrap(),
            },
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "a grant through A {:?} after the restart failed: {e}",
                back.elapsed()
            )
        })
        .id;
    let took = ha
        .wait_sees(ha.cb(), second, true, Duration::from_secs(10))
        .await;
    eprintln!(
        "B saw a grant made through A {took:?} after it ({:?} after the restart)",
        back.elapsed()
    );
    // LISTEN is back on both (backoff up to 5 s), so changes travel at notification speed.
    let a_listen = ha
        .wait_listener("gw-a", None, Duration::from_secs(30))
        .await;
    let b_listen = ha
        .wait_listener("gw-b", None, Duration::from_secs(30))
        .await;
    eprintln!(
        "both LISTEN again ({a_listen}, {b_listen}) {:?} after the restart",
        back.elapsed()
    );

    // A revocation through B ends the sessions still live on A and on B.
    ha.cb().revoke_grant(&admin(), first).await.unwrap();
    let revoked = Instant::now();
    for (name, child) in [("A", &mut on_a), ("B", &mut on_b)] {
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .unwrap_or_else(|_| panic!("the session on {name} outlived the revocation by 10 s"))
            .unwrap();
        assert!(!status.success());
        let took = revoked.elapsed();
        eprintln!("the session on {name} ended {took:?} after the revocation through B");
        assert!(
            took < Duration::from_secs(2),
            "the session on {name} ended {took:?} after the revocation through B"
        );
    }
    drop((in_a, in_b));
    // The grant made through A after the restart is what lets a jump through B in now.
    let (ok, stderr) = ha.jump_once("gwb").await;
    assert!(ok, "a jump through B on the new grant failed: {stderr}");

    // A change answered 5xx was never applied; one that was acknowledged is committed.
    let mallory: Option<(String,)> =
        sqlx::query_as("SELECT name FROM users WHERE name = 'mallory'")
            .fetch_optional(&ha.db)
            .await
            .unwrap();
    if status.is_server_error() {
        assert_eq!(mallory, None, "a change answered {status} was applied");
    } else if status.is_success() {
        assert!(mallory.is_some(), "a change answered {status} is not there");
    }

    // Nothing lost: both spools drain, every session's start and end is journaled exactly once.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(spool_text(&ha, "gw-a").is_empty() && spool_text(&ha, "gw-b").is_empty()) {
        assert!(
            Instant::now() < deadline,
            "the spools were not drained: A {:?}, B {:?}",
            spool_text(&ha, "gw-a"),
            spool_text(&ha, "gw-b")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Sessions: the two live ones, the jump through A in the downtime, the jump through B.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (starts, ends) = loop {
        let mut starts: BTreeMap<String, usize> = BTreeMap::new();
        for r in ha.events("ssh.session.start").await {
            *starts.entry(r.session.unwrap()).or_default() += 1;
        }
        let mut ends: BTreeMap<String, usize> = BTreeMap::new();
        for r in ha.events("ssh.session.end").await {
            *ends.entry(r.session.unwrap()).or_default() += 1;
        }
        if starts.len() == 4 && starts.keys().eq(ends.keys()) {
            break (starts, ends);
        }
        assert!(
            Instant::now() < deadline,
            "sessions started {starts:?}, ended {ends:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        starts.values().chain(ends.values()).all(|&n| n == 1),
        "a session's start or end is journaled more than once: starts {starts:?}, ends {ends:?}"
    );
    let all = ha.ca().store().journal_after(0, 100_000).await.unwrap();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for r in &all {
        *ids.entry(r.id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = ids.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "events journaled twice: {twice:?}");
    // The jump made in the downtime: all its records are in A's chain, once.
    let downtime_session = all
        .iter()
        .find(|r| {
            r.event == "ssh.auth.success"
                && r.chain.as_deref() == Some("gw-a")
                && (down_ms..=back_ms).contains(&r.time.as_millis())
        })
        .and_then(|r| r.session.clone())
        .expect("the jump made through A in the downtime is not in the journal");
    let timeline: Vec<String> = all
        .iter()
        .filter(|r| r.session.as_deref() == Some(downtime_session.as_str()))
        .map(|r| {
            assert_eq!(r.chain.as_deref(), Some("gw-a"), "{r:?}");
            format!("{} at +{} ms", r.event, r.time.as_millis() - down_ms)
        })
        .collect();
    eprintln!(
        "the downtime jump's records (time after the stop; restart at +{} ms): {timeline:?}",
        back_ms - down_ms
    );
    let verified = ha.ca().store().verify_journal().await.unwrap();
    assert_eq!(verified.error(), None, "{verified:?}");
    let chains: Vec<Option<&str>> = verified.chains.iter().map(|c| c.chain.as_deref()).collect();
    assert!(
        chains.contains(&Some("gw-a")) && chains.contains(&Some("gw-b")),
        "chains verified: {chains:?}"
    );
    ha.shutdown().await;
    drop(pg);
    assert!(
        outage.is_empty(),
        "during the downtime ({DOWNTIME:?}, grace {GRACE:?}):\n- {}\nthe downtime jump's \
         records (restart at +{} ms): {timeline:?}",
        outage.join("\n- "),
        back_ms - down_ms
    );
}
