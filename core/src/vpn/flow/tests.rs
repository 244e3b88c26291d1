//! Flow table tests on hand-built packets.

use std::collections::BTreeSet;

use super::*;
use crate::audit::EventKind;
use crate::model::{Grant, Role, User, UserName, UserState};
use crate::policy::Snapshot;
use crate::vpn::device::DeviceId;
use crate::vpn::packet::parse;
use crate::vpn::testing::*;

const CLIENT: &str = "100.64.0.2";
const REMOTE: &str = "10.0.12.7";

fn at(s: i64) -> Timestamp {
    Timestamp::from_millis(1_767_225_600_000 + s * 1000)
}

fn gid(i: u64) -> GrantId {
    format!("00000000-0000-4000-8000-{i:012x}").parse().unwrap()
}

fn info(bytes: &[u8]) -> PacketInfo {
    parse(bytes).unwrap()
}

fn table() -> FlowTable {
    FlowTable::new(FlowConfig::default())
}

fn syn(sport: u16, dport: u16) -> PacketInfo {
    info(&tcp_packet(CLIENT, REMOTE, &Tcp::syn(sport, dport)))
}

fn tcp_in(sport: u16, dport: u16, flags: u8) -> PacketInfo {
    let t = Tcp {
        flags,
        ..Tcp::syn(sport, dport)
    };
    info(&tcp_packet(REMOTE, CLIENT, &t))
}

fn tcp_out(sport: u16, dport: u16, flags: u8) -> PacketInfo {
    let t = Tcp {
        flags,
        ..Tcp::syn(sport, dport)
    };
    info(&tcp_packet(CLIENT, REMOTE, &t))
}

fn started(v: FlowVerdict) -> FlowStart {
    match v {
        FlowVerdict::Started(s) => s,
        other => panic!("expected a new flow, got {other:?}"),
    }
}

const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;

#[test]
fn tcp_return_traffic_and_counters() {
    let mut t = table();
    let out = syn(40000, 5432);
    let s = started(t.outbound(&out, gid(1), at(0)));
    assert_eq!(s.key.to_string(), "tcp 100.64.0.2:40000 -> 10.0.12.7:5432");
    assert_eq!((s.grant, s.at), (gid(1), at(0)));
    assert_eq!(t.inbound(&tcp_in(5432, 40000, SYNACK), at(1)), Some(s.id));
    assert_eq!(
        t.outbound(&tcp_out(40000, 5432, TcpFlags::ACK), gid(1), at(1)),
        FlowVerdict::Existing(s.id)
    );
    // Not the flow's ports, not the flow's remote: unsolicited.
    assert_eq!(t.inbound(&tcp_in(5432, 40001, SYNACK), at(1)), None);
    assert_eq!(t.inbound(&tcp_in(22, 40000, SYNACK), at(1)), None);
    let other_remote = Tcp {
        flags: SYNACK,
        ..Tcp::syn(5432, 40000)
    };
    let spoof = info(&tcp_packet("10.0.12.8", CLIENT, &other_remote));
    assert_eq!(t.inbound(&spoof, at(1)), None);
    let c = t.counters(&s.key).unwrap();
    assert_eq!((c.packets_out, c.packets_in), (2, 1));
    assert_eq!((c.bytes_out, c.bytes_in), (80, 40));
    assert_eq!(t.len(), 1);
}

#[test]
fn unsolicited_inbound_is_dropped() {
    let mut t = table();
    assert_eq!(t.inbound(&tcp_in(22, 40000, TcpFlags::SYN), at(0)), None);
    assert_eq!(
        t.inbound(&info(&udp_packet(REMOTE, CLIENT, 53, 5353)), at(0)),
        None
    );
    // A ping *to* the client is not a reply.
    assert_eq!(
        t.inbound(&info(&echo_packet(REMOTE, CLIENT, true, 9)), at(0)),
        None
    );
    assert!(t.is_empty());
}

