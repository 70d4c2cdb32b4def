//! The neighbour (ARP) cache, shared by all workers.
//!
//! An ARP reply to one worker's request may arrive on another worker's queue, so
//! the cache is shared: readers load an immutable map once per batch (lock-free,
//! arc-swap), and the rare writer (a learned or refreshed entry) publishes a new
//! map by copy-on-write. Learning happens about once per neighbour per refresh
//! interval, so copies are cheap next to the per-packet reads they keep lock-free.

use crate::frame::PortId;
use crate::wire::Mac;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// After this long without confirmation an entry is refreshed on use.
pub const REACHABLE_NS: u64 = 30_000_000_000;
/// After this long without confirmation an entry is no longer used.
pub const EXPIRE_NS: u64 = 120_000_000_000;
/// Default bound on the number of entries.
pub const DEFAULT_CAPACITY: usize = 4096;
/// An entry confirmed this recently is neither refreshed nor changed (Linux's ARP
/// `locktime`): every change copies the map, so a flood of ARP packets, flapping
/// MACs included, publishes at most one map per neighbour per second.
pub const LOCK_NS: u64 = 1_000_000_000;

/// A small, fast hasher for (port, address) keys; not exposed to attacker-chosen
/// collisions beyond what the capacity bound already limits.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// A cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub mac: Mac,
    /// When the mapping was last confirmed (monotonic ns).
    pub confirmed_ns: u64,
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A recently confirmed address.
    Fresh(Mac),
    /// Usable, but due for a refresh request.
    Stale(Mac),
    /// Unknown or expired: resolve first.
    Missing,
}

/// An immutable view of the cache, as loaded for one batch.
#[derive(Debug, Clone)]
pub struct NeighborMap {
    map: HashMap<(PortId, Ipv4Addr), Entry, BuildHasherDefault<KeyHasher>>,
    /// The earliest confirmation of any entry (`u64::MAX` when empty): while it is
    /// not expired, a full map has no room, which is known without a copy.
    oldest_ns: u64,
}

impl Default for NeighborMap {
    fn default() -> Self {
        NeighborMap {
            map: HashMap::default(),
            oldest_ns: u64::MAX,
        }
    }
}

impl NeighborMap {
    /// Looks up `ip` on `port` at time `now`.
    pub fn lookup(&self, port: PortId, ip: Ipv4Addr, now: u64) -> Lookup {
        match self.map.get(&(port, ip)) {
            Some(e) => {
                let age = now.saturating_sub(e.confirmed_ns);
                if age < REACHABLE_NS {
                    Lookup::Fresh(e.mac)
                } else if age < EXPIRE_NS {
                    Lookup::Stale(e.mac)
                } else {
                    Lookup::Missing
                }
            }
            None => Lookup::Missing,
        }
    }

    /// Entries, for display.
    pub fn iter(&self) -> impl Iterator<Item = (PortId, Ipv4Addr, Entry)> + '_ {
        self.map.iter().map(|((p, ip), e)| (*p, *ip, *e))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The shared cache.
#[derive(Debug)]
pub struct Neighbors {
    current: ArcSwap<NeighborMap>,
    capacity: usize,
}

impl Neighbors {
    /// An empty cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Neighbors {
        Neighbors {
            current: ArcSwap::from_pointee(NeighborMap::default()),
            capacity,
        }
    }

    /// The current map.
    pub fn load(&self) -> Arc<NeighborMap> {
        self.current.load_full()
    }

    /// Records that `ip` on `port` has `mac`, confirmed at `now`. Entries confirmed
    /// within [`LOCK_NS`] are left alone (no copy): true if they already say `mac`.
    /// When full, expired entries are dropped first; if none are, the new one is
    /// refused (false), without a copy, and existing neighbours keep working.
    pub fn learn(&self, port: PortId, ip: Ipv4Addr, mac: Mac, now: u64) -> bool {
        let cur = self.current.load();
        match cur.map.get(&(port, ip)) {
            Some(e) if now.saturating_sub(e.confirmed_ns) < LOCK_NS => return e.mac == mac,
            None if cur.map.len() >= self.capacity
                && now.saturating_sub(cur.oldest_ns) < EXPIRE_NS =>
            {
                return false;
            }
            _ => {}
        }
        let mut stored = true;
        self.current.rcu(|old| {
            let mut next = NeighborMap::clone(old);
            if !next.map.contains_key(&(port, ip)) && next.map.len() >= self.capacity {
                next.map
                    .retain(|_, e| now.saturating_sub(e.confirmed_ns) < EXPIRE_NS);
            }
            stored = next.map.contains_key(&(port, ip)) || next.map.len() < self.capacity;
            if stored {
                next.map.insert(
                    (port, ip),
                    Entry {
                        mac,
                        confirmed_ns: now,
                    },
                );
            }
            next.oldest_ns = oldest(&next.map);
            next
        });
        stored
    }

