use super::*;
use crate::audit::{Event, EventKind};

/// Records 1..=n of `chain`; user names carry the chain's label so edits can find them.
fn chain(name: Option<&str>, n: u64) -> Vec<Record> {
    let mut head = ChainHead::default();
    (1..=n)
        .map(|i| {
            let e = Event::new(
                Timestamp::from_millis(1_700_000_000_000 + i as i64),
                "admin",
                EventKind::UserEnabled {
                    user: format!("{}-u{i}", name.unwrap_or("shared"))
                        .parse()
                        .unwrap(),
                },
            );
            let r = head.append_to(name, &e);
            head = ChainHead::from(&r);
            r
        })
        .collect()
}

fn line<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap() + "\n"
}

/// The version 1 export of shared-chain records `from..=to` of `n`, as the old CLI wrote it.
fn export_v1(n: u64, from: u64, to: u64) -> String {
    let records = chain(None, n);
    let anchor = match from {
        1 => ChainHead::default(),
        f => ChainHead::from(&records[(f - 2) as usize]),
    };
    let run: Vec<&Record> = records
        .iter()
        .filter(|r| r.seq >= from && r.seq <= to)
        .collect();
    let header = serde_json::json!({
        "sallyport_export": 1, "anchor": anchor, "since": null, "until": null,
        "head": ChainHead::from(records.last().unwrap()),
    });
    let mut out = line(&header);
    for r in &run {
        out += &line(r);
    }
    let last = run.last().map_or(anchor, |r| ChainHead::from(*r));
    out + &line(&serde_json::json!({"sallyport_export_end": {"count": run.len(), "last": last}}))
}

/// A version 2 export of the given runs (each a chain's records `from..=to`), records
/// interleaved round-robin as positions would interleave them.
fn export_v2(runs: &[(&[Record], u64, u64)]) -> String {
    let mut anchors = Vec::new();
    let mut heads = Vec::new();
    let mut picked: Vec<Vec<&Record>> = Vec::new();
    for (records, from, to) in runs {
        let name = records[0].chain.clone();
        let anchor = match from {
            1 => ChainHead::default(),
            f => ChainHead::from(&records[(f - 2) as usize]),
        };
        anchors.push(ChainMark::new(name.clone(), anchor));
        heads.push(ChainMark::new(
            name,
            ChainHead::from(records.last().unwrap()),
        ));
        picked.push(
            records
                .iter()
                .filter(|r| r.seq >= *from && r.seq <= *to)
                .collect(),
        );
    }
    let header = ExportHeader {
        sallyport_export: EXPORT_VERSION,
        anchor: None,
        anchors: anchors.clone(),
        since: None,
        until: None,
        head: None,
        heads,
        exported_at: None,
    };
    let mut out = line(&header);
    let mut tally = ExportTally::new(&anchors);
    let longest = picked.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for run in &picked {
            if let Some(r) = run.get(i) {
                tally.record(r);
                out += &line(*r);
            }
        }
    }
    out + &line(&tally.trailer())
}

fn three() -> (Vec<Record>, Vec<Record>, Vec<Record>) {
    (
        chain(None, 6),
        chain(Some("gw-a"), 8),
        chain(Some("gw-b"), 5),
    )
}

