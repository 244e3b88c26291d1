#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! The auditor's tools with the real binary against a dev gateway: `audit tail [-f]`,
//! `audit backlog`, `audit export` and `audit verify` (on the gateway and `--file` offline),
//! including tampered exports and journals of several hash chains (one per gateway instance,
//! plus the shared chain): a second chain is journaled into the gateway's database by a store
//! opened with another instance name, as a second gateway would.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use sallyport_core::audit::{Event, EventKind, Record};
use sallyport_core::time::Timestamp;
use sallyport_gateway::store::Store;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

#[allow(dead_code)]
mod common;

use common::{tamper, Harness};

/// A chain's verified head seq, from `audit verify -o json`.
async fn chain_head(h: &Harness, chain: &str) -> u64 {
    let v = h
        .admin(&["audit", "verify", "-o", "json"])
        .await
        .ok()
        .json();
    v["chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chain"] == chain)
        .unwrap_or_else(|| panic!("no chain {chain} in {v}"))["head_seq"]
        .as_u64()
        .unwrap()
}

/// `audit verify --file PATH [ARGS]` with an unreachable gateway: it must not need one.
async fn offline(h: &Harness, path: &std::path::Path, args: &[&str]) -> common::Run {
    let mut all = vec!["audit", "verify", "--file", path.to_str().unwrap()];
    all.extend_from_slice(args);
    h.run_with("https://127.0.0.1:1", &h.ca, None, &all).await
}

/// The gateway's database opened as another gateway (`Some(instance)`) or as a tool that
/// journals to the shared chain (`None`).
async fn journal_as(url: &str, instance: Option<&str>) -> Store {
    let store = Store::connect(url).await.unwrap();
    if let Some(i) = instance {
        store.set_instance(i);
    }
    store
}

fn event(user: &str, time: Timestamp) -> Event {
    Event::new(
        time,
        "admin",
        EventKind::UserEnabled {
            user: user.parse().unwrap(),
        },
    )
}

