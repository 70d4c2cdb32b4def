//! Link probes through the stages: worker 0 sends each link's probes when they are
//! due ([`Prober`]); any worker answers the peer's probes at once (`Answer`) and
//! records the answers to ours (`Heard`). What they measure and the link states
//! live in `crate::health`; the messages are in docs/PROTOCOL.md.

use super::encap::{own_message_to, wrap, Addrs, OUTER_LEN};
use super::keys::Keys;
use super::meta::Meta;
use super::{Ctx, Next};
use crate::frame::Frame;
use crate::health::{Board, RX_CHECK_NS};
use crate::ids::{Lane, PeerIdx};
use crate::stats::{DropReason, WorkerStats};
use crate::tunnel::{Header, MsgType, Probe, TAG_LEN};
use crate::wire::ethernet;
use braid_control::config::BondMode;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Bytes of a probe or answer on the wire.
pub(super) const PROBE_FRAME: usize = ethernet::HEADER_LEN + OUTER_LEN + Probe::LEN + TAG_LEN;

/// A probe to send now.
#[derive(Debug, Clone, Copy)]
pub(super) struct Due {
    pub peer: PeerIdx,
    pub link: usize,
    pub probe: Probe,
}

/// Worker 0's probing: when it next has to look at the links.
#[derive(Debug)]
pub struct Prober {
    on: bool,
    due: u64,
    /// When the links' traffic is next looked at (packet mode).
    rx_due: u64,
}

impl Prober {
    /// The prober of worker `lane`: only worker 0 probes.
    pub fn new(lane: Lane) -> Prober {
        Prober {
            on: lane.0 == 0,
            due: 0,
            rx_due: 0,
        }
    }

    /// Looks at every link at the next batch (after a snapshot change).
    pub fn reset(&mut self) {
        self.due = 0;
        self.rx_due = 0;
    }

    /// When [`Prober::on_timeout`] next has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let next = self.due.min(self.rx_due);
        (self.on && next != u64::MAX).then_some(next)
    }

    /// Runs every link's timers (a silent or lossy link goes down here, recorded on
    /// `board`) and returns the probes due now. A peer without a session to send with
    /// is not probed (its links have nothing to carry yet, and stay as they were).
    pub(super) fn on_timeout(&mut self, ctx: &Ctx, keys: &Keys, board: &Board) -> Vec<Due> {
        let mut due = Vec::new();
        if !self.on {
            return due;
        }
        if ctx.now >= self.rx_due {
            self.rx_due = look_at_traffic(ctx, board).unwrap_or(self.due);
        }
        if ctx.now < self.due {
            return due;
        }
        let t = &ctx.snap.health;
        let mut next = u64::MAX;
        for (p, peer) in ctx.snap.peers.iter().enumerate() {
            if keys.sender(PeerIdx(p)).is_none() {
                continue;
            }
            for (link, l) in peer.links.iter().enumerate() {
                let mut m = l.health.lock();
                let change = m.tick(ctx.now, t);
                let probe = m.probe_due(ctx.now, t);
                next = next.min(m.next_deadline(t).unwrap_or(u64::MAX));
                let figures = m.figures();
                drop(m);
                if let Some(c) = change {
                    board.record(&l.health, (&peer.name, &l.name), c, figures);
                }
                if let Some((seq, tx_ns)) = probe {
                    let probe = Probe {
                        seq,
                        tx_ns,
                        rx_bytes: l.health.rx_bytes(),
                        ..Probe::default()
                    };
                    due.push(Due {
                        peer: PeerIdx(p),
                        link,
                        probe,
                    });
                }
            }
        }
        self.due = next;
        self.rx_due = self.rx_due.min(next);
        due
    }
}

/// Looks at what each link received since the last look, and takes down a link that fell
/// silent under load while the peer's other links received (packet mode only: in flow mode
/// a link goes quiet whenever its flows end). When the next look is due: in
/// [`RX_CHECK_NS`] while traffic flows, else None (at the next probe).
fn look_at_traffic(ctx: &Ctx, board: &Board) -> Option<u64> {
    let t = &ctx.snap.health;
    if !t.enabled || ctx.snap.mode != BondMode::Packet {
        return None;
    }
    let mut flowing = false;
    for peer in &ctx.snap.peers {
        // First every link's look, then the verdicts, which need the others' looks.
        let mut receiving = 0;
        for l in &peer.links {
            let mut m = l.health.lock();
            flowing |= m.look_at_rx(l.health.last_rx());
            receiving += usize::from(m.receiving());
        }
        for l in &peer.links {
            let mut m = l.health.lock();
            let others = receiving > usize::from(m.receiving());
            let change = m.check_silence(ctx.now, others, t);
            let figures = m.figures();
            drop(m);
            if let Some(c) = change {
                board.record(&l.health, (&peer.name, &l.name), c, figures);
            }
        }
    }
    flowing.then(|| ctx.now.saturating_add(RX_CHECK_NS))
}

