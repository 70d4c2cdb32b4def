//! The packet pipeline of one worker: a function from (port, frame, now) to a
//! verdict, with no sockets, threads, clocks or randomness of its own. Edge and hub
//! run the same stages; their configs differ (an edge routes its LAN into the bond,
//! a hub routes the edges' prefixes into it and the rest to the internet).
//!
//! Each stage is a function that returns what comes next ([`Next`]); one bounded
//! loop, [`Pipeline::run`], dispatches. No stage calls another, so that loop is a
//! frame's whole way:
//!
//! ```text
//! Ethernet ─┬─ Arp ──────────────────────────────────────────► Done
//!           └─ Ipv4 ─┬─ MasqIn ─► TranslateIn ─► Route           (or Handoff)
//!                    ├─ Local ─┬─ echo ─────────────────────► Done
//!                    │         └─ Open
//!                    ├─ Open (decap) ───────────┬─ Route
//!                    │                          ├─ Order ─► Route (or Handoff, or held)
//!                    │                          ├─ Answer (a probe) ─► Deliver
//!                    │                          ├─ Heard (an answer) ─► Done
//!                    │                          └─ Handshake ─► Deliver (answer)
//!                    └─ Route ─┬─ Seal (encap) ─────────────► Deliver
//!                              ├─ MasqOut ─► TranslateOut ──► Deliver (or Handoff)
//!                              ├─ Deliver ─► Done (Tx, or waiting for ARP)
//!                              └─ IcmpError ─► Seal | Deliver | Done
//! ```
//!
//! (`Done` is the end of the way: [`Next::Tx`] or [`Next::Consumed`].)
//!
//! Worker 0 also sends every link's probes when they are due ([`Prober`]), and on an
//! edge the handshakes and keepalives ([`Handshaker`]), through `Deliver` like any
//! other frame.
//!
//! State lives in named parts that each stage takes explicitly: [`Keys`] (this
//! worker's view of the sessions) and [`Schedulers`] (the bond), [`Resolve`]
//! (neighbours), [`IcmpLimiter`],
//! [`Masq`] (NAT tables), [`Out`] (frames sent by copy, handoffs) and the
//! worker's counters, and [`Reorder`] (the reorder windows this worker owns). Time comes in through [`Pipeline::begin_batch`]; the
//! pipeline reports its next deadline through [`Pipeline::next_deadline`].

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod decap;
mod encap;
mod forward;
mod handshake;
mod hygiene;
mod icmp_error;
mod ingress;
mod keys;
mod local;
mod masq;
mod meta;
mod out;
mod pairing;
mod pool;
mod probe;
mod reorder;
mod resolve;
mod schedulers;

pub use out::{Out, Packet};
use pool::Pool;
pub use pool::Spares;
pub use reorder::{PEER_BYTES, PEER_PACKETS};

use crate::bond::Scheduler;
use crate::frame::{Frame, PortId, Verdict};
use crate::health::Board;
use crate::ids::{Lane, MasqIdx, PeerIdx};
use crate::nat::{Lookup, SessionInfo, SlotHint};
use crate::route::neighbor::NeighborMap;
use crate::route::Neighbors;
use crate::session::Sessions;
use crate::snapshot::Snapshot;
use crate::stats::{DropReason, WorkerStats};
use arc_swap::ArcSwap;
use handshake::{Handshaker, DUE_FRAME};
use icmp_error::{IcmpError, IcmpLimiter};
use keys::Keys;
use masq::{Masq, MasqOut};
use meta::Meta;
use probe::{Prober, PROBE_FRAME};
use reorder::{Reorder, Sequenced};
use resolve::Resolve;
use schedulers::Schedulers;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// State shared by all workers of a daemon: the running configuration, the
/// neighbour cache, the board where link state changes are announced, and the
/// sessions' board.
#[derive(Debug)]
pub struct Shared {
    /// The running configuration.
    pub snapshot: ArcSwap<Snapshot>,
    /// The neighbour cache.
    pub neighbors: Neighbors,
    /// Link state changes (the link health itself is in the snapshot's links).
    pub board: Board,
    /// Session changes and numbering (the sessions are in the snapshot's peers).
    pub sessions: Sessions,
    /// Packet buffers the workers' pools have to spare.
    pub spares: Arc<Spares>,
}

