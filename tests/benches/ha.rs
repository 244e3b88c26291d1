//! Revocation latency across gateways: two in-process gateways (`gw-a`, `gw-b`) on one real
//! PostgreSQL (started by the harness), an OpenSSH `ssh -J gwb … cat` session live through B,
//! the grant revoked through A. Per trial it measures, from just before `revoke_grant` on A:
//!
//! - `snapshot`: until B's policy snapshot no longer has the grant (LISTEN/NOTIFY + reload);
//! - `session`: until the `ssh` client process has exited (B cut the tunnel and disconnected).
//!
//! ```text
//! cargo bench -p sallyport-tests --bench ha                      # 100 trials
//! HA_BENCH_TRIALS=20 cargo bench -p sallyport-tests --bench ha   # fewer
//! ```
//!
//! Goal (issue 8): the session on B ends within one second of the revocation on A.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../tests/ha_common/mod.rs"]
mod ha_common;

use std::time::{Duration, Instant};

use ha_common::{admin, Ha, HaOptions};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<9} n={:<4} p50 {:>7.1} ms   p99 {:>7.1} ms   min {:>7.1} ms   max {:>7.1} ms",
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials: usize = std::env::var("HA_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let ha = Ha::start(HaOptions::default()).await;
    let mut snapshot = Vec::with_capacity(trials);
    let mut session = Vec::with_capacity(trials);
    for trial in 0..trials {
        let grant = ha.grant(ha.ca(), Duration::from_secs(600)).await;
        ha.wait_sees(ha.cb(), grant, true, Duration::from_secs(5))
            .await;
        let (mut child, _stdin) = ha.live_cat("gwb").await;

        let start = Instant::now();
        ha.ca().revoke_grant(&admin(), grant).await.unwrap();
        // Watch B's snapshot and the client together.
        let mut seen = None;
        let ended = loop {
            if seen.is_none() && !ha.sees(ha.cb(), grant) {
                seen = Some(start.elapsed());
            }
            match tokio::time::timeout(Duration::from_millis(1), child.wait()).await {
                Ok(status) => {
                    assert!(!status.unwrap().success());
                    break start.elapsed();
                }
                Err(_) => assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "trial {trial}: the session on B outlived the revocation by 10 s"
                ),
            }
        };
        let seen = seen.unwrap_or(ended);
        snapshot.push(seen);
        session.push(ended);
        if (trial + 1) % 10 == 0 {
            eprintln!("{} trials", trial + 1);
        }
    }
    println!(
        "revocation on gw-a -> effect on gw-b, {trials} trials (PostgreSQL LISTEN/NOTIFY, OpenSSH ssh -J)"
    );
    report("snapshot", snapshot);
    report("session", session.clone());
    let over = session
        .iter()
        .filter(|d| **d >= Duration::from_secs(1))
        .count();
    println!("sessions ended later than 1 s: {over}");
    ha.shutdown().await;
}
