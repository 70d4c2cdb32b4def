//! Into the bond: pick a link, wrap the inner IPv4 packet in outer IPv4, UDP and
//! the braid header, seal it, and leave it for delivery to the link's next hop.

use super::forward::too_big;
use super::meta::Meta;
use super::sequences::{Schedulers, Sequences};
use super::{Ctx, Next};
use crate::bond::flow_hash;
use crate::frame::Frame;
use crate::ids::PeerIdx;
use crate::stats::{DropReason, WorkerStats};
use crate::tunnel::{Header, MsgType, Sealer, HEADER_LEN, TAG_LEN};
use crate::wire::{ethernet, ipv4, l4, udp};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Bytes written in front of the inner packet, behind the Ethernet header.
pub(super) const OUTER_LEN: usize = ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + HEADER_LEN;

/// Outer UDP source ports are `FLOW_PORT_BASE | (flow hash & FLOW_PORT_MASK)`, so
/// receivers' RSS spreads tunnel flows over queues.
const FLOW_PORT_BASE: u16 = 0xc000;
const FLOW_PORT_MASK: u16 = 0x3fff;

/// Sends the IPv4 packet in `frame` (Ethernet header in front) through the bond
/// of `peer`: TTL and MSS clamp of the inner packet, a link by the scheduler, the
/// outer headers, the seal.
#[inline]
pub(super) fn seal(
    ctx: &Ctx,
    seqs: &mut Sequences,
    scheds: &mut Schedulers,
    stats: &WorkerStats,
    meta: &mut Meta,
    frame: &mut Frame<'_>,
    peer: PeerIdx,
) -> Next {
    let Some(p) = ctx.snap.peer(peer) else {
        return Next::Drop(DropReason::NoRoute);
    };
    let inner_len = meta.ip.total_len;
    if inner_len > usize::from(p.inner_mtu) {
        return too_big(meta, p.inner_mtu);
    }
    let Some(inner) = frame.data_mut().get_mut(ethernet::HEADER_LEN..) else {
        return Next::Drop(DropReason::Truncated);
    };
    ipv4::decrement_ttl(inner);
    meta.ip.ttl = meta.ip.ttl.saturating_sub(1);
    l4::clamp_mss(inner, l4::mss_for_mtu(p.inner_mtu));
    let hash = flow_hash(inner);
    let Some(link) = scheds
        .pick(peer, hash, inner_len)
        .and_then(|i| p.links.get(i))
    else {
        return Next::Drop(DropReason::NoLink);
    };
    let Some(out) = ctx.snap.ports.get(link.port) else {
        return Next::Drop(DropReason::NoLink);
    };
    let Some(seq) = seqs.take(peer) else {
        return Next::Drop(DropReason::NoLink);
    };
    let outer = Outer {
        src: out.addr,
        remote: link.remote,
        src_port: FLOW_PORT_BASE | (hash as u16 & FLOW_PORT_MASK),
        header: Header {
            msg_type: MsgType::Data,
            link: link.id,
            lane: seqs.lane().0,
            sender: ctx.snap.id,
            seq,
        },
    };
    if !wrap(frame, &outer, &p.sealer) {
        return Next::Drop(DropReason::TooBig);
    }
    if let Some(c) = stats.link(link.slot) {
        c.tx_packets.add(1);
        c.tx_bytes.add(inner_len as u64);
    }
    Next::Deliver(link.port, link.gateway.unwrap_or(*link.remote.ip()))
}

/// The outer headers of one tunnel datagram.
pub(super) struct Outer {
    pub src: Ipv4Addr,
    pub remote: SocketAddrV4,
    pub src_port: u16,
    pub header: Header,
}

/// Writes outer IPv4, UDP and braid headers in front of the inner packet and seals
/// the message; false when the buffer has no room.
#[inline]
pub(super) fn wrap(frame: &mut Frame<'_>, outer: &Outer, sealer: &Sealer) -> bool {
    if !frame.push_front(OUTER_LEN) || !frame.set_len(frame.len() + TAG_LEN) {
        return false;
    }
    let udp_len = frame.len() - ethernet::HEADER_LEN - ipv4::MIN_HEADER_LEN;
    let Some((outer_ip, rest)) = frame
        .data_mut()
        .get_mut(ethernet::HEADER_LEN..)
        .and_then(|d| d.split_first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>())
    else {
        return false;
    };
    ipv4::Repr {
        src: outer.src,
        dst: *outer.remote.ip(),
        protocol: ipv4::PROTO_UDP,
        ttl: ipv4::DEFAULT_TTL,
        ident: 0,
        dont_fragment: true,
        payload_len: udp_len as u16,
    }
    .emit(outer_ip);
    let Some((udp_header, msg)) = rest.split_first_chunk_mut::<{ udp::HEADER_LEN }>() else {
        return false;
    };
    // The checksum stays 0 (allowed for UDP over IPv4): the AEAD tag covers the message.
    udp::Repr {
        src_port: outer.src_port,
        dst_port: outer.remote.port(),
        payload_len: (udp_len - udp::HEADER_LEN) as u16,
    }
    .emit(udp_header);
    let Some(hdr) = msg.first_chunk_mut::<HEADER_LEN>() else {
        return false;
    };
    outer.header.emit(hdr);
    sealer.seal(msg).is_ok()
}
