//! The tunnel handshake through the stages, frame by frame, in virtual time: an edge and
//! a hub with no session make one, carry data under it, rekey, follow an edge behind NAT,
//! and refuse what does not authenticate; a hub under load asks for the cookie round trip
//! and holds each source to its rate.

use super::tests::{
    addr, assert_ipv4_valid, edge_resolved, hub_resolved, run, session, udp_frame, EDGE_LAN_MAC,
    EDGE_WAN1_MAC, EDGE_WAN2_MAC, GW1_MAC, GW2_MAC, HOST_MAC, HUB_GW_MAC, HUB_MAC, S,
};
use super::Pipeline;
use crate::frame::Verdict;
use crate::session::{KEEP_PREVIOUS_NS, REJECT_AFTER_NS, REKEY_AFTER_NS};
use crate::stats::DropReason;
use crate::tunnel::cookie::{self, COOKIE_REPLY_LEN, TYPE_COOKIE};
use crate::tunnel::handshake::{
    INITIATION_LEN, MAC_LEN, RESPONSE_LEN, TYPE_INITIATION, TYPE_RESPONSE,
};
use crate::tunnel::{Header, MsgType, HEADER_LEN, TAG_LEN};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

const MS: u64 = 1_000_000;

/// The edge's WAN port a hub frame goes to, by its outer destination address.
fn edge_port(frame: &[u8]) -> usize {
    match frame[30..34] {
        [198, 18, 11, 2] => 1,
        [198, 18, 12, 2] => 2,
        _ => panic!("hub sent to {:?}", &frame[30..34]),
    }
}

/// `frame` as it reaches the hub.
fn to_hub(mut frame: Vec<u8>) -> Vec<u8> {
    frame[..6].copy_from_slice(&HUB_MAC);
    frame
}

/// Runs a hub frame through the edge; the edge's answer, if any.
fn at_edge(e: &mut Pipeline, mut frame: Vec<u8>) -> (Verdict, Vec<u8>) {
    let port = edge_port(&frame);
    frame[..6].copy_from_slice(&[EDGE_WAN1_MAC, EDGE_WAN2_MAC][port - 1]);
    run(e, port, &frame)
}

/// The tunnel message of a frame (behind outer IPv4 and UDP).
fn msg(frame: &[u8]) -> &[u8] {
    &frame[42..]
}

/// Rewrites a frame's outer source and destination addresses (checksum fixed).
fn set_addrs(frame: &mut [u8], src: [u8; 4], dst: [u8; 4]) {
    frame[26..30].copy_from_slice(&src);
    frame[30..34].copy_from_slice(&dst);
    frame[24..26].fill(0);
    let c = crate::wire::checksum::checksum(&frame[14..34]);
    frame[24..26].copy_from_slice(&c.to_be_bytes());
}

/// True for a frame holding an initiation.
fn is_initiation(frame: &[u8]) -> bool {
    frame.len() > 43 && frame[23] == 17 && msg(frame)[..2] == [3, TYPE_INITIATION]
}

/// Plays the handshake the edge's worker 0 starts at `now`: initiation, response,
/// keepalive. Returns the three frames.
fn handshake(e: &mut Pipeline, h: &mut Pipeline, now: u64) -> [Vec<u8>; 3] {
    // The gateways are still there (their ARP entries would have aged out).
    neighbours(e, h, now);
    e.begin_batch(now);
    h.begin_batch(now);
    let out: Vec<_> = e.take_out().collect();
    let init = out
        .into_iter()
        .map(|(_, f)| f)
        .rfind(|f| is_initiation(f))
        .expect("an initiation");
    let (v, response) = run(h, 0, &to_hub(init.clone()));
    let why: Vec<_> = DropReason::ALL
        .iter()
        .filter(|r| h.stats().drops_of(**r) > 0)
        .collect();
    assert_eq!(v, Verdict::Tx(0), "answered {why:?}");
    // Each message arrives in a later batch than the one that answered the last.
    let (v, keepalive) = at_edge(e, response.clone());
    assert!(matches!(v, Verdict::Tx(1 | 2)), "{v:?}");
    h.begin_batch(now);
    assert_eq!(run(h, 0, &to_hub(keepalive.clone())).0, Verdict::Drop);
    assert_eq!(h.stats().drops_of(DropReason::UnknownSession), 0);
    e.begin_batch(now);
    h.begin_batch(now);
    [init, response, keepalive]
}

