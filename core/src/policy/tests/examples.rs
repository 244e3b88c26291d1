//! Examples: one rule each.

use super::*;

// ---------------------------------------------------------------------------------------------
// Examples, one rule each

#[test]
fn default_deny() {
    let s = World::example(vec![]).compile();
    verdict!(s, req("alice", Ssh, to("db-1"), 22) => Err(Denial::NoGrant));
    verdict!(s, req("alice", Tcp, addr("10.0.12.7"), 22) => Err(Denial::NoGrant));
    verdict!(s, req("mallory", Ssh, to("db-1"), 22) => Err(Denial::UnknownUser));
    verdict!(s, req("alice", Ssh, to("nope-1"), 22) => Err(Denial::UnknownTarget));
    assert_eq!(s.active_grants(&name("alice"), at(10)), vec![]);
}

#[test]
fn disabled_user_is_refused_despite_grants() {
    let s = World::example(vec![
        grant(1, "carol", "db-1", "ssh", "22"),
        grant(2, "@ops", "db-1", "ssh", "22"),
    ])
    .compile();
    let r = req("carol", Ssh, to("db-1"), 22);
    verdict!(s, r => Err(Denial::UserDisabled));
    verdict!(s, with_key(r, 3) => Err(Denial::UserDisabled));
    assert_eq!(s.active_grants(&name("carol"), at(10)), vec![]);
    verdict!(s, req("alice", Ssh, to("db-1"), 22) => Ok(gid(2)));
}

#[test]
fn key_must_be_registered_to_the_user_and_certificates_skip_it() {
    let mut w = World::example(vec![grant(1, "alice", "db-1", "ssh", "22")]);
    let r = req("alice", Ssh, to("db-1"), 22);
    let s = w.compile();
    verdict!(s, with_key(r.clone(), 1) => Ok(gid(1)));
    // bob's key, and a key nobody has.
    verdict!(s, with_key(r.clone(), 2) => Err(Denial::KeyNotRegistered));
    verdict!(s, with_key(r.clone(), 99) => Err(Denial::KeyNotRegistered));
    // A certificate needs no registered key, even when the user has none.
    w.keys.retain(|(u, _)| u.as_str() != "alice");
    let s = w.compile();
    verdict!(s, r => Ok(gid(1)));
    verdict!(s, with_key(r, 1) => Err(Denial::KeyNotRegistered));
}

#[test]
fn target_grants_match_by_name_or_by_the_targets_address() {
    let s = World::example(vec![
        grant(1, "alice", "db-1", "ssh,tcp,icmp", "22"),
        grant(2, "alice", "mapped-1", "tcp", "22"),
        grant(3, "alice", "v6-1", "tcp", "22"),
        grant(4, "alice", "dns-1", "tcp", "5432"),
    ])
    .compile();
    let a = allow(&s, req("alice", Ssh, to("db-1"), 22));
    let db1 = Host::Ip("10.0.12.7".parse().unwrap());
    assert_eq!((&a.connect_to().host, a.connect_to().port), (&db1, 22));
    let a = allow(&s, req("alice", Tcp, addr("10.0.12.7"), 22));
    assert_eq!((a.grant(), a.destination()), (gid(1), &addr("10.0.12.7")));
    verdict!(s, req("alice", Tcp, addr("::ffff:10.0.12.7"), 22) => Ok(gid(1)));
    // A target stored with a v4-mapped address is reached by its IPv4 address, and vice versa.
    verdict!(s, req("alice", Tcp, addr("10.0.14.9"), 22) => Ok(gid(2)));
    verdict!(s, req("alice", Tcp, addr("::ffff:10.0.14.9"), 22) => Ok(gid(2)));
    verdict!(s, req("alice", Tcp, addr("2001:db8::7"), 22) => Ok(gid(3)));
    // Neighbours, other targets and other users get nothing.
    let none = Err(Denial::NoGrant);
    verdict!(s, req("alice", Tcp, addr("10.0.12.8"), 22) => none);
    verdict!(s, req("alice", Ssh, to("web-1"), 22) => none);
    verdict!(s, req("alice", Tcp, addr("10.0.13.5"), 443) => none);
    verdict!(s, req("bob", Ssh, to("db-1"), 22) => none);
    // A DNS target is reached by name only, and connected to by name.
    let a = allow(&s, req("alice", Tcp, to("dns-1"), 5432));
    assert_eq!(a.connect_to().host, Host::Dns("db.internal".into()));
}

