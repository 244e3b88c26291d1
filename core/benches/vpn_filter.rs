//! How long the VPN filter takes to judge one packet with 10,000 users × 10 grants loaded, and
//! how long the packet parser and the flow table take per packet.
//!
//! Every user holds 10 VPN grants: 7 of their own (3 on CIDRs, 3 on targets with IP
//! addresses, 1 on an IPv6 network) and 3 through the one team they belong to. The driver keeps
//! one compiled `UserFilter` per user (looked up by the device's address); all 10,000 are
//! compiled and loaded here. The goal is a decision within 100 ns.
//!
//! ```text
//! cargo bench -p sallyport-core --bench vpn_filter -- --warm-up-time 1 --measurement-time 3
//! ```

// A benchmark's fixtures are fixed data: an unwrap that fires is a broken fixture.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeSet, HashMap};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sallyport_core::model::{Grant, GrantId, Role, Target, User, UserName, UserState};
use sallyport_core::policy::Snapshot;
use sallyport_core::time::Timestamp;
use sallyport_core::vpn::filter::{FlowDenial, UserFilter};
use sallyport_core::vpn::flow::{FlowConfig, FlowTable};
use sallyport_core::vpn::packet::{parse, Transport};

const USERS: usize = 10_000;
const TEAMS: usize = 100;
const TARGETS: usize = 2_000;
const HOUR: Duration = Duration::from_secs(3600);

fn user_name(i: usize) -> String {
    format!("user{i:05}")
}

fn team_name(t: usize) -> String {
    format!("team-{t:03}")
}

fn target_name(t: usize) -> String {
    format!("host-{t}.prod")
}

fn target_ip(t: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 30 + (t / 250 % 8) as u8, (t % 250) as u8, 10)
}

fn device_address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        100,
        64 + (i >> 16) as u8,
        (i >> 8) as u8,
        i as u8,
    ))
}

fn grant_id(n: usize) -> GrantId {
    format!("00000000-0000-4000-8000-{n:012x}").parse().unwrap()
}

struct Fixture {
    users: Vec<User>,
    targets: Vec<Target>,
    grants: Vec<Grant>,
    now: Timestamp,
}

fn fixture() -> Fixture {
    let now: Timestamp = "2026-11-28T10:00:00Z".parse().unwrap();
    let users: Vec<User> = (0..USERS)
        .map(|i| User {
            name: user_name(i).parse().unwrap(),
            roles: BTreeSet::from([Role::Engineer]),
            groups: BTreeSet::from([team_name(i % TEAMS).parse().unwrap()]),
            state: UserState::Active,
            created_at: now.saturating_sub(1000 * HOUR),
        })
        .collect();
    let targets: Vec<Target> = (0..TARGETS)
        .map(|t| Target {
            name: target_name(t).parse().unwrap(),
            address: format!("{}:22", target_ip(t)).parse().unwrap(),
            host_key: None,
            created_at: now.saturating_sub(1000 * HOUR),
        })
        .collect();
    let mut grants = Vec::new();
    let mut push = |subject: String, object: String, protocols: &str, ports: &str, days: u32| {
        let n = grants.len() + 1;
        grants.push(Grant {
            id: grant_id(n),
            subject: subject.parse().unwrap(),
            object: object.parse().unwrap(),
            protocols: protocols.parse().unwrap(),
            ports: ports.parse().unwrap(),
            logins: BTreeSet::new(),
            options: Default::default(),
            not_before: now.saturating_sub(HOUR),
            expires_at: now.saturating_add(24 * HOUR * days),
            reason: format!("INC-{n} vpn access").parse().unwrap(),
            granted_by: "root.admin".parse().unwrap(),
            created_at: now.saturating_sub(2 * HOUR),
            revoked: None,
        });
    };
    for i in 0..USERS {
        let u = user_name(i);
        let days = 1 + (i % 30) as u32;
        let t = |k: usize| target_name((i * 7 + k * 13) % TARGETS);
        push(
            u.clone(),
            format!("10.16.{}.0/24", i % 256),
            "tcp,udp,icmp",
            "443,8443",
            days,
        );
        push(
            u.clone(),
            format!("10.17.{}.0/24", (i * 3) % 256),
            "tcp",
            "8000-8100",
            days + 3,
        );
        push(
            u.clone(),
            format!("10.18.{}.0/28", (i * 5) % 256),
            "udp",
            "53,123",
            days,
        );
        push(u.clone(), t(0), "tcp", "22", days);
        push(u.clone(), t(1), "tcp,icmp", "5432", days + 1);
        push(u.clone(), t(2), "tcp", "80,443", days + 2);
        push(u, format!("fd10:{:x}::/64", i), "tcp,udp", "443", days);
    }
    for team in 0..TEAMS {
        let g = format!("@{}", team_name(team));
        push(
            g.clone(),
            format!("10.19.{team}.0/24"),
            "tcp,icmp",
            "22,443",
            90,
        );
        push(
            g.clone(),
            format!("10.20.{}.0/22", team * 4 % 256),
            "tcp",
            "9100",
            90,
        );
        push(g, target_name(TARGETS - 1 - team), "tcp", "3306", 90);
    }
    Fixture {
        users,
        targets,
        grants,
        now,
    }
}

