//! The bond sequence and the receiver's reorder windows, frame by frame: what leaves a
//! hub in which order, whatever order the links delivered the edge's packets in.

use super::tests::*;
use super::Pipeline;
use crate::frame::Verdict;
use crate::health::{Change, Figures, Why};
use crate::ids::PeerIdx;
use crate::stats::DropReason;
use crate::tunnel::{split_data, Header, HEADER_LEN};

const MS: u64 = 1_000_000;
/// Where the braid header starts in a tunnel frame (Ethernet, outer IPv4, UDP).
const MSG: usize = 42;

/// The edge's tunnel frames for LAN datagrams carrying 0..n, each with the port (link)
/// it left on.
fn upstream(e: &mut Pipeline, n: u8) -> Vec<(usize, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, &[i]);
            match run(e, 0, &f) {
                (Verdict::Tx(port), mut out) => {
                    out[..6].copy_from_slice(&HUB_MAC);
                    (port, out)
                }
                (v, _) => panic!("{v:?}"),
            }
        })
        .collect()
}

fn header(frame: &[u8]) -> Header {
    Header::parse(&frame[MSG..]).unwrap()
}

/// The bond sequence of tunnel frame `frame`, sealed for the hub `h` (it travels sealed).
fn seq(h: &Pipeline, frame: &[u8]) -> u32 {
    let mut msg = frame[MSG..].to_vec();
    session(h).recv.open(&mut msg).unwrap();
    split_data(&msg[HEADER_LEN..]).unwrap().0
}

/// One round of `p` at `now` over `frames`, as a worker runs it: what leaves, in the
/// order it reaches the wire (frames sent in place, then the copies).
fn round(p: &mut Pipeline, now: u64, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    p.begin_batch(now);
    let mut wire: Vec<Vec<u8>> = p.take_out().map(|(_, f)| f).collect();
    let mut in_place = Vec::new();
    for f in frames {
        if let (Verdict::Tx(0), out) = run(p, 0, f) {
            in_place.push(out);
        }
    }
    wire.extend(in_place);
    wire.extend(p.take_out().map(|(_, f)| f));
    wire
}

/// The datagram numbers (the payload's byte) of frames leaving the hub for the internet.
fn numbers(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.iter().map(|f| f[42]).collect()
}

#[test]
fn packets_spread_over_two_links_carry_the_bond_sequence() {
    let (mut e, h) = pair();
    let sent = upstream(&mut e, 6);
    let seqs: Vec<u32> = sent.iter().map(|(_, f)| seq(&h, f)).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let ports: Vec<usize> = sent.iter().map(|(p, _)| *p).collect();
    assert_eq!(ports.iter().filter(|&&p| p == 1).count(), 2);
    assert_eq!(ports.iter().filter(|&&p| p == 2).count(), 4);
}

#[test]
fn with_one_link_in_use_or_in_flow_mode_packets_are_not_sequenced() {
    let (mut e, h) = pair();
    let one = EDGE.replacen("weight = 1\n", "weight = 1\nstate = \"down\"\n", 1);
    reload(&mut e, &one, S);
    assert!(upstream(&mut e, 4)
        .iter()
        .all(|(p, f)| *p == 2 && seq(&h, f) == 0));
    let flow = EDGE.replacen("mode = \"packet\"", "mode = \"flow\"", 1);
    assert_ne!(flow, EDGE, "the edge config names its bond mode");
    reload(&mut e, &flow, S);
    assert!(upstream(&mut e, 4).iter().all(|(_, f)| seq(&h, f) == 0));
    // Back to two links: the sequence goes on where it stopped.
    reload(&mut e, EDGE, S);
    assert_eq!(seq(&h, &upstream(&mut e, 1)[0].1), 1);
}

