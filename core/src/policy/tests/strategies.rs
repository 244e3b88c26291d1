//! Strategies: a small universe, so that random requests often meet random grants.

use super::reference::*;
use super::*;

// ---------------------------------------------------------------------------------------------
// Strategies: a small universe, so that random requests often meet random grants.

pub(super) const USERS: [&str; 3] = ["alice", "bob", "carol"];
pub(super) const GROUPS: [&str; 2] = ["ops", "dev"];
pub(super) const TARGETS: [(&str, &str); 5] = [
    ("db-1", "10.0.0.1:22"),
    ("imds-1", "169.254.169.254:80"),
    ("db-2", "[::ffff:10.0.0.2]:22"),
    ("v6-1", "[2001:db8::1]:22"),
    ("dns-1", "db.internal:5432"),
];
pub(super) const OBJECTS: [&str; 15] = [
    "db-1",
    "imds-1",
    "169.254.169.254/32",
    "127.0.0.0/8",
    "fe80::/10",
    "db-2",
    "v6-1",
    "dns-1",
    "gone-1",
    "10.0.0.0/24",
    "10.0.0.0/8",
    "10.0.0.1/32",
    "2001:db8::/32",
    "0.0.0.0/0",
    "::/0",
];
pub(super) const PORTS: [&str; 7] = ["all", "all", "22", "22-23", "443,8443", "1-1000", "5432"];
pub(super) const ADDRESSES: [&str; 16] = [
    "127.0.0.1",
    "169.254.169.254",
    "::ffff:169.254.169.254",
    "fd00:ec2::254",
    "::1",
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.200",
    "10.9.9.9",
    "192.168.1.1",
    "::ffff:10.0.0.1",
    "::ffff:10.0.0.2",
    "::ffff:192.168.1.1",
    "2001:db8::1",
    "2001:db8::99",
    "fe80::1",
];
pub(super) const REQUEST_PORTS: [u16; 8] = [22, 22, 23, 443, 5432, 8443, 1001, 65535];
pub(super) const LOGINS: [&str; 2] = ["root", "ubuntu"];

pub(super) fn protocol() -> impl Strategy<Value = Protocol> {
    prop::sample::select(Protocol::ALL.to_vec())
}

pub(super) fn arb_user(name: &'static str) -> impl Strategy<Value = User> {
    let groups = prop::sample::subsequence(GROUPS.to_vec(), 0..=2);
    (groups, prop::bool::weighted(0.9)).prop_map(move |(groups, active)| {
        let mut u = user(name, &groups);
        if !active {
            u.state = UserState::Disabled;
        }
        u
    })
}

/// A random grant; the world numbers them.
pub(super) fn arb_grant() -> impl Strategy<Value = Grant> {
    let subjects = USERS.iter().map(|u| (*u).to_owned());
    let subjects: Vec<String> = subjects
        .chain(GROUPS.iter().map(|g| format!("@{g}")))
        .collect();
    (
        prop::sample::select(subjects),
        prop::sample::select(OBJECTS.to_vec()),
        prop::sample::subsequence(Protocol::ALL.to_vec(), 1..=5),
        prop::sample::select(PORTS.to_vec()),
        prop::sample::subsequence(LOGINS.to_vec(), 0..=2),
        (0i64..10, 1i64..15),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(subject, object, protocols, ports, names, (nb, len), is_revoked)| {
                let mut g = logins(grant(0, &subject, object, "ssh", ports), &names);
                g.protocols = ProtocolSet::new(protocols).unwrap();
                g = window(g, at(nb), at(nb + len));
                match is_revoked {
                    true => revoked(g),
                    false => g,
                }
            },
        )
}

pub(super) fn arb_world(max_grants: usize) -> impl Strategy<Value = World> {
    let users = (arb_user(USERS[0]), arb_user(USERS[1]), arb_user(USERS[2]));
    // Key i belongs to user i / 2; each is registered with probability 0.8.
    let keys = prop::collection::vec(prop::bool::weighted(0.8), USERS.len() * 2);
    let grants = prop::collection::vec(arb_grant(), 0..=max_grants);
    (users, keys, grants).prop_map(|((a, b, c), keys, mut grants)| {
        for (i, g) in grants.iter_mut().enumerate() {
            g.id = gid(i as u64);
        }
        let keys = (0..keys.len()).filter(|i| keys[*i]);
        World {
            users: vec![a, b, c],
            keys: keys.map(|i| (name(USERS[i / 2]), fp(i))).collect(),
            targets: TARGETS.iter().map(|(n, a)| target(n, a)).collect(),
            grants,
        }
    })
}

#[derive(Clone, Debug)]
pub(super) enum Cred {
    Certificate(u64),
    Own(bool),
    Any(usize),
}

