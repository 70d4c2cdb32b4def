//! The `Order` stage: packets out of the tunnel leave in the order their sender gave
//! them, whatever link each took (bond/reorder.rs holds the window itself).
//!
//! One worker owns the window of each (peer, sender lane): the packets of a lane
//! arrive on every link and so on any of this end's queues, and only one worker can
//! send them in order. A packet that arrives on another worker is handed to the owner
//! after it was opened and checked. The owner sends a packet in its turn in place, a
//! packet ahead of its turn is copied and held, and what a packet unblocks is sent by
//! copy after it; once a window sent by copy in a round, its later packets of that
//! round go by copy too, so that none overtakes them in the transmit ring.
//!
//! A restarted sender numbers from 1 again under a new session: a packet that looks
//! like a second copy but came under another session than the one before it starts
//! the window over.
//!
//! A gap is given up before its wait when every link that delivered lately has delivered
//! something later: a link keeps its order, so what is missing is lost (a late packet
//! turns this off for a second: some link reorders).
//!
//! How long a gap may wait: the spread of the links' one-way delays from the peer
//! (each link's probes measure it up to the clocks' offset, which is the same for every
//! link, so the spread is exact), plus four times the worst jitter and 2 ms, plus what
//! late packets taught: each packet that comes after its gap was given up adds 1 ms
//! (the queues grew faster than the probes, every 50 ms, could see), fading over about a
//! second; and at least a quarter more than the longest a gap lately made a packet wait
//! before it was filled (also fading): the delays the data itself shows. With one
//! link in use there is nothing to wait for; when a link goes down, every window lets
//! what it holds go at once (what that link carried is not coming).

use super::meta::Meta;
use super::out::Packet;
use super::pool::Pool;
use super::{Ctx, Next};
use crate::bond::reorder::{Admit, Released, Tally, Window, CAPACITY};
use crate::frame::Frame;
use crate::ids::{Lane, PeerIdx};
use crate::snapshot::{Peer, MAX_LANES};
use crate::stats::{DropReason, WorkerStats};

/// Most bytes one worker holds for one peer, over all the peer's sender lanes (each
/// packet counts its whole buffer, a frame's size).
pub const PEER_BYTES: usize = 8 << 20;
/// Most packets one worker holds for one peer, over all the peer's sender lanes.
pub const PEER_PACKETS: usize = crate::bond::reorder::CAPACITY;
/// A link that delivered within this long counts for giving gaps up early.
const RECENT_NS: u64 = 100_000_000;
/// After a late packet, gaps are not given up early for this long (a link reordered).
const FIFO_DOUBT_NS: u64 = 1_000_000_000;
/// How often a peer's wait is worked out again from its links' figures.
const WAIT_REFRESH_NS: u64 = 20_000_000;
/// The wait when the links have measured nothing yet (probes off, or just started).
const DEFAULT_WAIT_NS: u64 = 50_000_000;
/// The longest wait, whatever the links measured.
const MAX_WAIT_NS: u64 = 250_000_000;
/// Added to the spread of the links' delays.
const MARGIN_NS: u64 = 2_000_000;
/// Added to a peer's wait for each packet that came after its gap was given up (the
/// wait was too short: the delays grew faster than the probes saw), up to
/// [`MAX_EXTRA_NS`]; it fades by 1/64 every [`WAIT_REFRESH_NS`] (halves in about a second).
const LATE_STEP_NS: u64 = 1_000_000;
const MAX_EXTRA_NS: u64 = 100_000_000;

/// A packet's place in the order of its sender: the peer, its lane, its bond sequence.
/// The peer's index is kept small (a validated config has at most
/// [`MAX_LINKS`](braid_control::config::MAX_LINKS) peers, each with a link of its
/// own), so [`Next`] stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequenced {
    peer: u16,
    pub lane: u8,
    /// The link it came on (the sender's index).
    pub link: u8,
    pub seq: u32,
    /// The session it came under (this end's index of it).
    pub session: u32,
}

impl Sequenced {
    /// The place `seq` on sender lane `lane` of `peer`, come under `session` on
    /// `link`; `None` for a peer index beyond `u16` (never in a snapshot of a
    /// validated config).
    pub fn new(peer: PeerIdx, lane: u8, seq: u32, session: u32, link: u8) -> Option<Sequenced> {
        Some(Sequenced {
            peer: u16::try_from(peer.0).ok()?,
            lane,
            link,
            seq,
            session,
        })
    }

