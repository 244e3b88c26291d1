//! Hand-built packets for the tests, and an independent checksum (a plain loop over 16-bit
//! words, not `checksum::Sum`).

use std::net::IpAddr;

/// The one's-complement sum of `data` as 16-bit words (odd byte padded), folded, not inverted.
pub(crate) fn ones_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < data.len() {
        let hi = u32::from(data[i]);
        let lo = if i + 1 < data.len() {
            u32::from(data[i + 1])
        } else {
            0
        };
        sum += (hi << 8) | lo;
        i += 2;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The pseudo-header bytes for a transport checksum.
pub(crate) fn pseudo(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, protocol]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, protocol]);
        }
        _ => panic!("mixed families"),
    }
    p
}

/// Whether `segment` (with its checksum field filled in) checks out under the pseudo-header.
pub(crate) fn transport_checksum_ok(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    segment: &[u8],
) -> bool {
    let mut all = pseudo(src, dst, protocol, segment.len());
    all.extend_from_slice(segment);
    ones_sum(&all) == 0xffff
}

/// Writes the checksum of `data` (with the field zero) at `at`.
fn fill_checksum(data: &mut [u8], at: usize, prefix: &[u8]) {
    data[at] = 0;
    data[at + 1] = 0;
    let mut all = prefix.to_vec();
    all.extend_from_slice(data);
    let c = !ones_sum(&all);
    data[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// A TCP segment with a 20-byte header (plus `options`, a multiple of 4 bytes).
pub(crate) struct Tcp<'a> {
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) flags: u8,
    pub(crate) options: &'a [u8],
    pub(crate) payload: &'a [u8],
}

impl Tcp<'_> {
    pub(crate) fn syn(src_port: u16, dst_port: u16) -> Tcp<'static> {
        Tcp {
            src_port,
            dst_port,
            seq: 1000,
            ack: 0,
            flags: 0x02,
            options: &[],
            payload: &[],
        }
    }

    pub(crate) fn bytes(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let header_len = 20 + self.options.len();
        let mut s = Vec::new();
        s.extend_from_slice(&self.src_port.to_be_bytes());
        s.extend_from_slice(&self.dst_port.to_be_bytes());
        s.extend_from_slice(&self.seq.to_be_bytes());
        s.extend_from_slice(&self.ack.to_be_bytes());
        s.extend_from_slice(&[
            ((header_len / 4) as u8) << 4,
            self.flags,
            0xff,
            0xff,
            0,
            0,
            0,
            0,
        ]);
        s.extend_from_slice(self.options);
        s.extend_from_slice(self.payload);
        let pseudo = pseudo(src, dst, 6, s.len());
        fill_checksum(&mut s, 16, &pseudo);
        s
    }
}

pub(crate) fn udp(
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&src_port.to_be_bytes());
    s.extend_from_slice(&dst_port.to_be_bytes());
    s.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    let pseudo = pseudo(src, dst, 17, s.len());
    fill_checksum(&mut s, 6, &pseudo);
    s
}

/// An ICMP (v4) or ICMPv6 (v6 addresses) message: type, code, 4 bytes of rest-of-header, body.
pub(crate) fn icmp(
    src: IpAddr,
    dst: IpAddr,
    icmp_type: u8,
    code: u8,
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let mut s = vec![icmp_type, code, 0, 0];
    s.extend_from_slice(&rest);
    s.extend_from_slice(body);
    let prefix = match dst {
        IpAddr::V6(_) => pseudo(src, dst, 58, s.len()),
        IpAddr::V4(_) => Vec::new(),
    };
    fill_checksum(&mut s, 2, &prefix);
    s
}

/// An echo request (or reply) with `id` and `seq`.
pub(crate) fn echo(src: IpAddr, dst: IpAddr, request: bool, id: u16, seq: u16) -> Vec<u8> {
    let t = match (dst.is_ipv6(), request) {
        (false, true) => 8,
        (false, false) => 0,
        (true, true) => 128,
        (true, false) => 129,
    };
    let mut rest = [0u8; 4];
    rest[..2].copy_from_slice(&id.to_be_bytes());
    rest[2..].copy_from_slice(&seq.to_be_bytes());
    icmp(src, dst, t, 0, rest, b"ping")
}

/// An IPv4 header (with `options`) around `payload`; `fragment` is the flags+offset field.
pub(crate) fn ipv4_with(
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    fragment: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 addresses")
    };
    let header_len = 20 + options.len();
    let mut p = vec![0x40 | (header_len / 4) as u8, 0];
    p.extend_from_slice(&((header_len + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34]);
    p.extend_from_slice(&fragment.to_be_bytes());
    p.extend_from_slice(&[64, protocol, 0, 0]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(options);
    fill_checksum(&mut p, 10, &[]);
    p.extend_from_slice(payload);
    p
}

pub(crate) fn ipv4(src: IpAddr, dst: IpAddr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_with(src, dst, protocol, 0x4000, &[], payload)
}

/// An IPv6 header, then `extensions` (each: its own next-header value and its bytes, the
/// first two of which this fills in), then `payload` of protocol `protocol`.
pub(crate) fn ipv6_with(
    src: IpAddr,
    dst: IpAddr,
    extensions: &[(u8, Vec<u8>)],
    protocol: u8,
    payload: &[u8],
) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        panic!("IPv6 addresses")
    };
    let mut chain = Vec::new();
    for (i, (_, bytes)) in extensions.iter().enumerate() {
        let next = extensions.get(i + 1).map_or(protocol, |(n, _)| *n);
        let mut b = bytes.clone();
        b[0] = next;
        chain.extend_from_slice(&b);
    }
    let first = extensions.first().map_or(protocol, |(n, _)| *n);
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&((chain.len() + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[first, 64]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(&chain);
    p.extend_from_slice(payload);
    p
}

pub(crate) fn ipv6(src: IpAddr, dst: IpAddr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    ipv6_with(src, dst, &[], protocol, payload)
}

/// A whole IP packet of the family of `src`.
pub(crate) fn ip(src: IpAddr, dst: IpAddr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    if src.is_ipv6() {
        ipv6(src, dst, protocol, payload)
    } else {
        ipv4(src, dst, protocol, payload)
    }
}

pub(crate) fn tcp_packet(src: &str, dst: &str, tcp: &Tcp<'_>) -> Vec<u8> {
    let (s, d) = (src.parse().unwrap(), dst.parse().unwrap());
    ip(s, d, 6, &tcp.bytes(s, d))
}

pub(crate) fn udp_packet(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    let (s, d) = (src.parse().unwrap(), dst.parse().unwrap());
    ip(s, d, 17, &udp(s, d, sport, dport, b"hello"))
}

pub(crate) fn echo_packet(src: &str, dst: &str, request: bool, id: u16) -> Vec<u8> {
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let protocol = if s.is_ipv6() { 58 } else { 1 };
    ip(s, d, protocol, &echo(s, d, request, id, 1))
}