#[test]
fn a_slower_link_does_not_reorder_what_leaves_the_hub() {
    let (mut e, mut h) = pair();
    let sent = upstream(&mut e, 30);
    // isp1 is slower: everything isp2 carried arrives first, then isp1's.
    let fast: Vec<_> = sent
        .iter()
        .filter(|(p, _)| *p == 2)
        .map(|(_, f)| f.clone())
        .collect();
    let slow: Vec<_> = sent
        .iter()
        .filter(|(p, _)| *p == 1)
        .map(|(_, f)| f.clone())
        .collect();
    let mut out = round(&mut h, S + MS, &fast);
    out.extend(round(&mut h, S + 2 * MS, &slow));
    assert_eq!(numbers(&out), (0..30).collect::<Vec<u8>>());
    let r = &h.stats().reorder;
    assert_eq!(r.in_order.get() + r.repaired.get(), 30);
    assert!(
        r.repaired.get() >= 19,
        "isp2's packets after the first gap waited"
    );
    assert_eq!((r.late.get(), r.given_up.get()), (0, 0));
    assert_eq!(h.reorder.next_deadline(), None, "nothing held");
}

#[test]
fn packets_of_one_round_that_follow_released_copies_do_not_overtake_them() {
    let (mut e, mut h) = pair();
    let sent: Vec<Vec<u8>> = upstream(&mut e, 6).into_iter().map(|(_, f)| f).collect();
    assert_eq!(numbers(&round(&mut h, S + MS, &sent[..1])), [0]);
    // 2 waits for 1; 1 releases it by copy; 3..5 come in the same round, in turn.
    let order = [2, 1, 3, 4, 5].map(|i| sent[i].clone());
    let out = round(&mut h, S + 2 * MS, &order);
    assert_eq!(numbers(&out), [1, 2, 3, 4, 5]);
}

#[test]
fn a_loss_every_link_went_past_is_given_up_at_once() {
    let (mut e, mut h) = pair();
    let sent: Vec<Vec<u8>> = upstream(&mut e, 10).into_iter().map(|(_, f)| f).collect();
    // Datagram 3 is lost; both links deliver later ones: a link keeps its order, so 3
    // is not coming.
    let arrived: Vec<_> = sent
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, f)| f.clone())
        .collect();
    assert_eq!(
        numbers(&round(&mut h, S + MS, &arrived)),
        [0, 1, 2, 4, 5, 6, 7, 8, 9]
    );
    assert_eq!(h.stats().reorder.given_up.get(), 1);
    assert_eq!(h.reorder.next_deadline(), None);
}

#[test]
fn a_lost_packet_costs_the_wait_and_no_more() {
    let (mut e, mut h) = pair();
    let sent = upstream(&mut e, 10);
    let t0 = S + MS;
    // Datagram 3 (on isp2) is lost, and isp2 falls quiet: only isp1's later ones come,
    // and isp2 has not shown it is past 3. The gap waits.
    assert_eq!(sent[3].0, 2);
    let arrived: Vec<_> = sent
        .iter()
        .enumerate()
        .filter(|&(i, (port, _))| i < 3 || *port == 1)
        .map(|(_, (_, f))| f.clone())
        .collect();
    assert_eq!(numbers(&round(&mut h, t0, &arrived)), [0, 1, 2]);
    // No delays measured yet: the wait is the default, 50 ms from datagram 4's arrival.
    assert_eq!(h.reorder.next_deadline(), Some(t0 + 50 * MS));
    assert_eq!(
        h.next_deadline(),
        Some(t0 + 50 * MS),
        "the worker wakes for it"
    );
    assert_eq!(numbers(&round(&mut h, t0 + 49 * MS, &[])), Vec::<u8>::new());
    let later: Vec<u8> = (4..10).filter(|&i| sent[usize::from(i)].0 == 1).collect();
    assert_eq!(numbers(&round(&mut h, t0 + 50 * MS, &[])), later);
    // The lost one shows up after all: late, sent on, counted.
    assert_eq!(
        numbers(&round(&mut h, t0 + 60 * MS, &[sent[3].1.clone()])),
        [3]
    );
    let r = &h.stats().reorder;
    assert_eq!(r.late.get(), 1);
    assert!(r.given_up.get() >= 1);
}