    /// The peer.
    pub fn peer(self) -> PeerIdx {
        PeerIdx(usize::from(self.peer))
    }
}

/// The window of one (peer, sender lane), the round it last sent by copy in, and
/// what of its counts the worker's counters have.
#[derive(Debug, Default)]
struct LaneOrder {
    window: Window<Packet>,
    copied_in: u64,
    counted: Tally,
    /// The session of the last packet admitted.
    session: u32,
    /// Per link (the sender's index): the highest sequence it delivered, and when.
    links: Vec<(u32, u64)>,
}

impl LaneOrder {
    /// Records that `link` delivered `seq` at `now`, and returns the sequence every link
    /// that delivered lately has passed (when at least two have): links deliver in order,
    /// so a gap before it is a loss, not worth waiting for.
    fn passed(&mut self, link: u8, seq: u32, now: u64) -> Option<u32> {
        self.note(link, seq, now);
        let next = self.window.next();
        const CAPACITY_U32: u32 = CAPACITY as u32;
        let recent = self
            .links
            .iter()
            .filter(|l| l.1 != 0 && now.saturating_sub(l.1) <= RECENT_NS);
        let mut count = 0;
        let mut least = u32::MAX;
        for l in recent {
            count += 1;
            // A link whose latest is behind the window has passed nothing that is missing.
            let ahead = l.0.wrapping_sub(next);
            least = least.min(if ahead < CAPACITY_U32 { ahead } else { 0 });
        }
        (count >= 2 && least > 0 && least < CAPACITY_U32).then(|| next.wrapping_add(least))
    }

    /// Records that `link` delivered `seq` at `now`; true when `seq` is the latest it
    /// delivered. Noting the same twice changes nothing.
    #[inline]
    fn note(&mut self, link: u8, seq: u32, now: u64) -> bool {
        let i = usize::from(link);
        if self.links.len() <= i {
            self.links.resize(i + 1, (0, 0));
        }
        let Some(l) = self.links.get_mut(i) else {
            return false;
        };
        // Serial order: `seq` is later when less than half the space ahead.
        if l.1 == 0 || seq.wrapping_sub(l.0).wrapping_sub(1) < u32::MAX / 2 {
            l.0 = seq;
        }
        l.1 = now;
        l.0 == seq
    }

    /// Sends the packet of `s` in its turn, when its window is idle and this round sent
    /// nothing of it by copy (see [`Window::is_idle_turn`]); false, with the window
    /// untouched, when the packet must take the whole way.
    ///
    /// Equal to that way: the packet is counted in order, and nothing is released or
    /// given up. Its link's latest is `s.seq`, one behind the window's next, so
    /// [`LaneOrder::passed`] finds that link has passed nothing missing.
    #[inline]
    fn in_turn(&mut self, s: Sequenced, now: u64, round: u64, stats: &WorkerStats) -> bool {
        if self.copied_in == round
            || !self.window.is_idle_turn(s.seq)
            || !self.note(s.link, s.seq, now)
        {
            return false;
        }
        self.window.take_turn();
        self.session = s.session;
        self.counted.in_order += 1;
        stats.reorder.in_order.add(1);
        true
    }
}

impl LaneOrder {
    /// Moves what the window released by `now` to `out`, counting how long each was
    /// held; true if there was something.
    fn release_into(
        &mut self,
        out: &mut Vec<Packet>,
        (round, now): (u64, u64),
        stats: &WorkerStats,
    ) -> bool {
        let before = out.len();
        out.extend(counted(self.window.release(), now, stats));
        let any = out.len() > before;
        if any {
            self.copied_in = round;
        }
        any
    }

    /// Adds what the window counted since the last time to the worker's counters.
    fn count(&mut self, stats: &WorkerStats) {
        let now = self.window.tally();
        if now != self.counted {
            stats.reorder.add_since(&self.counted, &now);
            self.counted = now;
        }
    }
}

/// One peer's windows on this worker.
#[derive(Debug, Default)]
struct PeerOrder {
    lanes: Vec<Option<Box<LaneOrder>>>,
    wait_ns: u64,
    wait_at: Option<u64>,
    /// Learned from late packets, added to the wait the links' figures give.
    extra_ns: u64,
    /// The longest a filled gap made a packet wait lately (fading): the wait is at least
    /// a quarter more.
    filled_ns: u64,
    /// Until when gaps are not given up early (a late packet showed a link reordering).
    doubt_until: u64,
    /// When `extra_ns` and `filled_ns` last faded.
    faded_at: u64,
}