impl Shared {
    /// Shared state starting with `snapshot`; `seed` scrambles session indices (take it
    /// from a random source).
    pub fn new(snapshot: Snapshot, seed: u64) -> Shared {
        Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            neighbors: Neighbors::new(crate::route::neighbor::DEFAULT_CAPACITY),
            board: Board::default(),
            sessions: Sessions::new(seed),
            spares: Arc::default(),
        }
    }
}

/// What comes next for a frame: the stage to run, or the end of its way.
#[derive(Debug, Clone, Copy)]
enum Next {
    /// An ARP packet on a port.
    Arp,
    /// Check the IPv4 header, trim padding, and classify.
    Ipv4,
    /// To one of braid's addresses: ICMP echo or a tunnel datagram.
    Local,
    /// A tunnel datagram: authenticate and take the inner packet out.
    Open,
    /// A probe from this peer on this link (its index): answer it.
    Answer(PeerIdx, u8),
    /// An answer to our probe from this peer on this link: record it.
    Heard(PeerIdx, u8),
    /// A handshake message: answer an initiation, or make the session of a response.
    Handshake,
    /// A packet out of the tunnel, in its sender's order: to its reorder window.
    Order(Sequenced),
    /// Hygiene (never forwarded: broadcast, multicast, martians, back into the
    /// bond it came from), TTL and policy routing.
    Route,
    /// Into the bond of this peer.
    Seal(PeerIdx),
    /// Leaving by a masquerading port: find the session's owner.
    MasqOut(MasqOut),
    /// To an outside address of this masquerade: find the session's owner.
    MasqIn(MasqIdx),
    /// Translate outbound on this worker (a parked frame: trying the slot its lookup
    /// found first).
    TranslateOut(MasqOut, Option<SlotHint>),
    /// Translate inbound on this worker (a parked frame: as `TranslateOut`).
    TranslateIn(MasqIdx, Option<SlotHint>),
    /// Translate outbound on this worker, after the batch's other frames: the
    /// lookup's index entry is on its way (only in [`Pipeline::process_batch`]).
    ParkOut(MasqOut, Lookup),
    /// Translate inbound on this worker, after the batch's other frames (as
    /// [`Next::ParkOut`]).
    ParkIn(MasqIdx, Lookup),
    /// Out of a port to a neighbour.
    Deliver(PortId, Ipv4Addr),
    /// Answer the packet with an ICMP error.
    IcmpError(IcmpError),
    /// Hand the packet to the worker that owns its NAT session, to translate outbound
    /// there (see [`Resume::Out`]).
    HandoffOut(Lane, MasqOut),
    /// Hand the packet to the worker that owns its NAT session, to translate inbound
    /// there (see [`Resume::In`]).
    HandoffIn(Lane, MasqIdx),
    /// Hand the packet to the worker that owns its reorder window (see
    /// [`Resume::Order`]).
    HandoffOrder(Lane, Sequenced),
    /// Dropped, and counted for this reason.
    Drop(DropReason),
    /// The frame's way ends: transmit it on this port.
    Tx(PortId),
    /// The frame's way ends without it: consumed (answered by copy, queued, held,
    /// handed off); its buffer goes back to the pool, and no drop is counted.
    Consumed,
}

// Small enough to go from stage to stage in two registers rather than through memory.
const _: () = assert!(std::mem::size_of::<Next>() <= 16);

/// Frames a worker's handoff queue holds.
pub const HANDOFF_QUEUE: usize = 4096;

/// Where a handed-off packet resumes on its owner.
#[derive(Debug, Clone, Copy)]
pub enum Resume {
    /// Translate outbound, then leave as [`MasqOut`] says.
    Out(MasqOut),
    /// Translate inbound, then route.
    In(MasqIdx),
    /// Into the reorder window of its (peer, sender lane), then route.
    Order(Sequenced),
}

/// A packet travelling to the worker that owns its NAT session or its reorder window.
#[derive(Debug)]
pub struct Handoff {
    resume: Resume,
    packet: Packet,
}

/// Most stages one frame passes. The longest way (a masqueraded packet that
/// hairpins, or an ICMP error about a packet out of the tunnel) takes about ten; a
/// frame still going after this many is dropped and counted as a loop.
const MAX_STEPS: usize = 16;

/// A frame of a batch parked at its NAT translation in [`Pipeline::process_batch`],
/// waiting there while its lookup's memory reads (started when it parked) arrive.
#[derive(Debug, Clone, Copy)]
struct Parked {
    /// Its place in the batch.
    at: usize,
    /// The translation it resumes with (`TranslateOut` or `TranslateIn`).
    next: Next,
    /// Its lookup, whose index entry was loading when it parked.
    lookup: Lookup,
    meta: Meta,
}

