//! Revocation and key expiry with the real client: a transfer running through the tunnel
//! stops within a second of a grant revoke, a device revoke or a user disable; an expired
//! preshared key stops the tunnel until `sallyport vpn refresh`. Needs root; skips otherwise.

mod vpn_common;

use std::time::Duration;

use vpn_common::{now_secs, Lab, TARGET};

/// Starts a 1 KiB echo every 20 ms, lets it run, applies `cut`, and returns (successes
/// before, seconds from the cut to the last success after it).
fn cut_during_transfer(
    lab: &mut Lab,
    i: usize,
    cut: impl FnOnce(&Lab),
) -> anyhow::Result<(usize, f64)> {
    let log = lab.stream(i, TARGET, 5432, 20)?;
    vpn_common::wait_until("transfer", Duration::from_secs(15), || {
        std::fs::read_to_string(&log)
            .map(|t| t.lines().filter(|l| l.starts_with("ok ")).count() >= 20)
            .unwrap_or(false)
    })?;
    let at = now_secs();
    cut(lab);
    // The stream notices within its 0.25 s receive timeout once packets stop.
    vpn_common::wait_until("the transfer to stop", Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .map(|t| t.contains("stop "))
            .unwrap_or(false)
    })?;
    let text = std::fs::read_to_string(&log)?;
    anyhow::ensure!(
        !text.contains(" done"),
        "the transfer ran to its end:\n{text}"
    );
    let times: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .filter_map(|t| t.parse().ok())
        .collect();
    let before = times.iter().filter(|t| **t < at).count();
    let last = times.last().copied().unwrap_or(0.0);
    eprintln!(
        "{before} echoes before the cut; the last one {:.3} s after it",
        last - at
    );
    Ok((before, last - at))
}

#[test]
fn revoking_a_grant_stops_a_running_transfer_within_a_second() {
    let mut lab = lab_or_skip!(None);
    let a = lab
        .add_user("alice", &[("10.99.2.0/24", "tcp", Some("5432"))])
        .unwrap();
    assert_eq!(lab.probe_ok(a, "tcp", TARGET, 5432), "OK");
    let grants = lab
        .admin(&["grant", "list", "--user", "alice", "-o", "json"])
        .unwrap();
    let grants: serde_json::Value = serde_json::from_str(&grants).unwrap();
    let id = grants[0]["id"].as_str().unwrap().to_owned();
    let (before, after) = cut_during_transfer(&mut lab, a, |lab| {
        lab.admin(&["revoke", &id]).unwrap();
    })
    .unwrap();
    assert!(before >= 20, "{before}");
    assert!(after < 1.0, "traffic went on {after:.3} s after the revoke");
    assert_eq!(lab.probe(a, "tcp", TARGET, 5432, None), "REFUSED");
    let ends = lab.events("vpn.flow.end").unwrap();
    let text = serde_json::to_string(&ends).unwrap();
    assert!(text.contains("\"revoked\""), "{text}");
    assert!(text.contains("bytes_out"), "{text}");
}

/// A grant that simply runs out ends its flows too, within a second of its `expires_at`.
#[test]
fn an_expiring_grant_stops_a_running_transfer_within_a_second() {
    let mut lab = lab_or_skip!(None);
    let a = lab.add_user("alice", &[]).unwrap();
    lab.admin(&[
        "grant",
        "alice",
        "10.99.2.0/24",
        "--proto",
        "tcp",
        "--ports",
        "5432",
        "--for",
        "12s",
        "--reason",
        "vpn-test",
    ])
    .unwrap();
    assert_eq!(lab.probe_ok(a, "tcp", TARGET, 5432), "OK");
    let grants = lab
        .admin(&["grant", "list", "--user", "alice", "-o", "json"])
        .unwrap();
    let grants: serde_json::Value = serde_json::from_str(&grants).unwrap();
    let expires: sallyport_core::time::Timestamp =
        grants[0]["expires_at"].as_str().unwrap().parse().unwrap();
    let expires = expires.as_millis() as f64 / 1e3;
    let log = lab.stream(a, TARGET, 5432, 30).unwrap();
    vpn_common::wait_until("the transfer to stop", Duration::from_secs(30), || {
        std::fs::read_to_string(&log)
            .map(|t| t.contains("stop "))
            .unwrap_or(false)
    })
    .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let times: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .filter_map(|t| t.parse().ok())
        .collect();
    let last = times.last().copied().unwrap_or(0.0);
    assert!(times.len() > 20, "{text}");
    eprintln!("last echo {:.3} s after the grant's expiry", last - expires);
    assert!(
        last - expires > -1.0,
        "traffic stopped {:.3} s before the grant expired",
        expires - last
    );
    assert!(
        last - expires < 1.0,
        "traffic went on {:.3} s after the grant expired",
        last - expires
    );
}