/// Edge and hub know their gateways and the LAN host at `now`.
fn neighbours(e: &Pipeline, h: &Pipeline, now: u64) {
    let n = &e.shared().neighbors;
    n.learn(1, addr("198.18.11.1"), GW1_MAC, now);
    n.learn(2, addr("198.18.12.1"), GW2_MAC, now);
    n.learn(0, addr("198.18.1.2"), HOST_MAC, now);
    h.shared()
        .neighbors
        .learn(0, addr("203.0.113.1"), HUB_GW_MAC, now);
}

/// Asserts that none of `pipelines` dropped anything for one of `reasons`.
fn no_drops<'p>(pipelines: impl IntoIterator<Item = &'p Pipeline>, reasons: &[DropReason]) {
    for p in pipelines {
        for &why in reasons {
            assert_eq!(p.stats().drops_of(why), 0, "{why:?}");
        }
    }
}

/// Sends one LAN datagram through edge and hub; true when it reached the internet.
fn upstream(e: &mut Pipeline, h: &mut Pipeline, n: u8) -> bool {
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, &[n]);
    let (v, wire) = run(e, 0, &f);
    matches!(v, Verdict::Tx(1 | 2)) && run(h, 0, &to_hub(wire)).0 == Verdict::Tx(0)
}

/// Sends one datagram from the internet back to the LAN host; true when it got there.
fn downstream(e: &mut Pipeline, h: &mut Pipeline, n: u8) -> bool {
    let f = udp_frame(HUB_MAC, "203.0.113.130", "198.18.1.2", 64, &[n]);
    let (v, wire) = run(h, 0, &f);
    v == Verdict::Tx(0) && at_edge(e, wire).0 == Verdict::Tx(0)
}

#[test]
fn edge_and_hub_make_a_session_in_one_round_trip_and_carry_data_both_ways() {
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    // Before: nothing to send with.
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"early");
    assert_eq!(run(&mut e, 0, &f).0, Verdict::Drop);
    assert_eq!(e.stats().drops_of(DropReason::NoSession), 1);
    let [init, response, keepalive] = handshake(&mut e, &mut h, S + MS);
    // The initiation: from isp1's address and the tunnel port to the hub's.
    let ip = assert_ipv4_valid(&init);
    assert_eq!(
        (ip.source, ip.destination),
        ([198, 18, 11, 2], [203, 0, 113, 2])
    );
    assert_eq!(&init[34..38], &[0x1c, 0xfc, 0x1c, 0xfc]);
    assert_eq!(msg(&init).len(), INITIATION_LEN);
    assert_eq!(&msg(&init)[..4], &[3, TYPE_INITIATION, 0, 0]);
    // The response goes back where the initiation came from, naming both indices.
    let ip = assert_ipv4_valid(&response);
    assert_eq!(
        (ip.source, ip.destination),
        ([203, 0, 113, 2], [198, 18, 11, 2])
    );
    assert_eq!(msg(&response).len(), RESPONSE_LEN);
    assert_eq!(&msg(&response)[..4], &[3, TYPE_RESPONSE, 0, 0]);
    assert_eq!(&msg(&response)[8..12], &msg(&init)[4..8]);
    // The edge confirms with an empty keepalive under the new session.
    let (ours, theirs) = (session(&e), session(&h));
    assert_eq!(msg(&keepalive).len(), HEADER_LEN + TAG_LEN);
    let hdr = Header::parse(msg(&keepalive)).unwrap();
    assert_eq!(
        (hdr.msg_type, hdr.receiver, hdr.counter),
        (MsgType::Keepalive, theirs.local_index, 0)
    );
    assert_eq!(ours.remote_index, theirs.local_index);
    assert_eq!(theirs.remote_index, ours.local_index);
    assert_eq!(ours.send.cipher(), theirs.send.cipher());
    // Data both ways.
    for n in 0..10 {
        assert!(upstream(&mut e, &mut h, n));
        assert!(downstream(&mut e, &mut h, n));
    }
    no_drops(
        [&e, &h],
        &[
            DropReason::BadHandshake,
            DropReason::BadTag,
            DropReason::UnknownSession,
        ],
    );
}

