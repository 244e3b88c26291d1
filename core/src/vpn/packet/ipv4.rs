//! IPv4 header.

use std::net::{IpAddr, Ipv4Addr};

use super::{take, transport, u16_at, u8_at, PacketInfo, ParseError, Transport};

const MIN_HEADER: usize = 20;
const FRAGMENT_OFFSET_MASK: u16 = 0x1fff;

pub(super) fn parse(bytes: &[u8]) -> Result<PacketInfo, ParseError> {
    let first = u8_at(bytes, 0, "IPv4 header")?;
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < MIN_HEADER {
        return Err(ParseError::BadHeaderLength(header_len));
    }
    take::<MIN_HEADER>(bytes, 0, "IPv4 header")?;
    if bytes.len() < header_len {
        return Err(ParseError::Truncated {
            what: "IPv4 options",
            need: header_len,
            have: bytes.len(),
        });
    }
    let total = usize::from(u16_at(bytes, 2, "IPv4 header")?);
    if total < header_len {
        return Err(ParseError::BadTotalLength {
            total,
            header: header_len,
        });
    }
    let packet = bytes.get(..total).ok_or(ParseError::LengthExceedsBuffer {
        declared: total,
        have: bytes.len(),
    })?;
    let fragment_offset = u16_at(packet, 6, "IPv4 header")? & FRAGMENT_OFFSET_MASK;
    let protocol = u8_at(packet, 9, "IPv4 header")?;
    let src = Ipv4Addr::from(take::<4>(packet, 12, "IPv4 header")?);
    let dst = Ipv4Addr::from(take::<4>(packet, 16, "IPv4 header")?);
    let transport = if fragment_offset != 0 {
        Transport::Fragment { protocol }
    } else {
        let segment = packet.get(header_len..).unwrap_or_default();
        transport::parse(protocol, segment, false)?
    };
    Ok(PacketInfo {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        transport,
        len: total,
        transport_offset: header_len,
    })
}

/// The addresses, protocol number and transport bytes of a quoted (possibly truncated) IPv4
/// packet inside an ICMP error.
pub(super) fn quoted(bytes: &[u8]) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
    let first = *bytes.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < MIN_HEADER {
        return None;
    }
    let protocol = u8_at(bytes, 9, "").ok()?;
    let src = Ipv4Addr::from(take::<4>(bytes, 12, "").ok()?);
    let dst = Ipv4Addr::from(take::<4>(bytes, 16, "").ok()?);
    let fragment_offset = u16_at(bytes, 6, "").ok()? & FRAGMENT_OFFSET_MASK;
    if fragment_offset != 0 {
        return None;
    }
    Some((
        IpAddr::V4(src),
        IpAddr::V4(dst),
        protocol,
        bytes.get(header_len..)?,
    ))
}
