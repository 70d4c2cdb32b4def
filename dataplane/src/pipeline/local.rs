//! Frames for braid itself: ARP on every port, ICMP echo to its addresses, and
//! tunnel datagrams (handed to `decap`).

use super::{decap, discard, Ctx, State};
use crate::frame::Frame;
use crate::io::{PortId, Verdict};
use crate::route::Neighbors;
use crate::stats::DropReason;
use crate::wire::{arp, ethernet, icmp, ipv4};

/// Answers ARP requests for the port's address and learns the sender of any ARP
/// packet aimed at it.
pub(super) fn arp(
    ctx: &Ctx,
    st: &mut State,
    neighbors: &Neighbors,
    port: PortId,
    frame: &mut Frame<'_>,
) -> Verdict {
    let Some(p) = ctx.snap.ports.get(port) else {
        return discard(st, DropReason::NotForUs);
    };
    let Some(body) = frame.data().get(ethernet::HEADER_LEN..) else {
        return discard(st, DropReason::Truncated);
    };
    let a = match arp::Arp::parse(body) {
        Ok(a) => a,
        Err(crate::wire::WireError::Truncated) => return discard(st, DropReason::Truncated),
        Err(_) => return discard(st, DropReason::Malformed),
    };
    let ours = a.target_ip == p.addr
        || ctx
            .snap
            .masquerade_on(port)
            .and_then(|m| ctx.snap.masquerades.get(m))
            .is_some_and(|m| m.nat.pool.contains(&a.target_ip));
    if !ours {
        return discard(st, DropReason::NotForUs);
    }
    if p.net.contains(&a.sender_ip) && a.sender_ip != p.addr {
        neighbors.learn(port, a.sender_ip, a.sender_mac, ctx.now);
    }
    if a.op != arp::OP_REQUEST {
        st.stats.local.add(1);
        return Verdict::Drop;
    }
    let reply = arp::Arp {
        op: arp::OP_REPLY,
        sender_mac: p.mac,
        sender_ip: a.target_ip,
        target_mac: a.sender_mac,
        target_ip: a.sender_ip,
    };
    if !frame.set_len(ethernet::HEADER_LEN + arp::PACKET_LEN) {
        return discard(st, DropReason::Truncated);
    }
    let data = frame.data_mut();
    ethernet::write(data, a.sender_mac, p.mac, ethernet::ETHERTYPE_ARP);
    if let Some(body) = data
        .get_mut(ethernet::HEADER_LEN..)
        .and_then(|b| b.first_chunk_mut())
    {
        reply.emit(body);
    }
    st.stats.local.add(1);
    Verdict::Tx(port)
}

/// An IPv4 packet to one of braid's addresses (frame trimmed to the packet):
/// tunnel datagrams and ICMP echo requests are served, the rest dropped.
pub(super) fn deliver_local(
    ctx: &Ctx,
    st: &mut State,
    port: PortId,
    frame: &mut Frame<'_>,
    header_len: usize,
    protocol: u8,
) -> Verdict {
    let l4 = ethernet::HEADER_LEN + header_len;
    match protocol {
        ipv4::PROTO_UDP => {
            let dport = frame
                .data()
                .get(l4 + 2..)
                .and_then(<[u8]>::first_chunk)
                .map(|b| u16::from_be_bytes(*b));
            if dport == Some(ctx.snap.tunnel_port) {
                decap::tunnel(ctx, st, port, frame, header_len)
            } else {
                discard(st, DropReason::LocalUnsupported)
            }
        }
        ipv4::PROTO_ICMP => echo(ctx, st, port, frame),
        _ => discard(st, DropReason::LocalUnsupported),
    }
}

/// Answers an ICMP echo request in place, back to the neighbour it came from.
fn echo(ctx: &Ctx, st: &mut State, port: PortId, frame: &mut Frame<'_>) -> Verdict {
    let Some(p) = ctx.snap.ports.get(port) else {
        return discard(st, DropReason::NotForUs);
    };
    let data = frame.data_mut();
    let Ok(eth) = ethernet::Header::parse(data) else {
        return discard(st, DropReason::Truncated);
    };
    let Some(packet) = data.get_mut(ethernet::HEADER_LEN..) else {
        return discard(st, DropReason::Truncated);
    };
    match icmp::echo_request_to_reply(packet, 64) {
        Ok(()) => {}
        Err(crate::wire::WireError::BadChecksum) => return discard(st, DropReason::BadChecksum),
        Err(crate::wire::WireError::Truncated) => return discard(st, DropReason::Truncated),
        Err(_) => return discard(st, DropReason::LocalUnsupported),
    }
    ethernet::write(data, eth.src, p.mac, ethernet::ETHERTYPE_IPV4);
    st.stats.local.add(1);
    Verdict::Tx(port)
}
