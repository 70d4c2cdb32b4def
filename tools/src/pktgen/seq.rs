//! Per-stream sequence accounting: received, lost, duplicated and reordered packets.
//!
//! Definitions (after RFC 4737): `next` is one past the highest sequence seen. A packet with a
//! sequence at or above `next` is in order (any gap before it is missing for now). A packet below
//! `next` that was not seen before is *reordered* (it fills a gap); one that was seen is a
//! *duplicate*. Whether a sequence was seen is known for the last [`WINDOW`] sequences below
//! `next`; older arrivals are counted as *too late* and not otherwise used. Sequences below the
//! stream's start (left over from an earlier trial) are *stale*. Lost = expected − unique, where
//! expected is what the generator says it sent or, without that, `next − start`.

use serde::{Deserialize, Serialize};

/// Sequences below the highest one whose arrival is remembered.
pub const WINDOW: u64 = 8192;
const WORDS: usize = (WINDOW / 64) as usize;

/// How one packet was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// At or above every sequence seen before.
    InOrder,
    /// Below the highest seen, and new.
    Reordered,
    /// Seen before.
    Duplicate,
    /// Below the stream's start.
    Stale,
    /// More than [`WINDOW`] below the highest seen: new or not is unknown.
    TooLate,
}

/// The accounting of one stream.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    start: u64,
    next: u64,
    /// Bit `s % WINDOW` tells whether sequence `s` in `[next - WINDOW, next)` arrived.
    seen: Box<[u64; WORDS]>,
    counts: SeqCounts,
}

/// The counters of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqCounts {
    /// Every packet of the stream that arrived, duplicates included.
    pub received: u64,
    /// Distinct sequences that arrived.
    pub unique: u64,
    /// Packets that arrived again.
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence.
    pub reordered: u64,
    /// Packets older than the stream's start.
    pub stale: u64,
    /// Packets too far behind to tell new from duplicate.
    pub too_late: u64,
    /// One past the highest sequence seen (the stream's start when none was).
    pub next: u64,
}

impl SeqTracker {
    /// A stream whose first packet carries sequence `start`.
    pub fn new(start: u64) -> SeqTracker {
        SeqTracker {
            start,
            next: start,
            seen: Box::new([0; WORDS]),
            counts: SeqCounts {
                next: start,
                ..SeqCounts::default()
            },
        }
    }

    /// The first sequence of the stream.
    pub fn start(&self) -> u64 {
        self.start
    }

    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    /// Accounts for a packet with sequence `seq`.
    pub fn record(&mut self, seq: u64) -> Arrival {
        if seq < self.start {
            self.counts.stale += 1;
            return Arrival::Stale;
        }
        self.counts.received += 1;
        let arrival = if seq >= self.next {
            // Forget what falls out of the window: the sequences from `next` up to `seq`.
            if seq - self.next >= WINDOW {
                self.seen.fill(0);
            } else {
                for s in self.next..seq {
                    let (w, b) = Self::bit(s);
                    self.seen[w] &= !b;
                }
            }
            self.next = seq + 1;
            self.counts.next = self.next;
            Arrival::InOrder
        } else if self.next - seq > WINDOW {
            self.counts.received -= 1;
            self.counts.too_late += 1;
            return Arrival::TooLate;
        } else {
            let (w, b) = Self::bit(seq);
            if self.seen[w] & b != 0 {
                self.counts.duplicates += 1;
                return Arrival::Duplicate;
            }
            self.counts.reordered += 1;
            Arrival::Reordered
        };
        let (w, b) = Self::bit(seq);
        self.seen[w] |= b;
        self.counts.unique += 1;
        arrival
    }

    /// The counters so far.
    pub fn counts(&self) -> SeqCounts {
        self.counts
    }
}

impl SeqCounts {
    /// Packets lost: `sent` (when the generator's count is known) or the sequences up to the
    /// highest seen, minus the distinct ones that arrived.
    pub fn lost(&self, start: u64, sent: Option<u64>) -> u64 {
        let expected = sent.unwrap_or(self.next.saturating_sub(start));
        expected.saturating_sub(self.unique)
    }

