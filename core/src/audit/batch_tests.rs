//! The batcher keeps CloudWatch's rules: examples at each limit, and properties over random
//! journals (counts, bytes, span, order, oversize, too old / too new, acknowledgement).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const NOW: i64 = 1_767_225_600_000;
const DAY: i64 = 24 * HOUR_MS;

fn entry(seq: u64, t: i64, len: usize) -> Entry {
    let head = format!("{{\"event\":\"test.event\",\"seq\":{seq},\"id\":\"id-{seq}\",\"pad\":\"");
    let pad = len.saturating_sub(head.len() + 2);
    Entry {
        seq,
        time: Timestamp::from_millis(t),
        message: format!("{head}{}\"}}", "x".repeat(pad)),
    }
}

fn now() -> Timestamp {
    Timestamp::from_millis(NOW)
}

/// Every rule, for every batch; returns the messages by seq (parts joined) for more checks.
fn check(entries: &[Entry], plan: &Plan, limits: &Limits) {
    let mut seen: BTreeMap<u64, Vec<(Part, String)>> = BTreeMap::new();
    let mut whole: BTreeMap<u64, String> = BTreeMap::new();
    let mut last_ack = 0;
    for b in &plan.batches {
        assert!(
            b.events.len() <= limits.max_events,
            "count {}",
            b.events.len()
        );
        let bytes: usize = b
            .events
            .iter()
            .map(|e| e.message.len() + limits.event_overhead)
            .sum();
        assert_eq!(bytes, b.bytes);
        assert!(bytes <= limits.max_bytes, "bytes {bytes}");
        if let (Some(first), Some(last)) = (b.events.first(), b.events.last()) {
            if let Some(span) = limits.max_span_ms {
                assert!(last.time_ms - first.time_ms <= span, "span");
            }
        }
        assert!(
            b.events.windows(2).all(|w| w[0].time_ms <= w[1].time_ms),
            "sorted by time"
        );
        assert!(b.ack_seq >= last_ack, "acknowledgements never go back");
        last_ack = b.ack_seq;
        for e in &b.events {
            assert!(e.message.len() + limits.event_overhead <= limits.max_event_bytes);
            match e.part {
                None => {
                    assert!(whole.insert(e.seq, e.message.clone()).is_none(), "once");
                }
                Some(p) => {
                    let v: Value = serde_json::from_str(&e.message).unwrap();
                    assert_eq!(v["seq"], e.seq);
                    assert_eq!(v["part"], p.index);
                    assert_eq!(v["parts"], p.count);
                    seen.entry(e.seq)
                        .or_default()
                        .push((p, v["chunk"].as_str().unwrap().to_owned()));
                }
            }
            // Everything in a batch is acknowledged by it, except a split event's early parts.
            let final_part = e.part.is_none_or(|p| p.index == p.count);
            if final_part {
                assert!(e.seq <= b.ack_seq, "seq {} beyond ack {}", e.seq, b.ack_seq);
            }
        }
    }
    for (seq, mut parts) in seen {
        parts.sort_by_key(|(p, _)| p.index);
        let count = parts.len() as u32;
        assert!(parts
            .iter()
            .zip(1..)
            .all(|((p, _), i)| p.index == i && p.count == count));
        let joined: String = parts.into_iter().map(|(_, c)| c).collect();
        assert!(whole.insert(seq, joined).is_none());
    }
    let quarantined: BTreeMap<u64, QuarantineReason> =
        plan.quarantined.iter().map(|q| (q.seq, q.reason)).collect();
    for e in entries {
        let t = e.time.as_millis();
        let expected = if limits.max_age_ms.is_some_and(|a| NOW - t > a) {
            Some(QuarantineReason::TooOld)
        } else if limits.max_ahead_ms.is_some_and(|a| t - NOW > a) {
            Some(QuarantineReason::TooNew)
        } else {
            None
        };
        assert_eq!(quarantined.get(&e.seq).copied(), expected, "seq {}", e.seq);
        match expected {
            Some(_) => assert!(!whole.contains_key(&e.seq)),
            None => assert_eq!(whole.get(&e.seq), Some(&e.message), "seq {} intact", e.seq),
        }
    }
    let max = entries.iter().map(|e| e.seq).max().unwrap_or(0);
    assert_eq!(
        plan.batches.last().map_or(0, |b| b.ack_seq),
        max,
        "all acknowledged"
    );
}