#[test]
fn an_unanswered_initiation_is_sent_again_after_a_second_on_the_other_link() {
    let (mut e, _h) = (edge_resolved(), hub_resolved());
    let initiations = |e: &mut Pipeline, now| {
        e.begin_batch(now);
        e.take_out()
            .filter(|(_, f)| is_initiation(f))
            .map(|(port, _)| port)
            .collect::<Vec<_>>()
    };
    assert_eq!(initiations(&mut e, S + MS), [1]);
    assert_eq!(initiations(&mut e, S + 500 * MS), Vec::<usize>::new());
    assert_eq!(initiations(&mut e, 2 * S + MS), [2]);
    assert_eq!(
        initiations(&mut e, 3 * S),
        Vec::<usize>::new(),
        "then after 2 s"
    );
    assert_eq!(initiations(&mut e, 4 * S + MS), [1]);
}

#[test]
fn forged_and_stray_handshake_messages_are_refused_and_change_nothing() {
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    e.begin_batch(S + MS);
    let init = e
        .take_out()
        .map(|(_, f)| f)
        .find(|f| is_initiation(f))
        .unwrap();
    // A flipped bit of the initiation (up to mac2, which the hub looks at only under
    // load): refused before the hub keeps anything.
    for at in [
        42 + 4,
        42 + 20,
        42 + 60,
        42 + INITIATION_LEN - 20,
        42 + INITIATION_LEN - MAC_LEN - 1,
    ] {
        let mut forged = to_hub(init.clone());
        forged[at] ^= 0x10;
        assert_eq!(run(&mut h, 0, &forged).0, Verdict::Drop);
    }
    assert_eq!(h.stats().drops_of(DropReason::BadHandshake), 5);
    assert!(h.snapshot().peers[0].keys.receiving().is_empty());
    // An initiation to the edge: refused by role.
    let mut stray = init.clone();
    set_addrs(&mut stray, [203, 0, 113, 2], [198, 18, 11, 2]);
    assert_eq!(at_edge(&mut e, stray).0, Verdict::Drop);
    assert_eq!(e.stats().drops_of(DropReason::BadHandshake), 1);
    // The real one is answered. A response with a flipped bit, or of another initiation,
    // is refused before the Noise message: the handshake still waits for the real one.
    let (_, response) = run(&mut h, 0, &to_hub(init));
    // The hub's answered session opens, but sends nothing until the edge confirms.
    assert!(h.snapshot().peers[0].keys.sending().is_none());
    let f = udp_frame(HUB_MAC, "203.0.113.130", "198.18.1.2", 64, b"x");
    assert_eq!(run(&mut h, 0, &f).0, Verdict::Drop);
    assert_eq!(h.stats().drops_of(DropReason::NoSession), 1);
    for at in [
        42 + 9,
        42 + 20,
        42 + RESPONSE_LEN - 20,
        42 + RESPONSE_LEN - 1,
    ] {
        let mut forged = response.clone();
        forged[at] ^= 1;
        assert_eq!(at_edge(&mut e, forged).0, Verdict::Drop);
    }
    assert_eq!(e.stats().drops_of(DropReason::BadHandshake), 5);
    assert!(e.snapshot().peers[0].keys.sending().is_none());
    let (v, keepalive) = at_edge(&mut e, response);
    assert!(
        matches!(v, Verdict::Tx(_)),
        "the real response still makes the session"
    );
    h.begin_batch(S + MS);
    assert_eq!(run(&mut h, 0, &to_hub(keepalive)).0, Verdict::Drop);
    e.begin_batch(S + MS);
    h.begin_batch(S + MS);
    assert!(upstream(&mut e, &mut h, 1) && downstream(&mut e, &mut h, 1));
}

#[test]
fn a_replayed_initiation_replaces_nothing() {
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    let [init, ..] = handshake(&mut e, &mut h, S + MS);
    let before = session(&h);
    // An attacker replays the initiation: answered (mac1 and the Noise message hold), but
    // the hub keeps sending with the session the edge confirmed.
    let (v, _) = run(&mut h, 0, &to_hub(init));
    assert_eq!(v, Verdict::Tx(0));
    h.begin_batch(S + 2 * MS);
    assert!(Arc::ptr_eq(&session(&h), &before));
    assert!(downstream(&mut e, &mut h, 1) && upstream(&mut e, &mut h, 1));
}

