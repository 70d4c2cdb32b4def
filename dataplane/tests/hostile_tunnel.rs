//! Tunnel authentication under attack, one test per class of forged datagram: each is
//! dropped and counted under its reason, and changes nothing: no link counter moves, no
//! NAT session is made, no neighbour is learned, nothing is sent in answer, and the
//! replay window still accepts what it accepted before.
//!
//! The datagrams are real: an edge pipeline (the lab edge) seals LAN packets, and the
//! attacks alter its output or come from edges with the wrong key, id or prefixes. The
//! hub is the lab hub with masquerade on, so a packet that got through would make a
//! NAT session.

mod hostile_common;

use braid_dataplane::io::Verdict;
use braid_dataplane::pipeline::Pipeline;
use braid_dataplane::stats::{DropReason, MAX_LINKS};
use braid_dataplane::tunnel::{HEADER_LEN, TAG_LEN};
use braid_dataplane::wire::checksum;
use hostile_common::{datagram, edge, edge_with, run, Daemon, EDGE2, KEY, KEY2, MSG, S, SEQ0};
use std::net::Ipv4Addr;

/// The hub: the lab hub masquerading its edges, plus a second edge (id 3, its own key,
/// 198.18.2.0/24, one link).
fn hub() -> Daemon {
    let masq = "[[masquerade]]\ninterface = \"wan0\"\n\
                sources = [\"198.18.1.0/24\", \"198.18.2.0/24\"]\n";
    hostile_common::hub_with("", &format!("{EDGE2}\n{masq}"))
}

/// Everything a forged datagram must leave alone.
#[derive(Debug, PartialEq, Eq)]
struct State {
    links: Vec<[u64; 4]>,
    nat_created: u64,
    nat_sessions: u64,
    neighbours: Vec<(usize, Ipv4Addr, [u8; 6], u64)>,
    forwarded: u64,
    local: u64,
    icmp_errors: u64,
}

fn state(hub: &mut Daemon, now: u64) -> State {
    hub.p().begin_batch(now);
    let s = hub.workers[0].stats();
    let mut neighbours: Vec<_> = hub
        .shared
        .neighbors
        .load()
        .iter()
        .map(|(p, ip, e)| (p, ip, e.mac, e.confirmed_ns))
        .collect();
    neighbours.sort();
    State {
        links: (0..MAX_LINKS)
            .map(|l| {
                let c = &s.links[l];
                [
                    c.rx_packets.get(),
                    c.rx_bytes.get(),
                    c.tx_packets.get(),
                    c.tx_bytes.get(),
                ]
            })
            .collect(),
        nat_created: s.nat.created.get(),
        nat_sessions: s.nat.sessions.get(),
        neighbours,
        forwarded: s.forwarded.get(),
        local: s.local.get(),
        icmp_errors: s.icmp_errors.get(),
    }
}

