//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers.

use std::net::IpAddr;

/// A running one's-complement sum of 16-bit big-endian words.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sum(u64);

impl Sum {
    /// Adds `bytes` (an odd trailing byte is padded with zero). Each call must start on an even
    /// offset of the checksummed data, which holds for every caller here (headers and whole
    /// payloads).
    pub(crate) fn add(mut self, bytes: &[u8]) -> Self {
        let mut chunks = bytes.chunks_exact(2);
        for pair in &mut chunks {
            if let [a, b] = pair {
                self.0 += u64::from(u16::from_be_bytes([*a, *b]));
            }
        }
        if let [last] = chunks.remainder() {
            self.0 += u64::from(u16::from_be_bytes([*last, 0]));
        }
        self
    }

    /// Adds the pseudo-header of a transport segment of `len` bytes and protocol `protocol`.
    pub(crate) fn pseudo_header(self, src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> Self {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self
                .add(&s.octets())
                .add(&d.octets())
                .add(&[0, protocol])
                .add(&(len as u16).to_be_bytes()),
            (s, d) => self
                .add(&ip_octets(s))
                .add(&ip_octets(d))
                .add(&len.to_be_bytes())
                .add(&[0, 0, 0, protocol]),
        }
    }

    /// The checksum: the one's complement of the folded sum.
    pub(crate) fn finish(self) -> u16 {
        let mut s = self.0;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }
}

fn ip_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}