#[test]
fn cidr_grants_match_addresses_inside_and_ipv6_only_by_ipv6() {
    let s = World::example(vec![
        grant(1, "alice", "10.0.12.0/24", "tcp,udp,icmp,ssh", "all"),
        grant(2, "bob", "2001:db8::/48", "tcp", "all"),
        grant(3, "bob", "0.0.0.0/0", "udp", "all"),
        grant(4, "bob", "::/0", "icmp", "all"),
    ])
    .compile();
    let none = Err(Denial::NoGrant);
    let a = allow(&s, req("alice", Tcp, addr("10.0.12.200"), 5432));
    let ip = Host::Ip("10.0.12.200".parse().unwrap());
    assert_eq!((&a.connect_to().host, a.connect_to().port), (&ip, 5432));
    // v4-mapped IPv6 is canonicalised first; the upstream connection goes to the IPv4 address.
    let a = allow(&s, req("alice", Tcp, addr("::ffff:10.0.12.200"), 53));
    assert_eq!(a.connect_to().host, ip);
    verdict!(s, req("alice", Tcp, addr("10.0.13.1"), 22) => none);
    verdict!(s, req("alice", Tcp, addr("::ffff:10.0.13.1"), 22) => none);
    // A named target inside the CIDR is reached through it.
    verdict!(s, req("alice", Ssh, to("db-1"), 22) => Ok(gid(1)));
    // IPv6 is denied unless granted, even by 0.0.0.0/0, and `::10.0.12.7` is not v4-mapped ...
    verdict!(s, req("bob", Udp, addr("2001:db8::1"), 53) => none);
    verdict!(s, req("bob", Udp, addr("::a00:c07"), 53) => none);
    verdict!(s, req("bob", Tcp, addr("2001:db8:0:ffff::1"), 443) => Ok(gid(2)));
    verdict!(s, req("bob", Tcp, addr("2001:db9::1"), 443) => none);
    // ... and IPv6 CIDRs, even ::/0, do not reach IPv4, plain or v4-mapped.
    verdict!(s, req("bob", Icmp, addr("2001:db9::1"), 0) => Ok(gid(4)));
    verdict!(s, req("bob", Icmp, addr("10.0.12.7"), 0) => none);
    verdict!(s, req("bob", Icmp, addr("::ffff:10.0.12.7"), 0) => none);
}

#[test]
fn broad_cidrs_do_not_reach_special_addresses() {
    let mut w = World::example(vec![
        grant(1, "alice", "0.0.0.0/0", "tcp,icmp", "all"),
        grant(2, "alice", "::/0", "tcp,icmp", "all"),
        grant(3, "bob", "169.254.169.254/32", "tcp", "80"),
        grant(4, "bob", "127.0.0.0/8", "tcp", "all"),
        grant(5, "bob", "imds-1", "ssh", "22"),
    ]);
    w.targets.push(target("imds-1", "169.254.169.254:80"));
    let s = w.compile();
    let none = Err(Denial::NoGrant);
    verdict!(s, req("alice", Tcp, addr("10.0.12.7"), 22) => Ok(gid(1)));
    verdict!(s, req("alice", Tcp, addr("2001:db8::1"), 22) => Ok(gid(2)));
    for special in [
        "127.0.0.1",
        "169.254.169.254",
        "::ffff:169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "ff02::1",
        "fd00:ec2::254",
    ] {
        verdict!(s, req("alice", Tcp, addr(special), 80) => none);
    }
    // Not through a named target either.
    verdict!(s, req("alice", Tcp, to("imds-1"), 80) => none);
    // A grant that names the special range, or the target, reaches it.
    verdict!(s, req("bob", Tcp, addr("169.254.169.254"), 80) => Ok(gid(3)));
    verdict!(s, req("bob", Tcp, addr("::ffff:169.254.169.254"), 80) => Ok(gid(3)));
    verdict!(s, req("bob", Tcp, to("imds-1"), 80) => Ok(gid(3)));
    verdict!(s, req("bob", Tcp, addr("169.254.169.253"), 80) => none);
    verdict!(s, req("bob", Tcp, addr("127.0.0.1"), 5432) => Ok(gid(4)));
    verdict!(s, req("bob", Ssh, addr("169.254.169.254"), 22) => Ok(gid(5)));
}

#[test]
fn ports_are_checked_except_for_icmp() {
    let g = grant(1, "alice", "db-1", "tcp,udp,icmp", "22,8000-8100");
    let s = World::example(vec![g]).compile();
    for p in [22, 8000, 8050, 8100] {
        verdict!(s, req("alice", Tcp, to("db-1"), p) => Ok(gid(1)), "{p}");
    }
    for p in [0, 21, 23, 7999, 8101, 65535] {
        verdict!(s, req("alice", Udp, to("db-1"), p) => Err(Denial::PortNotGranted), "{p}");
        verdict!(s, req("alice", Icmp, to("db-1"), p) => Ok(gid(1)), "icmp {p}");
    }
}

