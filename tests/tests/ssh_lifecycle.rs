//! The SSH gateway's limits and a session's life, against a russh client over an in-memory
//! pipe: channel, session and connection limits, the handshake timeout, the failed-login
//! limiter, revocation, key removal, idle timeouts and shutdown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ssh_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::{ChannelMsg, ChannelOpenFailure};
use sallyport_core::model::UserState;
use sallyport_gateway::ssh::SshSettings;
use ssh_common::client::{connect, echo_server, service, PEER};
use ssh_common::{admin, new_key, Lab};
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_channels_sessions_and_handshake_time() {
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
    let (svc, _stop) = service(
        &lab,
        SshSettings {
            max_channels_per_session: 1,
            max_sessions_per_user: 1,
            handshake_timeout: Duration::from_secs(1),
            ..SshSettings::default()
        },
    );

    let mut first = connect(&lab, &svc, PEER).await;
    assert!(first.login("alice", &alice.key).await.success());
    let _tunnel = first
        .handle
        .channel_open_direct_tcpip("127.0.0.1", u32::from(port), "127.0.0.1", 1)
        .await
        .unwrap();
    match first
        .handle
        .channel_open_direct_tcpip("127.0.0.1", u32::from(port), "127.0.0.1", 2)
        .await
    {
        Err(russh::Error::ChannelOpenFailure(ChannelOpenFailure::ResourceShortage)) => {}
        other => panic!("second channel: {:?}", other.map(|c| c.id())),
    }

    // A second session for alice is refused at login, with a message.
    let mut second = connect(&lab, &svc, PEER).await;
    assert!(!second.login("alice", &alice.key).await.success());
    let message = second
        .ended(Duration::from_secs(5))
        .await
        .unwrap_or_default();
    assert!(message.contains("too many sessions"), "{message}");

    // A client that never logs in is dropped after the handshake timeout.
    let idle = connect(&lab, &svc, PEER).await;
    let started = Instant::now();
    let message = idle.ended(Duration::from_secs(5)).await.unwrap_or_default();
    assert!(message.contains("no login within 1s"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // One that does not even send its version string is dropped too.
    let (_client_io, server_io) = tokio::io::duplex(1024);
    let svc2 = Arc::clone(&svc);
    let silent = tokio::spawn(async move { svc2.serve(server_io, PEER.parse().unwrap()).await });
    tokio::time::timeout(Duration::from_secs(3), silent)
        .await
        .expect("a silent client is dropped")
        .unwrap();
    lab.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_lock_out_the_source() {
    let lab = Lab::start().await;
    let alice = lab.user("alice").await;
    let (svc, _stop) = service(
        &lab,
        SshSettings {
            auth_failures_per_source: 2,
            auth_failures_per_user: 100,
            ..SshSettings::default()
        },
    );
    let mut conn = connect(&lab, &svc, PEER).await;
    let started = Instant::now();
    assert!(!conn.login("alice", &new_key()).await.success());
    assert!(!conn.login("alice", &new_key()).await.success());
    // Rejections are held back: at least 0.5 s each, plus the limiter's delay.
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    // Locked out: even the right key is refused, and the connection is dropped.
    assert!(!conn.login("alice", &alice.key).await.success());
    let message = conn.ended(Duration::from_secs(5)).await.unwrap_or_default();
    assert!(message.contains("too many failed logins"), "{message}");
    let limited = lab.events("ssh.auth.failure").await;
    assert!(limited.iter().any(|r| r.data["reason"] == "rate-limited"));
    assert!(lab.events("ssh.auth.success").await.is_empty());
    // Another source is not affected.
    let mut other = connect(&lab, &svc, "192.0.2.99:1").await;
    assert!(other.login("alice", &alice.key).await.success());
    lab.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_cuts_tunnels_and_sessions_at_once() {
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
    let mut ch = conn
        .handle
        .channel_open_direct_tcpip("127.0.0.1", u32::from(port), "127.0.0.1", 1)
        .await
        .unwrap();
    ch.data_bytes(&b"ping"[..]).await.unwrap();
    lab.wait_event("ssh.tunnel.open", Duration::from_secs(5), |_| true)
        .await;

    // Revoke the grant: the tunnel closes within a second, the session stays.
    let revoked_at = Instant::now();
    lab.control().revoke_grant(&admin(), grant).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(2), ch.wait()).await {
            Ok(Some(ChannelMsg::Close)) | Ok(None) => break,
            Ok(Some(_)) => {}
            Err(_) => panic!("the tunnel was not closed within 2 s of the revocation"),
        }
    }
    assert!(
        revoked_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        revoked_at.elapsed()
    );
    let closed = lab
        .wait_event("ssh.tunnel.close", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(closed.data["reason"], "revoked");

    // Disable the user: the whole session ends, with the reason.
    lab.control()
        .set_user_state(&admin(), &alice.name, UserState::Disabled)
        .await
        .unwrap();
    let message = conn.ended(Duration::from_secs(2)).await.unwrap_or_default();
    assert!(
        message.contains("access revoked: user is disabled"),
        "{message}"
    );
    let end = lab
        .wait_event("ssh.session.end", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(end.data["reason"], "revoked");
    lab.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_key_ends_the_session_and_shutdown_closes_tunnels() {
    let lab = Lab::start().await;
    let alice = lab.user("alice").await;
    let bob = lab.user("bob").await;
    let port = echo_server().await;
    for u in [&alice, &bob] {
        lab.grant(
            &u.name,
            "127.0.0.1/32",
            &port.to_string(),
            Duration::from_secs(600),
        )
        .await;
    }
    let (svc, stop) = service(&lab, SshSettings::default());

    let mut a = connect(&lab, &svc, PEER).await;
    assert!(a.login("alice", &alice.key).await.success());
    lab.control()
        .remove_key(&admin(), &alice.fingerprint())
        .await
        .unwrap();
    let message = a.ended(Duration::from_secs(2)).await.unwrap_or_default();
    assert!(message.contains("key is not registered"), "{message}");

    let mut b = connect(&lab, &svc, PEER).await;
    assert!(b.login("bob", &bob.key).await.success());
    let _ch = b
        .handle
        .channel_open_direct_tcpip("127.0.0.1", u32::from(port), "127.0.0.1", 1)
        .await
        .unwrap();
    lab.wait_event("ssh.tunnel.open", Duration::from_secs(5), |_| true)
        .await;
    stop.send(true).unwrap();
    let message = b.ended(Duration::from_secs(5)).await.unwrap_or_default();
    assert!(message.contains("shutting down"), "{message}");
    let closed = lab
        .wait_event("ssh.tunnel.close", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(closed.data["reason"], "shutdown");
    let ends: Vec<String> = lab
        .events("ssh.session.end")
        .await
        .iter()
        .map(|r| r.data["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ends, ["revoked", "shutdown"]);
    lab.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let lab = Lab::start().await;
    let (svc, stop) = service(
        &lab,
        SshSettings {
            max_connections: 1,
            ..SshSettings::default()
        },
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::clone(&svc).spawn_listener(listener);
    let banner = |mut s: tokio::net::TcpStream| async move {
        let mut buf = [0u8; 17];
        match tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await {
            Ok(Ok(_)) => Some((String::from_utf8_lossy(&buf).into_owned(), s)),
            _ => None,
        }
    };
    let first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (text, first) = banner(first).await.expect("the first connection is served");
    assert_eq!(text, "SSH-2.0-sallyport");
    let second = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        banner(second).await.is_none(),
        "a second connection was served"
    );
    drop(first);
    // The slot comes back once the first connection has ended.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = tokio::net::TcpStream::connect(addr).await.unwrap();
        if banner(again).await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the listener drains on shutdown")
        .unwrap();
    lab.gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tunnels_and_sessions_are_closed() {
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
    let (svc, _stop) = service(
        &lab,
        SshSettings {
            idle_timeout: Duration::from_secs(1),
            ..SshSettings::default()
        },
    );
    let mut conn = connect(&lab, &svc, PEER).await;
    assert!(conn.login("alice", &alice.key).await.success());
    let mut ch = conn
        .handle
        .channel_open_direct_tcpip("127.0.0.1", u32::from(port), "127.0.0.1", 1)
        .await
        .unwrap();
    // Traffic keeps it open past the timeout...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        ch.data_bytes(&b"tick"[..]).await.unwrap();
    }
    let quiet = Instant::now();
    assert!(lab.events("ssh.tunnel.close").await.is_empty());
    // ...silence closes it.
    loop {
        match tokio::time::timeout(Duration::from_secs(3), ch.wait()).await {
            Ok(Some(ChannelMsg::Close)) | Ok(None) => break,
            Ok(Some(_)) => {}
            Err(_) => panic!("an idle tunnel stayed open"),
        }
    }
    assert!(quiet.elapsed() >= Duration::from_millis(900));
    let closed = lab
        .wait_event("ssh.tunnel.close", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(closed.data["reason"], "idle");
    assert_eq!(closed.data["bytes_to_target"], 16);
    // And a session without tunnels is disconnected after the same time.
    let message = conn.ended(Duration::from_secs(3)).await.unwrap_or_default();
    assert!(message.contains("idle for 1s"), "{message}");
    let end = lab
        .wait_event("ssh.session.end", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(end.data["reason"], "idle");
    lab.gw.shutdown().await;
}