/// Parks the frame at `at` in the batch (its verdict, `Drop` for now, is
/// [`Pipeline::process_batch`]'s to write), to resume with `next`.
#[cold]
#[inline(never)]
fn park(parked: &mut Vec<Parked>, at: usize, (next, lookup): (Next, Lookup), meta: &Meta) {
    parked.push(Parked {
        at,
        next,
        lookup,
        meta: *meta,
    });
}

/// Frames a batch holds at most in the worker (the parked list is reserved for
/// them); a larger batch grows it once.
const PARKED: usize = 64;

/// What a batch works with: loaded once per batch.
struct Ctx {
    snap: Arc<Snapshot>,
    neigh: Arc<NeighborMap>,
    now: u64,
}

/// One worker's pipeline.
pub struct Pipeline {
    shared: Arc<Shared>,
    ctx: Ctx,
    generation: u64,
    /// The board's change counts (link states, learned weights) the schedulers were
    /// built at.
    link_changes: u64,
    weight_changes: u64,
    keys: Keys,
    scheds: Schedulers,
    resolve: Resolve,
    icmp: IcmpLimiter,
    masq: Masq,
    prober: Prober,
    handshaker: Handshaker,
    reorder: Reorder,
    out: Out,
    /// The frames of the batch under way waiting for their NAT lookups (kept
    /// between batches so none allocates).
    parked: Vec<Parked>,
    /// The place in its batch of the frame [`Pipeline::process_batch`] runs.
    at: usize,
    stats: Arc<WorkerStats>,
}

impl Pipeline {
    /// The pipeline of worker `lane`. `seed` keys the NAT tables' hashes; take it from
    /// a random source.
    pub fn new(shared: Arc<Shared>, lane: Lane, seed: u64, stats: Arc<WorkerStats>) -> Pipeline {
        let snap = shared.snapshot.load_full();
        let neigh = shared.neighbors.load();
        let pool = Pool::new(shared.spares.clone());
        let mut p = Pipeline {
            shared,
            ctx: Ctx {
                snap,
                neigh,
                now: 0,
            },
            generation: u64::MAX,
            link_changes: 0,
            weight_changes: 0,
            keys: Keys::new(lane),
            scheds: Schedulers::default(),
            resolve: Resolve::new(lane),
            icmp: IcmpLimiter::new(),
            masq: Masq::new(lane, seed),
            prober: Prober::new(lane),
            handshaker: Handshaker::new(lane),
            reorder: Reorder::new(lane),
            out: Out::new(pool),
            parked: Vec::with_capacity(PARKED),
            at: 0,
            stats,
        };
        p.sync_snapshot();
        p
    }

    /// Starts a batch at time `now` (monotonic ns): loads the current snapshot and
    /// neighbour map, follows link state and session changes, then runs what is due
    /// (handshakes, link probes, released packets, ARP requests, NAT expiry). Calling
    /// it again at the same time does nothing more.
    pub fn begin_batch(&mut self, now: u64) {
        self.ctx.now = now;
        self.reorder.begin_round();
        self.ctx.snap = self.shared.snapshot.load_full();
        self.ctx.neigh = self.shared.neighbors.load();
        self.resolve.begin_batch();
        if self.ctx.snap.generation != self.generation {
            self.sync_snapshot();
        }
        let changes = self.shared.board.changes();
        if changes != self.link_changes {
            // A link went down or came back: its weight counts again or not.
            self.link_changes = changes;
            self.scheds.sync(&self.ctx.snap);
            self.handshaker.links_changed();
            self.reorder.flush(now, &self.stats);
        }
        let learned = self.shared.board.weight_changes();
        if learned != self.weight_changes {
            // New learned weights: the schedulers follow them from this batch on.
            self.weight_changes = learned;
            self.scheds.sync(&self.ctx.snap);
        }
        self.scheds.tick(&self.ctx.snap, now);
        self.send_handshakes();
        // The epoch is read before the sessions: a change made meanwhile moves it again.
        let epoch = self.shared.sessions.epoch();
        if self.keys.sync(&self.ctx.snap, epoch) {
            // A peer may have a session to probe with now, and new session timers.
            self.prober.reset();
            self.handshaker.reset();
        }
        self.send_probes();
        self.resolve
            .on_timeout(&self.ctx, &mut self.out, &self.stats);
        self.masq.on_timeout(now, &self.stats);
        self.reorder.on_timeout(&self.ctx, &self.stats);
        self.send_more();
    }

