//! End to end with OpenSSH through an in-process dev gateway to a real `sshd`: revoking a
//! grant mid-session, a grant expiring, and 50 jumps at once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ssh_common;

use std::process::Output;
use std::time::{Duration, Instant};

use ssh_common::admin;
use ssh_common::jump::{finish, text, Jump};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

/// Starts `ssh -J … cat`, proves the tunnel carries data, and returns the running client and
/// its stdin (held open: `Child::wait` would close it, and `cat` would end on its own).
async fn live_cat(j: &Jump) -> (Child, tokio::process::ChildStdin) {
    let mut child = j.jump("cat");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    stdin.flush().await.unwrap();
    let mut line = [0u8; 6];
    tokio::time::timeout(
        Duration::from_secs(30),
        child.stdout.as_mut().unwrap().read_exact(&mut line),
    )
    .await
    .expect("no echo through the tunnel")
    .unwrap();
    assert_eq!(&line, b"hello\n");
    (child, stdin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_mid_session_ends_it_within_a_second() {
    let j = Jump::start().await;
    let grant = j.grant_target(Duration::from_secs(600)).await;
    let (mut child, _stdin) = live_cat(&j).await;
    let revoked = Instant::now();
    j.lab.control().revoke_grant(&admin(), grant).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("ssh still running 5 s after the revocation")
        .unwrap();
    let took = revoked.elapsed();
    assert!(!status.success());
    assert!(
        took < Duration::from_secs(1),
        "ssh ended {took:?} after the revocation"
    );
    let closed = j
        .lab
        .wait_event("ssh.tunnel.close", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(closed.data["reason"], "revoked");
    assert_eq!(closed.data["grant"], grant.to_string());
    // The next jump is refused, with the reason.
    let out = finish(j.jump("true"), Duration::from_secs(30)).await;
    assert!(
        text(&out.stderr).contains("no grant allows this destination"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_grant_ends_the_session_at_its_expiry() {
    let j = Jump::start().await;
    let grant_secs = 6;
    let id = j.grant_target(Duration::from_secs(grant_secs)).await;
    let grant = j
        .lab
        .control()
        .store()
        .get_grant(id)
        .await
        .unwrap()
        .unwrap();
    let expires_at = grant.expires_at;
    let (mut child, _stdin) = live_cat(&j).await;
    let status = tokio::time::timeout(Duration::from_secs(grant_secs + 5), child.wait())
        .await
        .expect("ssh outlived its grant")
        .unwrap();
    let now = sallyport_core::time::Timestamp::now();
    assert!(!status.success());
    let late = expires_at.until(now);
    let early = now.until(expires_at);
    assert!(early.is_zero(), "ended {early:?} before the expiry");
    assert!(
        late < Duration::from_secs(1),
        "ended {late:?} after the expiry"
    );
    let closed = j
        .lab
        .wait_event("ssh.tunnel.close", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(closed.data["reason"], "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_jumps_all_succeed() {
    let j = Jump::start().await;
    j.grant_target(Duration::from_secs(600)).await;
    let started = Instant::now();
    let children: Vec<Child> = (0..50).map(|i| j.jump(&format!("echo jump-{i}"))).collect();
    let outputs = tokio::time::timeout(Duration::from_secs(240), futures_join_all(children))
        .await
        .expect("50 jumps did not finish in 240 s");
    for (i, out) in outputs.into_iter().enumerate() {
        assert!(
            out.status.success(),
            "jump {i}: {}\n{}",
            text(&out.stderr),
            j.sshd.log()
        );
        assert_eq!(text(&out.stdout).trim(), format!("jump-{i}"));
    }
    eprintln!("50 concurrent jumps took {:?}", started.elapsed());
    assert_eq!(j.lab.events("ssh.tunnel.open").await.len(), 50);
}

async fn futures_join_all(children: Vec<Child>) -> Vec<Output> {
    let handles: Vec<_> = children
        .into_iter()
        .map(|c| tokio::spawn(c.wait_with_output()))
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap());
    }
    out
}
