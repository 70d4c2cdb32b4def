//! Tunnel authentication under attack, one test per class of forged datagram: each is
//! dropped and counted under its reason, and changes nothing: no link counter moves, no
//! NAT session is made, no neighbour is learned, nothing is sent in answer, and the
//! replay window still accepts what it accepted before.
//!
//! The datagrams are real: an edge pipeline (the lab edge, with a session made by a
//! handshake in memory) seals LAN packets, and the attacks alter its output, reseal it
//! under other keys, or come from edges with other sessions or prefixes. The hub is the
//! lab hub with masquerade on, so a packet that got through would make a NAT session.

mod hostile_common;

use braid_dataplane::io::Verdict;
use braid_dataplane::pipeline::Pipeline;
use braid_dataplane::stats::{DropReason, MAX_LINKS};
use braid_dataplane::tunnel::{Header, SessionKey, HEADER_LEN, TAG_LEN};
use braid_dataplane::wire::checksum;
use hostile_common::{
    datagram, edge, edge2, edge_with, forge, run, Daemon, EDGE2_PRIVATE, EDGE_PRIVATE, MSG, S,
};
use std::net::Ipv4Addr;

/// The hub: the lab hub masquerading its edges, plus a second edge (its own key,
/// 198.18.2.0/24, one link).
fn hub() -> Daemon {
    let masq = "[[masquerade]]\ninterface = \"wan0\"\n\
                sources = [\"198.18.1.0/24\", \"198.18.2.0/24\"]\n";
    hostile_common::hub_with("", &format!("{}\n{masq}", edge2()))
}

/// The second edge: 198.18.2.0/24, everything on its first link (the hub knows one).
fn second_edge(hub: &mut Daemon) -> Daemon {
    edge_with(
        hub,
        |t| {
            t.replace("198.18.1.0/24", "198.18.2.0/24")
                .replace("weight = 2", "weight = 0")
        },
        EDGE2_PRIVATE,
    )
}

/// The message header of tunnel frame `d`.
fn header(d: &[u8]) -> Header {
    Header::parse(&d[MSG..]).unwrap()
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
    hub.batch(0, now);
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
    let mut e = edge(&mut hub);
    // A twin of the hub (same config, keys and index seed) numbers its first session as
    // the hub did: a stranger's session with it seals under other keys for the same index.
    let mut twin = self::hub();
    let mut stranger = edge(&mut twin);
    let forged = datagram(&mut stranger, "198.18.1.2", 1);
    let ours = hub.session();
    assert_eq!(header(&forged).receiver, ours.local_index);
    refused(&mut hub, &forged, DropReason::BadTag);
    // The edge's own datagram resealed under a key nobody agreed on.
    let good = datagram(&mut e, "198.18.1.2", 1);
    let other = SessionKey::new(ours.recv.cipher(), &[8; 32]);
    let sent = e.session();
    refused(
        &mut hub,
        &forge(&good, &sent.send, &other, |_, _| {}),
        DropReason::BadTag,
    );
    // The same counter, sealed with the right key, is still fresh.
    assert_eq!(header(&good).counter, header(&forged).counter);
    accepted(&mut hub, &good);
}

