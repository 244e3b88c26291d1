//! Shipping the journal to CloudWatch Logs served by a harness-started `moto_server`, with a
//! fault-injecting proxy in between: complete and in order, CloudWatch down and back,
//! throttling and 5xx retried, invalid input not resent as is, rejected events reported; and
//! the stdout (JSON lines) sink resuming from its checkpoint. The store has no instance name
//! (it ships the shared chain) unless a test gives it one (it ships its own chain, and reports
//! name that chain).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Once;
use std::time::{Duration, Instant};

use sallyport_core::audit::flat::flat_object;
use sallyport_core::audit::{Event, EventKind, Record};
use sallyport_core::time::Timestamp;
use sallyport_gateway::audit::{
    cloudwatch_client, spawn_shipper, Backoff, CloudWatchSink, JournalWriter, LinesSink,
    ShipperOptions,
};
use sallyport_gateway::store::Store;
use sallyport_tests::cloudwatch;
use sallyport_tests::fault::{Fault, FaultProxy};
use sallyport_tests::moto::{aws_env, MotoServer};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const GROUP: &str = "/sallyport/audit";
const STREAM: &str = "gw-test";
const SINK: &str = "cloudwatch:/sallyport/audit:gw-test";

fn aws_environment() {
    static ENV: Once = Once::new();
    ENV.call_once(|| {
        for (k, v) in aws_env() {
            std::env::set_var(k, v);
        }
    });
}

struct World {
    store: Store,
    writer: JournalWriter,
    moto: MotoServer,
    proxy: FaultProxy,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    world_of(None).await
}

/// A world whose store journals to (and ships) `instance`'s chain, or the shared chain.
async fn world_of(instance: Option<&str>) -> World {
    aws_environment();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("j.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    if let Some(name) = instance {
        store.set_instance(name);
    }
    let (writer, _task) = JournalWriter::spawn(store.clone());
    let moto = MotoServer::start().unwrap();
    let proxy = FaultProxy::start(&moto.endpoint_url()).await.unwrap();
    let direct = cloudwatch::client(&moto.endpoint_url()).await;
    cloudwatch::create_group(&direct, GROUP).await.unwrap();
    World {
        store,
        writer,
        moto,
        proxy,
        _dir: dir,
    }
}

fn event(i: usize) -> Event {
    let kind = match i % 3 {
        0 => EventKind::UserDisabled {
            user: format!("user{}", i % 17).parse().unwrap(),
        },
        1 => EventKind::GrantRevoked {
            grant: "6f1c1c4e-3b8e-4a43-9d49-3a3f0b1b7d7c".parse().unwrap(),
            subject: "@dba".parse().unwrap(),
        },
        _ => EventKind::TargetRemoved {
            target: format!("db-{}", i % 5).parse().unwrap(),
        },
    };
    Event::new(Timestamp::now(), "root-admin", kind).with_source(Some("192.0.2.7".into()))
}

impl World {
    async fn journal(&self, n: usize) {
        for i in 0..n {
            self.writer.submit(event(i)).await.unwrap();
        }
        // Answered after the commit of everything queued before it.
        self.writer.record(event(n)).await.unwrap();
    }

    fn ship(&self, shutdown: &watch::Receiver<bool>) -> JoinHandle<()> {
        self.ship_named(STREAM, shutdown)
    }

