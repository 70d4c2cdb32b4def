//! The session index: keys to slot numbers, by open addressing with linear
//! probing in a power-of-two array kept at most half full. One lookup usually
//! reads one cache line, and deletion shifts entries back instead of leaving
//! tombstones, so the array never needs to grow or be rebuilt.
//!
//! An entry is one `u64`: a 32-bit tag of the key's hash above the slot number
//! plus one, and 0 when empty, so the array starts as zeroed memory that the OS
//! commits only as it fills. The key itself is not stored: the session slot
//! holds it, and the lookup reads that slot anyway, so a caller-given check
//! confirms a tag match (a false match, about one probe in 2^(32 - bits of the
//! position), only costs one more slot read). The probe sequence starts at the
//! tag's top bits, so moving entries back on deletion needs no key.
//!
//! The array is advised onto huge pages (`io::pages`): at a million sessions
//! it spans 16 MiB read at random.

// Indexes are slot, entry and word numbers this structure computed and keeps in
// range, never packet bytes (see the module documentation of `nat`).
#![allow(clippy::indexing_slicing)]

use super::hash::mix;
use crate::io::pages;

/// An empty entry.
const EMPTY: u64 = 0;

/// The entry for `tag` and `slot` (never `EMPTY`).
fn entry(tag: u32, slot: u32) -> u64 {
    u64::from(tag) << 32 | (u64::from(slot) + 1)
}

fn tag_of(e: u64) -> u32 {
    (e >> 32) as u32
}

fn slot_of(e: u64) -> u32 {
    (e as u32).wrapping_sub(1)
}

/// A fixed-size map from key tags to slot numbers (below `u32::MAX`); the
/// caller keeps the keys in its slots.
#[derive(Debug)]
pub(crate) struct Index {
    entries: Vec<u64>,
    mask: usize,
    /// `32 - log2(entries.len())`: a tag shifted right by it is its home.
    shift: u32,
    seed: u64,
}

impl Index {
    /// An index for up to `capacity` keys (at most 2^31); `seed` keys the hash.
    pub(crate) fn new(capacity: usize, seed: u64) -> Index {
        let size = (capacity.clamp(1, 1 << 31) * 2).next_power_of_two();
        let entries = vec![EMPTY; size];
        pages::advise_huge_pages(&entries);
        Index {
            entries,
            mask: size - 1,
            shift: 32 - size.trailing_zeros(),
            seed,
        }
    }

    /// The tag of `key`: what the other methods take.
    pub(crate) fn tag(&self, key: u64) -> u32 {
        (mix(key ^ self.seed) >> 32) as u32
    }

    /// Where the probe sequence of `tag` starts.
    fn home(&self, tag: u32) -> usize {
        (tag >> self.shift) as usize
    }

