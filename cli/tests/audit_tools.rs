#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The auditor's tools with the real binary against a dev gateway: `audit tail [-f]`,
//! `audit backlog`, `audit export` and `audit verify --file` (offline), including tampered
//! exports.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

#[allow(dead_code)]
mod common;

use common::Harness;

async fn head(h: &Harness) -> u64 {
    let b = h
        .admin(&["audit", "backlog", "-o", "json"])
        .await
        .ok()
        .json();
    b["head_seq"].as_u64().unwrap()
}

/// `audit verify --file PATH` with an unreachable gateway: it must not need one.
async fn offline(h: &Harness, path: &std::path::Path) -> common::Run {
    let path = path.to_str().unwrap();
    h.run_with(
        "https://127.0.0.1:1",
        &h.ca,
        None,
        &["audit", "verify", "--file", path],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_backlog_export_and_offline_verify() {
    let h = Harness::start().await;
    for name in ["ann", "ben", "cat", "dan"] {
        h.admin(&["user", "add", name, "--role", "engineer"])
            .await
            .ok();
    }
    let head_seq = head(&h).await;
    assert!(head_seq >= 6);

    // tail: the newest N, oldest first, one JSON object per line with -o json.
    let tail = h
        .admin(&["audit", "tail", "-n", "3", "-o", "json"])
        .await
        .ok();
    let seqs: Vec<u64> = tail
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![head_seq - 2, head_seq - 1, head_seq]);
    let table = h.admin(&["audit", "tail", "-n", "2"]).await.ok();
    assert!(table.stdout.starts_with("SEQ"), "{}", table.stdout);
    assert_eq!(table.stdout.lines().count(), 3);

    // backlog: auditors and admins only.
    let b = h.admin(&["audit", "backlog"]).await.ok();
    assert!(
        b.stdout.contains(&format!("journal head seq {head_seq}")),
        "{}",
        b.stdout
    );
    let engineer = h.token_for("ann", "10m").await;
    h.run_as(Some(&engineer), &["audit", "backlog"])
        .await
        .fails(3, "");

    // export everything, verify offline (no gateway reachable).
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.jsonl");
    let out = h
        .admin(&["audit", "export", "--out", all.to_str().unwrap()])
        .await
        .ok();
    assert!(out.stdout.contains("exported"), "{}", out.stdout);
    let ok = offline(&h, &all).await.ok();
    assert!(ok.stdout.starts_with("OK: "), "{}", ok.stdout);
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let records = lines.len() - 2;
    assert!(records as u64 >= head_seq, "{records} records");
    assert!(
        ok.stdout
            .contains(&format!("OK: {records} events, seq 1..")),
        "{}",
        ok.stdout
    );

    // A window: starts at a later record, anchored to the one before it.
    let since = serde_json::from_str::<Value>(lines[4]).unwrap()["time"]
        .as_str()
        .unwrap()
        .to_owned();
    let part = dir.path().join("part.jsonl");
    h.admin(&[
        "audit",
        "export",
        "--since",
        &since,
        "--out",
        part.to_str().unwrap(),
    ])
    .await
    .ok();
    let header: Value = serde_json::from_str(
        std::fs::read_to_string(&part)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(header["anchor"]["seq"].as_u64().unwrap() >= 1, "{header}");
    let json = h
        .run_with(
            "https://127.0.0.1:1",
            &h.ca,
            None,
            &[
                "audit",
                "verify",
                "--file",
                part.to_str().unwrap(),
                "-o",
                "json",
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(json["anchor"], header["anchor"]);

    // Tampering: an edit, a removed line, a cut-off end.
    let bad = dir.path().join("bad.jsonl");
    let edited = text.replacen("\"ben\"", "\"eve\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&bad, edited).unwrap();
    offline(&h, &bad).await.fails(8, "BROKEN export");
    let mut removed = lines.clone();
    removed.remove(3);
    std::fs::write(&bad, removed.join("\n")).unwrap();
    offline(&h, &bad).await.fails(8, "at seq 3");
    std::fs::write(&bad, lines[..lines.len() - 1].join("\n")).unwrap();
    offline(&h, &bad).await.fails(8, "no end line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_prints_new_events() {
    let h = Harness::start().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sallyport"))
        .env_clear()
        .env("SALLYPORT_GATEWAY", &h.url)
        .env("SALLYPORT_CA_CERT", &h.ca)
        .env("SALLYPORT_TOKEN", &h.admin)
        .args(["audit", "tail", "-n", "1", "-f", "-o", "json"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    h.admin(&["user", "add", "zed", "--role", "auditor"])
        .await
        .ok();
    let seen = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let line = lines.next_line().await.unwrap().unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            assert!(v["seq"].as_u64() > first["seq"].as_u64());
            if v["event"] == "access.user.create" && v["user"] == "zed" {
                return v;
            }
        }
    })
    .await
    .expect("tail -f printed the new event");
    assert_eq!(seen["actor"], "admin");
    child.kill().await.unwrap();
}
