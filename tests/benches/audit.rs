//! Audit benchmark: journal ingest (group commit, hash chain, SQLite), shipping to CloudWatch
//! Logs served by a local `moto_server`, and `audit search` latency over a large journal.
//!
//! ```text
//! cargo bench -p sallyport-tests --bench audit
//! AUDIT_BENCH_SEARCH_EVENTS=200000 cargo bench -p sallyport-tests --bench audit   # smaller
//! ```
//!
//! Goals (issue 4, on the 2-core machine): ingest ≥ 20,000 events/s; search by user and time
//! window over 1,000,000 events with p99 < 50 ms.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use sallyport_core::api::AuditQuery;
use sallyport_core::audit::{Event, EventKind};
use sallyport_core::time::Timestamp;
use sallyport_gateway::audit::{
    cloudwatch_client, spawn_shipper, CloudWatchSink, JournalWriter, ShipperOptions,
};
use sallyport_gateway::store::Store;
use sallyport_tests::cloudwatch;
use sallyport_tests::moto::{aws_env, MotoServer};
use tokio::sync::watch;

const USERS: usize = 1_000;
const DAY_MS: i64 = 86_400_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An SSH-like event by or about one of `USERS` users at `time`.
fn event(rng: &mut impl Rng, time: Timestamp) -> Event {
    let user = format!("user{}", rng.gen_range(0..USERS));
    let kind = EventKind::UserEnabled {
        user: user.parse().unwrap(),
    };
    // Half the events are done by the user themself (sessions), half by an admin.
    let actor = if rng.gen_bool(0.5) {
        user
    } else {
        "root-admin".to_owned()
    };
    Event::new(time, actor, kind).with_source(Some("192.0.2.7".into()))
}

async fn store(dir: &tempfile::TempDir, name: &str) -> Store {
    let s = Store::connect(&format!("sqlite://{}", dir.path().join(name).display()))
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s
}

