//! Journal appends from two gateways on one PostgreSQL: per-instance chains against one chain
//! both gateways must take turns on (what every gateway did before migration 0008).
//!
//! Two stores with their own connection pools stand for two gateways. Each runs
//! `HA_JOURNAL_WRITERS` tasks (default 1: a gateway's own writers take turns anyway) that
//! append one event per transaction (as SSH session events are journaled) for
//! `HA_JOURNAL_EVENTS` events in all. Two layouts, alternated for `HA_JOURNAL_ROUNDS` rounds on
//! fresh databases:
//!
//! - `per-instance`: the stores are `gw-a` and `gw-b`: each appends to its own chain and locks
//!   only its own head row;
//! - `one chain`: both stores are named `gw-x`: every append of either locks the same head row.
//!
//! The stores reach PostgreSQL through a relay that delays every chunk by half of
//! `HA_JOURNAL_RTT_MS` (default 1 ms) each way, as a gateway reaches RDS in another
//! availability zone; with 0 they connect directly. A head row stays locked for the round
//! trips of its transaction, so that is where the layouts differ.
//!
//! ```text
//! cargo bench -p sallyport-tests --bench ha_journal
//! HA_JOURNAL_EVENTS=2000 HA_JOURNAL_ROUNDS=1 HA_JOURNAL_RTT_MS=0 cargo bench -p sallyport-tests --bench ha_journal
//! ```
//!
//! It reports events/s and the per-append latency (p50, p99), and checks that every chain
//! verifies afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use sallyport_core::audit::{Event, EventKind};
use sallyport_core::time::Timestamp;
use sallyport_gateway::store::Store;
use sallyport_tests::postgres::PgServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn event(i: usize) -> Event {
    let user = format!("user{}", i % 1000);
    Event::new(
        Timestamp::now(),
        user.clone(),
        EventKind::UserEnabled {
            user: user.parse().unwrap(),
        },
    )
}

/// Appends `per_store` events through each store, `writers` tasks each; returns events/s and
/// every append's latency.
async fn run(stores: &[Store], per_store: usize, writers: usize) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for store in stores {
        for w in 0..writers {
            let store = store.clone();
            let n = per_store / writers;
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(n);
                for i in 0..n {
                    let e = event(w * n + i);
                    let t = Instant::now();
                    store.append_event(&e).await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

/// Copies one direction, each chunk delivered `delay` after it was read (order kept).
async fn delayed_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due.into()).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0
            || tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
        {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// A relay on loopback to `upstream` that delays each direction by `one_way`.
async fn latency_relay(upstream: u16, one_way: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(delayed_copy(cr, sw, one_way), delayed_copy(sr, cw, one_way));
            });
        }
    });
    port
}

async fn gateways(pg: &PgServer, names: [&str; 2], relay: Option<u16>) -> Vec<Store> {
    let mut url = pg.fresh_database().unwrap();
    if let Some(port) = relay {
        url = url.replace(&format!(":{}/", pg.port()), &format!(":{port}/"));
        assert!(
            url.contains(&format!(":{port}/")),
            "cannot route {url} through the relay"
        );
    }
    let mut stores = Vec::new();
    for name in names {
        let s = Store::connect(&url).await.unwrap();
        s.migrate().await.unwrap();
        s.set_instance(name);
        stores.push(s);
    }
    stores
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total = env_usize("HA_JOURNAL_EVENTS", 8000);
    let rounds = env_usize("HA_JOURNAL_ROUNDS", 3);
    let rtt_ms = env_usize("HA_JOURNAL_RTT_MS", 1);
    let writers = env_usize("HA_JOURNAL_WRITERS", 1).max(1);
    let pg = PgServer::start().unwrap();
    let relay = if rtt_ms == 0 {
        None
    } else {
        Some(latency_relay(pg.port(), Duration::from_micros(rtt_ms as u64 * 500)).await)
    };
    println!(
        "{total} events per run, 2 gateways x {writers} writers, one event per transaction, \
         {rtt_ms} ms round trip to PostgreSQL, {rounds} rounds"
    );
    for round in 1..=rounds {
        for (layout, names) in [
            ("per-instance", ["gw-a", "gw-b"]),
            ("one chain", ["gw-x", "gw-x"]),
        ] {
            let stores = gateways(&pg, names, relay).await;
            let (rate, lat) = run(&stores, total / 2, writers).await;
            let outcome = stores[0].verify_journal().await.unwrap();
            assert_eq!(outcome.error(), None, "{outcome:?}");
            assert_eq!(outcome.count() as usize, lat.len());
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "round {round}  {layout:<12}  {rate:>7.0} events/s   append p50 {:>6.2} ms   p99 {:>6.2} ms   chains {}",
                ms(percentile(&lat, 50.0)),
                ms(percentile(&lat, 99.0)),
                outcome.chains.len(),
            );
            for s in stores {
                s.close().await;
            }
        }
    }
}
