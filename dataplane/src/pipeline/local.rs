//! Frames for braid itself: ARP on every port, ICMP echo to its addresses, and
//! tunnel datagrams (which go on to `Open`).

use super::meta::{IpFacts, Meta};
use super::{Ctx, Next};
use crate::frame::Frame;
use crate::route::Neighbors;
use crate::stats::{DropReason, WorkerStats};
use crate::wire::{arp, ethernet, icmp, ipv4, WireError};

/// Answers ARP requests for the port's address (or its masquerade's pool) and
/// learns the sender of any ARP packet aimed at them. Out of line, as the other
/// stages rarely taken: the stage loop stays small for the data packets.
#[inline(never)]
pub(super) fn arp(
    ctx: &Ctx,
    neighbors: &Neighbors,
    stats: &WorkerStats,
    meta: &Meta,
    frame: &mut Frame<'_>,
) -> Next {
    let port = meta.in_port;
    let Some(p) = ctx.snap.ports.get(port) else {
        return Next::Drop(DropReason::NotForUs);
    };
    let Some(body) = frame.data().get(ethernet::HEADER_LEN..) else {
        return Next::Drop(DropReason::Truncated);
    };
    let a = match arp::Arp::parse(body) {
        Ok(a) => a,
        Err(WireError::Truncated) => return Next::Drop(DropReason::Truncated),
        Err(_) => return Next::Drop(DropReason::Malformed),
    };
    let ours = a.target_ip == p.addr
        || (p.shared && a.op == arp::OP_REPLY && a.target_ip.is_unspecified())
        || ctx
            .snap
            .masquerade_on(port)
            .and_then(|m| ctx.snap.masquerade(m))
            .is_some_and(|m| m.nat.pool.contains(a.target_ip));
    if !ours {
        return Next::Drop(DropReason::NotForUs);
    }
    if p.net.contains(&a.sender_ip) && a.sender_ip != p.addr {
        neighbors.learn(port, a.sender_ip, a.sender_mac, ctx.now);
    }
    stats.local.add(1);
    if a.op != arp::OP_REQUEST {
        return Next::Consumed;
    }
    let reply = arp::Arp {
        op: arp::OP_REPLY,
        sender_mac: p.mac,
        sender_ip: a.target_ip,
        target_mac: a.sender_mac,
        target_ip: a.sender_ip,
    };
    if !frame.set_len(ethernet::HEADER_LEN + arp::PACKET_LEN) {
        return Next::Drop(DropReason::Truncated);
    }
    let data = frame.data_mut();
    ethernet::write(data, a.sender_mac, p.mac, ethernet::ETHERTYPE_ARP);
    if let Some(body) = data
        .get_mut(ethernet::HEADER_LEN..)
        .and_then(|b| b.first_chunk_mut())
    {
        reply.emit(body);
    }
    Next::Tx(port)
}

/// True for a tunnel datagram: UDP to one of the tunnel ports.
#[inline]
pub(super) fn is_tunnel(ctx: &Ctx, ip: &IpFacts) -> bool {
    ip.udp_dst_port()
        .is_some_and(|p| ctx.snap.is_tunnel_port(p))
}

/// An IPv4 packet to one of braid's addresses: tunnel datagrams are opened, ICMP
/// echo requests answered, the rest dropped.
#[inline]
pub(super) fn serve(ctx: &Ctx, stats: &WorkerStats, meta: &Meta, frame: &mut Frame<'_>) -> Next {
    if is_tunnel(ctx, &meta.ip) {
        return Next::Open;
    }
    match meta.ip.protocol {
        ipv4::PROTO_ICMP => echo(ctx, stats, meta, frame),
        _ => Next::Drop(DropReason::LocalUnsupported),
    }
}

/// Answers an ICMP echo request in place, back to the neighbour it came from.
fn echo(ctx: &Ctx, stats: &WorkerStats, meta: &Meta, frame: &mut Frame<'_>) -> Next {
    let Some(p) = ctx.snap.ports.get(meta.in_port) else {
        return Next::Drop(DropReason::NotForUs);
    };
    let data = frame.data_mut();
    let Some(packet) = data.get_mut(ethernet::HEADER_LEN..) else {
        return Next::Drop(DropReason::Truncated);
    };
    match icmp::echo_request_to_reply(packet, ipv4::DEFAULT_TTL) {
        Ok(()) => {}
        Err(WireError::BadChecksum) => return Next::Drop(DropReason::BadChecksum),
        Err(WireError::Truncated) => return Next::Drop(DropReason::Truncated),
        Err(_) => return Next::Drop(DropReason::LocalUnsupported),
    }
    ethernet::write(data, meta.from_mac, p.mac, ethernet::ETHERTYPE_IPV4);
    stats.local.add(1);
    Next::Tx(meta.in_port)
}
