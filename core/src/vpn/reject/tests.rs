//! Reject replies, with checksums verified by the tests' own plain summing loop.

use std::net::IpAddr;

use super::*;
use crate::model::Protocol;
use crate::vpn::packet::{parse, Quoted};
use crate::vpn::testing::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The reply to `packet`, checked: parses, swapped addresses, valid IP and transport checksums.
fn reply(packet: &[u8]) -> (Vec<u8>, PacketInfo) {
    let original = parse(packet).unwrap();
    let bytes = reject(packet, &original).expect("a reply");
    let info = parse(&bytes).unwrap();
    assert_eq!(info.len, bytes.len());
    assert_eq!((info.src, info.dst), (original.dst, original.src));
    let protocol = info.transport.ip_protocol(info.is_v6());
    let segment = &bytes[info.transport_offset..];
    if info.is_v6() {
        assert_eq!(bytes[7], 64, "hop limit");
        assert!(transport_checksum_ok(info.src, info.dst, protocol, segment));
    } else {
        assert_eq!(ones_sum(&bytes[..20]), 0xffff, "IPv4 header checksum");
        if protocol == 1 {
            assert_eq!(ones_sum(segment), 0xffff, "ICMP checksum");
        } else {
            assert!(transport_checksum_ok(info.src, info.dst, protocol, segment));
        }
    }
    (bytes, info)
}

fn rst_fields(info: &PacketInfo) -> (u16, u16, u32, u32, u8) {
    let Transport::Tcp(t) = info.transport else {
        panic!("{info:?}")
    };
    (t.src_port, t.dst_port, t.seq, t.ack, t.flags.0)
}

#[test]
fn syn_gets_rst_ack() {
    let syn = tcp_packet("100.64.0.2", "10.0.12.7", &Tcp::syn(40000, 22));
    let (_, info) = reply(&syn);
    assert_eq!(
        rst_fields(&info),
        (22, 40000, 0, 1001, TcpFlags::RST | TcpFlags::ACK)
    );
}

#[test]
fn segment_with_ack_gets_rst_at_its_ack() {
    let t = Tcp {
        seq: 5000,
        ack: 0xdead_beef,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        payload: b"GET / HTTP/1.1\r\n",
        ..Tcp::syn(40000, 80)
    };
    let (_, info) = reply(&tcp_packet("100.64.0.2", "10.0.12.7", &t));
    assert_eq!(
        rst_fields(&info),
        (80, 40000, 0xdead_beef, 0, TcpFlags::RST)
    );
}

#[test]
fn segment_without_ack_is_acknowledged_whole() {
    let t = Tcp {
        seq: u32::MAX - 2,
        flags: TcpFlags::FIN,
        options: &[1, 1, 1, 1],
        payload: b"data",
        ..Tcp::syn(40000, 80)
    };
    let (_, info) = reply(&tcp_packet("fd00::2", "2001:db8::7", &t));
    // seq + 4 bytes + FIN, wrapping.
    assert_eq!(
        rst_fields(&info),
        (80, 40000, 0, 2, TcpFlags::RST | TcpFlags::ACK)
    );
}

#[test]
fn udp_gets_icmp_administratively_prohibited() {
    let packet = udp_packet("100.64.0.2", "10.0.12.7", 5353, 53);
    let (bytes, info) = reply(&packet);
    let Transport::Icmp(i) = info.transport else {
        panic!()
    };
    assert_eq!((i.icmp_type, i.code), (3, 13));
    assert_eq!(&bytes[28..], &packet[..], "quotes the whole small packet");
    assert_eq!(
        i.quoted,
        Some(Quoted {
            src: ip("100.64.0.2"),
            dst: ip("10.0.12.7"),
            protocol: Protocol::Udp,
            src_port: 5353,
            dst_port: 53
        })
    );
    assert_eq!(bytes[8], 64, "TTL");
    assert_eq!(bytes[9], 1, "protocol");
}

#[test]
fn quotes_are_cut_to_the_minimum_mtu() {
    let (c, r) = (ip("100.64.0.2"), ip("10.0.12.7"));
    let big = ipv4(c, r, 17, &udp(c, r, 1, 2, &[7; 1400]));
    let (bytes, _) = reply(&big);
    assert_eq!(bytes.len(), 576);
    assert_eq!(&bytes[28..], &big[..548]);

    let (c6, r6) = (ip("fd00::2"), ip("2001:db8::7"));
    let big6 = ipv6(c6, r6, 17, &udp(c6, r6, 1, 2, &[7; 1400]));
    let (bytes, info) = reply(&big6);
    assert_eq!(bytes.len(), 1280);
    assert_eq!(&bytes[48..], &big6[..1232]);
    let Transport::Icmp(i) = info.transport else {
        panic!()
    };
    assert_eq!((i.icmp_type, i.code), (1, 1));
    assert_eq!(i.quoted.map(|q| q.dst_port), Some(2));
}

#[test]
fn ping_and_other_protocols_get_icmp() {
    let (_, info) = reply(&echo_packet("fd00::2", "2001:db8::7", true, 3));
    assert!(matches!(info.transport, Transport::Icmp(i) if i.icmp_type == 1 && i.code == 1));
    let (c, r) = (ip("100.64.0.2"), ip("10.0.12.7"));
    let (_, info) = reply(&ipv4(c, r, 47, &[0; 8]));
    assert!(matches!(info.transport, Transport::Icmp(i) if i.icmp_type == 3 && i.code == 13));
}

#[test]
fn no_reply_where_none_is_due() {
    let (c, r) = (ip("100.64.0.2"), ip("10.0.12.7"));
    let rst = Tcp {
        flags: TcpFlags::RST,
        ..Tcp::syn(1, 2)
    };
    let error = ipv4(c, r, 1, &icmp(c, r, 3, 3, [0; 4], &[0; 28]));
    let cases = [
        tcp_packet("100.64.0.2", "10.0.12.7", &rst),
        echo_packet("100.64.0.2", "10.0.12.7", false, 1),
        error,
        ipv4_with(c, r, 17, 0x0020, &[], &[0; 16]),
        udp_packet("100.64.0.2", "224.0.0.251", 5353, 5353),
        udp_packet("100.64.0.2", "255.255.255.255", 68, 67),
        udp_packet("0.0.0.0", "10.0.12.7", 68, 67),
        udp_packet("fd00::2", "ff02::1", 1, 2),
    ];
    for packet in cases {
        let info = parse(&packet).unwrap();
        assert_eq!(reject(&packet, &info), None, "{info:?}");
    }
}
