//! The receiver's reorder window of one (peer, sender lane): packets carry the bond
//! sequence their sender gave them across its links, and leave in that order. A packet
//! that comes before its turn is held until the packets in front of it arrive, or until
//! the gap has waited long enough to be given up (the caller's `wait`, from the links'
//! measured delays); one that comes after its gap was given up is late and goes at
//! once; a second copy of a packet (redundant traffic) is a duplicate.
//!
//! Pure: no clock, no I/O; the item held is the caller's (a packet copy). Time is in
//! monotonic nanoseconds, passed in.

use std::collections::VecDeque;

/// Packets a window can hold ahead of the next expected one; a packet further ahead
/// gives up the oldest gaps first. Also the span of sequences behind the next expected
/// one in which duplicates are recognised.
pub const CAPACITY: usize = 4096;

const MASK: u32 = CAPACITY as u32 - 1;

/// What a window decided for an arriving packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Its turn (or the first of the window): goes now, after what
    /// [`Window::release_before`] gives; what it unblocks follows through
    /// [`Window::release`].
    InOrder,
    /// Its gap was given up before it came: goes now, out of order.
    Late,
    /// Ahead of its turn: the caller copies it and calls [`Window::hold`].
    Ahead,
    /// Seen before: dropped.
    Duplicate,
}

/// What a window counted, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Packets that came in their turn.
    pub in_order: u64,
    /// Packets held, then released in their turn (the order repaired).
    pub repaired: u64,
    /// Packets whose gap had been given up (delivered out of order).
    pub late: u64,
    /// Sequence numbers skipped when their wait ran out or room was needed.
    pub given_up: u64,
}

/// A packet the window released after holding it, and when it arrived.
#[derive(Debug)]
pub struct Released<T> {
    /// The caller's item (a packet copy).
    pub item: T,
    /// When it arrived and was held (ns).
    pub since: u64,
}

/// One held packet.
#[derive(Debug)]
struct Held<T> {
    item: T,
    bytes: usize,
    since: u64,
}

/// The reorder window of one (peer, sender lane).
#[derive(Debug)]
pub struct Window<T> {
    /// The next sequence to deliver; meaningless until `synced`.
    next: u32,
    synced: bool,
    /// Slot `seq & MASK`, for `seq` in `next .. next + CAPACITY`; made at the first hold.
    held: Vec<Option<Held<T>>>,
    held_count: usize,
    held_bytes: usize,
    /// Bit `seq & MASK`: `seq` was delivered, for `seq` in `next - CAPACITY .. next`.
    delivered: Vec<u64>,
    /// Packets released by the last call, in order, for the caller to send.
    ready: VecDeque<Released<T>>,
    /// The last packet admitted was in its turn: the run it unblocks is a gap filled.
    filling: bool,
    /// When the longest-held packet of the last filled gap arrived.
    filled_since: Option<u64>,
    tally: Tally,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Window {
            next: 0,
            synced: false,
            held: Vec::new(),
            held_count: 0,
            held_bytes: 0,
            delivered: vec![0; CAPACITY / 64],
            ready: VecDeque::new(),
            filling: false,
            filled_since: None,
            tally: Tally::default(),
        }
    }
}

impl<T> Window<T> {
    /// Decides for a packet with sequence `seq`. `InOrder` and `Late` packets count as
    /// delivered here; an `Ahead` one counts when it is held.
    pub fn admit(&mut self, seq: u32) -> Admit {
        if !self.synced {
            // The first packet, or the first after the sender stopped sequencing.
            self.synced = true;
            self.next = seq;
            self.delivered.fill(0);
        }
        let ahead = seq.wrapping_sub(self.next);
        if ahead == 0 {
            self.advance(true);
            self.tally.in_order += 1;
            self.filling = true;
            return Admit::InOrder;
        }
        if ahead < CAPACITY as u32 {
            if self.slot(seq).is_some_and(|h| h.is_some()) {
                return Admit::Duplicate;
            }
            return Admit::Ahead;
        }
        let behind = self.next.wrapping_sub(seq);
        if behind <= CAPACITY as u32 {
            if self.was_delivered(seq) {
                return Admit::Duplicate;
            }
            self.mark_delivered(seq);
            self.tally.late += 1;
            return Admit::Late;
        }
        if ahead < u32::MAX / 2 {
            // Far ahead: every gap before room for it is given up.
            self.give_up_to(seq.wrapping_sub(CAPACITY as u32 - 1));
            return self.admit(seq);
        }
        // Far behind: the sender started over (a restart). Follow it.
        self.flush();
        self.next = seq;
        self.delivered.fill(0);
        self.advance(true);
        self.tally.in_order += 1;
        Admit::InOrder
    }