#[test]
fn ten_thousand_events_a_batch() {
    let entries: Vec<Entry> = (1..=25_000).map(|s| entry(s, NOW, 40)).collect();
    let p = plan(entries.clone(), now(), &Limits::CLOUDWATCH);
    let counts: Vec<usize> = p.batches.iter().map(|b| b.events.len()).collect();
    assert_eq!(counts, vec![10_000, 10_000, 5_000]);
    assert_eq!(
        p.batches.iter().map(|b| b.ack_seq).collect::<Vec<_>>(),
        vec![10_000, 20_000, 25_000]
    );
    check(&entries, &p, &Limits::CLOUDWATCH);
}

#[test]
fn bytes_count_26_per_event_up_to_exactly_one_mebibyte() {
    // 4 events of 262,118 bytes + 26 = 262,144 each: exactly 1,048,576, one batch.
    let exact: Vec<Entry> = (1..=4).map(|s| entry(s, NOW, 262_118)).collect();
    let p = plan(exact.clone(), now(), &Limits::CLOUDWATCH);
    assert_eq!(p.batches.len(), 1);
    assert_eq!(p.batches[0].bytes, 1_048_576);
    assert!(p.split.is_empty());
    // Ten bytes more and the next event no longer fits: it goes on alone.
    let mut over = exact;
    over.push(entry(5, NOW, 10));
    let p = plan(over.clone(), now(), &Limits::CLOUDWATCH);
    let counts: Vec<usize> = p.batches.iter().map(|b| b.events.len()).collect();
    assert_eq!(counts, vec![4, 1]);
    check(&over, &p, &Limits::CLOUDWATCH);
}

#[test]
fn no_batch_spans_more_than_a_day() {
    let entries = vec![
        entry(1, NOW - 2 * DAY, 50),
        entry(2, NOW - DAY - 1, 50),
        entry(3, NOW - DAY + 1, 50),
        entry(4, NOW - DAY + 2, 50),
        entry(5, NOW, 50),
    ];
    let p = plan(entries.clone(), now(), &Limits::CLOUDWATCH);
    let groups: Vec<Vec<u64>> = p
        .batches
        .iter()
        .map(|b| b.events.iter().map(|e| e.seq).collect())
        .collect();
    // 1 and 2 are 1 day − 1 ms apart; 3 is more than a day after 1.
    assert_eq!(groups, vec![vec![1, 2], vec![3, 4, 5]]);
    check(&entries, &p, &Limits::CLOUDWATCH);
}

#[test]
fn events_are_sorted_by_time_within_a_batch() {
    let entries = vec![
        entry(1, NOW, 50),
        entry(2, NOW - 5, 50),
        entry(3, NOW - 5, 50),
    ];
    let p = plan(entries.clone(), now(), &Limits::CLOUDWATCH);
    let order: Vec<u64> = p.batches[0].events.iter().map(|e| e.seq).collect();
    assert_eq!(order, vec![2, 3, 1]);
    assert_eq!(p.batches[0].ack_seq, 3);
}