/// Submits `total` events from `producers` tasks through the group-commit writer; returns
/// events/s from the first submit to the last commit. The events are made before the clock
/// starts: this measures the journal (queue, chain, SQLite), not the making of events.
async fn ingest(store: &Store, total: usize, producers: usize, start: Timestamp) -> f64 {
    let (writer, task) = JournalWriter::spawn(store.clone());
    let per = total / producers;
    let batches: Vec<Vec<Event>> = (0..producers)
        .map(|p| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(p as u64);
            (0..per)
                .map(|i| {
                    // Spread over 30 days, in journal order.
                    let n = (p + i * producers) as i64;
                    let t = start.as_millis() + n * 30 * DAY_MS / total as i64;
                    event(&mut rng, Timestamp::from_millis(t))
                })
                .collect()
        })
        .collect();
    let began = Instant::now();
    let mut tasks = Vec::new();
    for events in batches {
        let w = writer.clone();
        tasks.push(tokio::spawn(async move {
            for e in events {
                w.submit(e).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(writer);
    task.await.unwrap();
    (per * producers) as f64 / began.elapsed().as_secs_f64()
}

async fn one_by_one(store: &Store, total: usize) -> f64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let began = Instant::now();
    for _ in 0..total {
        store
            .append_event(&event(&mut rng, Timestamp::now()))
            .await
            .unwrap();
    }
    total as f64 / began.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mode = std::env::var("AUDIT_BENCH_MODE").unwrap_or_default();
    if mode == "raw" {
        raw(&dir).await;
        return;
    }

    println!("== journal ingest (SQLite, hash chain, group commit) ==");
    let base = Timestamp::now().saturating_sub(Duration::from_secs(31 * 86_400));
    for round in 1..=3 {
        let s = store(&dir, &format!("ingest{round}.db")).await;
        let cpu = cpu_seconds();
        let rate = ingest(&s, 200_000, 4, base).await;
        let cpu = cpu_seconds() - cpu;
        assert_eq!(s.verify_journal().await.unwrap().error(), None);
        println!(
            "round {round}: 200,000 events from 4 producers: {rate:.0} events/s \
             ({:.0} events per CPU-second of this process, {cpu:.1} CPU-s)",
            200_000.0 / cpu
        );
        s.close().await;
    }
    if mode == "ingest" {
        return;
    }
    let s = store(&dir, "single.db").await;
    println!(
        "reference, one transaction per event (Store::append_event): {:.0} events/s",
        one_by_one(&s, 5_000).await
    );
    s.close().await;

    println!("== shipping to CloudWatch Logs (local moto_server) ==");
    for (k, v) in aws_env() {
        std::env::set_var(k, v);
    }
    let moto = MotoServer::start().unwrap();
    let direct = cloudwatch::client(&moto.endpoint_url()).await;
    cloudwatch::create_group(&direct, "/bench").await.unwrap();
    let s = store(&dir, "ship.db").await;
    let shipped = 50_000;
    ingest(
        &s,
        shipped,
        2,
        Timestamp::now().saturating_sub(Duration::from_secs(3_600)),
    )
    .await;
    let client = cloudwatch_client(Some("us-east-1".into()), Some(moto.endpoint_url())).await;
    let (stop, rx) = watch::channel(false);
    let began = Instant::now();
    let task = spawn_shipper(
        s.clone(),
        CloudWatchSink::new(client, "/bench", "gw-bench", false),
        ShipperOptions::new("gw-bench"),
        rx,
    );
    let sink = "cloudwatch:/bench:gw-bench";
    while s.sink_checkpoint(sink, s.instance()).await.unwrap() < shipped as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "{shipped} events in {secs:.2} s: {:.0} events/s (batches of 10,000; one request in flight)",
        shipped as f64 / secs
    );
    stop.send(true).unwrap();
    task.await.unwrap();
    drop(moto);

    let total = env_usize("AUDIT_BENCH_SEARCH_EVENTS", 1_000_000);
    println!("== audit search over {total} events (user + 1-day window, limit 100) ==");
    let s = store(&dir, "search.db").await;
    let rate = ingest(&s, total, 4, base).await;
    println!("(built at {rate:.0} events/s)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut times = Vec::new();
    let mut found = 0usize;
    for _ in 0..300 {
        let day = rng.gen_range(0..29);
        let since = Timestamp::from_millis(base.as_millis() + day * DAY_MS);
        let q = AuditQuery {
            user: Some(format!("user{}", rng.gen_range(0..USERS))),
            since: Some(since),
            until: Some(Timestamp::from_millis(since.as_millis() + DAY_MS)),
            ..AuditQuery::default()
        };
        let began = Instant::now();
        found += s.search_journal(&q).await.unwrap().len();
        times.push(began.elapsed());
    }
    times.sort();
    println!(
        "300 queries, {:.1} results each: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        found as f64 / 300.0,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3,
    );
    s.close().await;
}

/// Where the ingest time goes: chaining alone, then journal_many in groups without the queue.
async fn raw(dir: &tempfile::TempDir) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let events: Vec<Event> = (0..100_000)
        .map(|_| event(&mut rng, Timestamp::now()))
        .collect();
    let began = Instant::now();
    let mut head = sallyport_core::audit::ChainHead::default();
    for e in &events {
        let r = head.append(e);
        head = sallyport_core::audit::ChainHead::from(&r);
    }
    println!(
        "chain only: {:.0} events/s",
        100_000.0 / began.elapsed().as_secs_f64()
    );
    for group in [256usize, 2048] {
        let s = store(dir, &format!("raw{group}.db")).await;
        let began = Instant::now();
        for chunk in events.chunks(group) {
            let mut tx = s.write().await.unwrap();
            tx.journal_many(chunk).await.unwrap();
            tx.commit().await.unwrap();
        }
        println!(
            "journal_many, groups of {group}: {:.0} events/s",
            100_000.0 / began.elapsed().as_secs_f64()
        );
        s.close().await;
    }
}

/// User + system CPU seconds of this process so far (from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after "(comm) ".
    let ticks: f64 = [11usize, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}
