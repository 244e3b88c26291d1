#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
//! `sallyport ssh-config` end to end: the real binary against a dev gateway (whose SSH listener
//! is running), then OpenSSH's own reading of what it printed (`ssh -G`, `ssh-keyscan`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

// Shared with e2e.rs; this suite uses part of it.
#[allow(dead_code)]
mod common;

use common::{Harness, ALICE_KEY, HOST_KEY};

/// `ssh -G -F CONFIG HOST` as `key -> value`.
fn ssh_g(config: &Path, host: &str) -> BTreeMap<String, String> {
    let out = Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(config)
        .arg(host)
        .env_clear()
        .env("HOME", config.parent().unwrap())
        .output()
        .expect("ssh (openssh-client) must be installed; scripts/test installs it");
    assert!(
        out.status.success(),
        "ssh -G {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The first two fields of a key line: what known_hosts compares.
fn bare(key: &str) -> String {
    key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engineer_gets_host_blocks_for_what_they_may_reach() {
    let h = Harness::start().await;
    for args in [
        &[
            "user", "add", "alice", "--role", "engineer", "--group", "ops",
        ][..],
        &["user", "add", "bob", "--role", "engineer"],
        &["key", "add", "alice", ALICE_KEY],
        &[
            "target",
            "add",
            "db-1",
            "--address",
            "10.0.12.7:22",
            "--host-key",
            HOST_KEY,
        ],
        &["target", "add", "web-1", "--address", "10.0.12.8:2200"],
        &["target", "add", "other-1", "--address", "10.0.12.9:22"],
        &["grant", "alice", "db-1", "--for", "2h", "--reason", "INC-1"],
        &["grant", "@ops", "web-1", "--for", "1h", "--reason", "INC-2"],
        &[
            "grant",
            "@ops",
            "10.0.12.0/24",
            "--for",
            "1h",
            "--reason",
            "INC-3",
        ],
        // Not jump mode, and not alice's: neither shows up for her.
        &[
            "grant", "alice", "other-1", "--proto", "tcp", "--for", "1h", "--reason", "INC-4",
        ],
        &[
            "grant", "bob", "other-1", "--for", "1h", "--reason", "INC-5",
        ],
    ] {
        h.admin(args).await.ok();
    }
    let alice = h.token_for("alice", "1h").await;
    let ssh_addr = h.gw.ssh_addr();

    let view = h
        .run_as(
            Some(&alice),
            &["ssh-config", "--user", "ubuntu", "-o", "json"],
        )
        .await
        .ok()
        .json();
    let gw = &view["gateway"];
    assert_eq!(gw["alias"], "sallyport");
    assert_eq!(gw["user"], "alice");
    assert_eq!(gw["host_name"], ssh_addr.ip().to_string());
    assert_eq!(gw["port"], ssh_addr.port());
    let targets: Vec<&str> = view["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["db-1", "web-1"], "{view:#}");
    assert_eq!(
        view["targets"][0]["known_hosts"],
        format!("db-1 {}", bare(HOST_KEY))
    );
    assert_eq!(view["targets"][1]["port"], 2200);
    assert_eq!(view["networks"][0]["cidr"], "10.0.12.0/24");
    assert_eq!(view["networks"][0]["host_pattern"], "10.0.12.*");

    // The host key the API reports is the one the SSH listener presents.
    let scan = Command::new("ssh-keyscan")
        .args(["-t", "ed25519", "-p", &ssh_addr.port().to_string()])
        .arg(ssh_addr.ip().to_string())
        .output()
        .unwrap();
    let scanned = String::from_utf8(scan.stdout).unwrap();
    let presented = scanned
        .lines()
        .find(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| panic!("ssh-keyscan found no key: {scanned:?}"));
    assert_eq!(
        gw["known_hosts"].as_str().unwrap(),
        format!("sallyport {presented}")
    );

    // The text form, read by OpenSSH.
    let text = h
        .run_as(Some(&alice), &["ssh-config", "--user", "ubuntu"])
        .await
        .ok()
        .stdout;
    assert!(
        text.contains(&format!("#   sallyport {presented}\n")),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, &text).unwrap();
    let jump = ssh_g(&config, "sallyport");
    assert_eq!(jump["hostname"], ssh_addr.ip().to_string());
    assert_eq!(jump["port"], ssh_addr.port().to_string());
    assert_eq!(jump["user"], "alice");
    assert_eq!(jump["hostkeyalias"], "sallyport");
    assert!(!jump.contains_key("proxyjump"), "{jump:?}");
    let db = ssh_g(&config, "db-1");
    assert_eq!(db["proxyjump"], "sallyport");
    assert_eq!(db["hostname"], "db-1");
    assert_eq!(db["user"], "ubuntu");
    let web = ssh_g(&config, "web-1");
    assert_eq!(web["port"], "2200");
    let other = ssh_g(&config, "other-1");
    assert!(!other.contains_key("proxyjump"), "{other:?}");

    // Bob sees his own grant only; the admin, who has none, gets the gateway alone.
    let bob = h.token_for("bob", "1h").await;
    let bobs = h
        .run_as(Some(&bob), &["ssh-config", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(bobs["targets"].as_array().unwrap().len(), 1, "{bobs:#}");
    assert_eq!(bobs["targets"][0]["name"], "other-1");
    assert_eq!(bobs["gateway"]["user"], "bob");
    let admin = h.admin(&["ssh-config"]).await.ok().stdout;
    assert!(admin.contains("\nHost sallyport\n"), "{admin}");
    assert!(!admin.contains("    ProxyJump"), "{admin}");

    // Local mistakes fail before any request; a target named like the alias is refused.
    h.run_as(Some(&alice), &["ssh-config", "--gateway-alias", "a b"])
        .await
        .fails(2, "--gateway-alias");
    h.run_as(Some(&alice), &["ssh-config", "--gateway-alias", "db-1"])
        .await
        .fails(2, "--gateway-alias");
}
