//! What is never forwarded (RFC 1812), at both ends: broadcasts, multicast and
//! martians from the LAN, out of the tunnel and from the internet; and no packet goes
//! back into the bond it came out of. Each refusal is counted under its reason, none
//! is answered with an ICMP error, nothing reaches a link.

use super::meta::{IpFacts, Meta};
use super::tests::{
    addr, pair, run, udp_frame, EDGE_LAN_MAC, EDGE_WAN1_MAC, EDGE_WAN2_MAC, HUB_MAC,
};
use super::{hygiene, Next, Pipeline};
use crate::frame::{Frame, Verdict, HEADROOM};
use crate::ids::PeerIdx;
use crate::stats::DropReason;
use crate::wire::{ipv4, BROADCAST};

/// Everything `p` sent so far: frames by copy, link and forwarded counters, ICMP errors.
fn sent(p: &mut Pipeline) -> (usize, u64, u64, u64) {
    let copies = p.take_out().count();
    let s = p.stats();
    let links = s.links.iter().map(|l| l.tx_packets.get()).sum();
    (copies, links, s.forwarded.get(), s.icmp_errors.get())
}

fn drops(p: &Pipeline, why: DropReason) -> u64 {
    p.stats().drops_of(why)
}

/// Runs `frame` on `port` of `p` and checks it is dropped as `why`, with nothing sent.
fn refused(p: &mut Pipeline, port: usize, frame: &[u8], why: DropReason, what: &str) {
    let before = drops(p, why);
    let (v, _) = run(p, port, frame);
    assert_eq!(v, Verdict::Drop, "{what}");
    assert_eq!(
        drops(p, why),
        before + 1,
        "{what}: counted as {}",
        why.name()
    );
    assert_eq!(sent(p), (0, 0, 0, 0), "{what}: nothing sent, no ICMP error");
}

/// `inner` (an Ethernet frame) sealed into the bond by `p` as its first peer's, with
/// the destination MAC of `to_mac`: an authentic datagram whatever its inner addresses.
fn sealed(p: &mut Pipeline, inner: &[u8], to_mac: [u8; 6]) -> (usize, Vec<u8>) {
    let mut buf = vec![0u8; 2048];
    buf[HEADROOM..HEADROOM + inner.len()].copy_from_slice(inner);
    let mut f = Frame::at(&mut buf, HEADROOM, inner.len());
    let mut meta = Meta::new(0);
    meta.ip = IpFacts::of(&ipv4::Ipv4::parse(&inner[14..]).unwrap());
    let v = p.run(Next::Seal(PeerIdx(0)), &mut meta, &mut f);
    let Verdict::Tx(port) = v else {
        panic!("not sealed: {v:?}")
    };
    let mut out = f.data().to_vec();
    out[..6].copy_from_slice(&to_mac);
    (port, out)
}

/// The edge's port a datagram the hub sealed arrives on (by its outer destination).
fn edge_port_of(wire: &[u8]) -> (usize, [u8; 6]) {
    if wire[32] == 11 {
        (1, EDGE_WAN1_MAC)
    } else {
        (2, EDGE_WAN2_MAC)
    }
}

/// (source, destination, reason) of every class an edge refuses from its LAN.
const FROM_THE_LAN: &[(&str, &str, DropReason)] = &[
    ("198.18.1.2", "255.255.255.255", DropReason::Broadcast),
    ("0.0.0.0", "255.255.255.255", DropReason::Broadcast), // DHCPDISCOVER
    ("198.18.1.2", "198.18.1.255", DropReason::Broadcast), // the LAN's directed broadcast
    ("198.18.1.2", "198.18.11.255", DropReason::Broadcast), // a WAN prefix's
    ("198.18.1.2", "198.18.12.255", DropReason::Broadcast),
    ("198.18.1.2", "224.0.0.251", DropReason::Multicast), // mDNS
    ("198.18.1.2", "239.255.255.250", DropReason::Multicast), // SSDP
    ("198.18.1.2", "169.254.1.1", DropReason::MartianDestination),
    ("198.18.1.2", "127.0.0.1", DropReason::MartianDestination),
    ("198.18.1.2", "0.0.0.0", DropReason::MartianDestination),
    ("198.18.1.2", "0.1.2.3", DropReason::MartianDestination),
    ("198.18.1.2", "240.0.0.1", DropReason::MartianDestination),
    (
        "198.18.1.2",
        "254.255.255.255",
        DropReason::MartianDestination,
    ),
    ("0.0.0.0", "203.0.113.130", DropReason::MartianSource),
    (
        "255.255.255.255",
        "203.0.113.130",
        DropReason::MartianSource,
    ),
    ("224.0.0.5", "203.0.113.130", DropReason::MartianSource),
    ("240.1.1.1", "203.0.113.130", DropReason::MartianSource),
    ("169.254.3.3", "203.0.113.130", DropReason::MartianSource),
    ("127.0.0.1", "203.0.113.130", DropReason::MartianSource),
    ("198.18.1.255", "203.0.113.130", DropReason::MartianSource),
];

