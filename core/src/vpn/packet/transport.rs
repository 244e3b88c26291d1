//! TCP, UDP, ICMP and ICMPv6 headers.

use super::{
    ipv4, ipv6, proto, protocol_of, u16_at, u32_at, u8_at, Echo, IcmpInfo, ParseError, Quoted,
    TcpFlags, TcpInfo, Transport, UdpInfo,
};
use crate::model::Protocol;

/// Parses the transport header of protocol `protocol` at the start of `segment`.
pub(super) fn parse(protocol: u8, segment: &[u8], v6: bool) -> Result<Transport, ParseError> {
    match protocol {
        proto::TCP => tcp(segment).map(Transport::Tcp),
        proto::UDP => Ok(Transport::Udp(UdpInfo {
            src_port: u16_at(segment, 0, "UDP header")?,
            dst_port: u16_at(segment, 2, "UDP header")?,
        })),
        proto::ICMP if !v6 => icmp(segment, false).map(Transport::Icmp),
        proto::ICMPV6 if v6 => icmp(segment, true).map(Transport::Icmp),
        protocol => Ok(Transport::Other { protocol }),
    }
}

fn tcp(segment: &[u8]) -> Result<TcpInfo, ParseError> {
    let offset_byte = u8_at(segment, 12, "TCP header")?;
    let header_len = usize::from(offset_byte >> 4) * 4;
    if header_len < 20 {
        return Err(ParseError::BadTcpHeaderLength(header_len));
    }
    if segment.len() < header_len {
        return Err(ParseError::Truncated {
            what: "TCP options",
            need: header_len,
            have: segment.len(),
        });
    }
    Ok(TcpInfo {
        src_port: u16_at(segment, 0, "TCP header")?,
        dst_port: u16_at(segment, 2, "TCP header")?,
        seq: u32_at(segment, 4, "TCP header")?,
        ack: u32_at(segment, 8, "TCP header")?,
        flags: TcpFlags(u8_at(segment, 13, "TCP header")?),
        header_len,
    })
}

/// ICMP echo request and reply types, and the error types that quote a packet.
pub(crate) mod icmp_types {
    /// ICMPv4 echo reply.
    pub(crate) const V4_ECHO_REPLY: u8 = 0;
    /// ICMPv4 destination unreachable.
    pub(crate) const V4_UNREACHABLE: u8 = 3;
    /// ICMPv4 echo request.
    pub(crate) const V4_ECHO_REQUEST: u8 = 8;
    /// ICMPv4 time exceeded.
    pub(crate) const V4_TIME_EXCEEDED: u8 = 11;
    /// ICMPv4 parameter problem.
    pub(crate) const V4_PARAMETER_PROBLEM: u8 = 12;
    /// ICMPv6 destination unreachable.
    pub(crate) const V6_UNREACHABLE: u8 = 1;
    /// ICMPv6 packet too big.
    pub(crate) const V6_PACKET_TOO_BIG: u8 = 2;
    /// ICMPv6 time exceeded.
    pub(crate) const V6_TIME_EXCEEDED: u8 = 3;
    /// ICMPv6 parameter problem.
    pub(crate) const V6_PARAMETER_PROBLEM: u8 = 4;
    /// ICMPv6 echo request.
    pub(crate) const V6_ECHO_REQUEST: u8 = 128;
    /// ICMPv6 echo reply.
    pub(crate) const V6_ECHO_REPLY: u8 = 129;

    /// Whether `icmp_type` is an error message (one that quotes a packet).
    pub(crate) fn is_error(icmp_type: u8, v6: bool) -> bool {
        if v6 {
            matches!(
                icmp_type,
                V6_UNREACHABLE | V6_PACKET_TOO_BIG | V6_TIME_EXCEEDED | V6_PARAMETER_PROBLEM
            )
        } else {
            matches!(
                icmp_type,
                V4_UNREACHABLE | V4_TIME_EXCEEDED | V4_PARAMETER_PROBLEM
            )
        }
    }

    /// Whether it is an echo request (`Some(true)`), an echo reply (`Some(false)`) or neither.
    pub(crate) fn echo(icmp_type: u8, v6: bool) -> Option<bool> {
        match (v6, icmp_type) {
            (false, V4_ECHO_REQUEST) | (true, V6_ECHO_REQUEST) => Some(true),
            (false, V4_ECHO_REPLY) | (true, V6_ECHO_REPLY) => Some(false),
            _ => None,
        }
    }
}

fn icmp(segment: &[u8], v6: bool) -> Result<IcmpInfo, ParseError> {
    let what = if v6 { "ICMPv6 header" } else { "ICMP header" };
    let icmp_type = u8_at(segment, 0, what)?;
    let code = u8_at(segment, 1, what)?;
    u16_at(segment, 2, what)?;
    let echo = match icmp_types::echo(icmp_type, v6) {
        Some(request) => Some(Echo {
            request,
            id: u16_at(segment, 4, what)?,
            seq: u16_at(segment, 6, what)?,
        }),
        None => None,
    };
    let quoted = if icmp_types::is_error(icmp_type, v6) {
        segment.get(8..).and_then(|q| quoted(q, v6))
    } else {
        None
    };
    Ok(IcmpInfo {
        icmp_type,
        code,
        echo,
        quoted,
    })
}

/// Reads the flow identity of the packet an ICMP error quotes (only the first 8 bytes of its
/// transport header are guaranteed to be there).
fn quoted(bytes: &[u8], v6: bool) -> Option<Quoted> {
    let (src, dst, number, transport) = if v6 {
        ipv6::quoted(bytes)?
    } else {
        ipv4::quoted(bytes)?
    };
    let protocol = protocol_of(number)?;
    let (src_port, dst_port) = match protocol {
        Protocol::Icmp => {
            let t = u8_at(transport, 0, "").ok()?;
            icmp_types::echo(t, v6)?;
            let id = u16_at(transport, 4, "").ok()?;
            (id, id)
        }
        _ => (
            u16_at(transport, 0, "").ok()?,
            u16_at(transport, 2, "").ok()?,
        ),
    };
    if (number == proto::ICMP && v6) || (number == proto::ICMPV6 && !v6) {
        return None;
    }
    Some(Quoted {
        src,
        dst,
        protocol,
        src_port,
        dst_port,
    })
}