#[test]
fn an_initiation_answered_twice_before_the_edges_first_message_keeps_the_edges_session() {
    // The initiation comes twice (a copy, or a retry's predecessor that took a slower link),
    // and the hub answers both before the edge's keepalive under the first answer arrives.
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    let now = S + MS;
    neighbours(&e, &h, now);
    e.begin_batch(now);
    h.begin_batch(now);
    let init = e
        .take_out()
        .map(|(_, f)| f)
        .collect::<Vec<_>>()
        .into_iter()
        .rfind(|f| is_initiation(f))
        .expect("an initiation");
    let (v, first) = run(&mut h, 0, &to_hub(init.clone()));
    assert_eq!(v, Verdict::Tx(0));
    h.begin_batch(now);
    let (v, second) = run(&mut h, 0, &to_hub(init));
    assert_eq!(v, Verdict::Tx(0));
    // The edge finishes with the first answer; the second finds no handshake under way.
    let (v, keepalive) = at_edge(&mut e, first);
    assert!(matches!(v, Verdict::Tx(1 | 2)), "{v:?}");
    assert_eq!(at_edge(&mut e, second).0, Verdict::Drop);
    h.begin_batch(now);
    assert_eq!(run(&mut h, 0, &to_hub(keepalive)).0, Verdict::Drop);
    assert_eq!(h.stats().drops_of(DropReason::UnknownSession), 0);
    e.begin_batch(now + MS);
    h.begin_batch(now + MS);
    assert!(upstream(&mut e, &mut h, 1) && downstream(&mut e, &mut h, 1));
    no_drops([&e, &h], &[DropReason::UnknownSession, DropReason::BadTag]);
}

#[test]
fn the_edge_rekeys_at_two_minutes_and_the_old_session_opens_ten_seconds_more() {
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    handshake(&mut e, &mut h, S);
    let old = session(&e);
    // A datagram sealed under the old session, delivered late.
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"late");
    let (_, late) = run(&mut e, 0, &f);
    let (_, later) = run(&mut e, 0, &f);
    handshake(&mut e, &mut h, S + REKEY_AFTER_NS);
    let new = session(&e);
    assert!(!Arc::ptr_eq(&old, &new));
    assert_ne!(old.local_index, new.local_index);
    assert!(Arc::ptr_eq(
        &session(&h),
        &h.snapshot().peers[0].keys.sending().unwrap()
    ));
    assert!(upstream(&mut e, &mut h, 1) && downstream(&mut e, &mut h, 1));
    // In flight: still opens within ten seconds, not after.
    assert_eq!(run(&mut h, 0, &to_hub(late)).0, Verdict::Tx(0));
    let t = S + REKEY_AFTER_NS + KEEP_PREVIOUS_NS;
    h.begin_batch(t);
    assert_eq!(run(&mut h, 0, &to_hub(later)).0, Verdict::Drop);
    assert_eq!(h.stats().drops_of(DropReason::UnknownSession), 1);
    const { assert!(REJECT_AFTER_NS > REKEY_AFTER_NS + KEEP_PREVIOUS_NS) };
}

