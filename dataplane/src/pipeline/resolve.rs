//! Neighbour resolution on one worker: the `Deliver` stage (destination MAC, or
//! the resolution queue and an ARP request), ARP retries, and the periodic check
//! that every gateway is known.

use super::out::Out;
use super::{Ctx, Next};
use crate::frame::{Frame, PortId};
use crate::ids::Lane;
use crate::route::neighbor::Lookup;
use crate::route::Pending;
use crate::stats::{DropReason, WorkerStats};
use crate::wire::{arp, ethernet, BROADCAST};
use std::net::Ipv4Addr;

/// How often worker 0 checks that every gateway is resolved.
const GATEWAY_CHECK_NS: u64 = 100_000_000;
/// While packets wait for a neighbour, how often the worker looks whether it got
/// resolved: the ARP reply may land on another worker's queue.
const WAITING_POLL_NS: u64 = 5_000_000;

/// The resolution state of one worker.
#[derive(Debug)]
pub struct Resolve {
    pending: Pending,
    /// Whether this worker asks for the gateways (worker 0 does).
    checks_gateways: bool,
    next_gateway_check: u64,
    /// When `begin_batch` last ran.
    last_run: u64,
    /// The last neighbour looked up on each of the first [`MEMO_PORTS`] ports in this
    /// batch, and what was found: the map and the time stay the same for a whole batch,
    /// so the answer does too, and most of a batch goes to one next hop per port.
    memo: [Option<(Ipv4Addr, Lookup)>; MEMO_PORTS],
}

/// Ports whose last lookup a batch keeps.
const MEMO_PORTS: usize = 8;

impl Resolve {
    /// The resolution state of worker `lane`.
    pub fn new(lane: Lane) -> Resolve {
        Resolve {
            pending: Pending::new(),
            checks_gateways: lane.0 == 0,
            next_gateway_check: 0,
            last_run: 0,
            memo: [None; MEMO_PORTS],
        }
    }

    /// Forgets the batch's lookups: call when the batch's neighbour map or time changes.
    pub fn begin_batch(&mut self) {
        self.memo = [None; MEMO_PORTS];
    }

    /// `next_hop` on `port` in the batch's neighbour map at the batch's time.
    #[inline]
    fn neighbor(&mut self, ctx: &Ctx, port: PortId, next_hop: Ipv4Addr) -> Lookup {
        if let Some(Some((ip, found))) = self.memo.get(port) {
            if *ip == next_hop {
                return *found;
            }
        }
        let found = ctx.neigh.lookup(port, next_hop, ctx.now);
        if let Some(m) = self.memo.get_mut(port) {
            *m = Some((next_hop, found));
        }
        found
    }

    /// Sends packets whose neighbour got resolved, drops those that waited too
    /// long, and sends the ARP requests that are due.
    pub fn on_timeout(&mut self, ctx: &Ctx, out: &mut Out, stats: &WorkerStats) {
        self.last_run = ctx.now;
        if self.checks_gateways && ctx.now >= self.next_gateway_check {
            self.next_gateway_check = ctx.now + GATEWAY_CHECK_NS;
            self.resolve_gateways(ctx, out);
        }
        if self.pending.is_empty() {
            return;
        }
        let r = self.pending.release(&ctx.neigh, ctx.now, |port, f| {
            out.send_copy(port, f.to_vec());
        });
        if let Some(c) = stats.drops.get(DropReason::NeighborUnresolved as usize) {
            c.add(r.expired);
        }
        for (port, ip) in self.pending.retry_due(ctx.now) {
            arp_request(ctx, out, port, ip);
        }
    }

    /// When `on_timeout` has something to do next.
    pub fn next_deadline(&self) -> Option<u64> {
        let gateways = self.checks_gateways.then_some(self.next_gateway_check);
        let waiting = (!self.pending.is_empty()).then(|| self.last_run + WAITING_POLL_NS);
        gateways.into_iter().chain(waiting).min()
    }

    /// Asks for the MAC of every link's next hop and every route's gateway that is
    /// unknown or due for a refresh, so the first packets to them need not wait.
    fn resolve_gateways(&mut self, ctx: &Ctx, out: &mut Out) {
        let links = ctx.snap.peers.iter().flat_map(|p| {
            p.links.iter().filter_map(|l| {
                let hop = l.gateway.or(l.destination().map(|d| *d.ip()))?;
                Some((l.port, hop))
            })
        });
        let hops: Vec<(PortId, Ipv4Addr)> = links.chain(ctx.snap.routes.gateways()).collect();
        for (port, ip) in hops {
            let due = !matches!(ctx.neigh.lookup(port, ip, ctx.now), Lookup::Fresh(_));
            if due && self.pending.request_due(port, ip, ctx.now) {
                arp_request(ctx, out, port, ip);
            }
        }
    }
}

/// Sends the IPv4 frame in `frame` (Ethernet header space at the front) out of
/// `port` to neighbour `next_hop`: fills the MAC if known, else queues a copy
/// and asks for it.
#[inline]
pub(super) fn deliver(
    ctx: &Ctx,
    resolve: &mut Resolve,
    out: &mut Out,
    stats: &WorkerStats,
    frame: &mut Frame<'_>,
    port: PortId,
    next_hop: Ipv4Addr,
) -> Next {
    let Some(p) = ctx.snap.ports.get(port) else {
        return Next::Drop(DropReason::NoRoute);
    };
    let found = resolve.neighbor(ctx, port, next_hop);
    let pending = &mut resolve.pending;
    let mac = match found {
        Lookup::Fresh(mac) => Some(mac),
        Lookup::Stale(mac) => {
            if pending.request_due(port, next_hop, ctx.now) {
                arp_request(ctx, out, port, next_hop);
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
        stats.forwarded.add(1);
        return Next::Tx(port);
    }
    if !pending.push(port, next_hop, frame.data(), ctx.now) {
        return Next::Drop(DropReason::NeighborQueueFull);
    }
    if pending.request_due(port, next_hop, ctx.now) {
        arp_request(ctx, out, port, next_hop);
    }
    Next::Consumed
}

/// Queues a broadcast ARP request for `ip` on `port`.
fn arp_request(ctx: &Ctx, out: &mut Out, port: PortId, ip: Ipv4Addr) {
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
            // On a shared port the host answers ARP for the address: braid asks as a probe
            // would (RFC 5227), and the answer, to 0.0.0.0, is told from the host's.
            sender_ip: if p.shared {
                Ipv4Addr::UNSPECIFIED
            } else {
                p.addr
            },
            target_mac: [0; 6],
            target_ip: ip,
        }
        .emit(body);
    }
    out.send_copy(port, f);
}
