//! The packet pipeline of one worker: a function from (port, frame, now) to a
//! verdict, with no sockets, threads or clocks. Edge and hub run the same stages;
//! their configs differ (an edge routes its LAN into the bond, a hub routes the
//! edges' prefixes into it and the rest to the internet).
//!
//! A frame's way: `process` → Ethernet → `local` (ARP, ICMP echo, tunnel datagrams
//! to our addresses → `decap`) or `forward` (policy routing) → `encap` (into the
//! bond) or a plain port → `deliver` (neighbour MAC, or the resolution queue).

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
mod local;
mod masq;

pub use masq::{Handoff, HANDOFF_QUEUE};

use crate::bond::Scheduler;
use crate::frame::Frame;
use crate::io::wake::{self, WakeFd, Waker};
use crate::io::{PortId, Verdict};
use crate::nat::{NatTable, PortSlice, Proto, SessionInfo};
use crate::route::neighbor::{Lookup, NeighborMap};
use crate::route::{Neighbors, NextHop, Pending};
use crate::snapshot::Masquerade;
use crate::snapshot::Snapshot;
use crate::stats::{DropReason, WorkerStats};
use crate::wire::{arp, ethernet, icmp, Mac, BROADCAST};
use arc_swap::ArcSwap;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

/// A request for the NAT sessions of one worker.
#[derive(Debug)]
pub struct SessionQuery {
    /// Most sessions to return.
    pub limit: usize,
    /// Where the worker sends (masquerade index, session) pairs.
    pub reply: Sender<Vec<(usize, SessionInfo)>>,
}

/// A worker's queues: handed-off packets and session queries, and how to wake it.
#[derive(Debug)]
struct Queues {
    handoff: (Sender<Handoff>, Receiver<Handoff>),
    queries: (Sender<SessionQuery>, Receiver<SessionQuery>),
    waker: Arc<Waker>,
    /// The receiving end, until the worker takes it for its ports.
    wake_fd: std::sync::Mutex<Option<WakeFd>>,
}

/// State shared by all workers of a daemon.
#[derive(Debug)]
pub struct Shared {
    /// The running configuration.
    pub snapshot: ArcSwap<Snapshot>,
    /// The neighbour cache.
    pub neighbors: Neighbors,
    /// Per worker (lane).
    queues: Vec<Queues>,
}

impl Shared {
    /// Shared state starting with `snapshot`, for its number of workers.
    pub fn new(snapshot: Snapshot) -> std::io::Result<Shared> {
        let queues = (0..snapshot.workers)
            .map(|_| {
                let (waker, fd) = wake::pair()?;
                Ok(Queues {
                    handoff: bounded(HANDOFF_QUEUE),
                    queries: bounded(4),
                    waker: Arc::new(waker),
                    wake_fd: std::sync::Mutex::new(Some(fd)),
                })
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            neighbors: Neighbors::new(crate::route::neighbor::DEFAULT_CAPACITY),
            queues,
        })
    }

    /// Up to `limit` NAT sessions of each worker, asked of the running workers
    /// (each answers at its next batch; a worker silent for `timeout` is skipped).
    pub fn nat_sessions(&self, limit: usize, timeout: Duration) -> Vec<(usize, SessionInfo)> {
        let mut all = Vec::new();
        for q in &self.queues {
            let (reply, answer) = bounded(1);
            if q.queries.0.try_send(SessionQuery { limit, reply }).is_ok() {
                q.waker.wake();
                if let Ok(mut sessions) = answer.recv_timeout(timeout) {
                    all.append(&mut sessions);
                }
            }
        }
        all
    }
}

/// How often worker 0 checks that every gateway is resolved.
const GATEWAY_CHECK_NS: u64 = 100_000_000;

/// ICMP errors a worker may send per second (and its burst).
const ICMP_ERRORS_PER_SEC: u64 = 1000;

/// What a batch works with: loaded once per batch.
struct Ctx {
    snap: Arc<Snapshot>,
    neigh: Arc<NeighborMap>,
    now: u64,
}

