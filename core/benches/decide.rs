//! How long one policy decision takes against a large snapshot, and how long compiling that
//! snapshot takes.
//!
//! The snapshot holds 10,000 users with 10 grants each: 7 of their own (4 on named targets,
//! 3 on CIDRs) and 3 through the one team they belong to; 1 in 100 users is disabled. The
//! goal is a decision in well under a microsecond.
//!
//! ```text
//! cargo bench -p sallyport-core --bench decide -- --warm-up-time 1 --measurement-time 3
//! ```

// A benchmark's fixtures are fixed data: an unwrap that fires is a broken fixture.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sallyport_core::model::{
    Fingerprint, Grant, GrantId, Login, Protocol, Role, Target, User, UserName, UserState,
};
use sallyport_core::policy::{decide, Credential, Destination, Request, Snapshot};
use sallyport_core::time::Timestamp;

const USERS: usize = 10_000;
const TEAMS: usize = 100;
const TARGETS: usize = 2_000;
const HOUR: Duration = Duration::from_secs(3600);

const FIRST: [&str; 25] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "ken",
    "laura", "mallory", "nina", "oscar", "peggy", "quinn", "rupert", "sybil", "trent", "ursula",
    "victor", "walter", "xena", "yusuf",
];
const LAST: [&str; 20] = [
    "smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "anderson", "thomas",
    "moore", "martin", "lee", "perez", "white", "harris", "clark", "lewis", "walker", "hall",
    "young",
];
const AREAS: [&str; 10] = [
    "payments", "search", "infra", "data", "mobile", "identity", "billing", "ledger", "growth",
    "platform",
];
const ENVS: [&str; 3] = ["prod", "staging", "dev"];
const ROLES: [&str; 5] = ["db", "web", "cache", "queue", "batch"];

/// `alice.smith`, `bob.jones`, … then `alice.smith1`, … for 10,000 distinct names.
fn user_name(i: usize) -> String {
    let base = format!(
        "{}.{}",
        FIRST[i % FIRST.len()],
        LAST[(i / FIRST.len()) % LAST.len()]
    );
    match i / (FIRST.len() * LAST.len()) {
        0 => base,
        n => format!("{base}{n}"),
    }
}

fn team_name(t: usize) -> String {
    format!("team-{}-{}", AREAS[t % AREAS.len()], t / AREAS.len())
}

/// `db-17.prod`, `web-3.staging`, …
fn target_name(t: usize) -> String {
    format!(
        "{}-{}.{}",
        ROLES[t % ROLES.len()],
        t / ROLES.len(),
        ENVS[t % ENVS.len()]
    )
}

/// `10.<env>.<n>.<m>`; the CIDR grants below cover some of these subnets.
fn target_address(t: usize) -> String {
    let port = if t % ROLES.len() == 0 { 5432 } else { 22 };
    format!(
        "10.{}.{}.{}:{port}",
        16 + t % ENVS.len(),
        (t / 250) % 256,
        1 + t % 250
    )
}

fn fingerprint(user: usize, k: usize) -> Fingerprint {
    Fingerprint::try_from(format!("SHA256:{:0>43}", user * 2 + k)).unwrap()
}

fn grant_id(n: usize) -> GrantId {
    format!("00000000-0000-4000-8000-{n:012x}").parse().unwrap()
}