#[test]
fn oversize_events_are_split_with_a_marker_and_join_back() {
    let mut big = entry(7, NOW, 700_000);
    // Characters that grow when escaped again (inside `chunk`) must still fit.
    big.message = big.message.replace("xxxxxxxxxx", "\\\"\\u0001é\\n\\\\xx");
    assert!(serde_json::from_str::<Value>(&big.message).is_ok());
    let entries = vec![entry(6, NOW, 100), big.clone(), entry(8, NOW, 100)];
    let p = plan(entries.clone(), now(), &Limits::CLOUDWATCH);
    assert_eq!(p.split, vec![7]);
    let parts: Vec<&LogEvent> = p
        .batches
        .iter()
        .flat_map(|b| &b.events)
        .filter(|e| e.seq == 7)
        .collect();
    assert!(parts.len() >= 3, "{} parts", parts.len());
    for e in &parts {
        let v: Value = serde_json::from_str(&e.message).unwrap();
        assert_eq!(
            v["event"], "test.event",
            "each part can still be found by name"
        );
        assert_eq!(v["id"], "id-7");
    }
    check(&entries, &p, &Limits::CLOUDWATCH);
}

#[test]
fn too_old_and_too_new_are_quarantined_and_acknowledged() {
    let entries = vec![
        entry(1, NOW - 14 * DAY - 1, 50),
        entry(2, NOW - 14 * DAY, 50),
        entry(3, NOW + 2 * HOUR_MS, 50),
        entry(4, NOW + 2 * HOUR_MS + 1, 50),
    ];
    let p = plan(entries.clone(), now(), &Limits::CLOUDWATCH);
    let q: Vec<(u64, QuarantineReason)> = p.quarantined.iter().map(|q| (q.seq, q.reason)).collect();
    assert_eq!(
        q,
        vec![(1, QuarantineReason::TooOld), (4, QuarantineReason::TooNew)]
    );
    check(&entries, &p, &Limits::CLOUDWATCH);
    // A run that is all quarantined still moves the checkpoint, with an empty batch.
    let p = plan(
        vec![entry(9, NOW - 20 * DAY, 50)],
        now(),
        &Limits::CLOUDWATCH,
    );
    assert_eq!(p.batches.len(), 1);
    assert!(p.batches[0].events.is_empty());
    assert_eq!(p.batches[0].ack_seq, 9);
}

#[test]
fn lines_never_split_or_quarantine() {
    let entries = vec![entry(1, NOW - 30 * DAY, 400_000), entry(2, NOW + DAY, 10)];
    let p = plan(entries.clone(), now(), &Limits::LINES);
    assert!(p.quarantined.is_empty() && p.split.is_empty());
    check(&entries, &p, &Limits::LINES);
}

fn small_limits() -> impl Strategy<Value = Limits> {
    (
        1usize..40,
        2_000usize..20_000,
        1_024usize..4_000,
        prop::bool::ANY,
    )
        .prop_map(|(max_events, max_bytes, max_event_bytes, windows)| Limits {
            max_events,
            max_bytes: max_bytes.max(max_event_bytes),
            event_overhead: 26,
            max_event_bytes,
            max_span_ms: Some(10 * HOUR_MS),
            max_age_ms: windows.then_some(3 * DAY),
            max_ahead_ms: windows.then_some(HOUR_MS),
        })
}

fn journal() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(
        (
            prop_oneof![
                8 => -2 * HOUR_MS..HOUR_MS / 2,
                1 => -5 * DAY..-2 * DAY,
                1 => HOUR_MS / 2..3 * HOUR_MS,
            ],
            prop_oneof![9 => 40usize..600, 1 => 600usize..12_000],
            "[a-z\"\\\\\n\u{1}é€]{0,8}",
        ),
        0..300,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .zip(1u64..)
            .map(|((dt, len, spice), seq)| {
                let mut e = entry(seq, NOW + dt, len);
                e.message = e.message.replacen("xxxxxxxx", &spice, 3);
                e
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_plan_keeps_every_rule(entries in journal(), limits in small_limits()) {
        let p = plan(entries.clone(), now(), &limits);
        check(&entries, &p, &limits);
    }

    #[test]
    fn cloudwatch_plans_keep_every_rule(entries in journal()) {
        let p = plan(entries.clone(), now(), &Limits::CLOUDWATCH);
        check(&entries, &p, &Limits::CLOUDWATCH);
    }
}
