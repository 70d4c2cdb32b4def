//! braid's own addresses (ports' and masquerades' outside pools) and what each is used for,
//! looked up by every packet: an open-addressed table of at least twice as many slots as
//! addresses, found by one multiplication and, nearly always, one compare. A sorted list
//! searched by bisection took a packet about 37 instructions where braid has a few addresses
//! and more with a pool (benches/RESULTS.md, "Own addresses found by hashing").

use crate::frame::PortId;
use crate::ids::MasqIdx;
use std::net::Ipv4Addr;

/// What an address of braid's is used for (both `None` for any other address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddrUse {
    /// The port whose own address it is.
    pub port: Option<PortId>,
    /// The masquerade whose outside pool holds it.
    pub masq: Option<MasqIdx>,
}

impl AddrUse {
    fn is_unused(&self) -> bool {
        self.port.is_none() && self.masq.is_none()
    }
}

/// The table. A slot whose use is empty is free: every address put in gets a use.
#[derive(Debug)]
pub(super) struct OwnAddrs {
    slots: Vec<(u32, AddrUse)>,
    /// 32 minus the number of bits of a slot's index: the hash's top bits pick the slot.
    shift: u32,
}

impl Default for OwnAddrs {
    fn default() -> OwnAddrs {
        OwnAddrs::with_room(0)
    }
}

/// Fibonacci hashing: 2^32 divided by the golden ratio, odd.
const MULTIPLIER: u32 = 0x9e37_79b9;

impl OwnAddrs {
    /// An empty table with room for `n` addresses.
    fn with_room(n: usize) -> OwnAddrs {
        let len = (2 * n).next_power_of_two().max(8);
        OwnAddrs {
            slots: vec![(0, AddrUse::default()); len],
            shift: 32 - len.trailing_zeros(),
        }
    }

    /// The table of `ports`' own addresses (port `i` is the `i`th) and `pools`' addresses
    /// (masquerade `m` is the `m`th). The first port, then the first masquerade, of an
    /// address wins, as a scan in config order would find it.
    pub(super) fn build<'a>(
        ports: &[Ipv4Addr],
        pools: impl Iterator<Item = &'a [Ipv4Addr]> + Clone,
    ) -> OwnAddrs {
        let n = ports.len() + pools.clone().map(<[Ipv4Addr]>::len).sum::<usize>();
        let mut t = OwnAddrs::with_room(n);
        for (i, ip) in ports.iter().enumerate() {
            t.entry(*ip).port.get_or_insert(i);
        }
        for (m, pool) in pools.enumerate() {
            for ip in pool {
                t.entry(*ip).masq.get_or_insert(MasqIdx(m));
            }
        }
        t
    }

    /// The first slot to look at for `ip`.
    #[inline]
    fn home(&self, ip: u32) -> usize {
        ip.wrapping_mul(MULTIPLIER)
            .checked_shr(self.shift)
            .unwrap_or(0) as usize
    }

    /// The use of `ip`, in a free slot claimed for it if it has none yet (its use empty
    /// until the caller sets one).
    fn entry(&mut self, ip: Ipv4Addr) -> &mut AddrUse {
        let key = u32::from(ip);
        let mask = self.slots.len() - 1;
        let mut at = self.home(key);
        // Never full: at least twice as many slots as addresses.
        while !self.slots[at].1.is_unused() && self.slots[at].0 != key {
            at = (at + 1) & mask;
        }
        self.slots[at].0 = key;
        &mut self.slots[at].1
    }

    /// What `ip` is to braid.
    #[inline]
    pub(super) fn get(&self, ip: Ipv4Addr) -> AddrUse {
        let key = u32::from(ip);
        let mask = self.slots.len() - 1;
        let mut at = self.home(key);
        // Bounded by the table's length, though a free slot always ends the probe sooner.
        for _ in 0..self.slots.len() {
            let Some(&(k, u)) = self.slots.get(at) else {
                break;
            };
            if u.is_unused() {
                break;
            }
            if k == key {
                return u;
            }
            at = (at + 1) & mask;
        }
        AddrUse::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a scan in config order finds: the first port, the first masquerade.
    fn scanned(ports: &[Ipv4Addr], pools: &[Vec<Ipv4Addr>], ip: Ipv4Addr) -> AddrUse {
        AddrUse {
            port: ports.iter().position(|a| *a == ip),
            masq: pools.iter().position(|p| p.contains(&ip)).map(MasqIdx),
        }
    }

    /// Addresses from a small space, so that ports and pools share some.
    fn addr() -> impl Strategy<Value = Ipv4Addr> {
        (0u32..64).prop_map(|n| Ipv4Addr::from(0xc612_0000 | ((n * 0x0101_0101) & 0xffff)))
    }

    proptest! {
        #[test]
        fn finds_what_a_scan_in_config_order_finds(
            ports in prop::collection::vec(addr(), 0..6),
            pools in prop::collection::vec(prop::collection::vec(addr(), 0..40), 0..3),
            probes in prop::collection::vec(addr(), 1..32),
        ) {
            let t = OwnAddrs::build(&ports, pools.iter().map(Vec::as_slice));
            for ip in ports.iter().chain(pools.iter().flatten()).chain(&probes) {
                prop_assert_eq!(t.get(*ip), scanned(&ports, &pools, *ip), "{}", ip);
            }
        }
    }

    #[test]
    fn an_empty_table_knows_no_address() {
        let t = OwnAddrs::default();
        assert_eq!(t.get(Ipv4Addr::new(198, 18, 0, 1)), AddrUse::default());
    }

    #[test]
    fn addresses_of_one_home_slot_are_all_found() {
        // Addresses that differ only above the bits the hash keeps collide often; every
        // one of a crowd of them is still found, and a stranger is not.
        let ports: Vec<Ipv4Addr> = (0..40u32).map(|i| Ipv4Addr::from((i << 26) | 1)).collect();
        let t = OwnAddrs::build(&ports, std::iter::empty());
        for (i, ip) in ports.iter().enumerate() {
            assert_eq!(t.get(*ip).port, Some(i));
        }
        assert_eq!(t.get(Ipv4Addr::new(203, 0, 113, 9)), AddrUse::default());
    }
}