/// Seals the probe `due` into `frame` (a buffer of [`PROBE_FRAME`] bytes or more),
/// from the link's own address to the peer's tunnel endpoint.
pub(super) fn emit(ctx: &Ctx, keys: &Keys, frame: &mut Frame<'_>, due: &Due) -> Next {
    let (l, addrs) = match own_message_to(ctx, due.peer, due.link) {
        Ok(found) => found,
        Err(why) => return Next::Drop(why),
    };
    let to = Reply {
        msg_type: MsgType::Probe,
        link: l.id,
        src: addrs.src,
        remote: addrs.remote,
    };
    seal(ctx, keys, frame, due.peer, &to, &due.probe)
}

/// A probe from the peer (its payload in front, behind the Ethernet header): the
/// answer goes back at once, in place, to the address and port it came from. Out of line
/// (rare; see `local::arp`).
#[inline(never)]
pub(super) fn answer(
    ctx: &Ctx,
    keys: &Keys,
    stats: &WorkerStats,
    meta: &Meta,
    frame: &mut Frame<'_>,
    (peer, link): (PeerIdx, u8),
) -> Next {
    let Some(l) = ctx
        .snap
        .peer(peer)
        .and_then(|p| p.links.get(usize::from(link)))
    else {
        return Next::Drop(DropReason::UnknownLink);
    };
    let Some(probe) = payload(frame) else {
        return Next::Drop(DropReason::Malformed);
    };
    l.health
        .lock()
        .on_peer_clock(ctx.now, probe.tx_ns, probe.rx_bytes);
    let reply = Probe {
        seq: probe.seq,
        tx_ns: ctx.now,
        echo_tx_ns: probe.tx_ns,
        echo_rx_ns: ctx.now,
        rx_bytes: l.health.rx_bytes(),
    };
    let port = meta.ip.l4.src_port().unwrap_or(ctx.snap.tunnel_port);
    let to = Reply {
        msg_type: MsgType::ProbeReply,
        link,
        src: meta.ip.dst,
        remote: SocketAddrV4::new(meta.ip.src, port),
    };
    stats.local.add(1);
    seal(ctx, keys, frame, peer, &to, &reply)
}

/// An answer to one of our probes (its payload in front): the link's monitor takes
/// it, and a link that comes back up is recorded on `board`. Out of line (rare; see
/// `local::arp`).
#[inline(never)]
pub(super) fn heard(
    ctx: &Ctx,
    board: &Board,
    stats: &WorkerStats,
    frame: &Frame<'_>,
    (peer, link): (PeerIdx, u8),
) -> Next {
    let Some(p) = ctx.snap.peer(peer) else {
        return Next::Drop(DropReason::UnknownSession);
    };
    let Some(l) = p.links.get(usize::from(link)) else {
        return Next::Drop(DropReason::UnknownLink);
    };
    let Some(r) = payload(frame) else {
        return Next::Drop(DropReason::Malformed);
    };
    let mut m = l.health.lock();
    m.on_peer_clock(ctx.now, r.tx_ns, r.rx_bytes);
    let change = m.on_reply(ctx.now, r.seq, r.echo_tx_ns, r.echo_rx_ns, &ctx.snap.health);
    let figures = m.figures();
    drop(m);
    if let Some(c) = change {
        board.record(&l.health, (&p.name, &l.name), c, figures);
    }
    stats.local.add(1);
    Next::Consumed
}

/// Where a probe message goes.
struct Reply {
    msg_type: MsgType,
    link: u8,
    src: Ipv4Addr,
    remote: SocketAddrV4,
}

/// The probe payload behind the Ethernet header.
fn payload(frame: &Frame<'_>) -> Option<Probe> {
    Probe::parse(frame.data().get(ethernet::HEADER_LEN..)?).ok()
}

/// Writes `probe` behind the Ethernet header, wraps and seals it under `peer`'s session,
/// and leaves it for delivery to the next hop towards `to.remote`.
fn seal(
    ctx: &Ctx,
    keys: &Keys,
    frame: &mut Frame<'_>,
    peer: PeerIdx,
    to: &Reply,
    probe: &Probe,
) -> Next {
    let Some(p) = ctx.snap.peer(peer) else {
        return Next::Drop(DropReason::NoRoute);
    };
    let Some(l) = p.links.get(usize::from(to.link)) else {
        return Next::Drop(DropReason::UnknownLink);
    };
    let Some(live) = keys.sender(peer) else {
        return Next::Drop(DropReason::NoSession);
    };
    let Some(counter) = live.next_counter(keys.lane()) else {
        return Next::Drop(DropReason::NoSession);
    };
    if !frame.set_len(ethernet::HEADER_LEN + Probe::LEN) {
        return Next::Drop(DropReason::Truncated);
    }
    let Some(body) = frame
        .data_mut()
        .get_mut(ethernet::HEADER_LEN..)
        .and_then(|b| b.first_chunk_mut::<{ Probe::LEN }>())
    else {
        return Next::Drop(DropReason::Truncated);
    };
    probe.emit(body);
    let addrs = Addrs {
        src: to.src,
        remote: to.remote,
        src_port: ctx.snap.tunnel_port,
    };
    let header = Header {
        msg_type: to.msg_type,
        link: to.link,
        lane: keys.lane().0,
        receiver: live.remote_index,
        counter,
    };
    if !wrap(frame, &addrs, &header, (&live.send, 0)) {
        return Next::Drop(DropReason::TooBig);
    }
    Next::Deliver(l.port, l.gateway.unwrap_or(*to.remote.ip()))
}
