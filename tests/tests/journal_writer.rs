//! Group commit and sink checkpoints, against SQLite and a harness-started PostgreSQL: many
//! producers and admin changes at once keep one verified chain; checkpoints, per (sink, chain),
//! never go back; backlog figures follow each chain's head; two gateways appending at once each
//! ship their own chain and the shared chain, and resume each at its checkpoint.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::time::{Duration, Instant};

use sallyport_core::api::CreateUser;
use sallyport_core::audit::flat::flat_object;
use sallyport_core::audit::{Event, EventKind};
use sallyport_core::model::Role;
use sallyport_core::time::Timestamp;
use sallyport_gateway::audit::{spawn_shipper, JournalWriter, LinesSink, ShipperOptions};
use sallyport_gateway::control::Actor;
use sallyport_gateway::store::{QuarantineEntry, Store};
use sallyport_tests::backends::Backend;
use serde_json::Value;
use tokio::sync::watch;

fn event(i: usize) -> Event {
    Event::new(
        Timestamp::now(),
        "root-admin",
        EventKind::UserEnabled {
            user: format!("u{}", i % 31).parse().unwrap(),
        },
    )
}

sallyport_tests::both_backends!(
    group_commit_and_admin_changes_keep_one_chain,
    checkpoints_never_go_back_and_backlog_follows_the_head,
    each_gateway_ships_its_own_chain_and_the_shared_one,
);

async fn group_commit_and_admin_changes_keep_one_chain(b: Backend) {
    let c = b.control().await.unwrap();
    let (writer, task) = JournalWriter::spawn(c.store().clone());
    let mut head = c.store().watch_head();
    let mut producers = Vec::new();
    for p in 0..8 {
        let w = writer.clone();
        producers.push(tokio::spawn(async move {
            let mut last = 0;
            for i in 0..500 {
                if i % 100 == 99 {
                    // Waits for its commit; the seq only grows for one producer.
                    let r = w.record(event(p * 1000 + i)).await.unwrap();
                    assert!(r.seq > last);
                    last = r.seq;
                } else {
                    w.submit(event(p * 1000 + i)).await.unwrap();
                }
            }
        }));
    }
    for i in 0..10 {
        let req = CreateUser {
            name: format!("admin-change-{i}").parse().unwrap(),
            roles: vec![Role::Engineer],
            groups: vec![],
        };
        c.create_user(&Actor::system(), req).await.unwrap();
    }
    for p in producers {
        p.await.unwrap();
    }
    drop(writer);
    task.await.unwrap();
    let outcome = c.store().verify_journal().await.unwrap();
    assert_eq!(outcome.error(), None);
    assert_eq!(outcome.count(), 8 * 500 + 10);
    assert_eq!(
        *head.borrow_and_update(),
        8 * 500 + 10,
        "the head watch follows commits"
    );
    // Each admin change is in the journal with its user row.
    let users = c.store().list_users().await.unwrap();
    assert_eq!(users.len(), 10);
}

/// The time of the first record of `chain` after its seq `after`.
async fn first_time(store: &Store, chain: Option<&str>, after: u64) -> Timestamp {
    store.chain_after(chain, after, 1).await.unwrap()[0].0.time
}