#[test]
fn the_edge_forwards_no_broadcast_multicast_or_martian_from_the_lan() {
    let (mut e, _h) = pair();
    for &(src, dst, why) in FROM_THE_LAN {
        // To the port's MAC or to Ethernet broadcast; TTL 1 would get "time exceeded"
        // if routing went that far.
        for mac in [EDGE_LAN_MAC, BROADCAST] {
            for ttl in [64, 1] {
                let f = udp_frame(mac, src, dst, ttl, b"never forwarded");
                refused(&mut e, 0, &f, why, &format!("{src} -> {dst} ttl {ttl}"));
            }
        }
    }
    // Nothing else was counted, and ordinary traffic still goes into the bond.
    let refusals = [
        DropReason::Broadcast,
        DropReason::Multicast,
        DropReason::MartianSource,
        DropReason::MartianDestination,
    ];
    let others: u64 = DropReason::ALL
        .iter()
        .filter(|r| !refusals.contains(r))
        .map(|r| drops(&e, *r))
        .sum();
    assert_eq!(others, 0);
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"ok");
    assert!(matches!(run(&mut e, 0, &f).0, Verdict::Tx(1 | 2)));
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "198.18.1.254", 64, b"ok");
    assert!(matches!(run(&mut e, 0, &f).0, Verdict::Tx(1 | 2)));
}

#[test]
fn nothing_is_answered_to_a_martian_source() {
    let (mut e, _h) = pair();
    for src in ["0.0.0.0", "127.0.0.1", "224.0.0.1", "198.18.1.255"] {
        // An ICMP echo request to the edge's own LAN address.
        let mut f = udp_frame(EDGE_LAN_MAC, src, "198.18.1.1", 64, b"ping");
        f[23] = ipv4::PROTO_ICMP;
        f[24..26].copy_from_slice(&[0, 0]);
        let c = crate::wire::checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f[34] = crate::wire::icmp::ECHO_REQUEST;
        f[35] = 0;
        f[36..38].copy_from_slice(&[0, 0]);
        let c = crate::wire::checksum::checksum(&f[34..]);
        f[36..38].copy_from_slice(&c.to_be_bytes());
        refused(&mut e, 0, &f, DropReason::MartianSource, src);
    }
    assert_eq!(e.stats().local.get(), 0);
}

#[test]
fn the_hub_forwards_no_martian_out_of_the_tunnel() {
    let (mut e, mut h) = pair();
    for &(src, dst, why) in &[
        ("198.18.1.2", "255.255.255.255", DropReason::Broadcast),
        ("198.18.1.2", "203.0.113.15", DropReason::Broadcast), // the hub's WAN prefix's
        ("198.18.1.2", "224.0.0.251", DropReason::Multicast),
        ("198.18.1.2", "127.0.0.1", DropReason::MartianDestination),
        ("198.18.1.2", "169.254.9.9", DropReason::MartianDestination),
        ("198.18.1.2", "240.0.0.1", DropReason::MartianDestination),
        ("198.18.1.2", "0.0.0.0", DropReason::MartianDestination),
    ] {
        for ttl in [64, 2] {
            let inner = udp_frame(EDGE_LAN_MAC, src, dst, ttl, b"authentic");
            let (_, wire) = sealed(&mut e, &inner, HUB_MAC);
            refused(&mut h, 0, &wire, why, &format!("{src} -> {dst} ttl {ttl}"));
        }
    }
    // An authentic one to the internet still goes.
    let inner = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"ok");
    let (_, wire) = sealed(&mut e, &inner, HUB_MAC);
    assert_eq!(run(&mut h, 0, &wire).0, Verdict::Tx(0));
}

#[test]
fn the_hub_never_sends_a_packet_back_into_the_bond_it_came_out_of() {
    let (mut e, mut h) = pair();
    // The edge's rule sends everything from its LAN into the bond, even to its own LAN
    // (a host that does not know its prefix); the hub's route for that LAN points back
    // into the same edge's bond. TTL 2 would expire at the hub: still no ICMP error.
    for (dst, ttl) in [("198.18.1.7", 64), ("198.18.1.7", 2), ("198.18.1.0", 64)] {
        let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", dst, ttl, b"bounce");
        let (v, mut wire) = run(&mut e, 0, &f);
        assert!(matches!(v, Verdict::Tx(1 | 2)), "{dst}");
        wire[..6].copy_from_slice(&HUB_MAC);
        refused(&mut h, 0, &wire, DropReason::BondLoop, dst);
    }
    // The same destination from the internet goes into the bond as before.
    let f = udp_frame(HUB_MAC, "203.0.113.130", "198.18.1.7", 64, b"in");
    assert_eq!(run(&mut h, 0, &f).0, Verdict::Tx(0));
}

#[test]
fn the_edge_never_sends_a_packet_back_into_the_bond_it_came_out_of() {
    let (mut e, mut h) = pair();
    // The hub may send any source (the edge allows 0.0.0.0/0 from it); one from the
    // edge's LAN prefix matches the edge's rule into the bond.
    let inner = udp_frame(HUB_MAC, "198.18.1.5", "203.0.113.130", 64, b"bounce");
    let (_, wire) = sealed(&mut h, &inner, [0; 6]);
    let (port, mac) = edge_port_of(&wire);
    let mut wire = wire;
    wire[..6].copy_from_slice(&mac);
    refused(&mut e, port, &wire, DropReason::BondLoop, "back to the hub");
}

