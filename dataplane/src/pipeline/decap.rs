//! Out of the bond: authenticate a tunnel datagram, check it against replay and
//! the peer's allowed prefixes, and leave the inner packet to be routed.

use super::meta::{IpFacts, Meta};
use super::{Ctx, Next};
use crate::frame::{Frame, Verdict};
use crate::stats::{DropReason, WorkerStats};
use crate::tunnel::{Header, MsgType, Probe, TunnelError, HEADER_LEN, TAG_LEN};
use crate::wire::{ethernet, ipv4, udp};

/// Opens the tunnel datagram in `frame` (trimmed to the outer packet). The inner
/// packet takes the outer one's place behind the outer Ethernet header, so errors
/// about it go back to the neighbour the datagram came from; then `Route`.
pub(super) fn open(ctx: &Ctx, stats: &WorkerStats, meta: &mut Meta, frame: &mut Frame<'_>) -> Next {
    let start = ethernet::HEADER_LEN + meta.ip.header_len + udp::HEADER_LEN;
    let Some(msg) = frame.data_mut().get_mut(start..) else {
        return Next::Drop(DropReason::Truncated);
    };
    let header = match Header::parse(msg) {
        Ok(h) => h,
        Err(TunnelError::Truncated) => return Next::Drop(DropReason::Truncated),
        Err(_) => return Next::Drop(DropReason::BadTunnelHeader),
    };
    let Some(peer) = ctx
        .snap
        .peer_by_id(header.sender)
        .and_then(|i| ctx.snap.peer(i))
    else {
        return Next::Drop(DropReason::UnknownSender);
    };
    let Some(link) = peer.links.get(usize::from(header.link)) else {
        return Next::Drop(DropReason::UnknownLink);
    };
    let Some(window) = peer.replay.get(usize::from(header.lane)) else {
        return Next::Drop(DropReason::BadTunnelHeader);
    };
    // Cheap refusal of replays before paying for the AEAD; the window is only
    // moved once the tag has verified.
    if !window.lock().is_ok_and(|w| w.check(header.seq)) {
        return Next::Drop(DropReason::Replayed);
    }
    match peer.sealer.open(msg) {
        Ok(_) => {}
        Err(TunnelError::Truncated) => return Next::Drop(DropReason::Truncated),
        Err(_) => return Next::Drop(DropReason::BadTag),
    }
    if !window.lock().is_ok_and(|mut w| w.update(header.seq)) {
        return Next::Drop(DropReason::Replayed);
    }
    let plain = msg
        .get(HEADER_LEN..msg.len().saturating_sub(TAG_LEN))
        .unwrap_or(&[]);
    match header.msg_type {
        MsgType::Data => {}
        MsgType::Probe | MsgType::ProbeReply => {
            // Probes are answered by the link-health stage (next step); the
            // authenticated probe is accepted and counted here.
            if Probe::parse(plain).is_err() {
                return Next::Drop(DropReason::Malformed);
            }
            stats.local.add(1);
            return Next::Done(Verdict::Drop);
        }
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
    let mut eth = [0u8; ethernet::HEADER_LEN];
    if let Some(h) = frame.data().first_chunk::<{ ethernet::HEADER_LEN }>() {
        eth = *h;
    }
    if !frame.pull_front(start + HEADER_LEN - ethernet::HEADER_LEN)
        || !frame.set_len(ethernet::HEADER_LEN + inner.total_len)
    {
        return Next::Drop(DropReason::Truncated);
    }
    if let Some(h) = frame
        .data_mut()
        .first_chunk_mut::<{ ethernet::HEADER_LEN }>()
    {
        *h = eth;
    }
    meta.ip = inner;
    Next::Route
}
