//! Into the bond: pick a link, wrap the inner IPv4 packet in outer Ethernet,
//! IPv4, UDP and the braid header, seal it, and send it to the link's next hop.

use super::{deliver, discard, forward::too_big, Ctx, State};
use crate::bond::flow_hash;
use crate::frame::Frame;
use crate::io::{PortId, Verdict};
use crate::stats::DropReason;
use crate::tunnel::{Header, MsgType, HEADER_LEN, TAG_LEN};
use crate::wire::{ethernet, ipv4, l4, Mac};

/// Outer headers in front of the inner IPv4 packet.
pub(super) const OUTER_LEN: usize = ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN + 8 + HEADER_LEN;
/// Start of the outer UDP header in the frame.
const UDP_AT: usize = ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN;

/// Sends the IPv4 packet in `frame` (Ethernet header in front) through the bond
/// of peer `peer`. The packet was received on `in_port` from `from_mac`.
pub(super) fn tunnel(
    ctx: &Ctx,
    st: &mut State,
    in_port: PortId,
    from_mac: Mac,
    frame: &mut Frame<'_>,
    peer: usize,
) -> Verdict {
    let Some(p) = ctx.snap.peers.get(peer) else {
        return discard(st, DropReason::NoRoute);
    };
    let inner_len = frame.len() - ethernet::HEADER_LEN;
    if inner_len > usize::from(p.inner_mtu) {
        let df = frame
            .data()
            .get(ethernet::HEADER_LEN + 6)
            .is_some_and(|f| f & 0x40 != 0);
        return too_big(ctx, st, in_port, from_mac, frame, df, p.inner_mtu);
    }
    let Some(inner) = frame.data_mut().get_mut(ethernet::HEADER_LEN..) else {
        return discard(st, DropReason::Truncated);
    };
    ipv4::decrement_ttl(inner);
    l4::clamp_mss(inner, p.inner_mtu.saturating_sub(40));
    let hash = flow_hash(inner);
    let Some(sched) = st.sched.get_mut(peer) else {
        return discard(st, DropReason::NoLink);
    };
    let Some(link) = sched.pick(hash, inner_len).and_then(|i| p.links.get(i)) else {
        return discard(st, DropReason::NoLink);
    };
    let Some(out) = ctx.snap.ports.get(link.port) else {
        return discard(st, DropReason::NoLink);
    };
    let Some(seq) = st.seq.get_mut(peer) else {
        return discard(st, DropReason::NoLink);
    };
    let header = Header {
        msg_type: MsgType::Data,
        link: link.id,
        lane: st.lane,
        sender: ctx.snap.id,
        seq: *seq,
    };
    *seq += 1;
    if !frame.push_front(OUTER_LEN - ethernet::HEADER_LEN) || !frame.set_len(frame.len() + TAG_LEN)
    {
        return discard(st, DropReason::TooBig);
    }
    let udp_len = frame.len() - UDP_AT;
    let data = frame.data_mut();
    let Some((outer_ip, rest)) = data
        .get_mut(ethernet::HEADER_LEN..)
        .and_then(|d| d.split_first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>())
    else {
        return discard(st, DropReason::TooBig);
    };
    ipv4::Repr {
        src: out.addr,
        dst: *link.remote.ip(),
        protocol: ipv4::PROTO_UDP,
        ttl: 64,
        ident: 0,
        dont_fragment: true,
        payload_len: udp_len as u16,
    }
    .emit(outer_ip);
    let Some((udp, msg)) = rest.split_first_chunk_mut::<8>() else {
        return discard(st, DropReason::TooBig);
    };
    // Source port from the inner flow hash so receivers' RSS spreads flows; the
    // checksum stays 0 (allowed for UDP over IPv4): the AEAD tag covers the message.
    let sport = 0xc000 | (hash as u16 & 0x3fff);
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&link.remote.port().to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    let Some(hdr) = msg.first_chunk_mut::<HEADER_LEN>() else {
        return discard(st, DropReason::TooBig);
    };
    header.emit(hdr);
    if p.sealer.seal(msg).is_err() {
        return discard(st, DropReason::TooBig);
    }
    if let Some(c) = st.stats.links.get(link.slot) {
        c.tx_packets.add(1);
        c.tx_bytes.add(inner_len as u64);
    }
    let (port, next_hop) = (link.port, link.gateway.unwrap_or(*link.remote.ip()));
    deliver(ctx, st, port, next_hop, frame)
}
