//! Anti-replay: a sliding bitmap over the last [`ReplayWindow::SIZE`] sequences of one
//! (sender, lane), after RFC 6479 (a ring of blocks, a block reused for a newer one), that
//! any number of workers update at once without a lock.
//!
//! Why lock-free rather than one window per worker: a sender lane's messages reach the
//! receiver on whatever queue the NIC's RSS picks (the outer UDP ports differ per link,
//! and some NICs hash only addresses), so several workers check the same lane; a mutex
//! was taken by each of them once per packet and contended in the normal case. Each ring
//! word here holds a block's number (its low 32 bits) and the block's 32 bits, so marking
//! a sequence, or taking a slot over for a newer block, is one compare-and-swap of one
//! word: of two workers marking the same sequence, exactly one wins.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sequences per block: the low half of a ring word.
const BLOCK_BITS: u64 = 32;

/// Blocks in the ring: any `SIZE` consecutive sequences touch at most this many.
const BLOCKS: usize = (ReplayWindow::SIZE / BLOCK_BITS) as usize + 1;

/// Which sequences of one (sender, lane) were already accepted.
///
/// Block numbers are compared by their low 32 bits (wrapping): two sequences 2^36 apart
/// are taken for neighbours. A lane's counter moves by one per message, so no sender makes
/// such a gap (it would have to lose 2^36 messages in a row); were one made, the cost is
/// messages refused, never one accepted twice.
pub struct ReplayWindow {
    /// Highest sequence accepted so far (0 before any).
    top: AtomicU64,
    /// Word `(seq / 32) % BLOCKS`: the block's number (low 32 bits) above, and bit
    /// `seq % 32` set once `seq` is accepted.
    ring: [AtomicU64; BLOCKS],
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("top", &self.top.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

/// The ring word of `seq`, its block's tag and its bit.
#[inline]
fn slot(seq: u64) -> (usize, u32, u32) {
    let block = seq / BLOCK_BITS;
    (
        (block % BLOCKS as u64) as usize,
        block as u32,
        1 << (seq % BLOCK_BITS),
    )
}

impl ReplayWindow {
    /// How far behind the highest accepted sequence a late one may be (exclusive):
    /// large because links of very different delay reorder a lot.
    pub const SIZE: u64 = 8192;

    /// A window that has seen nothing: every sequence is acceptable.
    pub fn new() -> Self {
        ReplayWindow {
            top: AtomicU64::new(0),
            ring: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Marks `seq` seen (call only after its tag verified); false if it was seen before or
    /// is too old. Safe to call from several threads at once: a sequence is accepted once.
    ///
    /// Orderings are relaxed: the one word's compare-and-swap alone decides, and nothing
    /// else is published through the window. `top` only bounds how old a sequence may be;
    /// a worker that reads it a moment late may accept a message that just became too old
    /// (it was never accepted before), as a sequential window would have in another order.
    ///
    /// `top` is raised by a plain store, not a locked maximum (one atomic instruction less
    /// per tunnel packet): two workers raising it at once may leave the lower of their two
    /// sequences until the next message of the lane. That only widens the bound on messages
    /// never accepted; the ring alone refuses every sequence accepted before (its word holds
    /// the sequence's block with its bit set, or a newer block), and one worker alone, the
    /// usual case, keeps `top` exact.
    #[inline]
    pub fn accept(&self, seq: u64) -> bool {
        let top = self.top.load(Ordering::Relaxed);
        if seq <= top && top - seq >= Self::SIZE {
            return false;
        }
        let (index, tag, bit) = slot(seq);
        let Some(word) = self.ring.get(index) else {
            return false;
        };
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let (held, bits) = ((current >> 32) as u32, current as u32);
            let new = match held.wrapping_sub(tag) as i32 {
                0 if bits & bit != 0 => return false,
                0 => current | u64::from(bit),
                // The word holds a newer block: `seq` is out of the window.
                d if d > 0 => return false,
                // An older block's leftovers: the block starts over.
                _ => u64::from(tag) << 32 | u64::from(bit),
            };
            match word.compare_exchange_weak(current, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        if seq > top {
            self.top.store(seq, Ordering::Relaxed);
        }
        true
    }

    /// True if `seq` would be accepted now (a read only: another worker may take it next).
    pub fn check(&self, seq: u64) -> bool {
        let top = self.top.load(Ordering::Relaxed);
        if seq <= top && top - seq >= Self::SIZE {
            return false;
        }
        let (index, tag, bit) = slot(seq);
        let Some(word) = self.ring.get(index) else {
            return false;
        };
        let current = word.load(Ordering::Relaxed);
        let (held, bits) = ((current >> 32) as u32, current as u32);
        match held.wrapping_sub(tag) as i32 {
            0 => bits & bit == 0,
            d => d < 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Barrier, Mutex};

    const W: u64 = ReplayWindow::SIZE;

    /// The window this one replaced, taken under a mutex: RFC 6479's ring of 64-bit
    /// blocks, stale blocks cleared as the top advances. The reference model.
    struct Locked(Mutex<(u64, [u64; W as usize / 64 + 1])>);

    impl Locked {
        fn new() -> Locked {
            Locked(Mutex::new((0, [0; W as usize / 64 + 1])))
        }

        fn update(&self, seq: u64) -> bool {
            let mut g = self.0.lock().unwrap();
            let (top, ring) = &mut *g;
            let n = ring.len() as u64;
            let at = |s: u64| ((s / 64 % n) as usize, 1u64 << (s % 64));
            if seq <= *top {
                let (b, bit) = at(seq);
                if *top - seq >= W || ring[b] & bit != 0 {
                    return false;
                }
            } else {
                let (old, new) = (*top / 64, seq / 64);
                for b in 1..=(new - old).min(n) {
                    ring[at((old + b) * 64).0] = 0;
                }
                *top = seq;
            }
            let (b, bit) = at(seq);
            ring[b] |= bit;
            true
        }
    }

    #[test]
    fn in_order_and_duplicates() {
        let w = ReplayWindow::new();
        for seq in 0..20_000 {
            assert!(w.check(seq));
            assert!(w.accept(seq));
            assert!(!w.check(seq));
            assert!(!w.accept(seq));
        }
    }

    #[test]
    fn out_of_order_within_the_window() {
        let w = ReplayWindow::new();
        assert!(w.accept(10_000));
        // Everything from 10_000 - (W - 1) up is still acceptable once.
        for seq in (10_000 - (W - 1)..10_000).rev() {
            assert!(w.accept(seq), "{seq}");
        }
        for seq in 10_000 - (W - 1)..=10_000 {
            assert!(!w.check(seq), "{seq}");
        }
        assert!(!w.check(10_000 - W));
        assert!(!w.accept(0));
    }

    #[test]
    fn too_old_is_refused() {
        let w = ReplayWindow::new();
        assert!(w.accept(W + 5));
        assert!(w.check(6));
        assert!(!w.check(5));
        assert!(!w.accept(5));
        assert!(w.accept(6));
    }

    #[test]
    fn jumps_take_stale_blocks_over() {
        let w = ReplayWindow::new();
        for seq in 0..200 {
            assert!(w.accept(seq));
        }
        // Jump by exactly the ring's span and more: old bits must not shadow new sequences.
        let jump = BLOCKS as u64 * BLOCK_BITS;
        for base in [199 + jump, 3 * jump + 17, 1 << 35, (1 << 35) + 5 * jump] {
            assert!(w.accept(base));
            for seq in base.saturating_sub(W - 1)..base {
                assert!(w.check(seq), "{base} {seq}");
            }
            assert!(!w.check(base));
        }
    }

    #[test]
    fn small_jump_keeps_recent_bits() {
        let w = ReplayWindow::new();
        assert!(w.accept(100));
        assert!(w.accept(100 + W - 1));
        assert!(!w.check(100));
        assert!(w.accept(100 + W));
        assert!(!w.check(100));
    }

    /// A second model: a set of everything accepted.
    struct Model {
        seen: HashSet<u64>,
        top: Option<u64>,
    }

    impl Model {
        fn accept(&mut self, seq: u64) -> bool {
            let ok = match self.top {
                None => true,
                Some(top) => seq > top || (top - seq < W && !self.seen.contains(&seq)),
            };
            if ok {
                self.seen.insert(seq);
                self.top = Some(self.top.map_or(seq, |t| t.max(seq)));
            }
            ok
        }
    }

    fn steps() -> impl Strategy<Value = Vec<i64>> {
        // Mostly small moves around the front, some far back, some big leaps.
        proptest::collection::vec(
            prop_oneof![
                8 => -300i64..40,
                2 => -(W as i64 + 200)..-(W as i64 - 200),
                1 => 0i64..3 * W as i64,
            ],
            1..2000,
        )
    }

    proptest! {
        #[test]
        fn matches_the_locked_window_and_a_set(start in 0u64..1 << 34, steps in steps()) {
            let w = ReplayWindow::new();
            let locked = Locked::new();
            let mut model = Model { seen: HashSet::new(), top: None };
            let mut front = start;
            for step in steps {
                let seq = front.saturating_add_signed(step);
                front = front.max(seq);
                let expected = model.accept(seq);
                prop_assert_eq!(w.check(seq), expected, "check {}", seq);
                prop_assert_eq!(w.accept(seq), expected, "accept {}", seq);
                prop_assert_eq!(locked.update(seq), expected, "locked {}", seq);
                prop_assert!(!w.check(seq));
            }
        }
    }

    /// Threads that each offer every sequence of a run, in orders of their own, with
    /// duplicates: each sequence is accepted by exactly one of them.
    #[test]
    fn racing_threads_accept_each_sequence_once() {
        const THREADS: usize = 4;
        const RUN: u64 = 6000;
        for round in 0..20u64 {
            let w = Arc::new(ReplayWindow::new());
            let base = round * 3 * W;
            let start = Arc::new(Barrier::new(THREADS));
            let accepted: Vec<Vec<u64>> = (0..THREADS as u64)
                .map(|t| {
                    let (w, start) = (w.clone(), start.clone());
                    std::thread::spawn(move || {
                        // A permutation of the run (stride coprime to RUN), each sent twice.
                        let stride = [1, 7, 11, 13][t as usize];
                        let order = (0..RUN).map(|i| base + (i * stride + t * 977) % RUN);
                        start.wait();
                        order
                            .flat_map(|s| [s, s])
                            .filter(|&s| w.accept(s))
                            .collect()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect();
            let mut all: Vec<u64> = accepted.concat();
            let n = all.len();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), n, "a sequence accepted twice in round {round}");
            assert_eq!(
                n as u64, RUN,
                "the whole run fits the window: all accepted once"
            );
            // Even with `top` as low as a racing store could leave it, the ring alone
            // refuses every sequence accepted before.
            w.top.store(base, Ordering::Relaxed);
            assert!(
                all.iter().all(|&s| !w.accept(s)),
                "a replay accepted in round {round}"
            );
        }
    }
}