    /// Adds another worker's counters of the same stream.
    pub fn merge(&mut self, o: &SeqCounts) {
        self.received += o.received;
        self.unique += o.unique;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.stale += o.stale;
        self.too_late += o.too_late;
        self.next = self.next.max(o.next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(start: u64, seqs: &[u64]) -> (Vec<Arrival>, SeqCounts) {
        let mut t = SeqTracker::new(start);
        let a = seqs.iter().map(|&s| t.record(s)).collect();
        (a, t.counts())
    }

    #[test]
    fn in_order_stream_counts_nothing_else() {
        let (_, c) = run(0, &(0..100).collect::<Vec<_>>());
        assert_eq!((c.received, c.unique, c.next), (100, 100, 100));
        assert_eq!(c.lost(0, Some(100)), 0);
        assert_eq!(c.lost(0, Some(103)), 3, "tail loss needs the sent count");
        assert_eq!(c.lost(0, None), 0);
    }

    #[test]
    fn crafted_loss_duplicates_and_reordering() {
        use Arrival::*;
        // 0..10 sent; 3 and 7 lost; 5 arrives after 6; 2 twice; 8 three times.
        let (a, c) = run(0, &[0, 1, 2, 2, 4, 6, 5, 8, 8, 9, 8]);
        assert_eq!(
            a,
            [
                InOrder, InOrder, InOrder, Duplicate, InOrder, InOrder, Reordered, InOrder,
                Duplicate, InOrder, Duplicate
            ]
        );
        assert_eq!(
            c,
            SeqCounts {
                received: 11,
                unique: 8,
                duplicates: 3,
                reordered: 1,
                stale: 0,
                too_late: 0,
                next: 10,
            }
        );
        assert_eq!(c.lost(0, Some(10)), 2);
        assert_eq!(c.lost(0, None), 2);
    }

    #[test]
    fn a_late_packet_fills_its_gap_once() {
        use Arrival::*;
        let (a, c) = run(100, &[100, 103, 101, 101, 102, 99]);
        assert_eq!(
            a,
            [InOrder, InOrder, Reordered, Duplicate, Reordered, Stale]
        );
        assert_eq!((c.unique, c.reordered, c.duplicates, c.stale), (4, 2, 1, 1));
        assert_eq!(c.lost(100, Some(4)), 0);
    }

    #[test]
    fn window_edges() {
        use Arrival::*;
        // A jump larger than the window forgets everything before it.
        let (a, c) = run(0, &[0, WINDOW + 5, 0, 6, 5]);
        assert_eq!(a, [InOrder, InOrder, TooLate, Reordered, TooLate]);
        assert_eq!((c.unique, c.too_late, c.received), (3, 2, 3));
        // Exactly WINDOW behind the next expected is still known.
        let (a, _) = run(0, &[0, WINDOW - 1, 0, 1]);
        assert_eq!(a, [InOrder, InOrder, Duplicate, Reordered]);
    }

    #[test]
    fn merged_workers_add_up() {
        let (_, mut a) = run(0, &[0, 2, 4]);
        let (_, b) = run(0, &[1, 3]);
        a.merge(&b);
        assert_eq!((a.unique, a.next), (5, 5));
        assert_eq!(a.lost(0, Some(6)), 1);
    }

    proptest! {
        /// Against a model that remembers every sequence: exact as long as nothing arrives more
        /// than the window late.
        #[test]
        fn matches_a_model(
            sent in 1u64..3000,
            ops in prop::collection::vec((0u8..4, 0u64..3000, 0u64..40), 0..600),
            start in 0u64..1_000_000,
        ) {
            // Build an arrival order: the stream in order, with losses, duplicates and short swaps.
            let mut order: Vec<u64> = (0..sent).collect();
            for (op, at, d) in &ops {
                let i = (*at % sent) as usize;
                if i >= order.len() { continue; }
                match op {
                    0 => { order.remove(i); }
                    1 => { let s = order[i]; order.insert(i + (*d as usize).min(order.len() - i), s); }
                    _ => { let j = (i + *d as usize).min(order.len() - 1); order.swap(i, j); }
                }
            }
            let mut t = SeqTracker::new(start);
            let mut seen = std::collections::HashSet::new();
            let (mut dup, mut reo, mut high) = (0u64, 0u64, None::<u64>);
            for &s in &order {
                let a = t.record(start + s);
                let model = if !seen.insert(s) {
                    dup += 1;
                    Arrival::Duplicate
                } else if high.is_some_and(|h| s < h) {
                    reo += 1;
                    Arrival::Reordered
                } else {
                    Arrival::InOrder
                };
                prop_assert_eq!(a, model);
                high = Some(high.map_or(s, |h| h.max(s)));
            }
            let c = t.counts();
            prop_assert_eq!(c.unique, seen.len() as u64);
            prop_assert_eq!(c.duplicates, dup);
            prop_assert_eq!(c.reordered, reo);
            prop_assert_eq!(c.received, order.len() as u64);
            prop_assert_eq!(c.lost(start, Some(sent)), sent - seen.len() as u64);
        }
    }
}
