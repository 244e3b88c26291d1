//! Parser examples on hand-built packets.

use std::net::IpAddr;

use super::*;
use crate::vpn::testing::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ipv4_tcp() {
    let tcp = Tcp {
        flags: TcpFlags::SYN | TcpFlags::ACK,
        seq: 7,
        ack: 9,
        ..Tcp::syn(40000, 5432)
    };
    let bytes = tcp_packet("100.64.0.2", "10.0.12.7", &tcp);
    let info = parse(&bytes).unwrap();
    assert_eq!(info.src, ip("100.64.0.2"));
    assert_eq!(info.dst, ip("10.0.12.7"));
    assert_eq!(info.len, 40);
    assert_eq!(info.transport_offset, 20);
    let Transport::Tcp(t) = info.transport else {
        panic!("{info:?}")
    };
    assert_eq!((t.src_port, t.dst_port, t.seq, t.ack), (40000, 5432, 7, 9));
    assert!(t.flags.has(TcpFlags::SYN) && t.flags.has(TcpFlags::ACK));
    assert!(!t.flags.has(TcpFlags::RST));
    assert_eq!(t.header_len, 20);
    assert_eq!(info.transport.protocol(), Some(Protocol::Tcp));
    assert_eq!(info.transport.dst_port(), Some(5432));
}

#[test]
fn ipv4_options_and_trailing_bytes() {
    let (s, d) = (ip("10.1.1.1"), ip("10.2.2.2"));
    let seg = udp(s, d, 53, 5353, b"x");
    let mut bytes = ipv4_with(s, d, 17, 0, &[1, 1, 1, 0], &seg);
    bytes.extend_from_slice(&[0xee; 7]);
    let info = parse(&bytes).unwrap();
    assert_eq!(info.transport_offset, 24);
    assert_eq!(info.len, 24 + 9);
    assert_eq!(
        info.transport,
        Transport::Udp(UdpInfo {
            src_port: 53,
            dst_port: 5353
        })
    );
}

#[test]
fn tcp_options_are_part_of_the_header() {
    let tcp = Tcp {
        options: &[2, 4, 5, 0xb4, 1, 1, 4, 2],
        payload: b"data",
        ..Tcp::syn(1, 2)
    };
    let info = parse(&tcp_packet("10.0.0.1", "10.0.0.2", &tcp)).unwrap();
    let Transport::Tcp(t) = info.transport else {
        panic!()
    };
    assert_eq!(t.header_len, 28);
    assert_eq!(info.len, 20 + 28 + 4);
}

#[test]
fn ipv4_fragments() {
    let (s, d) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let seg = Tcp::syn(1234, 80).bytes(s, d);
    // First fragment (MF set, offset 0): parsed like any packet.
    let first = parse(&ipv4_with(s, d, 6, 0x2000, &[], &seg)).unwrap();
    assert!(matches!(first.transport, Transport::Tcp(t) if t.dst_port == 80));
    // Later fragment: no ports, whatever the bytes look like.
    let later = parse(&ipv4_with(s, d, 6, 0x2000 | 185, &[], &seg)).unwrap();
    assert_eq!(later.transport, Transport::Fragment { protocol: 6 });
    assert_eq!(later.transport.protocol(), Some(Protocol::Tcp));
    assert_eq!(later.transport.dst_port(), None);
    // A tiny first fragment that cuts the TCP header is refused, not guessed at.
    let tiny = ipv4_with(s, d, 6, 0x2000, &[], &seg[..8]);
    assert!(matches!(
        parse(&tiny),
        Err(ParseError::Truncated {
            what: "TCP header",
            ..
        })
    ));
}