/// The reorder windows this worker owns, and the packets they released for it to send.
#[derive(Debug)]
pub struct Reorder {
    lane: Lane,
    peers: Vec<PeerOrder>,
    round: u64,
    released: Vec<Packet>,
}

impl Reorder {
    /// The windows of worker `lane`.
    pub fn new(lane: Lane) -> Reorder {
        Reorder {
            lane,
            peers: Vec::new(),
            round: 1,
            released: Vec::new(),
        }
    }

    /// Starts a round (a batch): copies made in the last one have been sent.
    pub fn begin_round(&mut self) {
        self.round += 1;
    }

    /// Forgets every window at `now`: the peers may have changed.
    pub fn clear(&mut self, now: u64, stats: &WorkerStats) {
        self.flush(now, stats);
        self.peers.clear();
    }

    /// Lets every window send what it holds and start over at its next packet: a link
    /// went down or came back, so the delays to wait for changed.
    pub fn flush(&mut self, now: u64, stats: &WorkerStats) {
        for p in &mut self.peers {
            p.wait_at = None;
            for l in p.lanes.iter_mut().flatten() {
                l.window.reset();
                l.release_into(&mut self.released, (self.round, now), stats);
                l.count(stats);
            }
        }
    }

    /// Gives up the gaps whose wait ran out by `ctx.now`.
    pub fn on_timeout(&mut self, ctx: &Ctx, stats: &WorkerStats) {
        for (i, p) in self.peers.iter_mut().enumerate() {
            if !p.lanes.iter().flatten().any(|l| l.window.held().0 > 0) {
                continue;
            }
            let wait = p.wait(ctx, PeerIdx(i));
            for l in p.lanes.iter_mut().flatten() {
                l.window.expire(ctx.now, wait);
                l.release_into(&mut self.released, (self.round, ctx.now), stats);
                l.count(stats);
            }
        }
    }

    /// When the next held packet's wait runs out.
    pub fn next_deadline(&self) -> Option<u64> {
        self.peers
            .iter()
            .flat_map(|p| {
                let wait = p.wait_ns;
                p.lanes
                    .iter()
                    .flatten()
                    .filter_map(move |l| l.window.deadline(wait))
            })
            .min()
    }

    /// The packets released since the last call, in order, to be routed and sent by
    /// copy; give the emptied list back with [`Reorder::give_back`].
    pub fn take_released(&mut self) -> Vec<Packet> {
        std::mem::take(&mut self.released)
    }

    /// Returns the list [`Reorder::take_released`] took, emptied, to be filled again.
    pub fn give_back(&mut self, mut list: Vec<Packet>) {
        list.clear();
        if self.released.is_empty() {
            self.released = list;
        }
    }

    /// True when packets wait to be taken.
    #[inline]
    pub fn has_released(&self) -> bool {
        !self.released.is_empty()
    }

    /// Gives up the oldest gaps of `peer`'s windows while they hold more than
    /// [`PEER_BYTES`] or [`PEER_PACKETS`].
    fn make_room(&mut self, peer: PeerIdx, now: u64, stats: &WorkerStats) {
        let Some(p) = self.peers.get_mut(peer.0) else {
            return;
        };
        loop {
            let (packets, bytes) = p
                .lanes
                .iter()
                .flatten()
                .map(|l| l.window.held())
                .fold((0, 0), |(n, b), (n2, b2)| (n + n2, b + b2));
            if packets <= PEER_PACKETS && bytes <= PEER_BYTES {
                return;
            }
            let Some(l) = p
                .lanes
                .iter_mut()
                .flatten()
                .max_by_key(|l| l.window.held().1)
            else {
                return;
            };
            l.window.give_up_oldest();
            l.release_into(&mut self.released, (self.round, now), stats);
            l.count(stats);
        }
    }

    /// Sends the packet of `s` in its turn when its window can be passed by (see
    /// [`LaneOrder::in_turn`]); false when it must go through the window. The peer's
    /// wait is not worked out: nothing waits, and what it learned fades with time, so the
    /// whole way works it out when it next needs it.
    #[inline]
    fn in_turn(&mut self, now: u64, s: Sequenced, stats: &WorkerStats) -> bool {
        let round = self.round;
        self.peers
            .get_mut(s.peer().0)
            .and_then(|p| p.lanes.get_mut(usize::from(s.lane)))
            .and_then(|l| l.as_deref_mut())
            .is_some_and(|l| l.in_turn(s, now, round, stats))
    }

