//! Group commit and sink checkpoints, against SQLite and a harness-started PostgreSQL: many
//! producers and admin changes at once keep one verified chain; checkpoints never go back;
//! backlog figures follow the head.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use sallyport_core::api::CreateUser;
use sallyport_core::audit::{Event, EventKind};
use sallyport_core::model::Role;
use sallyport_core::time::Timestamp;
use sallyport_gateway::audit::JournalWriter;
use sallyport_gateway::control::Actor;
use sallyport_gateway::store::QuarantineEntry;
use sallyport_tests::backends::Backend;

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
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.summary.count, 8 * 500 + 10);
    assert_eq!(
        *head.borrow_and_update(),
        8 * 500 + 10,
        "the head watch follows commits"
    );
    // Each admin change is in the journal with its user row.
    let users = c.store().list_users().await.unwrap();
    assert_eq!(users.len(), 10);
}

async fn checkpoints_never_go_back_and_backlog_follows_the_head(b: Backend) {
    let c = b.control().await.unwrap();
    let store = c.store().clone();
    let (writer, task) = JournalWriter::spawn(store.clone());
    for i in 0..20 {
        writer.submit(event(i)).await.unwrap();
    }
    drop(writer);
    task.await.unwrap();
    assert_eq!(store.open_sink("cloudwatch:/g:s").await.unwrap(), 0);
    let s = &store.sink_statuses().await.unwrap()[0];
    assert_eq!((s.backlog_events, s.checkpoint_seq), (20, 0));
    let first = store.journal_after(0, 1).await.unwrap()[0].time;
    assert_eq!(s.oldest_pending, Some(first));

    store.advance_sink("cloudwatch:/g:s", 12, 12).await.unwrap();
    store.advance_sink("cloudwatch:/g:s", 5, 0).await.unwrap();
    assert_eq!(
        store.sink_checkpoint("cloudwatch:/g:s").await.unwrap(),
        12,
        "never back"
    );
    assert_eq!(
        store.open_sink("cloudwatch:/g:s").await.unwrap(),
        12,
        "open keeps it"
    );
    store
        .sink_error("cloudwatch:/g:s", "throttled")
        .await
        .unwrap();
    let s = &store.sink_statuses().await.unwrap()[0];
    assert_eq!((s.backlog_events, s.delivered), (8, 12));
    assert_eq!(s.last_error.as_deref(), Some("throttled"));
    let thirteenth = store.journal_after(12, 1).await.unwrap()[0].time;
    assert_eq!(s.oldest_pending, Some(thirteenth));

    let report = Event::new(
        Timestamp::now(),
        "sallyportd",
        EventKind::ShipQuarantined {
            sink: "cloudwatch:/g:s".into(),
            reason: "too_old".into(),
            count: 2,
            first_seq: 13,
            last_seq: 14,
        },
    );
    let entries = [13, 14].map(|seq| QuarantineEntry {
        seq,
        reason: "too_old".into(),
    });
    let recorded = store
        .quarantine("cloudwatch:/g:s", &entries, false, &[report])
        .await
        .unwrap();
    assert_eq!(
        recorded[0].seq, 21,
        "the report is journaled with the quarantine"
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
        .quarantine("cloudwatch:/g:s", &entries, false, &[again])
        .await
        .unwrap();
    assert!(recorded.is_empty());
    assert_eq!(
        store
            .quarantined("cloudwatch:/g:s", 10)
            .await
            .unwrap()
            .len(),
        2
    );
    store.advance_sink("cloudwatch:/g:s", 21, 7).await.unwrap();
    let s = &store.sink_statuses().await.unwrap()[0];
    assert_eq!(
        (s.backlog_events, s.oldest_pending, s.last_error.clone()),
        (0, None, None)
    );
    assert_eq!((s.delivered, s.quarantined), (19, 2));
    assert_eq!(store.verify_journal().await.unwrap().error, None);
}