#[test]
fn the_hub_follows_an_edge_behind_nat_with_the_next_message() {
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    handshake(&mut e, &mut h, S);
    // A NAT on isp1 rewrites the edge's address and port; the hub answers to them.
    let rewrite = |frame: &mut Vec<u8>, ip: [u8; 4], port: u16| {
        frame[26..30].copy_from_slice(&ip);
        frame[34..36].copy_from_slice(&port.to_be_bytes());
        frame[24] = 0;
        frame[25] = 0;
        let c = crate::wire::checksum::checksum(&frame[14..34]);
        frame[24..26].copy_from_slice(&c.to_be_bytes());
    };
    let to_hub_via_nat = |e: &mut Pipeline, h: &mut Pipeline, port: u16| {
        for n in 0..3 {
            let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, &[n]);
            let (_, mut wire) = run(e, 0, &f);
            if wire[29] == 2 && wire[28] == 11 {
                rewrite(&mut wire, [203, 0, 113, 77], port);
            }
            assert_eq!(run(h, 0, &to_hub(wire)).0, Verdict::Tx(0));
        }
    };
    to_hub_via_nat(&mut e, &mut h, 40001);
    let isp1 = &h.snapshot().peers[0].links[0];
    assert_eq!(
        isp1.destination(),
        Some("203.0.113.77:40001".parse().unwrap())
    );
    // The hub's next datagrams on isp1 go to the NAT's address and port.
    let dests: Vec<(Vec<u8>, u16)> = (0..6)
        .map(|n| {
            let f = udp_frame(HUB_MAC, "203.0.113.130", "198.18.1.2", 64, &[n]);
            let (_, wire) = run(&mut h, 0, &f);
            (
                wire[30..34].to_vec(),
                u16::from_be_bytes([wire[36], wire[37]]),
            )
        })
        .collect();
    assert!(dests.contains(&(vec![203, 0, 113, 77], 40001)), "{dests:?}");
    assert!(dests.contains(&(vec![198, 18, 12, 2], 7420)), "{dests:?}");
    // The NAT's binding changes: followed with the next message.
    to_hub_via_nat(&mut e, &mut h, 40002);
    assert_eq!(
        h.snapshot().peers[0].links[0].destination(),
        Some("203.0.113.77:40002".parse().unwrap())
    );
    // A forged datagram from elsewhere moves nothing.
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"f");
    let (_, mut wire) = run(&mut e, 0, &f);
    rewrite(&mut wire, [203, 0, 113, 66], 1);
    let last = wire.len() - 1;
    wire[last] ^= 1;
    assert_eq!(run(&mut h, 0, &to_hub(wire)).0, Verdict::Drop);
    assert_eq!(
        h.snapshot().peers[0].links[0].destination(),
        Some("203.0.113.77:40002".parse().unwrap())
    );
}

#[test]
fn a_restarted_edge_is_back_in_one_round_trip_and_repeats_no_nonce() {
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    handshake(&mut e, &mut h, S);
    let mut nonces = std::collections::HashSet::new();
    let mut seen = |wire: &[u8]| {
        // (key, lane, counter): the key is the session's, named by the receiver index.
        let hdr = Header::parse(msg(wire)).unwrap();
        assert!(
            nonces.insert((hdr.receiver, hdr.lane, hdr.counter)),
            "{hdr:?} again"
        );
    };
    for n in 0..5 {
        let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, &[n]);
        let (_, wire) = run(&mut e, 0, &f);
        seen(&wire);
        assert_eq!(run(&mut h, 0, &to_hub(wire)).0, Verdict::Tx(0));
    }
    // The edge restarts: all its state is gone; the hub still has the old session.
    let mut e = edge_resolved();
    let [_, _, keepalive] = handshake(&mut e, &mut h, 2 * S);
    seen(&keepalive);
    for n in 0..5 {
        let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, &[n]);
        let (_, wire) = run(&mut e, 0, &f);
        seen(&wire);
        assert_eq!(run(&mut h, 0, &to_hub(wire)).0, Verdict::Tx(0));
    }
    assert!(downstream(&mut e, &mut h, 9));
}

/// An initiation of another edge with the same keys, as it reaches the hub.
fn some_initiation(now: u64) -> Vec<u8> {
    let mut other = edge_resolved();
    other.begin_batch(now);
    let init = other
        .take_out()
        .map(|(_, f)| f)
        .find(|f| is_initiation(f))
        .unwrap();
    to_hub(init)
}

/// Sends copies of `init` to the hub from the sources 198.51.100.`i`: their answers.
fn flood(
    h: &mut Pipeline,
    init: &[u8],
    sources: std::ops::RangeInclusive<u8>,
) -> Vec<(Verdict, Vec<u8>)> {
    sources
        .map(|i| {
            let mut f = init.to_vec();
            set_addrs(&mut f, [198, 51, 100, i], [203, 0, 113, 2]);
            run(h, 0, &f)
        })
        .collect()
}

/// The local indices of the sessions the hub's peer opens messages with.
fn receiving(p: &Pipeline) -> Vec<u32> {
    p.snapshot().peers[0]
        .keys
        .receiving()
        .iter()
        .map(|l| l.local_index)
        .collect()
}

