//! Example and property tests for [`decide`], [`Snapshot::recheck`] and the snapshot queries.
//!
//! The examples pin one rule each. The properties check the same rules over random worlds, and
//! one of them (`decide_agrees_with_the_spec`) compares every decision with [`reference`], a
//! deliberately naive reading of the rules over the uncompiled store rows.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use Protocol::{Icmp, Ssh, SshProxy, Tcp, Udp};

use super::*;
use crate::model::{
    Fingerprint, Grant, GrantId, GrantObject, Host, PortSpec, Protocol, ProtocolSet, Role, Subject,
    Target, TargetName, User, UserName, UserState,
};
use crate::time::Timestamp;

// ---------------------------------------------------------------------------------------------
// Builders

/// 2026-01-01T00:00:00Z.
const BASE_MS: i64 = 1_767_225_600_000;

/// `s` seconds after [`BASE_MS`].
fn at(s: i64) -> Timestamp {
    Timestamp::from_millis(BASE_MS + s * 1000)
}

/// One millisecond before `t`.
fn just_before(t: Timestamp) -> Timestamp {
    Timestamp::from_millis(t.as_millis() - 1)
}

fn name(s: &str) -> UserName {
    s.parse().unwrap()
}

fn user(name: &str, groups: &[&str]) -> User {
    User {
        name: name.parse().unwrap(),
        roles: BTreeSet::from([Role::Engineer]),
        groups: groups.iter().map(|g| g.parse().unwrap()).collect(),
        state: UserState::Active,
        created_at: at(-86_400),
    }
}

fn target(name: &str, address: &str) -> Target {
    Target {
        name: name.parse().unwrap(),
        address: address.parse().unwrap(),
        host_key: None,
        created_at: at(-86_400),
    }
}

fn fp(i: usize) -> Fingerprint {
    Fingerprint::try_from(format!("SHA256:{i:0>43}")).unwrap()
}

fn gid(i: u64) -> GrantId {
    format!("00000000-0000-4000-8000-{i:012x}").parse().unwrap()
}

/// Grant `i` for `subject` on `object`, in force over `[at(0), at(3600))`, with the login
/// `root` when the protocols include `ssh-proxy` (as [`Grant::check`] demands).
fn grant(i: u64, subject: &str, object: &str, protocols: &str, ports: &str) -> Grant {
    let protocols: ProtocolSet = protocols.parse().unwrap();
    let logins = match protocols.contains(SshProxy) {
        true => BTreeSet::from(["root".parse().unwrap()]),
        false => BTreeSet::new(),
    };
    Grant {
        id: gid(i),
        subject: subject.parse().unwrap(),
        object: object.parse().unwrap(),
        protocols,
        ports: ports.parse().unwrap(),
        logins,
        options: Default::default(),
        not_before: at(0),
        expires_at: at(3600),
        reason: "INC-42 database migration".parse().unwrap(),
        granted_by: name("root.admin"),
        created_at: at(-60),
        revoked: None,
    }
}

fn revoked(mut g: Grant) -> Grant {
    g.revoked = Some((at(-1), name("root.admin")));
    g
}

fn window(mut g: Grant, not_before: Timestamp, expires_at: Timestamp) -> Grant {
    g.not_before = not_before;
    g.expires_at = expires_at;
    g
}

fn logins(mut g: Grant, logins: &[&str]) -> Grant {
    g.logins = logins.iter().map(|l| l.parse().unwrap()).collect();
    g
}

/// The store rows a snapshot is compiled from.
#[derive(Clone, Debug, Default)]
struct World {
    users: Vec<User>,
    keys: Vec<(UserName, Fingerprint)>,
    targets: Vec<Target>,
    grants: Vec<Grant>,
}

impl World {
    /// alice (ops, key 1), bob (dev, key 2), carol (ops, disabled, key 3), five targets.
    fn example(grants: Vec<Grant>) -> Self {
        let mut carol = user("carol", &["ops"]);
        carol.state = UserState::Disabled;
        World {
            users: vec![user("alice", &["ops"]), user("bob", &["dev"]), carol],
            keys: vec![
                (name("alice"), fp(1)),
                (name("bob"), fp(2)),
                (name("carol"), fp(3)),
            ],
            targets: vec![
                target("db-1", "10.0.12.7:22"),
                target("web-1", "10.0.13.5:443"),
                target("v6-1", "[2001:db8::7]:22"),
                target("dns-1", "db.internal:5432"),
                target("mapped-1", "[::ffff:10.0.14.9]:22"),
            ],
            grants,
        }
    }

    fn compile(&self) -> Snapshot {
        Snapshot::compile(7, &self.users, &self.keys, &self.targets, &self.grants)
    }

    fn user_mut(&mut self, name: &str) -> &mut User {
        self.users
            .iter_mut()
            .find(|u| u.name.as_str() == name)
            .unwrap()
    }
}

fn to(name: &str) -> Destination {
    Destination::Target(name.parse().unwrap())
}

fn addr(ip: &str) -> Destination {
    Destination::Address(ip.parse().unwrap())
}

/// `user` asks, with a certificate, for `destination` over `protocol` on `port`.
fn req(user: &str, protocol: Protocol, destination: Destination, port: u16) -> Request {
    Request {
        user: name(user),
        credential: Credential::Certificate { serial: 7 },
        protocol,
        destination,
        port,
        login: None,
    }
}

fn with_key(mut r: Request, i: usize) -> Request {
    r.credential = Credential::Key(fp(i));
    r
}

fn with_login(mut r: Request, login: &str) -> Request {
    r.login = Some(login.parse().unwrap());
    r
}

/// The grant that allows `r` at `at(10)`, inside the default window, or why not.
fn ask(s: &Snapshot, r: &Request) -> Result<GrantId, Denial> {
    decide(r, s, at(10)).into_result().map(|a| a.grant())
}

/// `verdict!(snapshot, request => expected)`: asserts what [`ask`] answers.
macro_rules! verdict {
    ($s:expr, $r:expr => $want:expr) => {
        verdict!($s, $r => $want, "")
    };
    ($s:expr, $r:expr => $want:expr, $($msg:tt)+) => {{
        let r = &$r;
        assert_eq!(ask(&$s, r), $want, "{r:?} {}", format_args!($($msg)+));
    }};
}

fn allowed(d: Decision) -> Allowed {
    d.into_result().unwrap()
}

/// The allowance for `r` at `at(10)`; fails the test if it is denied.
fn allow(s: &Snapshot, r: Request) -> Allowed {
    allowed(decide(&r, s, at(10)))
}

fn denied(d: Decision) -> Denial {
    match d {
        Decision::Allow(a) => panic!("expected Deny, got Allow under {}", a.grant()),
        Decision::Deny(why) => why,
    }
}

mod examples;
mod props;
mod reference;
mod strategies;