#[test]
fn udp_and_icmp_echo_flows() {
    let mut t = table();
    let u = started(t.outbound(&info(&udp_packet(CLIENT, REMOTE, 5353, 53)), gid(2), at(0)));
    assert_eq!(
        t.inbound(&info(&udp_packet(REMOTE, CLIENT, 53, 5353)), at(1)),
        Some(u.id)
    );
    assert_eq!(
        t.inbound(&info(&udp_packet(REMOTE, CLIENT, 54, 5353)), at(1)),
        None
    );
    let p = started(t.outbound(&info(&echo_packet(CLIENT, REMOTE, true, 77)), gid(3), at(0)));
    assert_eq!((p.key.client_port, p.key.remote_port), (77, 77));
    assert_eq!(p.key.protocol, Protocol::Icmp);
    assert_eq!(
        t.inbound(&info(&echo_packet(REMOTE, CLIENT, false, 77)), at(1)),
        Some(p.id)
    );
    assert_eq!(
        t.inbound(&info(&echo_packet(REMOTE, CLIENT, false, 78)), at(1)),
        None
    );
    // ICMP other than an echo request goes out untracked.
    let (c, r) = (CLIENT.parse().unwrap(), REMOTE.parse().unwrap());
    let unreachable = info(&ipv4(c, r, 1, &icmp(c, r, 3, 3, [0; 4], &[0; 28])));
    assert_eq!(
        t.outbound(&unreachable, gid(3), at(1)),
        FlowVerdict::Untracked
    );
    // A RST of no flow is not a flow.
    assert_eq!(
        t.outbound(&tcp_out(1, 2, TcpFlags::RST), gid(1), at(1)),
        FlowVerdict::Untracked
    );
    assert_eq!(t.len(), 2);
}

#[test]
fn icmp_errors_follow_the_flow_they_quote() {
    let mut t = table();
    let (c, r) = (CLIENT.parse().unwrap(), REMOTE.parse().unwrap());
    let original = ipv4(c, r, 17, &udp(c, r, 5353, 53, b"q"));
    let s = started(t.outbound(&info(&original), gid(1), at(0)));
    let router = "10.0.0.1".parse().unwrap();
    let error = info(&ipv4(
        router,
        c,
        1,
        &icmp(router, c, 3, 4, [0; 4], &original),
    ));
    assert_eq!(t.inbound(&error, at(1)), Some(s.id));
    let other = ipv4(c, r, 17, &udp(c, r, 5354, 53, b"q"));
    let stray = info(&ipv4(router, c, 1, &icmp(router, c, 3, 4, [0; 4], &other)));
    assert_eq!(t.inbound(&stray, at(1)), None);
}

#[test]
fn fragments_ride_on_existing_flows_only() {
    let mut t = table();
    let (c, r) = (CLIENT.parse().unwrap(), REMOTE.parse().unwrap());
    let frag_out = info(&ipv4_with(c, r, 17, 0x0010, &[], &[0; 64]));
    assert_eq!(frag_out.transport, Transport::Fragment { protocol: 17 });
    assert_eq!(t.outbound(&frag_out, gid(1), at(0)), FlowVerdict::NoFlow);
    assert_eq!(
        FlowVerdict::NoFlow.denial(),
        Some(FlowDenial::FragmentWithoutFlow)
    );
    let s = started(t.outbound(&info(&udp_packet(CLIENT, REMOTE, 5353, 53)), gid(1), at(0)));
    assert_eq!(
        t.outbound(&frag_out, gid(1), at(1)),
        FlowVerdict::Existing(s.id)
    );
    let frag_in = info(&ipv4_with(r, c, 17, 0x0010, &[], &[0; 64]));
    assert_eq!(t.inbound(&frag_in, at(1)), Some(s.id));
    let elsewhere = "10.0.12.8".parse().unwrap();
    let frag_stray = info(&ipv4_with(elsewhere, c, 17, 0x0010, &[], &[0; 64]));
    assert_eq!(t.inbound(&frag_stray, at(1)), None);
    let tcp_frag = info(&ipv4_with(r, c, 6, 0x0010, &[], &[0; 64]));
    assert_eq!(t.inbound(&tcp_frag, at(1)), None);
    assert_eq!(t.counters(&s.key).unwrap().packets_out, 2);
    // Once the flow is gone, so is the fragments' way through.
    t.end_all(FlowEndReason::Shutdown, at(2));
    assert_eq!(t.inbound(&frag_in, at(3)), None);
}

#[test]
fn idle_timeouts_per_protocol_and_state() {
    let config = FlowConfig::default();
    let mut t = FlowTable::new(config);
    let udp_flow = started(t.outbound(&info(&udp_packet(CLIENT, REMOTE, 5353, 53)), gid(1), at(0)));
    let est = started(t.outbound(&syn(40000, 22), gid(1), at(0)));
    t.inbound(&tcp_in(22, 40000, SYNACK), at(0));
    let opening = started(t.outbound(&syn(40001, 22), gid(1), at(0)));
    let closing = started(t.outbound(&syn(40002, 22), gid(1), at(0)));
    t.inbound(&tcp_in(22, 40002, SYNACK), at(0));
    t.outbound(
        &tcp_out(40002, 22, TcpFlags::FIN | TcpFlags::ACK),
        gid(1),
        at(5),
    );
    assert_eq!(t.next_expiry(), Some(at(35)));

    assert!(t.expire(at(34)).is_empty());
    let ended = t.expire(at(35));
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].id, closing.id);
    assert_eq!(ended[0].reason, FlowEndReason::Closed);
    assert_eq!(ended[0].ended_at, at(5));
    assert_eq!(ended[0].duration_ms(), 5000);

    let ended = t.expire(at(60));
    assert_eq!(ended.iter().map(|e| e.id).collect::<Vec<_>>(), [opening.id]);
    assert_eq!(ended[0].reason, FlowEndReason::Idle);

    let ended = t.expire(at(120));
    assert_eq!(
        ended.iter().map(|e| e.id).collect::<Vec<_>>(),
        [udp_flow.id]
    );

    assert!(t.expire(at(3599)).is_empty());
    let ended = t.expire(at(3600));
    assert_eq!(ended.iter().map(|e| e.id).collect::<Vec<_>>(), [est.id]);
    assert!(t.is_empty());
    assert_eq!(t.next_expiry(), None);
}

