//! Outside ports: the configured range, which worker owns which port, and a
//! bitmap allocator over one worker's share.
//!
//! The range is cut into chunks of 64 ports (one bitmap word each); chunk `c`
//! belongs to worker `c % workers`. Interleaving keeps the workers' shares even
//! wherever in the range clients pick their source ports.

// Indexes are slot, entry and word numbers this structure computed and keeps in
// range, never packet bytes (see the module documentation of `nat`).
#![allow(clippy::indexing_slicing)]

/// Ports per chunk: one bitmap word.
const CHUNK: u16 = 64;

/// The outside port range `lo..=hi` the NAT allocates from (default 1024-65535).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port (inclusive).
    pub hi: u16,
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange {
            lo: 1024,
            hi: 65535,
        }
    }
}

impl PortRange {
    /// True when `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }

    /// Number of 64-port chunks (the last may be partial); 0 for an empty range.
    fn chunks(&self) -> usize {
        if self.lo > self.hi {
            return 0;
        }
        usize::from((self.hi - self.lo) / CHUNK) + 1
    }
}

/// Which share of the port range a table owns: worker `worker` of `workers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSlice {
    /// This worker's index, below `workers`.
    pub worker: usize,
    /// Number of workers.
    pub workers: usize,
}

/// The worker that owns outside port `port`: out→in packets must be translated
/// there. A port outside the range has no session anywhere; it maps to worker 0.
pub fn owner_of_port(port: u16, range: PortRange, workers: usize) -> usize {
    if workers == 0 || !range.contains(port) {
        return 0;
    }
    usize::from((port - range.lo) / CHUNK) % workers
}

/// A position in a worker's bitmap: word (owned chunk) and bit.
type Pos = (usize, u32);

/// The mapping between ports and positions in one worker's bitmap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SliceMap {
    range: PortRange,
    worker: usize,
    workers: usize,
    words: usize,
}

impl SliceMap {
    /// The ports `slice` owns in `range`, or `None` if it owns none.
    pub(crate) fn new(range: PortRange, slice: PortSlice) -> Option<SliceMap> {
        let chunks = range.chunks();
        if slice.workers == 0 || slice.worker >= slice.workers || slice.worker >= chunks {
            return None;
        }
        let words = (chunks - slice.worker).div_ceil(slice.workers);
        Some(SliceMap {
            range,
            worker: slice.worker,
            workers: slice.workers,
            words,
        })
    }

    /// Number of ports this worker owns.
    #[cfg(test)]
    pub(crate) fn port_count(&self) -> usize {
        (0..self.words)
            .map(|w| self.valid(w).count_ones() as usize)
            .sum()
    }

    /// The position of `port` if this worker owns it.
    fn pos(&self, port: u16) -> Option<Pos> {
        if !self.range.contains(port) {
            return None;
        }
        let off = port - self.range.lo;
        let chunk = usize::from(off / CHUNK);
        (chunk % self.workers == self.worker)
            .then_some((chunk / self.workers, u32::from(off % CHUNK)))
    }

    /// The first position whose port is at or after `port` (wrapping to the start).
    fn start(&self, port: u16) -> Pos {
        if let Some(pos) = self.pos(port) {
            return pos;
        }
        if !self.range.contains(port) {
            return (0, 0);
        }
        let chunk = usize::from((port - self.range.lo) / CHUNK);
        let word = chunk / self.workers + usize::from(chunk % self.workers > self.worker);
        if word < self.words {
            (word, 0)
        } else {
            (0, 0)
        }
    }

    /// The port at `pos` (a position `valid` allows).
    fn port(&self, (word, bit): Pos) -> u16 {
        let chunk = word * self.workers + self.worker;
        // chunk * 64 + bit <= hi - lo, as `valid` only allows such bits.
        self.range.lo + (chunk as u16) * CHUNK + bit as u16
    }

