//! A deterministic pseudo-random byte stream per seed, and a verifier that checks received bytes
//! against it. Both ends of a transfer derive the same bytes from the seed alone.

/// The byte stream of one seed: xorshift64* words, little-endian, seeded through splitmix64 (so that
/// every seed, 0 included, gives a full-period state).
#[derive(Debug, Clone)]
pub struct Stream {
    state: u64,
    word: [u8; 8],
    used: usize,
}

impl Stream {
    /// The stream of `seed`, positioned at its first byte.
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Stream {
            state: if z == 0 { 1 } else { z },
            word: [0; 8],
            used: 8,
        }
    }

    fn next_word(&mut self) -> [u8; 8] {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
    }

    /// Writes the next `buf.len()` bytes of the stream into `buf`.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let lead = (8 - self.used).min(buf.len());
        buf[..lead].copy_from_slice(&self.word[self.used..self.used + lead]);
        self.used += lead;
        let mut chunks = buf[lead..].chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_word());
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            self.word = self.next_word();
            tail.copy_from_slice(&self.word[..tail.len()]);
            self.used = tail.len();
        }
    }
}

/// Checks bytes, fed in any chunking, against the stream of a seed; remembers the first mismatch.
#[derive(Debug, Clone)]
pub struct Verifier {
    expected: Stream,
    seen: u64,
    first_mismatch: Option<u64>,
    scratch: Vec<u8>,
}

impl Verifier {
    /// A verifier for the stream of `seed`.
    pub fn new(seed: u64) -> Self {
        Verifier {
            expected: Stream::new(seed),
            seen: 0,
            first_mismatch: None,
            scratch: Vec::new(),
        }
    }

    /// Checks the next `data.len()` bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.scratch.resize(data.len(), 0);
        self.expected.fill(&mut self.scratch);
        if self.first_mismatch.is_none() && self.scratch != data {
            let at = self.scratch.iter().zip(data).position(|(a, b)| a != b);
            self.first_mismatch = at.map(|i| self.seen + i as u64);
        }
        self.seen += data.len() as u64;
    }

    /// Bytes checked so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Offset of the first byte that differed from the stream, if any did.
    pub fn first_mismatch(&self) -> Option<u64> {
        self.first_mismatch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        Stream::new(seed).fill(&mut v);
        v
    }

    /// Splits `len` bytes into pieces whose sizes cycle through `cuts` (a zero cut stands for 1).
    fn pieces(len: usize, cuts: &[usize]) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let (mut at, mut i) = (0, 0);
        while at < len {
            let n = cuts[i % cuts.len()].max(1).min(len - at);
            out.push(at..at + n);
            at += n;
            i += 1;
        }
        out
    }

    #[test]
    fn seeds_give_distinct_nonconstant_streams() {
        let a = bytes(0, 4096);
        let b = bytes(1, 4096);
        assert_ne!(a, b);
        assert_eq!(a, bytes(0, 4096));
        // Roughly uniform: every byte value appears in 64 KiB.
        let big = bytes(7, 65536);
        let mut seen = [false; 256];
        big.iter().for_each(|&x| seen[x as usize] = true);
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn verifier_reports_a_short_stream_as_seen_bytes_only() {
        let mut v = Verifier::new(3);
        v.update(&bytes(3, 100));
        assert_eq!(v.seen(), 100);
        assert_eq!(v.first_mismatch(), None);
    }

    proptest! {
        #[test]
        fn chunked_fill_equals_whole_fill(seed: u64, len in 0usize..5000,
                                          cuts in proptest::collection::vec(0usize..40, 1..8)) {
            let whole = bytes(seed, len);
            let mut s = Stream::new(seed);
            let mut chunked = vec![0; len];
            for r in pieces(len, &cuts) {
                s.fill(&mut chunked[r]);
            }
            prop_assert_eq!(whole, chunked);
        }

        #[test]
        fn verifier_accepts_the_stream_in_any_chunking(seed: u64, len in 1usize..5000,
                                                      cuts in proptest::collection::vec(0usize..700, 1..8)) {
            let data = bytes(seed, len);
            let mut v = Verifier::new(seed);
            for r in pieces(len, &cuts) {
                v.update(&data[r]);
            }
            prop_assert_eq!(v.seen(), len as u64);
            prop_assert_eq!(v.first_mismatch(), None);
        }

        #[test]
        fn verifier_finds_the_first_corrupted_byte(seed: u64, len in 1usize..5000, pos: prop::sample::Index,
                                                   flip in 1u8..=255, cut in 1usize..900) {
            let mut data = bytes(seed, len);
            let at = pos.index(len);
            data[at] ^= flip;
            let mut v = Verifier::new(seed);
            for chunk in data.chunks(cut) {
                v.update(chunk);
            }
            prop_assert_eq!(v.first_mismatch(), Some(at as u64));
        }

        #[test]
        fn verifier_rejects_another_seed(seed: u64, len in 64usize..2000) {
            let mut v = Verifier::new(seed);
            v.update(&bytes(seed.wrapping_add(1), len));
            prop_assert!(v.first_mismatch().is_some());
        }
    }
}