fn drops(hub: &Pipeline) -> Vec<(&'static str, u64)> {
    DropReason::ALL
        .iter()
        .map(|d| (d.name(), hub.stats().drops_of(*d)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Sends `attack` to the hub and checks it is dropped under `why`, answered with nothing,
/// and changes no state.
fn refused(hub: &mut Daemon, attack: &[u8], why: DropReason) {
    let before = state(hub, 2 * S);
    let counted = hub.p().stats().drops_of(why);
    let others = all_drops(hub.p());
    let (v, _) = run(hub.p(), 0, attack);
    assert_eq!(v, Verdict::Drop, "{why:?}");
    assert_eq!(hub.p().take_out().count(), 0, "nothing is sent in answer");
    assert_eq!(
        hub.p().stats().drops_of(why),
        counted + 1,
        "counted as {}: {:?}",
        why.name(),
        drops(hub.p())
    );
    assert_eq!(
        all_drops(hub.p()),
        others + 1,
        "counted once: {:?}",
        drops(hub.p())
    );
    assert_eq!(
        state(hub, 2 * S),
        before,
        "a {} datagram changed state",
        why.name()
    );
}

fn all_drops(p: &Pipeline) -> u64 {
    DropReason::ALL.iter().map(|d| p.stats().drops_of(*d)).sum()
}

/// The hub accepts `good` (it was not spoiled by the attacks before it).
fn accepted(hub: &mut Daemon, good: &[u8]) {
    let before = state(hub, 3 * S);
    let (v, out) = run(hub.p(), 0, good);
    assert_eq!(v, Verdict::Tx(0), "the authentic datagram goes through");
    assert_eq!(&out[26..30], &[203, 0, 113, 2], "masqueraded");
    let after = state(hub, 3 * S);
    assert_eq!(after.nat_created, before.nat_created + 1);
    assert_eq!(after.forwarded, before.forwarded + 1);
}

#[test]
fn wrong_key_is_a_bad_tag() {
    let mut hub = hub();
    let mut stranger = edge_with(|t| t, [8; 32], SEQ0);
    let forged = datagram(&mut stranger, "198.18.1.2", 1);
    refused(&mut hub, &forged, DropReason::BadTag);
    // The same sequence, sealed with the right key, is still fresh.
    let good = datagram(&mut edge(), "198.18.1.2", 1);
    accepted(&mut hub, &good);
}

#[test]
fn a_flipped_bit_anywhere_in_the_message_is_refused() {
    let mut hub = hub();
    let good = datagram(&mut edge(), "198.18.1.2", 1);
    let bits = (good.len() - MSG) * 8;
    assert_eq!(bits, (HEADER_LEN + 32 + TAG_LEN) * 8);
    let allowed = [
        DropReason::BadTag,
        DropReason::BadTunnelHeader,
        DropReason::UnknownLink,
        DropReason::UnknownSender,
    ];
    let before = state(&mut hub, 2 * S);
    for bit in 0..bits {
        let mut forged = good.clone();
        forged[MSG + bit / 8] ^= 1 << (bit % 8);
        let counts: Vec<u64> = allowed
            .iter()
            .map(|d| hub.p().stats().drops_of(*d))
            .collect();
        let total = all_drops(hub.p());
        let (v, _) = run(hub.p(), 0, &forged);
        assert_eq!(v, Verdict::Drop, "bit {bit}");
        let after: Vec<u64> = allowed
            .iter()
            .map(|d| hub.p().stats().drops_of(*d))
            .collect();
        let moved: u64 = after.iter().zip(&counts).map(|(a, b)| a - b).sum();
        assert_eq!(moved, 1, "bit {bit}: {:?}", drops(hub.p()));
        assert_eq!(all_drops(hub.p()), total + 1, "bit {bit}: counted once");
        // Only header bits, read before the tag, can give another reason.
        if bit >= HEADER_LEN * 8 {
            assert_eq!(after[0], counts[0] + 1, "bit {bit} is a bad tag");
        }
    }
    assert_eq!(hub.p().take_out().count(), 0, "nothing is sent in answer");
    assert_eq!(state(&mut hub, 2 * S), before, "forgeries changed state");
    accepted(&mut hub, &good);
}

#[test]
fn a_forged_high_sequence_does_not_move_the_window() {
    let mut hub = hub();
    let good = datagram(&mut edge(), "198.18.1.2", 1);
    let mut forged = good.clone();
    // Sequence 2^55: far ahead; were the window moved, `good` would be too old.
    forged[MSG + 8..MSG + 16].copy_from_slice(&(1u64 << 55).to_be_bytes());
    refused(&mut hub, &forged, DropReason::BadTag);
    accepted(&mut hub, &good);
}

#[test]
fn a_replayed_datagram_is_refused() {
    let mut hub = hub();
    let good = datagram(&mut edge(), "198.18.1.2", 1);
    accepted(&mut hub, &good);
    refused(&mut hub, &good, DropReason::Replayed);
    // Also when it comes back over the other link's address (the outer header is not
    // authenticated, the message is).
    let mut moved = good.clone();
    moved[26..30].copy_from_slice(&[198, 18, 12, 2]);
    let c = checksum::checksum(&{
        let mut h = moved[14..34].to_vec();
        h[10] = 0;
        h[11] = 0;
        h
    });
    moved[24..26].copy_from_slice(&c.to_be_bytes());
    refused(&mut hub, &moved, DropReason::Replayed);
}

#[test]
fn a_sequence_older_than_the_window_is_refused() {
    let mut hub = hub();
    let mut old_edge = edge();
    let late = datagram(&mut old_edge, "198.18.1.2", 1);
    // The same lane 10,000 messages later (the window holds 8192).
    let ahead = datagram(&mut edge_with(|t| t, KEY, SEQ0 + 10_000), "198.18.1.2", 2);
    accepted(&mut hub, &ahead);
    refused(&mut hub, &late, DropReason::Replayed);
    // Within the window and never seen: still accepted.
    let inside = datagram(
        &mut edge_with(|t| t, KEY, SEQ0 + 10_000 - 8000),
        "198.18.1.2",
        3,
    );
    accepted(&mut hub, &inside);
}

#[test]
fn a_spoofed_sender_id_is_refused() {
    let mut hub = hub();
    // An id the hub does not know.
    let mut unknown = edge_with(|t| t.replacen("id = 1\n", "id = 77\n", 1), KEY, SEQ0);
    let forged = datagram(&mut unknown, "198.18.1.2", 1);
    refused(&mut hub, &forged, DropReason::UnknownSender);
    // edge1 (key 1) claiming to be edge2 (id 3): opened with edge2's key, it fails.
    let mut liar = edge_with(
        |t| {
            t.replacen("id = 1\n", "id = 3\n", 1)
                .replace("weight = 2", "weight = 0")
        },
        KEY,
        SEQ0,
    );
    let forged = datagram(&mut liar, "198.18.1.2", 2);
    refused(&mut hub, &forged, DropReason::BadTag);
    // And a sender id rewritten in an authentic datagram (on the link edge2 has).
    let mut first_link = edge_with(|t| t.replace("weight = 2", "weight = 0"), KEY, SEQ0);
    let mut forged = datagram(&mut first_link, "198.18.1.2", 3);
    forged[MSG + 4..MSG + 8].copy_from_slice(&3u32.to_be_bytes());
    refused(&mut hub, &forged, DropReason::BadTag);
}

#[test]
fn a_wrong_link_id_is_refused() {
    let mut hub = hub();
    let good = datagram(&mut edge(), "198.18.1.2", 1);
    // A link the peer does not have.
    let mut forged = good.clone();
    forged[MSG + 2] = 5;
    refused(&mut hub, &forged, DropReason::UnknownLink);
    // The other existing link: the header is authenticated, so the tag fails.
    let mut forged = good.clone();
    forged[MSG + 2] ^= 1;
    refused(&mut hub, &forged, DropReason::BadTag);
    // A lane beyond those with a replay window.
    let mut forged = good.clone();
    forged[MSG + 3] = 200;
    refused(&mut hub, &forged, DropReason::BadTunnelHeader);
    accepted(&mut hub, &good);
}

#[test]
fn an_inner_source_outside_the_allowed_prefixes_is_dropped() {
    let mut hub = hub();
    // An edge whose bond takes 198.18.0.0/16 sends a LAN packet from 198.18.2.2, which
    // belongs to edge2: authentic, but not edge1's to send.
    let mut wide = edge_with(|t| t.replace("198.18.1.0/24", "198.18.0.0/16"), KEY, SEQ0);
    let spoofed = datagram(&mut wide, "198.18.2.2", 1);
    refused(&mut hub, &spoofed, DropReason::Spoofed);
    let outside = datagram(&mut wide, "198.18.77.1", 2);
    refused(&mut hub, &outside, DropReason::Spoofed);
    // edge2 itself may send from there (its own key and prefix).
    let mut e2 = edge_with(
        |t| {
            // edge2 has one link: everything on the first.
            t.replacen("id = 1\n", "id = 3\n", 1)
                .replace("198.18.1.0/24", "198.18.2.0/24")
                .replace("weight = 2", "weight = 0")
        },
        KEY2,
        SEQ0,
    );
    let own = datagram(&mut e2, "198.18.2.2", 1);
    let before = state(&mut hub, 3 * S);
    assert_eq!(run(hub.p(), 0, &own).0, Verdict::Tx(0));
    assert_eq!(state(&mut hub, 3 * S).nat_created, before.nat_created + 1);
}