/// `frame` sent again as redundant traffic sends it: the same bond sequence under
/// another nonce (`counter`), sealed on its own.
fn second_copy(e: &Pipeline, h: &Pipeline, frame: &[u8], counter: u64) -> Vec<u8> {
    let mut copy = frame.to_vec();
    let mut msg = copy[MSG..].to_vec();
    session(h).recv.open(&mut msg).unwrap();
    let mut hdr = Header::parse(&msg).unwrap();
    hdr.counter = counter;
    hdr.emit((&mut msg[..HEADER_LEN]).try_into().unwrap());
    session(e).send.seal(&mut msg).unwrap();
    copy[MSG..].copy_from_slice(&msg);
    copy
}

#[test]
fn a_second_copy_of_a_packet_is_dropped() {
    let (mut e, mut h) = pair();
    let sent: Vec<Vec<u8>> = upstream(&mut e, 4).into_iter().map(|(_, f)| f).collect();
    let copy1 = second_copy(&e, &h, &sent[1], 1000);
    let out = round(&mut h, S + MS, &[sent[0].clone(), copy1, sent[1].clone()]);
    assert_eq!(numbers(&out), [0, 1]);
    assert_eq!(h.stats().drops_of(DropReason::Duplicate), 1);
    // Also while the first copy is held, ahead of its turn.
    let copy3 = second_copy(&e, &h, &sent[3], 1001);
    let out = round(
        &mut h,
        S + 2 * MS,
        &[sent[3].clone(), copy3, sent[2].clone()],
    );
    assert_eq!(numbers(&out), [2, 3]);
    assert_eq!(h.stats().drops_of(DropReason::Duplicate), 2);
}

#[test]
fn a_link_going_down_lets_what_is_held_go_at_once() {
    let (mut e, mut h) = pair();
    let sent: Vec<Vec<u8>> = upstream(&mut e, 6).into_iter().map(|(_, f)| f).collect();
    assert_eq!(numbers(&round(&mut h, S + MS, &sent[..1])), [0]);
    // Datagram 1 went on isp1, which dies; isp2 delivers 2, 3 and 5 (4 was isp1's too).
    let isp2: Vec<_> = [2, 3, 5].map(|i| sent[i].clone()).to_vec();
    assert!(round(&mut h, S + MS, &isp2).is_empty());
    let snap = h.snapshot().clone();
    let link = &snap.peer(PeerIdx(0)).unwrap().links[0];
    let down = Change {
        up: false,
        why: Why::Silent,
    };
    h.shared()
        .board
        .record(&link.health, ("edge1", "isp1"), down, Figures::default());
    assert_eq!(numbers(&round(&mut h, S + 2 * MS, &[])), [2, 3, 5]);
    let r = &h.stats().reorder;
    assert_eq!((r.repaired.get(), r.given_up.get()), (3, 2));
}

#[test]
fn a_restarted_edge_is_followed_from_its_first_packet() {
    let (mut e, mut h) = pair();
    let sent: Vec<Vec<u8>> = upstream(&mut e, 5).into_iter().map(|(_, f)| f).collect();
    assert_eq!(numbers(&round(&mut h, S + MS, &sent)).len(), 5);
    // A new edge process: a new session, and its sequence starts over at 1.
    let mut e2 = edge_resolved();
    connect(&mut e2, &mut h);
    let again: Vec<Vec<u8>> = upstream(&mut e2, 5).into_iter().map(|(_, f)| f).collect();
    assert_eq!(seq(&h, &again[0]), 1);
    assert_eq!(numbers(&round(&mut h, S + 2 * MS, &again)), [0, 1, 2, 3, 4]);
    assert_eq!(h.stats().drops_of(DropReason::Duplicate), 0);
}

/// Workers 0 and 1 of a hub with two workers, in session with the edge `e`.
fn two_worker_hub(e: &mut Pipeline) -> (Pipeline, Pipeline) {
    let hub2 = HUB.replacen("role = \"hub\"\n", "role = \"hub\"\nworkers = 2\n", 1);
    assert_ne!(hub2, HUB);
    let mut h0 = hub_resolved();
    reload(&mut h0, &hub2, S);
    connect(e, &mut h0);
    let h1 = Pipeline::new(
        std::sync::Arc::clone(h0.shared()),
        crate::ids::Lane(1),
        7,
        std::sync::Arc::new(crate::stats::WorkerStats::default()),
    );
    (h0, h1)
}

