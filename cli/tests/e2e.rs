#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! End to end: the real `sallyport` binary against a dev gateway started in-process, over
//! HTTPS with the gateway's own CA, exactly as an operator would use it.

use std::path::Path;
use std::time::Duration;

mod common;

use common::{tamper, Harness, ALICE_KEY, BOB_FP, BOB_KEY, HOST_FP, HOST_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_keys_targets_and_grants() {
    let h = Harness::start().await;

    let me = h.admin(&["whoami"]).await.ok();
    assert!(me.stdout.starts_with("USER"), "{}", me.stdout);
    assert!(
        me.stdout.lines().nth(1).unwrap().starts_with("admin "),
        "{}",
        me.stdout
    );
    assert!(
        !me.stdout.contains(&h.admin) && !me.stderr.contains(&h.admin),
        "the token was printed"
    );

    // Users.
    let alice = h
        .admin(&[
            "user", "add", "alice", "--role", "engineer", "--group", "ops",
        ])
        .await
        .ok();
    assert!(
        alice.stdout.lines().nth(1).unwrap().starts_with("alice "),
        "{}",
        alice.stdout
    );
    let bob = h
        .admin(&[
            "user",
            "add",
            "bob",
            "--role",
            "engineer,auditor",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(bob["id"], "bob");
    assert_eq!(bob["roles"], serde_json::json!(["engineer", "auditor"]));
    h.admin(&["user", "add", "alice", "--role", "engineer"])
        .await
        .fails(5, "error: ");
    h.admin(&["user", "add", "Carol", "--role", "engineer"])
        .await
        .fails(2, "invalid user name \"Carol\"");
    let users = h.admin(&["user", "list", "-o", "json"]).await.ok().json();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"admin") && names.contains(&"alice") && names.contains(&"bob"),
        "{names:?}"
    );
    let table = h.admin(&["user", "list"]).await.ok();
    assert!(table.stdout.starts_with("NAME "), "{}", table.stdout);
    assert_eq!(
        table.stdout.lines().count(),
        1 + names.len(),
        "{}",
        table.stdout
    );
    h.admin(&["user", "show", "nobody"])
        .await
        .fails(4, "nobody");
    let groups = h.admin(&["group", "list"]).await.ok();
    assert!(
        groups
            .stdout
            .lines()
            .any(|l| l.starts_with("ops ") && l.contains("alice")),
        "{}",
        groups.stdout
    );

    // Keys: a valid one, a malformed one refused before sending, one from a file.
    let added = h
        .admin(&["key", "add", "alice", ALICE_KEY, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(added["user"], "alice");
    assert!(added["id"].as_str().unwrap().starts_with("SHA256:"));
    h.admin(&["key", "add", "alice", "ssh-ed25519 AAAAnotakey alice@x"])
        .await
        .fails(2, "invalid SSH public key");
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("id_ed25519");
    std::fs::write(
        &private,
        concat!(
            "-----BEGIN OPENSSH ",
            "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH ",
            "PRIVATE KEY-----\n"
        ),
    )
    .unwrap();
    h.admin(&["key", "add", "alice", "--file", private.to_str().unwrap()])
        .await
        .fails(2, "private key");
    assert_eq!(
        h.admin(&["key", "list", "alice", "-o", "json"])
            .await
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let public = dir.path().join("id_ed25519.pub");
    std::fs::write(&public, format!("{BOB_KEY}\n")).unwrap();
    h.admin(&["key", "add", "bob", "--file", public.to_str().unwrap()])
        .await
        .ok();
    let keys = h.admin(&["key", "list"]).await.ok();
    assert!(keys.stdout.starts_with("FINGERPRINT "), "{}", keys.stdout);
    assert!(
        keys.stdout.contains(BOB_FP) && keys.stdout.contains("alice@laptop"),
        "{}",
        keys.stdout
    );
    let removed = h
        .admin(&["key", "remove", BOB_FP, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(removed["id"], BOB_FP);
    assert!(h
        .admin(&["key", "list", "bob", "-o", "json"])
        .await
        .ok()
        .json()
        .as_array()
        .unwrap()
        .is_empty());
    h.admin(&["key", "remove", BOB_FP])
        .await
        .fails(4, "error: ");

    // Targets.
    h.admin(&[
        "target",
        "add",
        "db-1",
        "--address",
        "10.0.12.7:22",
        "--host-key",
        HOST_KEY,
    ])
    .await
    .ok();
    h.admin(&["target", "add", "web-1", "--address", "10.0.12.8:22"])
        .await
        .ok();
    h.admin(&["target", "add", "db-2", "--address", "10.0.12.9"])
        .await
        .fails(2, "invalid address");
    let targets = h.admin(&["target", "list"]).await.ok();
    assert!(
        targets
            .stdout
            .lines()
            .any(|l| l.starts_with("db-1 ") && l.contains(HOST_FP)),
        "{}",
        targets.stdout
    );
    let gone = h
        .admin(&["target", "remove", "web-1", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(gone["id"], "web-1");

    // Grants: table mode prints just the id; JSON mode the object.
    let created = h
        .admin(&["grant", "alice", "db-1", "--for", "2h", "--reason", "INC-1"])
        .await
        .ok();
    let id = created.stdout.trim().to_owned();
    assert_eq!(created.stdout, format!("{id}\n"));
    assert_eq!(id.len(), 36, "not a grant id: {id:?}");
    let ops = h
        .admin(&[
            "grant",
            "@ops",
            "10.0.12.0/24",
            "--proto",
            "tcp",
            "--ports",
            "5432",
            "--reason",
            "INC-2",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(ops["subject"], "@ops");
    assert_eq!(ops["protocols"], serde_json::json!(["tcp"]));
    assert_eq!(ops["ports"], "5432");
    let ops_id = ops["id"].as_str().unwrap().to_owned();
    let list = h.admin(&["grant", "list"]).await.ok();
    assert!(list.stdout.starts_with("ID "), "{}", list.stdout);
    assert!(
        list.stdout.contains(&id) && list.stdout.contains(&ops_id),
        "{}",
        list.stdout
    );
    let mine = h
        .admin(&["grant", "list", "--user", "alice", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        mine.as_array().unwrap().len(),
        2,
        "alice's own grant and her group's: {mine}"
    );
    let shown = h.admin(&["grant", "show", &id]).await.ok();
    assert!(
        shown.stdout.contains("INC-1") && shown.stdout.contains("granted-by  admin"),
        "{}",
        shown.stdout
    );
    assert_eq!(h.grant_count().await, 2);

    // Refused grants leave nothing behind.
    h.admin(&["grant", "alice", "10.0.12.7/24", "--reason", "x"])
        .await
        .fails(2, "host bits");
    h.admin(&[
        "grant", "alice", "db-1", "--ports", "65536", "--reason", "x",
    ])
    .await
    .fails(2, "invalid ports");
    h.admin(&[
        "grant",
        "alice",
        "db-1",
        "--from",
        "2030-01-02T00:00:00Z",
        "--until",
        "2030-01-01T00:00:00Z",
        "--reason",
        "x",
    ])
    .await
    .fails(2, "--until must be after --from");
    h.admin(&[
        "grant",
        "alice",
        "db-1",
        "--for",
        "1h",
        "--until",
        "2030-01-01T00:00:00Z",
        "--reason",
        "x",
    ])
    .await
    .fails(2, "cannot be used with");
    let unknown_user = h.admin(&["grant", "carol", "db-1", "--reason", "x"]).await;
    assert_ne!(unknown_user.code, 0);
    unknown_user.fails(4, "carol");
    let unknown_target = h.admin(&["grant", "alice", "db-9", "--reason", "x"]).await;
    assert_ne!(unknown_target.code, 0);
    unknown_target.fails(4, "db-9");
    assert_eq!(h.grant_count().await, 2);

    // Revoke.
    let revoked = h.admin(&["revoke", &id]).await.ok();
    assert!(
        revoked.stdout.lines().nth(1).unwrap().contains("revoked"),
        "{}",
        revoked.stdout
    );
    let after = h
        .admin(&["grant", "show", &id, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(after["status"], "revoked");
    assert_eq!(after["revoked_by"], "admin");
    h.admin(&["grant", "show", "00000000-0000-4000-8000-000000000000"])
        .await
        .fails(4, "error: ");

    // Disable and enable.
    let disabled = h
        .admin(&["user", "disable", "alice", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(disabled["state"], "disabled");
    assert_eq!(
        h.admin(&["user", "show", "alice", "-o", "json"])
            .await
            .ok()
            .json()["state"],
        "disabled"
    );
    h.admin(&["user", "enable", "alice"]).await.ok();
    let regrouped = h
        .admin(&[
            "user", "groups", "alice", "--group", "dba", "--group", "ops", "-o", "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(regrouped["groups"], serde_json::json!(["dba", "ops"]));

    h.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_trail_and_tampering() {
    let h = Harness::start().await;
    h.admin(&["user", "add", "alice", "--role", "engineer"])
        .await
        .ok();
    h.admin(&["key", "add", "alice", ALICE_KEY]).await.ok();
    h.admin(&["target", "add", "db-1", "--address", "10.0.12.7:22"])
        .await
        .ok();
    let id = h
        .admin(&["grant", "alice", "db-1", "--reason", "INC-7"])
        .await
        .ok()
        .stdout
        .trim()
        .to_owned();
    h.admin(&["revoke", &id]).await.ok();
    h.admin(&["user", "disable", "alice"]).await.ok();

    let events = h
        .admin(&["audit", "search", "--user", "alice", "-o", "json"])
        .await
        .ok()
        .json();
    let events = events.as_array().unwrap();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for expected in [
        "access.user.create",
        "access.key.add",
        "access.grant.create",
        "access.user.disable",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for e in events {
        assert_eq!(e["actor"], "admin", "{e}");
    }
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );

    // Paging: a limit smaller than what matches, and one page boundary crossed.
    let all = h
        .admin(&["audit", "search", "-o", "json", "--limit", "1000"])
        .await
        .ok()
        .json();
    let total = all.as_array().unwrap().len();
    assert!(total >= 6, "{all}");
    let two = h
        .admin(&["audit", "search", "-o", "json", "--limit", "2"])
        .await
        .ok()
        .json();
    assert_eq!(two.as_array().unwrap().len(), 2);
    let typed = h
        .admin(&["audit", "search", "--type", "access.grant", "-o", "json"])
        .await
        .ok()
        .json();
    assert!(typed
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["event"].as_str().unwrap().starts_with("access.grant")));
    let table = h
        .admin(&["audit", "search", "--user", "alice", "--since", "1h"])
        .await
        .ok();
    assert!(table.stdout.starts_with("CHAIN  SEQ "), "{}", table.stdout);
    assert_eq!(
        table.stdout.lines().count(),
        1 + events.len(),
        "{}",
        table.stdout
    );

    // One line per chain (the dev gateway journals to its instance's chain), then the verdict.
    let verified = h.admin(&["audit", "verify"]).await.ok();
    let lines: Vec<&str> = verified.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", verified.stdout);
    assert!(
        lines[0].starts_with(&format!(
            "chain dev: {total} records, head seq {total}, hash "
        )) && lines[0].ends_with(", ok"),
        "{}",
        verified.stdout
    );
    assert_eq!(lines[1], format!("OK: {total} events in 1 chains"));

    // Edit one journal row behind the gateway's back.
    tamper(
        &h.gw.database_path(),
        "UPDATE audit_events SET actor = 'mallory' WHERE chain = 'dev' AND chain_seq = 3",
    )
    .await;
    let broken = h.admin(&["audit", "verify"]).await;
    assert_eq!(broken.code, 8, "{broken:?}");
    assert!(
        broken
            .stderr
            .starts_with("BROKEN in chain dev at seq 3: record 3 was altered"),
        "{}",
        broken.stderr
    );
    assert!(
        broken
            .stdout
            .starts_with("chain dev: 2 records, head seq 2, hash ")
            && broken.stdout.contains(", BROKEN in chain dev at seq 3: "),
        "{}",
        broken.stdout
    );
    let json = h.admin(&["audit", "verify", "-o", "json"]).await;
    assert_eq!(json.code, 8, "{json:?}");
    let json = json.json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["chains"][0]["chain"], "dev");
    assert_eq!(json["chains"][0]["first_bad_seq"], 3);

    h.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_and_unreachable_gateways() {
    let h = Harness::start().await;
    h.admin(&["user", "add", "alice", "--role", "engineer"])
        .await
        .ok();
    h.admin(&["user", "add", "eve", "--role", "engineer"])
        .await
        .ok();

    h.run_as(None, &["whoami"])
        .await
        .fails(3, "error: no API token");
    let bogus = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl";
    let run = h
        .run_as(Some(bogus), &["user", "list"])
        .await
        .fails(3, "error: ");
    assert!(!run.stderr.contains(bogus), "token echoed: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    // A token file instead of the environment; an empty one is refused before any request.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{}\n", h.admin)).unwrap();
    let me = h
        .run_as(None, &["whoami", "--token-file", file.to_str().unwrap()])
        .await
        .ok();
    assert!(me.stdout.contains("admin"), "{}", me.stdout);
    std::fs::write(&file, "\n").unwrap();
    h.run_as(None, &["--token-file", file.to_str().unwrap(), "whoami"])
        .await
        .fails(3, "error: the API token is empty");

    // Wrong role: an engineer may read their own grants but not administer.
    let alice = h.token_for("alice", "10m").await;
    let me = h
        .run_as(Some(&alice), &["whoami", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(me["user"], "alice");
    h.run_as(Some(&alice), &["user", "add", "mallory", "--role", "admin"])
        .await
        .fails(3, "admin");
    h.run_as(Some(&alice), &["audit", "search"])
        .await
        .fails(3, "error: ");
    h.run_as(Some(&alice), &["grant", "list"]).await.ok();
    assert!(
        h.admin(&["user", "show", "mallory"]).await.code == 4,
        "the refused user was created"
    );

    // A disabled user's token stops working at once.
    let eve = h.token_for("eve", "10m").await;
    h.run_as(Some(&eve), &["whoami"]).await.ok();
    h.admin(&["user", "disable", "eve"]).await.ok();
    h.run_as(Some(&eve), &["whoami"]).await.fails(3, "error: ");

    // Not https, an unreachable port, and a CA that did not sign the gateway's certificate.
    h.run_with("http://127.0.0.1:1", &h.ca, Some(&h.admin), &["whoami"])
        .await
        .fails(2, "https://");
    let refused = h
        .run_with("https://127.0.0.1:1", &h.ca, Some(&h.admin), &["whoami"])
        .await;
    refused.fails(7, "cannot connect to https://127.0.0.1:1/v1/whoami");
    let other = Harness::start().await;
    h.run_with(&h.url, &other.ca, Some(&h.admin), &["whoami"])
        .await
        .fails(7, "TLS handshake failed with https://");
    h.run_with(
        &h.url,
        Path::new("/nonexistent/ca.pem"),
        Some(&h.admin),
        &["whoami"],
    )
    .await
    .fails(2, "cannot read CA certificate /nonexistent/ca.pem");
    other.gw.shutdown().await;

    // Expiry: a token signed with the gateway's own key whose window closed an hour ago (well
    // past the 30 s clock-skew leeway).
    let an_hour_ago =
        sallyport_core::time::Timestamp::now().saturating_sub(Duration::from_secs(7200));
    let short =
        h.gw.gateway()
            .tokens()
            .issue_window(
                &"alice".parse().unwrap(),
                an_hour_ago,
                Duration::from_secs(3600),
            )
            .unwrap()
            .token;
    h.run_as(Some(&short), &["whoami"])
        .await
        .fails(3, "expired");

    h.gw.shutdown().await;
}

#[test]
fn help_completions_and_usage_need_no_gateway() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sallyport"))
            .env_clear()
            .args(args)
            .output()
            .unwrap()
    };
    let help = run(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit codes:"));
    let bash = run(&["completions", "bash"]);
    assert!(bash.status.success());
    assert!(String::from_utf8_lossy(&bash.stdout).contains("sallyport"));
    let usage = run(&["grant"]);
    assert_eq!(usage.status.code(), Some(2));
    let nothing = run(&["whoami"]);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nothing.stderr).starts_with("error: no gateway"));
}
