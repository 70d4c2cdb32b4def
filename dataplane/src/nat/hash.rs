//! A fast seeded hasher for the session maps. Every key is packed into one
//! `u64`, so hashing is one xor and a multiply-xorshift finalizer; std's SipHash
//! would cost more than the rest of a lookup.

use std::hash::{BuildHasher, Hasher};

/// A bijective 64-bit mix (the splitmix64 finalizer): every input bit moves
/// about half the output bits, so both the low bits (bucket) and the high bits
/// (tag) of the hash are usable.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Builds [`KeyHasher`]s with a per-table seed, so bucket collisions cannot be
/// precomputed by a host choosing its addresses and ports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeededState {
    seed: u64,
}

impl SeededState {
    pub(crate) fn new(seed: u64) -> Self {
        SeededState { seed }
    }
}

impl BuildHasher for SeededState {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.seed)
    }
}

/// Hasher for integer keys: each written integer is xored into the state and mixed.
#[derive(Debug)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (w, b) in word.iter_mut().zip(chunk) {
                *w = *b;
            }
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = mix(self.0 ^ v);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn mix_spreads_sequential_keys_over_buckets() {
        // Keys that differ only in a port (bits 16..32) must fill the low bits evenly.
        let buckets = 1024u64;
        let mut used = HashSet::new();
        for port in 0..buckets {
            used.insert(mix(0xc612_0001_0000_0011 | port << 16) % buckets);
        }
        // A random function fills about 63% of the buckets; a bad one far fewer.
        assert!(used.len() > 550, "{} buckets used", used.len());
    }

    #[test]
    fn seed_changes_the_hash() {
        let h = |seed| {
            let mut s = SeededState::new(seed).build_hasher();
            s.write_u64(42);
            s.finish()
        };
        assert_ne!(h(1), h(2));
        assert_eq!(h(7), h(7));
    }
}
