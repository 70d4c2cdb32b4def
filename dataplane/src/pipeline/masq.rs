//! Masquerade: source translation of traffic leaving by a masquerading port, the
//! reverse for traffic to its outside addresses, and the handoff of a packet to
//! the worker that owns its session (VPP NAT44-ED's rule: the owner of the inside
//! endpoint translates outbound packets, the owner of the outside port inbound
//! ones, so a session's two directions meet on one worker and no table is shared).

use super::{deliver, discard, forward, icmp_error, local, Ctx, IcmpError, State};
use crate::frame::Frame;
use crate::io::{PortId, Verdict};
use crate::nat::{self, NatError};
use crate::stats::DropReason;
use crate::wire::{ethernet, icmp, ipv4};
use braid_control::config::{Hairpin, NatRefusal, OtherProtocols};
use std::net::Ipv4Addr;

/// Where a handed-off packet resumes on its owner.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Resume {
    /// Translate outbound, then send out of `port` to `next_hop`.
    Out {
        in_port: PortId,
        port: PortId,
        next_hop: Ipv4Addr,
        masq: usize,
    },
    /// Translate inbound, then route.
    In { in_port: PortId, masq: usize },
}

/// A packet travelling to the worker that owns its session.
#[derive(Debug)]
pub struct Handoff {
    pub(crate) resume: Resume,
    /// The frame in a buffer as large as the one it came in.
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
}

/// Frames a worker's handoff queue holds.
pub const HANDOFF_QUEUE: usize = 4096;

/// Outbound: the forwarded packet in `frame` (TTL done) leaves by masquerading
/// port `port` towards `next_hop`.
pub(super) fn outbound(
    ctx: &Ctx,
    st: &mut State,
    in_port: PortId,
    frame: &mut Frame<'_>,
    port: PortId,
    next_hop: Ipv4Addr,
    masq: usize,
) -> Verdict {
    let Some(m) = ctx.snap.masquerades.get(masq) else {
        return discard(st, DropReason::NoRoute);
    };
    let packet = frame.data().get(ethernet::HEADER_LEN..).unwrap_or(&[]);
    let dst = ipv4::Ipv4::parse(packet).map(|ip| ip.dst());
    if dst.is_ok_and(|d| m.nat.pool.contains(&d)) && m.hairpin == Hairpin::Drop {
        return discard(st, DropReason::NatHairpin);
    }
    let ep = match nat::outbound_endpoint(packet) {
        Ok(ep) => ep,
        Err(e) => return refuse(ctx, st, in_port, frame, masq, e, (port, next_hop)),
    };
    let owner = nat::owner_of_inside(ep.proto, ep.addr, ep.port, m.nat.ports, ctx.snap.workers);
    let resume = Resume::Out {
        in_port,
        port,
        next_hop,
        masq,
    };
    if owner != usize::from(st.lane) {
        return hand_off(st, owner, resume, frame);
    }
    translate_out(ctx, st, frame, resume)
}

/// Inbound: a packet to outside address of masquerade `masq`, received on `in_port`.
pub(super) fn inbound(
    ctx: &Ctx,
    st: &mut State,
    in_port: PortId,
    frame: &mut Frame<'_>,
    masq: usize,
) -> Verdict {
    let Some(m) = ctx.snap.masquerades.get(masq) else {
        return discard(st, DropReason::NoRoute);
    };
    let packet = frame.data().get(ethernet::HEADER_LEN..).unwrap_or(&[]);
    let ep = match nat::inbound_endpoint(packet) {
        Ok(ep) => ep,
        Err(e) => return not_translated_in(ctx, st, in_port, frame, e),
    };
    let owner = nat::owner_of_port(ep.port, m.nat.ports, ctx.snap.workers);
    let resume = Resume::In { in_port, masq };
    if owner != usize::from(st.lane) {
        return hand_off(st, owner, resume, frame);
    }
    translate_in(ctx, st, frame, resume)
}

/// Continues a handed-off packet on its owner; the frame to send, if any.
pub(super) fn resume(ctx: &Ctx, st: &mut State, h: Handoff) -> Option<(PortId, Vec<u8>)> {
    let Handoff {
        resume,
        mut buf,
        len,
    } = h;
    let mut frame = Frame::new(&mut buf, len);
    let verdict = match resume {
        Resume::Out { .. } => translate_out(ctx, st, &mut frame, resume),
        Resume::In { .. } => translate_in(ctx, st, &mut frame, resume),
    };
    let len = frame.len();
    match verdict {
        Verdict::Tx(port) => {
            buf.truncate(len);
            Some((port, buf))
        }
        Verdict::Drop => None,
    }
}

