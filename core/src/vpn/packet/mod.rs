//! IP packet parsing for the filter: addresses, protocol, ports, TCP flags, ICMP type and code.
//!
//! [`parse`] reads an IPv4 or IPv6 packet as it comes out of the tunnel (or the TUN device) and
//! returns a [`PacketInfo`], or a [`ParseError`] naming what is wrong. It never panics and never
//! reads outside the buffer, whatever the bytes: every read is a checked `get`.
//!
//! What it checks: the version, IPv4's header length (at least 20 bytes, inside the packet) and
//! total length (at least the header, at most the buffer), IPv6's payload length (at most the
//! buffer), the extension-header chain (bounded by the packet and by [`MAX_EXTENSION_HEADERS`]),
//! and that the transport header the filter needs is complete. Bytes after the declared length
//! are ignored ([`PacketInfo::len`] says how many count). Checksums are not verified: the
//! destination's stack does that.
//!
//! Fragments: only the first fragment (offset 0) carries the transport header, and it is parsed
//! like any packet (it must hold the whole TCP/UDP/ICMP header, else [`ParseError::Truncated`]:
//! tiny first fragments are a known filter evasion). A non-first fragment carries no ports and
//! parses as [`Transport::Fragment`]; the filter lets one through only for an existing flow
//! between the same two addresses with the same protocol (see [`crate::vpn::flow`]).

mod ipv4;
mod ipv6;
mod transport;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use crate::model::Protocol;

/// How many IPv6 extension headers [`parse`] walks before giving up.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// IP protocol numbers used here.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// What the filter and flow table need to know about one IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The transport protocol and its header fields.
    pub transport: Transport,
    /// The packet's length as its IP header declares it (IPv4 total length; IPv6 40 + payload
    /// length). Bytes of the buffer beyond this are padding, not part of the packet.
    pub len: usize,
    /// Where the transport header starts (after IPv4 options or IPv6 extension headers).
    pub transport_offset: usize,
}

impl PacketInfo {
    /// Whether this is an IPv6 packet.
    pub fn is_v6(&self) -> bool {
        self.dst.is_ipv6()
    }
}

/// The transport layer of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp(TcpInfo),
    /// UDP.
    Udp(UdpInfo),
    /// ICMP (IPv4) or ICMPv6 (IPv6).
    Icmp(IcmpInfo),
    /// A fragment other than the first: no transport header, no ports.
    Fragment {
        /// The IP protocol number of the fragmented packet.
        protocol: u8,
    },
    /// Any other IP protocol (GRE, ESP, SCTP, …): never granted.
    Other {
        /// The IP protocol number.
        protocol: u8,
    },
}

impl Transport {
    /// The grant protocol this packet falls under (`tcp`, `udp`, `icmp`), if any. A non-first
    /// fragment answers for the protocol of the packet it belongs to.
    pub fn protocol(&self) -> Option<Protocol> {
        match self {
            Transport::Tcp(_) => Some(Protocol::Tcp),
            Transport::Udp(_) => Some(Protocol::Udp),
            Transport::Icmp(_) => Some(Protocol::Icmp),
            Transport::Fragment { protocol } => protocol_of(*protocol),
            Transport::Other { .. } => None,
        }
    }

    /// The IP protocol number.
    pub fn ip_protocol(&self, v6: bool) -> u8 {
        match self {
            Transport::Tcp(_) => proto::TCP,
            Transport::Udp(_) => proto::UDP,
            Transport::Icmp(_) if v6 => proto::ICMPV6,
            Transport::Icmp(_) => proto::ICMP,
            Transport::Fragment { protocol } | Transport::Other { protocol } => *protocol,
        }
    }

    /// The source port (TCP/UDP only).
    pub fn src_port(&self) -> Option<u16> {
        match self {
            Transport::Tcp(t) => Some(t.src_port),
            Transport::Udp(u) => Some(u.src_port),
            _ => None,
        }
    }

    /// The destination port (TCP/UDP only).
    pub fn dst_port(&self) -> Option<u16> {
        match self {
            Transport::Tcp(t) => Some(t.dst_port),
            Transport::Udp(u) => Some(u.dst_port),
            _ => None,
        }
    }
}

/// The grant protocol for an IP protocol number.
pub fn protocol_of(ip_protocol: u8) -> Option<Protocol> {
    match ip_protocol {
        proto::TCP => Some(Protocol::Tcp),
        proto::UDP => Some(Protocol::Udp),
        proto::ICMP | proto::ICMPV6 => Some(Protocol::Icmp),
        _ => None,
    }
}

/// TCP header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfo {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Header length in bytes (data offset × 4), 20 to 60.
    pub header_len: usize,
}

