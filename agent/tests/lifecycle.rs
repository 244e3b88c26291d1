//! Socket permissions, a live or stale socket at start, signals, and other users' peers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use common::{spawn_on, text, wait_for, AgentProcess};

#[test]
fn socket_and_directory_are_private() {
    let agent = AgentProcess::start();
    let meta = std::fs::metadata(&agent.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir = std::fs::metadata(agent.socket.parent().unwrap()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
}

#[test]
fn refuses_a_live_socket_replaces_a_stale_one() {
    let mut first = AgentProcess::start();
    let err = spawn_on(&first.socket).expect_err("second agent on a live socket");
    assert!(err.contains("already listening"), "{err}");

    // SIGKILL leaves the socket file behind; the next agent removes it and starts.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(first.socket.exists(), "killed agent left its socket");
    let mut next = spawn_on(&first.socket).expect("agent over a stale socket");
    next.kill().unwrap();
    next.wait().unwrap();

    // A regular file at the path is never removed.
    let file = first.dir.path().join("file.sock");
    std::fs::write(&file, b"x").unwrap();
    let err = spawn_on(&file).expect_err("agent over a regular file");
    assert!(err.contains("not a socket"), "{err}");
    assert!(file.exists());
}

#[test]
fn sigterm_and_sigint_zeroize_and_remove_the_socket() {
    for signal in ["-TERM", "-INT"] {
        let mut agent = AgentProcess::start();
        let key = agent.keygen("ed", "ed25519");
        assert!(agent.ssh_add(&[key.to_str().unwrap()]).status.success());
        let status = Command::new("kill")
            .arg(signal)
            .arg(agent.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let exited = wait_for(Duration::from_secs(5), || {
            matches!(agent.child.try_wait(), Ok(Some(_)))
        });
        assert!(exited.is_some(), "agent still running after {signal}");
        assert!(!agent.socket.exists(), "socket left behind after {signal}");
    }
}

#[test]
fn background_start_prints_shell_lines() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bg.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_sallyport-agent"))
        .arg("--socket")
        .arg(&socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("SSH_AUTH_SOCK={}; export SSH_AUTH_SOCK;", socket.display()).as_str())
    );
    let pid: u32 = lines
        .next()
        .and_then(|l| l.strip_prefix("SSH_AGENT_PID="))
        .and_then(|l| l.split(';').next())
        .and_then(|p| p.parse().ok())
        .expect("SSH_AGENT_PID line");
    let listed = Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    let _ = Command::new("kill").arg(pid.to_string()).status();
    assert_eq!(listed.status.code(), Some(1), "{}", text(&listed));
    assert!(wait_for(Duration::from_secs(5), || !socket.exists()).is_some());
}

#[test]
fn peers_of_another_user_are_refused() {
    if sallyport_agent::current_uid() != 0 {
        eprintln!("skipped: needs root to run a peer as another user");
        return;
    }
    let Some(nobody) = uid_of("nobody") else {
        eprintln!("skipped: no user nobody");
        return;
    };
    let agent = AgentProcess::start();
    // Open the filesystem permissions so only the agent's own uid check stands in the way.
    let parent = agent.socket.parent().unwrap();
    for p in [agent.dir.path(), parent] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&agent.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let as_nobody = agent.tool(
        "setpriv",
        &[
            &format!("--reuid={nobody}"),
            &format!("--regid={nobody}"),
            "--clear-groups",
            "ssh-add",
            "-l",
        ],
        &[],
    );
    // Served, it would print "The agent has no identities." Refused, ssh-add reports the
    // broken connection or dies of SIGPIPE writing to it.
    let stderr = String::from_utf8_lossy(&as_nobody.stderr);
    let sigpipe = std::os::unix::process::ExitStatusExt::signal(&as_nobody.status) == Some(13);
    let refused = sigpipe || stderr.contains("communication with agent failed");
    assert!(
        refused && !as_nobody.status.success(),
        "{}",
        text(&as_nobody)
    );
    assert!(as_nobody.stdout.is_empty(), "{}", text(&as_nobody));
    assert!(
        !stderr.contains("Permission denied"),
        "{}",
        text(&as_nobody)
    );
    // The owner (root) is still served.
    assert!(agent.list().is_empty());
}

fn uid_of(user: &str) -> Option<u32> {
    let out = Command::new("id").arg("-u").arg(user).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