async fn checkpoints_never_go_back_and_backlog_follows_the_head(b: Backend) {
    const SINK: &str = "cloudwatch:/g:s";
    let c = b.control().await.unwrap();
    // The store without an instance appends to the shared chain; `gw` to its own chain.
    let store = c.store().clone();
    let gw = Store::connect(&b.url).await.unwrap();
    gw.set_instance("gw-x");
    let (writer, task) = JournalWriter::spawn(store.clone());
    let (gw_writer, gw_task) = JournalWriter::spawn(gw.clone());
    for i in 0..20 {
        writer.submit(event(i)).await.unwrap();
        gw_writer.submit(event(i)).await.unwrap();
    }
    drop((writer, gw_writer));
    task.await.unwrap();
    gw_task.await.unwrap();
    assert_eq!(store.open_sink(SINK, None).await.unwrap(), 0);
    assert_eq!(store.open_sink(SINK, Some("gw-x")).await.unwrap(), 0);
    let all = store.sink_statuses().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|s| (s.sink.as_str(), s.chain.as_deref()))
            .collect::<Vec<_>>(),
        vec![(SINK, None), (SINK, Some("gw-x"))],
        "one row per (sink, chain), the shared chain first"
    );
    for s in &all {
        assert_eq!((s.backlog_events, s.checkpoint_seq), (20, 0), "{s:?}");
        assert_eq!(
            s.oldest_pending,
            Some(first_time(&store, s.chain.as_deref(), 0).await)
        );
    }

    store.advance_sink(SINK, None, 12, 12).await.unwrap();
    store.advance_sink(SINK, None, 5, 0).await.unwrap();
    assert_eq!(
        store.sink_checkpoint(SINK, None).await.unwrap(),
        12,
        "never back"
    );
    assert_eq!(
        store.sink_checkpoint(SINK, Some("gw-x")).await.unwrap(),
        0,
        "another chain's checkpoint does not move"
    );
    assert_eq!(
        store.open_sink(SINK, None).await.unwrap(),
        12,
        "open keeps it"
    );
    store.sink_error(SINK, None, "throttled").await.unwrap();
    let all = store.sink_statuses().await.unwrap();
    let (shared, own) = (&all[0], &all[1]);
    assert_eq!((shared.backlog_events, shared.delivered), (8, 12));
    assert_eq!(shared.last_error.as_deref(), Some("throttled"));
    assert_eq!(
        shared.oldest_pending,
        Some(first_time(&store, None, 12).await)
    );
    assert_eq!((own.backlog_events, own.delivered), (20, 0));
    assert_eq!(own.last_error, None, "errors are noted per chain");

    let report = |chain: Option<&str>| {
        Event::new(
            Timestamp::now(),
            "sallyportd",
            EventKind::ShipQuarantined {
                sink: SINK.into(),
                chain: chain.map(str::to_owned),
                reason: "too_old".into(),
                count: 2,
                first_seq: 13,
                last_seq: 14,
            },
        )
    };
    let entries = [13, 14].map(|seq| QuarantineEntry {
        seq,
        reason: "too_old".into(),
    });
    let recorded = store
        .quarantine(SINK, None, &entries, false, &[report(None)])
        .await
        .unwrap();
    assert_eq!(
        (recorded[0].chain.as_deref(), recorded[0].seq),
        (None, 21),
        "the report is journaled with the quarantine, in the store's own chain"
    );
    // Recording the same quarantine again (a crash before the checkpoint moved) counts and
    // reports nothing twice.
    let again = Event::new(
        Timestamp::now(),
        "sallyportd",
        EventKind::UserEnabled {
            user: "never-journaled".parse().unwrap(),
        },
    );
    let recorded = store
        .quarantine(SINK, None, &entries, false, &[again])
        .await
        .unwrap();
    assert!(recorded.is_empty());
    // The same seqs in another chain are other records: listed and counted there.
    let recorded = gw
        .quarantine(SINK, Some("gw-x"), &entries, true, &[report(Some("gw-x"))])
        .await
        .unwrap();
    assert_eq!(
        (recorded[0].chain.as_deref(), recorded[0].seq),
        (Some("gw-x"), 21)
    );
    assert_eq!(recorded[0].data["chain"], "gw-x");
    assert_eq!(store.quarantined(SINK, None, 10).await.unwrap().len(), 2);
    assert_eq!(
        store
            .quarantined(SINK, Some("gw-x"), 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![13, 14]
    );
    store.advance_sink(SINK, None, 21, 7).await.unwrap();
    let all = store.sink_statuses().await.unwrap();
    let (shared, own) = (&all[0], &all[1]);
    assert_eq!(
        (
            shared.backlog_events,
            shared.oldest_pending,
            shared.last_error.clone()
        ),
        (0, None, None)
    );
    assert_eq!((shared.delivered, shared.quarantined), (19, 2));
    assert_eq!(
        (own.backlog_events, own.rejected, own.quarantined),
        (21, 2, 0)
    );
    let outcome = store.verify_journal().await.unwrap();
    assert_eq!(outcome.error(), None);
    assert_eq!(outcome.chains.len(), 2);
    gw.close().await;
}

/// A gateway: a store with an instance name on the shared database, and its journal writer.
struct Gw {
    name: &'static str,
    store: Store,
    writer: JournalWriter,
}

impl Gw {
    async fn start(url: &str, name: &'static str) -> Gw {
        let store = Store::connect(url).await.unwrap();
        store.set_instance(name);
        let (writer, _task) = JournalWriter::spawn(store.clone());
        Gw {
            name,
            store,
            writer,
        }
    }

    /// Journals `n` events, the last one waited for.
    async fn journal(&self, n: usize) {
        for i in 0..n {
            self.writer.submit(event(i)).await.unwrap();
        }
        self.writer.record(event(n)).await.unwrap();
    }