fn sample() -> String {
    let (shared, a, b) = three();
    export_v2(&[(&shared, 4, 6), (&a, 1, 8), (&b, 2, 4)])
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// The index of the line holding `chain`'s record `seq`.
fn find(lines: &[String], chain: Option<&str>, seq: u64) -> usize {
    lines
        .iter()
        .position(|l| {
            serde_json::from_str::<Record>(l)
                .is_ok_and(|r| r.chain.as_deref() == chain && r.seq == seq)
        })
        .unwrap()
}

fn broken(lines: &[String]) -> ExportError {
    verify_export(&lines.join("\n")).unwrap_err()
}

#[test]
fn an_intact_version_1_export_verifies() {
    let s = verify_export(&export_v1(10, 4, 8)).unwrap();
    assert_eq!(s.version, 1);
    let c = &s.chains[0];
    assert_eq!(
        (c.chain.as_deref(), c.anchor.seq, c.count, c.last.seq),
        (None, 3, 5, 8)
    );
    let s = verify_export(&export_v1(3, 1, 3)).unwrap();
    assert_eq!((s.chains[0].anchor.seq, s.count), (0, 3));
    let empty = verify_export(&export_v1(3, 3, 2)).unwrap();
    assert_eq!(empty.count, 0);
}

#[test]
fn version_1_tampering_is_named() {
    let text = export_v1(10, 4, 8);
    let lines = lines(&text);
    let mut cut = lines.clone();
    cut.remove(3);
    let e = broken(&cut);
    assert_eq!(e.first_bad_seq(), Some(6), "{e}");
    assert_eq!(e.chain(), Some(None));
    assert!(
        e.to_string().starts_with("in chain (shared) at seq 6: "),
        "{e}"
    );
    let mut first = lines.clone();
    first.remove(1);
    let e = broken(&first);
    assert!(
        matches!(
            e,
            ExportError::Anchor {
                seq: 5,
                anchor: 3,
                chain: None
            }
        ),
        "{e}"
    );
    assert_eq!(broken(&lines[..lines.len() - 2]), ExportError::MissingEnd);
    let mut tail = lines.clone();
    tail.remove(lines.len() - 2);
    assert!(matches!(broken(&tail), ExportError::End { .. }));
    let edited = text.replace("\"shared-u6\"", "\"shared-u9\"");
    assert_eq!(verify_export(&edited).unwrap_err().first_bad_seq(), Some(6));
    // A record of an instance chain has no place in a version 1 file.
    let foreign = chain(Some("gw-a"), 1);
    let mut mixed = lines.clone();
    mixed.insert(2, line(&foreign[0]).trim_end().to_owned());
    assert!(matches!(
        broken(&mixed),
        ExportError::Unanchored { seq: 1, .. }
    ));
    assert!(matches!(
        verify_export("hello\n").unwrap_err(),
        ExportError::Malformed { line: 1, .. }
    ));
    assert!(verify_export("").is_err());
}

#[test]
fn an_intact_multi_chain_export_verifies_each_chain() {
    let s = verify_export(&sample()).unwrap();
    assert_eq!(s.version, EXPORT_VERSION);
    assert_eq!(s.count, 3 + 8 + 3);
    let got: Vec<_> = s
        .chains
        .iter()
        .map(|c| (c.chain.as_deref(), c.anchor.seq, c.count, c.last.seq))
        .collect();
    assert_eq!(
        got,
        [
            (None, 3, 3, 6),
            (Some("gw-a"), 0, 8, 8),
            (Some("gw-b"), 1, 3, 4)
        ]
    );
    // Any interleaving of the chains verifies: positions are not hashed.
    let mut lines = lines(&sample());
    let last = lines.len() - 1;
    lines[1..last].reverse();
    let mut by_chain = lines[1..last].to_vec();
    by_chain.sort_by_key(|l| {
        let r: Record = serde_json::from_str(l).unwrap();
        (r.chain, r.seq)
    });
    lines.splice(1..last, by_chain);
    assert_eq!(verify_export(&lines.join("\n")).unwrap().count, 14);
    // No chain in the window at all.
    let empty = export_v2(&[]);
    assert_eq!(verify_export(&empty).unwrap().chains, []);
}

#[test]
fn an_edit_is_named_with_its_chain() {
    let text = sample();
    let edited = text.replace("\"gw-b-u3\"", "\"gw-b-u9\"");
    assert_ne!(edited, text);
    let e = verify_export(&edited).unwrap_err();
    assert_eq!(e.chain(), Some(Some("gw-b")));
    assert_eq!(e.first_bad_seq(), Some(3));
    assert!(
        e.to_string()
            .starts_with("in chain gw-b at seq 3: record 3 was altered"),
        "{e}"
    );
    // Edited and re-hashed: the next record no longer links.
    let mut lines = lines(&text);
    let i = find(&lines, Some("gw-a"), 5);
    let mut r: Record = serde_json::from_str(&lines[i]).unwrap();
    r.actor = "mallory".into();
    r.hash = r.compute_hash();
    lines[i] = serde_json::to_string(&r).unwrap();
    let e = broken(&lines);
    assert_eq!(
        e,
        ExportError::Chain {
            chain: Some("gw-a".into()),
            error: ChainError::BrokenLink { seq: 6, prev: 5 }
        }
    );
}

#[test]
fn a_removed_record_is_named_with_its_chain() {
    let mut lines = lines(&sample());
    lines.remove(find(&lines, Some("gw-a"), 4));
    let e = broken(&lines);
    assert_eq!(
        e,
        ExportError::Chain {
            chain: Some("gw-a".into()),
            error: ChainError::Gap {
                expected: 4,
                found: 5
            }
        }
    );
    assert!(e.to_string().starts_with("in chain gw-a at seq 4: "), "{e}");
    // A chain's first record removed: the next one does not follow the anchor.
    let mut lines = self::lines(&sample());
    lines.remove(find(&lines, None, 4));
    assert_eq!(
        broken(&lines),
        ExportError::Anchor {
            chain: None,
            seq: 5,
            anchor: 3
        }
    );
}

#[test]
fn reordering_within_a_chain_is_named() {
    let mut lines = lines(&sample());
    let (i, j) = (find(&lines, Some("gw-a"), 2), find(&lines, Some("gw-a"), 3));
    lines.swap(i, j);
    let e = broken(&lines);
    assert_eq!(e.chain(), Some(Some("gw-a")));
    assert_eq!(e.first_bad_seq(), Some(2), "{e}");
}

#[test]
fn moving_a_record_to_another_chain_is_named() {
    let mut lines = lines(&sample());
    // gw-b's record 3 relabelled as gw-a's: its hash covers the chain name.
    let i = find(&lines, Some("gw-b"), 3);
    let mut r: Record = serde_json::from_str(&lines[i]).unwrap();
    r.chain = Some("gw-a".into());
    lines[i] = serde_json::to_string(&r).unwrap();
    let e = broken(&lines);
    assert!(
        matches!(e.chain(), Some(Some("gw-a" | "gw-b"))),
        "names a chain: {e}"
    );
    // Also with a seq that fits and a fresh hash: gw-a's next record does not link to it.
    let (shared, a, b) = three();
    let text = export_v2(&[(&shared, 4, 6), (&a, 1, 3), (&b, 2, 4)]);
    let mut lines = self::lines(&text);
    let i = find(&lines, Some("gw-b"), 4);
    let mut r: Record = serde_json::from_str(&lines[i]).unwrap();
    (r.chain, r.seq) = (Some("gw-a".into()), 4);
    r.hash = r.compute_hash();
    lines[i] = serde_json::to_string(&r).unwrap();
    let e = broken(&lines);
    assert_eq!(
        e,
        ExportError::Chain {
            chain: Some("gw-a".into()),
            error: ChainError::BrokenLink { seq: 4, prev: 3 }
        }
    );
}

#[test]
fn truncating_one_chain_is_named() {
    // gw-a's last two records dropped, the end line kept: gw-a's entry no longer matches.
    let mut lines = lines(&sample());
    lines.remove(find(&lines, Some("gw-a"), 8));
    lines.remove(find(&lines, Some("gw-a"), 7));
    let e = broken(&lines);
    assert_eq!(
        e,
        ExportError::End {
            chain: Some("gw-a".into()),
            expected_count: 8,
            expected_seq: 8,
            count: 6,
            seq: 6
        }
    );
    assert_eq!(e.first_bad_seq(), Some(7));
    assert!(e.to_string().starts_with("in chain gw-a: "), "{e}");
    // A whole chain removed with its end entry (but not its anchor).
    let mut lines = self::lines(&sample());
    lines.retain(|l| !l.starts_with("{\"chain\":\"gw-b\""));
    let last = lines.len() - 1;
    let mut t: ExportTrailer = serde_json::from_str(&lines[last]).unwrap();
    t.sallyport_export_end
        .chains
        .retain(|c| c.chain.as_deref() != Some("gw-b"));
    t.sallyport_export_end.count -= 3;
    lines[last] = serde_json::to_string(&t).unwrap();
    let e = broken(&lines);
    assert!(
        matches!(&e, ExportError::Chains { chain: Some(c), .. } if c == "gw-b"),
        "{e}"
    );
    // The end line cut off.
    let lines = self::lines(&sample());
    assert_eq!(broken(&lines[..lines.len() - 1]), ExportError::MissingEnd);
}

#[test]
fn headers_that_do_not_fit_their_version_are_refused() {
    let lines = lines(&sample());
    let mut h: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    h["sallyport_export"] = 3.into();
    assert!(verify_export(&h.to_string())
        .unwrap_err()
        .to_string()
        .contains("format 3 is not supported"));
    h["sallyport_export"] = 1.into();
    assert!(matches!(
        verify_export(&h.to_string()).unwrap_err(),
        ExportError::Malformed { line: 1, .. }
    ));
    let mut twice = lines.clone();
    let mut h: ExportHeader = serde_json::from_str(&lines[0]).unwrap();
    h.anchors.push(h.anchors[1].clone());
    twice[0] = serde_json::to_string(&h).unwrap();
    assert!(broken(&twice).to_string().contains("anchored twice"));
    // A record after the end line.
    let mut after = lines.clone();
    after.push(lines[1].clone());
    assert!(matches!(broken(&after), ExportError::Malformed { .. }));
}