struct Fixture {
    users: Vec<User>,
    keys: Vec<(UserName, Fingerprint)>,
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
            state: if i % 100 == 99 {
                UserState::Disabled
            } else {
                UserState::Active
            },
            created_at: now.saturating_sub(1000 * HOUR),
        })
        .collect();
    let keys = users
        .iter()
        .enumerate()
        .flat_map(|(i, u)| (0..1 + i % 2).map(move |k| (u.name.clone(), fingerprint(i, k))))
        .collect();
    let targets: Vec<Target> = (0..TARGETS)
        .map(|t| Target {
            name: target_name(t).parse().unwrap(),
            address: target_address(t).parse().unwrap(),
            host_key: None,
            created_at: now.saturating_sub(1000 * HOUR),
        })
        .collect();

    let mut grants = Vec::with_capacity(USERS * 7 + TEAMS * 3);
    let mut next_id = 0;
    let mut push = |subject: String,
                    object: String,
                    protocols: &str,
                    ports: &str,
                    logins: &[&str],
                    days: u32| {
        next_id += 1;
        grants.push(Grant {
            id: grant_id(next_id),
            subject: subject.parse().unwrap(),
            object: object.parse().unwrap(),
            protocols: protocols.parse().unwrap(),
            ports: ports.parse().unwrap(),
            logins: logins.iter().map(|l| l.parse::<Login>().unwrap()).collect(),
            options: Default::default(),
            not_before: now.saturating_sub(HOUR),
            expires_at: now.saturating_add(24 * HOUR * days),
            reason: format!("INC-{next_id} on-call access").parse().unwrap(),
            granted_by: "root.admin".parse().unwrap(),
            created_at: now.saturating_sub(2 * HOUR),
            revoked: None,
        });
    };
    for (i, u) in users.iter().enumerate() {
        let name = u.name.to_string();
        let t = |k: usize| target_name((i * 7 + k * 13) % TARGETS);
        let days = 1 + (i % 30) as u32;
        push(name.clone(), t(0), "ssh", "22", &[], days);
        push(
            name.clone(),
            t(1),
            "ssh,ssh-proxy",
            "22",
            &["ubuntu", "ec2-user"],
            days + 1,
        );
        push(name.clone(), t(2), "tcp", "5432", &[], days + 2);
        push(name.clone(), t(3), "ssh,tcp,icmp", "22,80,443", &[], days);
        push(
            name.clone(),
            format!("10.16.{}.0/24", i % 256),
            "tcp,udp,icmp",
            "443,8443",
            &[],
            days,
        );
        push(
            name.clone(),
            format!("10.17.{}.0/24", (i * 3) % 256),
            "tcp",
            "8000-8100",
            &[],
            days + 3,
        );
        push(
            name,
            format!("10.18.{}.0/28", (i * 5) % 256),
            "udp",
            "53,123",
            &[],
            days,
        );
    }
    for team in 0..TEAMS {
        let group = format!("@{}", team_name(team));
        push(
            group.clone(),
            target_name(TARGETS - 1 - team),
            "ssh,ssh-proxy",
            "22",
            &["deploy"],
            90,
        );
        push(
            group.clone(),
            format!("10.19.{team}.0/24"),
            "tcp,icmp",
            "22,443",
            &[],
            90,
        );
        push(
            group,
            format!("10.20.{}.0/22", team * 4 % 256),
            "tcp",
            "9100",
            &[],
            90,
        );
    }
    Fixture {
        users,
        keys,
        targets,
        grants,
        now,
    }
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    assert_eq!(f.grants.len(), USERS * 7 + TEAMS * 3);
    let snapshot = Snapshot::compile(1, &f.users, &f.keys, &f.targets, &f.grants);
    // Every user sees exactly 10 grants.
    let probe: UserName = user_name(4242).parse().unwrap();
    assert_eq!(snapshot.active_grants(&probe, f.now).len(), 10);

    let who = 4242;
    let allowed = Request {
        user: probe.clone(),
        credential: Credential::Key(fingerprint(who, 0)),
        protocol: Protocol::SshProxy,
        destination: Destination::Target(target_name((who * 7 + 13) % TARGETS).parse().unwrap()),
        port: 22,
        login: Some("ubuntu".parse().unwrap()),
    };
    let allowed_by_cidr = Request {
        user: probe.clone(),
        credential: Credential::Certificate { serial: 77 },
        protocol: Protocol::Tcp,
        destination: Destination::Address(format!("10.17.{}.42", (who * 3) % 256).parse().unwrap()),
        port: 8080,
        login: None,
    };
    let no_grant = Request {
        destination: Destination::Target(target_name(1).parse().unwrap()),
        ..allowed.clone()
    };
    let disabled = Request {
        user: user_name(99).parse().unwrap(),
        credential: Credential::Key(fingerprint(99, 0)),
        ..allowed.clone()
    };
    let a = decide(&allowed, &snapshot, f.now).into_result().unwrap();
    assert!(decide(&allowed_by_cidr, &snapshot, f.now).is_allowed());
    assert_eq!(
        decide(&no_grant, &snapshot, f.now)
            .into_result()
            .unwrap_err()
            .code(),
        "no-grant"
    );
    assert_eq!(
        decide(&disabled, &snapshot, f.now)
            .into_result()
            .unwrap_err()
            .code(),
        "user-disabled"
    );

    let mut g = c.benchmark_group("decide 10k users x 10 grants");
    g.bench_function("allowed (target by name, ssh-proxy, key)", |b| {
        b.iter(|| decide(black_box(&allowed), black_box(&snapshot), black_box(f.now)))
    });
    g.bench_function("allowed (address in CIDR, tcp, certificate)", |b| {
        b.iter(|| {
            decide(
                black_box(&allowed_by_cidr),
                black_box(&snapshot),
                black_box(f.now),
            )
        })
    });
    g.bench_function("denied (no grant)", |b| {
        b.iter(|| decide(black_box(&no_grant), black_box(&snapshot), black_box(f.now)))
    });
    g.bench_function("denied (disabled user)", |b| {
        b.iter(|| decide(black_box(&disabled), black_box(&snapshot), black_box(f.now)))
    });
    g.bench_function("recheck (allowed, unchanged)", |b| {
        b.iter(|| snapshot.recheck(black_box(&a), black_box(f.now)))
    });
    g.finish();

    let mut g = c.benchmark_group("compile 10k users x 10 grants");
    g.sample_size(10);
    g.bench_function("compile", |b| {
        b.iter_with_large_drop(|| Snapshot::compile(2, &f.users, &f.keys, &f.targets, &f.grants))
    });
    g.bench_function("next_transition_after", |b| {
        b.iter(|| snapshot.next_transition_after(black_box(f.now)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