#[test]
fn a_lane_arriving_at_another_worker_is_ordered_by_its_owner() {
    let mut e = edge_resolved();
    let (mut h0, mut h1) = two_worker_hub(&mut e);
    let sent: Vec<Vec<u8>> = upstream(&mut e, 5).into_iter().map(|(_, f)| f).collect();
    assert!(sent.iter().all(|f| header(f).lane == 0));
    // Worker 1 receives them out of order; lane 0's window is worker 0's.
    h1.begin_batch(S + MS);
    for i in [0, 2, 3, 1, 4] {
        assert_eq!(run(&mut h1, 0, &sent[i]).0, Verdict::Drop);
    }
    let handed: Vec<_> = h1.take_handoffs().collect();
    assert_eq!(handed.len(), 5);
    assert!(handed.iter().all(|(lane, _)| lane.0 == 0));
    h0.begin_batch(S + MS);
    for (_, h) in handed {
        h0.resume(h);
    }
    let out: Vec<Vec<u8>> = h0.take_out().map(|(_, f)| f).collect();
    assert_eq!(numbers(&out), [0, 1, 2, 3, 4]);
    assert_eq!(h1.stats().handed_off.get(), 5);
    assert_eq!(h0.stats().reorder.repaired.get(), 2);
}

/// A worker round as `poll_once` runs it: the handed-over packets first, then its own
/// frames, then what went by copy; what leaves, in the order it reaches the wire.
#[test]
fn a_handed_over_packet_in_its_turn_is_not_overtaken_by_the_owners_next_one() {
    let mut e = edge_resolved();
    let (mut h0, mut h1) = two_worker_hub(&mut e);
    let sent: Vec<Vec<u8>> = upstream(&mut e, 3).into_iter().map(|(_, f)| f).collect();
    // Datagram 0 reaches worker 0, the owner of its lane's window, which starts in step.
    h0.begin_batch(S + MS);
    assert!(matches!(run(&mut h0, 0, &sent[0]).0, Verdict::Tx(_)));
    // Next round: datagram 1 reaches worker 1 (handed to worker 0), datagram 2 worker 0
    // itself; the window holds nothing, so 1 is in its turn when it comes.
    h1.begin_batch(S + 2 * MS);
    assert_eq!(run(&mut h1, 0, &sent[1]).0, Verdict::Drop);
    h0.begin_batch(S + 2 * MS);
    for (_, h) in h1.take_handoffs().collect::<Vec<_>>() {
        h0.resume(h);
    }
    let mut wire = Vec::new();
    if let (Verdict::Tx(_), out) = run(&mut h0, 0, &sent[2]) {
        wire.push(out);
    }
    wire.extend(h0.take_out().map(|(_, f)| f));
    assert_eq!(numbers(&wire), [1, 2]);
}

/// Handed-off packets travel in pooled buffers that come back once sent: after the pools
/// have filled, a long run of handoffs allocates nothing, on either worker.
#[test]
fn handed_off_packets_reuse_buffers() {
    let mut e = edge_resolved();
    let (mut h0, mut h1) = two_worker_hub(&mut e);
    let mut misses_after = Vec::new();
    for k in 0..60u64 {
        let sent: Vec<Vec<u8>> = upstream(&mut e, 64).into_iter().map(|(_, f)| f).collect();
        h1.begin_batch(S + k * MS);
        for f in &sent {
            assert_eq!(run(&mut h1, 0, f).0, Verdict::Drop);
        }
        h0.begin_batch(S + k * MS);
        let mut delivered = Vec::new();
        h1.post_handoffs(|_, h| {
            h0.resume(h);
            true
        });
        h0.send_out(|_, f| {
            delivered.push(f[42]);
            true
        });
        assert_eq!(delivered, (0..64).collect::<Vec<u8>>(), "round {k}");
        misses_after.push(h0.pool_misses() + h1.pool_misses());
    }
    assert_eq!(h1.stats().handed_off.get(), 60 * 64);
    // Worker 0 keeps up to 512 buffers before giving its surplus to the spares.
    let warm = misses_after[20];
    assert!(warm <= 512 + 2 * 64, "{warm} buffers allocated warming up");
    assert_eq!(misses_after[59], warm, "allocated in the steady state");
}