#[test]
fn traffic_keeps_a_flow_alive() {
    let mut t = table();
    let s = started(t.outbound(&info(&udp_packet(CLIENT, REMOTE, 5353, 53)), gid(1), at(0)));
    t.inbound(&info(&udp_packet(REMOTE, CLIENT, 53, 5353)), at(100));
    assert!(t.expire(at(200)).is_empty());
    assert_eq!(t.expire(at(220))[0].id, s.id);
}

#[test]
fn the_table_is_bounded() {
    let mut t = FlowTable::new(FlowConfig {
        max_flows: 2,
        ..FlowConfig::default()
    });
    started(t.outbound(&syn(1, 22), gid(1), at(0)));
    started(t.outbound(&syn(2, 22), gid(1), at(0)));
    let full = t.outbound(&syn(3, 22), gid(1), at(0));
    assert_eq!(full, FlowVerdict::Full);
    assert!(!full.forward());
    assert_eq!(full.denial(), Some(FlowDenial::FlowTableFull));
    // Existing flows still pass.
    assert!(matches!(
        t.outbound(&syn(1, 22), gid(1), at(1)),
        FlowVerdict::Existing(_)
    ));
    assert_eq!(t.expire(at(61)).len(), 2);
    started(t.outbound(&syn(3, 22), gid(1), at(61)));
}

fn snapshot(grants: &[Grant], state: UserState) -> Snapshot {
    let alice = User {
        name: "alice".parse().unwrap(),
        roles: BTreeSet::from([Role::Engineer]),
        groups: BTreeSet::new(),
        state,
        created_at: at(-100),
    };
    Snapshot::compile(1, &[alice], &[], &[], grants)
}

fn grant(i: u64, object: &str, protocols: &str, ports: &str) -> Grant {
    Grant {
        id: gid(i),
        subject: "alice".parse().unwrap(),
        object: object.parse().unwrap(),
        protocols: protocols.parse().unwrap(),
        ports: ports.parse().unwrap(),
        logins: BTreeSet::new(),
        options: Default::default(),
        not_before: at(-10),
        expires_at: at(3600),
        reason: "INC-1".parse().unwrap(),
        granted_by: "root.admin".parse().unwrap(),
        created_at: at(-20),
        revoked: None,
    }
}

#[test]
fn a_new_filter_ends_what_it_no_longer_allows() {
    let alice: UserName = "alice".parse().unwrap();
    let mut t = table();
    let web = started(t.outbound(&syn(1, 443), gid(1), at(0)));
    let ssh = started(t.outbound(&syn(2, 22), gid(2), at(0)));
    let ping = started(t.outbound(&info(&echo_packet(CLIENT, REMOTE, true, 5)), gid(1), at(0)));
    let before = snapshot(
        &[
            grant(1, "10.0.12.0/24", "tcp,icmp", "443"),
            grant(2, "10.0.12.7", "tcp", "22"),
        ],
        UserState::Active,
    );
    let f = UserFilter::compile(&before, &alice, at(1));
    assert!(t.retain_allowed(&f, at(1)).is_empty());

    // Grant 2 revoked.
    let after = snapshot(
        &[grant(1, "10.0.12.0/24", "tcp,icmp", "443")],
        UserState::Active,
    );
    let f = UserFilter::compile(&after, &alice, at(2));
    let ended = t.retain_allowed(&f, at(2));
    assert_eq!(ended.len(), 1);
    assert_eq!((ended[0].id, ended[0].grant), (ssh.id, gid(2)));
    assert_eq!(ended[0].reason, FlowEndReason::Revoked);
    assert_eq!(ended[0].ended_at, at(2));

    // User disabled: everything ends.
    let disabled = snapshot(
        &[grant(1, "10.0.12.0/24", "tcp,icmp", "443")],
        UserState::Disabled,
    );
    let f = UserFilter::compile(&disabled, &alice, at(3));
    let ended: Vec<FlowId> = t.retain_allowed(&f, at(3)).iter().map(|e| e.id).collect();
    assert_eq!(ended, [web.id, ping.id]);
    assert!(t.is_empty());
}