fn packet(dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 100, 64, 16, 146];
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    p
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    assert_eq!(f.grants.len(), USERS * 7 + TEAMS * 3);
    let snapshot = Snapshot::compile(1, &f.users, &[], &f.targets, &f.grants);
    let names: Vec<UserName> = (0..USERS).map(|i| user_name(i).parse().unwrap()).collect();
    let filters: HashMap<IpAddr, Arc<UserFilter>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let filter = UserFilter::compile(&snapshot, n, f.now);
            (device_address(i), Arc::new(filter))
        })
        .collect();
    let by_index: Vec<Arc<UserFilter>> = (0..USERS)
        .map(|i| filters[&device_address(i)].clone())
        .collect();

    let who = 4242;
    let filter = &by_index[who];
    assert_eq!(filter.grant_count(), 10);
    let parse_dst = |dst: Ipv4Addr, port: u16| {
        let bytes = packet(dst, port);
        parse(&bytes).unwrap()
    };
    // Allowed by the first-listed rule (latest expiry), by a target address, and denials.
    let allowed = parse_dst(Ipv4Addr::new(10, 19, (who % TEAMS) as u8, 7), 443);
    let by_target = parse_dst(target_ip((who * 7) % TARGETS), 22);
    let no_grant = parse_dst(Ipv4Addr::new(10, 99, 1, 1), 443);
    let bad_port = parse_dst(Ipv4Addr::new(10, 16, (who % 256) as u8, 9), 22);
    assert!(filter.check(allowed.dst, &allowed.transport).is_ok());
    assert!(filter.check(by_target.dst, &by_target.transport).is_ok());
    assert_eq!(
        filter.check(no_grant.dst, &no_grant.transport),
        Err(FlowDenial::NoGrantForDestination)
    );
    assert_eq!(
        filter.check(bad_port.dst, &bad_port.transport),
        Err(FlowDenial::PortNotGranted)
    );
    // Per-user probes that each user's own filter allows (through a CIDR grant).
    let probes: Vec<(IpAddr, Transport)> = (0..USERS)
        .map(|i| {
            let p = parse_dst(Ipv4Addr::new(10, 17, ((i * 3) % 256) as u8, 42), 8080);
            assert!(by_index[i].check(p.dst, &p.transport).is_ok());
            (p.dst, p.transport)
        })
        .collect();

    let mut g = c.benchmark_group("vpn filter 10k users x 10 grants");
    g.bench_function("check allowed (team CIDR, tcp 443)", |b| {
        b.iter(|| black_box(filter).check(black_box(allowed.dst), black_box(&allowed.transport)))
    });
    g.bench_function("check allowed (target address, tcp 22)", |b| {
        b.iter(|| {
            black_box(filter).check(black_box(by_target.dst), black_box(&by_target.transport))
        })
    });
    g.bench_function("check denied (no grant for destination)", |b| {
        b.iter(|| black_box(filter).check(black_box(no_grant.dst), black_box(&no_grant.transport)))
    });
    g.bench_function("check denied (port not granted)", |b| {
        b.iter(|| black_box(filter).check(black_box(bad_port.dst), black_box(&bad_port.transport)))
    });
    let mut i = 0usize;
    g.bench_function("device lookup + check, a different user each time", |b| {
        b.iter(|| {
            i = (i + 7919) % USERS;
            let f = &filters[&device_address(i)];
            let (dst, t) = &probes[i];
            f.check(black_box(*dst), black_box(t))
        })
    });
    let mut j = 0usize;
    g.bench_function(
        "check, a different user each time (filters in a Vec)",
        |b| {
            b.iter(|| {
                j = (j + 7919) % USERS;
                let (dst, t) = &probes[j];
                by_index[j].check(black_box(*dst), black_box(t))
            })
        },
    );
    let bytes = packet(Ipv4Addr::new(10, 19, 42, 7), 443);
    g.bench_function("parse (IPv4 TCP SYN)", |b| {
        b.iter(|| parse(black_box(&bytes)))
    });
    let mut table = FlowTable::new(FlowConfig::default());
    let grant = filter.check(allowed.dst, &allowed.transport).unwrap();
    table.outbound(&allowed, grant, f.now);
    g.bench_function("flow table outbound (existing flow)", |b| {
        b.iter(|| table.outbound(black_box(&allowed), grant, f.now))
    });
    g.finish();

    let mut g = c.benchmark_group("vpn filter compile");
    g.bench_function("compile one user (10 grants)", |b| {
        b.iter(|| UserFilter::compile(black_box(&snapshot), black_box(&names[who]), f.now))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