#[test]
fn icmp_echo_and_errors() {
    let bytes = echo_packet("100.64.0.2", "10.0.0.9", true, 0x4242);
    let info = parse(&bytes).unwrap();
    let Transport::Icmp(i) = info.transport else {
        panic!()
    };
    assert_eq!((i.icmp_type, i.code), (8, 0));
    assert_eq!(
        i.echo,
        Some(Echo {
            request: true,
            id: 0x4242,
            seq: 1
        })
    );
    assert_eq!(i.quoted, None);

    // Port unreachable from 10.0.0.9 about a UDP datagram 100.64.0.2:5000 -> 10.0.0.9:53.
    let (c, r) = (ip("100.64.0.2"), ip("10.0.0.9"));
    let original = ipv4(c, r, 17, &udp(c, r, 5000, 53, b"query"));
    let err = ipv4(r, c, 1, &icmp(r, c, 3, 3, [0; 4], &original[..28]));
    let Transport::Icmp(i) = parse(&err).unwrap().transport else {
        panic!()
    };
    assert_eq!((i.icmp_type, i.code, i.echo), (3, 3, None));
    assert_eq!(
        i.quoted,
        Some(Quoted {
            src: c,
            dst: r,
            protocol: Protocol::Udp,
            src_port: 5000,
            dst_port: 53
        })
    );
    // Quoting too little to find the ports: still a packet, just no flow to match.
    let short = ipv4(r, c, 1, &icmp(r, c, 3, 3, [0; 4], &original[..22]));
    let Transport::Icmp(i) = parse(&short).unwrap().transport else {
        panic!()
    };
    assert_eq!(i.quoted, None);
}

