//! Into the bond: pick a link, wrap the inner IPv4 packet in outer IPv4, UDP and
//! the braid header, seal it, and leave it for delivery to the link's next hop. A packet
//! of a redundancy rule is also copied to every other link in use.

use super::forward::too_big;
use super::keys::Keys;
use super::meta::Meta;
use super::out::{Out, Packet};
use super::schedulers::Schedulers;
use super::{Ctx, Next};
use crate::bond::redundant::any_matches;
use crate::frame::Frame;
use crate::ids::PeerIdx;
use crate::session::Live;
use crate::stats::{DropReason, WorkerStats};
use crate::tunnel::{
    padded_len, Header, MsgType, SessionKey, HEADER_LEN, PAD_TO, SEQ_LEN, TAG_LEN,
};
use crate::wire::{ethernet, ipv4, l4, udp};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Bytes written in front of a message's plaintext, behind the Ethernet header.
pub(super) const OUTER_LEN: usize = ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + HEADER_LEN;

/// Sends the IPv4 packet in `frame` (Ethernet header in front) through the bond
/// of `peer`: TTL and MSS clamp of the inner packet, a link by the scheduler, the
/// outer headers, the seal under the peer's session.
#[inline]
pub(super) fn seal(
    ctx: &Ctx,
    keys: &Keys,
    (scheds, out): (&mut Schedulers, &mut Out),
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
    let Some(live) = keys.sender(peer) else {
        return Next::Drop(DropReason::NoSession);
    };
    let Some(inner) = frame.data_mut().get_mut(ethernet::HEADER_LEN..) else {
        return Next::Drop(DropReason::Truncated);
    };
    ipv4::decrement_ttl(inner);
    meta.ip.ttl = meta.ip.ttl.saturating_sub(1);
    l4::clamp_mss(inner, l4::mss_for_mtu(p.inner_mtu));
    let Some(link) = scheds
        .pick(peer, inner, inner_len)
        .and_then(|i| p.links.get(i))
    else {
        return Next::Drop(DropReason::NoLink);
    };
    // The plaintext: the bond sequence, the packet, zeros to a whole AES block.
    let plain = SEQ_LEN + inner_len;
    let padding = padded_len(plain, SEQ_LEN + usize::from(p.inner_mtu)) - plain;
    let redundant = is_redundant(ctx, scheds, meta, frame, peer);
    let seq = if redundant {
        scheds.next_seq_always(peer)
    } else {
        scheds.next_seq(peer)
    };
    if redundant {
        // The same packet on every other link in use, each sealed on its own: the
        // receiver keeps the first to arrive.
        let weights = scheds.get(peer).map_or(&[][..], |s| s.weights());
        for (l, _) in p
            .links
            .iter()
            .zip(weights)
            .filter(|&(l, &w)| w > 0 && l.id != link.id)
        {
            let mut copy = Packet::copy(out.pool(), meta, frame);
            let mut f = copy.frame();
            let next = seal_on(
                ctx,
                keys,
                stats,
                &mut f,
                (l, live, seq),
                (inner_len, padding),
            );
            (copy.start, copy.len) = (f.start(), f.len());
            match next {
                Next::Deliver(port, hop) => out.again(Next::Deliver(port, hop), copy),
                _ => out.pool().give(copy.buf),
            }
        }
    }
    seal_on(
        ctx,
        keys,
        stats,
        frame,
        (link, live, seq),
        (inner_len, padding),
    )
}

/// Wraps and seals the packet in `frame` (`inner_len` bytes, `padding` zero bytes to follow
/// it) for `link` under session `live`, behind bond sequence `seq`, and counts it on the
/// link. Inlined in both callers: a call here costs a packet about twenty instructions of
/// moving its arguments.
#[inline(always)]
fn seal_on(
    ctx: &Ctx,
    keys: &Keys,
    stats: &WorkerStats,
    frame: &mut Frame<'_>,
    (link, live, seq): (&crate::snapshot::Link, &Live, u32),
    (inner_len, padding): (usize, usize),
) -> Next {
    let Some(out) = ctx.snap.ports.get(link.port) else {
        return Next::Drop(DropReason::NoLink);
    };
    let Some(remote) = link.destination() else {
        return Next::Drop(DropReason::NoEndpoint);
    };
    let Some(counter) = live.next_counter(keys.lane()) else {
        return Next::Drop(DropReason::NoSession);
    };
    let to = Addrs {
        src: out.addr,
        remote,
        src_port: ctx.snap.tunnel_port_of(keys.lane()),
    };
    let header = Header {
        msg_type: MsgType::Data,
        link: link.id,
        lane: keys.lane().0,
        receiver: live.remote_index,
        counter,
    };
    if !put_seq(frame, seq) || !wrap(frame, &to, &header, (&live.send, padding)) {
        return Next::Drop(DropReason::TooBig);
    }
    if let Some(c) = stats.link(link.slot) {
        c.tx_packets.add(1);
        c.tx_bytes.add(inner_len as u64);
    }
    Next::Deliver(link.port, link.gateway.unwrap_or(*remote.ip()))
}

/// Writes the bond sequence `seq` in front of the packet behind the frame's Ethernet header;
/// false when the buffer has no room.
#[inline(always)]
fn put_seq(frame: &mut Frame<'_>, seq: u32) -> bool {
    if !frame.push_front(SEQ_LEN) {
        return false;
    }
    let Some(at) = frame
        .data_mut()
        .get_mut(ethernet::HEADER_LEN..)
        .and_then(|d| d.first_chunk_mut::<SEQ_LEN>())
    else {
        return false;
    };
    *at = seq.to_be_bytes();
    true
}