    /// The bits of `word` that stand for ports in the range.
    fn valid(&self, word: usize) -> u64 {
        let chunk = word * self.workers + self.worker;
        let first = chunk * usize::from(CHUNK);
        let span = usize::from(self.range.hi - self.range.lo) + 1;
        let n = span.saturating_sub(first).min(64);
        if n == 64 {
            u64::MAX
        } else {
            (1u64 << n) - 1
        }
    }
}

/// Used ports of one (outside address, protocol) in one worker's share: a bit
/// per port, and a summary bit per word that is full, so finding the next free
/// port costs a few word operations however full the share is.
#[derive(Debug, Clone)]
pub(crate) struct PortBitmap {
    used: Vec<u64>,
    full: Vec<u64>,
}

impl PortBitmap {
    /// An empty bitmap for the ports of `map` (bits outside the range are marked used).
    ///
    /// Built without a pass over the words (a table is built per worker on every
    /// masquerade change): every word but the last is a whole chunk of the range,
    /// so only the last can have bits outside it, and no word starts full.
    pub(crate) fn new(map: &SliceMap) -> PortBitmap {
        let mut used = vec![0u64; map.words];
        let last = map.words.saturating_sub(1);
        if let Some(w) = used.last_mut() {
            *w = !map.valid(last);
        }
        let mut full = vec![0u64; map.words.div_ceil(64)];
        // Summary bits past the last word count as full, so searches skip them.
        if let (Some(s), past @ 1..) = (full.last_mut(), map.words % 64) {
            *s = u64::MAX << past;
        }
        let mut b = PortBitmap { used, full };
        if map.words > 0 {
            b.update_full(last);
        }
        b
    }

    fn update_full(&mut self, word: usize) {
        let (s, bit) = (word / 64, word % 64);
        if self.used[word] == u64::MAX {
            self.full[s] |= 1 << bit;
        } else {
            self.full[s] &= !(1 << bit);
        }
    }

    /// The first word at or after `from` that has a free bit.
    fn next_open_word(&self, from: usize) -> Option<usize> {
        let mut s = from / 64;
        let mut open = !*self.full.get(s)? & (u64::MAX << (from % 64));
        loop {
            if open != 0 {
                return Some(s * 64 + open.trailing_zeros() as usize);
            }
            s += 1;
            open = !*self.full.get(s)?;
        }
    }

    /// The first free position at or after `pos`, wrapping around once.
    fn find_free(&self, (word, bit): Pos) -> Option<Pos> {
        let here = *self.used.get(word)?;
        let after = !here & (u64::MAX << bit);
        if after != 0 {
            return Some((word, after.trailing_zeros()));
        }
        let next = self
            .next_open_word(word + 1)
            .or_else(|| self.next_open_word(0).filter(|&w| w <= word))?;
        Some((next, (!self.used[next]).trailing_zeros()))
    }

    fn set(&mut self, (word, bit): Pos, used: bool) {
        if used {
            self.used[word] |= 1 << bit;
        } else {
            self.used[word] &= !(1 << bit);
        }
        self.update_full(word);
    }
}

/// The port allocator of one worker: a bitmap per (outside address, protocol).
#[derive(Debug, Clone)]
pub(crate) struct PortAllocator {
    map: SliceMap,
    /// Indexed by `address * PROTOCOLS + protocol`.
    bitmaps: Vec<PortBitmap>,
}

/// Protocols with their own port (or ICMP identifier) space.
pub(crate) const PROTOCOLS: usize = 3;

impl PortAllocator {
    /// An allocator for `addresses` outside addresses over the ports of `map`.
    pub(crate) fn new(map: SliceMap, addresses: usize) -> PortAllocator {
        let empty = PortBitmap::new(&map);
        PortAllocator {
            map,
            bitmaps: vec![empty; addresses * PROTOCOLS],
        }
    }