    /// Holds `item` (`bytes` long, arrived at `now`) of sequence `seq`, which
    /// [`Window::admit`] found `Ahead`. Returns false (and holds nothing) when `seq` is
    /// no longer ahead.
    pub fn hold(&mut self, seq: u32, item: T, bytes: usize, now: u64) -> bool {
        let ahead = seq.wrapping_sub(self.next);
        if !self.synced || ahead == 0 || ahead >= CAPACITY as u32 {
            return false;
        }
        if self.held.is_empty() {
            self.held = (0..CAPACITY).map(|_| None).collect();
        }
        let Some(slot) = self.held.get_mut((seq & MASK) as usize) else {
            return false;
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(Held {
            item,
            bytes,
            since: now,
        });
        self.held_count += 1;
        self.held_bytes += bytes;
        true
    }

    /// Gives up the gaps in front of the first held packet, once that packet has waited
    /// `wait` ns by `now`, and releases what follows; again for the next one.
    pub fn expire(&mut self, now: u64, wait: u64) {
        while let Some((seq, since)) = self.first_held() {
            if now.saturating_sub(since) < wait {
                break;
            }
            self.give_up_to(seq);
        }
    }

    /// Gives up every gap in front of `seq` (releasing what is held there): the packet
    /// `seq` is next in turn. For when nothing is coming to fill them.
    pub fn skip_to(&mut self, seq: u32) {
        let ahead = seq.wrapping_sub(self.next);
        if self.synced && ahead < CAPACITY as u32 {
            while self.next != seq {
                self.skip_one();
            }
        }
    }

    /// Gives up every gap in front of `seq`, when `seq` is ahead, and releases what
    /// follows: every link has delivered something later than those gaps, and a link
    /// delivers in order, so they are lost.
    pub fn give_up_before(&mut self, seq: u32) {
        let ahead = seq.wrapping_sub(self.next);
        if self.synced && ahead > 0 && ahead < CAPACITY as u32 {
            self.give_up_to(seq);
        }
    }

    /// True when `seq` is next in turn and the window is idle: it holds nothing, has
    /// released nothing not yet taken and has no filled gap to report. Admitting `seq`
    /// then releases nothing, so [`Window::take_turn`] can stand for `admit` and
    /// `release`.
    #[inline]
    pub fn is_idle_turn(&self, seq: u32) -> bool {
        self.synced
            && seq == self.next
            && self.held_count == 0
            && self.ready.is_empty()
            && self.filled_since.is_none()
    }

    /// Admits the packet [`Window::is_idle_turn`] found in its turn: it goes now, and
    /// nothing follows it.
    #[inline]
    pub fn take_turn(&mut self) {
        // What `release` would do with nothing held: the turn fills no gap.
        self.filling = false;
        self.advance(true);
        self.tally.in_order += 1;
    }

    /// The next sequence in turn.
    pub fn next(&self) -> u32 {
        self.next
    }

    /// Gives up the oldest gap (and releases what follows it): room for another packet.
    pub fn give_up_oldest(&mut self) {
        if let Some((seq, _)) = self.first_held() {
            self.give_up_to(seq);
        }
    }

    /// Gives up every gap and releases every held packet, in order; the window stays in
    /// step with the sender. For when a link went down: what it carried is not coming.
    pub fn flush(&mut self) {
        while let Some((seq, _)) = self.first_held() {
            self.give_up_to(seq);
        }
    }

    /// Releases everything held and forgets the sequence: the next packet starts over.
    /// For a sender that stopped sequencing (one link left, or flow mode).
    pub fn reset(&mut self) {
        self.flush();
        self.synced = false;
    }

    /// The packets released, in order, since the last call, with those the last
    /// admitted packet unblocked.
    pub fn release(&mut self) -> std::collections::vec_deque::Drain<'_, Released<T>> {
        if std::mem::take(&mut self.filling) {
            self.filled_since = self.run_since().or(self.filled_since);
        }
        self.release_run();
        self.ready.drain(..)
    }

    /// When the packet that waited longest for the last gap filled by a late packet
    /// arrived: how long the window had to wait, which the caller learns from.
    pub fn take_filled_since(&mut self) -> Option<u64> {
        self.filled_since.take()
    }