    /// Drops entries not confirmed for [`EXPIRE_NS`].
    pub fn expire(&self, now: u64) {
        if now.saturating_sub(self.current.load().oldest_ns) < EXPIRE_NS {
            return;
        }
        self.current.rcu(|old| {
            let mut next = NeighborMap::clone(old);
            next.map
                .retain(|_, e| now.saturating_sub(e.confirmed_ns) < EXPIRE_NS);
            next.oldest_ns = oldest(&next.map);
            next
        });
    }
}

/// The earliest confirmation in `map` (`u64::MAX` when empty).
fn oldest<S>(map: &HashMap<(PortId, Ipv4Addr), Entry, S>) -> u64 {
    map.values()
        .map(|e| e.confirmed_ns)
        .min()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn entries_age_from_fresh_to_stale_to_missing() {
        let n = Neighbors::new(8);
        let ip = Ipv4Addr::new(198, 18, 11, 1);
        assert_eq!(n.load().lookup(1, ip, 0), Lookup::Missing);
        assert!(n.learn(1, ip, [2, 0, 0, 0, 0, 1], 10 * S));
        let m = n.load();
        assert_eq!(m.lookup(1, ip, 11 * S), Lookup::Fresh([2, 0, 0, 0, 0, 1]));
        assert_eq!(m.lookup(0, ip, 11 * S), Lookup::Missing);
        assert_eq!(m.lookup(1, ip, 50 * S), Lookup::Stale([2, 0, 0, 0, 0, 1]));
        assert_eq!(m.lookup(1, ip, 200 * S), Lookup::Missing);
        n.expire(200 * S);
        assert!(n.load().is_empty());
    }

    #[test]
    fn a_full_cache_refuses_without_copying_the_map() {
        let n = Neighbors::new(2);
        assert!(n.learn(0, Ipv4Addr::new(198, 18, 1, 2), [1; 6], S));
        assert!(n.learn(0, Ipv4Addr::new(198, 18, 1, 3), [2; 6], S));
        let before = n.load();
        for i in 4..200 {
            assert!(!n.learn(0, Ipv4Addr::new(198, 18, 1, i), [3; 6], 2 * S));
        }
        assert!(Arc::ptr_eq(&before, &n.load()), "a refusal published a map");
        // Expiry is still noticed: the oldest entry dates the map.
        assert!(n.learn(0, Ipv4Addr::new(198, 18, 1, 4), [3; 6], S + EXPIRE_NS));
    }

    #[test]
    fn a_flapping_mac_changes_the_entry_at_most_once_a_second() {
        let n = Neighbors::new(8);
        let ip = Ipv4Addr::new(198, 18, 1, 2);
        assert!(n.learn(0, ip, [1; 6], S));
        let before = n.load();
        for i in 0..100 {
            let mac = [2 + (i % 2) as u8; 6];
            assert!(!n.learn(0, ip, mac, S + i * 1_000_000));
        }
        assert!(
            n.learn(0, ip, [1; 6], S + S / 2),
            "the same MAC is not refused"
        );
        assert!(Arc::ptr_eq(&before, &n.load()));
        assert_eq!(n.load().lookup(0, ip, 2 * S), Lookup::Fresh([1; 6]));
        assert!(n.learn(0, ip, [2; 6], S + LOCK_NS));
        assert_eq!(n.load().lookup(0, ip, 3 * S), Lookup::Fresh([2; 6]));
    }

    #[test]
    fn full_cache_refuses_new_entries_but_keeps_old_ones() {
        let n = Neighbors::new(2);
        assert!(n.learn(0, Ipv4Addr::new(198, 18, 1, 2), [1; 6], S));
        assert!(n.learn(0, Ipv4Addr::new(198, 18, 1, 3), [2; 6], S));
        assert!(!n.learn(0, Ipv4Addr::new(198, 18, 1, 4), [3; 6], 2 * S));
        assert_eq!(n.load().len(), 2);
        // Refreshing an existing entry still works when full.
        assert!(n.learn(0, Ipv4Addr::new(198, 18, 1, 2), [9; 6], 3 * S));
        // Once old entries expire, room is made.
        assert!(n.learn(0, Ipv4Addr::new(198, 18, 1, 4), [3; 6], 200 * S));
        assert_eq!(
            n.load().lookup(0, Ipv4Addr::new(198, 18, 1, 4), 200 * S),
            Lookup::Fresh([3; 6])
        );
    }
}
