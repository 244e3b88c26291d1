//! Filter examples, and properties against [`reference`], a literal reading of the rules over
//! the store rows (users, targets, grants) rather than the compiled snapshot.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::*;
use crate::model::{Grant, Role, Target, User, UserState};
use crate::vpn::packet::{Echo, IcmpInfo, TcpFlags, TcpInfo, UdpInfo};

mod examples;
mod props;
mod reference;

/// 2026-01-01T00:00:00Z.
const BASE_MS: i64 = 1_767_225_600_000;

fn at(s: i64) -> Timestamp {
    Timestamp::from_millis(BASE_MS + s * 1000)
}

fn name(s: &str) -> UserName {
    s.parse().unwrap()
}

fn user(name: &str, groups: &[&str], state: UserState) -> User {
    User {
        name: name.parse().unwrap(),
        roles: BTreeSet::from([Role::Engineer]),
        groups: groups.iter().map(|g| g.parse().unwrap()).collect(),
        state,
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

fn gid(i: u64) -> GrantId {
    format!("00000000-0000-4000-8000-{i:012x}").parse().unwrap()
}

/// Grant `i` over `[at(0), at(3600))`.
fn grant(i: u64, subject: &str, object: &str, protocols: &str, ports: &str) -> Grant {
    let protocols: ProtocolSet = protocols.parse().unwrap();
    Grant {
        id: gid(i),
        subject: subject.parse().unwrap(),
        object: object.parse().unwrap(),
        protocols,
        ports: ports.parse().unwrap(),
        logins: match protocols.contains(Protocol::SshProxy) {
            true => BTreeSet::from(["root".parse().unwrap()]),
            false => BTreeSet::new(),
        },
        options: Default::default(),
        not_before: at(0),
        expires_at: at(3600),
        reason: "INC-7 vpn".parse().unwrap(),
        granted_by: name("root.admin"),
        created_at: at(-60),
        revoked: None,
    }
}

#[derive(Clone, Debug, Default)]
struct World {
    users: Vec<User>,
    targets: Vec<Target>,
    grants: Vec<Grant>,
}

impl World {
    /// alice (ops), bob (dev), carol (ops, disabled); targets with v4, v6, mapped and DNS hosts.
    fn example(grants: Vec<Grant>) -> Self {
        World {
            users: vec![
                user("alice", &["ops"], UserState::Active),
                user("bob", &["dev"], UserState::Active),
                user("carol", &["ops"], UserState::Disabled),
            ],
            targets: vec![
                target("db-1", "10.0.12.7:5432"),
                target("v6-1", "[2001:db8::7]:22"),
                target("mapped-1", "[::ffff:10.0.14.9]:22"),
                target("dns-1", "db.internal:5432"),
                target("meta-1", "169.254.169.254:80"),
            ],
            grants,
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::compile(1, &self.users, &[], &self.targets, &self.grants)
    }

    fn filter(&self, user: &str, now: Timestamp) -> UserFilter {
        UserFilter::compile(&self.snapshot(), &name(user), now)
    }
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(port: u16) -> Transport {
    Transport::Tcp(TcpInfo {
        src_port: 40000,
        dst_port: port,
        seq: 1,
        ack: 0,
        flags: TcpFlags(TcpFlags::SYN),
        header_len: 20,
    })
}

fn udp(port: u16) -> Transport {
    Transport::Udp(UdpInfo {
        src_port: 40000,
        dst_port: port,
    })
}

fn ping() -> Transport {
    Transport::Icmp(IcmpInfo {
        icmp_type: 8,
        code: 0,
        echo: Some(Echo {
            request: true,
            id: 1,
            seq: 1,
        }),
        quoted: None,
    })
}
