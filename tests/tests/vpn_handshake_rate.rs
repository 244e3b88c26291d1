//! Handshakes per second through sallyportd's WireGuard endpoint: many boringtun initiators
//! (one per enrolled device) on loopback against the real endpoint of an in-process dev
//! gateway, each repeating initiation → response as fast as it is answered. A measurement, run
//! by hand (root: the endpoint creates a TUN device in this namespace):
//!
//!   cargo test --release -p sallyport-tests --test vpn_handshake_rate -- --ignored --nocapture
//!
//! The initiators run in the same process and cost about as much CPU as the responder, so on a
//! 2-core machine the figure is a lower bound of what the endpoint alone can answer.

// A measurement harness outside `#[test]` functions: any failure is a failed run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519;
use sallyport_core::api::CreateUser;
use sallyport_core::model::{Role, UserName};
use sallyport_gateway::control::Actor;
use sallyport_gateway::dev::{DevGateway, DevOptions, DevSshLimits};
use sallyport_gateway::wireguard::WireguardSettings;
use tokio::net::UdpSocket;

const DEVICES: usize = 64;
const SECONDS: u64 = 5;

struct Device {
    secret: x25519::StaticSecret,
    psk: [u8; 32],
}

async fn measure(limit: u64) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let tun = sallyport_tests::netns::unique("hs");
    let wg = WireguardSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        tun_name: tun,
        pool: "100.100.0.0/22".parse().unwrap(),
        handshakes_per_second: limit,
        ..WireguardSettings::default()
    };
    let gw = DevGateway::start_with_vpn(
        DevOptions {
            state_dir: dir.path().join("state"),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            ssh_listen: "127.0.0.1:0".parse().unwrap(),
        },
        DevSshLimits::default(),
        wg,
    )
    .await
    .unwrap();
    let endpoint = gw.gateway().wireguard_addr().unwrap();
    // At most 16 devices per user: one user per 16.
    let mut tokens = Vec::new();
    for u in 0..DEVICES.div_ceil(16) {
        let user: UserName = format!("bench{u}").parse().unwrap();
        gw.gateway()
            .control()
            .create_user(
                &Actor::system(),
                CreateUser {
                    name: user.clone(),
                    roles: vec![Role::Engineer],
                    groups: vec![],
                },
            )
            .await
            .unwrap();
        let token = gw
            .gateway()
            .tokens()
            .issue(&user, Duration::from_secs(3600))
            .unwrap()
            .token;
        tokens.push(token);
    }
    let ca = reqwest::Certificate::from_pem(&std::fs::read(gw.ca_cert_path()).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut devices = Vec::new();
    let mut gateway_key = [0u8; 32];
    for i in 0..DEVICES {
        let secret = x25519::StaticSecret::from(rand::random::<[u8; 32]>());
        let public = x25519::PublicKey::from(&secret);
        let body = serde_json::json!({"public_key": b64.encode(public.as_bytes()), "name": format!("d{i}")});
        let v: serde_json::Value = http
            .post(format!("{}/v1/vpn/devices", gw.api_url()))
            .bearer_auth(&tokens[i / 16])
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let Some(psk) = v["preshared_key"].as_str() else {
            panic!("enroll failed: {v}");
        };
        let psk: [u8; 32] = b64.decode(psk).unwrap().try_into().unwrap();
        gateway_key = b64
            .decode(v["gateway_public_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        devices.push(Device { secret, psk });
    }
    // Let the sync task hand the devices to the packet task.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let done = Arc::new(AtomicU64::new(0));
    let cookies = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(SECONDS);
    let mut tasks = Vec::new();
    for (i, d) in devices.into_iter().enumerate() {
        let (done, cookies) = (Arc::clone(&done), Arc::clone(&cookies));
        let gk = x25519::PublicKey::from(gateway_key);
        tasks.push(tokio::spawn(async move {
            initiator(i as u32, d, gk, endpoint, end, done, cookies).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    gw.shutdown().await;
    (
        done.load(Ordering::SeqCst) as f64 / SECONDS as f64,
        cookies.load(Ordering::SeqCst),
    )
}

async fn initiator(
    index: u32,
    d: Device,
    gateway: x25519::PublicKey,
    endpoint: SocketAddr,
    end: Instant,
    done: Arc<AtomicU64>,
    cookies: Arc<AtomicU64>,
) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 2048];
    let mut rx = vec![0u8; 2048];
    while Instant::now() < end {
        // A fresh Tunn per handshake: boringtun rate-limits initiations of one Tunn.
        let mut t = Tunn::new(
            d.secret.clone(),
            gateway,
            Some(d.psk),
            None,
            index + 1,
            None,
        );
        let mut attempts = 0;
        loop {
            attempts += 1;
            let init = match t.format_handshake_initiation(&mut buf, true) {
                TunnResult::WriteToNetwork(p) => p.to_vec(),
                _ => break,
            };
            sock.send_to(&init, endpoint).await.unwrap();
            let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut rx)).await
            else {
                break;
            };
            match t.decapsulate(None, &rx[..n], &mut buf) {
                TunnResult::Err(_) if attempts < 3 => continue,
                TunnResult::Done if n == 64 => {
                    // A cookie reply: the next initiation carries MAC2.
                    cookies.fetch_add(1, Ordering::Relaxed);
                    if attempts < 3 {
                        continue;
                    }
                    break;
                }
                TunnResult::Err(_) | TunnResult::Done => break,
                _ => {
                    done.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; needs root (TUN device)"]
async fn handshakes_per_second() {
    if !sallyport_tests::netns::is_root() {
        eprintln!("SKIPPED: needs root (a TUN device)");
        return;
    }
    for limit in [1_000_000, 1_000] {
        let (rate, cookies) = measure(limit).await;
        println!(
            "handshakes_per_second = {limit}: {rate:.0} completed handshakes/s with {DEVICES} initiators over {SECONDS} s, {cookies} cookie replies"
        );
        assert!(rate > 10.0, "{rate}");
    }
}