    /// Ships to `lines-NAME` (its own stream) in `file` until every record of its own chain
    /// and of the shared chain is acknowledged, then stops.
    async fn ship_all(&self, file: &Path) {
        let (stop, rx) = watch::channel(false);
        let mut opts = ShipperOptions::new(self.name);
        opts.flush = Duration::from_millis(50);
        let out = tokio::fs::File::create(file).await.unwrap();
        let sink = LinesSink::new(format!("lines-{}", self.name), out);
        let task = spawn_shipper(self.store.clone(), sink, opts, rx);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut done = true;
            for chain in [None, Some(self.name)] {
                let head = self.store.chain_head(chain).await.unwrap();
                let at = self
                    .store
                    .sink_checkpoint(&format!("lines-{}", self.name), chain)
                    .await
                    .unwrap();
                done &= at == head.map_or(0, |h| h.seq);
            }
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "{} never caught up", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    /// The records of `chain` with seqs `from..=to`, as `self` ships them.
    async fn expected(&self, chain: Option<&str>, from: u64, to: u64) -> Vec<Value> {
        let records = self
            .store
            .chain_after(chain, from - 1, usize::MAX / 2)
            .await
            .unwrap();
        let shipped: Vec<Value> = records
            .iter()
            .filter(|(r, _)| r.seq <= to)
            .map(|(r, origin)| {
                Value::Object(flat_object(r, origin.as_deref().unwrap_or(self.name)))
            })
            .collect();
        assert_eq!(shipped.len() as u64, to + 1 - from, "contiguous seqs");
        shipped
    }
}

fn lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The lines of one chain (`None`: lines without a `chain` field), in the order written.
fn of_chain<'a>(lines: &'a [Value], chain: Option<&str>) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v.get("chain").and_then(Value::as_str) == chain)
        .collect()
}

async fn each_gateway_ships_its_own_chain_and_the_shared_one(b: Backend) {
    let c = b.control().await.unwrap();
    // The shared chain, as left by an older release (or a tool without an instance).
    let shared = c.store().clone();
    let (tool, tool_task) = JournalWriter::spawn(shared.clone());
    for i in 0..30 {
        tool.submit(event(i)).await.unwrap();
    }
    tool.record(event(30)).await.unwrap();
    let (a, g) = (
        Gw::start(&b.url, "gw-a").await,
        Gw::start(&b.url, "gw-b").await,
    );
    // Both append at once (on PostgreSQL their positions interleave and may commit out of
    // order); neither waits for the other's chain.
    tokio::join!(a.journal(400), g.journal(400));
    let dir = tempfile::tempdir().unwrap();
    let files = |run: &str| {
        (
            dir.path().join(format!("a-{run}.jsonl")),
            dir.path().join(format!("b-{run}.jsonl")),
        )
    };
    let (fa, fb) = files("1");
    tokio::join!(a.ship_all(&fa), g.ship_all(&fb));
    for (gw, other, file) in [(&a, &g, &fa), (&g, &a, &fb)] {
        let got = lines(file);
        let own = of_chain(&got, Some(gw.name));
        let head = gw
            .store
            .chain_head(Some(gw.name))
            .await
            .unwrap()
            .unwrap()
            .seq;
        assert_eq!(head, 401);
        let want = gw.expected(Some(gw.name), 1, head).await;
        assert_eq!(
            own,
            want.iter().collect::<Vec<_>>(),
            "{}: its whole chain, in order",
            gw.name
        );
        assert!(own.iter().all(|v| v["instance"] == gw.name));
        let old = of_chain(&got, None);
        let want = gw.expected(None, 1, 31).await;
        assert_eq!(
            old,
            want.iter().collect::<Vec<_>>(),
            "{}: the shared chain, in order",
            gw.name
        );
        assert!(
            of_chain(&got, Some(other.name)).is_empty(),
            "{} shipped none of {}'s chain",
            gw.name,
            other.name
        );
        assert_eq!(got.len(), 401 + 31, "nothing else, nothing twice");
    }

    // More in every chain while no shipper runs; a restart resumes each chain at its own
    // checkpoint.
    tokio::join!(a.journal(49), g.journal(49));
    for i in 0..4 {
        tool.submit(event(i)).await.unwrap();
    }
    tool.record(event(4)).await.unwrap();
    drop(tool);
    tool_task.await.unwrap();
    let (fa, fb) = files("2");
    tokio::join!(a.ship_all(&fa), g.ship_all(&fb));
    for (gw, file) in [(&a, &fa), (&g, &fb)] {
        let got = lines(file);
        let want = gw.expected(Some(gw.name), 402, 451).await;
        assert_eq!(
            of_chain(&got, Some(gw.name)),
            want.iter().collect::<Vec<_>>()
        );
        let want = gw.expected(None, 32, 36).await;
        assert_eq!(of_chain(&got, None), want.iter().collect::<Vec<_>>());
        assert_eq!(got.len(), 50 + 5, "only what came after the checkpoints");
    }
    let rows: Vec<(String, Option<String>, u64, u64)> = shared
        .sink_statuses()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.sink, s.chain, s.checkpoint_seq, s.backlog_events))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("lines-gw-a".into(), None, 36, 0),
            ("lines-gw-a".into(), Some("gw-a".into()), 451, 0),
            ("lines-gw-b".into(), None, 36, 0),
            ("lines-gw-b".into(), Some("gw-b".into()), 451, 0),
        ]
    );
    let outcome = shared.verify_journal().await.unwrap();
    assert_eq!(outcome.error(), None);
    assert_eq!(outcome.count(), 36 + 451 * 2);
}
