//! The session index: packed keys to slot numbers, by open addressing with
//! linear probing in a power-of-two array kept at most half full. One lookup
//! usually reads one cache line (a SwissTable reads a control group and then a
//! bucket elsewhere), and deletion shifts entries back instead of leaving
//! tombstones, so the array never needs to grow or be rebuilt.
//!
//! An entry is one `u128`: the key above slot number + 1, and 0 when empty, so
//! the array starts as zeroed memory that the OS commits only as it fills.

// Indexes are slot, entry and word numbers this structure computed and keeps in
// range, never packet bytes (see the module documentation of `nat`).
#![allow(clippy::indexing_slicing)]

use super::hash::mix;

/// An empty entry.
const EMPTY: u128 = 0;

/// The entry for `key` and `slot` (never `EMPTY`).
fn entry(key: u64, slot: u32) -> u128 {
    u128::from(key) << 32 | (u128::from(slot) + 1)
}

fn key_of(e: u128) -> u64 {
    (e >> 32) as u64
}

fn slot_of(e: u128) -> u32 {
    (e as u32).wrapping_sub(1)
}

/// A fixed-size map from keys to slot numbers (below `u32::MAX`).
#[derive(Debug)]
pub(crate) struct Index {
    entries: Vec<u128>,
    mask: usize,
    seed: u64,
}

impl Index {
    /// An index for up to `capacity` keys; `seed` keys the hash.
    pub(crate) fn new(capacity: usize, seed: u64) -> Index {
        let size = (capacity.max(1) * 2).next_power_of_two();
        Index {
            entries: vec![EMPTY; size],
            mask: size - 1,
            seed,
        }
    }

    /// Where `key`'s probe sequence starts.
    fn home(&self, key: u64) -> usize {
        mix(key ^ self.seed) as usize & self.mask
    }

    /// The position holding `key`, or the empty one ending its probe sequence.
    fn find(&self, key: u64) -> (usize, bool) {
        let mut i = self.home(key);
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return (i, false);
            }
            if key_of(e) == key {
                return (i, true);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The slot of `key`.
    pub(crate) fn get(&self, key: u64) -> Option<u32> {
        match self.find(key) {
            (i, true) => Some(slot_of(self.entries[i])),
            _ => None,
        }
    }

    /// Sets `key` to `slot` (below `u32::MAX`). The caller keeps the key count
    /// within the capacity given to [`Index::new`], so a free entry always exists.
    #[inline]
    pub(crate) fn insert(&mut self, key: u64, slot: u32) {
        let (i, _) = self.find(key);
        self.entries[i] = entry(key, slot);
    }

    /// Removes `key`, moving later entries of the run back so every probe
    /// sequence stays unbroken.
    pub(crate) fn remove(&mut self, key: u64) {
        let (mut hole, true) = self.find(key) else {
            return;
        };
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let e = self.entries[j];
            if e == EMPTY {
                break;
            }
            // Move `e` into the hole unless its home lies cyclically in (hole, j].
            let home = self.home(key_of(e));
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = EMPTY;
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<u128>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Agrees with a HashMap over random inserts and removes of clustered
        /// keys (a small key space makes long runs and wrap-around likely).
        #[test]
        fn behaves_like_a_map(
            seed in any::<u64>(),
            ops in proptest::collection::vec((any::<bool>(), 0u64..48, any::<u32>()), 1..600),
        ) {
            let mut index = Index::new(32, seed);
            let mut model: HashMap<u64, u32> = HashMap::new();
            for (insert, key, slot) in ops {
                let slot = slot % u32::MAX;
                if insert && (model.len() < 32 || model.contains_key(&key)) {
                    index.insert(key, slot);
                    model.insert(key, slot);
                } else {
                    index.remove(key);
                    model.remove(&key);
                }
                for k in 0..48 {
                    prop_assert_eq!(index.get(k), model.get(&k).copied(), "key {}", k);
                }
            }
        }
    }

    #[test]
    fn sizes_to_twice_the_capacity() {
        assert_eq!(Index::new(1000, 0).entries.len(), 2048);
        assert_eq!(Index::new(1 << 19, 0).heap_bytes(), 16 << 20);
    }
}