pub(super) fn arb_request() -> impl Strategy<Value = Request> {
    // A certificate, one of the user's own keys (registered or not), or anyone's key.
    let credential = prop_oneof![
        4 => any::<u64>().prop_map(Cred::Certificate),
        4 => any::<bool>().prop_map(Cred::Own),
        1 => (0..USERS.len() * 2 + 1).prop_map(Cred::Any),
    ];
    let destination = prop_oneof![
        prop::sample::select(vec!["db-1", "db-2", "v6-1", "dns-1", "imds-1", "gone-1"])
            .prop_map(to),
        prop::sample::select(ADDRESSES.to_vec()).prop_map(addr),
    ];
    let login = prop::option::weighted(0.8, prop::sample::select(vec!["root", "ubuntu", "admin"]));
    let user = prop_oneof![9 => prop::sample::select(USERS.to_vec()), 1 => Just("mallory")];
    let port = prop::sample::select(REQUEST_PORTS.to_vec());
    (user, credential, protocol(), destination, port, login).prop_map(
        |(u, credential, protocol, destination, port, login)| Request {
            user: name(u),
            credential: match credential {
                Cred::Certificate(serial) => Credential::Certificate { serial },
                Cred::Own(second) => {
                    let first = USERS.iter().position(|x| *x == u).unwrap_or(USERS.len()) * 2;
                    Credential::Key(fp(first + usize::from(second)))
                }
                Cred::Any(i) => Credential::Key(fp(i)),
            },
            protocol,
            destination,
            port,
            login: login.map(|l| l.parse().unwrap()),
        },
    )
}

pub(super) fn arb_now() -> impl Strategy<Value = Timestamp> {
    (-1i64..=20).prop_map(at)
}

/// A world and a request, with about half of each grant's parts (subject, object, protocol,
/// ports, login) turned towards the request, so that hits and near misses are common.
pub(super) fn arb_case() -> impl Strategy<Value = (World, Request, Timestamp)> {
    let aims = prop::collection::vec(prop::collection::vec(any::<bool>(), 5), 10);
    (arb_world(10), arb_request(), arb_now(), aims).prop_map(|(mut w, r, now, aims)| {
        for (g, aim) in w.grants.iter_mut().zip(aims) {
            if aim[0] {
                g.subject = Subject::User(r.user.clone());
            }
            if aim[1] {
                g.object = match &r.destination {
                    Destination::Target(t) => GrantObject::Target(t.clone()),
                    Destination::Address(ip) => GrantObject::Cidr(IpNet::from(canonical(*ip))),
                };
            }
            if aim[2] {
                g.protocols = ProtocolSet::new(g.protocols.iter().chain([r.protocol])).unwrap();
            }
            if aim[3] {
                g.ports = PortSpec::all();
            }
            if aim[4] {
                g.logins.extend(r.login.clone());
            }
        }
        (w, r, now)
    })
}

/// Makes `r` one that a grant can cover: a registered target, and a login in proxy mode.
pub(super) fn grantable(mut r: Request) -> Request {
    if matches!(&r.destination, Destination::Target(t) if t.as_str() == "gone-1") {
        r.destination = to("db-1");
    }
    if r.protocol == SshProxy && r.login.is_none() {
        r.login = Some("root".parse().unwrap());
    }
    r
}

/// A grant for exactly `r` (its user, destination, protocol, port and login), in force over
/// `[at(-1), at(21))`, which holds every [`arb_now`].
pub(super) fn grant_for(id: u64, r: &Request) -> Grant {
    let object = match &r.destination {
        Destination::Target(t) => t.to_string(),
        Destination::Address(ip) => IpNet::from(canonical(*ip)).to_string(),
    };
    let port = r.port.max(1).to_string();
    let mut g = window(
        grant(id, r.user.as_str(), &object, "ssh", &port),
        at(-1),
        at(21),
    );
    g.protocols = ProtocolSet::new([r.protocol]).unwrap();
    g.logins = r.login.iter().cloned().collect();
    g
}

/// Special addresses, and networks around them, that random prefixes seldom hit.
pub(super) const SPECIAL_V4: [&str; 7] = [
    "127.0.0.1",
    "169.254.169.254",
    "169.254.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
];
pub(super) const SPECIAL_V6: [&str; 6] = [
    "::1",
    "::",
    "fe80::1",
    "ff02::1",
    "fd00:ec2::254",
    "fd00:ec2::253",
];

pub(super) fn arb_v4_net() -> impl Strategy<Value = Ipv4Net> {
    let near_special = [
        "0.0.0.0/0",
        "0.0.0.0/8",
        "127.0.0.0/8",
        "127.0.0.1/32",
        "169.254.0.0/15",
        "169.254.0.0/16",
        "169.254.169.254/32",
        "224.0.0.0/3",
        "224.0.0.0/4",
        "255.255.255.0/24",
        "255.255.255.255/32",
    ];
    prop_oneof![
        3 => (any::<u32>(), 0u8..=32)
            .prop_map(|(a, len)| Ipv4Net::new(a.into(), len).unwrap().trunc()),
        1 => prop::sample::select(near_special.to_vec()).prop_map(|n| n.parse().unwrap()),
    ]
}

pub(super) fn arb_v6_net() -> impl Strategy<Value = Ipv6Net> {
    let near_special = [
        "::/0",
        "::/127",
        "::1/128",
        "fe80::/10",
        "fe80::/64",
        "fe00::/7",
        "ff00::/8",
        "fd00:ec2::/32",
        "fd00:ec2::254/128",
    ];
    prop_oneof![
        3 => (any::<u128>(), 0u8..=128)
            .prop_map(|(a, len)| Ipv6Net::new(a.into(), len).unwrap().trunc()),
        1 => prop::sample::select(near_special.to_vec()).prop_map(|n| n.parse().unwrap()),
    ]
}

/// The mask of a prefix of `len` bits in a `bits`-bit address.
pub(super) fn mask(bits: u32, len: u8) -> u128 {
    let all = u128::MAX >> (128 - bits);
    let host = all.checked_shr(u32::from(len)).unwrap_or(0);
    all & !host
}
