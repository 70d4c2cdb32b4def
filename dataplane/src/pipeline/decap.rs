//! Out of the bond: authenticate a tunnel datagram, check it against replay and
//! the peer's allowed prefixes, and route the inner packet.

use super::{discard, forward, Ctx, State};
use crate::frame::Frame;
use crate::io::{PortId, Verdict};
use crate::stats::DropReason;
use crate::tunnel::{Header, MsgType, Probe, TunnelError, HEADER_LEN, TAG_LEN};
use crate::wire::{ethernet, ipv4};

/// Handles a datagram to the tunnel port; `header_len` is the outer IPv4
/// header's length and the frame is trimmed to the outer packet.
pub(super) fn tunnel(
    ctx: &Ctx,
    st: &mut State,
    port: PortId,
    frame: &mut Frame<'_>,
    header_len: usize,
) -> Verdict {
    let start = ethernet::HEADER_LEN + header_len + 8;
    let Some(msg) = frame.data_mut().get_mut(start..) else {
        return discard(st, DropReason::Truncated);
    };
    let header = match Header::parse(msg) {
        Ok(h) => h,
        Err(TunnelError::Truncated) => return discard(st, DropReason::Truncated),
        Err(_) => return discard(st, DropReason::BadTunnelHeader),
    };
    let Some(peer) = ctx
        .snap
        .peer_by_id(header.sender)
        .and_then(|i| ctx.snap.peers.get(i))
    else {
        return discard(st, DropReason::UnknownSender);
    };
    let Some(link) = peer.links.get(usize::from(header.link)) else {
        return discard(st, DropReason::UnknownLink);
    };
    let Some(window) = peer.replay.get(usize::from(header.lane)) else {
        return discard(st, DropReason::BadTunnelHeader);
    };
    // Cheap refusal of replays before paying for the AEAD; the window is only
    // moved once the tag has verified.
    if !window.lock().is_ok_and(|w| w.check(header.seq)) {
        return discard(st, DropReason::Replayed);
    }
    match peer.sealer.open(msg) {
        Ok(_) => {}
        Err(TunnelError::Truncated) => return discard(st, DropReason::Truncated),
        Err(_) => return discard(st, DropReason::BadTag),
    }
    if !window.lock().is_ok_and(|mut w| w.update(header.seq)) {
        return discard(st, DropReason::Replayed);
    }
    let plain = msg.len() - HEADER_LEN - TAG_LEN;
    match header.msg_type {
        MsgType::Data => {}
        MsgType::Probe | MsgType::ProbeReply => {
            // Probes are answered by the link-health stage (next step); the
            // authenticated probe is accepted and counted here.
            let ok = Probe::parse(msg.get(HEADER_LEN..HEADER_LEN + plain).unwrap_or(&[])).is_ok();
            st.stats.local.add(1);
            return if ok {
                Verdict::Drop
            } else {
                discard(st, DropReason::Malformed)
            };
        }
    }
    let inner = msg.get(HEADER_LEN..HEADER_LEN + plain).unwrap_or(&[]);
    let Ok(ip) = ipv4::Ipv4::parse(inner) else {
        return discard(st, DropReason::MalformedInner);
    };
    if !ip.checksum_ok() {
        return discard(st, DropReason::MalformedInner);
    }
    let src = ip.src();
    if !peer.allowed.iter().any(|n| n.contains(&src)) {
        return discard(st, DropReason::Spoofed);
    }
    let inner_len = ip.total_len();
    if let Some(c) = st.stats.links.get(link.slot) {
        c.rx_packets.add(1);
        c.rx_bytes.add(inner_len as u64);
    }
    // Keep the outer Ethernet header in front of the inner packet: errors about
    // the inner packet go back to the neighbour the datagram came from.
    let mut eth = [0u8; ethernet::HEADER_LEN];
    eth.copy_from_slice(frame.data().get(..ethernet::HEADER_LEN).unwrap_or(&[0; 14]));
    if !frame.pull_front(start + HEADER_LEN - ethernet::HEADER_LEN)
        || !frame.set_len(ethernet::HEADER_LEN + inner_len)
    {
        return discard(st, DropReason::Truncated);
    }
    if let Some(h) = frame
        .data_mut()
        .first_chunk_mut::<{ ethernet::HEADER_LEN }>()
    {
        *h = eth;
    }
    forward::forward(ctx, st, port, frame)
}