#[test]
fn ipv6_with_extension_headers() {
    let (s, d) = (ip("fd00::2"), ip("2001:db8::7"));
    let seg = Tcp::syn(50000, 443).bytes(s, d);
    let hop = (0u8, vec![0, 0, 1, 4, 0, 0, 0, 0]);
    let dest = (60u8, vec![0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let frag0 = (44u8, vec![0, 0, 0, 0, 0, 0, 0, 1]);
    let bytes = ipv6_with(s, d, &[hop.clone(), dest.clone(), frag0], 6, &seg);
    let info = parse(&bytes).unwrap();
    assert_eq!(info.transport_offset, 40 + 8 + 16 + 8);
    assert!(
        matches!(info.transport, Transport::Tcp(t) if t.dst_port == 443 && t.src_port == 50000)
    );
    assert!(info.is_v6());

    let later = (44u8, vec![0, 0, 0x05, 0x01, 0, 0, 0, 1]);
    let frag = parse(&ipv6_with(s, d, &[hop, later], 6, &seg)).unwrap();
    assert_eq!(frag.transport, Transport::Fragment { protocol: 6 });
}

#[test]
fn ipv6_extension_header_limits() {
    let (s, d) = (ip("fd00::2"), ip("fd00::3"));
    let seg = udp(s, d, 1, 2, b"");
    let opt = || (60u8, vec![0, 0, 1, 4, 0, 0, 0, 0]);
    let ok: Vec<_> = (0..MAX_EXTENSION_HEADERS).map(|_| opt()).collect();
    assert!(parse(&ipv6_with(s, d, &ok, 17, &seg)).is_ok());
    let too_many: Vec<_> = (0..=MAX_EXTENSION_HEADERS).map(|_| opt()).collect();
    assert_eq!(
        parse(&ipv6_with(s, d, &too_many, 17, &seg)),
        Err(ParseError::TooManyExtensionHeaders)
    );
    // A header claiming more length than the packet has.
    let long = (60u8, vec![0, 200, 1, 4, 0, 0, 0, 0]);
    assert!(matches!(
        parse(&ipv6_with(s, d, &[long], 17, &seg)),
        Err(ParseError::Truncated {
            what: "IPv6 extension header",
            ..
        })
    ));
}

#[test]
fn icmpv6_echo_and_packet_too_big() {
    let bytes = echo_packet("fd00::2", "2001:db8::7", false, 77);
    let Transport::Icmp(i) = parse(&bytes).unwrap().transport else {
        panic!()
    };
    assert_eq!(i.icmp_type, 129);
    assert_eq!(i.echo.map(|e| (e.request, e.id)), Some((false, 77)));

    let (c, r) = (ip("fd00::2"), ip("2001:db8::7"));
    let original = ipv6(c, r, 6, &Tcp::syn(4000, 22).bytes(c, r));
    let ptb = ipv6(
        r,
        c,
        58,
        &icmp(r, c, 2, 0, 1280u32.to_be_bytes(), &original),
    );
    let Transport::Icmp(i) = parse(&ptb).unwrap().transport else {
        panic!()
    };
    let q = i.quoted.unwrap();
    assert_eq!((q.src, q.dst, q.protocol), (c, r, Protocol::Tcp));
    assert_eq!((q.src_port, q.dst_port), (4000, 22));
}

#[test]
fn other_protocols() {
    let (s, d) = (ip("10.0.0.1"), ip("10.0.0.2"));
    // GRE.
    assert_eq!(
        parse(&ipv4(s, d, 47, &[0; 8])).unwrap().transport,
        Transport::Other { protocol: 47 }
    );
    // ICMPv4's number inside IPv6 is not ICMPv6.
    let (s6, d6) = (ip("fd00::1"), ip("fd00::2"));
    let t = parse(&ipv6(s6, d6, 1, &[8, 0, 0, 0, 0, 0, 0, 0]))
        .unwrap()
        .transport;
    assert_eq!(t, Transport::Other { protocol: 1 });
    assert_eq!(t.protocol(), None);
}

#[test]
fn malformed() {
    assert_eq!(parse(&[]), Err(ParseError::Empty));
    assert_eq!(parse(&[0x50; 40]), Err(ParseError::BadVersion(5)));
    assert_eq!(parse(&[0x44; 40]), Err(ParseError::BadHeaderLength(16)));
    assert!(matches!(
        parse(&[0x45, 0, 0, 20]),
        Err(ParseError::Truncated {
            what: "IPv4 header",
            ..
        })
    ));
    let (s, d) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let good = ipv4(s, d, 17, &udp(s, d, 1, 2, b"abc"));
    let mut short_total = good.clone();
    short_total[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(
        parse(&short_total),
        Err(ParseError::BadTotalLength {
            total: 10,
            header: 20
        })
    );
    assert_eq!(
        parse(&good[..good.len() - 1]),
        Err(ParseError::LengthExceedsBuffer {
            declared: good.len(),
            have: good.len() - 1
        })
    );
    // IHL 15 (60 bytes) in a 31-byte packet.
    let mut ihl = good.clone();
    ihl[0] = 0x4f;
    assert!(matches!(
        parse(&ihl),
        Err(ParseError::Truncated {
            what: "IPv4 options",
            ..
        })
    ));
    // TCP data offset 4.
    let mut tcp = tcp_packet("10.0.0.1", "10.0.0.2", &Tcp::syn(1, 2));
    tcp[32] = 0x40;
    assert_eq!(parse(&tcp), Err(ParseError::BadTcpHeaderLength(16)));
    // IPv6 payload length past the buffer.
    let (s6, d6) = (ip("fd00::1"), ip("fd00::2"));
    let v6 = ipv6(s6, d6, 17, &udp(s6, d6, 1, 2, b""));
    assert!(matches!(
        parse(&v6[..45]),
        Err(ParseError::LengthExceedsBuffer { declared: 48, .. })
    ));
    assert!(matches!(
        parse(&v6[..39]),
        Err(ParseError::Truncated {
            what: "IPv6 header",
            ..
        })
    ));
    for e in [ParseError::Empty, ParseError::TooManyExtensionHeaders] {
        assert!(!e.code().is_empty() && !e.to_string().is_empty());
    }
}

#[test]
fn fuzz_finding_fragment_header_past_the_end() {
    // IPv6, payload length 5, a fragment header (later fragment) cut after 5 of its 8 bytes:
    // once parsed with a transport offset beyond the packet.
    let mut bytes = vec![0x61, 0, 0, 0, 0, 5, 44, 27];
    bytes.extend_from_slice(&[0xff; 32]);
    bytes.extend_from_slice(&[0, 0xf8, 0, 1, 0, 0, 0xbe]);
    assert!(matches!(
        parse(&bytes),
        Err(ParseError::Truncated {
            what: "IPv6 fragment header",
            ..
        })
    ));
}
