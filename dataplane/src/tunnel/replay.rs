//! Anti-replay: a sliding bitmap over the last [`ReplayWindow::SIZE`] sequences of one
//! (sender, lane), after RFC 6479 (ring of 64-bit blocks, cleared a block at a time).

/// Bits per block of the ring.
const BLOCK_BITS: u64 = 64;

/// Blocks in the ring: any `SIZE` consecutive sequences touch at most this many.
const BLOCKS: usize = (ReplayWindow::SIZE / BLOCK_BITS) as usize + 1;

/// Which sequences of one (sender, lane) were already accepted.
#[derive(Clone)]
pub struct ReplayWindow {
    /// Highest sequence accepted so far (0 before any).
    top: u64,
    /// Bit `seq % 64` of block `(seq / 64) % BLOCKS` is set once `seq` is accepted.
    ring: [u64; BLOCKS],
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("top", &self.top)
            .finish_non_exhaustive()
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

fn slot(seq: u64) -> (usize, u64) {
    let block = ((seq / BLOCK_BITS) % BLOCKS as u64) as usize;
    (block, 1 << (seq % BLOCK_BITS))
}

impl ReplayWindow {
    /// How far behind the highest accepted sequence a late one may be (exclusive):
    /// large because links of very different delay reorder a lot.
    pub const SIZE: u64 = 8192;

    /// A window that has seen nothing: every sequence is acceptable.
    pub fn new() -> Self {
        ReplayWindow {
            top: 0,
            ring: [0; BLOCKS],
        }
    }

    /// True while no sequence has been accepted, as [`ReplayWindow::new`] makes it.
    pub fn is_new(&self) -> bool {
        // `top` stays 0 until a sequence above 0 is accepted, and until then only
        // sequence 0 can have been: its bit is the only one that can be set.
        self.top == 0 && self.ring.first().is_some_and(|b| b & 1 == 0)
    }

    /// True if `seq` is acceptable: newer than anything, or inside the window and unseen.
    pub fn check(&self, seq: u64) -> bool {
        if seq > self.top {
            return true;
        }
        if self.top - seq >= Self::SIZE {
            return false;
        }
        let (block, bit) = slot(seq);
        self.ring.get(block).is_some_and(|b| b & bit == 0)
    }

    /// Marks `seq` seen (call only after its tag verified); false if it was not acceptable.
    pub fn update(&mut self, seq: u64) -> bool {
        if !self.check(seq) {
            return false;
        }
        if seq > self.top {
            let old_block = self.top / BLOCK_BITS;
            let new_block = seq / BLOCK_BITS;
            let stale = (new_block - old_block).min(BLOCKS as u64);
            for b in 1..=stale {
                let (block, _) = slot((old_block + b) * BLOCK_BITS);
                if let Some(b) = self.ring.get_mut(block) {
                    *b = 0;
                }
            }
            self.top = seq;
        }
        let (block, bit) = slot(seq);
        if let Some(b) = self.ring.get_mut(block) {
            *b |= bit;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const W: u64 = ReplayWindow::SIZE;

    #[test]
    fn new_until_a_sequence_is_accepted() {
        for first in [0, 1, 64, W, u64::MAX] {
            let mut w = ReplayWindow::new();
            assert!(w.is_new());
            assert!(w.update(first));
            assert!(!w.is_new(), "{first}");
            assert!(!w.update(first));
            assert!(!w.is_new(), "{first}");
        }
    }

    #[test]
    fn in_order_and_duplicates() {
        let mut w = ReplayWindow::new();
        for seq in 0..20_000 {
            assert!(w.check(seq));
            assert!(w.update(seq));
            assert!(!w.check(seq));
            assert!(!w.update(seq));
        }
    }

    #[test]
    fn out_of_order_within_the_window() {
        let mut w = ReplayWindow::new();
        assert!(w.update(10_000));
        // Everything from 10_000 - (W - 1) up is still acceptable once.
        for seq in (10_000 - (W - 1)..10_000).rev() {
            assert!(w.update(seq), "{seq}");
        }
        for seq in 10_000 - (W - 1)..=10_000 {
            assert!(!w.check(seq), "{seq}");
        }
        assert!(!w.check(10_000 - W));
        assert!(!w.update(0));
    }

    #[test]
    fn too_old_is_refused() {
        let mut w = ReplayWindow::new();
        assert!(w.update(W + 5));
        assert!(w.check(6));
        assert!(!w.check(5));
        assert!(!w.update(5));
        assert!(w.update(6));
    }

    #[test]
    fn big_jumps_clear_stale_bits() {
        let mut w = ReplayWindow::new();
        for seq in 0..200 {
            assert!(w.update(seq));
        }
        // Jump by exactly the ring's span and more: old bits must not shadow new sequences.
        let jump = BLOCKS as u64 * BLOCK_BITS;
        for base in [199 + jump, 3 * jump + 17, u64::MAX / 2, u64::MAX - 1] {
            assert!(w.update(base));
            for seq in base.saturating_sub(W - 1)..base {
                assert!(w.check(seq), "{base} {seq}");
            }
            assert!(!w.check(base));
        }
        assert!(w.update(u64::MAX));
        assert!(!w.check(u64::MAX));
        assert!(w.check(u64::MAX - 2));
        assert!(!w.check(u64::MAX - 1));
    }

    #[test]
    fn small_jump_keeps_recent_bits() {
        let mut w = ReplayWindow::new();
        assert!(w.update(100));
        assert!(w.update(100 + W - 1));
        assert!(!w.check(100));
        assert!(w.update(100 + W));
        assert!(!w.check(100));
    }

    /// A reference model: a set of everything accepted.
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
        fn matches_a_set_model(start in 0u64..1 << 40, steps in steps()) {
            let mut w = ReplayWindow::new();
            let mut model = Model { seen: HashSet::new(), top: None };
            let mut front = start;
            for step in steps {
                let seq = front.saturating_add_signed(step);
                front = front.max(seq);
                let expected = model.accept(seq);
                prop_assert_eq!(w.check(seq), expected, "check {}", seq);
                prop_assert_eq!(w.update(seq), expected, "update {}", seq);
                prop_assert!(!w.check(seq));
                prop_assert!(!w.is_new());
            }
        }
    }
}
