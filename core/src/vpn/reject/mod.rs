//! The reply the client gets for a dropped packet, so its connection fails at once instead of
//! timing out: a TCP RST for TCP, else ICMP "communication administratively prohibited"
//! (ICMPv4 type 3 code 13, ICMPv6 type 1 code 1).
//!
//! The reply comes from the address the packet was sent to (the driver hands it to the device
//! like any return traffic; it lies within the device's AllowedIPs since the packet was routed
//! into the tunnel). The ICMP reply quotes the start of the dropped packet: as much as keeps the
//! reply within 576 bytes (IPv4, RFC 1812) or 1280 bytes (IPv6, RFC 4443).
//!
//! No reply is built for packets that must not get one (RFC 1122, RFC 4443 2.4): a TCP RST, an
//! ICMP error or any ICMP message other than an echo request, a non-first fragment, or a packet
//! from or to a multicast, broadcast or unspecified address.

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum::Sum;
use super::packet::{proto, PacketInfo, TcpFlags, TcpInfo, Transport};

/// Largest IPv4 reply (RFC 1812 4.3.2.3).
const V4_MAX_REPLY: usize = 576;
/// Largest IPv6 reply (the minimum MTU, RFC 4443 2.4).
const V6_MAX_REPLY: usize = 1280;
const TTL: u8 = 64;

/// The reply to send back to the client for `packet` (whose parse is `info`), or `None` when
/// none must be sent.
pub fn reject(packet: &[u8], info: &PacketInfo) -> Option<Vec<u8>> {
    if !replyable(info.src) || !replyable(info.dst) {
        return None;
    }
    match &info.transport {
        Transport::Tcp(t) if t.flags.has(TcpFlags::RST) => None,
        Transport::Tcp(t) => Some(tcp_reset(info, t)),
        Transport::Icmp(i) if i.echo.is_some_and(|e| e.request) => prohibited(packet, info),
        Transport::Icmp(_) | Transport::Fragment { .. } => None,
        Transport::Udp(_) | Transport::Other { .. } => prohibited(packet, info),
    }
}

fn replyable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

/// The IP header of a reply from `src` to `dst` with `payload_len` bytes of protocol `protocol`.
fn ip_header(src: IpAddr, dst: IpAddr, protocol: u8, payload_len: usize) -> Option<Vec<u8>> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(ipv4_header(s, d, protocol, payload_len)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(ipv6_header(s, d, protocol, payload_len)),
        _ => None,
    }
}

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload_len: usize) -> Vec<u8> {
    let total = u16::try_from(20 + payload_len).unwrap_or(u16::MAX);
    let mut h = Vec::with_capacity(20 + payload_len);
    h.extend_from_slice(&[0x45, 0]);
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, TTL, protocol, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let sum = Sum::default().add(&h).finish();
    if let Some(c) = h.get_mut(10..12) {
        c.copy_from_slice(&sum.to_be_bytes());
    }
    h
}

fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload_len: usize) -> Vec<u8> {
    let len = u16::try_from(payload_len).unwrap_or(u16::MAX);
    let mut h = Vec::with_capacity(40 + payload_len);
    h.extend_from_slice(&[0x60, 0, 0, 0]);
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[next, TTL]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}

/// A RST answering the segment `t` (RFC 9293 3.10.7.1: from the ACK if it had one, else
/// acknowledging everything it carried).
fn tcp_reset(info: &PacketInfo, t: &TcpInfo) -> Vec<u8> {
    let payload = info
        .len
        .saturating_sub(info.transport_offset)
        .saturating_sub(t.header_len);
    let (seq, ack, flags) = if t.flags.has(TcpFlags::ACK) {
        (t.ack, 0, TcpFlags::RST)
    } else {
        let length = u32::try_from(payload).unwrap_or(u32::MAX)
            + u32::from(t.flags.has(TcpFlags::SYN))
            + u32::from(t.flags.has(TcpFlags::FIN));
        (0, t.seq.wrapping_add(length), TcpFlags::RST | TcpFlags::ACK)
    };
    let mut seg = Vec::with_capacity(20);
    seg.extend_from_slice(&t.dst_port.to_be_bytes());
    seg.extend_from_slice(&t.src_port.to_be_bytes());
    seg.extend_from_slice(&seq.to_be_bytes());
    seg.extend_from_slice(&ack.to_be_bytes());
    seg.extend_from_slice(&[0x50, flags, 0, 0, 0, 0, 0, 0]);
    let sum = Sum::default()
        .pseudo_header(info.dst, info.src, proto::TCP, seg.len())
        .add(&seg)
        .finish();
    if let Some(c) = seg.get_mut(16..18) {
        c.copy_from_slice(&sum.to_be_bytes());
    }
    let mut out = ip_header(info.dst, info.src, proto::TCP, seg.len()).unwrap_or_default();
    out.extend_from_slice(&seg);
    out
}

/// ICMP "administratively prohibited" quoting the start of `packet`.
fn prohibited(packet: &[u8], info: &PacketInfo) -> Option<Vec<u8>> {
    let original = packet.get(..info.len).unwrap_or(packet);
    let v6 = info.is_v6();
    let (ip_len, max, icmp_type, code, protocol) = if v6 {
        (40, V6_MAX_REPLY, 1, 1, proto::ICMPV6)
    } else {
        (20, V4_MAX_REPLY, 3, 13, proto::ICMP)
    };
    let quote = original
        .get(..original.len().min(max - ip_len - 8))
        .unwrap_or_default();
    let mut msg = Vec::with_capacity(8 + quote.len());
    msg.extend_from_slice(&[icmp_type, code, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(quote);
    let sum = if v6 {
        Sum::default().pseudo_header(info.dst, info.src, protocol, msg.len())
    } else {
        Sum::default()
    };
    let sum = sum.add(&msg).finish();
    if let Some(c) = msg.get_mut(2..4) {
        c.copy_from_slice(&sum.to_be_bytes());
    }
    let mut out = ip_header(info.dst, info.src, protocol, msg.len())?;
    out.extend_from_slice(&msg);
    Some(out)
}
