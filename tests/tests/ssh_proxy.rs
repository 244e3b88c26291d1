//! End to end, proxy mode, with OpenSSH's `ssh -A`, `scp`, `sftp` and `ssh-agent` through an
//! in-process dev gateway to a real `sshd` whose host key is pinned in the registry.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ssh_common;
mod ssh_proxy_lab;

use std::time::{Duration, Instant};

use rand::RngCore;
use russh::keys::ssh_key::LineEnding;
use sallyport_core::model::GrantOptions;
use sallyport_tests::leaks::{assert_absent, read_tree, Needles};
use sallyport_tests::sshd::{Sshd, SshdOptions};
use ssh_common::jump::finish;
use ssh_common::{admin, new_key};
use ssh_proxy_lab::{certificate, gw_key, text, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_runs_with_its_output_and_exit_status() {
    let p = Proxy::start().await;
    let grant = p.grant_db().await;
    let out = p.exec("echo out; echo err >&2; whoami; exit 3").await;
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\nroot\n");
    assert!(text(&out.stderr).contains("err"), "{}", text(&out.stderr));

    let login = p
        .lab
        .wait_event("ssh.proxy.login.success", WITHIN, |_| true)
        .await;
    assert_eq!(login.data["user"], "alice");
    assert_eq!(login.data["target"], "db");
    assert_eq!(login.data["login"], "root");
    assert_eq!(login.data["grant"], grant.to_string());
    assert_eq!(login.data["fingerprint"], p.alice.fingerprint().as_str());
    let closed = p.lab.wait_event("ssh.proxy.close", WITHIN, |_| true).await;
    assert_eq!(closed.data["exit_status"], 3);
    assert_eq!(closed.data["reason"], "target");
    // The target saw exactly one publickey login for root.
    let log = p.sshd.log();
    assert_eq!(
        log.matches("Accepted publickey for root").count(),
        1,
        "{log}"
    );
}

/// Bulk data each way, and both ways at once through `cat`, sent from the first instant (before
/// the gateway has logged in to the target).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_data_goes_through_both_ways() {
    let p = Proxy::start().await;
    p.grant_db().await;
    let mib = 80;
    let up = p.dir.join("up.bin");
    let mut data = vec![0u8; mib * 1024 * 1024];
    rand::thread_rng().fill_bytes(&mut data);
    std::fs::write(&up, &data).unwrap();
    let stdin = std::fs::File::open(&up).unwrap();
    let child = p.run_with_stdin("ssh", &["-A", "root@db@gw", "wc -c"], stdin);
    let out = p.finish(child).await;
    assert_eq!(
        text(&out.stdout).trim(),
        (mib * 1024 * 1024).to_string(),
        "{}",
        text(&out.stderr)
    );

    let child = p.ssh(&["-A", "root@db@gw", &format!("head -c {mib}M /dev/zero")]);
    let out = p.finish(child).await;
    assert_eq!(out.stdout.len(), mib * 1024 * 1024, "{}", text(&out.stderr));

    let stdin = std::fs::File::open(&up).unwrap();
    let child = p.run_with_stdin("ssh", &["-A", "root@db@gw", "cat"], stdin);
    let out = p.finish(child).await;
    assert!(
        out.stdout == data,
        "cat returned {} bytes; {}",
        out.stdout.len(),
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_pty_session_works() {
    let p = Proxy::start().await;
    p.grant_db().await;
    let mut child = p.ssh(&["-A", "-tt", "root@db@gw"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"stty size; echo $((6*7))-$TERM; exit 4\n")
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    let out = finish(child, WITHIN).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout} {}", text(&out.stderr));
    assert!(stdout.contains("42-"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_and_sftp_move_files_both_ways() {
    let p = Proxy::start().await;
    p.grant_db().await;
    let mut data = vec![0u8; 3 * 1024 * 1024 + 17];
    rand::thread_rng().fill_bytes(&mut data);
    let local = p.dir.join("local.bin");
    std::fs::write(&local, &data).unwrap();
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("remote.bin");
    let opts = ["-o", "ForwardAgent=yes", "-o", "User=root@db"];

    // scp (SFTP protocol in OpenSSH 9) up and down.
    let up = format!("gw:{}", remote.display());
    let args: Vec<&str> = opts
        .iter()
        .copied()
        .chain([local.to_str().unwrap(), up.as_str()])
        .collect();
    let out = finish(p.run("scp", &args), WITHIN).await;
    assert!(out.status.success(), "scp up: {}", text(&out.stderr));
    assert_eq!(std::fs::read(&remote).unwrap(), data);
    let back = p.dir.join("back.bin");
    let args: Vec<&str> = opts
        .iter()
        .copied()
        .chain([up.as_str(), back.to_str().unwrap()])
        .collect();
    let out = finish(p.run("scp", &args), WITHIN).await;
    assert!(out.status.success(), "scp down: {}", text(&out.stderr));
    assert_eq!(std::fs::read(&back).unwrap(), data);

    // sftp with a batch file.
    let remote2 = remote_dir.path().join("remote2.bin");
    let back2 = p.dir.join("back2.bin");
    let batch = p.dir.join("batch");
    std::fs::write(
        &batch,
        format!(
            "put {} {}\nget {} {}\n",
            local.display(),
            remote2.display(),
            remote2.display(),
            back2.display()
        ),
    )
    .unwrap();
    let args: Vec<&str> = opts
        .iter()
        .copied()
        .chain(["-b", batch.to_str().unwrap(), "gw"])
        .collect();
    let out = finish(p.run("sftp", &args), WITHIN).await;
    assert!(out.status.success(), "sftp: {}", text(&out.stderr));
    assert_eq!(std::fs::read(&remote2).unwrap(), data);
    assert_eq!(std::fs::read(&back2).unwrap(), data);
    // Three sessions, each closed in the journal (the last one may still be closing).
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.lab.events("ssh.proxy.close").await.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "{:#?}",
            p.lab.events_brief().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_key_other_than_the_pinned_one_is_refused() {
    let p = Proxy::start().await;
    // "db2" is the same sshd, registered with someone else's key.
    let wrong = new_key().public_key().to_openssh().unwrap();
    p.register("db2", &p.sshd, Some(&wrong)).await;
    p.grant(
        &p.alice.name,
        "db2",
        &p.sshd,
        "root",
        Duration::from_secs(600),
    )
    .await;
    let out = finish(p.ssh(&["-A", "root@db2@gw", "echo reached"]), WITHIN).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!text(&out.stdout).contains("reached"));
    assert!(stderr.contains("is not the pinned key"), "{stderr}");
    let mismatch = p
        .lab
        .wait_event("ssh.hostkey.mismatch", WITHIN, |_| true)
        .await;
    assert_eq!(mismatch.data["target"], "db2");
    assert_eq!(mismatch.data["user"], "alice");
    let failure = p
        .lab
        .wait_event("ssh.proxy.login.failure", WITHIN, |_| true)
        .await;
    assert_eq!(failure.data["reason"], "host-key-mismatch");
    // Nothing was signed for the target: it never saw a login.
    assert!(
        !p.sshd.log().contains("Accepted publickey"),
        "{}",
        p.sshd.log()
    );

    // No pinned key at all: refused too (no trust on first use by default).
    p.register("db3", &p.sshd, None).await;
    p.grant(
        &p.alice.name,
        "db3",
        &p.sshd,
        "root",
        Duration::from_secs(600),
    )
    .await;
    let out = finish(p.ssh(&["-A", "root@db3@gw", "true"]), WITHIN).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no pinned host key"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_forwarded_agent_the_refusal_says_to_use_ssh_a() {
    let p = Proxy::start().await;
    p.grant_db().await;
    let out = finish(p.ssh(&["-a", "root@db@gw", "echo reached"]), WITHIN).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sallyport: proxy mode needs your agent: use ssh -A"),
        "{stderr}"
    );
    let failure = p
        .lab
        .wait_event("ssh.proxy.login.failure", WITHIN, |_| true)
        .await;
    assert_eq!(failure.data["reason"], "agent-not-forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ungranted_login_or_target_is_refused_with_the_reason() {
    let p = Proxy::start().await;
    p.grant_db().await;
    let out = finish(p.ssh(&["-A", "admin@db@gw", "true"]), WITHIN).await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr.contains("no grant allows this remote login"),
        "{stderr}"
    );
    let out = finish(p.ssh(&["-A", "root@nowhere@gw", "true"]), WITHIN).await;
    assert!(
        text(&out.stderr).contains("no such target"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_restricted_key_works_for_its_target_only() {
    let p = Proxy::start_with(false).await;
    let sshd2 = Sshd::start(&SshdOptions {
        authorized_keys: vec![p.alice.key.public_key().to_openssh().unwrap()],
        trusted_user_ca: None,
    })
    .unwrap();
    p.register("db2", &sshd2, Some(sshd2.host_key())).await;
    p.grant_db().await;
    p.grant(
        &p.alice.name,
        "db2",
        &sshd2,
        "root",
        Duration::from_secs(600),
    )
    .await;
    // Host keys as ssh-add reads them: the gateway as "gw", the targets by name.
    let hosts = p.dir.join("constraint_hosts");
    std::fs::write(
        &hosts,
        format!(
            "gw {}\ndb {}\ndb2 {}\n",
            gw_key(&p.lab),
            p.sshd.host_key(),
            sshd2.host_key()
        ),
    )
    .unwrap();
    let key = p.dir.join("alice");
    let out = p.agent.add(&[
        "-H",
        hosts.to_str().unwrap(),
        "-h",
        "gw",
        "-h",
        "gw>db",
        key.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "ssh-add -h: {}", text(&out.stderr));

    let out = p.exec("echo allowed").await;
    assert_eq!(
        text(&out.stdout),
        "allowed\n",
        "stderr: {}",
        text(&out.stderr)
    );
    let out = finish(p.ssh(&["-A", "root@db2@gw", "echo leaked"]), WITHIN).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!text(&out.stdout).contains("leaked"));
    assert!(stderr.contains("agent"), "{stderr}");
    assert!(
        !sshd2.log().contains("Accepted publickey"),
        "{}",
        sshd2.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_goes_on_to_the_target_only_when_the_grant_says_so() {
    let p = Proxy::start().await;
    p.grant_db().await;
    let out = p.exec("ssh-add -l; echo status=$?").await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("status=2"),
        "{stdout} {}",
        text(&out.stderr)
    );
    assert!(!stdout.contains(p.alice.fingerprint().as_str()), "{stdout}");

    // A grant that allows agent forwarding (to a second name for the same host).
    p.register("db-fwd", &p.sshd, Some(p.sshd.host_key())).await;
    let options = GrantOptions {
        agent_forwarding: true,
        ..GrantOptions::default()
    };
    p.grant_with(
        &p.alice.name,
        "db-fwd",
        &p.sshd,
        "root",
        Duration::from_secs(600),
        options,
    )
    .await;
    let out = finish(
        p.ssh(&["-A", "root@db-fwd@gw", "ssh-add -l; echo status=$?"]),
        WITHIN,
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("status=0"),
        "{stdout} {}",
        text(&out.stderr)
    );
    assert!(stdout.contains(p.alice.fingerprint().as_str()), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_mid_session_ends_it_within_a_second() {
    let p = Proxy::start().await;
    let grant = p.grant_db().await;
    let mut child = p.ssh(&["-A", "root@db@gw", "cat"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    stdin.flush().await.unwrap();
    let mut line = [0u8; 6];
    tokio::time::timeout(WITHIN, child.stdout.as_mut().unwrap().read_exact(&mut line))
        .await
        .expect("no echo through the proxy")
        .unwrap();
    assert_eq!(&line, b"hello\n");
    let revoked = Instant::now();
    p.lab.control().revoke_grant(&admin(), grant).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("ssh still running 5 s after the revocation")
        .unwrap();
    let took = revoked.elapsed();
    assert!(!status.success());
    assert!(
        took < Duration::from_secs(1),
        "ended {took:?} after the revocation"
    );
    let closed = p.lab.wait_event("ssh.proxy.close", WITHIN, |_| true).await;
    assert_eq!(closed.data["reason"], "revoked");
    drop(stdin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_login_logs_in_onward_with_the_certificate() {
    let p = Proxy::start_with(false).await;
    // A target that knows only the user CA, not alice's key.
    let ca_line = p.lab.user_ca().public_key().to_openssh().unwrap();
    let sshd2 = Sshd::start(&SshdOptions {
        authorized_keys: Vec::new(),
        trusted_user_ca: Some(ca_line),
    })
    .unwrap();
    p.register("ca-db", &sshd2, Some(sshd2.host_key())).await;
    p.grant(
        &p.alice.name,
        "ca-db",
        &sshd2,
        "root",
        Duration::from_secs(600),
    )
    .await;
    let key = new_key();
    // As `sallyport login` issues them: key id `sallyport:USER:SESSION`, the user's name and
    // the proxy logins as principals.
    let key_id = "sallyport:alice:6f1c0a8e-0d55-4a43-9a6e-2b8c1d7f4e21";
    let cert = certificate(&key, &p.lab.user_ca(), key_id, &["alice", "root"]);
    let path = p.dir.join("alice-cert");
    ssh_common::jump::write_key(&path, &key);
    std::fs::write(
        p.dir.join("alice-cert-cert.pub"),
        format!("{}\n", cert.to_openssh().unwrap()),
    )
    .unwrap();
    std::fs::write(
        p.dir.join("alice-cert.pub"),
        format!("{}\n", key.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let out = p.agent.add(&[path.to_str().unwrap()]);
    assert!(out.status.success(), "ssh-add: {}", text(&out.stderr));
    let id = format!(
        "IdentityFile={}",
        p.dir.join("alice-cert-cert.pub").display()
    );
    let out = finish(
        p.ssh(&["-A", "-o", &id, "root@ca-db@gw", "echo via-cert"]),
        WITHIN,
    )
    .await;
    assert_eq!(
        text(&out.stdout),
        "via-cert\n",
        "stderr: {}",
        text(&out.stderr)
    );
    let log = sshd2.log();
    assert!(log.contains("Accepted publickey for root"), "{log}");
    assert!(log.contains(key_id), "{log}");
    let login = p.lab.wait_event("ssh.auth.success", WITHIN, |_| true).await;
    assert_eq!(login.data["method"], "certificate");
    assert_eq!(login.data["user"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_private_key_material_reaches_the_gateways_disk() {
    let p = Proxy::start().await;
    p.grant_db().await;
    let out = p.exec("echo done").await;
    assert_eq!(text(&out.stdout), "done\n", "{}", text(&out.stderr));
    let state = p.lab.dir.path().join("state");
    let alice_pem = p.alice.key.to_openssh(LineEnding::LF).unwrap();
    let seed = p.alice.key.key_data().ed25519().unwrap().private.to_bytes();
    let mut needles = Needles::new();
    needles
        .literal("alice's OpenSSH private key", alice_pem.as_bytes())
        .secret("alice's ed25519 seed", &seed);
    assert_absent(&read_tree(&state), &needles);
}