/// The edge's first initiation, sent at `now` to a hub already under load: the
/// initiation, and the hub's cookie reply.
fn cookie_asked(e: &mut Pipeline, h: &mut Pipeline, now: u64) -> (Vec<u8>, Vec<u8>) {
    h.begin_batch(now);
    flood(h, &some_initiation(now), 1..=25);
    e.begin_batch(now);
    let init = e
        .take_out()
        .map(|(_, f)| f)
        .find(|f| is_initiation(f))
        .unwrap();
    let (v, reply) = run(h, 0, &to_hub(init.clone()));
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(msg(&reply)[..2], [3, TYPE_COOKIE]);
    (init, reply)
}

#[test]
fn a_flood_of_initiations_gets_cookie_replies_and_changes_no_peer() {
    let mut h = hub_resolved();
    let now = S + MS;
    h.begin_batch(now);
    let init = some_initiation(now);
    // Up to twenty a second: answered.
    for (v, f) in flood(&mut h, &init, 1..=20) {
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(msg(&f)[..2], [3, TYPE_RESPONSE]);
    }
    let before = receiving(&h);
    // More: a cookie reply each, back where it came from; nothing decrypted, nothing kept.
    for (i, (v, f)) in (21..=60).zip(flood(&mut h, &init, 21..=60)) {
        assert_eq!(v, Verdict::Tx(0));
        let ip = assert_ipv4_valid(&f);
        assert_eq!(
            (ip.source, ip.destination),
            ([203, 0, 113, 2], [198, 51, 100, i])
        );
        assert_eq!(&f[34..38], &[0x1c, 0xfc, 0x1c, 0xfc]);
        assert_eq!(&f[..6], &init[6..12], "to the neighbour it came from");
        assert_eq!(msg(&f).len(), COOKIE_REPLY_LEN);
        assert_eq!(&msg(&f)[..4], &[3, TYPE_COOKIE, 0, 0]);
        assert_eq!(&msg(&f)[4..8], &msg(&init)[4..8]);
    }
    assert_eq!(h.stats().drops_of(DropReason::CookieReplied), 40);
    assert_eq!(h.stats().drops_of(DropReason::BadHandshake), 0);
    assert_eq!(receiving(&h), before);
    assert!(h.snapshot().peers[0].keys.sending().is_none());
    assert_eq!(h.shared().sessions.guard().tracked(), 60);
    // The next second is still under load (the last one was busy); the one after is not.
    h.begin_batch(2 * S + MS);
    assert_eq!(flood(&mut h, &init, 61..=61)[0].0, Verdict::Tx(0));
    assert_eq!(h.stats().drops_of(DropReason::CookieReplied), 41);
    h.begin_batch(3 * S + MS);
    let (_, f) = &flood(&mut h, &init, 62..=62)[0];
    assert_eq!(msg(f)[1], TYPE_RESPONSE);
}

#[test]
fn the_edge_gets_through_a_loaded_hub_with_one_cookie_round_trip() {
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    let now = S + MS;
    let (init, reply) = cookie_asked(&mut e, &mut h, now);
    assert!(e.snapshot().peers[0].keys.sending().is_none());
    // The edge keeps the cookie and sends the same initiation again at once, with mac2.
    let (v, retry) = at_edge(&mut e, reply);
    assert_eq!(v, Verdict::Tx(1));
    assert!(is_initiation(&retry));
    let covered = INITIATION_LEN - MAC_LEN;
    assert_eq!(msg(&retry)[..covered], msg(&init)[..covered]);
    assert_ne!(msg(&retry)[covered..], [0; MAC_LEN]);
    let from = SocketAddrV4::new(Ipv4Addr::new(198, 18, 11, 2), 7420);
    let c = h.shared().sessions.guard().cookie(now, from);
    cookie::check_mac2(&c, msg(&retry)).unwrap();
    // Still under load, and mac2 holds: answered; the handshake completes.
    h.begin_batch(now);
    let (v, response) = run(&mut h, 0, &to_hub(retry));
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(msg(&response)[..2], [3, TYPE_RESPONSE]);
    e.begin_batch(now);
    let (v, keepalive) = at_edge(&mut e, response);
    assert_eq!(v, Verdict::Tx(1));
    h.begin_batch(now);
    assert_eq!(run(&mut h, 0, &to_hub(keepalive)).0, Verdict::Drop);
    e.begin_batch(now);
    h.begin_batch(now);
    assert!(upstream(&mut e, &mut h, 1) && downstream(&mut e, &mut h, 1));
    assert_eq!(h.stats().drops_of(DropReason::CookieReplied), 6);
    no_drops(
        [&e, &h],
        &[
            DropReason::BadHandshake,
            DropReason::HandshakeRateLimited,
            DropReason::UnknownSession,
        ],
    );
}

