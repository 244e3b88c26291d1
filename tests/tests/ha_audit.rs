//! Instance identity in the shared journal: every record names the gateway that journaled it,
//! and a shipper on one gateway labels each event with its origin, not with itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ha_common;

use std::collections::BTreeSet;
use std::time::Duration;

use ha_common::{Ha, HaOptions};
use sallyport_gateway::audit::{spawn_shipper, LinesSink, ShipperOptions};
use sqlx::Row;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_name_their_gateway_and_shippers_keep_the_origin() {
    let ha = Ha::start(HaOptions::default()).await;
    let origins: BTreeSet<String> =
        sqlx::query("SELECT instance FROM audit_events WHERE event = 'gateway.start'")
            .fetch_all(&ha.db)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("instance"))
            .collect();
    assert_eq!(origins, BTreeSet::from(["gw-a".into(), "gw-b".into()]));

    // A shipper reading through A's store: B's records keep B's name.
    let (w, r) = tokio::io::duplex(1 << 20);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = spawn_shipper(
        ha.ca().store().clone(),
        LinesSink::new("ha-lines", w),
        ShipperOptions::new("gw-a"),
        stop_rx,
    );
    let mut lines = BufReader::new(r).lines();
    let mut started = BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while started.len() < 2 {
            let line = lines.next_line().await.unwrap().unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["event"] == "gateway.start" {
                // The event's own `instance` field equals the label (a different value
                // would be kept as `data_instance`).
                assert!(v.get("data_instance").is_none(), "{line}");
                started.insert(v["instance"].as_str().unwrap().to_owned());
            }
        }
    })
    .await
    .expect("the shipper did not ship both gateway.start events");
    assert_eq!(started, BTreeSet::from(["gw-a".into(), "gw-b".into()]));
    let _ = stop.send(true);
    drop(lines);
    let _ = task.await;
    ha.shutdown().await;
}