/// Mutable per-worker state.
struct State {
    lane: u8,
    /// Next sequence per peer, for this worker's lane.
    seq: Vec<u64>,
    /// The peer id each entry of `seq` belongs to.
    seq_ids: Vec<u32>,
    /// Next sequence of every peer this lane ever sent to, by id, as of the last snapshot
    /// change: sequences are nonces, so a peer that stays or comes back continues.
    seq_kept: HashMap<u32, u64>,
    /// First sequence of a fresh peer (see [`Pipeline::new`]).
    seq_start: u64,
    sched: Vec<Scheduler>,
    generation: u64,
    pending: Pending,
    /// Frames to transmit by copy (ARP requests, released packets).
    out: Vec<(PortId, Vec<u8>)>,
    stats: Arc<WorkerStats>,
    icmp_tokens: u64,
    icmp_refill_ns: u64,
    next_gateway_check_ns: u64,
    /// This worker's session table per masquerade (snapshot order), and the
    /// masquerades they were built for.
    nat: Vec<Option<NatTable>>,
    nat_plan: Vec<Masquerade>,
    /// Every worker's handoff queue and waker, by lane.
    handoff: Vec<(Sender<Handoff>, Arc<Waker>)>,
}

/// One worker's pipeline.
pub struct Pipeline {
    shared: Arc<Shared>,
    ctx: Ctx,
    st: State,
    inbox: Option<Receiver<Handoff>>,
    queries: Option<Receiver<SessionQuery>>,
}

/// Handed-off packets a worker takes per batch.
const HANDOFF_BATCH: usize = 256;
/// Expired NAT sessions a worker reclaims per batch and table.
const NAT_EXPIRE_BUDGET: usize = 64;

impl Pipeline {
    /// A pipeline for worker `lane`. Sequences start at `seq_start`, which must be
    /// larger than any sequence this daemon sent before under the same keys: the
    /// daemon passes the wall clock in nanoseconds, so a restart never reuses a
    /// nonce and the peer's replay window accepts the new packets.
    pub fn new(shared: Arc<Shared>, lane: u8, seq_start: u64, stats: Arc<WorkerStats>) -> Pipeline {
        let snap = shared.snapshot.load_full();
        let neigh = shared.neighbors.load();
        let mine = shared.queues.get(usize::from(lane));
        let inbox = mine.map(|q| q.handoff.1.clone());
        let queries = mine.map(|q| q.queries.1.clone());
        let handoff = shared
            .queues
            .iter()
            .map(|q| (q.handoff.0.clone(), Arc::clone(&q.waker)))
            .collect();
        let mut p = Pipeline {
            inbox,
            queries,
            shared,
            ctx: Ctx {
                snap,
                neigh,
                now: 0,
            },
            st: State {
                lane,
                seq: Vec::new(),
                seq_ids: Vec::new(),
                seq_kept: HashMap::new(),
                seq_start,
                sched: Vec::new(),
                generation: u64::MAX,
                pending: Pending::new(),
                out: Vec::new(),
                stats,
                icmp_tokens: ICMP_ERRORS_PER_SEC,
                icmp_refill_ns: 0,
                next_gateway_check_ns: 0,
                nat: Vec::new(),
                nat_plan: Vec::new(),
                handoff,
            },
        };
        p.sync_snapshot();
        p
    }

    /// Starts a batch at time `now` (monotonic ns): loads the current snapshot and
    /// neighbour map, sends packets whose neighbour got resolved and ARP retries.
    pub fn begin_batch(&mut self, now: u64) {
        self.ctx.now = now;
        self.ctx.snap = self.shared.snapshot.load_full();
        self.ctx.neigh = self.shared.neighbors.load();
        if self.ctx.snap.generation != self.st.generation {
            self.sync_snapshot();
        }
        if self.st.lane == 0 && now >= self.st.next_gateway_check_ns {
            self.st.next_gateway_check_ns = now + GATEWAY_CHECK_NS;
            resolve_gateways(&self.ctx, &mut self.st);
        }
        self.serve_queues();
        if !self.st.pending.is_empty() {
            let out = &mut self.st.out;
            let r = self
                .st
                .pending
                .release(&self.ctx.neigh, now, |port, f| out.push((port, f.to_vec())));
            if let Some(c) = self
                .st
                .stats
                .drops
                .get(DropReason::NeighborUnresolved as usize)
            {
                c.add(r.expired);
            }
            for (port, ip) in self.st.pending.retry_due(now) {
                arp_request(&self.ctx, &mut self.st, port, ip);
            }
        }
    }