#[test]
fn the_edge_puts_mac2_on_its_next_initiations_on_that_link() {
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    let now = S + MS;
    let (_, reply) = cookie_asked(&mut e, &mut h, now);
    // The retry is lost; the timer sends the next ones, on isp2 then isp1 again.
    let _lost = at_edge(&mut e, reply);
    let mut next = |t: u64| {
        e.begin_batch(t);
        let (port, f) = e.take_out().find(|(_, f)| is_initiation(f)).unwrap();
        (port, msg(&f)[INITIATION_LEN - MAC_LEN..].to_vec())
    };
    assert_eq!(
        next(now + S + MS),
        (2, vec![0; MAC_LEN]),
        "no cookie for isp2"
    );
    let (port, mac2) = next(now + 3 * S + 2 * MS);
    assert_eq!(port, 1);
    assert_ne!(mac2, vec![0; MAC_LEN]);
}

#[test]
fn a_source_over_its_rate_is_dropped_and_counted() {
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    let now = S + MS;
    let (_, reply) = cookie_asked(&mut e, &mut h, now);
    let (_, retry) = at_edge(&mut e, reply);
    let retry = to_hub(retry);
    // The source used one of its five tokens (the first initiation, answered with a
    // cookie): four with mac2 are answered.
    for _ in 0..4 {
        let (v, f) = run(&mut h, 0, &retry);
        assert_eq!((v, msg(&f)[1]), (Verdict::Tx(0), TYPE_RESPONSE));
    }
    let before = receiving(&h);
    for _ in 0..5 {
        assert_eq!(run(&mut h, 0, &retry).0, Verdict::Drop);
    }
    assert_eq!(h.stats().drops_of(DropReason::HandshakeRateLimited), 5);
    assert_eq!(
        receiving(&h),
        before,
        "nothing kept for a dropped initiation"
    );
    // Without mac2 it gets a cookie reply, not a response.
    let mut bare = retry.clone();
    bare[42 + INITIATION_LEN - MAC_LEN..].fill(0);
    let (v, f) = run(&mut h, 0, &bare);
    assert_eq!((v, msg(&f)[1]), (Verdict::Tx(0), TYPE_COOKIE));
    // Another source is not held back, and a token comes back every 100 ms.
    let (v, f) = &flood(&mut h, &retry, 200..=200)[0];
    assert_eq!(*v, Verdict::Tx(0));
    assert_eq!(msg(f)[1], TYPE_COOKIE, "its own cookie differs");
    h.begin_batch(now + 100 * MS);
    assert_eq!(run(&mut h, 0, &retry).0, Verdict::Tx(0));
    assert_eq!(run(&mut h, 0, &retry).0, Verdict::Drop);
    assert_eq!(h.stats().drops_of(DropReason::HandshakeRateLimited), 6);
}