    /// The packets that leave before the one just admitted (gaps given up to make
    /// room for it, or a restarted sender's window let go), in order.
    pub fn release_before(&mut self) -> std::collections::vec_deque::Drain<'_, Released<T>> {
        self.ready.drain(..)
    }

    /// When the first held packet's wait of `wait` ns runs out.
    pub fn deadline(&self, wait: u64) -> Option<u64> {
        self.first_held()
            .map(|(_, since)| since.saturating_add(wait))
    }

    /// Packets and bytes held.
    pub fn held(&self) -> (usize, usize) {
        (self.held_count, self.held_bytes)
    }

    /// What was counted so far.
    pub fn tally(&self) -> Tally {
        self.tally
    }

    /// The earliest arrival among the held packets that are now in turn.
    fn run_since(&self) -> Option<u64> {
        let mut seq = self.next;
        let mut since: Option<u64> = None;
        while let Some(Some(h)) = self.slot(seq) {
            since = Some(since.map_or(h.since, |s| s.min(h.since)));
            seq = seq.wrapping_add(1);
        }
        since
    }

    /// The lowest held sequence and when it arrived.
    fn first_held(&self) -> Option<(u32, u64)> {
        if self.held_count == 0 {
            return None;
        }
        (1..CAPACITY as u32).find_map(|d| {
            let seq = self.next.wrapping_add(d);
            match self.slot(seq) {
                Some(Some(h)) => Some((seq, h.since)),
                _ => None,
            }
        })
    }

    fn slot(&self, seq: u32) -> Option<&Option<Held<T>>> {
        self.held.get((seq & MASK) as usize)
    }

    /// Skips every sequence from `next` up to `seq` (excluded), releasing what is held
    /// among them, then releases the run that starts at `seq`.
    ///
    /// Work is bounded by [`CAPACITY`], not by the distance: an authentic sender may
    /// jump its sequence up to 2^31 ahead, and one step per sequence would stall the
    /// worker for seconds. Nothing is held past `next + CAPACITY`, and a jump of two
    /// capacities or more leaves nothing the delivered bitmap knew within reach, so such
    /// a jump releases what is held, then counts the rest as given up at once.
    fn give_up_to(&mut self, seq: u32) {
        const CAPACITY_U32: u32 = CAPACITY as u32;
        if seq.wrapping_sub(self.next) >= 2 * CAPACITY_U32 {
            let past_held = self.next.wrapping_add(CAPACITY_U32);
            while self.next != past_held {
                self.skip_one();
            }
            self.tally.given_up += u64::from(seq.wrapping_sub(self.next));
            self.delivered.fill(0);
            self.next = seq;
        }
        while self.next != seq {
            self.skip_one();
        }
        self.release_run();
    }

    /// Moves past `next`: releases it if held, else gives it up.
    fn skip_one(&mut self) {
        if let Some(h) = self.take(self.next) {
            self.ready.push_back(h);
            self.tally.repaired += 1;
            self.advance(true);
        } else {
            self.tally.given_up += 1;
            self.advance(false);
        }
    }

    /// Releases the held packets that are now in turn.
    fn release_run(&mut self) {
        while let Some(h) = self.take(self.next) {
            self.ready.push_back(h);
            self.tally.repaired += 1;
            self.advance(true);
        }
    }

    fn take(&mut self, seq: u32) -> Option<Released<T>> {
        let h = self.held.get_mut((seq & MASK) as usize)?.take()?;
        self.held_count -= 1;
        self.held_bytes -= h.bytes;
        Some(Released {
            item: h.item,
            since: h.since,
        })
    }

    /// Moves `next` on by one, recording whether the sequence it leaves was delivered.
    fn advance(&mut self, delivered: bool) {
        let seq = self.next;
        if delivered {
            self.mark_delivered(seq);
        } else if let Some(w) = self.delivered.get_mut((seq & MASK) as usize / 64) {
            *w &= !(1 << (seq % 64));
        }
        self.next = seq.wrapping_add(1);
    }

    fn mark_delivered(&mut self, seq: u32) {
        if let Some(w) = self.delivered.get_mut((seq & MASK) as usize / 64) {
            *w |= 1 << (seq % 64);
        }
    }

    fn was_delivered(&self, seq: u32) -> bool {
        self.delivered
            .get((seq & MASK) as usize / 64)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }
}

#[cfg(test)]
#[path = "reorder_tests.rs"]
mod tests;