#[test]
fn ssh_proxy_needs_a_granted_login() {
    let g = logins(
        grant(1, "alice", "db-1", "ssh,ssh-proxy", "22"),
        &["ubuntu", "postgres"],
    );
    let s = World::example(vec![g]).compile();
    let r = req("alice", SshProxy, to("db-1"), 22);
    let a = allowed(decide(&with_login(r.clone(), "ubuntu"), &s, at(10)));
    assert_eq!(a.login().map(|l| l.as_str()), Some("ubuntu"));
    verdict!(s, with_login(r.clone(), "root") => Err(Denial::LoginNotGranted));
    verdict!(s, r => Err(Denial::LoginNotGranted));
    // The login is not consulted for a plain jump.
    verdict!(s, with_login(req("alice", Ssh, to("db-1"), 22), "root") => Ok(gid(1)));
}

#[test]
fn window_is_not_before_inclusive_to_expiry_exclusive() {
    let g = window(grant(1, "alice", "db-1", "ssh", "22"), at(100), at(200));
    let s = World::example(vec![g]).compile();
    let r = req("alice", Ssh, to("db-1"), 22);
    let until = |now| decide(&r, &s, now).into_result().map(|a| a.expires_at());
    let (before, after) = (Denial::NotYetValid(gid(1)), Denial::Expired(gid(1)));
    assert_eq!(until(just_before(at(100))), Err(before));
    assert_eq!(until(at(100)), Ok(at(200)));
    assert_eq!(until(just_before(at(200))), Ok(at(200)));
    assert_eq!(until(at(200)), Err(after));
    assert_eq!(s.active_grants(&name("alice"), at(150)), vec![gid(1)]);
    assert_eq!(s.active_grants(&name("alice"), at(200)), vec![]);
}

#[test]
fn revoked_grants_and_dangling_grants_match_nothing() {
    let s = World::example(vec![
        revoked(grant(1, "alice", "db-1", "ssh", "22")),
        grant(2, "alice", "gone-1", "ssh", "22"),
        grant(3, "mallory", "db-1", "ssh", "22"),
        grant(4, "@nobody", "db-1", "ssh", "22"),
    ])
    .compile();
    verdict!(s, req("alice", Ssh, to("db-1"), 22) => Err(Denial::NoGrant));
    assert_eq!(s.next_transition_after(at(10)), None);
    assert_eq!(s.version(), 7);
}

#[test]
fn group_grants_reach_members_only() {
    let w = World::example(vec![grant(1, "@ops", "db-1", "ssh", "22")]);
    let alice = req("alice", Ssh, to("db-1"), 22);
    let bob = req("bob", Ssh, to("db-1"), 22);
    verdict!(w.compile(), alice => Ok(gid(1)));
    verdict!(w.compile(), bob => Err(Denial::NoGrant));
    let mut changed = w.clone();
    changed.user_mut("alice").groups.clear();
    let ops = "ops".parse().unwrap();
    changed.user_mut("bob").groups.insert(ops);
    verdict!(changed.compile(), alice => Err(Denial::NoGrant));
    verdict!(changed.compile(), bob => Ok(gid(1)));
}

#[test]
fn most_informative_near_miss_wins_whatever_the_order() {
    let port_miss = grant(1, "alice", "db-1", "ssh-proxy", "2222");
    let login_miss = logins(grant(2, "alice", "db-1", "ssh-proxy", "22"), &["ubuntu"]);
    let expired = window(grant(3, "alice", "db-1", "ssh-proxy", "22"), at(0), at(5));
    let pending = window(grant(4, "alice", "db-1", "ssh-proxy", "22"), at(20), at(30));
    let other_protocol = grant(5, "alice", "db-1", "tcp", "22");
    let r = with_login(req("alice", SshProxy, to("db-1"), 22), "root");
    let cases = [
        (vec![&other_protocol], vec![Denial::NoGrant]),
        (
            vec![&other_protocol, &port_miss],
            vec![Denial::PortNotGranted],
        ),
        (vec![&port_miss, &login_miss], vec![Denial::LoginNotGranted]),
        (
            vec![&port_miss, &expired, &login_miss],
            vec![Denial::Expired(gid(3))],
        ),
        (
            vec![&pending, &port_miss],
            vec![Denial::NotYetValid(gid(4))],
        ),
        (
            vec![&expired, &pending],
            vec![Denial::Expired(gid(3)), Denial::NotYetValid(gid(4))],
        ),
    ];
    for (grants, want) in cases {
        let forward: Vec<Grant> = grants.iter().map(|g| (*g).clone()).collect();
        let backward: Vec<Grant> = forward.iter().rev().cloned().collect();
        for order in [forward, backward] {
            let ids: Vec<GrantId> = order.iter().map(|g| g.id).collect();
            let got = ask(&World::example(order).compile(), &r).unwrap_err();
            assert!(
                want.contains(&got),
                "{ids:?}: got {got:?}, want one of {want:?}"
            );
        }
    }
}

