//! IPv4 from any port: checks, local delivery, TTL, policy routing, and plain
//! forwarding out of a port.

use super::{deliver, discard, encap, icmp_error, local, masq, Ctx, IcmpError, State};
use crate::frame::Frame;
use crate::io::{PortId, Verdict};
use crate::route::NextHop;
use crate::stats::DropReason;
use crate::wire::{ethernet, icmp, ipv4, WireError};

/// Entry for IPv4 frames: validates the header, trims link padding, then serves
/// packets for braid's own addresses or forwards the rest.
pub(super) fn ipv4(ctx: &Ctx, st: &mut State, port: PortId, frame: &mut Frame<'_>) -> Verdict {
    let packet = frame.data().get(ethernet::HEADER_LEN..).unwrap_or(&[]);
    let ip = match ipv4::Ipv4::parse(packet) {
        Ok(ip) => ip,
        Err(WireError::Truncated) => return discard(st, DropReason::Truncated),
        Err(_) => return discard(st, DropReason::Malformed),
    };
    if !ip.checksum_ok() {
        return discard(st, DropReason::BadChecksum);
    }
    let (total, header_len, protocol, dst) =
        (ip.total_len(), ip.header_len(), ip.protocol(), ip.dst());
    frame.set_len(ethernet::HEADER_LEN + total);
    if let Some(m) = ctx.snap.masquerade_of(dst) {
        if !for_braid(ctx, frame, header_len, protocol) {
            return masq::inbound(ctx, st, port, frame, m);
        }
    }
    if ctx.snap.port_with_addr(dst).is_some() {
        return local::deliver_local(ctx, st, port, frame, header_len, protocol);
    }
    forward(ctx, st, port, frame)
}

/// True for packets to braid itself on an address it shares with a masquerade:
/// tunnel datagrams and ICMP echo requests.
fn for_braid(ctx: &Ctx, frame: &Frame<'_>, header_len: usize, protocol: u8) -> bool {
    let l4 = frame
        .data()
        .get(ethernet::HEADER_LEN + header_len..)
        .unwrap_or(&[]);
    match protocol {
        ipv4::PROTO_UDP => {
            l4.get(2..)
                .and_then(<[u8]>::first_chunk)
                .map(|p| u16::from_be_bytes(*p))
                == Some(ctx.snap.tunnel_port)
        }
        ipv4::PROTO_ICMP => l4.first() == Some(&icmp::ECHO_REQUEST),
        _ => false,
    }
}

/// Routes a checked IPv4 packet (Ethernet header in front, frame trimmed to the
/// packet) received on `in_port`.
pub(super) fn forward(
    ctx: &Ctx,
    st: &mut State,
    in_port: PortId,
    frame: &mut Frame<'_>,
) -> Verdict {
    let from_mac = ethernet::Header::parse(frame.data()).map_or([0; 6], |h| h.src);
    let Ok(ip) = ipv4::Ipv4::parse(frame.data().get(ethernet::HEADER_LEN..).unwrap_or(&[])) else {
        return discard(st, DropReason::Malformed);
    };
    let (src, dst, ttl, total, df) = (
        ip.src(),
        ip.dst(),
        ip.ttl(),
        ip.total_len(),
        ip.dont_fragment(),
    );
    if ttl <= 1 {
        let err = IcmpError {
            icmp_type: icmp::TIME_EXCEEDED,
            code: 0,
            rest: 0,
            why: DropReason::TtlExceeded,
        };
        return icmp_error(ctx, st, in_port, from_mac, frame, err);
    }
    let Some(hop) = ctx.snap.routes.lookup(src, dst) else {
        let err = IcmpError {
            icmp_type: icmp::DEST_UNREACHABLE,
            code: icmp::CODE_HOST_UNREACHABLE,
            rest: 0,
            why: DropReason::NoRoute,
        };
        return icmp_error(ctx, st, in_port, from_mac, frame, err);
    };
    match hop {
        NextHop::Bond(peer) => encap::tunnel(ctx, st, in_port, from_mac, frame, peer),
        NextHop::Port { port, gateway } => {
            let Some(out) = ctx.snap.ports.get(port) else {
                return discard(st, DropReason::NoRoute);
            };
            if total > usize::from(out.mtu) {
                return too_big(ctx, st, in_port, from_mac, frame, df, out.mtu);
            }
            if let Some(packet) = frame.data_mut().get_mut(ethernet::HEADER_LEN..) {
                ipv4::decrement_ttl(packet);
            }
            let next_hop = gateway.unwrap_or(dst);
            if let Some(m) = ctx.snap.masquerade_on(port) {
                let own = ctx.snap.port_with_addr(src).is_some();
                if !own && ctx.snap.masquerades.get(m).is_some_and(|m| m.covers(src)) {
                    return masq::outbound(ctx, st, in_port, frame, port, next_hop, m);
                }
            }
            deliver(ctx, st, port, next_hop, frame)
        }
    }
}

/// A packet larger than the next hop's MTU: "fragmentation needed" when DF is
/// set (so path MTU discovery works), else dropped (braid does not fragment).
pub(super) fn too_big(
    ctx: &Ctx,
    st: &mut State,
    in_port: PortId,
    from_mac: crate::wire::Mac,
    frame: &mut Frame<'_>,
    dont_fragment: bool,
    mtu: u16,
) -> Verdict {
    if !dont_fragment {
        return discard(st, DropReason::TooBig);
    }
    let err = IcmpError {
        icmp_type: icmp::DEST_UNREACHABLE,
        code: icmp::CODE_FRAG_NEEDED,
        rest: u32::from(mtu),
        why: DropReason::TooBig,
    };
    icmp_error(ctx, st, in_port, from_mac, frame, err)
}