#[test]
fn the_wait_follows_the_spread_of_the_links_delays() {
    let (_, h) = pair();
    let snap = h.snapshot().clone();
    let links = &snap.peer(PeerIdx(0)).unwrap().links;
    // No figures yet: the default.
    assert_eq!(
        super::reorder::wait_for(snap.peer(PeerIdx(0)).unwrap()),
        50 * MS
    );
    // isp2's messages from the hub take 20 ms longer than isp1's (the clocks' offset of
    // 1 s is the same on both); the probes' peer clock gives it.
    for (link, delay) in links.iter().zip([5 * MS, 25 * MS]) {
        let mut m = link.health.lock();
        for k in 0..40 {
            let peer_tx = k * 50 * MS;
            m.on_peer_clock(S + peer_tx + delay, peer_tx, 0);
        }
    }
    let wait = super::reorder::wait_for(snap.peer(PeerIdx(0)).unwrap());
    assert!(
        (22 * MS..23 * MS).contains(&wait),
        "20 ms spread + 2 ms margin: {wait}"
    );
}

#[test]
fn what_a_worker_holds_for_a_peer_is_bounded_and_nothing_is_lost_to_the_bound() {
    use super::{PEER_BYTES, PEER_PACKETS};
    let (mut e, mut h) = pair();
    let n = PEER_PACKETS * 3 / 2 + 300;
    let sent: Vec<(usize, Vec<u8>)> = (0..n)
        .map(|i| {
            let f = udp_frame(
                EDGE_LAN_MAC,
                "198.18.1.2",
                "203.0.113.130",
                64,
                &(i as u32).to_be_bytes(),
            );
            let (v, mut out) = run(&mut e, 0, &f);
            out[..6].copy_from_slice(&HUB_MAC);
            let Verdict::Tx(port) = v else {
                panic!("{v:?}")
            };
            (port, out)
        })
        .collect();
    let mut out = round(&mut h, S + MS, &[sent[0].1.clone()]);
    // Datagram 1 (isp1) is lost and isp1 stalls; all of isp2's arrive and wait.
    assert_eq!(sent[1].0, 1);
    let (isp1, isp2): (Vec<_>, Vec<_>) = sent[2..].iter().cloned().partition(|(p, _)| *p == 1);
    let mut most = (0, 0);
    for chunk in isp2.chunks(64) {
        let frames: Vec<_> = chunk.iter().map(|(_, f)| f.clone()).collect();
        out.extend(round(&mut h, S + 2 * MS, &frames));
        let held = h.reorder.held(PeerIdx(0));
        most = (most.0.max(held.0), most.1.max(held.1));
    }
    assert!(
        most.0 <= PEER_PACKETS && most.1 <= PEER_BYTES,
        "held at most {most:?}"
    );
    assert!(most.0 >= PEER_PACKETS / 2, "it did hold: {most:?}");
    assert!(h.stats().reorder.given_up.get() > 1, "room was made");
    // isp1 comes back with the rest; then every wait runs out.
    let frames: Vec<_> = isp1.iter().map(|(_, f)| f.clone()).collect();
    out.extend(round(&mut h, S + 3 * MS, &frames));
    out.extend(round(&mut h, S + S, &[]));
    let mut got: Vec<u32> = out
        .iter()
        .map(|f| u32::from_be_bytes(f[42..46].try_into().unwrap()))
        .collect();
    got.sort_unstable();
    let want: Vec<u32> = (0..n as u32).filter(|&i| i != 1).collect();
    assert!(
        got == want,
        "every packet left once ({} of {})",
        got.len(),
        want.len()
    );
    assert_eq!(h.reorder.held(PeerIdx(0)), (0, 0));
}

/// An edge and a hub whose links measured one-way delays of 5 and 25 ms (a wait of 22 ms
/// from the links' figures), and the edge's tunnel frames for datagrams 0..n.
fn links_5_and_25_ms_apart(n: u8) -> (Pipeline, Vec<Vec<u8>>) {
    let (mut e, h) = pair();
    let snap = h.snapshot().clone();
    for (link, delay) in snap.peers[0].links.iter().zip([5 * MS, 25 * MS]) {
        let mut m = link.health.lock();
        for k in 0..40 {
            m.on_peer_clock(S + k * 50 * MS + delay, k * 50 * MS, 0);
        }
    }
    let sent = upstream(&mut e, n).into_iter().map(|(_, f)| f).collect();
    (h, sent)
}