    /// Resumes packets other workers handed over, answers session queries, and
    /// ages the NAT tables.
    fn serve_queues(&mut self) {
        if let Some(inbox) = &self.inbox {
            for h in inbox.try_iter().take(HANDOFF_BATCH) {
                if let Some(out) = masq::resume(&self.ctx, &mut self.st, h) {
                    self.st.out.push(out);
                }
            }
        }
        if let Some(queries) = &self.queries {
            for q in queries.try_iter() {
                let now = self.ctx.now;
                let sessions = self
                    .st
                    .nat
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| t.as_ref().map(|t| (i, t)))
                    .flat_map(|(i, t)| t.sessions(now).map(move |s| (i, s)))
                    .take(q.limit)
                    .collect();
                let _ = q.reply.try_send(sessions);
            }
        }
        let (mut live, mut created, mut expired, mut out, mut inn) = (0, 0, 0, 0, 0);
        for t in self.st.nat.iter_mut().flatten() {
            t.expire(self.ctx.now, NAT_EXPIRE_BUDGET);
            let c = t.counters();
            live += t.len() as u64;
            created += c.created;
            expired += c.expired;
            out += c.translated_out;
            inn += c.translated_in;
        }
        let n = &self.st.stats.nat;
        n.sessions.set(live);
        n.created.set(created);
        n.expired.set(expired);
        n.translated_out.set(out);
        n.translated_in.set(inn);
    }

    /// Rebuilds per-peer state after a snapshot change. Schedulers restart;
    /// sequences of peers that stay are kept (a peer is matched by its id).
    /// NAT tables are kept while their masquerade is unchanged.
    fn sync_snapshot(&mut self) {
        if self.ctx.snap.masquerades != self.st.nat_plan {
            self.st.nat_plan = self.ctx.snap.masquerades.clone();
            self.st.nat = self.st.nat_plan.iter().map(|m| self.nat_table(m)).collect();
        }
        let snap = &self.ctx.snap;
        self.st.sched = snap
            .peers
            .iter()
            .map(|p| p.scheduler(snap.mode, snap.balance))
            .collect();
        let st = &mut self.st;
        st.seq_kept
            .extend(st.seq_ids.iter().copied().zip(st.seq.iter().copied()));
        st.seq = snap
            .peers
            .iter()
            .map(|p| st.seq_kept.get(&p.id).copied().unwrap_or(st.seq_start))
            .collect();
        st.seq_ids = snap.peers.iter().map(|p| p.id).collect();
        st.generation = snap.generation;
    }

    /// This worker's session table for masquerade `m`. The tunnel's UDP port is
    /// never handed out: replies to it would be taken for tunnel datagrams.
    fn nat_table(&self, m: &Masquerade) -> Option<NatTable> {
        let mut seed = [0u8; 8];
        getrandom::getrandom(&mut seed).ok()?;
        let slice = PortSlice {
            worker: usize::from(self.st.lane),
            workers: self.ctx.snap.workers,
        };
        let mut t = NatTable::new(&m.nat, slice, u64::from_ne_bytes(seed)).ok()?;
        t.reserve(Proto::Udp, self.ctx.snap.tunnel_port);
        Some(t)
    }

    /// Handles one frame received on `port`.
    pub fn process(&mut self, port: PortId, frame: &mut Frame<'_>) -> Verdict {
        process(&self.ctx, &mut self.st, &self.shared.neighbors, port, frame)
    }

    /// Frames to send by copy, produced since the last call.
    pub fn take_out(&mut self) -> std::vec::Drain<'_, (PortId, Vec<u8>)> {
        self.st.out.drain(..)
    }

    /// Hands every frame to send by copy to `send`; a frame it refuses (false) is
    /// counted as [`DropReason::TxFull`].
    pub fn send_out(&mut self, mut send: impl FnMut(PortId, &[u8]) -> bool) {
        for (port, frame) in self.st.out.drain(..) {
            if !send(port, &frame) {
                self.st.stats.count_drop(DropReason::TxFull);
            }
        }
    }

    /// The receiving end of this worker's wake-ups, for its ports (once).
    pub fn take_wake_fd(&self) -> Option<WakeFd> {
        let q = self.shared.queues.get(usize::from(self.st.lane))?;
        q.wake_fd.lock().ok()?.take()
    }

    /// This worker's waker (it announces its sleep through it).
    pub fn waker(&self) -> Option<&Waker> {
        self.st
            .handoff
            .get(usize::from(self.st.lane))
            .map(|(_, w)| &**w)
    }

    /// True when other workers handed over packets not yet processed.
    pub fn has_handoff(&self) -> bool {
        self.inbox.as_ref().is_some_and(|i| !i.is_empty())
            || self.queries.as_ref().is_some_and(|q| !q.is_empty())
    }

    /// This worker's counters.
    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.st.stats
    }

    /// The snapshot of the current batch.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.ctx.snap
    }

    /// The scheduler of peer `peer` (for tests and benches).
    pub fn scheduler(&self, peer: usize) -> Option<&Scheduler> {
        self.st.sched.get(peer)
    }
}