#[test]
fn a_flipped_bit_anywhere_in_the_message_is_refused() {
    let mut hub = hub();
    let good = datagram(&mut edge(&mut hub), "198.18.1.2", 1);
    let bits = (good.len() - MSG) * 8;
    // The plaintext: bond sequence and a 32-byte packet, padded to 48.
    assert_eq!(bits, (HEADER_LEN + 48 + TAG_LEN) * 8);
    // The type can become a handshake's (5 is data's 1 with bit 2 flipped), the version an
    // older one (2 is 3 with bit 0 flipped).
    let allowed = [
        DropReason::BadTag,
        DropReason::BadTunnelHeader,
        DropReason::OldVersion,
        DropReason::UnknownLink,
        DropReason::UnknownSession,
        DropReason::BadHandshake,
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
fn a_truncated_message_is_refused() {
    let mut hub = hub();
    let good = datagram(&mut edge(&mut hub), "198.18.1.2", 1);
    let len = good.len() - MSG;
    for keep in (0..len).step_by(3) {
        // The outer headers say the shorter length: only the message is short.
        let mut short = good[..MSG + keep].to_vec();
        let ip_len = (short.len() - 14) as u16;
        short[16..18].copy_from_slice(&ip_len.to_be_bytes());
        short[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
        short[24..26].fill(0);
        let c = checksum::checksum(&short[14..34]);
        short[24..26].copy_from_slice(&c.to_be_bytes());
        let why = if keep < HEADER_LEN + TAG_LEN {
            DropReason::Truncated
        } else {
            DropReason::BadTag
        };
        refused(&mut hub, &short, why);
    }
    accepted(&mut hub, &good);
}

#[test]
fn a_forged_high_counter_does_not_move_the_window() {
    let mut hub = hub();
    let good = datagram(&mut edge(&mut hub), "198.18.1.2", 1);
    let mut forged = good.clone();
    // Counter 2^55: far ahead; were the window moved, `good` would be too old.
    forged[MSG + 8..MSG + 16].copy_from_slice(&(1u64 << 55).to_be_bytes());
    refused(&mut hub, &forged, DropReason::BadTag);
    accepted(&mut hub, &good);
}

#[test]
fn a_replayed_datagram_is_refused() {
    let mut hub = hub();
    let good = datagram(&mut edge(&mut hub), "198.18.1.2", 1);
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
fn a_counter_older_than_the_window_is_refused() {
    let mut hub = hub();
    let mut e = edge(&mut hub);
    // The edge's lane 0 counts from 0 under the session: its 10,000th message is past
    // the window (8192) of its first.
    let sent: Vec<Vec<u8>> = (0..=10_000)
        .map(|n| datagram(&mut e, "198.18.1.2", n))
        .collect();
    let (late, inside, ahead) = (&sent[0], &sent[2000], &sent[10_000]);
    assert_eq!(
        [late, inside, ahead].map(|d| header(d).counter),
        [0, 2000, 10_000]
    );
    accepted(&mut hub, ahead);
    refused(&mut hub, late, DropReason::Replayed);
    // Within the window and never seen: still accepted.
    accepted(&mut hub, inside);
}

#[test]
fn a_wrong_receiver_index_is_refused() {
    let mut hub = hub();
    // Everything on the first link, which edge2 has too.
    let mut e = edge_with(
        &mut hub,
        |t| t.replace("weight = 2", "weight = 0"),
        EDGE_PRIVATE,
    );
    let mut e2 = second_edge(&mut hub);
    let (ours, theirs) = (e.session(), e2.session());
    assert_ne!(ours.remote_index, theirs.remote_index);
    let good = datagram(&mut e, "198.18.1.2", 1);
    // An index the hub never gave out.
    let mut forged = good.clone();
    let unknown = ours.remote_index ^ theirs.remote_index ^ 0x5a5a_5a5a;
    forged[MSG + 4..MSG + 8].copy_from_slice(&unknown.to_be_bytes());
    refused(&mut hub, &forged, DropReason::UnknownSession);
    // edge1's datagram addressed to edge2's session: opened with edge2's key, it fails,
    // rewritten in place or resealed with edge1's own key.
    let mut forged = good.clone();
    forged[MSG + 4..MSG + 8].copy_from_slice(&theirs.remote_index.to_be_bytes());
    refused(&mut hub, &forged, DropReason::BadTag);
    let forged = forge(&good, &ours.send, &ours.send, |h, _| {
        h.receiver = theirs.remote_index
    });
    refused(&mut hub, &forged, DropReason::BadTag);
    // Each edge's own datagrams still go through.
    accepted(&mut hub, &good);
    accepted(&mut hub, &datagram(&mut e2, "198.18.2.2", 1));
}

#[test]
fn a_version_1_message_is_refused_as_old() {
    let mut hub = hub();
    let good = datagram(&mut edge(&mut hub), "198.18.1.2", 1);
    // A v1 data header: version 1, data, link 0, lane 0, sender id 1, sequence 2^40.
    let mut v1 = good.clone();
    v1[MSG..MSG + 8].copy_from_slice(&[1, 1, 0, 0, 0, 0, 0, 1]);
    v1[MSG + 8..MSG + 16].copy_from_slice(&(1u64 << 40).to_be_bytes());
    refused(&mut hub, &v1, DropReason::OldVersion);
    // Only the version changed: still refused.
    let mut v1 = good.clone();
    v1[MSG] = 1;
    refused(&mut hub, &v1, DropReason::OldVersion);
    accepted(&mut hub, &good);
}

#[test]
fn a_wrong_link_id_or_lane_is_refused() {
    let mut hub = hub();
    let mut e = edge(&mut hub);
    let good = datagram(&mut e, "198.18.1.2", 1);
    // A link the peer does not have.
    let mut forged = good.clone();
    forged[MSG + 2] = 5;
    refused(&mut hub, &forged, DropReason::UnknownLink);
    // The other existing link, or another lane: the header is authenticated, so the
    // tag fails.
    let mut forged = good.clone();
    forged[MSG + 2] ^= 1;
    refused(&mut hub, &forged, DropReason::BadTag);
    let mut forged = good.clone();
    forged[MSG + 3] = 1;
    refused(&mut hub, &forged, DropReason::BadTag);
    // A lane beyond those with a replay window, even sealed by the session itself: refused
    // from the header, before the AEAD.
    let mut forged = good.clone();
    forged[MSG + 3] = 200;
    refused(&mut hub, &forged, DropReason::BadTunnelHeader);
    let live = e.session();
    let forged = forge(&good, &live.send, &live.send, |h, _| h.lane = 200);
    refused(&mut hub, &forged, DropReason::BadTunnelHeader);
    accepted(&mut hub, &good);
}

#[test]
fn an_inner_source_outside_the_allowed_prefixes_is_dropped() {
    let mut hub = hub();
    // An edge whose bond takes 198.18.0.0/16 sends a LAN packet from 198.18.2.2, which
    // belongs to edge2: authentic, but not edge1's to send.
    let mut wide = edge_with(
        &mut hub,
        |t| t.replace("198.18.1.0/24", "198.18.0.0/16"),
        EDGE_PRIVATE,
    );
    let spoofed = datagram(&mut wide, "198.18.2.2", 1);
    refused(&mut hub, &spoofed, DropReason::Spoofed);
    let outside = datagram(&mut wide, "198.18.77.1", 2);
    refused(&mut hub, &outside, DropReason::Spoofed);
    // edge2 itself may send from there (its own session and prefix).
    let mut e2 = second_edge(&mut hub);
    let own = datagram(&mut e2, "198.18.2.2", 1);
    let before = state(&mut hub, 3 * S);
    assert_eq!(run(hub.p(), 0, &own).0, Verdict::Tx(0));
    assert_eq!(state(&mut hub, 3 * S).nat_created, before.nat_created + 1);
}