fn sqlite_url(h: &Harness) -> String {
    format!("sqlite://{}", h.gw.database_path().display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_backlog_export_and_offline_verify() {
    let h = Harness::start().await;
    for name in ["ann", "ben", "cat", "dan"] {
        h.admin(&["user", "add", name, "--role", "engineer"])
            .await
            .ok();
    }
    let head_seq = chain_head(&h, "dev").await;
    assert!(head_seq >= 6);

    // tail: the newest N, oldest first, one JSON object per line with -o json.
    let tail = h
        .admin(&["audit", "tail", "-n", "3", "-o", "json"])
        .await
        .ok();
    let records: Vec<Value> = tail
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![head_seq - 2, head_seq - 1, head_seq]);
    assert!(records.iter().all(|r| r["chain"] == "dev"), "{records:?}");
    let table = h.admin(&["audit", "tail", "-n", "2"]).await.ok();
    assert!(table.stdout.starts_with("CHAIN  SEQ"), "{}", table.stdout);
    assert_eq!(table.stdout.lines().count(), 3);
    assert!(table.stdout.lines().nth(1).unwrap().starts_with("dev "));

    // backlog: auditors and admins only.
    let b = h.admin(&["audit", "backlog"]).await.ok();
    assert!(b.stdout.contains("journal head seq"), "{}", b.stdout);
    let engineer = h.token_for("ann", "10m").await;
    h.run_as(Some(&engineer), &["audit", "backlog"])
        .await
        .fails(3, "");
    h.run_as(Some(&engineer), &["audit", "verify"])
        .await
        .fails(3, "");
    h.run_as(Some(&engineer), &["audit", "tail"])
        .await
        .fails(3, "");

    // export everything, verify offline (no gateway reachable).
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.jsonl");
    let out = h
        .admin(&["audit", "export", "--out", all.to_str().unwrap()])
        .await
        .ok();
    assert!(
        out.stdout.starts_with("exported ") && out.stdout.contains("(dev seq 1.."),
        "{}",
        out.stdout
    );
    let ok = offline(&h, &all, &[]).await.ok();
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let records = lines.len() - 2;
    assert!(records as u64 >= head_seq, "{records} records");
    assert!(
        ok.stdout.starts_with(&format!(
            "OK: {records} events in 1 chains\nchain dev: seq 1.."
        )),
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
    assert_eq!(header["sallyport_export"], 2, "{header}");
    let anchor = &header["anchors"][0];
    assert_eq!(anchor["chain"], "dev", "{header}");
    assert!(anchor["seq"].as_u64().unwrap() >= 1, "{header}");
    let json = offline(&h, &part, &["-o", "json"]).await.ok().json();
    let verified = &json["chains"][0];
    assert_eq!(verified["chain"], "dev", "{json}");
    assert_eq!(verified["anchor"]["seq"], anchor["seq"], "{json}");
    assert_eq!(verified["anchor"]["hash"], anchor["hash"], "{json}");

    // Tampering: an edit, a removed line, a cut-off end.
    let bad = dir.path().join("bad.jsonl");
    let edited = text.replacen("\"ben\"", "\"eve\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&bad, edited).unwrap();
    offline(&h, &bad, &[])
        .await
        .fails(8, "BROKEN export")
        .fails(8, "in chain dev at seq");
    let mut removed = lines.clone();
    removed.remove(3);
    std::fs::write(&bad, removed.join("\n")).unwrap();
    offline(&h, &bad, &[])
        .await
        .fails(8, "in chain dev at seq 3");
    std::fs::write(&bad, lines[..lines.len() - 1].join("\n")).unwrap();
    offline(&h, &bad, &[]).await.fails(8, "no end line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_chains_verify_search_and_export() {
    let h = Harness::start().await;
    h.admin(&["user", "add", "ann", "--role", "engineer"])
        .await
        .ok();
    // Another gateway's chain and the shared chain, in the same database.
    let url = sqlite_url(&h);
    let (gw_b, shared) = (
        journal_as(&url, Some("gw-b")).await,
        journal_as(&url, None).await,
    );
    let t0 = Timestamp::now().as_millis();
    let mut b = Vec::new();
    for i in 1..=4 {
        let at = Timestamp::from_millis(t0 + 10 * i);
        b.push(
            gw_b.append_event(&event(&format!("b{i}"), at))
                .await
                .unwrap(),
        );
    }
    for i in 1..=3 {
        let at = Timestamp::from_millis(t0 + 100 + i);
        shared
            .append_event(&event(&format!("s{i}"), at))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.admin(&["user", "add", "cat", "--role", "engineer"])
        .await
        .ok();
    let dev_head = chain_head(&h, "dev").await;

    // verify: one line per chain, the shared chain first, then the verdict.
    let v = h.admin(&["audit", "verify"]).await.ok();
    let lines: Vec<&str> = v.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", v.stdout);
    assert!(
        lines[0].starts_with("chain (shared): 3 records, head seq 3, hash "),
        "{}",
        v.stdout
    );
    assert!(
        lines[1].starts_with(&format!(
            "chain dev: {dev_head} records, head seq {dev_head}, hash "
        )),
        "{}",
        v.stdout
    );
    assert!(
        lines[2].starts_with("chain gw-b: 4 records, head seq 4, hash ")
            && lines[2].ends_with(", ok"),
        "{}",
        v.stdout
    );
    assert_eq!(lines[3], format!("OK: {} events in 3 chains", dev_head + 7));

    // search: the chain in the table and in JSON; --chain filters, (shared) is the shared one.
    let only_b = h
        .admin(&["audit", "search", "--chain", "gw-b", "-o", "json"])
        .await
        .ok()
        .json();
    let only_b = only_b.as_array().unwrap();
    let seqs: Vec<u64> = only_b.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert!(only_b.iter().all(|r| r["chain"] == "gw-b"));
    let only_shared = h
        .admin(&["audit", "search", "--chain", "(shared)", "-o", "json"])
        .await
        .ok()
        .json();
    let only_shared = only_shared.as_array().unwrap();
    assert_eq!(only_shared.len(), 3);
    assert!(only_shared.iter().all(|r| r.get("chain").is_none()));
    let table = h.admin(&["audit", "search", "--limit", "1000"]).await.ok();
    let chains: BTreeSet<&str> = table
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        chains,
        BTreeSet::from(["(shared)", "dev", "gw-b"]),
        "{}",
        table.stdout
    );
    h.admin(&["audit", "search", "--chain", "no such"])
        .await
        .fails(2, "instance name");
    // Paging on journal positions across chains returns every record once.
    let paged = h
        .admin(&["audit", "search", "--limit", "1000", "-o", "json"])
        .await
        .ok()
        .json();
    let keys: BTreeSet<(String, u64)> = paged
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["chain"].as_str().unwrap_or("").to_owned(),
                r["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys.len() as u64, dev_head + 7);

    // export: every chain, verified offline.
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.jsonl");
    let out = h
        .admin(&["audit", "export", "--out", all.to_str().unwrap()])
        .await
        .ok();
    assert!(
        out.stdout.contains("((shared) seq 1..3, dev seq 1..")
            && out.stdout.contains(", gw-b seq 1..4)"),
        "{}",
        out.stdout
    );
    let ok = offline(&h, &all, &[]).await.ok();
    assert!(
        ok.stdout
            .starts_with(&format!("OK: {} events in 3 chains\n", dev_head + 7)),
        "{}",
        ok.stdout
    );
    assert!(
        ok.stdout
            .contains("chain gw-b: seq 1..4 (4 records); anchor seq 0 hash 0000"),
        "{}",
        ok.stdout
    );
    // A window from gw-b's third record: gw-b's run is anchored at its second, the shared
    // chain's records are all later, dev's run starts at its first record since then.
    let since = b[2].time.to_rfc3339();
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
    let summary = offline(&h, &part, &["-o", "json"]).await.ok().json();
    let by_chain: BTreeMap<String, (u64, u64, u64)> = summary["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["chain"].as_str().unwrap_or("(shared)").to_owned(),
                (
                    c["anchor"]["seq"].as_u64().unwrap(),
                    c["count"].as_u64().unwrap(),
                    c["last"]["seq"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(by_chain["gw-b"], (2, 2, 4), "{summary}");
    assert_eq!(by_chain["(shared)"], (0, 3, 3), "{summary}");
    let (anchor, count, last) = by_chain["dev"];
    assert!(
        anchor >= 1 && last == dev_head && count == last - anchor,
        "{summary}"
    );
    // Moving a record to another chain in the file is caught, and the chain named.
    let text = std::fs::read_to_string(&all).unwrap();
    let moved = text.replacen(
        "{\"chain\":\"gw-b\",\"seq\":2,",
        "{\"chain\":\"dev\",\"seq\":2,",
        1,
    );
    assert_ne!(moved, text);
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, moved).unwrap();
    let run = offline(&h, &bad, &[]).await.fails(8, "BROKEN export");
    assert!(
        run.stderr.contains("in chain dev at seq ") || run.stderr.contains("in chain gw-b at seq "),
        "{}",
        run.stderr
    );

    // One chain edited behind the gateway's back: that chain is named, the others verify.
    tamper(
        &h.gw.database_path(),
        "UPDATE audit_events SET actor = 'mallory' WHERE chain = 'gw-b' AND chain_seq = 2",
    )
    .await;
    let broken = h.admin(&["audit", "verify"]).await;
    assert_eq!(broken.code, 8, "{broken:?}");
    assert!(
        broken
            .stderr
            .starts_with("BROKEN in chain gw-b at seq 2: record 2 was altered"),
        "{}",
        broken.stderr
    );
    let lines: Vec<&str> = broken.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", broken.stdout);
    assert!(lines[0].ends_with(", ok") && lines[1].ends_with(", ok"));
    assert!(
        lines[2].starts_with("chain gw-b: 1 records, head seq 1, ")
            && lines[2].contains(", BROKEN in chain gw-b at seq 2: "),
        "{}",
        broken.stdout
    );
    let json = h.admin(&["audit", "verify", "-o", "json"]).await;
    assert_eq!(json.code, 8, "{json:?}");
    let json = json.json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["chains"][2]["chain"], "gw-b");
    assert_eq!(json["chains"][2]["first_bad_seq"], 2);
    assert_eq!(json["chains"][1]["ok"], true);
}

/// `GET /v1/audit/chains` and the chain parameters of `GET /v1/audit/events`, over HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_api() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let h = Harness::start().await;
    let pem = std::fs::read(&h.ca).unwrap();
    let mut builder = reqwest::Client::builder().tls_built_in_root_certs(false);
    for cert in reqwest::Certificate::from_pem_bundle(&pem).unwrap() {
        builder = builder.add_root_certificate(cert);
    }
    let client = builder.build().unwrap();
    let get = |path: &str, token: Option<String>| {
        let mut req = client.get(format!("{}{path}", h.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let admin = Some(h.admin.clone());
    let (status, view) = get("/v1/audit/chains", admin.clone()).await;
    assert_eq!(status, 200, "{view}");
    let chains = view["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 1, "{view}");
    assert_eq!(chains[0]["chain"], "dev");
    assert!(chains[0]["head"]["seq"].as_u64().unwrap() >= 1, "{view}");
    assert_eq!(chains[0]["head"]["hash"].as_str().unwrap().len(), 64);
    assert_eq!(get("/v1/audit/chains", None).await.0, 401);
    h.admin(&["user", "add", "ann", "--role", "engineer"])
        .await
        .ok();
    let engineer = h.token_for("ann", "10m").await;
    assert_eq!(get("/v1/audit/chains", Some(engineer)).await.0, 403);
    // Following a chain: records after a chain seq, only that chain's.
    let (status, page) = get(
        "/v1/audit/events?chain=dev&after_chain_seq=2",
        admin.clone(),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.first(), Some(&3), "{page}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let (status, empty) = get("/v1/audit/events?chain=", admin.clone()).await;
    assert_eq!(
        (status, empty["events"].as_array().unwrap().len()),
        (200, 0),
        "{empty}"
    );
    for (query, why) in [
        ("after_chain_seq=2", "after_chain_seq needs chain"),
        ("chain=gw%20b", "chain is a gateway instance name"),
        ("chain=(shared)", "chain is a gateway instance name"),
    ] {
        let (status, body) = get(&format!("/v1/audit/events?{query}"), admin.clone()).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(why),
            "{query}: {body}"
        );
    }
}

/// `sallyport audit tail -n 1 -f -o json` as the admin, and its output's lines.
fn tail_follow(
    h: &Harness,
) -> (
    tokio::process::Child,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
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
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_prints_new_events() {
    let h = Harness::start().await;
    let (mut child, mut lines) = tail_follow(&h);
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

/// On PostgreSQL, journal positions commit out of order across chains; `tail -f` follows each
/// chain on its own, so while four chains (two begun after the tail started, one of them in a
/// transaction that commits seconds after records with later positions) are appended to at
/// once, every record is printed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_misses_nothing_across_chains() {
    let server = sallyport_tests::postgres::PgServer::shared().unwrap_or_else(|e| panic!("{e:#}"));
    let url = server.fresh_database().unwrap();
    let h = Harness::start_with_store(sallyport_gateway::dev::DevStore {
        url: url.clone(),
        instance: "gw-a".into(),
        propagation: Default::default(),
        secrets: None,
    })
    .await;
    let (mut child, mut lines) = tail_follow(&h);
    // The first line: the tail has read where every chain stands.
    let first: Record = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(first.chain.as_deref(), Some("gw-a"));

    // Three writers at once, in small groups: gw-a (beside the gateway itself), gw-b, and
    // gw-c, a chain that did not exist when the tail started.
    let mut writers = Vec::new();
    for (name, n) in [("gw-a", 60), ("gw-b", 80), ("gw-c", 50)] {
        let store = journal_as(&url, Some(name)).await;
        writers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..n {
                let e = event(&format!("{name}-{i}"), Timestamp::now());
                if i % 10 == 0 {
                    let mut tx = store.write().await.unwrap();
                    let group = [e.clone(), event(&format!("{name}-{i}x"), Timestamp::now())];
                    out.extend(tx.journal_many(&group).await.unwrap());
                    tx.commit().await.unwrap();
                } else {
                    out.push(store.append_event(&e).await.unwrap());
                }
                if i % 7 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            out
        }));
    }
    // A transaction that takes its journal positions early and commits late: records with
    // higher positions commit before it (a tail paging on positions would skip it).
    let slow = journal_as(&url, Some("gw-d")).await;
    writers.push(tokio::spawn(async move {
        let mut tx = slow.write().await.unwrap();
        let out = tx
            .journal_many(&[event("gw-d-slow", Timestamp::now())])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        tx.commit().await.unwrap();
        out
    }));
    let mut expected: BTreeSet<(String, u64)> = BTreeSet::new();
    for w in writers {
        for r in w.await.unwrap() {
            expected.insert((r.chain.unwrap(), r.seq));
        }
    }
    assert_eq!(expected.len(), 60 + 80 + 50 + 6 + 8 + 5 + 1);

    let mut printed: Vec<(String, u64)> = Vec::new();
    let all_seen = tokio::time::timeout(Duration::from_secs(30), async {
        while !expected.iter().all(|k| printed.contains(k)) {
            let line = lines.next_line().await.unwrap().unwrap();
            let r: Record = serde_json::from_str(&line).unwrap();
            printed.push((r.chain.unwrap_or_default(), r.seq));
        }
    })
    .await;
    assert!(
        all_seen.is_ok(),
        "missing: {:?}",
        expected
            .iter()
            .filter(|k| !printed.contains(k))
            .collect::<Vec<_>>()
    );
    // A few more rounds: nothing is printed twice.
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(2500), lines.next_line())
        .await
        .map(Result::unwrap)
    {
        let r: Record = serde_json::from_str(&line).unwrap();
        printed.push((r.chain.unwrap_or_default(), r.seq));
    }
    let unique: BTreeSet<&(String, u64)> = printed.iter().collect();
    assert_eq!(unique.len(), printed.len(), "printed twice: {printed:?}");
    for (chain, seq) in &printed {
        if chain == "gw-a" {
            assert!(*seq > first.seq, "gw-a {seq} was before the start");
        }
    }
    child.kill().await.unwrap();

    // The same journal exported and verified offline: four chains, interleaved by position.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.jsonl");
    h.admin(&["audit", "export", "--out", file.to_str().unwrap()])
        .await
        .ok();
    let ok = offline(&h, &file, &[]).await.ok();
    assert!(ok.stdout.contains(" events in 4 chains\n"), "{}", ok.stdout);
    for line in [
        "chain gw-b: seq 1..88 (88 records)",
        "chain gw-c: seq 1..55 (55 records)",
        "chain gw-d: seq 1..1 (1 records)",
    ] {
        assert!(ok.stdout.contains(line), "no {line:?} in {}", ok.stdout);
    }
    h.gw.shutdown().await;
}