fn process(
    ctx: &Ctx,
    st: &mut State,
    neighbors: &Neighbors,
    port: PortId,
    frame: &mut Frame<'_>,
) -> Verdict {
    let Ok(eth) = ethernet::Header::parse(frame.data()) else {
        return discard(st, DropReason::Truncated);
    };
    let Some(p) = ctx.snap.ports.get(port) else {
        return discard(st, DropReason::NotForUs);
    };
    if eth.dst != p.mac && eth.dst != BROADCAST {
        return discard(st, DropReason::NotForUs);
    }
    match eth.ethertype {
        ethernet::ETHERTYPE_ARP => local::arp(ctx, st, neighbors, port, frame),
        ethernet::ETHERTYPE_IPV4 => forward::ipv4(ctx, st, port, frame),
        _ => discard(st, DropReason::UnsupportedEthertype),
    }
}

/// Counts a drop and returns the drop verdict.
#[inline]
fn discard(st: &State, why: DropReason) -> Verdict {
    st.stats.count_drop(why);
    Verdict::Drop
}

/// Sends the IPv4 frame in `frame` (Ethernet header space at the front) out of
/// `port` to neighbour `next_hop`: fills the MAC if known, else queues a copy and
/// asks for it.
fn deliver(
    ctx: &Ctx,
    st: &mut State,
    port: PortId,
    next_hop: Ipv4Addr,
    frame: &mut Frame<'_>,
) -> Verdict {
    let Some(p) = ctx.snap.ports.get(port) else {
        return discard(st, DropReason::NoRoute);
    };
    let mac = match ctx.neigh.lookup(port, next_hop, ctx.now) {
        Lookup::Fresh(mac) => Some(mac),
        Lookup::Stale(mac) => {
            if st.pending.request_due(port, next_hop, ctx.now) {
                arp_request(ctx, st, port, next_hop);
            }
            Some(mac)
        }
        Lookup::Missing => None,
    };
    ethernet::write(
        frame.data_mut(),
        mac.unwrap_or([0; 6]),
        p.mac,
        ethernet::ETHERTYPE_IPV4,
    );
    if mac.is_some() {
        st.stats.forwarded.add(1);
        return Verdict::Tx(port);
    }
    if !st.pending.push(port, next_hop, frame.data(), ctx.now) {
        return discard(st, DropReason::NeighborQueueFull);
    }
    if st.pending.request_due(port, next_hop, ctx.now) {
        arp_request(ctx, st, port, next_hop);
    }
    Verdict::Drop
}

/// Asks for the MAC of every link's next hop and every route's gateway that is
/// unknown or due for a refresh, so the first packets to them need not wait.
fn resolve_gateways(ctx: &Ctx, st: &mut State) {
    let links = ctx.snap.peers.iter().flat_map(|p| {
        p.links
            .iter()
            .map(|l| (l.port, l.gateway.unwrap_or(*l.remote.ip())))
    });
    let hops: Vec<(PortId, Ipv4Addr)> = links.chain(ctx.snap.routes.gateways()).collect();
    for (port, ip) in hops {
        let due = !matches!(ctx.neigh.lookup(port, ip, ctx.now), Lookup::Fresh(_));
        if due && st.pending.request_due(port, ip, ctx.now) {
            arp_request(ctx, st, port, ip);
        }
    }
}