/// TCP flags (the low eight bits of the flags field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;

    /// Whether every bit of `flag` is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag == flag
    }
}

/// UDP header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpInfo {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// ICMP or ICMPv6 header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpInfo {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Identifier and sequence number of an echo request or reply.
    pub echo: Option<Echo>,
    /// For an error message (destination unreachable, time exceeded, packet too big, parameter
    /// problem), the packet it quotes, as far as it could be read.
    pub quoted: Option<Quoted>,
}

/// An echo request or reply's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo {
    /// Request (true) or reply (false).
    pub request: bool,
    /// Identifier.
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
}

/// The start of the packet an ICMP error message quotes: enough to find its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// Its source (the client, for an error about a packet the client sent).
    pub src: IpAddr,
    /// Its destination.
    pub dst: IpAddr,
    /// Its grant protocol.
    pub protocol: Protocol,
    /// Its source port, or the echo identifier for ICMP.
    pub src_port: u16,
    /// Its destination port, or the echo identifier for ICMP.
    pub dst_port: u16,
}

/// Why bytes are not a packet the filter can judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No bytes.
    #[error("empty packet")]
    Empty,
    /// The version nibble is neither 4 nor 6.
    #[error("IP version {0} is not 4 or 6")]
    BadVersion(u8),
    /// A header is cut short.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// Which header.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes there.
        have: usize,
    },
    /// IPv4 IHL below 5 (20 bytes).
    #[error("IPv4 header length {0} bytes is below 20")]
    BadHeaderLength(usize),
    /// IPv4 total length smaller than its header.
    #[error("IPv4 total length {total} is smaller than the header ({header})")]
    BadTotalLength {
        /// Declared total length.
        total: usize,
        /// Header length.
        header: usize,
    },
    /// The declared length runs past the buffer.
    #[error("declared length {declared} exceeds the {have} bytes received")]
    LengthExceedsBuffer {
        /// Declared length.
        declared: usize,
        /// Bytes received.
        have: usize,
    },
    /// More IPv6 extension headers than [`MAX_EXTENSION_HEADERS`].
    #[error("more than {MAX_EXTENSION_HEADERS} IPv6 extension headers")]
    TooManyExtensionHeaders,
    /// A TCP data offset below 5 (20 bytes).
    #[error("TCP data offset {0} bytes is below 20")]
    BadTcpHeaderLength(usize),
}

impl ParseError {
    /// A stable code for logs and counters.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::BadVersion(_) => "bad-version",
            ParseError::Truncated { .. } => "truncated",
            ParseError::BadHeaderLength(_) => "bad-header-length",
            ParseError::BadTotalLength { .. } => "bad-total-length",
            ParseError::LengthExceedsBuffer { .. } => "length-exceeds-buffer",
            ParseError::TooManyExtensionHeaders => "too-many-extension-headers",
            ParseError::BadTcpHeaderLength(_) => "bad-tcp-header-length",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tcp(t) => write!(f, "tcp {}→{}", t.src_port, t.dst_port),
            Transport::Udp(u) => write!(f, "udp {}→{}", u.src_port, u.dst_port),
            Transport::Icmp(i) => write!(f, "icmp type {} code {}", i.icmp_type, i.code),
            Transport::Fragment { protocol } => write!(f, "fragment of protocol {protocol}"),
            Transport::Other { protocol } => write!(f, "protocol {protocol}"),
        }
    }
}

/// Parses an IPv4 or IPv6 packet. Never panics, whatever `bytes` holds.
pub fn parse(bytes: &[u8]) -> Result<PacketInfo, ParseError> {
    let first = *bytes.first().ok_or(ParseError::Empty)?;
    match first >> 4 {
        4 => ipv4::parse(bytes),
        6 => ipv6::parse(bytes),
        v => Err(ParseError::BadVersion(v)),
    }
}

/// Reads `N` bytes at `at`, or says which header is cut short.
fn take<const N: usize>(
    bytes: &[u8],
    at: usize,
    what: &'static str,
) -> Result<[u8; N], ParseError> {
    at.checked_add(N)
        .and_then(|end| bytes.get(at..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(ParseError::Truncated {
            what,
            need: at.saturating_add(N),
            have: bytes.len(),
        })
}

fn u16_at(bytes: &[u8], at: usize, what: &'static str) -> Result<u16, ParseError> {
    take::<2>(bytes, at, what).map(u16::from_be_bytes)
}

fn u32_at(bytes: &[u8], at: usize, what: &'static str) -> Result<u32, ParseError> {
    take::<4>(bytes, at, what).map(u32::from_be_bytes)
}

fn u8_at(bytes: &[u8], at: usize, what: &'static str) -> Result<u8, ParseError> {
    take::<1>(bytes, at, what).map(|[b]| b)
}