#[test]
fn ended_flows_become_events() {
    let mut t = table();
    let s = started(t.outbound(&syn(40000, 5432), gid(1), at(0)));
    t.inbound(&tcp_in(5432, 40000, SYNACK), at(2));
    let device = DeviceId::random();
    let alice: UserName = "alice".parse().unwrap();
    match s.event(alice.clone(), device) {
        EventKind::VpnFlowStarted {
            remote_port, grant, ..
        } => assert_eq!((remote_port, grant), (5432, gid(1))),
        other => panic!("{other:?}"),
    }
    let ended = t.end_all(FlowEndReason::Shutdown, at(4));
    let e = ended[0].event(alice, device);
    assert_eq!(e.name(), "vpn.flow.end");
    assert_eq!(e.target().as_deref(), Some(REMOTE));
    let data = e.data();
    assert_eq!(data["packets_out"], 1);
    assert_eq!(data["bytes_in"], 40);
    assert_eq!(data["duration_ms"], 4000);
    assert_eq!(data["reason"], "shutdown");
    assert_eq!(data["protocol"], "tcp");
    assert_eq!(data["client_address"], CLIENT);
    assert_eq!(EventKind::from_parts("vpn.flow.end", &data), Some(e));
}

mod props {
    //! Random packet sequences against a set of the flows the client started.

    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Client → remote `r`: kind 0 TCP SYN, 1 UDP, 2 echo request; ports from 1..4.
        Out {
            kind: u8,
            r: u8,
            cport: u16,
            rport: u16,
        },
        /// Remote `r` → client: kind 0 TCP SYN+ACK, 1 UDP, 2 echo reply.
        In {
            kind: u8,
            r: u8,
            cport: u16,
            rport: u16,
        },
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        (any::<bool>(), 0u8..3, 0u8..3, 1u16..4, 1u16..4).prop_map(|(out, kind, r, c, p)| {
            if out {
                Op::Out {
                    kind,
                    r,
                    cport: c,
                    rport: p,
                }
            } else {
                Op::In {
                    kind,
                    r,
                    cport: c,
                    rport: p,
                }
            }
        })
    }

    fn remote(r: u8) -> String {
        format!("10.0.0.{}", r + 1)
    }

    fn packet(kind: u8, src: &str, dst: &str, sport: u16, dport: u16, out: bool) -> PacketInfo {
        match kind {
            0 => {
                let flags = if out { TcpFlags::SYN } else { SYNACK };
                let t = Tcp {
                    flags,
                    ..Tcp::syn(sport, dport)
                };
                info(&tcp_packet(src, dst, &t))
            }
            1 => info(&udp_packet(src, dst, sport, dport)),
            // The echo identifier is the client's port.
            _ => info(&echo_packet(src, dst, out, if out { sport } else { dport })),
        }
    }

    fn model_key(kind: u8, r: u8, cport: u16, rport: u16) -> (u8, u8, u16, u16) {
        match kind {
            2 => (2, r, cport, cport),
            _ => (kind, r, cport, rport),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn only_started_flows_come_back(
            ops in prop::collection::vec(arb_op(), 1..60),
            max in 1usize..8,
        ) {
            let mut t = FlowTable::new(FlowConfig { max_flows: max, ..FlowConfig::default() });
            let mut started: HashSet<(u8, u8, u16, u16)> = HashSet::new();
            for op in ops {
                match op {
                    Op::Out { kind, r, cport, rport } => {
                        let p = packet(kind, CLIENT, &remote(r), cport, rport, true);
                        let key = model_key(kind, r, cport, rport);
                        let v = t.outbound(&p, gid(1), at(0));
                        if started.contains(&key) {
                            prop_assert!(matches!(v, FlowVerdict::Existing(_)), "{v:?}");
                        } else if started.len() < max {
                            prop_assert!(matches!(v, FlowVerdict::Started(_)), "{v:?}");
                            started.insert(key);
                        } else {
                            prop_assert_eq!(v, FlowVerdict::Full);
                        }
                    }
                    Op::In { kind, r, cport, rport } => {
                        let p = packet(kind, &remote(r), CLIENT, rport, cport, false);
                        let key = model_key(kind, r, cport, rport);
                        let got = t.inbound(&p, at(0)).is_some();
                        prop_assert_eq!(got, started.contains(&key), "{:?}", key);
                    }
                }
                prop_assert!(t.len() <= max);
                prop_assert_eq!(t.len(), started.len());
            }
            let ended = t.end_all(FlowEndReason::Shutdown, at(1));
            prop_assert_eq!(ended.len(), started.len());
            prop_assert!(t.is_empty());
        }
    }
}