#[test]
fn forged_cookie_replies_are_refused_and_change_nothing() {
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    let now = S + MS;
    let (init, reply) = cookie_asked(&mut e, &mut h, now);
    let hub_key = h.snapshot().statics.public();
    let from = SocketAddrV4::new(Ipv4Addr::new(198, 18, 11, 2), 7420);
    let c = h.shared().sessions.guard().cookie(now, from);
    let m = msg(&init).to_vec();
    let with = |body: &[u8]| {
        let mut f = reply.clone();
        f[42..].copy_from_slice(body);
        f
    };
    // Sealed under another responder's key.
    let other_key = cookie::reply(&e.snapshot().statics.public(), &c, &m, [1; 24]).unwrap();
    // Sealed with another mac1 as associated data.
    let mut other_mac1 = m.clone();
    other_mac1[INITIATION_LEN - MAC_LEN - 1] ^= 1;
    let wrong_ad = cookie::reply(&hub_key, &c, &other_mac1, [1; 24]).unwrap();
    // A bit flipped in the sealed cookie, in the nonce, in the receiver index.
    let flipped: Vec<Vec<u8>> = [40, 12, 4]
        .iter()
        .map(|&at| {
            let mut b = msg(&reply).to_vec();
            b[at] ^= 1;
            b
        })
        .collect();
    let forged = [&other_key[..], &wrong_ad[..]]
        .into_iter()
        .chain(flipped.iter().map(|b| &b[..]));
    let pending_before = e.snapshot().peers[0].keys.cookie_for(0, now);
    assert_eq!(pending_before, None);
    for (n, body) in forged.enumerate() {
        assert_eq!(at_edge(&mut e, with(body)).0, Verdict::Drop, "forgery {n}");
    }
    assert_eq!(e.stats().drops_of(DropReason::BadHandshake), 5);
    // Nothing kept, and the handshake still waits: the real reply works.
    assert_eq!(e.snapshot().peers[0].keys.cookie_for(0, now), None);
    assert!(e.snapshot().peers[0].keys.sending().is_none());
    let (v, retry) = at_edge(&mut e, reply.clone());
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(e.snapshot().peers[0].keys.cookie_for(0, now), Some(c));
    // The same reply again (sent twice, or replayed): kept already, nothing sent again.
    assert_eq!(at_edge(&mut e, reply).0, Verdict::Drop);
    assert_eq!(e.stats().drops_of(DropReason::BadHandshake), 5);
    // The retry makes the session.
    h.begin_batch(now);
    let (v, response) = run(&mut h, 0, &to_hub(retry));
    assert_eq!(v, Verdict::Tx(0));
    assert!(matches!(at_edge(&mut e, response).0, Verdict::Tx(1)));
    assert!(e.snapshot().peers[0].keys.sending().is_some());
}

#[test]
fn an_edge_sends_keepalives_on_every_link_as_configured_and_the_hub_takes_them() {
    // The keepalives the edge sends at `now` (their ports), each taken by the hub: opened
    // under the session, consumed, nothing sent back.
    let keepalives = |e: &mut Pipeline, h: &mut Pipeline, now: u64| {
        e.begin_batch(now);
        h.begin_batch(now);
        let sent: Vec<_> = e
            .take_out()
            .filter(|(_, f)| f.len() == 42 + HEADER_LEN + TAG_LEN)
            .collect();
        sent.into_iter()
            .map(|(port, f)| {
                assert_eq!(Header::parse(msg(&f)).unwrap().msg_type, MsgType::Keepalive);
                let local = h.stats().local.get();
                assert_eq!(run(h, 0, &to_hub(f)).0, Verdict::Drop);
                assert_eq!(h.stats().local.get(), local + 1, "taken by the hub");
                port
            })
            .collect::<Vec<_>>()
    };
    let (mut e, mut h) = (edge_resolved(), hub_resolved());
    handshake(&mut e, &mut h, S);
    // The lab edge has probes off and the default keepalive, 25 s.
    assert_eq!(keepalives(&mut e, &mut h, S + 24 * S), Vec::<usize>::new());
    assert_eq!(keepalives(&mut e, &mut h, S + 26 * S), [1, 2]);
    assert_eq!(keepalives(&mut e, &mut h, S + 40 * S), Vec::<usize>::new());
    assert_eq!(keepalives(&mut e, &mut h, S + 52 * S), [1, 2]);
    no_drops(
        [&h],
        &[
            DropReason::BadTag,
            DropReason::UnknownSession,
            DropReason::Replayed,
        ],
    );
    // keepalive = 0: none.
    let mut quiet = edge_resolved();
    super::tests::reload(
        &mut quiet,
        &format!("keepalive = 0\n{}", super::tests::EDGE),
        S,
    );
    let mut quiet_hub = hub_resolved();
    handshake(&mut quiet, &mut quiet_hub, S);
    assert_eq!(
        keepalives(&mut quiet, &mut quiet_hub, S + 100 * S),
        Vec::<usize>::new()
    );
}
