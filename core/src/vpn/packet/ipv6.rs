//! IPv6 header and extension-header chain.

use std::net::{IpAddr, Ipv6Addr};

use super::{
    take, transport, u16_at, u8_at, PacketInfo, ParseError, Transport, MAX_EXTENSION_HEADERS,
};

const HEADER: usize = 40;

const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const AUTHENTICATION: u8 = 51;
const DESTINATION_OPTIONS: u8 = 60;
const MOBILITY: u8 = 135;
const HIP: u8 = 139;
const SHIM6: u8 = 140;

pub(super) fn parse(bytes: &[u8]) -> Result<PacketInfo, ParseError> {
    take::<HEADER>(bytes, 0, "IPv6 header")?;
    let payload_len = usize::from(u16_at(bytes, 4, "IPv6 header")?);
    let total = HEADER + payload_len;
    let packet = bytes.get(..total).ok_or(ParseError::LengthExceedsBuffer {
        declared: total,
        have: bytes.len(),
    })?;
    let next = u8_at(packet, 6, "IPv6 header")?;
    let src = Ipv6Addr::from(take::<16>(packet, 8, "IPv6 header")?);
    let dst = Ipv6Addr::from(take::<16>(packet, 24, "IPv6 header")?);
    let chain = walk(packet, next)?;
    let transport = if chain.later_fragment {
        Transport::Fragment {
            protocol: chain.protocol,
        }
    } else {
        let segment = packet.get(chain.offset..).unwrap_or_default();
        transport::parse(chain.protocol, segment, true)?
    };
    Ok(PacketInfo {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        transport,
        len: total,
        transport_offset: chain.offset,
    })
}

/// Where the extension-header chain ends.
pub(super) struct Chain {
    /// The upper-layer protocol number.
    pub(super) protocol: u8,
    /// Where its header starts.
    pub(super) offset: usize,
    /// The packet is a fragment other than the first.
    pub(super) later_fragment: bool,
}

/// Walks the extension headers after the fixed header, within `packet`, at most
/// [`MAX_EXTENSION_HEADERS`] of them.
pub(super) fn walk(packet: &[u8], mut next: u8) -> Result<Chain, ParseError> {
    let mut offset = HEADER;
    for _ in 0..=MAX_EXTENSION_HEADERS {
        let len = match next {
            HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS | MOBILITY | HIP | SHIM6 => {
                (usize::from(u8_at(packet, offset + 1, "IPv6 extension header")?) + 1) * 8
            }
            AUTHENTICATION => {
                (usize::from(u8_at(packet, offset + 1, "IPv6 authentication header")?) + 2) * 4
            }
            FRAGMENT => {
                take::<8>(packet, offset, "IPv6 fragment header")?;
                let field = u16_at(packet, offset + 2, "IPv6 fragment header")?;
                let following = u8_at(packet, offset, "IPv6 fragment header")?;
                if field >> 3 != 0 {
                    return Ok(Chain {
                        protocol: following,
                        offset: offset + 8,
                        later_fragment: true,
                    });
                }
                8
            }
            protocol => {
                return Ok(Chain {
                    protocol,
                    offset,
                    later_fragment: false,
                })
            }
        };
        let end = offset + len;
        if end > packet.len() {
            return Err(ParseError::Truncated {
                what: "IPv6 extension header",
                need: end,
                have: packet.len(),
            });
        }
        next = u8_at(packet, offset, "IPv6 extension header")?;
        offset = end;
    }
    Err(ParseError::TooManyExtensionHeaders)
}

/// The addresses, protocol number and transport bytes of a quoted (possibly truncated) IPv6
/// packet inside an ICMPv6 error.
pub(super) fn quoted(bytes: &[u8]) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
    if bytes.first()? >> 4 != 6 {
        return None;
    }
    let next = u8_at(bytes, 6, "").ok()?;
    let src = Ipv6Addr::from(take::<16>(bytes, 8, "").ok()?);
    let dst = Ipv6Addr::from(take::<16>(bytes, 24, "").ok()?);
    let chain = walk(bytes, next).ok().filter(|c| !c.later_fragment)?;
    Some((
        IpAddr::V6(src),
        IpAddr::V6(dst),
        chain.protocol,
        bytes.get(chain.offset..)?,
    ))
}