    /// The earliest time (monotonic ns) at which [`Pipeline::begin_batch`] has
    /// something to do, or `None` when nothing is due until a frame arrives.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.handshaker.next_deadline(),
            self.prober.next_deadline(),
            self.resolve.next_deadline(),
            self.masq.next_deadline(),
            self.reorder.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Rebuilds per-peer state after a snapshot change: schedulers restart, NAT
    /// tables are kept while their masquerade is unchanged, every link's and peer's
    /// timers are looked at (sessions stay with their peers, in the snapshot).
    fn sync_snapshot(&mut self) {
        let snap = &self.ctx.snap;
        self.masq.sync(snap);
        self.reorder.clear(self.ctx.now, &self.stats);
        self.link_changes = self.shared.board.changes();
        self.weight_changes = self.shared.board.weight_changes();
        self.scheds.sync(snap);
        self.prober.reset();
        self.handshaker.reset();
        self.generation = snap.generation;
    }

    /// Sends the handshakes and keepalives that are due (worker 0), through `Deliver`.
    fn send_handshakes(&mut self) {
        let lane = self.keys.lane();
        for due in self.handshaker.on_timeout(&self.ctx, &self.shared.sessions) {
            self.send_own(DUE_FRAME, |ctx, _, frame| {
                handshake::emit(ctx, lane, frame, &due)
            });
        }
    }

    /// Sends the link probes that are due (worker 0), through `Deliver`.
    fn send_probes(&mut self) {
        let dues = self
            .prober
            .on_timeout(&self.ctx, &self.keys, &self.shared.board);
        for due in dues {
            self.send_own(PROBE_FRAME, |ctx, keys, frame| {
                probe::emit(ctx, keys, frame, &due)
            });
        }
    }

