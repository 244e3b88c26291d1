//! End to end with the programs engineers run: OpenSSH `ssh -J` through an in-process dev
//! gateway to a real `sshd` started by the test (fixture in `ssh_common/jump.rs`). What gets
//! through and what does not: data, ungranted destinations, loopback and the metadata address,
//! `-R`, `-D`, a shell on the gateway, certificates. Revocation, expiry and 50 concurrent jumps
//! are in `ssh_jump_lifecycle.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ssh_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::{Certificate, PrivateKey};
use sallyport_tests::ports::free_port;
use ssh_common::jump::{finish, text, write_key, Jump};
use ssh_common::{new_key, unix_now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_jump_round_trips_data() {
    let j = Jump::start().await;
    let grant = j.grant_target(Duration::from_secs(600)).await;
    let mut payload = vec![0u8; 4 * 1024 * 1024];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut payload);
    let mut child = j.jump("cat");
    let mut stdin = child.stdin.take().unwrap();
    let data = payload.clone();
    let writer = tokio::spawn(async move {
        stdin.write_all(&data).await.unwrap();
        drop(stdin);
    });
    let out = finish(child, Duration::from_secs(60)).await;
    writer.await.unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        j.sshd.log()
    );
    assert!(
        out.stdout == payload,
        "{} bytes came back",
        out.stdout.len()
    );

    let closed = j
        .lab
        .wait_event("ssh.tunnel.close", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(closed.data["grant"], grant.to_string());
    assert_eq!(closed.data["target"], "127.0.0.1");
    assert_eq!(closed.data["port"], j.sshd.port());
    // The inner SSH session is encrypted end to end: more than the payload crossed.
    assert!(closed.data["bytes_to_target"].as_u64().unwrap() > 4 * 1024 * 1024);
    assert!(closed.data["bytes_to_client"].as_u64().unwrap() > 4 * 1024 * 1024);
    let open = &j.lab.events("ssh.tunnel.open").await[0];
    assert_eq!(open.data["address"], format!("127.0.0.1:{}", j.sshd.port()));
    assert_eq!(open.source.as_deref(), Some("127.0.0.1"));
    let start = &j.lab.events("ssh.session.start").await[0];
    assert!(
        start.data["client"]
            .as_str()
            .unwrap()
            .starts_with("SSH-2.0-OpenSSH"),
        "{}",
        start.data
    );
    j.lab
        .wait_event("ssh.session.end", Duration::from_secs(5), |r| {
            r.data["reason"] == "client" && r.data["tunnels"] == 1
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_targets_and_ports_are_refused_with_a_reason() {
    let j = Jump::start().await;
    j.grant_target(Duration::from_secs(600)).await;
    let other_port = free_port().to_string();
    let cases = [
        (
            vec![
                "-J",
                "gw",
                "-p",
                other_port.as_str(),
                "root@127.0.0.1",
                "true",
            ],
            format!("sallyport: 127.0.0.1:{other_port}: no grant allows this port"),
            "port-not-granted",
        ),
        (
            vec!["-J", "gw", "root@localhost", "true"],
            "sallyport: localhost:22: no such target".to_owned(),
            "unknown-target",
        ),
        (
            vec!["-J", "gw", "root@10.255.255.1", "true"],
            "sallyport: 10.255.255.1:22: no grant allows this destination".to_owned(),
            "no-grant",
        ),
    ];
    for (args, message, code) in cases {
        let out = finish(j.ssh(&args), Duration::from_secs(30)).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {err}");
        assert!(
            err.contains("administratively prohibited") && err.contains(&message),
            "{args:?}: wanted {message:?} in:\n{err}"
        );
        j.lab
            .wait_event("ssh.tunnel.denied", Duration::from_secs(5), |r| {
                r.data["reason"] == code
            })
            .await;
    }
    assert!(j.lab.events("ssh.tunnel.open").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_and_the_metadata_address_need_an_explicit_grant() {
    let j = Jump::start().await;
    // A grant for everything IPv4, every port: still not the gateway's loopback or the
    // instance-metadata address.
    j.lab
        .grant(
            &j.alice.name,
            "0.0.0.0/0",
            "1-65535",
            Duration::from_secs(600),
        )
        .await;
    let port = j.sshd.port();
    let gw_port = j.lab.gw.ssh_addr().port();
    for dest in [
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{gw_port}"),
        "169.254.169.254:80".to_owned(),
    ] {
        let out = finish(j.ssh(&["-W", &dest, "gw"]), Duration::from_secs(30)).await;
        let err = text(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{dest} was reached");
        assert!(
            err.contains(&format!(
                "sallyport: {dest}: no grant allows this destination"
            )),
            "{dest}: {err}"
        );
    }
    assert!(j.lab.events("ssh.tunnel.open").await.is_empty());
    // Granted explicitly, the target on loopback is reachable.
    j.grant_target(Duration::from_secs(600)).await;
    let out = finish(j.jump("echo reached"), Duration::from_secs(30)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "reached");
}

/// A minimal SOCKS5 CONNECT through `ssh -D`; returns the server's reply code (0 = success)
/// and, on success, the first bytes the destination sent.
async fn socks_connect(socks_port: u16, port: u16) -> (u8, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", socks_port))
        .await
        .unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut method = [0u8; 2];
    s.read_exact(&mut method).await.unwrap();
    assert_eq!(method, [5, 0]);
    let p = port.to_be_bytes();
    s.write_all(&[5, 1, 0, 1, 127, 0, 0, 1, p[0], p[1]])
        .await
        .unwrap();
    let mut reply = [0u8; 10];
    if s.read_exact(&mut reply).await.is_err() {
        return (255, Vec::new());
    }
    if reply[1] != 0 {
        return (reply[1], Vec::new());
    }
    let mut banner = vec![0u8; 8];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut banner))
        .await
        .unwrap()
        .unwrap();
    (0, banner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_and_dynamic_forwarding_and_a_shell_on_the_gateway_are_refused() {
    let j = Jump::start().await;
    j.grant_target(Duration::from_secs(600)).await;
    let gw_port = j.lab.gw.ssh_addr().port();

    // A shell on the gateway: the message shows the -J form.
    let out = finish(j.ssh(&["-T", "gw"]), Duration::from_secs(30)).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("ssh -J alice@127.0.0.1:{gw_port} TARGET")),
        "{err}"
    );
    // A command likewise, and it does not run.
    let out = finish(j.ssh(&["gw", "id"]), Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("jump host"));

    // -R.
    let out = finish(
        j.ssh(&[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &format!("127.0.0.1:{}:127.0.0.1:22", free_port()),
            "gw",
        ]),
        Duration::from_secs(30),
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("remote port forwarding failed"),
        "{}",
        text(&out.stderr)
    );
    j.lab
        .wait_event("ssh.tunnel.denied", Duration::from_secs(5), |r| {
            r.data["reason"] == "remote-forwarding-refused"
        })
        .await;

    // -D: the granted target port is reachable, an ungranted port is not.
    let socks = free_port();
    let mut dynamic = j.ssh(&["-N", "-D", &format!("127.0.0.1:{socks}"), "gw"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", socks))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "ssh -D did not listen");
        if let Ok(Some(status)) = dynamic.try_wait() {
            panic!("ssh -D exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, banner) = socks_connect(socks, j.sshd.port()).await;
    assert_eq!(code, 0);
    assert_eq!(&banner, b"SSH-2.0-");
    let (code, _) = socks_connect(socks, free_port()).await;
    assert_ne!(code, 0, "an ungranted port was reachable through -D");
    dynamic.kill().await.unwrap();
    j.lab
        .wait_event("ssh.tunnel.denied", Duration::from_secs(5), |r| {
            r.data["reason"] == "port-not-granted"
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_signed_by_the_user_ca_work_and_others_are_refused() {
    let j = Jump::start().await;
    j.grant_target(Duration::from_secs(600)).await;
    // A laptop key that is not registered: only a certificate gets it through the gateway.
    // The target trusts the user CA too, so the same certificate (principals alice for the
    // gateway, root for the target) logs in end to end. Each case has its own client
    // configuration holding only the laptop key and that certificate.
    let laptop = new_key();
    let dir = j.dir();
    write_key(&dir.join("laptop"), &laptop);
    let gw_port = j.lab.gw.ssh_addr().port();
    let now = unix_now();
    let try_cert = |name: &str, cert: Certificate| {
        let cert_path = dir.join(format!("{name}-cert.pub"));
        std::fs::write(&cert_path, cert.to_openssh().unwrap()).unwrap();
        let config = dir.join(format!("config-{name}"));
        std::fs::write(
            &config,
            format!(
                "Host gw\n  HostName 127.0.0.1\n  Port {gw_port}\n  User alice\n\
                 Host *\n  IdentityFile {dir}/laptop\n  CertificateFile {cert}\n\
                 IdentitiesOnly yes\n  UserKnownHostsFile {dir}/known_hosts\n\
                 GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n\
                 KexAlgorithms curve25519-sha256\n  LogLevel INFO\n",
                dir = dir.display(),
                cert = cert_path.display(),
            ),
        )
        .unwrap();
        let port = j.sshd.port().to_string();
        Command::new("ssh")
            .arg("-F")
            .arg(&config)
            .args(["-J", "gw", "-p", &port, "root@127.0.0.1", "echo", "through"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let cert = |ca: &PrivateKey, after: u64, before: u64| {
        let mut b = Builder::new(
            [9u8; 16],
            laptop.public_key().key_data().clone(),
            after,
            before,
        )
        .unwrap();
        b.serial(77).unwrap();
        b.key_id("alice@laptop").unwrap();
        b.cert_type(CertType::User).unwrap();
        b.valid_principal("alice").unwrap();
        b.valid_principal("root").unwrap();
        b.extension("permit-port-forwarding", "").unwrap();
        b.extension("permit-pty", "").unwrap();
        b.sign(ca).unwrap()
    };

    let good = finish(
        try_cert("good", cert(&j.lab.user_ca(), now - 60, now + 600)),
        Duration::from_secs(30),
    )
    .await;
    assert!(
        good.status.success(),
        "{}\n{}",
        text(&good.stderr),
        j.sshd.log()
    );
    assert_eq!(text(&good.stdout).trim(), "through");
    let login = j
        .lab
        .wait_event("ssh.auth.success", Duration::from_secs(5), |r| {
            r.data["method"] == "certificate"
        })
        .await;
    assert_eq!(login.data["cert_serial"], 77);

    let expired = finish(
        try_cert("expired", cert(&j.lab.user_ca(), now - 7200, now - 3600)),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(expired.status.code(), Some(255));
    assert!(
        text(&expired.stderr).contains("Permission denied"),
        "{}",
        text(&expired.stderr)
    );

    let rogue = finish(
        try_cert("rogue", cert(&new_key(), now - 60, now + 600)),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(rogue.status.code(), Some(255));
    assert!(text(&rogue.stderr).contains("Permission denied"));
    j.lab
        .wait_event("ssh.auth.failure", Duration::from_secs(5), |r| {
            r.data["reason"] == "certificate-untrusted-ca"
        })
        .await;
    // Exactly one login got through: the good certificate.
    assert_eq!(j.lab.events("ssh.auth.success").await.len(), 1);
    assert_eq!(j.lab.events("ssh.tunnel.open").await.len(), 1);
}