    /// The slot with tag `tag` for which `is_key` holds (it checks the key
    /// the slot holds).
    #[inline]
    pub(crate) fn get(&self, tag: u32, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut i = self.home(tag);
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return None;
            }
            if tag_of(e) == tag && is_key(slot_of(e)) {
                return Some(slot_of(e));
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Starts loading the entry where `tag`'s probe sequence starts.
    #[inline]
    pub(crate) fn prefetch(&self, tag: u32) {
        pages::prefetch(&self.entries[self.home(tag)]);
    }

    /// Adds `slot` under `tag`. The caller adds no key twice and keeps the
    /// key count within the capacity given to [`Index::new`], so a free entry
    /// always exists.
    pub(crate) fn insert(&mut self, tag: u32, slot: u32) {
        let mut i = self.home(tag);
        while self.entries[i] != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.entries[i] = entry(tag, slot);
    }

    /// Removes `slot`, added under `tag`, moving later entries of the run back
    /// so every probe sequence stays unbroken.
    pub(crate) fn remove(&mut self, tag: u32, slot: u32) {
        let wanted = entry(tag, slot);
        let mut hole = self.home(tag);
        loop {
            let e = self.entries[hole];
            if e == wanted {
                break;
            }
            if e == EMPTY {
                return;
            }
            hole = (hole + 1) & self.mask;
        }
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let e = self.entries[j];
            if e == EMPTY {
                break;
            }
            // Move `e` into the hole unless its home lies cyclically in (hole, j].
            let home = self.home(tag_of(e));
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
        self.entries.capacity() * std::mem::size_of::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// An index with its keys kept by slot, as the table keeps them in its slots.
    struct Keyed {
        index: Index,
        keys: Vec<Option<u64>>,
        free: Vec<u32>,
    }

    impl Keyed {
        fn new(capacity: usize, seed: u64) -> Keyed {
            Keyed {
                index: Index::new(capacity, seed),
                keys: vec![None; capacity],
                free: (0..capacity as u32).rev().collect(),
            }
        }
        fn get(&self, key: u64) -> Option<u32> {
            let tag = self.index.tag(key);
            self.index.get(tag, |s| self.keys[s as usize] == Some(key))
        }
        fn insert(&mut self, key: u64) -> Option<u32> {
            let slot = self.free.pop()?;
            self.keys[slot as usize] = Some(key);
            self.index.insert(self.index.tag(key), slot);
            Some(slot)
        }
        fn remove(&mut self, key: u64) {
            if let Some(slot) = self.get(key) {
                self.index.remove(self.index.tag(key), slot);
                self.keys[slot as usize] = None;
                self.free.push(slot);
            }
        }
    }

    proptest! {
        /// Agrees with a HashMap over random inserts and removes of clustered
        /// keys, up to a full table (a small key space and a seed giving few
        /// homes make long runs, wrap-around and shared tags likely).
        #[test]
        fn behaves_like_a_map(
            seed in any::<u64>(),
            ops in proptest::collection::vec((any::<bool>(), 0u64..48), 1..600),
        ) {
            let mut index = Keyed::new(32, seed);
            let mut model: HashMap<u64, u32> = HashMap::new();
            for (insert, key) in ops {
                if insert {
                    if model.contains_key(&key) {
                        continue;
                    }
                    match index.insert(key) {
                        Some(slot) => {
                            model.insert(key, slot);
                        }
                        None => prop_assert_eq!(model.len(), 32, "refused before full"),
                    }
                } else {
                    index.remove(key);
                    model.remove(&key);
                }
                for k in 0..48 {
                    prop_assert_eq!(index.get(k), model.get(&k).copied(), "key {}", k);
                }
            }
        }

        /// Entries whose tags are equal (the key check tells them apart) and
        /// whose homes are crowded into a few positions stay reachable through
        /// any order of removals.
        #[test]
        fn equal_tags_and_crowded_homes(
            tags in proptest::collection::vec(0u32..4, 1..=16),
            order in Just((0..16).collect::<Vec<usize>>()).prop_shuffle(),
        ) {
            // 16 keys in 32 entries, every tag's home 0 or the last position
            // (the top bit of the tag picks), so runs wrap around the end.
            let mut index = Index::new(16, 0);
            let tag = |t: u32| if t.is_multiple_of(2) { t } else { u32::MAX - t };
            for (slot, &t) in tags.iter().enumerate() {
                index.insert(tag(t), slot as u32);
            }
            let mut live: HashMap<u32, u32> = tags.iter().enumerate().map(|(s, &t)| (s as u32, tag(t))).collect();
            for &slot in order.iter().filter(|&&s| s < tags.len()) {
                let slot = slot as u32;
                index.remove(live[&slot], slot);
                live.remove(&slot);
                for (&s, &t) in &live {
                    prop_assert_eq!(index.get(t, |x| x == s), Some(s), "slot {}", s);
                }
                prop_assert_eq!(index.get(tag(0), |x| x == slot), None);
            }
            prop_assert!(index.entries.iter().all(|&e| e == EMPTY));
        }
    }

    #[test]
    fn sizes_to_twice_the_capacity() {
        assert_eq!(Index::new(1000, 0).entries.len(), 2048);
        assert_eq!(Index::new(1 << 20, 0).heap_bytes(), 16 << 20);
    }

    #[test]
    fn a_tag_match_is_checked_by_the_key() {
        let mut index = Index::new(4, 9);
        index.insert(77, 1);
        index.insert(77, 2);
        assert_eq!(index.get(77, |s| s == 2), Some(2));
        assert_eq!(index.get(77, |_| false), None);
        index.remove(77, 1);
        assert_eq!(index.get(77, |s| s == 1), None);
        assert_eq!(index.get(77, |_| true), Some(2));
    }
}