    /// Builds a frame of this end's own in a buffer of `size` bytes and sends it on its
    /// way from the stage `build` returns.
    fn send_own(&mut self, size: usize, build: impl FnOnce(&Ctx, &Keys, &mut Frame<'_>) -> Next) {
        let mut buf = vec![0u8; size];
        let mut frame = Frame::new(&mut buf, 0);
        let next = build(&self.ctx, &self.keys, &mut frame);
        let mut meta = Meta::new(0);
        if let Verdict::Tx(port) = self.run(next, &mut meta, &mut frame) {
            let len = frame.len();
            buf.truncate(len);
            self.out.send_copy(port, buf);
        }
    }

    /// Handles one frame received on `port`.
    #[inline]
    pub fn process(&mut self, port: PortId, frame: &mut Frame<'_>) -> Verdict {
        let mut meta = Meta::new(port);
        let next = ingress::ethernet(&self.ctx, &mut meta, frame);
        let verdict = self.run(next, &mut meta, frame);
        self.send_more();
        verdict
    }

    /// Handles a batch of frames received on `port`, as [`Pipeline::process`] would one
    /// after another, writing frame *i*'s verdict to `verdicts[i]` (the shorter of the
    /// two slices is what is handled), except for the order of the NAT translations: a
    /// frame that reaches one (this worker owns its session) is parked there
    /// ([`Next::ParkOut`], [`Next::ParkIn`]), its lookup's index entry already on its
    /// way into the cache. After the last frame, each parked frame goes on from its
    /// translation to its verdict, in batch order, the session slot of the one
    /// [`crate::nat::AHEAD`] further on loading meanwhile (the entries their lookups name
    /// have arrived by then). A table larger than the caches so costs the batch two
    /// memory latencies, not each packet; the NAT sees the parked packets after the
    /// batch's others (and after the copies those released).
    ///
    /// Only the frames' first runs park (the copies [`Pipeline::send_more`] runs and
    /// the resumed frames do not), so a frame parks at most once, and [`MAX_STEPS`]
    /// bounds each of its two parts. Without masquerades this is
    /// [`Pipeline::process`] per frame.
    pub fn process_batch(
        &mut self,
        port: PortId,
        frames: &mut [Frame<'_>],
        verdicts: &mut [Verdict],
    ) {
        let pairs = frames.iter_mut().zip(verdicts.iter_mut());
        if !self.masq.any() {
            for (frame, verdict) in pairs {
                *verdict = self.process(port, frame);
            }
            return;
        }
        self.parked.clear();
        self.masq.set_parking(true);
        for (at, (frame, verdict)) in pairs.enumerate() {
            self.at = at;
            *verdict = self.process(port, frame);
        }
        self.masq.set_parking(false);
        if self.parked.is_empty() {
            return;
        }
        let mut parked = std::mem::take(&mut self.parked);
        for p in parked.iter_mut().take(crate::nat::AHEAD) {
            p.next = self.masq.prefetch_session(p.next, p.lookup);
        }
        for j in 0..parked.len() {
            if let Some(q) = parked.get_mut(j + crate::nat::AHEAD) {
                q.next = self.masq.prefetch_session(q.next, q.lookup);
            }
            let Some(p) = parked.get_mut(j) else {
                continue;
            };
            let (Some(frame), Some(verdict)) = (frames.get_mut(p.at), verdicts.get_mut(p.at))
            else {
                continue;
            };
            *verdict = self.run(p.next, &mut p.meta, frame);
            self.send_more();
        }
        self.parked = parked;
    }

    /// Runs the packets a frame's way left to go on by copy: those the reorder windows
    /// released (routed, in order), and redundant copies (delivered).
    #[inline(always)]
    fn send_more(&mut self) {
        if !self.reorder.has_released() && !self.out.has_again() {
            return;
        }
        self.send_held();
    }

    /// What [`Pipeline::send_more`] does when there is something to send.
    #[inline(never)]
    fn send_held(&mut self) {
        // Copies never park: they are no frame of the batch.
        let parking = self.masq.set_parking(false);
        if self.reorder.has_released() {
            let mut released = self.reorder.take_released();
            for p in released.drain(..) {
                self.run_copy(Next::Route, p);
            }
            self.reorder.give_back(released);
        }
        while let Some((next, packet)) = self.out.take_again() {
            self.run_copy(next, packet);
        }
        self.masq.set_parking(parking);
    }

    /// Runs a packet copy from `next`; what it sends goes by copy.
    fn run_copy(&mut self, next: Next, packet: Packet) {
        let Packet {
            mut meta,
            mut buf,
            start,
            len,
        } = packet;
        let mut frame = Frame::at(&mut buf, start, len);
        meta.by_copy = true;
        let verdict = self.run(next, &mut meta, &mut frame);
        let (start, len) = (frame.start(), frame.len());
        match verdict {
            Verdict::Tx(port) => self.out.send_packet(port, buf, start, len),
            Verdict::Drop => self.out.pool().give(buf),
        }
    }

    /// Continues a packet another worker handed over (see [`Out::take_handoffs`]);
    /// what it sends goes to [`Pipeline::take_out`].
    pub fn resume(&mut self, h: Handoff) {
        let Handoff { resume, packet } = h;
        let next = match resume {
            Resume::Out(o) => Next::TranslateOut(o, None),
            Resume::In(m) => Next::TranslateIn(m, None),
            Resume::Order(s) => Next::Order(s),
        };
        self.run_copy(next, packet);
        self.send_more();
    }

    /// The stage loop: runs stages from `next` until the frame's way ends.
    fn run(&mut self, mut next: Next, meta: &mut Meta, frame: &mut Frame<'_>) -> Verdict {
        let ctx = &self.ctx;
        let stats = &*self.stats;
        for _ in 0..MAX_STEPS {
            next = match next {
                Next::Arp => local::arp(ctx, &self.shared.neighbors, stats, meta, frame),
                Next::Ipv4 => ingress::ipv4(ctx, meta, frame),
                Next::Local => local::serve(ctx, stats, meta, frame),
                Next::Open => {
                    decap::open(ctx, (&self.keys, &self.shared.sessions), stats, meta, frame)
                }
                Next::Handshake => handshake::handle(
                    ctx,
                    (self.keys.lane(), &self.shared.sessions),
                    stats,
                    meta,
                    frame,
                ),
                Next::Answer(peer, link) => {
                    probe::answer(ctx, &self.keys, stats, meta, frame, (peer, link))
                }
                Next::Heard(peer, link) => {
                    probe::heard(ctx, &self.shared.board, stats, frame, (peer, link))
                }
                Next::Order(s) => reorder::order(
                    ctx,
                    (&mut self.reorder, self.out.pool()),
                    stats,
                    meta,
                    frame,
                    s,
                ),
                Next::Route => forward::route(ctx, meta, frame),
                Next::Seal(peer) => encap::seal(
                    ctx,
                    &self.keys,
                    (&mut self.scheds, &mut self.out),
                    stats,
                    meta,
                    frame,
                    peer,
                ),
                Next::MasqOut(o) => masq::outbound(ctx, &self.masq, meta, frame, o),
                Next::MasqIn(m) => masq::inbound(ctx, &self.masq, meta, frame, m),
                Next::TranslateOut(o, h) => {
                    masq::translate_out(ctx, &mut self.masq, meta, frame, (o, h))
                }
                Next::TranslateIn(m, h) => {
                    masq::translate_in(ctx, &mut self.masq, meta, frame, (m, h))
                }
                Next::ParkOut(o, l) => {
                    park(
                        &mut self.parked,
                        self.at,
                        (Next::TranslateOut(o, None), l),
                        meta,
                    );
                    return Verdict::Drop;
                }
                Next::ParkIn(m, l) => {
                    park(
                        &mut self.parked,
                        self.at,
                        (Next::TranslateIn(m, None), l),
                        meta,
                    );
                    return Verdict::Drop;
                }
                Next::Deliver(port, hop) => resolve::deliver(
                    ctx,
                    &mut self.resolve,
                    &mut self.out,
                    stats,
                    frame,
                    port,
                    hop,
                ),
                Next::IcmpError(e) => {
                    icmp_error::answer(ctx, &mut self.icmp, stats, meta, frame, e)
                }
                Next::HandoffOut(owner, o) => {
                    self.out.hand_off(stats, owner, Resume::Out(o), meta, frame)
                }
                Next::HandoffIn(owner, m) => {
                    self.out.hand_off(stats, owner, Resume::In(m), meta, frame)
                }
                Next::HandoffOrder(owner, s) => {
                    self.out
                        .hand_off(stats, owner, Resume::Order(s), meta, frame)
                }
                Next::Drop(why) => {
                    stats.count_drop(why);
                    return Verdict::Drop;
                }
                Next::Tx(port) => return Verdict::Tx(port),
                Next::Consumed => return Verdict::Drop,
            };
        }
        stats.count_drop(DropReason::Loop);
        Verdict::Drop
    }

    /// Frames to send by copy (ARP requests, released and resumed packets),
    /// produced since the last call.
    pub fn take_out(&mut self) -> impl Iterator<Item = (PortId, Vec<u8>)> + '_ {
        self.out.take_copies()
    }

    /// Hands every frame to send by copy to `send`; a frame it refuses (false) is
    /// counted as [`DropReason::TxFull`].
    pub fn send_out(&mut self, send: impl FnMut(PortId, &[u8]) -> bool) {
        let refused = self.out.send_all(send);
        if refused > 0 {
            if let Some(c) = self.stats.drops.get(DropReason::TxFull as usize) {
                c.add(refused);
            }
        }
    }

    /// Packet buffers this worker allocated because its pool and the spares were empty.
    pub fn pool_misses(&mut self) -> u64 {
        self.out.pool().misses()
    }

    /// Packets handed to other workers since the last call, with the lane of each.
    pub fn take_handoffs(&mut self) -> std::vec::Drain<'_, (Lane, Handoff)> {
        self.out.take_handoffs()
    }

