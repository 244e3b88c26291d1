//! `sallyportd dev` as a user runs it: the banner, the files it writes and their modes, and a
//! clean stop on SIGTERM and SIGINT.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_until_signal(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let port = free_port();
    let ssh_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sallyportd"))
        .args([
            "dev",
            "--state-dir",
            state.to_str().unwrap(),
            "--api-listen",
            &format!("127.0.0.1:{port}"),
            "--ssh-listen",
            &format!("127.0.0.1:{ssh_port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let token = state.join("admin.token");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(token.exists() && std::fs::metadata(&token).unwrap().len() > 0) {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("sallyportd dev exited early ({status}): {err}");
        }
        assert!(
            Instant::now() < deadline,
            "sallyportd dev did not start in 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give it a moment to print the banner after writing the token.
    std::thread::sleep(Duration::from_millis(300));
    let mode = std::fs::metadata(&token).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "admin.token must be private");
    let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "the state directory must be private");
    let ca = std::fs::read_to_string(state.join("api-ca.pem")).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----") && !ca.contains("PRIVATE"));

    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "sallyportd dev did not stop within 15 s of {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status} after {signal}: {err}");
    assert!(
        out.contains(&format!(
            "export SALLYPORT_GATEWAY=https://127.0.0.1:{port}"
        )),
        "{out}"
    );
    assert!(out.contains("export SALLYPORT_CA_CERT="), "{out}");
    assert!(
        out.contains(&format!("SSH          127.0.0.1:{ssh_port}")),
        "{out}"
    );
    assert!(out.contains("SSH host key SHA256:"), "{out}");
    assert!(out.contains("admin.token"), "{out}");
    assert!(err.contains("sallyportd stopped"), "{err}");
    let token_text = std::fs::read_to_string(&token).unwrap();
    assert!(
        !err.contains(token_text.trim()) && !out.contains(token_text.trim()),
        "the token is never printed"
    );
}

#[test]
fn dev_stops_cleanly_on_sigterm() {
    run_until_signal("-TERM");
}

#[test]
fn dev_stops_cleanly_on_sigint() {
    run_until_signal("-INT");
}

#[test]
fn bad_arguments_are_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_sallyportd"))
        .args(["dev", "--api-listen", "nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api-listen"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[secrets]\nssm_path = \"/ok\"\n[api]\nlisten = 5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sallyportd"))
        .args(["check-config", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen") && err.contains("bad.toml"), "{err}");
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/sallyportd.example.toml"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sallyportd"))
        .args(["check-config", "--config", example])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("CHANGE-ME"),
        "the database password is redacted"
    );
}

#[test]
fn migrate_applies_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_sallyportd"))
            .args(["migrate", "--database-url", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));
    }
    assert!(dir.path().join("m.db").exists());
    let out = Command::new(env!("CARGO_BIN_EXE_sallyportd"))
        .args([
            "migrate",
            "--database-url",
            "postgres://u:topsecret@127.0.0.1:1/db",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect") && !err.contains("topsecret"),
        "{err}"
    );
}
