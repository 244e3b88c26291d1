//! WireGuard end to end with the real client: two engineers running `wireguard-go` (configured
//! from `sallyport vpn enroll`'s file), `sallyportd dev --wg-listen` in its own namespace with
//! nftables NAT, echo services in a private-subnet namespace. Needs root; skips otherwise.

mod vpn_common;

use vpn_common::{OTHER_TARGET, TARGET};

/// Granted ports work over TCP and UDP; an ungranted port gets a TCP RST, an ungranted
/// address an ICMP administratively-prohibited (and TCP RST); two engineers reach only their
/// own grants and not each other; a spoofed inner source is dropped; all of it audited.
#[test]
fn grants_decide_every_packet() {
    let mut lab = lab_or_skip!(None);
    let alice = lab
        .add_user(
            "alice",
            &[
                ("10.99.2.2/32", "tcp", Some("5432")),
                ("10.99.2.2/32", "udp", Some("5353")),
            ],
        )
        .unwrap();
    let bob = lab
        .add_user("bob", &[("10.99.2.2/32", "tcp", Some("8080"))])
        .unwrap();
    let conf = std::fs::read_to_string(&lab.engineers[alice].conf).unwrap();
    assert!(conf.contains("AllowedIPs = 10.99.2.2/32"), "{conf}");
    let mode = std::fs::metadata(&lab.engineers[alice].conf).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // Granted.
    assert_eq!(lab.probe_ok(alice, "tcp", TARGET, 5432), "OK");
    assert_eq!(lab.probe_ok(alice, "udp", TARGET, 5353), "OK");
    assert_eq!(lab.probe_ok(bob, "tcp", TARGET, 8080), "OK");
    // Not granted: a port, the other's port, a protocol, an address.
    assert_eq!(lab.probe(alice, "tcp", TARGET, 8080, None), "REFUSED");
    assert_eq!(lab.probe(bob, "tcp", TARGET, 5432, None), "REFUSED");
    assert_eq!(lab.probe(bob, "udp", TARGET, 5353, None), "UNREACH");
    assert_eq!(lab.probe(alice, "udp", TARGET, 5454, None), "UNREACH");
    assert_eq!(lab.probe(alice, "tcp", OTHER_TARGET, 5432, None), "REFUSED");
    assert_eq!(lab.probe(alice, "udp", OTHER_TARGET, 5353, None), "UNREACH");
    // Not each other.
    let bob_addr = lab.engineers[bob].address.clone();
    assert_eq!(lab.probe(alice, "tcp", &bob_addr, 22, None), "REFUSED");
    // A spoofed inner source (an address of the pool that is not alice's) is dropped, not
    // answered, even to a granted port.
    lab.engineers[alice]
        .ns
        .run(
            "ip",
            &[
                "addr",
                "add",
                "100.64.0.200/32",
                "dev",
                &lab.engineers[alice].ifname,
            ],
        )
        .unwrap();
    assert_eq!(
        lab.probe(alice, "tcp", TARGET, 5432, Some("100.64.0.200")),
        "TIMEOUT"
    );
    assert_eq!(lab.probe(alice, "tcp", TARGET, 5432, None), "OK");

    // Audited: handshakes, flows, denials (the first of each kind at once).
    let handshakes = lab.events("vpn.handshake").unwrap();
    assert!(handshakes.len() >= 2, "{handshakes:?}");
    let denied = lab.events("vpn.flow.denied").unwrap();
    let text = serde_json::to_string(&denied).unwrap();
    assert!(text.contains("spoofed-source"), "{text}");
    assert!(text.contains("\"bob\""), "{text}");
    let starts = lab.events("vpn.flow.start").unwrap();
    assert!(
        serde_json::to_string(&starts).unwrap().contains("5432"),
        "{starts:?}"
    );
    let enrolls = lab.events("vpn.device.enroll").unwrap();
    assert_eq!(enrolls.len(), 2, "{enrolls:?}");

    // Flows end with counters when the gateway stops.
    lab.stop_gateway();
}