#[test]
fn the_lans_directed_broadcast_from_the_internet_stops_at_the_edge() {
    let (mut e, mut h) = pair();
    // The hub does not know the edge's prefix's broadcast: it goes into the bond once,
    // and the edge refuses it.
    let f = udp_frame(HUB_MAC, "203.0.113.130", "198.18.1.255", 64, b"smurf");
    let (v, mut wire) = run(&mut h, 0, &f);
    assert_eq!(v, Verdict::Tx(0));
    let (port, mac) = edge_port_of(&wire);
    wire[..6].copy_from_slice(&mac);
    refused(
        &mut e,
        port,
        &wire,
        DropReason::Broadcast,
        "out of the tunnel",
    );
    // The hub's own prefix's directed broadcast from the internet is refused there.
    let f = udp_frame(HUB_MAC, "203.0.113.130", "203.0.113.15", 64, b"smurf");
    let before = sent(&mut h);
    assert_eq!(run(&mut h, 0, &f).0, Verdict::Drop);
    assert_eq!(drops(&h, DropReason::Broadcast), 1);
    assert_eq!(sent(&mut h), before);
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// The connected prefixes' directed broadcasts of the lab edge and hub.
    const BROADCASTS: [&str; 4] = [
        "198.18.1.255",
        "198.18.11.255",
        "198.18.12.255",
        "203.0.113.15",
    ];

    /// True when RFC 1812 forbids forwarding a packet with this address (as source or
    /// destination), by the standard library's classes.
    fn never_forwarded(ip: Ipv4Addr, broadcasts: &[&str]) -> bool {
        ip.is_unspecified()
            || ip.octets()[0] == 0
            || ip.is_loopback()
            || ip.is_link_local()
            || ip.is_multicast()
            || ip.is_broadcast()
            || ip.octets()[0] >= 240
            || broadcasts.iter().any(|b| addr(b) == ip)
    }

    /// Addresses with the special blocks (and the lab's broadcasts) well represented.
    fn address() -> impl Strategy<Value = Ipv4Addr> {
        prop_oneof![
            any::<u32>(),
            (0u32..1 << 24),
            (0u32..1 << 24).prop_map(|x| 127 << 24 | x),
            (0u32..1 << 16).prop_map(|x| 0xa9fe_0000 | x),
            (0u32..1 << 28).prop_map(|x| 0xe000_0000 | x),
            (0u32..1 << 28).prop_map(|x| 0xf000_0000 | x),
            (0usize..4).prop_map(|i| u32::from(addr(BROADCASTS[i]))),
            Just(u32::MAX),
            (0u32..256).prop_map(|x| 0xc612_0100 | x), // 198.18.1.x
        ]
        .prop_map(Ipv4Addr::from)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn a_refused_class_never_reaches_a_link(
            src in address(),
            dst in address(),
            ttl in 1u8..=255,
        ) {
            let (mut e, mut h) = pair();
            let refused = never_forwarded(src, &BROADCASTS[..3])
                || never_forwarded(dst, &BROADCASTS[..3]);
            let f = udp_frame(EDGE_LAN_MAC, &src.to_string(), &dst.to_string(), ttl, b"p");
            let (v, _) = run(&mut e, 0, &f);
            if refused {
                prop_assert_eq!(v, Verdict::Drop);
                prop_assert_eq!(sent(&mut e), (0, 0, 0, 0));
            }
            // Out of the tunnel at the hub: the edge's LAN sources are the allowed ones.
            let src = Ipv4Addr::from(u32::from(src) & 0xff | 0xc612_0100);
            let refused = never_forwarded(src, &BROADCASTS[3..])
                || never_forwarded(dst, &BROADCASTS[3..]);
            let inner = udp_frame(EDGE_LAN_MAC, &src.to_string(), &dst.to_string(), ttl, b"p");
            let (_, wire) = sealed(&mut e, &inner, HUB_MAC);
            let (v, _) = run(&mut h, 0, &wire);
            if refused {
                prop_assert_eq!(v, Verdict::Drop);
                prop_assert_eq!(sent(&mut h), (0, 0, 0, 0));
            }
        }

        #[test]
        fn the_quick_answer_is_the_closer_looks(src in address(), dst in address()) {
            let (e, h) = pair();
            for snap in [e.snapshot(), h.snapshot()] {
                let (s, d) = (u32::from(src), u32::from(dst));
                prop_assert_eq!(
                    hygiene::refusal(snap, src, dst),
                    hygiene::closer_look(snap, s, d)
                );
                prop_assert_eq!(
                    hygiene::martian_source(snap, src),
                    hygiene::closer_look(snap, s, u32::from(addr("198.18.0.1")))
                        == Some(DropReason::MartianSource)
                );
            }
        }
    }
}
