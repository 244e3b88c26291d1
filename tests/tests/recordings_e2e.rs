//! End to end: OpenSSH `ssh -A -tt` and `sftp` through proxy mode to a real `sshd`; the
//! session is recorded and audited; the `sallyport` CLI lists it, replays it and exports it for
//! an auditor, and refuses an engineer.
//!
//! The CLI is the binary built by `cargo build -p sallyport-cli` (`target/debug/sallyport`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ssh_common;
mod ssh_proxy_lab;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use sallyport_core::api::CreateUser;
use sallyport_core::model::{Role, UserName};
use sallyport_core::recording::cast_read::Cast;
use ssh_common::admin;
use ssh_common::jump::finish;
use ssh_proxy_lab::{text, Proxy};
use tokio::io::AsyncWriteExt;

const WITHIN: Duration = Duration::from_secs(60);

fn cli_path() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = root.join("target/debug/sallyport");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p sallyport-cli` first",
        bin.display()
    );
    bin
}

/// A token for a new user `name` with `role`.
async fn token(p: &Proxy, name: &str, role: Role) -> String {
    let user: UserName = name.parse().unwrap();
    p.lab
        .control()
        .create_user(
            &admin(),
            CreateUser {
                name: user.clone(),
                roles: vec![role],
                groups: vec![],
            },
        )
        .await
        .unwrap();
    p.lab
        .gw
        .gateway()
        .tokens()
        .issue(&user, Duration::from_secs(600))
        .unwrap()
        .token
}

/// `sallyport ARGS…` against the lab's gateway with `token`.
async fn cli(p: &Proxy, token: &str, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(cli_path())
        .args(args)
        .env("SALLYPORT_GATEWAY", p.lab.gw.api_url())
        .env("SALLYPORT_CA_CERT", p.lab.gw.ca_cert_path())
        .env("SALLYPORT_TOKEN", token)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(WITHIN, child.wait_with_output())
        .await
        .expect("sallyport did not finish")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pty_session_is_recorded_listed_played_and_exported() {
    let p = Proxy::start().await;
    p.grant_db().await;
    let mut child = p.ssh(&["-A", "-tt", "root@db@gw"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"echo recorded-$((6*7))-marker; exit 0\n")
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    let out = finish(child, WITHIN).await;
    assert!(
        text(&out.stdout).contains("recorded-42-marker"),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let end = p
        .lab
        .wait_event("ssh.recording.end", WITHIN, |_| true)
        .await;
    let session = end.session.clone().unwrap();
    assert!(end.data["chunks"].as_u64().unwrap() >= 1, "{:?}", end.data);
    assert_eq!(end.data["dropped_events"], 0);
    let start = p
        .lab
        .wait_event("ssh.recording.start", WITHIN, |_| true)
        .await;
    assert_eq!(start.data["kind"], "shell");
    assert_eq!(start.data["login"], "root");
    assert_eq!(start.data["target"], "db");
    p.lab
        .wait_event("ssh.session.end", WITHIN, |r| {
            r.session.as_deref() == Some(session.as_str())
        })
        .await;

    let auditor = token(&p, "otto", Role::Auditor).await;
    // The session row, ended, in proxy mode, recorded.
    let deadline = Instant::now() + WITHIN;
    let listed = loop {
        let out = cli(&p, &auditor, &["session", "list", "-o", "json"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let row = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == session.as_str())
            .cloned();
        match row {
            Some(r) if !r["ended_at"].is_null() => break r,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => panic!("session {session} not listed as ended: {v}"),
        }
    };
    assert_eq!(listed["mode"], "proxy");
    assert_eq!(listed["target"], "db");
    assert_eq!(listed["login"], "root");
    assert_eq!(listed["user"], "alice");
    assert_eq!(listed["recorded"], true);
    assert_eq!(listed["instance"], "dev");
    let table = cli(&p, &auditor, &["session", "list"]).await;
    assert!(
        text(&table.stdout).contains("root@db"),
        "{}",
        text(&table.stdout)
    );

    // Shown with its recorded channel.
    let shown = cli(&p, &auditor, &["session", "show", &session, "-o", "json"]).await;
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(v["recordings"][0]["channel"], start.data["channel"]);
    assert!(v["recordings"][0]["chunks"].as_u64().unwrap() >= 1);
    let shown = cli(&p, &auditor, &["session", "show", &session]).await;
    assert!(
        text(&shown.stdout).contains("CHANNEL"),
        "{}",
        text(&shown.stdout)
    );

    // Played back with its timing (fast): it shows what the session printed.
    let played = cli(
        &p,
        &auditor,
        &["session", "play", &session, "--speed", "50", "-i", "0.2s"],
    )
    .await;
    assert!(played.status.success(), "{}", text(&played.stderr));
    assert!(
        text(&played.stdout).contains("recorded-42-marker"),
        "{}",
        text(&played.stdout)
    );

    // Exported for other players: a private asciicast v2 file.
    let file = p.dir.join("session.cast");
    let exported = cli(
        &p,
        &auditor,
        &[
            "session",
            "export",
            &session,
            "--out",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let cast = Cast::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(cast.output_text().contains("recorded-42-marker"));
    assert!(cast.header.env.term.is_some());
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Each fetch is journaled with the auditor as the actor.
    let views = p.lab.events("ssh.recording.view").await;
    assert_eq!(views.len(), 2, "{:?}", p.lab.events_brief().await);
    for v in &views {
        assert_eq!(v.actor, "otto");
        assert_eq!(v.data["session"], session.as_str());
        assert_eq!(v.data["user"], "alice");
        assert_eq!(v.data["target"], "db");
    }

    // An engineer is refused (exit 3), and so is an unknown session (exit 4).
    let engineer = token(&p, "erin", Role::Engineer).await;
    for args in [
        vec!["session", "list"],
        vec!["session", "play", session.as_str()],
        vec!["session", "export", session.as_str()],
    ] {
        let out = cli(&p, &engineer, &args).await;
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
    }
    let out = cli(
        &p,
        &auditor,
        &["session", "play", "6f1c0b7e-93a4-4a43-9d3f-6c1b3f7a2e10"],
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let out = cli(&p, &auditor, &["session", "play", "not-a-session"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // Refused fetches are not views.
    assert_eq!(p.lab.events("ssh.recording.view").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_sftp_put_are_audited() {
    let p = Proxy::start().await;
    p.grant_db().await;
    let out = p.exec("echo from-exec").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let exec = p.lab.wait_event("ssh.exec", WITHIN, |_| true).await;
    assert_eq!(exec.data["command"], "echo from-exec");
    assert_eq!(exec.data["login"], "root");

    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("put.bin");
    let renamed = remote_dir.path().join("renamed.bin");
    let local = p.dir.join("put.bin");
    let data = vec![7u8; 200_000];
    std::fs::write(&local, &data).unwrap();
    let batch = p.dir.join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {} {}\nrename {} {}\nrm {}\n",
            local.display(),
            remote.display(),
            remote.display(),
            renamed.display(),
            renamed.display()
        ),
    )
    .unwrap();
    let out = finish(
        p.run(
            "sftp",
            &[
                "-o",
                "ForwardAgent=yes",
                "-b",
                batch.to_str().unwrap(),
                "root@db@gw",
            ],
        ),
        WITHIN,
    )
    .await;
    assert!(out.status.success(), "sftp: {}", text(&out.stderr));
    let path = remote.to_str().unwrap().to_owned();
    let open = p
        .lab
        .wait_event("ssh.sftp.open", WITHIN, |r| r.data["path"] == path.as_str())
        .await;
    let flags = open.data["flags"].as_array().unwrap();
    for f in ["write", "create", "truncate"] {
        assert!(flags.iter().any(|x| x == f), "{flags:?}");
    }
    assert_eq!(open.data["outcome"], "ok");
    let write = p
        .lab
        .wait_event("ssh.sftp.write", WITHIN, |r| {
            r.data["path"] == path.as_str()
        })
        .await;
    assert_eq!(write.data["bytes"], 200_000);
    assert!(write.data["writes"].as_u64().unwrap() >= 1);
    let rename = p.lab.wait_event("ssh.sftp.rename", WITHIN, |_| true).await;
    assert_eq!(rename.data["from"], path.as_str());
    assert_eq!(rename.data["to"], renamed.to_str().unwrap());
    assert_eq!(rename.data["outcome"], "ok");
    let remove = p.lab.wait_event("ssh.sftp.remove", WITHIN, |_| true).await;
    assert_eq!(remove.data["path"], renamed.to_str().unwrap());
    assert_eq!(remove.data["outcome"], "ok");
    // The SFTP channel is audited, not recorded: the only recording is the exec's.
    let recs = p.lab.events("ssh.recording.start").await;
    assert_eq!(recs.len(), 1, "{:?}", p.lab.events_brief().await);
    assert_eq!(recs[0].data["kind"], "exec");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jump_session_is_listed_live_then_ended_and_not_recorded() {
    let j = ssh_common::jump::Jump::start().await;
    j.grant_target(Duration::from_secs(600)).await;
    // A session held open by a command that waits for its stdin.
    let mut child = j.jump("cat >/dev/null; echo done");
    let started = j.lab.wait_event("ssh.tunnel.open", WITHIN, |_| true).await;
    let session = started.session.clone().unwrap();
    let store = j.lab.control().store();
    let live = store.get_session(&session).await.unwrap().unwrap();
    assert_eq!(live.mode, "jump");
    assert_eq!(live.user.as_str(), "alice");
    assert_eq!(live.ended_at, None);
    assert_eq!(live.source, "127.0.0.1");
    assert!(
        live.client.starts_with("SSH-2.0-OpenSSH"),
        "{}",
        live.client
    );
    let q = sallyport_core::api::SessionQuery {
        live: Some(true),
        ..Default::default()
    };
    assert!(store
        .list_sessions(&q)
        .await
        .unwrap()
        .iter()
        .any(|s| s.id == session));
    drop(child.stdin.take());
    let out = finish(child, WITHIN).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    j.lab
        .wait_event("ssh.session.end", WITHIN, |r| {
            r.session.as_deref() == Some(session.as_str())
        })
        .await;
    let ended = store.get_session(&session).await.unwrap().unwrap();
    assert!(ended.ended_at.is_some());
    assert_eq!(ended.end_reason.as_deref(), Some("client"));
    assert!(!ended.recorded);
    assert!(store.recording_channels(&session).await.unwrap().is_empty());
}
