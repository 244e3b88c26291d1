//! One rule per example.

use super::*;

#[test]
fn cidr_grants_check_address_protocol_and_port() {
    let w = World::example(vec![grant(
        1,
        "alice",
        "10.0.12.0/24",
        "tcp,icmp",
        "443,8000-8100",
    )]);
    let f = w.filter("alice", at(10));
    assert_eq!(f.check(addr("10.0.12.99"), &tcp(443)), Ok(gid(1)));
    assert_eq!(f.check(addr("10.0.12.99"), &tcp(8050)), Ok(gid(1)));
    let many = World::example(vec![grant(
        1,
        "alice",
        "10.0.12.0/24",
        "udp",
        "1,3,5,7,9-10",
    )]);
    let m = many.filter("alice", at(10));
    for port in [1, 3, 5, 7, 9, 10] {
        assert_eq!(m.check(addr("10.0.12.1"), &udp(port)), Ok(gid(1)), "{port}");
    }
    for port in [2, 4, 6, 8, 11] {
        assert_eq!(
            m.check(addr("10.0.12.1"), &udp(port)),
            Err(FlowDenial::PortNotGranted),
            "{port}"
        );
    }
    assert_eq!(f.check(addr("10.0.12.99"), &ping()), Ok(gid(1)));
    assert_eq!(
        f.check(addr("10.0.12.99"), &tcp(22)),
        Err(FlowDenial::PortNotGranted)
    );
    assert_eq!(
        f.check(addr("10.0.12.99"), &udp(443)),
        Err(FlowDenial::ProtocolNotGranted)
    );
    assert_eq!(
        f.check(addr("10.0.13.1"), &tcp(443)),
        Err(FlowDenial::NoGrantForDestination)
    );
    assert_eq!(
        f.check(addr("10.0.12.99"), &Transport::Other { protocol: 47 }),
        Err(FlowDenial::ProtocolNotGranted)
    );
    // Bob holds nothing.
    assert_eq!(
        w.filter("bob", at(10)).check(addr("10.0.12.99"), &tcp(443)),
        Err(FlowDenial::NoGrantForDestination)
    );
}

#[test]
fn targets_with_ip_literals_only() {
    let w = World::example(vec![
        grant(1, "alice", "db-1", "tcp", "5432"),
        grant(2, "alice", "dns-1", "tcp", "5432"),
        grant(3, "alice", "mapped-1", "tcp", "22"),
        grant(4, "alice", "v6-1", "tcp", "22"),
    ]);
    let f = w.filter("alice", at(10));
    assert_eq!(f.grant_count(), 3, "the DNS-named target is left out");
    assert_eq!(f.check(addr("10.0.12.7"), &tcp(5432)), Ok(gid(1)));
    assert_eq!(
        f.check(addr("10.0.12.8"), &tcp(5432)),
        Err(FlowDenial::NoGrantForDestination)
    );
    assert_eq!(f.check(addr("10.0.14.9"), &tcp(22)), Ok(gid(3)));
    assert_eq!(f.check(addr("2001:db8::7"), &tcp(22)), Ok(gid(4)));
    assert_eq!(
        f.check(addr("::ffff:10.0.12.7"), &tcp(5432)),
        Err(FlowDenial::NoGrantForDestination),
        "an IPv4-mapped IPv6 destination is IPv6"
    );
}

#[test]
fn special_destinations_need_an_explicit_grant() {
    let w = World::example(vec![
        grant(1, "alice", "0.0.0.0/0", "tcp,udp,icmp", "all"),
        grant(2, "alice", "::/0", "tcp", "all"),
        grant(3, "bob", "meta-1", "tcp", "80"),
        grant(4, "bob", "127.0.0.0/8", "udp", "53"),
    ]);
    let f = w.filter("alice", at(10));
    assert_eq!(f.check(addr("10.9.9.9"), &tcp(80)), Ok(gid(1)));
    for special in [
        "169.254.169.254",
        "127.0.0.1",
        "224.0.0.1",
        "255.255.255.255",
    ] {
        assert_eq!(
            f.check(addr(special), &tcp(80)),
            Err(FlowDenial::SpecialDestination),
            "{special}"
        );
    }
    for special in ["fe80::1", "::1", "fd00:ec2::254", "ff02::1"] {
        assert_eq!(
            f.check(addr(special), &tcp(80)),
            Err(FlowDenial::SpecialDestination),
            "{special}"
        );
    }
    assert_eq!(f.check(addr("2001:db8::1"), &tcp(80)), Ok(gid(2)));
    let b = w.filter("bob", at(10));
    assert_eq!(b.check(addr("169.254.169.254"), &tcp(80)), Ok(gid(3)));
    assert_eq!(b.check(addr("127.0.0.53"), &udp(53)), Ok(gid(4)));
}

