//! The SSH gateway against a russh client over an in-memory pipe: logins (keys and
//! certificates), refused channel types and destinations, tunnels to a local echo server. Limits
//! and the session's life are in `ssh_lifecycle.rs`; the real OpenSSH programs in
//! `ssh_jump.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ssh_common;

use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::{ChannelMsg, ChannelOpenFailure};
use sallyport_core::model::UserState;
use ssh_common::client::{connect, echo_server, round_trip, PEER};
use ssh_common::{admin, new_key, unix_now, Lab};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_key_logs_in_and_tunnels_to_a_granted_port() {
    let lab = Lab::start().await;
    let alice = lab.user("alice").await;
    let port = echo_server().await;
    let grant = lab
        .grant(
            &alice.name,
            "127.0.0.1/32",
            &port.to_string(),
            Duration::from_secs(600),
        )
        .await;
    let svc = Arc::clone(lab.gw.gateway().ssh_service());
    let mut conn = connect(&lab, &svc, PEER).await;
    assert!(conn.login("alice", &alice.key).await.success());

    let channel = conn
        .handle
        .channel_open_direct_tcpip("127.0.0.1", u32::from(port), "127.0.0.1", 5000)
        .await
        .unwrap();
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(round_trip(channel, &payload).await, payload);

    let closed = lab
        .wait_event("ssh.tunnel.close", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(closed.data["bytes_to_target"], 300_000);
    assert_eq!(closed.data["bytes_to_client"], 300_000);
    assert_eq!(closed.data["grant"], grant.to_string());
    assert_eq!(closed.source.as_deref(), Some("192.0.2.10"));
    let open = &lab.events("ssh.tunnel.open").await[0];
    assert_eq!(open.data["target"], "127.0.0.1");
    assert_eq!(open.data["address"], format!("127.0.0.1:{port}"));
    assert_eq!(open.session, closed.session);
    let login = &lab.events("ssh.auth.success").await[0];
    assert_eq!(login.data["fingerprint"], alice.fingerprint().to_string());
    assert_eq!(login.data["method"], "publickey");
    assert_eq!(lab.events("ssh.session.start").await.len(), 1);

    conn.handle
        .disconnect(russh::Disconnect::ByApplication, "bye", "en")
        .await
        .unwrap();
    conn.ended(Duration::from_secs(5)).await;
    let end = lab
        .wait_event("ssh.session.end", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(end.data["reason"], "client");
    assert_eq!(end.data["tunnels"], 1);
    lab.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_disabled_users_and_passwords_are_refused_and_journaled() {
    let lab = Lab::start().await;
    let alice = lab.user("alice").await;
    let bob = lab.user("bob").await;
    lab.control()
        .set_user_state(&admin(), &bob.name, UserState::Disabled)
        .await
        .unwrap();
    let svc = Arc::clone(lab.gw.gateway().ssh_service());

    let stranger = new_key();
    let mut conn = connect(&lab, &svc, PEER).await;
    assert!(!conn.login("alice", &stranger).await.success());
    assert!(!conn.login("bob", &bob.key).await.success());
    assert!(!conn.login("nobody", &alice.key).await.success());
    let pw = conn
        .handle
        .authenticate_password("alice", "hunter2")
        .await
        .unwrap();
    assert!(!pw.success());
    // The right key still works on the same connection.
    assert!(conn.login("alice", &alice.key).await.success());

    let failures = lab.events("ssh.auth.failure").await;
    let reasons: Vec<(String, String)> = failures
        .iter()
        .map(|r| {
            (
                r.data["user"].as_str().unwrap().to_owned(),
                r.data["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("alice".into(), "key-not-registered".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("bob".into(), "user-disabled".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("nobody".into(), "unknown-user".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("alice".into(), "method-not-allowed".into())),
        "{reasons:?}"
    );
    let wrong = failures
        .iter()
        .find(|r| r.data["reason"] == "key-not-registered")
        .unwrap();
    assert_eq!(
        wrong.data["fingerprint"],
        sallyport_core::model::Fingerprint::of(stranger.public_key()).to_string()
    );
    assert_eq!(wrong.source.as_deref(), Some("192.0.2.10"));
    assert_eq!(lab.events("ssh.auth.success").await.len(), 1);
    lab.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_but_granted_direct_tcpip_is_refused() {
    let lab = Lab::start().await;
    let alice = lab.user("alice").await;
    let port = echo_server().await;
    lab.grant(
        &alice.name,
        "127.0.0.1/32",
        &port.to_string(),
        Duration::from_secs(600),
    )
    .await;
    let svc = Arc::clone(lab.gw.gateway().ssh_service());
    let mut conn = connect(&lab, &svc, PEER).await;
    assert!(conn.login("alice", &alice.key).await.success());

    // A shell on the gateway: the message shows the -J form, exit status 1.
    let mut shell = conn.handle.channel_open_session().await.unwrap();
    shell.request_shell(true).await.unwrap();
    let mut stderr = Vec::new();
    let mut status = None;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(5), shell.wait())
        .await
        .unwrap()
    {
        match msg {
            ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    let text = String::from_utf8(stderr).unwrap();
    let addr = lab.gw.ssh_addr();
    assert!(
        text.contains(&format!("ssh -J alice@127.0.0.1:{} TARGET", addr.port())),
        "{text}"
    );
    assert_eq!(status, Some(1));

    // An exec gets the same answer.
    let mut exec = conn.handle.channel_open_session().await.unwrap();
    exec.exec(true, "cat /etc/passwd").await.unwrap();
    let mut got_status = None;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(5), exec.wait())
        .await
        .unwrap()
    {
        match msg {
            ChannelMsg::Data { .. } => panic!("an exec on the gateway produced output"),
            ChannelMsg::ExitStatus { exit_status } => got_status = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    assert_eq!(got_status, Some(1));

    let refused = |r: Result<russh::Channel<client::Msg>, russh::Error>| match r {
        Err(russh::Error::ChannelOpenFailure(f)) => f,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the channel was opened"),
    };
    // Ungranted port, unknown name, the metadata address, the gateway's loopback SSH port.
    let wrong_port = if port == 65535 { port - 1 } else { port + 1 };
    for (host, p) in [
        ("127.0.0.1", u32::from(wrong_port)),
        ("localhost", u32::from(port)),
        ("169.254.169.254", 80),
        ("127.0.0.1", u32::from(addr.port())),
        ("db-1;rm -rf", 22),
    ] {
        let f = refused(
            conn.handle
                .channel_open_direct_tcpip(host, p, "127.0.0.1", 5000)
                .await,
        );
        assert_eq!(
            f,
            ChannelOpenFailure::AdministrativelyProhibited,
            "{host}:{p}"
        );
    }
    // X11 and Unix sockets.
    let f = refused(conn.handle.channel_open_x11("127.0.0.1", 6000).await);
    assert_eq!(f, ChannelOpenFailure::AdministrativelyProhibited);
    let f = refused(
        conn.handle
            .channel_open_direct_streamlocal("/run/sshd.pid")
            .await,
    );
    assert_eq!(f, ChannelOpenFailure::AdministrativelyProhibited);
    // -R.
    assert!(matches!(
        conn.handle.tcpip_forward("0.0.0.0", 8080).await,
        Err(russh::Error::RequestDenied)
    ));
    // Agent forwarding on a session channel.
    let agent = conn.handle.channel_open_session().await.unwrap();
    agent.agent_forward(true).await.unwrap();

    let denied: Vec<String> = lab
        .events("ssh.tunnel.denied")
        .await
        .iter()
        .map(|r| r.data["reason"].as_str().unwrap().to_owned())
        .collect();
    for reason in [
        "port-not-granted",
        "unknown-target",
        "x11-refused",
        "streamlocal-refused",
        "remote-forwarding-refused",
        "bad-destination",
    ] {
        assert!(denied.iter().any(|d| d == reason), "{reason} in {denied:?}");
    }
    // The metadata address and the gateway's own port are refused by the policy, not reached.
    assert!(lab.events("ssh.tunnel.open").await.is_empty());
    // The granted port still works after all that.
    let ok = conn
        .handle
        .channel_open_direct_tcpip("127.0.0.1", u32::from(port), "127.0.0.1", 5000)
        .await
        .unwrap();
    assert_eq!(round_trip(ok, b"still here").await, b"still here");
    lab.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_the_user_ca_log_in() {
    let lab = Lab::start().await;
    let _alice = lab.user("alice").await;
    let port = echo_server().await;
    lab.grant(
        &"alice".parse().unwrap(),
        "127.0.0.1/32",
        &port.to_string(),
        Duration::from_secs(600),
    )
    .await;
    let svc = Arc::clone(lab.gw.gateway().ssh_service());
    let laptop = new_key();
    let now = unix_now();

    // Signed by another CA: refused.
    let rogue = lab.certificate(&laptop, "alice", &new_key(), now - 60, now + 600);
    let mut conn = connect(&lab, &svc, PEER).await;
    let r = conn
        .handle
        .authenticate_openssh_cert("alice", Arc::new(laptop.clone()), rogue)
        .await
        .unwrap();
    assert!(!r.success());
    // For another principal: refused.
    let bob_cert = lab.certificate(&laptop, "bob", &lab.user_ca(), now - 60, now + 600);
    let r = conn
        .handle
        .authenticate_openssh_cert("alice", Arc::new(laptop.clone()), bob_cert)
        .await
        .unwrap();
    assert!(!r.success());
    // Signed by the gateway's CA for alice: in, and the tunnel works.
    let cert = lab.certificate(&laptop, "alice", &lab.user_ca(), now - 60, now + 600);
    let r = conn
        .handle
        .authenticate_openssh_cert("alice", Arc::new(laptop.clone()), cert)
        .await
        .unwrap();
    assert!(r.success());
    let ch = conn
        .handle
        .channel_open_direct_tcpip("127.0.0.1", u32::from(port), "127.0.0.1", 1)
        .await
        .unwrap();
    assert_eq!(round_trip(ch, b"cert").await, b"cert");

    let reasons: Vec<String> = lab
        .events("ssh.auth.failure")
        .await
        .iter()
        .map(|r| r.data["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.contains(&"certificate-untrusted-ca".to_owned()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"certificate-principal".to_owned()),
        "{reasons:?}"
    );
    let ok = &lab.events("ssh.auth.success").await[0];
    assert_eq!(ok.data["method"], "certificate");
    assert_eq!(ok.data["cert_serial"], 4242);

    // An expired certificate never reaches the gateway's checks (russh refuses it), and the
    // connection's end still journals a failed login.
    let expired = lab.certificate(&laptop, "alice", &lab.user_ca(), now - 600, now - 60);
    let mut late = connect(&lab, &svc, "192.0.2.77:1").await;
    // As OpenSSH does: a "none" probe first, which names the user.
    assert!(!late
        .handle
        .authenticate_none("alice")
        .await
        .unwrap()
        .success());
    let r = late
        .handle
        .authenticate_openssh_cert("alice", Arc::new(laptop.clone()), expired)
        .await
        .unwrap();
    assert!(!r.success());
    late.handle
        .disconnect(russh::Disconnect::ByApplication, "giving up", "en")
        .await
        .unwrap();
    late.ended(Duration::from_secs(5)).await;
    lab.wait_event("ssh.auth.failure", Duration::from_secs(5), |r| {
        r.source.as_deref() == Some("192.0.2.77") && r.data["reason"] == "no-credential-accepted"
    })
    .await;
    lab.gw.shutdown().await;
}
