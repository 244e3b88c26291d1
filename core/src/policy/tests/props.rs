//! Properties.

use super::reference::*;
use super::strategies::*;
use super::*;

// ---------------------------------------------------------------------------------------------
// Properties (rustfmt leaves macro bodies alone; they are kept within 100 columns by hand)

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decide_agrees_with_the_spec((w, r, now) in arb_case()) {
        let s = w.compile();
        match (reference(&w, &r, now), decide(&r, &s, now)) {
            (Expected::Allow { ids, expires_at, connect }, Decision::Allow(a)) => {
                prop_assert!(ids.contains(&a.grant()), "{} is not among {ids:?}", a.grant());
                prop_assert_eq!(a.expires_at(), expires_at);
                prop_assert_eq!(a.connect_to(), &connect);
                prop_assert_eq!(a.user(), &r.user);
                prop_assert_eq!(a.protocol(), r.protocol);
                prop_assert_eq!(a.destination(), &r.destination);
                prop_assert_eq!(a.login(), r.login.as_ref());
                prop_assert_eq!(s.recheck(&a, now), Ok(()));
                prop_assert!(s.active_grants(&r.user, now).contains(&a.grant()));
            }
            (Expected::Deny(why), Decision::Deny(got)) => {
                prop_assert!(why.contains(&got), "denied {got:?}, expected one of {why:?}");
            }
            (want, got) => prop_assert!(false, "expected {want:?}, got {got:?}"),
        }
    }

    #[test]
    fn no_grants_deny_everything(mut w in arb_world(6), r in arb_request(), now in arb_now()) {
        // Revoked grants are dropped at compile, so they count as none.
        w.grants = w.grants.into_iter().map(revoked).collect();
        let s = w.compile();
        prop_assert!(!decide(&r, &s, now).is_allowed());
        prop_assert_eq!(s.next_transition_after(now), None);
    }

    #[test]
    fn requests_no_single_grant_covers_are_denied(
        w in arb_world(8),
        r in arb_request(),
        now in arb_now(),
    ) {
        // Protocol, destination and port, each by its loosest reading.
        let ip_of =
            |name: &TargetName| w.targets.iter().find(|t| &t.name == name)?.address.host.ip();
        let covers = |g: &Grant| {
            let reaches = match (&g.object, &r.destination) {
                (GrantObject::Target(a), Destination::Target(b)) => a == b,
                (GrantObject::Target(a), Destination::Address(ip)) => {
                    ip_of(a) == Some(canonical(*ip))
                }
                (GrantObject::Cidr(net), Destination::Address(ip)) => inside(net, canonical(*ip)),
                (GrantObject::Cidr(net), Destination::Target(b)) => {
                    ip_of(b).is_some_and(|ip| inside(net, ip))
                }
            };
            let port = r.protocol == Icmp || g.ports.contains(r.port);
            g.protocols.contains(r.protocol) && reaches && port
        };
        if !w.grants.iter().any(covers) {
            prop_assert!(!decide(&r, &w.compile(), now).is_allowed());
        }
    }

    #[test]
    fn allowed_iff_now_in_window(
        nb in -1_000_000_000i64..1_000_000_000,
        len in 1i64..31_622_400_000,
        pick in 0usize..7,
        any_ms in any::<i64>(),
    ) {
        let (nb, exp) = (BASE_MS + nb, BASE_MS + nb + len);
        let anywhere = nb - len + any_ms.rem_euclid(3 * len);
        let now = [nb - 1, nb, nb + 1, exp - 1, exp, exp + 1, anywhere][pick];
        let in_window = nb <= now && now < exp;
        let t = Timestamp::from_millis;
        let (nb, exp, now) = (t(nb), t(exp), t(now));
        let g = window(grant(1, "alice", "db-1", "ssh", "22"), nb, exp);
        let s = World::example(vec![g]).compile();
        match decide(&req("alice", Ssh, to("db-1"), 22), &s, now) {
            Decision::Allow(a) => {
                prop_assert!(in_window, "allowed at {now} outside [{nb}, {exp})");
                prop_assert_eq!(s.recheck(&a, now), Ok(()));
                prop_assert_eq!(s.recheck(&a, exp), Err(Denial::Expired(gid(1))));
            }
            Decision::Deny(why) => {
                prop_assert!(!in_window, "denied at {now} inside [{nb}, {exp})");
                let want = match now < nb {
                    true => Denial::NotYetValid(gid(1)),
                    false => Denial::Expired(gid(1)),
                };
                prop_assert_eq!(why, want);
            }
        }
        let active = s.active_grants(&name("alice"), now);
        prop_assert_eq!(active.len(), usize::from(in_window));
        let next = [nb, exp].into_iter().find(|t| *t > now);
        prop_assert_eq!(s.next_transition_after(now), next);
    }

    #[test]
    fn disabled_user_is_always_denied(
        mut w in arb_world(6),
        r in arb_request(),
        now in arb_now(),
    ) {
        let mut r = grantable(r);
        r.user = name("alice");
        w.user_mut("alice").state = UserState::Disabled;
        w.user_mut("alice").groups = GROUPS.iter().map(|g| g.parse().unwrap()).collect();
        w.grants.push(grant_for(100, &r));
        prop_assert_eq!(denied(decide(&r, &w.compile(), now)), Denial::UserDisabled);
    }

    #[test]
    fn keys_must_be_registered_and_certificates_need_none(
        registered in prop::sample::subsequence((0..6).collect::<Vec<usize>>(), 0..=6),
        used in 0usize..6,
        r in arb_request(),
    ) {
        let mut r = grantable(r);
        r.user = name("alice");
        r.credential = Credential::Key(fp(used));
        let targets = TARGETS.iter().map(|(n, a)| target(n, a)).collect();
        let mut w = World { users: vec![user("alice", &[])], targets, ..World::default() };
        w.keys = registered.iter().map(|i| (name("alice"), fp(*i))).collect();
        // bob holding the key does not help alice.
        w.users.push(user("bob", &[]));
        w.keys.push((name("bob"), fp(used)));
        w.grants.push(grant_for(1, &r));
        let s = w.compile();
        let by_key = decide(&r, &s, at(5));
        prop_assert_eq!(by_key.is_allowed(), registered.contains(&used));
        if !registered.contains(&used) {
            prop_assert_eq!(denied(by_key), Denial::KeyNotRegistered);
        }
        let mut by_cert = r.clone();
        by_cert.credential = Credential::Certificate { serial: 1 };
        let cert_allowed = allowed(decide(&by_cert, &s, at(5)));
        // Removing the key ends key access; the certificate is untouched.
        w.keys.retain(|(u, k)| !(u.as_str() == "alice" && *k == fp(used)));
        let s = w.compile();
        prop_assert_eq!(denied(decide(&r, &s, at(5))), Denial::KeyNotRegistered);
        prop_assert_eq!(s.recheck(&cert_allowed, at(5)), Ok(()));
        prop_assert!(decide(&by_cert, &s, at(5)).is_allowed());
    }

    #[test]
    fn group_grants_follow_membership(
        members in prop::collection::vec(
            prop::sample::subsequence(vec!["g0", "g1", "g2"], 0..=3), 4),
        group in prop::sample::select(vec!["g0", "g1", "g2"]),
        who in 0usize..4,
    ) {
        let names = ["ann", "ben", "cat", "dan"];
        let mut w = World {
            users: names.iter().zip(&members).map(|(n, gs)| user(n, gs)).collect(),
            targets: vec![target("db-1", "10.0.0.1:22")],
            grants: vec![grant(1, &format!("@{group}"), "db-1", "ssh", "22")],
            ..World::default()
        };
        let r = req(names[who], Ssh, to("db-1"), 22);
        let d = decide(&r, &w.compile(), at(5));
        prop_assert_eq!(d.is_allowed(), members[who].contains(&group));
        if let Decision::Allow(a) = d {
            prop_assert_eq!(a.grant(), gid(1));
            w.users[who].groups.remove(&group.parse().unwrap());
            let s = w.compile();
            prop_assert_eq!(denied(decide(&r, &s, at(5))), Denial::NoGrant);
            prop_assert_eq!(s.recheck(&a, at(5)), Err(Denial::Revoked(gid(1))));
        }
    }

    #[test]
    fn ipv4_cidr_allows_iff_contained(
        net in arb_v4_net(),
        host in any::<u32>(),
        special in prop::sample::select(SPECIAL_V4.to_vec()),
        pick in 0u8..3,
        mapped in any::<bool>(),
    ) {
        // An address in the network's neighbourhood, anywhere, or a special one.
        let ip = match pick {
            0 => u32::from(net.network()) ^ (host & 0x1ff),
            1 => host,
            _ => u32::from(special.parse::<Ipv4Addr>().unwrap()),
        };
        let len = net.prefix_len();
        let contained = u128::from(ip) & mask(32, len) == u128::from(u32::from(net.network()));
        let ip = Ipv4Addr::from(ip);
        let reaches = cidr_reaches(&IpNet::V4(net), IpAddr::V4(ip));
        let s = World::example(vec![grant(1, "alice", &net.to_string(), "tcp", "all")]).compile();
        let dest = if mapped { IpAddr::V6(ip.to_ipv6_mapped()) } else { IpAddr::V4(ip) };
        let d = decide(&req("alice", Tcp, Destination::Address(dest), 443), &s, at(5));
        prop_assert_eq!(d.is_allowed(), reaches, "{} in {}", dest, net);
        prop_assert!(contained || !d.is_allowed(), "{} outside {} allowed", dest, net);
        if let Decision::Allow(a) = d {
            prop_assert_eq!(&a.connect_to().host, &Host::Ip(IpAddr::V4(ip)));
        }
    }

    #[test]
    fn ipv6_cidr_allows_iff_contained(
        net in arb_v6_net(),
        host in any::<u128>(),
        special in prop::sample::select(SPECIAL_V6.to_vec()),
        pick in 0u8..3,
    ) {
        let ip = match pick {
            0 => u128::from(net.network()) ^ (host & 0x1ff),
            1 => host,
            _ => u128::from(special.parse::<Ipv6Addr>().unwrap()),
        };
        let contained = ip & mask(128, net.prefix_len()) == u128::from(net.network());
        let ip = Ipv6Addr::from(ip);
        // v4-mapped addresses are IPv4 once canonical; they have their own property.
        prop_assume!(ip.to_ipv4_mapped().is_none());
        let reaches = cidr_reaches(&IpNet::V6(net), IpAddr::V6(ip));
        let s = World::example(vec![grant(1, "alice", &net.to_string(), "udp", "all")]).compile();
        let d = decide(&req("alice", Udp, Destination::Address(IpAddr::V6(ip)), 53), &s, at(5));
        prop_assert_eq!(d.is_allowed(), reaches, "{} in {}", ip, net);
        prop_assert!(contained || !d.is_allowed(), "{} outside {} allowed", ip, net);
    }

    #[test]
    fn cidrs_never_cross_families(
        (v4, len4) in (any::<u32>(), 0u8..=32),
        (v6, len6) in (any::<u128>(), 0u8..=128),
        probe6 in any::<u128>(),
        probe4 in any::<u32>(),
        mapped in any::<bool>(),
    ) {
        let net4 = Ipv4Net::new(Ipv4Addr::from(v4), len4).unwrap().trunc().to_string();
        let net6 = Ipv6Net::new(Ipv6Addr::from(v6), len6).unwrap().trunc().to_string();
        let probe6 = Ipv6Addr::from(probe6);
        prop_assume!(probe6.to_ipv4_mapped().is_none());
        let probe4 = Ipv4Addr::from(probe4);
        let s = World::example(vec![
            grant(1, "alice", &net4, "tcp,icmp", "all"),
            grant(2, "bob", &net6, "tcp,icmp", "all"),
        ])
        .compile();
        // alice holds only IPv4: no IPv6 address reaches anything.
        let r = req("alice", Tcp, Destination::Address(IpAddr::V6(probe6)), 22);
        prop_assert!(!decide(&r, &s, at(5)).is_allowed());
        // bob holds only IPv6: no IPv4 address, plain or v4-mapped, reaches anything.
        let dest = if mapped { IpAddr::V6(probe4.to_ipv6_mapped()) } else { IpAddr::V4(probe4) };
        let r = req("bob", Icmp, Destination::Address(dest), 0);
        prop_assert!(!decide(&r, &s, at(5)).is_allowed());
    }

    #[test]
    fn ports_allow_iff_in_a_range_and_icmp_ignores_them(
        ranges in prop::collection::vec((1u16..=65535, 0u16..2000), 1..5),
        pick in 0usize..5,
        any_port in any::<u16>(),
        proto in protocol(),
    ) {
        let ranges: Vec<(u16, u16)> =
            ranges.into_iter().map(|(a, n)| (a, a.saturating_add(n))).collect();
        let spec: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
        let spec = spec.join(",");
        // The edges of the first range, or any port.
        let (a, b) = ranges[0];
        let port = [a - 1, a, b, b.saturating_add(1), any_port][pick];
        let in_a_range = ranges.iter().any(|(a, b)| *a <= port && port <= *b);
        let g = grant(1, "alice", "db-1", "ssh,ssh-proxy,tcp,udp,icmp", &spec);
        let s = World::example(vec![g]).compile();
        let r = with_login(req("alice", proto, to("db-1"), port), "root");
        let d = decide(&r, &s, at(5));
        if proto == Icmp || in_a_range {
            prop_assert!(d.is_allowed(), "{proto} port {port} in {spec}: {d:?}");
        } else {
            prop_assert_eq!(denied(d), Denial::PortNotGranted, "{} {} in {}", proto, port, spec);
        }
    }

    #[test]
    fn recheck_fails_after_each_kind_of_revocation(
        mut w in arb_world(4),
        r in arb_request(),
        key in any::<bool>(),
        via_group in any::<bool>(),
        change in 0usize..7,
    ) {
        // alice, active, in ops, holding key 0, with a grant for exactly this request.
        let mut r = grantable(r);
        r.user = name("alice");
        r.credential = match key {
            true => Credential::Key(fp(0)),
            false => Credential::Certificate { serial: 9 },
        };
        *w.user_mut("alice") = user("alice", &["ops"]);
        w.keys.push((name("alice"), fp(0)));
        let mut g = grant_for(100, &r);
        if via_group {
            g.subject = "@ops".parse().unwrap();
        }
        w.grants.push(g);
        let s = w.compile();
        let a = allowed(decide(&r, &s, at(5)));
        prop_assert_eq!(s.recheck(&a, at(5)), Ok(()));
        let id = a.grant();
        let by_group =
            w.grants.iter().any(|g| g.id == id && matches!(g.subject, Subject::Group(_)));
        let mut changed = w.clone();
        let (now, want) = match change {
            0 => {
                let g = changed.grants.iter_mut().find(|g| g.id == id).unwrap();
                *g = revoked(g.clone());
                (at(5), Err(Denial::Revoked(id)))
            }
            1 => {
                changed.user_mut("alice").state = UserState::Disabled;
                (at(5), Err(Denial::UserDisabled))
            }
            2 => {
                changed.keys.retain(|(u, _)| u.as_str() != "alice");
                (at(5), if key { Err(Denial::KeyNotRegistered) } else { Ok(()) })
            }
            3 => (a.expires_at(), Err(Denial::Expired(id))),
            4 => (just_before(a.expires_at()), Ok(())),
            5 => {
                changed.users.retain(|u| u.name.as_str() != "alice");
                (at(5), Err(Denial::UnknownUser))
            }
            _ => {
                changed.user_mut("alice").groups.clear();
                (at(5), if by_group { Err(Denial::Revoked(id)) } else { Ok(()) })
            }
        };
        prop_assert_eq!(changed.compile().recheck(&a, now), want);
    }

    #[test]
    fn latest_expiry_among_matching_grants_wins(
        windows in prop::collection::vec((0i64..5, 6i64..1000), 1..6),
        decoys in prop::collection::vec(1000i64..5000, 0..3),
    ) {
        let mut grants = Vec::new();
        for (i, (nb, exp)) in windows.iter().enumerate() {
            let object = if i % 2 == 0 { "db-1" } else { "10.0.12.0/24" };
            let subject = if i % 3 == 0 { "@ops" } else { "alice" };
            let g = grant(i as u64, subject, object, "ssh,tcp", "22");
            grants.push(window(g, at(*nb), at(*exp)));
        }
        // Later-expiring grants that do not match: wrong port, not started, another user,
        // revoked.
        for (j, exp) in decoys.iter().enumerate() {
            let j = 100 + 4 * j as u64;
            let exp = at(*exp);
            grants.push(window(grant(j, "alice", "db-1", "ssh", "2222"), at(0), exp));
            grants.push(window(grant(j + 1, "alice", "db-1", "ssh", "22"), at(6), exp));
            grants.push(window(grant(j + 2, "bob", "db-1", "ssh", "22"), at(0), exp));
            grants.push(revoked(window(grant(j + 3, "alice", "db-1", "ssh", "22"), at(0), exp)));
        }
        let latest = windows.iter().map(|(_, e)| *e).max().unwrap();
        let s = World::example(grants).compile();
        let a = allowed(decide(&req("alice", Ssh, to("db-1"), 22), &s, at(5)));
        prop_assert_eq!(a.expires_at(), at(latest));
        let mut latest_ids = (0..windows.len()).filter(|k| windows[*k].1 == latest);
        prop_assert!(latest_ids.any(|k| gid(k as u64) == a.grant()), "chose {}", a.grant());
    }

    #[test]
    fn next_transition_is_the_earliest_later_boundary(w in arb_world(8), now in arb_now()) {
        let s = w.compile();
        let compiled = |g: &&Grant| {
            let object = match &g.object {
                GrantObject::Target(t) => w.targets.iter().any(|x| &x.name == t),
                GrantObject::Cidr(_) => true,
            };
            let subject = match &g.subject {
                Subject::User(u) => w.users.iter().any(|x| &x.name == u),
                Subject::Group(gr) => w.users.iter().any(|x| x.groups.contains(gr)),
            };
            g.revoked.is_none() && object && subject
        };
        let bounds = w.grants.iter().filter(compiled).flat_map(|g| [g.not_before, g.expires_at]);
        let next = s.next_transition_after(now);
        prop_assert_eq!(next, bounds.filter(|t| *t > now).min());
        // Nothing changes before it.
        let until = next.map_or(at(30), just_before);
        for u in &w.users {
            prop_assert_eq!(s.active_grants(&u.name, now), s.active_grants(&u.name, until));
        }
    }
}