    /// Takes `preferred` on `address` for `proto` if it is free and owned by this
    /// worker, else the next free owned port after it (wrapping). `None` when
    /// every owned port is in use.
    pub(crate) fn alloc(&mut self, address: usize, proto: usize, preferred: u16) -> Option<u16> {
        let bitmap = self.bitmaps.get_mut(address * PROTOCOLS + proto)?;
        let pos = bitmap.find_free(self.map.start(preferred))?;
        bitmap.set(pos, true);
        Some(self.map.port(pos))
    }

    /// Marks `port` for `proto` as taken on every address for good (a port braid
    /// itself listens on, such as the tunnel's).
    pub(crate) fn reserve(&mut self, proto: usize, port: u16) {
        if let Some(pos) = self.map.pos(port) {
            for (i, bitmap) in self.bitmaps.iter_mut().enumerate() {
                if i % PROTOCOLS == proto {
                    bitmap.set(pos, true);
                }
            }
        }
    }

    /// Returns `port` on `address` for `proto` to the free ports.
    pub(crate) fn release(&mut self, address: usize, proto: usize, port: u16) {
        if let (Some(pos), Some(bitmap)) = (
            self.map.pos(port),
            self.bitmaps.get_mut(address * PROTOCOLS + proto),
        ) {
            bitmap.set(pos, false);
        }
    }

    /// Bytes held by the bitmaps.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bitmaps
            .iter()
            .map(|b| (b.used.capacity() + b.full.capacity()) * 8)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn alloc(range: PortRange, worker: usize, workers: usize) -> PortAllocator {
        let map = SliceMap::new(range, PortSlice { worker, workers }).unwrap();
        PortAllocator::new(map, 1)
    }

    #[test]
    fn owners_interleave_chunks_and_cover_the_range() {
        let r = PortRange::default();
        assert_eq!(owner_of_port(1024, r, 4), 0);
        assert_eq!(owner_of_port(1087, r, 4), 0);
        assert_eq!(owner_of_port(1088, r, 4), 1);
        assert_eq!(owner_of_port(1024 + 64 * 5, r, 4), 1);
        assert_eq!(owner_of_port(80, r, 4), 0);
        // Every port of the range is owned by exactly the worker whose map has it.
        let maps: Vec<SliceMap> = (0..3)
            .map(|w| {
                SliceMap::new(
                    r,
                    PortSlice {
                        worker: w,
                        workers: 3,
                    },
                )
                .unwrap()
            })
            .collect();
        let total: usize = maps.iter().map(SliceMap::port_count).sum();
        assert_eq!(total, 65535 - 1024 + 1);
        for port in [1024, 2000, 40000, 65535] {
            let owner = owner_of_port(port, r, 3);
            for (w, m) in maps.iter().enumerate() {
                assert_eq!(m.pos(port).is_some(), w == owner, "port {port} worker {w}");
                if let Some(pos) = m.pos(port) {
                    assert_eq!(m.port(pos), port);
                }
            }
        }
    }

    /// The bitmap as built word by word: each word's bits outside the range
    /// used, summary bits past the last word and of full words set.
    fn bitmap_word_by_word(map: &SliceMap) -> PortBitmap {
        let used: Vec<u64> = (0..map.words).map(|w| !map.valid(w)).collect();
        let mut full = vec![0u64; map.words.div_ceil(64)];
        for bit in map.words..full.len() * 64 {
            full[bit / 64] |= 1 << (bit % 64);
        }
        let mut b = PortBitmap { used, full };
        for w in 0..map.words {
            b.update_full(w);
        }
        b
    }

    #[test]
    fn a_new_bitmap_is_the_word_by_word_one() {
        let ranges = [
            (1024, 65535),
            (0, 65535),
            (1, 1),
            (2000, 2063),
            (2000, 2064),
            (2000, 2069),
            (20000, 20127),
            (1024, 1024 + 64 * 64 - 1),
            (1024, 1024 + 64 * 64),
            (1024, 1024 + 64 * 65 + 3),
        ];
        for (lo, hi) in ranges {
            let r = PortRange { lo, hi };
            for workers in 1..=5 {
                for worker in 0..workers {
                    let Some(map) = SliceMap::new(r, PortSlice { worker, workers }) else {
                        continue;
                    };
                    let (a, b) = (PortBitmap::new(&map), bitmap_word_by_word(&map));
                    assert_eq!(
                        (a.used, a.full),
                        (b.used, b.full),
                        "{r:?} {worker}/{workers}"
                    );
                }
            }
        }
    }

