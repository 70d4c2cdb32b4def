//! The first stages of every frame: the Ethernet header, then the IPv4 checks
//! and the choice between braid itself, a masquerade's outside address and routing.

use super::meta::{IpFacts, Meta};
use super::{hygiene, local};
use super::{Ctx, Next};
use crate::frame::Frame;
use crate::stats::DropReason;
use crate::wire::{ethernet, icmp, ipv4, WireError, BROADCAST};

/// Accepts frames to the port's MAC (or broadcast) and sorts them by EtherType.
#[inline]
pub(super) fn ethernet(ctx: &Ctx, meta: &mut Meta, frame: &Frame<'_>) -> Next {
    let Ok(eth) = ethernet::Header::parse(frame.data()) else {
        return Next::Drop(DropReason::Truncated);
    };
    let Some(p) = ctx.snap.ports.get(meta.in_port) else {
        return Next::Drop(DropReason::NotForUs);
    };
    if eth.dst != p.mac && eth.dst != BROADCAST {
        return Next::Drop(DropReason::NotForUs);
    }
    meta.from_mac = eth.src;
    match eth.ethertype {
        ethernet::ETHERTYPE_ARP => Next::Arp,
        ethernet::ETHERTYPE_IPV4 => Next::Ipv4,
        _ => Next::Drop(DropReason::UnsupportedEthertype),
    }
}

/// Validates the IPv4 header, trims link padding and records the packet's facts;
/// then: a masquerade's outside address, one of braid's own (not from a martian
/// source: nothing is answered to one), or routing (which refuses the rest of what is
/// never forwarded).
#[inline]
pub(super) fn ipv4(ctx: &Ctx, meta: &mut Meta, frame: &mut Frame<'_>) -> Next {
    let packet = frame.data().get(ethernet::HEADER_LEN..).unwrap_or(&[]);
    let ip = match ipv4::Ipv4::parse(packet) {
        Ok(ip) => ip,
        Err(WireError::Truncated) => return Next::Drop(DropReason::Truncated),
        Err(_) => return Next::Drop(DropReason::Malformed),
    };
    if !ip.checksum_ok() {
        return Next::Drop(DropReason::BadChecksum);
    }
    meta.ip = IpFacts::of(&ip);
    frame.set_len(ethernet::HEADER_LEN + meta.ip.total_len);
    let owner = ctx.snap.addr_use(meta.ip.dst);
    if let Some(m) = owner.masq {
        if !for_braid(ctx, &meta.ip) {
            return Next::MasqIn(m);
        }
    }
    if owner.port.is_some() {
        if hygiene::martian_source(&ctx.snap, meta.ip.src) {
            return Next::Drop(DropReason::MartianSource);
        }
        // A tunnel datagram, most of what comes to braid, goes to `Open` at once, as
        // `Local` would send it: a stage less a packet out of the bond.
        if local::is_tunnel(ctx, &meta.ip) {
            return Next::Open;
        }
        return Next::Local;
    }
    Next::Route
}

/// True for packets to braid itself on an address it shares with a masquerade:
/// tunnel datagrams and ICMP echo requests.
fn for_braid(ctx: &Ctx, ip: &IpFacts) -> bool {
    match ip.protocol {
        ipv4::PROTO_UDP => local::is_tunnel(ctx, ip),
        ipv4::PROTO_ICMP => ip.l4.first_byte() == Some(icmp::ECHO_REQUEST),
        _ => false,
    }
}