#[test]
fn users_groups_and_state() {
    let w = World::example(vec![
        grant(1, "@ops", "10.1.0.0/16", "udp", "53"),
        grant(2, "carol", "10.2.0.0/16", "udp", "53"),
    ]);
    assert_eq!(
        w.filter("alice", at(10)).check(addr("10.1.2.3"), &udp(53)),
        Ok(gid(1))
    );
    let carol = w.filter("carol", at(10));
    assert_eq!(
        carol.check(addr("10.2.2.3"), &udp(53)),
        Err(FlowDenial::UserDisabled)
    );
    assert!(carol.allowed_ips().is_empty());
    assert_eq!(
        w.filter("mallory", at(10))
            .check(addr("10.1.2.3"), &udp(53)),
        Err(FlowDenial::UnknownUser)
    );
    let revoked = UserFilter::deny_all(name("alice"), FlowDenial::UserDisabled, at(10));
    assert_eq!(
        revoked.check(addr("10.1.2.3"), &udp(53)),
        Err(FlowDenial::UserDisabled)
    );
}

#[test]
fn only_grants_in_force_and_valid_until_the_next_change() {
    let mut later = grant(2, "alice", "10.3.0.0/16", "tcp", "22");
    later.not_before = at(100);
    later.expires_at = at(200);
    let mut revoked = grant(3, "alice", "10.4.0.0/16", "tcp", "22");
    revoked.revoked = Some((at(-1), name("root.admin")));
    let ssh_only = grant(4, "alice", "10.5.0.0/16", "ssh", "22");
    let w = World::example(vec![
        grant(1, "alice", "10.3.1.0/24", "tcp", "22"),
        later,
        revoked,
        ssh_only,
    ]);
    let f = w.filter("alice", at(10));
    assert_eq!(f.valid_until(), Some(at(100)));
    assert!(f.is_current(at(99)) && !f.is_current(at(100)));
    assert_eq!(
        f.check(addr("10.3.2.1"), &tcp(22)),
        Err(FlowDenial::NoGrantForDestination)
    );
    assert_eq!(
        f.check(addr("10.4.2.1"), &tcp(22)),
        Err(FlowDenial::NoGrantForDestination)
    );
    assert_eq!(
        f.check(addr("10.5.2.1"), &tcp(22)),
        Err(FlowDenial::NoGrantForDestination),
        "ssh grants do not open the VPN"
    );
    let g = w.filter("alice", at(150));
    assert_eq!(g.check(addr("10.3.2.1"), &tcp(22)), Ok(gid(2)));
    assert_eq!(g.valid_until(), Some(at(200)));
    let h = w.filter("alice", at(3600));
    assert_eq!(h.grant_count(), 0);
    assert_eq!(h.valid_until(), None);
}

#[test]
fn the_latest_expiring_grant_is_named() {
    let mut long = grant(2, "alice", "10.0.0.0/8", "tcp", "all");
    long.expires_at = at(7200);
    let w = World::example(vec![grant(1, "alice", "10.0.12.0/24", "tcp", "443"), long]);
    let f = w.filter("alice", at(10));
    assert_eq!(f.check(addr("10.0.12.1"), &tcp(443)), Ok(gid(2)));
}

#[test]
fn fragments_need_the_protocol_somewhere_at_the_address() {
    let w = World::example(vec![grant(1, "alice", "10.0.12.0/24", "udp", "53")]);
    let f = w.filter("alice", at(10));
    assert_eq!(
        f.check(addr("10.0.12.1"), &Transport::Fragment { protocol: 17 }),
        Ok(gid(1))
    );
    assert_eq!(
        f.check(addr("10.0.12.1"), &Transport::Fragment { protocol: 6 }),
        Err(FlowDenial::ProtocolNotGranted)
    );
}

#[test]
fn allowed_ips_are_merged() {
    let w = World::example(vec![
        grant(1, "alice", "10.0.12.0/25", "tcp", "22"),
        grant(2, "alice", "10.0.12.128/25", "udp", "53"),
        grant(3, "alice", "db-1", "tcp", "5432"),
        grant(4, "alice", "v6-1", "icmp", "all"),
        grant(5, "alice", "10.9.0.0/16", "ssh", "22"),
    ]);
    let f = w.filter("alice", at(10));
    let ips: Vec<String> = f.allowed_ips().iter().map(|n| n.to_string()).collect();
    assert_eq!(ips, ["10.0.12.0/24", "2001:db8::7/128"]);
    for code in [
        FlowDenial::UnknownUser,
        FlowDenial::PortNotGranted,
        FlowDenial::SpoofedSource,
    ] {
        assert!(!code.code().is_empty() && !code.to_string().is_empty());
    }
}