#[test]
fn revoking_the_device_or_disabling_the_user_stops_the_tunnel() {
    let mut lab = lab_or_skip!(None);
    let a = lab
        .add_user("alice", &[("10.99.2.0/24", "tcp", Some("5432"))])
        .unwrap();
    let b = lab
        .add_user("bob", &[("10.99.2.0/24", "tcp", Some("5432"))])
        .unwrap();
    assert_eq!(lab.probe_ok(a, "tcp", TARGET, 5432), "OK");
    assert_eq!(lab.probe_ok(b, "tcp", TARGET, 5432), "OK");
    // Alice revokes her own device.
    let device = lab.engineers[a].device.clone();
    let (_, after) = cut_during_transfer(&mut lab, a, |lab| {
        lab.as_engineer(0, &["device", "revoke", &device]).unwrap();
    })
    .unwrap();
    assert!(
        after < 1.0,
        "traffic went on {after:.3} s after the device revoke"
    );
    assert_eq!(lab.probe(a, "tcp", TARGET, 5432, None), "TIMEOUT");
    let listed = lab.admin(&["device", "list", "-o", "json"]).unwrap();
    assert!(listed.contains(&device), "{listed}");
    // Bob is disabled by an admin.
    let (_, after) = cut_during_transfer(&mut lab, b, |lab| {
        lab.admin(&["user", "disable", "bob"]).unwrap();
    })
    .unwrap();
    assert!(
        after < 1.0,
        "traffic went on {after:.3} s after the user was disabled"
    );
    let revokes = lab.events("vpn.device.revoke").unwrap();
    assert_eq!(revokes.len(), 1, "{revokes:?}");
}

#[test]
fn an_expired_preshared_key_stops_the_tunnel_until_refresh() {
    let mut lab = lab_or_skip!(Some("8s"));
    let a = lab
        .add_user("alice", &[("10.99.2.2/32", "tcp", Some("5432"))])
        .unwrap();
    assert_eq!(lab.probe_ok(a, "tcp", TARGET, 5432), "OK");
    let conf = lab.engineers[a].conf.clone();
    let old = std::fs::read_to_string(&conf).unwrap();
    // Past the expiry (8 s from enrolment) the gateway has dropped the peer.
    std::thread::sleep(Duration::from_secs(9));
    assert_eq!(lab.probe(a, "tcp", TARGET, 5432, None), "TIMEOUT");
    // A fresh handshake with the old key does not help either.
    lab.reload(a).unwrap();
    assert_eq!(lab.probe(a, "tcp", TARGET, 5432, None), "TIMEOUT");
    // Refresh rewrites the file's preshared key; with it the tunnel works again.
    let c = conf.display().to_string();
    lab.as_engineer(a, &["vpn", "refresh", "--file", &c])
        .unwrap();
    let new = std::fs::read_to_string(&conf).unwrap();
    assert_ne!(old, new);
    lab.reload(a).unwrap();
    assert_eq!(lab.probe_ok(a, "tcp", TARGET, 5432), "OK");
    let refreshed = lab.events("vpn.device.refresh").unwrap();
    assert_eq!(refreshed.len(), 1, "{refreshed:?}");
}