/// Queues a broadcast ARP request for `ip` on `port`.
fn arp_request(ctx: &Ctx, st: &mut State, port: PortId, ip: Ipv4Addr) {
    let Some(p) = ctx.snap.ports.get(port) else {
        return;
    };
    let mut f = vec![0u8; ethernet::HEADER_LEN + arp::PACKET_LEN];
    let (eth, body) = f.split_at_mut(ethernet::HEADER_LEN);
    ethernet::write(eth, BROADCAST, p.mac, ethernet::ETHERTYPE_ARP);
    if let Some(body) = body.first_chunk_mut() {
        arp::Arp {
            op: arp::OP_REQUEST,
            sender_mac: p.mac,
            sender_ip: p.addr,
            target_mac: [0; 6],
            target_ip: ip,
        }
        .emit(body);
    }
    st.out.push((port, f));
}

/// An ICMP error to answer a dropped packet with.
#[derive(Debug, Clone, Copy)]
struct IcmpError {
    icmp_type: u8,
    code: u8,
    /// Second word of the ICMP header (next-hop MTU for "fragmentation needed").
    rest: u32,
    /// The drop counted for the offending packet.
    why: DropReason,
}

/// Turns the IPv4 frame in `frame` (received on `port` from `from_mac`) into an
/// ICMP error about it, sent straight back to that neighbour. Rate limited; never
/// sent about ICMP errors, non-first fragments or non-unicast sources.
fn icmp_error(
    ctx: &Ctx,
    st: &mut State,
    port: PortId,
    from_mac: Mac,
    frame: &mut Frame<'_>,
    err: IcmpError,
) -> Verdict {
    let IcmpError {
        icmp_type,
        code,
        rest,
        why,
    } = err;
    let Some(p) = ctx.snap.ports.get(port) else {
        return discard(st, why);
    };
    let Ok(ip) =
        crate::wire::ipv4::Ipv4::parse(frame.data().get(ethernet::HEADER_LEN..).unwrap_or(&[]))
    else {
        return discard(st, why);
    };
    let about_icmp_error = ip.protocol() == crate::wire::ipv4::PROTO_ICMP
        && ip
            .payload()
            .first()
            .is_none_or(|&t| t != icmp::ECHO_REQUEST && t != icmp::ECHO_REPLY);
    let src = ip.src();
    if about_icmp_error
        || ip.is_later_fragment()
        || src.is_broadcast()
        || src.is_multicast()
        || src.is_unspecified()
        || !take_icmp_token(st, ctx.now)
    {
        return discard(st, why);
    }
    st.stats.count_drop(why);
    let quote = ip.total_len().min(icmp::MAX_QUOTE);
    if !frame.set_len(ethernet::HEADER_LEN + quote) || !frame.push_front(icmp::ERROR_HEAD_LEN) {
        return Verdict::Drop;
    }
    let data = frame.data_mut();
    ethernet::write(data, from_mac, p.mac, ethernet::ETHERTYPE_IPV4);
    let Some((head, quote)) = data
        .get_mut(ethernet::HEADER_LEN..)
        .and_then(|d| d.split_first_chunk_mut::<{ icmp::ERROR_HEAD_LEN }>())
    else {
        return Verdict::Drop;
    };
    icmp::ErrorRepr {
        src: p.addr,
        dst: src,
        icmp_type,
        code,
        rest,
    }
    .emit(head, quote);
    st.stats.icmp_errors.add(1);
    // Routed like locally generated traffic of an unbound socket (source 0.0.0.0
    // for the rules, as Linux does): an error about a packet that came out of the
    // tunnel goes back into it; without a route it returns to the neighbour.
    match ctx.snap.routes.lookup(Ipv4Addr::UNSPECIFIED, src) {
        Some(NextHop::Bond(peer)) => encap::tunnel(ctx, st, port, from_mac, frame, peer),
        Some(NextHop::Port { port: out, gateway }) => {
            deliver(ctx, st, out, gateway.unwrap_or(src), frame)
        }
        None => Verdict::Tx(port),
    }
}

fn take_icmp_token(st: &mut State, now: u64) -> bool {
    let elapsed = now.saturating_sub(st.icmp_refill_ns);
    let refill = elapsed.saturating_mul(ICMP_ERRORS_PER_SEC) / 1_000_000_000;
    if refill > 0 {
        st.icmp_tokens = (st.icmp_tokens + refill).min(ICMP_ERRORS_PER_SEC);
        st.icmp_refill_ns = now;
    }
    if st.icmp_tokens == 0 {
        return false;
    }
    st.icmp_tokens -= 1;
    true
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_nat;