#[test]
fn allowed_carries_the_matching_grant_with_the_latest_expiry() {
    let short = window(grant(1, "alice", "db-1", "ssh", "22"), at(0), at(100));
    let long = window(
        grant(2, "@ops", "10.0.12.0/24", "ssh", "22"),
        at(0),
        at(900),
    );
    let longer_wrong_port = window(grant(3, "alice", "db-1", "ssh", "2222"), at(0), at(5000));
    let longer_not_started = window(grant(4, "alice", "db-1", "ssh", "22"), at(50), at(6000));
    let mut grants = vec![short, long, longer_wrong_port, longer_not_started];
    for _ in 0..2 {
        let s = World::example(grants.clone()).compile();
        let a = allow(&s, with_key(req("alice", Ssh, to("db-1"), 22), 1));
        assert_eq!((a.grant(), a.expires_at()), (gid(2), at(900)));
        assert_eq!((a.user().as_str(), a.protocol()), ("alice", Ssh));
        grants.reverse();
    }
}

#[test]
fn recheck_fails_once_the_basis_is_gone() {
    let w = World::example(vec![
        window(grant(1, "alice", "db-1", "ssh", "22"), at(0), at(100)),
        grant(2, "@ops", "web-1", "tcp", "443"),
    ]);
    let s = w.compile();
    let by_key = allow(&s, with_key(req("alice", Ssh, to("db-1"), 22), 1));
    let by_cert = allow(&s, req("alice", Ssh, to("db-1"), 22));
    let by_group = allow(&s, req("alice", Tcp, to("web-1"), 443));
    assert_eq!(s.recheck(&by_key, just_before(at(100))), Ok(()));
    assert_eq!(s.recheck(&by_key, at(100)), Err(Denial::Expired(gid(1))));

    let after = |change: &dyn Fn(&mut World)| {
        let mut w = w.clone();
        change(&mut w);
        w.compile()
    };
    let s = after(&|w| w.grants[0] = revoked(w.grants[0].clone()));
    assert_eq!(s.recheck(&by_key, at(10)), Err(Denial::Revoked(gid(1))));
    let s = after(&|w| w.user_mut("alice").state = UserState::Disabled);
    assert_eq!(s.recheck(&by_cert, at(10)), Err(Denial::UserDisabled));
    let s = after(&|w| w.keys.retain(|(_, k)| *k != fp(1)));
    assert_eq!(s.recheck(&by_key, at(10)), Err(Denial::KeyNotRegistered));
    assert_eq!(s.recheck(&by_cert, at(10)), Ok(()));
    let s = after(&|w| w.user_mut("alice").groups.clear());
    assert_eq!(s.recheck(&by_group, at(10)), Err(Denial::Revoked(gid(2))));
    assert_eq!(s.recheck(&by_cert, at(10)), Ok(()));
    let s = after(&|w| w.users.retain(|u| u.name.as_str() != "alice"));
    assert_eq!(s.recheck(&by_cert, at(10)), Err(Denial::UnknownUser));
}

#[test]
fn next_transition_is_the_first_grant_boundary_strictly_after_now() {
    let s = World::example(vec![
        window(grant(1, "alice", "db-1", "ssh", "22"), at(10), at(100)),
        window(grant(2, "@ops", "db-1", "ssh", "22"), at(50), at(70)),
        revoked(window(grant(3, "bob", "db-1", "ssh", "22"), at(20), at(30))),
    ])
    .compile();
    assert_eq!(s.next_transition_after(at(0)), Some(at(10)));
    assert_eq!(s.next_transition_after(at(10)), Some(at(50)));
    assert_eq!(s.next_transition_after(at(60)), Some(at(70)));
    assert_eq!(s.next_transition_after(at(70)), Some(at(100)));
    assert_eq!(s.next_transition_after(at(100)), None);
    let empty = World::example(vec![]).compile();
    assert_eq!(empty.next_transition_after(at(0)), None);
}
