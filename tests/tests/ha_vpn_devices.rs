//! VPN device changes across gateways: a device enrolled or revoked through gateway A moves
//! the control version in its own transaction, so gateway B hears of it within a second (as a
//! `Resynced` notice, on which B's endpoint re-reads its devices), not only at its periodic
//! re-read.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ha_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ha_common::{admin, Ha, HaOptions};
use sallyport_core::feed::{Change, Notice};
use sallyport_gateway::wireguard::{AddressPool, GatewayKey, VpnDevices, VpnEndpointInfo};
use tokio::sync::broadcast;

/// Waits for a `Resynced` notice on `feed`; returns how long it took.
async fn resynced_within(feed: &mut broadcast::Receiver<Notice>, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let left = limit
            .checked_sub(start.elapsed())
            .unwrap_or_else(|| panic!("no Resynced notice within {limit:?}"));
        match tokio::time::timeout(left, feed.recv()).await {
            Ok(Ok(n)) if n.change == Change::Resynced => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => panic!("feed: {e}"),
            Err(_) => panic!("no Resynced notice within {limit:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_enroll_and_revoke_on_a_reach_b_within_a_second() {
    let ha = Ha::start(HaOptions::default()).await;
    let devices_a = VpnDevices::new(
        Arc::clone(ha.ca()),
        Arc::new(GatewayKey::from_secrets(ha.a.gateway().secrets())),
        Some(VpnEndpointInfo {
            endpoint: "127.0.0.1:51820".into(),
            pool: AddressPool::new("100.64.0.0/24".parse().unwrap()).unwrap(),
            psk_lifetime: Duration::from_secs(3600),
        }),
    );
    let mut feed_b = ha.cb().subscribe();

    let enrolled = devices_a
        .enroll(
            &admin(),
            &ha.alice,
            "laptop".parse().unwrap(),
            "Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI="
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    let took = resynced_within(&mut feed_b, Duration::from_secs(1)).await;
    eprintln!("enroll on A announced on B after {took:?}");

    let id = enrolled.device.id;
    devices_a.revoke(&admin(), None, &id).await.unwrap();
    let took = resynced_within(&mut feed_b, Duration::from_secs(1)).await;
    eprintln!("revoke on A announced on B after {took:?}");
    // What B's endpoint then reads: the device is no longer active.
    let active = ha.cb().store().active_devices().await.unwrap();
    assert!(active.iter().all(|d| d.id != id), "{active:?}");

    ha.shutdown().await;
}
