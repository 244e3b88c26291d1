//! Properties over random worlds: the compiled filter answers as the reference does.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::reference::*;
use super::*;

const NETS: [&str; 16] = [
    "10.0.12.0/24",
    "10.0.12.128/25",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "0.0.0.0/1",
    "169.254.0.0/16",
    "169.254.169.254/32",
    "127.0.0.0/8",
    "224.0.0.0/3",
    "255.255.255.255/32",
    "::/0",
    "2001:db8::/32",
    "fe80::/10",
    "fd00:ec2::/32",
    "::/127",
    "10.0.14.9/32",
];

const TARGETS: [&str; 5] = ["db-1", "v6-1", "mapped-1", "dns-1", "meta-1"];

const ADDRESSES: [&str; 14] = [
    "10.0.12.7",
    "10.0.12.200",
    "10.0.14.9",
    "10.200.1.1",
    "169.254.169.254",
    "127.0.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "2001:db8::7",
    "fe80::1",
    "fd00:ec2::254",
    "::1",
    "::",
];

fn arb_object() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(NETS.to_vec()).prop_map(str::to_owned),
        2 => prop::sample::select(TARGETS.to_vec()).prop_map(str::to_owned),
        1 => (any::<u32>(), 8u8..=32).prop_map(|(a, l)| {
            ipnet::Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc().to_string()
        }),
        1 => (any::<u128>(), 16u8..=128).prop_map(|(a, l)| {
            ipnet::Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc().to_string()
        }),
    ]
}

fn arb_grant(i: u64) -> impl Strategy<Value = Grant> {
    let subjects = vec!["alice", "bob", "carol", "@ops", "@dev"];
    let ports = vec![
        "22",
        "443",
        "53,123",
        "8000-8100",
        "all",
        "22,53,123,443,9999",
    ];
    (
        prop::sample::select(subjects),
        arb_object(),
        1u8..32,
        prop::sample::select(ports),
        -100i64..100,
        1i64..200,
        0u8..8,
    )
        .prop_map(move |(subject, object, bits, ports, nb, len, rev)| {
            let protocols: Vec<&str> = ["ssh", "ssh-proxy", "tcp", "udp", "icmp"]
                .iter()
                .enumerate()
                .filter(|(k, _)| bits & (1 << k) != 0)
                .map(|(_, p)| *p)
                .collect();
            let mut g = grant(i, subject, &object, &protocols.join(","), ports);
            g.not_before = at(nb);
            g.expires_at = at(nb + len);
            if rev == 0 {
                g.revoked = Some((at(-1), name("root.admin")));
            }
            g
        })
}

fn arb_world() -> impl Strategy<Value = World> {
    (0usize..10)
        .prop_flat_map(|n| (0..n as u64).map(arb_grant).collect::<Vec<_>>())
        .prop_map(World::example)
}

fn arb_dst() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        3 => (prop::sample::select(ADDRESSES.to_vec()), 0u8..4).prop_map(|(a, off)| {
            match addr(a) {
                IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(u32::from(v).wrapping_add(off.into()))),
                IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(u128::from(v).wrapping_add(off.into()))),
            }
        }),
        1 => any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        1 => any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn arb_transport() -> impl Strategy<Value = Transport> {
    let port = prop::sample::select(vec![22u16, 53, 123, 443, 8050, 9999]);
    prop_oneof![
        port.clone().prop_map(tcp),
        port.prop_map(udp),
        Just(ping()),
        prop::sample::select(vec![1u8, 6, 17, 47, 58])
            .prop_map(|protocol| Transport::Fragment { protocol }),
        Just(Transport::Other { protocol: 47 }),
    ]
}

fn arb_user() -> impl Strategy<Value = UserName> {
    prop::sample::select(vec!["alice", "bob", "carol", "mallory"]).prop_map(name)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn filter_agrees_with_the_reference(
        w in arb_world(),
        user in arb_user(),
        now in (-50i64..250).prop_map(at),
        probes in prop::collection::vec((arb_dst(), arb_transport()), 1..16),
    ) {
        let f = UserFilter::compile(&w.snapshot(), &user, now);
        for (dst, t) in &probes {
            match (reference(&w, &user, now, *dst, t), f.check(*dst, t)) {
                (Expected::Allow(ids), Ok(id)) => {
                    prop_assert!(ids.contains(&id), "{id} not among {ids:?}");
                }
                (Expected::Deny(want), Err(got)) => prop_assert_eq!(want, got, "{} {}", dst, t),
                (want, got) => prop_assert!(false, "{dst} {t}: expected {want:?}, got {got:?}"),
            }
        }
        prop_assert_eq!(f.valid_until(), next_change(&w, &user, now));
    }

    #[test]
    fn allowed_ips_cover_exactly_the_granted_networks(
        w in arb_world(),
        user in arb_user(),
        now in (-50i64..250).prop_map(at),
        probes in prop::collection::vec(arb_dst(), 1..32),
    ) {
        let f = UserFilter::compile(&w.snapshot(), &user, now);
        let ips = f.allowed_ips();
        let granted: Vec<IpNet> = match w.users.iter().find(|u| u.name == user) {
            Some(u) if u.state == UserState::Active => {
                vpn_grants(&w, u, now).into_iter().map(|(_, n, _)| n).collect()
            }
            _ => Vec::new(),
        };
        for dst in probes.iter().copied().chain(granted.iter().map(|n| n.network())) {
            let in_allowed = ips.iter().any(|n| inside(n, dst));
            let in_granted = granted.iter().any(|n| inside(n, dst));
            prop_assert_eq!(in_allowed, in_granted, "{}", dst);
            if f.check(dst, &ping()).is_ok() || f.check(dst, &tcp(443)).is_ok() {
                prop_assert!(in_allowed);
            }
        }
        // Minimal: no prefix inside another, and no two that merge into their parent.
        for (i, a) in ips.iter().enumerate() {
            for b in ips.iter().skip(i + 1) {
                prop_assert!(!a.contains(b) && !b.contains(a), "{a} and {b} overlap");
                let merged = a.supernet().is_some_and(|p| Some(p) == b.supernet());
                prop_assert!(!merged, "{a} and {b} should be merged");
            }
        }
    }
}
