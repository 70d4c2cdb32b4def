//! Routing a checked IPv4 packet: what is never forwarded, TTL, policy routing, the
//! next hop's MTU, and the choice between the bond, a masquerading port and a plain
//! port.

use super::hygiene;
use super::icmp_error::IcmpError;
use super::masq::MasqOut;
use super::meta::Meta;
use super::{Ctx, Next};
use crate::frame::Frame;
use crate::route::NextHop;
use crate::stats::DropReason;
use crate::wire::{ethernet, icmp, ipv4};

/// Routes the packet in `frame` (Ethernet header in front, frame trimmed to the
/// packet, `meta.ip` its facts). Broadcasts, multicast and martians are dropped first,
/// without an ICMP error (see [`hygiene`]); a packet out of a peer's tunnel never goes
/// back into that peer's bond, whatever the routes say.
#[inline]
pub(super) fn route(ctx: &Ctx, meta: &mut Meta, frame: &mut Frame<'_>) -> Next {
    let ip = meta.ip;
    if let Some(why) = hygiene::refusal(&ctx.snap, ip.src, ip.dst) {
        return Next::Drop(why);
    }
    let hop = ctx.snap.routes.lookup(ip.src, ip.dst);
    if let (Some(NextHop::Bond(peer)), Some(from)) = (hop, meta.from_peer) {
        if peer == from {
            // Checked before the TTL: a loop is refused, never answered.
            return Next::Drop(DropReason::BondLoop);
        }
    }
    if ip.ttl <= 1 {
        return Next::IcmpError(IcmpError::TIME_EXCEEDED);
    }
    let Some(hop) = hop else {
        return Next::IcmpError(IcmpError::NO_ROUTE);
    };
    let (port, gateway) = match hop {
        NextHop::Bond(peer) => return Next::Seal(peer),
        NextHop::Port { port, gateway } => (port, gateway),
    };
    let Some(out) = ctx.snap.ports.get(port) else {
        return Next::Drop(DropReason::NoRoute);
    };
    if ip.total_len > usize::from(out.mtu) {
        return too_big(meta, out.mtu);
    }
    if let Some(packet) = frame.data_mut().get_mut(ethernet::HEADER_LEN..) {
        ipv4::decrement_ttl(packet);
        meta.ip.ttl = meta.ip.ttl.saturating_sub(1);
    }
    let next_hop = gateway.unwrap_or(ip.dst);
    if let Some(m) = ctx.snap.masquerade_on(port) {
        let own = ctx.snap.port_with_addr(ip.src).is_some();
        if !own && ctx.snap.masquerade(m).is_some_and(|m| m.covers(ip.src)) {
            return MasqOut::new(port, next_hop, m)
                .map_or(Next::Drop(DropReason::NoRoute), Next::MasqOut);
        }
    }
    Next::Deliver(port, next_hop)
}

/// A packet larger than the next hop's MTU: "fragmentation needed" when DF is
/// set (so path MTU discovery works), else dropped (braid does not fragment).
pub(super) fn too_big(meta: &Meta, mtu: u16) -> Next {
    if !meta.ip.dont_fragment {
        return Next::Drop(DropReason::TooBig);
    }
    Next::IcmpError(IcmpError {
        icmp_type: icmp::DEST_UNREACHABLE,
        code: icmp::CODE_FRAG_NEEDED,
        rest: u32::from(mtu),
        why: DropReason::TooBig,
    })
}