    /// Packets and bytes held for `peer`.
    #[cfg(test)]
    pub(super) fn held(&self, peer: PeerIdx) -> (usize, usize) {
        self.peers.get(peer.0).map_or((0, 0), |p| {
            p.lanes
                .iter()
                .flatten()
                .map(|l| l.window.held())
                .fold((0, 0), |(n, b), (n2, b2)| (n + n2, b + b2))
        })
    }

    /// The window of `s`'s (peer, lane), made at its first packet, and the list of
    /// released packets.
    fn lane_of(&mut self, s: Sequenced) -> Option<(&mut LaneOrder, &mut Vec<Packet>)> {
        if self.peers.len() <= s.peer().0 {
            self.peers.resize_with(s.peer().0 + 1, PeerOrder::default);
        }
        let p = self.peers.get_mut(s.peer().0)?;
        if p.lanes.is_empty() {
            p.lanes.resize_with(MAX_LANES, || None);
        }
        let slot = p.lanes.get_mut(usize::from(s.lane))?;
        Some((slot.get_or_insert_with(Box::default), &mut self.released))
    }
}

impl PeerOrder {
    /// The wait of this peer's gaps, worked out again when it is older than
    /// [`WAIT_REFRESH_NS`].
    fn wait(&mut self, ctx: &Ctx, idx: PeerIdx) -> u64 {
        if self
            .wait_at
            .is_some_and(|t| ctx.now.saturating_sub(t) < WAIT_REFRESH_NS)
        {
            return self.wait_ns;
        }
        // They fade with time, not with calls: a peer whose traffic paused (a bulk
        // transfer ended, a call starts) must not find the waits its last load taught.
        let steps = ctx.now.saturating_sub(self.faded_at) / WAIT_REFRESH_NS;
        self.faded_at += steps * WAIT_REFRESH_NS;
        self.extra_ns = fade(self.extra_ns, steps);
        self.filled_ns = fade(self.filled_ns, steps);
        let base = ctx.snap.peer(idx).map_or(DEFAULT_WAIT_NS, wait_for);
        let seen = self.filled_ns + self.filled_ns / 4 + MARGIN_NS;
        self.wait_ns = if base == 0 {
            0
        } else {
            (base.max(seen) + self.extra_ns).min(MAX_WAIT_NS)
        };
        self.wait_at = Some(ctx.now);
        self.wait_ns
    }

    /// A gap was filled by a packet that made another wait since `since`.
    fn filled(&mut self, now: u64, since: u64) {
        let held = now.saturating_sub(since).min(MAX_WAIT_NS);
        if held > self.filled_ns {
            self.filled_ns = held;
            let seen = held + held / 4 + MARGIN_NS;
            if self.wait_ns > 0 && seen > self.wait_ns {
                self.wait_ns = (seen + self.extra_ns).min(MAX_WAIT_NS);
            }
        }
    }

    /// A packet came after its gap was given up: wait longer from now on, and for a
    /// while give no gap up before its wait ran out.
    fn late_seen(&mut self, now: u64) {
        self.doubt_until = now + FIFO_DOUBT_NS;
        self.extra_ns = (self.extra_ns + LATE_STEP_NS).min(MAX_EXTRA_NS);
        if self.wait_ns > 0 {
            self.wait_ns = (self.wait_ns + LATE_STEP_NS).min(MAX_WAIT_NS);
        }
    }
}

/// `ns` faded by 1/64 `steps` times (halved after 44, about 0.9 s of refreshes).
fn fade(ns: u64, steps: u64) -> u64 {
    if steps > 4_000 {
        return 0;
    }
    (ns as f64 * (63.0f64 / 64.0).powi(steps as i32)) as u64
}

/// The packets of `released`, each counted by how long it was held until `now`.
fn counted<'a>(
    released: impl Iterator<Item = Released<Packet>> + 'a,
    now: u64,
    stats: &'a WorkerStats,
) -> impl Iterator<Item = Packet> + 'a {
    released.map(move |r| {
        stats.reorder.held_for(now.saturating_sub(r.since));
        r.item
    })
}