fn translate_out(ctx: &Ctx, st: &mut State, frame: &mut Frame<'_>, resume: Resume) -> Verdict {
    let Resume::Out {
        in_port,
        port,
        next_hop,
        masq,
    } = resume
    else {
        return Verdict::Drop;
    };
    let Some(table) = st.nat.get_mut(masq).and_then(Option::as_mut) else {
        return discard(st, DropReason::NoRoute);
    };
    let Some(packet) = frame.data_mut().get_mut(ethernet::HEADER_LEN..) else {
        return discard(st, DropReason::Truncated);
    };
    match table.translate_out(packet, ctx.now) {
        Ok(_) => {}
        Err(e) => return refuse(ctx, st, in_port, frame, masq, e, (port, next_hop)),
    }
    let hairpin = ipv4::Ipv4::parse(packet).is_ok_and(|ip| {
        ctx.snap
            .masquerades
            .get(masq)
            .is_some_and(|m| m.nat.pool.contains(&ip.dst()))
    });
    if hairpin {
        // Back in through our own mapping, never out and around.
        return inbound(ctx, st, in_port, frame, masq);
    }
    deliver(ctx, st, port, next_hop, frame)
}

fn translate_in(ctx: &Ctx, st: &mut State, frame: &mut Frame<'_>, resume: Resume) -> Verdict {
    let Resume::In { in_port, masq } = resume else {
        return Verdict::Drop;
    };
    let Some(table) = st.nat.get_mut(masq).and_then(Option::as_mut) else {
        return discard(st, DropReason::NoRoute);
    };
    let Some(packet) = frame.data_mut().get_mut(ethernet::HEADER_LEN..) else {
        return discard(st, DropReason::Truncated);
    };
    match table.translate_in(packet, ctx.now) {
        Ok(_) => forward::forward(ctx, st, in_port, frame),
        Err(e) => not_translated_in(ctx, st, in_port, frame, e),
    }
}

/// An inbound packet without a session: braid's own traffic when it is for the
/// port's own address, else dropped.
fn not_translated_in(
    ctx: &Ctx,
    st: &mut State,
    in_port: PortId,
    frame: &mut Frame<'_>,
    e: NatError,
) -> Verdict {
    let packet = frame.data().get(ethernet::HEADER_LEN..).unwrap_or(&[]);
    if let Ok(ip) = ipv4::Ipv4::parse(packet) {
        if ctx.snap.port_with_addr(ip.dst()).is_some() {
            let (hl, proto) = (ip.header_len(), ip.protocol());
            return local::deliver_local(ctx, st, in_port, frame, hl, proto);
        }
    }
    discard(st, reason(e))
}

/// An outbound packet the table would not translate.
fn refuse(
    ctx: &Ctx,
    st: &mut State,
    in_port: PortId,
    frame: &mut Frame<'_>,
    masq: usize,
    e: NatError,
    (port, next_hop): (PortId, Ipv4Addr),
) -> Verdict {
    let Some(m) = ctx.snap.masquerades.get(masq) else {
        return discard(st, reason(e));
    };
    match e {
        NatError::Unsupported if m.other_protocols == OtherProtocols::Pass => {
            deliver(ctx, st, port, next_hop, frame)
        }
        NatError::TableFull | NatError::HostLimit | NatError::PortsExhausted
            if m.when_full == NatRefusal::Icmp =>
        {
            let from_mac = ethernet::Header::parse(frame.data()).map_or([0; 6], |h| h.src);
            let err = IcmpError {
                icmp_type: icmp::DEST_UNREACHABLE,
                code: icmp::CODE_ADMIN_PROHIBITED,
                rest: 0,
                why: reason(e),
            };
            icmp_error(ctx, st, in_port, from_mac, frame, err)
        }
        _ => discard(st, reason(e)),
    }
}

/// Copies the frame onto the owner's queue.
fn hand_off(st: &mut State, owner: usize, resume: Resume, frame: &Frame<'_>) -> Verdict {
    let Some((queue, waker)) = st.handoff.get(owner) else {
        return discard(st, DropReason::HandoffFull);
    };
    let mut buf = frame.data().to_vec();
    let len = buf.len();
    buf.resize(frame.capacity(), 0);
    if queue.try_send(Handoff { resume, buf, len }).is_err() {
        return discard(st, DropReason::HandoffFull);
    }
    waker.wake();
    st.stats.handed_off.add(1);
    Verdict::Drop
}

/// The drop counter of a NAT refusal.
fn reason(e: NatError) -> DropReason {
    match e {
        NatError::Malformed => DropReason::Malformed,
        NatError::Unsupported => DropReason::NatUnsupported,
        NatError::Fragment => DropReason::NatFragment,
        NatError::NoSession => DropReason::NatNoSession,
        NatError::TableFull => DropReason::NatTableFull,
        NatError::HostLimit => DropReason::NatHostLimit,
        NatError::PortsExhausted => DropReason::NatPortsExhausted,
    }
}