    fn ship_named(&self, stream: &str, shutdown: &watch::Receiver<bool>) -> JoinHandle<()> {
        let endpoint = self.proxy.endpoint_url();
        let store = self.store.clone();
        let shutdown = shutdown.clone();
        let stream = stream.to_owned();
        let mut opts = ShipperOptions::new("gw-test");
        opts.flush = Duration::from_millis(200);
        opts.backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(500));
        tokio::spawn(async move {
            let client = cloudwatch_client(Some("us-east-1".into()), Some(endpoint)).await;
            let sink = CloudWatchSink::new(client, GROUP, stream, false);
            spawn_shipper(store, sink, opts, shutdown).await.unwrap();
        })
    }

    async fn head(&self) -> u64 {
        self.store.journal_head().await.unwrap().seq
    }

    /// Waits until the sink's checkpoint in the store's chain reaches that chain's head (which
    /// may grow as reports are journaled).
    async fn wait_shipped(&self, sink: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let head = self.head().await;
            let at = self
                .store
                .sink_checkpoint(sink, self.store.instance())
                .await
                .unwrap();
            if at == head {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{sink}: checkpoint {at} never reached head {head}; moto log:\n{}",
                self.moto.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn records(&self) -> Vec<Record> {
        self.store.journal_after(0, 1_000_000).await.unwrap()
    }

    async fn stream(&self) -> Vec<(i64, Value)> {
        let direct = cloudwatch::client(&self.moto.endpoint_url()).await;
        cloudwatch::events(&direct, GROUP, STREAM).await.unwrap()
    }

    /// Every record arrived complete (the flat form, field for field), exactly `copies` times
    /// at most, and each copy of a seq has the record's id.
    async fn assert_delivered(&self, max_copies: usize) -> usize {
        let records = self.records().await;
        let events = self.stream().await;
        let by_seq = cloudwatch::by_seq(&events).unwrap();
        assert_eq!(
            by_seq.len(),
            records.len(),
            "every record arrives: {} records, {} distinct seqs in CloudWatch",
            records.len(),
            by_seq.len()
        );
        for r in &records {
            let copies = &by_seq[&r.seq];
            assert!(
                copies.len() <= max_copies,
                "seq {} arrived {} times",
                r.seq,
                copies.len()
            );
            let expected = Value::Object(flat_object(r, "gw-test"));
            for c in copies {
                assert_eq!(c, &expected, "seq {} arrived complete", r.seq);
            }
        }
        events.len()
    }
}

#[tokio::test]
async fn events_arrive_complete_and_in_order() {
    let w = world().await;
    w.journal(2_500).await;
    // One event larger than CloudWatch takes (256 KiB): shipped in parts, joined back here.
    let big = EventKind::KeyAdded {
        user: "alice".parse().unwrap(),
        fingerprint: "SHA256:T1gHBmezYSIRvjNkDEJ8GRmIha8Q+61Ejorvnqm9Ceo"
            .to_owned()
            .try_into()
            .unwrap(),
        algorithm: "ssh-ed25519".into(),
        comment: "\"quoted\" ".repeat(40_000),
    };
    w.writer
        .record(Event::new(Timestamp::now(), "root-admin", big))
        .await
        .unwrap();
    w.journal(500).await;
    let (stop, rx) = watch::channel(false);
    let task = w.ship(&rx);
    w.wait_shipped(SINK, Duration::from_secs(60)).await;
    let events = w.stream().await;
    let stamps: Vec<i64> = events.iter().map(|(t, _)| *t).collect();
    assert!(stamps.windows(2).all(|p| p[0] <= p[1]), "in time order");
    let seqs: Vec<u64> = events
        .iter()
        .map(|(_, v)| v["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|p| p[0] <= p[1]), "in journal order");
    let sent = w.assert_delivered(1).await;
    let status = &w.store.sink_statuses().await.unwrap()[0];
    assert_eq!(
        status.delivered as usize, sent,
        "delivered counts CloudWatch events"
    );
    assert_eq!(status.backlog_events, 0);
    assert!(
        sent > w.head().await as usize,
        "the big event went in parts"
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn cloudwatch_down_for_a_while_then_back_loses_nothing() {
    let w = world().await;
    w.proxy.set_down(true);
    let (stop, rx) = watch::channel(false);
    let task = w.ship(&rx);
    w.journal(700).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = &w.store.sink_statuses().await.unwrap()[0];
    assert_eq!(status.checkpoint_seq, 0, "nothing acknowledged while down");
    assert_eq!(status.backlog_events, w.head().await);
    assert!(status.oldest_pending.is_some());
    assert!(
        status.last_error.is_some(),
        "the failure is visible: {status:?}"
    );
    assert!(
        w.proxy.requests("CreateLogStream") + w.proxy.requests("PutLogEvents") >= 3,
        "retried"
    );
    w.journal(300).await;
    w.proxy.set_down(false);
    w.wait_shipped(SINK, Duration::from_secs(60)).await;
    let sent = w.assert_delivered(1).await;
    assert_eq!(sent as u64, w.head().await, "counts equal");
    assert!(w.store.sink_statuses().await.unwrap()[0]
        .last_error
        .is_none());
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn throttling_5xx_and_dropped_connections_are_retried() {
    let w = world().await;
    w.proxy.inject(
        "PutLogEvents",
        [
            Fault::Throttle,
            Fault::Unavailable,
            Fault::ServerError,
            Fault::Drop,
            Fault::Throttle,
        ],
    );
    let (stop, rx) = watch::channel(false);
    let task = w.ship(&rx);
    for _ in 0..3 {
        w.journal(400).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    w.wait_shipped(SINK, Duration::from_secs(60)).await;
    assert_eq!(w.proxy.pending("PutLogEvents"), 0);
    assert_eq!(w.proxy.injected(), 5);
    let sent = w.assert_delivered(1).await;
    assert_eq!(sent as u64, w.head().await, "nothing lost, nothing doubled");
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn invalid_parameter_is_not_resent_and_a_refused_event_is_reported() {
    let w = world().await;
    w.journal(9).await; // 10 events
    w.proxy.inject("PutLogEvents", [Fault::Invalid]);
    let (stop, rx) = watch::channel(false);
    let task = w.ship(&rx);
    w.wait_shipped(SINK, Duration::from_secs(30)).await;
    // The refused batch of 10 was not sent again as is: its halves were.
    let sizes: Vec<usize> = w
        .proxy
        .forwarded_puts()
        .iter()
        .map(|b| {
            serde_json::from_slice::<Value>(b).unwrap()["logEvents"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(&sizes[..2], &[5, 5], "{sizes:?}");
    w.assert_delivered(1).await;

    // A single event refused on its own is reported, not resent, and not lost from the journal.
    w.proxy.inject("PutLogEvents", [Fault::Invalid]);
    let refused = w.writer.record(event(1)).await.unwrap();
    w.wait_shipped(SINK, Duration::from_secs(30)).await;
    let status = &w.store.sink_statuses().await.unwrap()[0];
    assert_eq!(status.rejected, 1);
    let q = w.store.quarantined(SINK, None, 10).await.unwrap();
    assert_eq!((q[0].seq, q[0].reason.as_str()), (refused.seq, "invalid"));
    let report = w
        .records()
        .await
        .into_iter()
        .find(|r| r.event == "audit.ship.rejected")
        .expect("an audit.ship.rejected record");
    assert_eq!(report.data["first_seq"], refused.seq);
    assert_eq!(report.data["reason"], "invalid");
    assert_eq!(report.data["chain"], Value::Null, "the shared chain");
    let arrived = cloudwatch::by_seq(&w.stream().await).unwrap();
    assert!(!arrived.contains_key(&refused.seq));
    assert!(
        arrived.contains_key(&report.seq),
        "the report itself is shipped"
    );
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn rejected_log_events_info_is_recorded_as_an_event_and_a_count() {
    // A gateway's own chain: the quarantine list and the report name it.
    let w = world_of(Some("gw-test")).await;
    w.journal(4).await; // 5 events, one batch
    w.proxy.inject("PutLogEvents", [Fault::RejectTooNew(2)]);
    let (stop, rx) = watch::channel(false);
    let task = w.ship(&rx);
    w.wait_shipped(SINK, Duration::from_secs(30)).await;
    let statuses = w.store.sink_statuses().await.unwrap();
    assert_eq!(
        statuses.len(),
        1,
        "the empty shared chain gets no row: {statuses:?}"
    );
    let status = &statuses[0];
    assert_eq!(status.chain.as_deref(), Some("gw-test"));
    assert_eq!(status.rejected, 3, "indexes 2, 3 and 4 of the batch");
    assert!(w
        .store
        .quarantined(SINK, None, 10)
        .await
        .unwrap()
        .is_empty());
    let q = w
        .store
        .quarantined(SINK, Some("gw-test"), 10)
        .await
        .unwrap();
    assert_eq!(q.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert!(q.iter().all(|e| e.reason == "too_new"));
    let report = w
        .records()
        .await
        .into_iter()
        .find(|r| r.event == "audit.ship.rejected")
        .unwrap();
    assert_eq!(
        (
            &report.data["count"],
            &report.data["first_seq"],
            &report.data["last_seq"]
        ),
        (&Value::from(3), &Value::from(3), &Value::from(5))
    );
    assert_eq!(
        (report.chain.as_deref(), &report.data["chain"]),
        (Some("gw-test"), &Value::from("gw-test")),
        "journaled in the gateway's chain, about seqs of that chain"
    );
    assert_eq!(status.delivered, 3, "two events and the report");
    stop.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn stdout_sink_writes_json_lines_and_resumes_from_its_checkpoint() {
    let w = world().await;
    w.journal(99).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |file: std::path::PathBuf| {
        let store = w.store.clone();
        let (stop, rx) = watch::channel(false);
        let mut opts = ShipperOptions::new("gw-test");
        opts.flush = Duration::from_millis(100);
        let task = tokio::spawn(async move {
            let out = tokio::fs::File::create(file).await.unwrap();
            spawn_shipper(store, LinesSink::new("stdout", out), opts, rx)
                .await
                .unwrap();
        });
        (stop, task)
    };
    let (stop, task) = run(dir.path().join("1.jsonl"));
    w.wait_shipped("stdout", Duration::from_secs(20)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    w.journal(49).await;
    let (stop, task) = run(dir.path().join("2.jsonl"));
    w.wait_shipped("stdout", Duration::from_secs(20)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let lines = |name: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (first, second) = (lines("1.jsonl"), lines("2.jsonl"));
    assert_eq!(first.len(), 100);
    assert_eq!(
        second.len(),
        50,
        "the second run starts after the checkpoint"
    );
    let records = w.records().await;
    for (line, r) in first.iter().chain(&second).zip(&records) {
        assert_eq!(line, &Value::Object(flat_object(r, "gw-test")));
    }
}

#[tokio::test]
async fn creates_the_log_group_only_when_asked() {
    let w = world().await;
    w.journal(20).await;
    let direct = cloudwatch::client(&w.moto.endpoint_url()).await;
    let run = |group: &'static str, create: bool| {
        let (endpoint, store) = (w.proxy.endpoint_url(), w.store.clone());
        let (stop, rx) = watch::channel(false);
        let mut opts = ShipperOptions::new("gw-test");
        opts.flush = Duration::from_millis(100);
        opts.backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(200));
        let task = tokio::spawn(async move {
            let client = cloudwatch_client(Some("us-east-1".into()), Some(endpoint)).await;
            let sink = CloudWatchSink::new(client, group, STREAM, create);
            spawn_shipper(store, sink, opts, rx).await.unwrap();
        });
        (stop, task)
    };
    // Without create_log_group, a missing group is waited for (retried), never created.
    let (stop, task) = run("/missing", false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        w.store
            .sink_checkpoint("cloudwatch:/missing:gw-test", None)
            .await
            .unwrap(),
        0
    );
    let groups = direct.describe_log_groups().send().await.unwrap();
    assert!(groups
        .log_groups()
        .iter()
        .all(|g| g.log_group_name() != Some("/missing")));
    stop.send(true).unwrap();
    task.await.unwrap();
    // With it, the group and the stream are created and everything arrives.
    let (stop, task) = run("/created", true);
    w.wait_shipped("cloudwatch:/created:gw-test", Duration::from_secs(30))
        .await;
    let events = cloudwatch::events(&direct, "/created", STREAM)
        .await
        .unwrap();
    assert_eq!(events.len() as u64, w.head().await);
    stop.send(true).unwrap();
    task.await.unwrap();
}
