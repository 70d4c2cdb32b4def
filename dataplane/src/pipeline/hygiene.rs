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

/// True for an address in a block that is never a unicast host's on the internet or a
/// LAN that braid routes: 0/8, 127/8, 169.254/16, and 224/4 to 255.255.255.255.
#[inline]
fn special(a: u32) -> bool {
    let top = a >> 24;
    // `top - 1` wraps for 0: one compare for 0/8 and 224/4 up (it runs thrice a packet).
    top.wrapping_sub(1) >= 223 || top == 127 || a >> 16 == LINK_LOCAL_16
}

/// Why a packet from `src` to `dst` must not be forwarded, or `None` when it may be.
#[inline]
pub(super) fn refusal(snap: &Snapshot, src: Ipv4Addr, dst: Ipv4Addr) -> Option<DropReason> {
    let (s, d) = (u32::from(src), u32::from(dst));
    if special(d) {
        return Some(match d >> 28 {
            _ if d == u32::MAX => DropReason::Broadcast,
            0xe => DropReason::Multicast,
            _ => DropReason::MartianDestination,
        });
    }
    if special(s) || snap.is_directed_broadcast(src) {
        return Some(DropReason::MartianSource);
    }
    if snap.is_directed_broadcast(dst) {
        return Some(DropReason::Broadcast);
    }
    None
}

/// True when `src` may not be a packet's source: a reply or an error to it would go to
/// a broadcast, a group, or nobody.
#[inline]
pub(super) fn martian_source(snap: &Snapshot, src: Ipv4Addr) -> bool {
    special(u32::from(src)) || snap.is_directed_broadcast(src)
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
}
