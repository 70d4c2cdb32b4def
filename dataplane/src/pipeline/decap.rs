//! Out of the bond: authenticate a tunnel datagram, check it against replay and
//! the peer's allowed prefixes, and leave the inner packet to be routed.

use super::meta::{IpFacts, Meta};
use super::{Ctx, Next};
use crate::frame::Frame;
use crate::ids::PeerIdx;
use crate::snapshot::{Link, Peer};
use crate::stats::{DropReason, WorkerStats};
use crate::tunnel::{Header, MsgType, Probe, TunnelError, HEADER_LEN, TAG_LEN};
use crate::wire::{ethernet, ipv4, udp};

/// Opens the tunnel datagram in `frame` (trimmed to the outer packet). The inner
/// packet takes the outer one's place behind the outer Ethernet header, so errors
/// about it go back to the neighbour the datagram came from; then `Route`.
#[inline]
pub(super) fn open(ctx: &Ctx, stats: &WorkerStats, meta: &mut Meta, frame: &mut Frame<'_>) -> Next {
    let start = ethernet::HEADER_LEN + meta.ip.header_len + udp::HEADER_LEN;
    let Some(msg) = frame.data_mut().get_mut(start..) else {
        return Next::Drop(DropReason::Truncated);
    };
    let (header, idx, peer, link) = match authenticate(ctx, msg) {
        Ok(found) => found,
        Err(why) => return Next::Drop(why),
    };
    let plain = msg
        .get(HEADER_LEN..msg.len().saturating_sub(TAG_LEN))
        .unwrap_or(&[]);
    let probe = match header.msg_type {
        MsgType::Data => None,
        MsgType::Probe => Some(Next::Answer(idx, header.link)),
        MsgType::ProbeReply => Some(Next::Heard(idx, header.link)),
    };
    if let Some(next) = probe {
        // The probe's payload goes in front, behind the Ethernet header.
        if Probe::parse(plain).is_err() {
            return Next::Drop(DropReason::Malformed);
        }
        if !unwrap(frame, start + HEADER_LEN, Probe::LEN) {
            return Next::Drop(DropReason::Truncated);
        }
        return next;
    }
    let Ok(ip) = ipv4::Ipv4::parse(plain) else {
        return Next::Drop(DropReason::MalformedInner);
    };
    if !ip.checksum_ok() {
        return Next::Drop(DropReason::MalformedInner);
    }
    if !peer.allowed.iter().any(|n| n.contains(&ip.src())) {
        return Next::Drop(DropReason::Spoofed);
    }
    let inner = IpFacts::of(&ip);
    if let Some(c) = stats.link(link.slot) {
        c.rx_packets.add(1);
        c.rx_bytes.add(inner.total_len as u64);
    }
    if !unwrap(frame, start + HEADER_LEN, inner.total_len) {
        return Next::Drop(DropReason::Truncated);
    }
    meta.ip = inner;
    Next::Route
}

/// Finds the sender and link of the message in `msg`, opens it in place, and
/// takes it through the replay window, which moves only for a message whose tag
/// verified. The window is looked at once, after the AEAD: a replayed message costs
/// the AEAD as a forged one does, and the window's lock is taken once a packet.
#[inline]
fn authenticate<'s>(
    ctx: &'s Ctx,
    msg: &mut [u8],
) -> Result<(Header, PeerIdx, &'s Peer, &'s Link), DropReason> {
    let header = match Header::parse(msg) {
        Ok(h) => h,
        Err(TunnelError::Truncated) => return Err(DropReason::Truncated),
        Err(_) => return Err(DropReason::BadTunnelHeader),
    };
    let idx = ctx
        .snap
        .peer_by_id(header.sender)
        .ok_or(DropReason::UnknownSender)?;
    let peer = ctx.snap.peer(idx).ok_or(DropReason::UnknownSender)?;
    let link = peer
        .links
        .get(usize::from(header.link))
        .ok_or(DropReason::UnknownLink)?;
    let window = peer
        .replay
        .get(usize::from(header.lane))
        .ok_or(DropReason::BadTunnelHeader)?;
    match peer.sealer.open(msg) {
        Ok(_) => {}
        Err(TunnelError::Truncated) => return Err(DropReason::Truncated),
        Err(_) => return Err(DropReason::BadTag),
    }
    if !window.lock().is_ok_and(|mut w| w.update(header.seq)) {
        return Err(DropReason::Replayed);
    }
    Ok((header, idx, peer, link))
}

/// Moves the inner packet (`inner_len` bytes at `at`) up behind the frame's
/// Ethernet header; false when the frame is shorter.
#[inline]
fn unwrap(frame: &mut Frame<'_>, at: usize, inner_len: usize) -> bool {
    let mut eth = [0u8; ethernet::HEADER_LEN];
    if let Some(h) = frame.data().first_chunk::<{ ethernet::HEADER_LEN }>() {
        eth = *h;
    }
    if !frame.pull_front(at - ethernet::HEADER_LEN)
        || !frame.set_len(ethernet::HEADER_LEN + inner_len)
    {
        return false;
    }
    if let Some(h) = frame
        .data_mut()
        .first_chunk_mut::<{ ethernet::HEADER_LEN }>()
    {
        *h = eth;
    }
    true
}