/// True for a packet of a redundancy rule while more than one of `peer`'s links is in use.
#[inline(always)]
fn is_redundant(
    ctx: &Ctx,
    scheds: &Schedulers,
    meta: &Meta,
    frame: &Frame<'_>,
    peer: PeerIdx,
) -> bool {
    // Without rules, no call: most bonds have none.
    !ctx.snap.redundant.is_empty() && matches_redundant(ctx, scheds, meta, frame, peer)
}

/// [`is_redundant`] when there are rules: the packet matches one and more than one link
/// is in use.
#[inline(never)]
fn matches_redundant(
    ctx: &Ctx,
    scheds: &Schedulers,
    meta: &Meta,
    frame: &Frame<'_>,
    peer: PeerIdx,
) -> bool {
    let Some(dscp) = frame
        .data()
        .get(ethernet::HEADER_LEN..)
        .and_then(|inner| ipv4::Ipv4::parse(inner).ok())
        .map(|ip| ip.dscp())
    else {
        return false;
    };
    let ip = &meta.ip;
    let ports = ip.l4.src_port().zip(ip.l4.dst_port()).filter(|_| {
        !ip.later_fragment && (ip.protocol == ipv4::PROTO_UDP || ip.protocol == ipv4::PROTO_TCP)
    });
    any_matches(&ctx.snap.redundant, ip.protocol, ports, dscp)
        && scheds
            .get(peer)
            .is_some_and(|s| s.weights().iter().filter(|&&w| w > 0).count() > 1)
}

/// Where one tunnel datagram goes, and from where.
pub(super) struct Addrs {
    pub src: Ipv4Addr,
    pub remote: SocketAddrV4,
    pub src_port: u16,
}

/// Link `link` of `peer` and the addresses of this end's own message on it (worker 0's
/// probes, handshakes and keepalives): from the link's address and the tunnel port to the
/// peer's endpoint.
pub(super) fn own_message_to(
    ctx: &Ctx,
    peer: PeerIdx,
    link: usize,
) -> Result<(&crate::snapshot::Link, Addrs), DropReason> {
    let l = ctx
        .snap
        .peer(peer)
        .and_then(|p| p.links.get(link))
        .ok_or(DropReason::NoLink)?;
    let src = ctx
        .snap
        .ports
        .get(l.port)
        .map(|p| p.addr)
        .ok_or(DropReason::NoLink)?;
    let remote = l.destination().ok_or(DropReason::NoEndpoint)?;
    let to = Addrs {
        src,
        remote,
        src_port: ctx.snap.tunnel_port,
    };
    Ok((l, to))
}

/// Writes outer IPv4, UDP and braid headers in front of the payload behind the frame's
/// Ethernet header and `padding` zero bytes behind it, and seals the message with `key`;
/// false when the buffer has no room.
#[inline]
pub(super) fn wrap(
    frame: &mut Frame<'_>,
    to: &Addrs,
    header: &Header,
    (key, padding): (&SessionKey, usize),
) -> bool {
    let end = frame.len() + OUTER_LEN;
    if !frame.push_front(OUTER_LEN) || !frame.set_len(end + padding + TAG_LEN) {
        return false;
    }
    // Fewer than PAD_TO bytes of padding, and the tag's room behind them: PAD_TO zeros in
    // one store (no call to memset for a few bytes), the seal writes the tag over the rest.
    const _: () = assert!(PAD_TO <= TAG_LEN);
    if let Some(pad) = frame
        .data_mut()
        .get_mut(end..)
        .and_then(|d| d.first_chunk_mut::<PAD_TO>())
    {
        *pad = [0; PAD_TO];
    }
    let Some(msg) = frame
        .data_mut()
        .get_mut(OUTER_LEN - HEADER_LEN + ethernet::HEADER_LEN..)
    else {
        return false;
    };
    let Some(hdr) = msg.first_chunk_mut::<HEADER_LEN>() else {
        return false;
    };
    header.emit(hdr);
    key.seal(msg).is_ok() && udp_headers(frame, to)
}

/// Writes the outer IPv4 and UDP headers behind the Ethernet header, around the message
/// that fills the rest of the frame; false when the frame is too short.
#[inline]
pub(super) fn udp_headers(frame: &mut Frame<'_>, to: &Addrs) -> bool {
    let Some(udp_len) = frame
        .len()
        .checked_sub(ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN + udp::HEADER_LEN)
        .map(|msg_len| msg_len + udp::HEADER_LEN)
    else {
        return false;
    };
    let Some((outer_ip, rest)) = frame
        .data_mut()
        .get_mut(ethernet::HEADER_LEN..)
        .and_then(|d| d.split_first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>())
    else {
        return false;
    };
    ipv4::Repr {
        src: to.src,
        dst: *to.remote.ip(),
        protocol: ipv4::PROTO_UDP,
        ttl: ipv4::DEFAULT_TTL,
        ident: 0,
        dont_fragment: true,
        payload_len: udp_len as u16,
    }
    .emit(outer_ip);
    let Some(udp_header) = rest.first_chunk_mut::<{ udp::HEADER_LEN }>() else {
        return false;
    };
    // The checksum stays 0 (allowed for UDP over IPv4): the AEAD tag or the handshake's
    // own authentication covers the message.
    udp::Repr {
        src_port: to.src_port,
        dst_port: to.remote.port(),
        payload_len: (udp_len - udp::HEADER_LEN) as u16,
    }
    .emit(udp_header);
    true
}
