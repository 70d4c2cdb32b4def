//! The NAT's outside addresses: in config order (a session names its address by its
//! place in the pool), and sorted for the membership test every masqueraded packet
//! makes, which a scan of up to [`MAX_POOL`](super::MAX_POOL) addresses made cost more
//! than the session lookup.

use std::net::Ipv4Addr;

/// Outside addresses, in config order, with a sorted copy to test membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    addrs: Vec<Ipv4Addr>,
    sorted: Vec<u32>,
}

impl AddressPool {
    /// The pool of `addrs`, in that order.
    pub fn new(addrs: Vec<Ipv4Addr>) -> AddressPool {
        let mut sorted: Vec<u32> = addrs.iter().map(|&a| u32::from(a)).collect();
        sorted.sort_unstable();
        AddressPool { addrs, sorted }
    }

    /// The addresses in config order.
    pub fn addrs(&self) -> &[Ipv4Addr] {
        &self.addrs
    }

    /// The address at place `i`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<Ipv4Addr> {
        self.addrs.get(i).copied()
    }

    /// How many addresses it holds.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// True when `a` is one of the addresses: a range check for most addresses (those
    /// outside the pool's span), a binary search otherwise.
    #[inline]
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let a = u32::from(a);
        match (self.sorted.first(), self.sorted.last()) {
            (Some(&lo), Some(&hi)) if (lo..=hi).contains(&a) => {
                self.sorted.binary_search(&a).is_ok()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn contains_is_a_scan_of_the_addresses(
            addrs in proptest::collection::vec(any::<u32>(), 0..40),
            probes in proptest::collection::vec(any::<u32>(), 0..40),
        ) {
            let addrs: Vec<Ipv4Addr> = addrs.into_iter().map(Ipv4Addr::from).collect();
            let pool = AddressPool::new(addrs.clone());
            prop_assert_eq!(pool.addrs(), &addrs[..]);
            for a in addrs.iter().copied().chain(probes.into_iter().map(Ipv4Addr::from)) {
                prop_assert_eq!(pool.contains(a), addrs.contains(&a), "{}", a);
            }
        }
    }

    #[test]
    fn keeps_the_config_order() {
        let pool = AddressPool::new(vec![
            Ipv4Addr::new(203, 0, 113, 9),
            Ipv4Addr::new(203, 0, 113, 2),
        ]);
        assert_eq!(pool.get(0), Some(Ipv4Addr::new(203, 0, 113, 9)));
        assert_eq!(pool.get(2), None);
        assert!(pool.contains(Ipv4Addr::new(203, 0, 113, 2)));
        assert!(!pool.contains(Ipv4Addr::new(203, 0, 113, 5)));
    }
}