    /// Hands every packet for another worker to `post`; one it refuses (the
    /// owner's queue is full) is counted as [`DropReason::HandoffFull`].
    pub fn post_handoffs(&mut self, mut post: impl FnMut(Lane, Handoff) -> bool) {
        for (lane, h) in self.out.take_handoffs() {
            if !post(lane, h) {
                self.stats.count_drop(DropReason::HandoffFull);
            }
        }
    }

    /// Up to `limit` live NAT sessions of this worker, with their masquerade.
    pub fn nat_sessions(&self, limit: usize) -> Vec<(MasqIdx, SessionInfo)> {
        self.masq.sessions(self.ctx.now, limit)
    }

    /// This worker's lane.
    pub fn lane(&self) -> Lane {
        self.keys.lane()
    }

    /// This worker's counters.
    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// The state this worker shares with the others.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The snapshot of the current batch.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.ctx.snap
    }

    /// The scheduler of peer `peer` (for tests and benches).
    pub fn scheduler(&self, peer: PeerIdx) -> Option<&Scheduler> {
        self.scheds.get(peer)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_earliest;
#[cfg(test)]
mod tests_handshake;
#[cfg(test)]
mod tests_hygiene;
#[cfg(test)]
mod tests_nat;
#[cfg(test)]
mod tests_probe;
#[cfg(test)]
mod tests_reorder;
#[cfg(test)]
mod tests_timers;