    #[test]
    fn reserved_ports_are_never_handed_out() {
        let mut a = alloc(PortRange { lo: 7000, hi: 7999 }, 0, 1);
        a.reserve(1, 7420);
        assert_eq!(a.alloc(0, 1, 7420), Some(7421));
        assert_eq!(a.alloc(0, 0, 7420), Some(7420), "other protocols keep it");
    }

    #[test]
    fn keeps_the_preferred_port_then_takes_the_next_owned() {
        let mut a = alloc(PortRange::default(), 0, 2);
        assert_eq!(a.alloc(0, 0, 5000), Some(5000));
        assert_eq!(a.alloc(0, 0, 5000), Some(5001));
        assert_eq!(a.alloc(0, 1, 5000), Some(5000), "own space per protocol");
        // 1088..1151 belongs to worker 1: the next owned port is 1152.
        assert_eq!(a.alloc(0, 0, 1100), Some(1152));
        // Below the range: the first owned port.
        assert_eq!(a.alloc(0, 0, 53), Some(1024));
        a.release(0, 0, 5000);
        assert_eq!(a.alloc(0, 0, 5000), Some(5000));
    }

    #[test]
    fn small_partial_range_exhausts_and_wraps() {
        let r = PortRange { lo: 2000, hi: 2069 };
        // Worker 0 owns 2000..=2063, worker 1 owns 2064..=2069.
        let mut a = alloc(r, 1, 2);
        let mut got: Vec<u16> = (0..6).map(|_| a.alloc(0, 2, 2068).unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, vec![2064, 2065, 2066, 2067, 2068, 2069]);
        assert_eq!(a.alloc(0, 2, 2068), None);
        a.release(0, 2, 2065);
        assert_eq!(a.alloc(0, 2, 2069), Some(2065), "wraps to the start");
        assert!(SliceMap::new(
            r,
            PortSlice {
                worker: 2,
                workers: 3
            }
        )
        .is_none());
    }

    proptest! {
        /// Model check against a set: never a port twice, never one of another
        /// worker or outside the range, and exhaustion only when all are taken.
        #[test]
        fn allocator_never_hands_out_a_used_port(
            lo in 1000u16..1100,
            span in 1u16..700,
            workers in 1usize..4,
            ops in proptest::collection::vec((any::<bool>(), any::<u16>()), 1..1500),
        ) {
            let r = PortRange { lo, hi: lo + span };
            let worker = workers - 1;
            let Some(map) = SliceMap::new(r, PortSlice { worker, workers }) else {
                return Ok(());
            };
            let owned = map.port_count();
            let mut a = PortAllocator::new(map, 1);
            let mut model: HashSet<u16> = HashSet::new();
            let mut order: Vec<u16> = Vec::new();
            for (take, value) in ops {
                if take || order.is_empty() {
                    let preferred = lo.wrapping_add(value % (span + 200));
                    match a.alloc(0, 0, preferred) {
                        Some(p) => {
                            prop_assert!(r.contains(p));
                            prop_assert_eq!(owner_of_port(p, r, workers), worker);
                            prop_assert!(model.insert(p), "port {} handed out twice", p);
                            if map.pos(preferred).is_some() {
                                // A free preferred port is kept.
                                prop_assert!(p == preferred || model.contains(&preferred));
                            }
                            order.push(p);
                        }
                        None => prop_assert_eq!(model.len(), owned),
                    }
                } else {
                    let p = order.swap_remove(usize::from(value) % order.len());
                    model.remove(&p);
                    a.release(0, 0, p);
                }
            }
        }
    }
}