#[test]
fn the_wait_grows_to_what_filled_gaps_showed() {
    let (mut h, sent) = links_5_and_25_ms_apart(5);
    let t = 2 * S;
    round(&mut h, t, &sent[..1]);
    round(&mut h, t + MS, &sent[2..3]);
    // The links' figures give 22 ms; datagram 2 waits 20 ms for datagram 1.
    assert_eq!(h.reorder.next_deadline(), Some(t + MS + 22 * MS));
    assert_eq!(numbers(&round(&mut h, t + 21 * MS, &sent[1..2])), [1, 2]);
    // It is counted as held 20 ms (the bucket up to 20.25 ms).
    assert_eq!(h.stats().reorder.held_us(), [[20_250, 1]]);
    // Datagram 3 is lost: 4 waits a quarter more than 20 ms and 2 ms (the fade aside).
    round(&mut h, t + 60 * MS, &sent[4..5]);
    let wait = h.reorder.next_deadline().unwrap() - (t + 60 * MS);
    assert!((26 * MS..=27 * MS).contains(&wait), "{wait}");
}

#[test]
fn what_filled_gaps_taught_fades_while_the_peer_is_quiet() {
    let (mut h, sent) = links_5_and_25_ms_apart(5);
    let t = 2 * S;
    round(&mut h, t, &sent[..1]);
    round(&mut h, t + MS, &sent[2..3]);
    assert_eq!(numbers(&round(&mut h, t + 21 * MS, &sent[1..2])), [1, 2]);
    // Three quiet seconds (the filled gap's 27 ms faded to under a tenth), then datagram
    // 3 is lost: 4 waits what the links' figures say, not what the last load taught.
    let later = t + 3 * S;
    round(&mut h, later, &sent[4..5]);
    let wait = h.reorder.next_deadline().unwrap() - later;
    assert_eq!(wait, 22 * MS);
}

#[test]
fn a_redundant_packet_goes_on_every_link_and_leaves_the_hub_once() {
    let rule = "\n[[bond.redundant]]\nprotocol = \"udp\"\nports = \"3478-3481\"\n";
    for mode in ["packet", "flow"] {
        let (mut e, mut h) = pair();
        let text = EDGE.replacen("mode = \"packet\"", &format!("mode = \"{mode}\""), 1) + rule;
        reload(&mut e, &text, S);
        let voice = |n: u8| {
            let mut f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, &[n]);
            f[36..38].copy_from_slice(&3478u16.to_be_bytes());
            f
        };
        let mut wire = Vec::new();
        for n in 0..3 {
            let (v, f) = run(&mut e, 0, &voice(n));
            wire.push((v, f));
            wire.extend(e.take_out().map(|(port, f)| (Verdict::Tx(port), f)));
        }
        let ports: Vec<_> = wire.iter().map(|(v, _)| *v).collect();
        assert_eq!(ports.len(), 6, "{mode}: two copies of each");
        for pair in wire.chunks(2) {
            let (a, b) = (header(&pair[0].1), header(&pair[1].1));
            assert_eq!(
                seq(&h, &pair[0].1),
                seq(&h, &pair[1].1),
                "{mode}: one bond sequence"
            );
            assert_ne!(a.counter, b.counter, "{mode}: each sealed on its own");
            assert_ne!(pair[0].0, pair[1].0, "{mode}: on two links");
        }
        // Other traffic goes on one link.
        upstream(&mut e, 1);
        assert_eq!(e.take_out().count(), 0);
        let frames: Vec<Vec<u8>> = wire
            .into_iter()
            .map(|(_, mut f)| {
                f[..6].copy_from_slice(&HUB_MAC);
                f
            })
            .collect();
        assert_eq!(
            numbers(&round(&mut h, S + MS, &frames)),
            [0, 1, 2],
            "{mode}"
        );
        assert_eq!(h.stats().drops_of(DropReason::Duplicate), 3, "{mode}");
    }
}