/// How long a gap in `peer`'s order may wait: 0 with fewer than two links in use.
pub(super) fn wait_for(peer: &Peer) -> u64 {
    let mut delays = Vec::with_capacity(peer.links.len());
    let mut jitter = 0;
    let mut in_use = 0;
    for l in peer.links.iter().filter(|l| l.effective_weight() > 0) {
        in_use += 1;
        let f = l.health.figures();
        jitter = jitter.max(f.jitter_ns);
        if let Some(d) = f.rev_offset_ns {
            delays.push(d);
        }
    }
    if in_use < 2 {
        return 0;
    }
    if delays.len() < in_use {
        return DEFAULT_WAIT_NS;
    }
    let spread = match (delays.iter().max(), delays.iter().min()) {
        (Some(hi), Some(lo)) => hi.saturating_sub(*lo).max(0) as u64,
        _ => 0,
    };
    (spread + 4 * jitter + MARGIN_NS).min(MAX_WAIT_NS)
}

/// The `Order` stage: the packet `frame` (opened, routed next) of place `s`.
#[inline]
pub(super) fn order(
    ctx: &Ctx,
    (reorder, pool): (&mut Reorder, &mut Pool),
    stats: &WorkerStats,
    meta: &Meta,
    frame: &Frame<'_>,
    s: Sequenced,
) -> Next {
    let owner = Lane((usize::from(s.lane) % ctx.snap.workers.max(1)) as u8);
    if owner != reorder.lane {
        return Next::HandoffOrder(owner, s);
    }
    // A copy (handed over) takes the whole way: the window must note that it sent by copy.
    if !meta.by_copy && reorder.in_turn(ctx.now, s, stats) {
        return Next::Route;
    }
    let (wait, doubt) = match reorder.peers.get_mut(s.peer().0) {
        Some(p) => (p.wait(ctx, s.peer()), ctx.now < p.doubt_until),
        None => (DEFAULT_WAIT_NS, false),
    };
    window(ctx, (reorder, pool), stats, (meta, frame), s, (wait, doubt))
}

/// The `Order` stage's way through the window, for a packet [`Reorder::in_turn`] did
/// not send; `wait` and `doubt` are its peer's.
#[inline(never)]
fn window(
    ctx: &Ctx,
    (reorder, pool): (&mut Reorder, &mut Pool),
    stats: &WorkerStats,
    (meta, frame): (&Meta, &Frame<'_>),
    s: Sequenced,
    (wait, doubt): (u64, bool),
) -> Next {
    let round = reorder.round;
    let Some((l, released)) = reorder.lane_of(s) else {
        return Next::Route;
    };
    let mut admit = l.window.admit(s.seq);
    if admit == Admit::Duplicate && l.session != s.session {
        // A packet seen before, under another session: not a second copy but a sender
        // that restarted (its sequence starts over with its new session). Follow it.
        l.window.reset();
        l.release_into(released, (round, ctx.now), stats);
        admit = l.window.admit(s.seq);
    }
    l.session = s.session;
    if admit == Admit::Ahead && wait == 0 {
        // One link in use: nothing is coming to fill the gap.
        l.window.skip_to(s.seq);
        l.release_into(released, (round, ctx.now), stats);
        admit = l.window.admit(s.seq);
    }
    let next = match admit {
        Admit::InOrder | Admit::Late => {
            let before = released.len();
            released.extend(counted(l.window.release_before(), ctx.now, stats));
            if released.len() > before || l.copied_in == round {
                // Copies of this window go out before it: it must not overtake them.
                released.push(Packet::copy(pool, meta, frame));
                l.copied_in = round;
                Next::Consumed
            } else {
                if meta.by_copy {
                    // It leaves by copy (a handed-over packet): the window's next packets
                    // this round must too, or they overtake it in the transmit ring.
                    l.copied_in = round;
                }
                Next::Route
            }
        }
        Admit::Duplicate => Next::Drop(DropReason::Duplicate),
        Admit::Ahead => {
            let copy = Packet::copy(pool, meta, frame);
            let bytes = copy.buf.len();
            l.window.hold(s.seq, copy, bytes, ctx.now);
            Next::Consumed
        }
    };
    if admit != Admit::Duplicate {
        if let Some(seq) = l.passed(s.link, s.seq, ctx.now).filter(|_| !doubt) {
            l.window.give_up_before(seq);
        }
    }
    l.release_into(released, (round, ctx.now), stats);
    l.count(stats);
    let filled = l.window.take_filled_since();
    if let (Some(since), Some(p)) = (filled, reorder.peers.get_mut(s.peer().0)) {
        p.filled(ctx.now, since);
    }
    match admit {
        Admit::Ahead => reorder.make_room(s.peer(), ctx.now, stats),
        Admit::Late => {
            if let Some(p) = reorder.peers.get_mut(s.peer().0) {
                p.late_seen(ctx.now);
            }
        }
        _ => {}
    }
    next
}
