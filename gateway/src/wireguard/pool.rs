//! The VPN address pool (pure): the gateway takes the pool's first host address for its TUN
//! device, and each device gets the lowest address not yet handed out. Addresses are never
//! reused, revoked devices keep theirs (the store's unique index holds for them too).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The default pool: the start of the shared address space (RFC 6598), which private subnets
/// in a VPC do not use.
pub const DEFAULT_POOL: &str = "100.64.0.0/10";

/// An IPv4 pool of VPN addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressPool {
    net: Ipv4Net,
}

/// Why a pool cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Fewer than two device addresses.
    #[error("the pool {0} is too small: use a prefix of /29 or shorter")]
    TooSmall(Ipv4Net),
    /// Every address is taken.
    #[error("the VPN address pool {0} is exhausted")]
    Exhausted(Ipv4Net),
}

impl AddressPool {
    /// A pool over `net` (its host bits are cleared).
    pub fn new(net: Ipv4Net) -> Result<Self, PoolError> {
        let net = net.trunc();
        if net.prefix_len() > 29 {
            return Err(PoolError::TooSmall(net));
        }
        Ok(Self { net })
    }

    /// The network.
    pub fn net(&self) -> Ipv4Net {
        self.net
    }

    /// The gateway's own address on the TUN device: the first host.
    pub fn gateway_address(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net.network()).saturating_add(1))
    }

    /// Whether `addr` is a device address of this pool.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        let a = u32::from(addr);
        self.net.contains(&addr)
            && a > u32::from(self.gateway_address())
            && a < u32::from(self.net.broadcast())
    }

    /// The lowest device address not in `used`.
    pub fn allocate(&self, used: &BTreeSet<Ipv4Addr>) -> Result<Ipv4Addr, PoolError> {
        let first = u32::from(self.gateway_address()).saturating_add(1);
        let last = u32::from(self.net.broadcast()).saturating_sub(1);
        let mut candidate = first;
        // `used` is sorted: walk it once past the addresses below the candidate.
        for u in used.iter().map(|a| u32::from(*a)) {
            if u < candidate {
                continue;
            }
            if u > candidate {
                break;
            }
            candidate = candidate.saturating_add(1);
        }
        if candidate > last || candidate < first {
            return Err(PoolError::Exhausted(self.net));
        }
        Ok(Ipv4Addr::from(candidate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_lowest_free_and_reports_exhaustion() {
        let pool = AddressPool::new("10.9.0.0/29".parse().unwrap()).unwrap();
        assert_eq!(pool.gateway_address(), Ipv4Addr::new(10, 9, 0, 1));
        let mut used = BTreeSet::new();
        for want in 2..=6 {
            let a = pool.allocate(&used).unwrap();
            assert_eq!(a, Ipv4Addr::new(10, 9, 0, want));
            assert!(pool.contains(a));
            used.insert(a);
        }
        assert_eq!(pool.allocate(&used), Err(PoolError::Exhausted(pool.net())));
        used.remove(&Ipv4Addr::new(10, 9, 0, 4));
        assert_eq!(pool.allocate(&used).unwrap(), Ipv4Addr::new(10, 9, 0, 4));
        assert!(!pool.contains(Ipv4Addr::new(10, 9, 0, 1)));
        assert!(!pool.contains(Ipv4Addr::new(10, 9, 0, 7)));
        assert!(AddressPool::new("10.9.0.0/30".parse().unwrap()).is_err());
    }

    #[test]
    fn addresses_outside_the_pool_do_not_matter() {
        let pool = AddressPool::new(DEFAULT_POOL.parse().unwrap()).unwrap();
        let used: BTreeSet<_> = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(100, 64, 0, 2)]
            .into_iter()
            .collect();
        assert_eq!(pool.allocate(&used).unwrap(), Ipv4Addr::new(100, 64, 0, 3));
    }
}
