//! Instance identity and per-instance chains in the shared journal: every record names the
//! gateway that journaled it, each gateway appends to its own hash chain, and each gateway's
//! shipper sends exactly its own chain to its own CloudWatch stream (served by a
//! harness-started `moto_server`): ids and hashes as journaled, seqs contiguous from 1, each
//! record linking to the one before, nothing of the other gateway.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ha_common;

use std::collections::BTreeSet;
use std::sync::Once;
use std::time::{Duration, Instant};

use ha_common::{admin, Ha, HaOptions};
use sallyport_core::api::CreateUser;
use sallyport_core::audit::GENESIS_HASH;
use sallyport_core::model::Role;
use sallyport_gateway::audit::{cloudwatch_client, spawn_shipper, CloudWatchSink, ShipperOptions};
use sallyport_gateway::control::Control;
use sallyport_gateway::store::Store;
use sallyport_tests::cloudwatch;
use sallyport_tests::moto::{aws_env, MotoServer};
use serde_json::Value;
use sqlx::Row;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const GROUP: &str = "/sallyport/ha";

fn aws_environment() {
    static ENV: Once = Once::new();
    ENV.call_once(|| {
        for (k, v) in aws_env() {
            std::env::set_var(k, v);
        }
    });
}

/// Ships `store`'s chain to the stream named after its instance.
fn ship(store: &Store, moto: &MotoServer, stop: &watch::Receiver<bool>) -> JoinHandle<()> {
    let name = store.instance().unwrap().to_owned();
    let (store, endpoint, stop) = (store.clone(), moto.endpoint_url(), stop.clone());
    let mut opts = ShipperOptions::new(name.clone());
    opts.flush = Duration::from_millis(100);
    tokio::spawn(async move {
        let client = cloudwatch_client(Some("us-east-1".into()), Some(endpoint)).await;
        let sink = CloudWatchSink::new(client, GROUP, name, false);
        spawn_shipper(store, sink, opts, stop).await.unwrap();
    })
}

fn sink(instance: &str) -> String {
    format!("cloudwatch:{GROUP}:{instance}")
}

/// Admin changes through `control`, one after the other.
async fn users(control: &Control, prefix: &str, n: usize) {
    for i in 0..n {
        control
            .create_user(
                &admin(),
                CreateUser {
                    name: format!("{prefix}-{i}").parse().unwrap(),
                    roles: vec![Role::Engineer],
                    groups: Vec::new(),
                },
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_gateway_ships_exactly_its_own_chain_to_its_own_stream() {
    aws_environment();
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
    let (sa, sb) = (ha.ca().store().clone(), ha.cb().store().clone());
    assert_eq!(
        sa.chain_head(None).await.unwrap().map_or(0, |h| h.seq),
        0,
        "a new deployment has nothing in the shared chain"
    );

    let moto = MotoServer::start().unwrap();
    let direct = cloudwatch::client(&moto.endpoint_url()).await;
    cloudwatch::create_group(&direct, GROUP).await.unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let shippers = [ship(&sa, &moto, &stop_rx), ship(&sb, &moto, &stop_rx)];

    // Both gateways journal at once: admin changes on each, a jump through each.
    let grant = ha.grant(ha.ca(), Duration::from_secs(600)).await;
    ha.wait_sees(ha.cb(), grant, true, Duration::from_secs(5))
        .await;
    let (_, _, ja, jb) = tokio::join!(
        users(ha.ca(), "on-a", 15),
        users(ha.cb(), "on-b", 15),
        ha.jump_once("gwa"),
        ha.jump_once("gwb"),
    );
    assert!(ja.0, "jump through A: {}", ja.1);
    assert!(jb.0, "jump through B: {}", jb.1);

    // Each sink catches up with its own chain.
    let deadline = Instant::now() + Duration::from_secs(60);
    for store in [&sa, &sb] {
        let name = store.instance().unwrap();
        loop {
            let head = store.journal_head().await.unwrap().seq;
            let at = store
                .sink_checkpoint(&sink(name), Some(name))
                .await
                .unwrap();
            if at == head {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: checkpoint {at}, head {head}; moto log:\n{}",
                moto.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    stop.send(true).unwrap();
    for s in shippers {
        s.await.unwrap();
    }

    for (store, other) in [(&sa, "gw-b"), (&sb, "gw-a")] {
        let name = store.instance().unwrap();
        // What the sink acknowledged (the chain may have grown since, e.g. a session's end).
        let shipped = store
            .sink_checkpoint(&sink(name), Some(name))
            .await
            .unwrap();
        let records: Vec<_> = store
            .chain_after(Some(name), 0, 100_000)
            .await
            .unwrap()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| r.seq <= shipped)
            .collect();
        assert!(
            records.iter().any(|r| r.event == "ssh.session.start"),
            "{name}: its jump is in its chain"
        );
        let mut events: Vec<Value> = cloudwatch::events(&direct, GROUP, name)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert!(
            events
                .iter()
                .all(|v| v["chain"] == name && v["instance"] == name),
            "{name}'s stream holds its own chain only"
        );
        assert!(!events.iter().any(|v| v["chain"] == other));
        events.sort_by_key(|v| v["seq"].as_u64().unwrap());
        let seqs: Vec<u64> = events.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (1..=shipped).collect::<Vec<_>>(),
            "{name}: seqs contiguous from 1, each once"
        );
        let mut prev = GENESIS_HASH.to_owned();
        for (v, r) in events.iter().zip(&records) {
            assert_eq!(
                (&v["id"], &v["hash"], &v["event"]),
                (
                    &Value::from(r.id.as_str()),
                    &Value::from(r.hash.as_str()),
                    &Value::from(r.event.as_str())
                ),
                "{name} seq {}: as journaled",
                r.seq
            );
            assert_eq!(v["prev_hash"], prev.as_str(), "{name} seq {}: links", r.seq);
            prev = r.hash.clone();
        }
        assert!(
            events.iter().any(|v| v["event"] == "gateway.start"),
            "{name}: its own start"
        );
    }
    let outcome = sa.verify_journal().await.unwrap();
    assert_eq!(outcome.error(), None);
    assert_eq!(
        outcome
            .chains
            .iter()
            .map(|c| c.chain.clone())
            .collect::<Vec<_>>(),
        vec![Some("gw-a".to_owned()), Some("gw-b".to_owned())]
    );
    let backlog: Vec<(String, Option<String>)> = sa
        .sink_statuses()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.sink, s.chain))
        .collect();
    assert_eq!(
        backlog,
        vec![
            (sink("gw-a"), Some("gw-a".to_owned())),
            (sink("gw-b"), Some("gw-b".to_owned())),
        ],
        "one checkpoint per gateway stream, none for the empty shared chain"
    );
    ha.shutdown().await;
}
