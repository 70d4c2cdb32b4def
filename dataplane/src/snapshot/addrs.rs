//! braid's own addresses (ports' and masquerades' outside pools) and what each is used for,
//! looked up two or three times by every packet: an open-addressed table of at least four
//! slots an address, found by one multiplication and, nearly always, one compare, whatever
//! the number of addresses. A sorted list searched by bisection is a little cheaper with the
//! two to four addresses of a router without a pool, and dearer with each doubling of a
//! masquerade's pool: with 32 pool addresses it took a masqueraded packet about 150
//! instructions, the table about 60 (benches/RESULTS.md, "Own addresses found by hashing
//! (2026-12-02, EPYC)"). The cost that does not grow with the pool is the one kept.

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

/// A slot of the table: an address and its use in 8 bytes, the port and the masquerade
/// counted from 1 (0: none), so that a use of 0 marks a free slot and one load and one
/// compare find an address.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u32,
    /// Port + 1 in the low byte, masquerade + 1 in the high byte.
    used: u16,
}

impl Slot {
    fn to_use(self) -> AddrUse {
        let [port, masq] = self.used.to_le_bytes();
        AddrUse {
            port: usize::from(port).checked_sub(1),
            masq: usize::from(masq).checked_sub(1).map(MasqIdx),
        }
    }
}

/// The table. Every address put in gets a use, so a slot whose use is 0 is free.
#[derive(Debug)]
pub(super) struct OwnAddrs {
    slots: Vec<Slot>,
    /// 32 minus the number of bits of a slot's index (at most 27): the hash's top bits
    /// pick the slot.
    shift: u32,
}

impl Default for OwnAddrs {
    fn default() -> OwnAddrs {
        OwnAddrs::with_room(0)
    }
}

/// Fibonacci hashing: 2^32 divided by the golden ratio, odd.
const MULTIPLIER: u32 = 0x9e37_79b9;

/// A port's or masquerade's index counted from 1, as a slot holds it.
fn from_one(i: usize, what: &str) -> Result<u8, String> {
    u8::try_from(i + 1).map_err(|_| format!("{what}: more than 255"))
}

impl OwnAddrs {
    /// An empty table with room for `n` addresses: at least four slots an address, and 32,
    /// so that a lookup of an address that is not braid's (most packets' destination) meets
    /// a free slot first nearly always.
    fn with_room(n: usize) -> OwnAddrs {
        let len = (4 * n).next_power_of_two().max(32);
        OwnAddrs {
            slots: vec![Slot::default(); len],
            shift: 32 - len.trailing_zeros(),
        }
    }

    /// The table of `ports`' own addresses (port `i` is the `i`th) and `pools`' addresses
    /// (masquerade `m` is the `m`th). The first port, then the first masquerade, of an
    /// address wins, as a scan in config order would find it. Refused beyond 255 ports or
    /// masquerades (a config has at most 32 interfaces, one masquerade each).
    pub(super) fn build<'a>(
        ports: &[Ipv4Addr],
        pools: impl Iterator<Item = &'a [Ipv4Addr]> + Clone,
    ) -> Result<OwnAddrs, String> {
        let n = ports.len() + pools.clone().map(<[Ipv4Addr]>::len).sum::<usize>();
        let mut t = OwnAddrs::with_room(n);
        for (i, ip) in ports.iter().enumerate() {
            let port = from_one(i, "interfaces")?;
            let s = t.entry(*ip);
            if s.used & 0xff == 0 {
                s.used |= u16::from(port);
            }
        }
        for (m, pool) in pools.enumerate() {
            let masq = from_one(m, "masquerades")?;
            for ip in pool {
                let s = t.entry(*ip);
                if s.used >> 8 == 0 {
                    s.used |= u16::from(masq) << 8;
                }
            }
        }
        Ok(t)
    }

    /// The first slot to look at for `ip`.
    #[inline]
    fn home(&self, ip: u32) -> usize {
        (ip.wrapping_mul(MULTIPLIER) >> self.shift) as usize
    }

    /// The slot of `ip`, a free one claimed for it if it has none yet (its use 0 until
    /// the caller sets one).
    fn entry(&mut self, ip: Ipv4Addr) -> &mut Slot {
        let key = u32::from(ip);
        let mask = self.slots.len() - 1;
        let mut at = self.home(key);
        // Never full: at least four slots an address.
        while self.slots[at].used != 0 && self.slots[at].key != key {
            at = (at + 1) & mask;
        }
        self.slots[at].key = key;
        &mut self.slots[at]
    }

    /// What `ip` is to braid.
    #[inline]
    pub(super) fn get(&self, ip: Ipv4Addr) -> AddrUse {
        let key = u32::from(ip);
        let mask = self.slots.len() - 1;
        let mut at = self.home(key);
        // Ends at a free slot at the latest: the table has four slots an address.
        while let Some(&s) = self.slots.get(at) {
            if s.used == 0 {
                break;
            }
            if s.key == key {
                return s.to_use();
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
            let t = OwnAddrs::build(&ports, pools.iter().map(Vec::as_slice)).unwrap();
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
        // 41 addresses of 198.18.0.0/15 that all hash to one slot of a table for 40: the
        // first 40 go in, each is found down the probe, and the 41st, probed past all of
        // them, is not.
        let home = |ip: &Ipv4Addr| OwnAddrs::with_room(40).home(u32::from(*ip));
        let crowd: Vec<Ipv4Addr> = (0..1u32 << 17)
            .map(|n| Ipv4Addr::from(0xc612_0000 | n))
            .filter(|ip| home(ip) == home(&Ipv4Addr::new(198, 18, 0, 0)))
            .take(41)
            .collect();
        assert_eq!(crowd.len(), 41, "too few addresses share a home slot");
        let (ports, stranger) = crowd.split_at(40);
        let t = OwnAddrs::build(ports, std::iter::empty()).unwrap();
        for (i, ip) in ports.iter().enumerate() {
            assert_eq!(t.home(u32::from(*ip)), home(ip), "{ip}");
            assert_eq!(t.get(*ip).port, Some(i), "{ip}");
        }
        assert_eq!(t.get(stranger[0]), AddrUse::default());
    }

    #[test]
    fn more_ports_than_a_slot_counts_are_refused_by_name() {
        let ports = vec![Ipv4Addr::new(198, 18, 0, 1); 256];
        let e = OwnAddrs::build(&ports, std::iter::empty()).unwrap_err();
        assert!(e.starts_with("interfaces:"), "{e}");
        let pools = vec![vec![Ipv4Addr::new(203, 0, 113, 1)]; 256];
        let e = OwnAddrs::build(&[], pools.iter().map(Vec::as_slice)).unwrap_err();
        assert!(e.starts_with("masquerades:"), "{e}");
    }
}
