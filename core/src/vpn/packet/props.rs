//! Parser properties: any bytes are safe; well-formed packets built by a strategy parse back to
//! the fields they were built from; every cut-short prefix of one is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::vpn::testing::*;

#[derive(Clone, Debug)]
enum Spec {
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        options: usize,
        payload: Vec<u8>,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: Vec<u8>,
    },
    Echo {
        request: bool,
        id: u16,
        seq: u16,
    },
    Other {
        protocol: u8,
        payload: Vec<u8>,
    },
}

#[derive(Clone, Debug)]
struct Built {
    src: IpAddr,
    dst: IpAddr,
    spec: Spec,
    /// IPv4 option words, or IPv6 destination-options headers.
    extras: usize,
    padding: usize,
}

fn arb_addrs() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(a, b)| (IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V4(Ipv4Addr::from(b)))),
        (any::<u128>(), any::<u128>())
            .prop_map(|(a, b)| (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)))),
    ]
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    let payload = || prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (any::<(u16, u16, u32, u32, u8)>(), 0usize..=10, payload()).prop_map(
            |((src_port, dst_port, seq, ack, flags), options, payload)| {
                Spec::Tcp {
                    src_port,
                    dst_port,
                    seq,
                    ack,
                    flags,
                    options,
                    payload,
                }
            }
        ),
        (any::<u16>(), any::<u16>(), payload()).prop_map(|(src_port, dst_port, payload)| {
            Spec::Udp {
                src_port,
                dst_port,
                payload,
            }
        }),
        any::<(bool, u16, u16)>().prop_map(|(request, id, seq)| Spec::Echo { request, id, seq }),
        (any::<u8>(), payload())
            .prop_filter("not a parsed protocol", |(p, _)| {
                ![0, 1, 6, 17, 43, 44, 51, 58, 60, 135, 139, 140].contains(p)
            })
            .prop_map(|(protocol, payload)| Spec::Other { protocol, payload }),
    ]
}

fn arb_built() -> impl Strategy<Value = Built> {
    (arb_addrs(), arb_spec(), 0usize..=4, 0usize..8).prop_map(
        |((src, dst), spec, extras, padding)| Built {
            src,
            dst,
            spec,
            extras,
            padding,
        },
    )
}

impl Built {
    fn bytes(&self) -> Vec<u8> {
        let (s, d) = (self.src, self.dst);
        let v6 = s.is_ipv6();
        let (protocol, segment) = match &self.spec {
            Spec::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                options,
                payload,
            } => {
                let options = vec![1u8; options * 4];
                let tcp = Tcp {
                    src_port: *src_port,
                    dst_port: *dst_port,
                    seq: *seq,
                    ack: *ack,
                    flags: *flags,
                    options: &options,
                    payload,
                };
                (6, tcp.bytes(s, d))
            }
            Spec::Udp {
                src_port,
                dst_port,
                payload,
            } => (17, udp(s, d, *src_port, *dst_port, payload)),
            Spec::Echo { request, id, seq } => {
                (if v6 { 58 } else { 1 }, echo(s, d, *request, *id, *seq))
            }
            Spec::Other { protocol, payload } => (*protocol, payload.clone()),
        };
        let mut bytes = if v6 {
            let ext: Vec<_> = (0..self.extras)
                .map(|_| (60u8, vec![0, 0, 1, 4, 0, 0, 0, 0]))
                .collect();
            ipv6_with(s, d, &ext, protocol, &segment)
        } else {
            ipv4_with(s, d, protocol, 0, &vec![1u8; self.extras * 4], &segment)
        };
        bytes.extend(std::iter::repeat_n(0xa5, self.padding));
        bytes
    }

    fn header_len(&self) -> usize {
        if self.src.is_ipv6() {
            40 + 8 * self.extras
        } else {
            20 + 4 * self.extras
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_bytes_are_safe(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(info) = parse(&bytes) {
            prop_assert!(info.len <= bytes.len());
            prop_assert!(info.transport_offset <= info.len);
        }
    }

    #[test]
    fn ip_looking_bytes_are_safe(
        v6 in any::<bool>(),
        proto in prop::sample::select(vec![0u8, 1, 6, 17, 43, 44, 51, 58, 60]),
        mut bytes in prop::collection::vec(any::<u8>(), 20..160),
    ) {
        // Mostly-plausible headers reach deeper code than uniform noise.
        let len = bytes.len() as u16;
        if v6 {
            bytes.resize(bytes.len().max(40), 0);
            bytes[0] = 0x60;
            bytes[4..6].copy_from_slice(&(len.saturating_sub(40)).to_be_bytes());
            bytes[6] = proto;
        } else {
            bytes[0] = 0x45;
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
            bytes[6] &= 0x1f;
            bytes[9] = proto;
        }
        if let Ok(info) = parse(&bytes) {
            prop_assert!(info.len <= bytes.len());
            prop_assert!(info.transport_offset <= info.len);
        }
    }

    #[test]
    fn built_packets_parse_back(b in arb_built()) {
        let bytes = b.bytes();
        let info = parse(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(info.src, b.src);
        prop_assert_eq!(info.dst, b.dst);
        prop_assert_eq!(info.len, bytes.len() - b.padding);
        prop_assert_eq!(info.transport_offset, b.header_len());
        match (&b.spec, info.transport) {
            (Spec::Tcp { src_port, dst_port, seq, ack, flags, options, .. }, Transport::Tcp(t)) => {
                prop_assert_eq!((t.src_port, t.dst_port), (*src_port, *dst_port));
                prop_assert_eq!((t.seq, t.ack, t.flags.0), (*seq, *ack, *flags));
                prop_assert_eq!(t.header_len, 20 + options * 4);
            }
            (Spec::Udp { src_port, dst_port, .. }, Transport::Udp(u)) => {
                prop_assert_eq!((u.src_port, u.dst_port), (*src_port, *dst_port));
            }
            (Spec::Echo { request, id, seq }, Transport::Icmp(i)) => {
                prop_assert_eq!(i.echo, Some(Echo { request: *request, id: *id, seq: *seq }));
                prop_assert_eq!(i.quoted, None);
            }
            (Spec::Other { protocol, .. }, Transport::Other { protocol: got }) => {
                prop_assert_eq!(*protocol, got);
            }
            (spec, got) => prop_assert!(false, "built {spec:?}, parsed {got:?}"),
        }
    }

    #[test]
    fn cut_short_packets_are_refused(b in arb_built(), cut in any::<prop::sample::Index>()) {
        let bytes = b.bytes();
        let whole = bytes.len() - b.padding;
        let at = cut.index(whole);
        prop_assert!(parse(&bytes[..at]).is_err(), "prefix of {at} of {whole} bytes parsed");
    }
}
