//! What a router never forwards (RFC 1812 §4.2.2.11, §5.3.7 and §5.3.5): packets to the
//! limited broadcast or a connected prefix's directed broadcast, to multicast groups,
//! to or from "this network" (0/8), loopback (127/8), link-local (169.254/16) and the
//! reserved 240/4, and from a broadcast or multicast address. Each refusal is a drop
//! reason of its own, and none is answered with an ICMP error (RFC 1812 §4.3.2.7).
//!
//! The checks are a few compares on the addresses as numbers, plus one per connected
//! prefix for the directed broadcasts (precomputed in the snapshot).

use crate::snapshot::Snapshot;
use crate::stats::DropReason;
use std::net::Ipv4Addr;

/// 169.254.0.0/16 by its first 16 bits.
const LINK_LOCAL_16: u32 = 0xa9fe;

/// First octets that may begin a special address, one bit each: 0, 127, 169 (when the
/// second octet is 254) and 224 up. An address whose first octet is not here is no special
/// one, known from one bit.
const SPECIAL_TOPS: [u64; 4] = [1, 1 << (127 - 64), 1 << (169 - 128), 0xffff_ffff << 32];

/// True when the first octet of `a` may begin a special address.
#[inline(always)]
fn special_top(a: u32) -> bool {
    let top = a >> 24;
    SPECIAL_TOPS
        .get((top >> 6) as usize)
        .is_some_and(|bits| bits >> (top & 63) & 1 != 0)
}

/// True for an address in a block that is never a unicast host's on the internet or a
/// LAN that braid routes: 0/8, 127/8, 169.254/16, and 224/4 to 255.255.255.255.
#[inline]
fn special(a: u32) -> bool {
    special_top(a) && (a >> 24 != 169 || a >> 16 == LINK_LOCAL_16)
}

/// True when `a` may be special or a directed broadcast (`tail`: the snapshot's
/// [`Snapshot::broadcast_tail`]); false tells an ordinary address without a branch.
#[inline(always)]
fn suspect(a: u32, tail: u32) -> bool {
    special_top(a) | (a & tail == tail)
}

/// Why a packet from `src` to `dst` must not be forwarded, or `None` when it may be.
///
/// Every packet asks, and nearly every one is ordinary: both first octets outside the
/// special ones and neither address with a directed broadcast's low bits. That is told
/// with no branch but one; the rest is worked out out of line.
#[inline(always)]
pub(super) fn refusal(snap: &Snapshot, src: Ipv4Addr, dst: Ipv4Addr) -> Option<DropReason> {
    let (s, d) = (u32::from(src), u32::from(dst));
    let tail = snap.broadcast_tail();
    if !(suspect(s, tail) | suspect(d, tail)) {
        return None;
    }
    closer_look(snap, s, d)
}

/// [`refusal`] for a packet whose addresses may be special.
#[inline(never)]
pub(super) fn closer_look(snap: &Snapshot, s: u32, d: u32) -> Option<DropReason> {
    if special(d) {
        return Some(match d >> 28 {
            _ if d == u32::MAX => DropReason::Broadcast,
            0xe => DropReason::Multicast,
            _ => DropReason::MartianDestination,
        });
    }
    if special(s) || snap.is_directed_broadcast(Ipv4Addr::from(s)) {
        return Some(DropReason::MartianSource);
    }
    if snap.is_directed_broadcast(Ipv4Addr::from(d)) {
        return Some(DropReason::Broadcast);
    }
    None
}

/// True when `src` may not be the source of a packet braid receives: a special address or
/// a connected prefix's directed broadcast.
#[inline(always)]
pub(super) fn martian_source(snap: &Snapshot, src: Ipv4Addr) -> bool {
    let s = u32::from(src);
    suspect(s, snap.broadcast_tail()) && (special(s) || snap.is_directed_broadcast(src))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_special_blocks_and_only_them() {
        for (a, yes) in [
            ("0.0.0.0", true),
            ("0.1.2.3", true),
            ("1.0.0.0", false),
            ("126.255.255.255", false),
            ("127.0.0.1", true),
            ("128.0.0.0", false),
            ("169.253.255.255", false),
            ("169.254.0.1", true),
            ("169.255.0.0", false),
            ("223.255.255.255", false),
            ("224.0.0.251", true),
            ("239.255.255.255", true),
            ("240.0.0.1", true),
            ("255.255.255.255", true),
        ] {
            let ip: Ipv4Addr = a.parse().unwrap();
            assert_eq!(special(u32::from(ip)), yes, "{a}");
        }
    }

    #[test]
    fn the_first_octet_table_agrees_with_the_blocks() {
        for a in (0..=u32::MAX).step_by(1 << 12) {
            let top = a >> 24;
            let by_blocks = top == 0 || top == 127 || top >= 224 || a >> 16 == LINK_LOCAL_16;
            assert_eq!(special(a), by_blocks, "{}", Ipv4Addr::from(a));
            if by_blocks {
                assert!(special_top(a), "{}", Ipv4Addr::from(a));
            }
        }
    }
}
