//! What the VPN filter ([`crate::vpn::filter`]) reads from a [`Snapshot`]: one user's compiled
//! grants, and the special-destination rule of [`decide`](super::decide), shared so the two
//! paths cannot drift apart.

use std::net::IpAddr;

use ipnet::IpNet;

use super::decide::{cidr_allows, SPECIAL};
use super::snapshot::{CompiledObject, Snapshot};
use crate::model::{GrantId, PortSpec, ProtocolSet, UserName};
use crate::time::Timestamp;

/// What a grant reaches, for a packet filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VpnObject {
    /// A CIDR grant: every address inside, except special destinations not named explicitly
    /// (ask [`VpnObject::reaches`]).
    Cidr(IpNet),
    /// A target whose host is an IP literal: that one address (no special-destination rule,
    /// as in `decide`).
    Address(IpAddr),
    /// A target named by DNS: unreachable by packets.
    Unresolved,
}

impl VpnObject {
    /// Whether a packet to the canonical address `ip` reaches this object (as `decide` answers
    /// for `Destination::Address(ip)`).
    pub(crate) fn reaches(&self, ip: IpAddr) -> bool {
        match self {
            VpnObject::Cidr(net) => cidr_allows(net, ip),
            VpnObject::Address(a) => *a == ip,
            VpnObject::Unresolved => false,
        }
    }
}

/// One compiled grant of a user.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VpnGrant<'a> {
    pub(crate) id: GrantId,
    pub(crate) object: VpnObject,
    pub(crate) protocols: ProtocolSet,
    pub(crate) ports: &'a PortSpec,
    pub(crate) not_before: Timestamp,
    pub(crate) expires_at: Timestamp,
}

impl Snapshot {
    /// Whether `user` is known and active, and their grants (through groups too), unfiltered
    /// by time or protocol. `None` for an unknown user.
    pub(crate) fn vpn_grants(&self, user: &UserName) -> Option<(bool, Vec<VpnGrant<'_>>)> {
        let entry = self.users.get(user)?;
        let grants = entry
            .grants
            .iter()
            .map(|g| VpnGrant {
                id: g.id,
                object: match &g.object {
                    CompiledObject::Cidr(net) => VpnObject::Cidr(*net),
                    CompiledObject::Target { ip: Some(ip), .. } => VpnObject::Address(*ip),
                    CompiledObject::Target { ip: None, .. } => VpnObject::Unresolved,
                },
                protocols: g.protocols,
                ports: &g.ports,
                not_before: g.not_before,
                expires_at: g.expires_at,
            })
            .collect();
        Some((entry.active, grants))
    }
}

/// Whether some special destination range overlaps `net`, so that [`VpnObject::reaches`] may
/// answer differently from plain containment for addresses in it. A filter skips the special
/// check for networks where this is false.
pub(crate) fn touches_special(net: &IpNet) -> bool {
    SPECIAL.iter().any(|(addr, len)| {
        IpNet::new(*addr, *len)
            .is_ok_and(|range| range.contains(&net.network()) || net.contains(&range.network()))
    })
}
