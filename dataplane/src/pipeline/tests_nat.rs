//! Masquerade through the pipeline: a hub that translates its edges' traffic to
//! its public address, with sessions owned per worker and packets handed over.

use super::tests::{
    addr, assert_ipv4_valid, edge_resolved, run, udp_frame, EDGE_LAN_MAC, EDGE_WAN1_MAC,
    EDGE_WAN2_MAC, HOST_MAC, HUB_GW_MAC, HUB_MAC, S,
};
use super::{Pipeline, Shared};
use crate::frame::{Frame, Verdict, HEADROOM};
use crate::ids::Lane;
use crate::snapshot::{Secrets, Snapshot};
use crate::stats::{DropReason, WorkerStats};
use crate::wire::{checksum, icmp, ipv4};
use braid_control::config::Config;
use std::sync::Arc;

const MASQ_HUB: &str = braid_testkit::HUB_MASQUERADE;

/// `workers` hub pipelines (lanes 0..workers) sharing one daemon state, with a session
/// with the edge `e`.
fn nat_hubs(e: &mut Pipeline, extra: &str, workers: usize) -> Vec<Pipeline> {
    let text = format!("workers = {workers}\n{MASQ_HUB}{extra}");
    let cfg: Config = toml::from_str(&text).unwrap();
    let snap = Snapshot::build(&cfg, &[HUB_MAC], &Secrets::of_lab(&cfg), 1).unwrap();
    let shared = Arc::new(Shared::new(snap, 7));
    shared
        .neighbors
        .learn(0, addr("203.0.113.1"), HUB_GW_MAC, S);
    e.shared.pair_with(&shared, S).unwrap();
    e.begin_batch(S);
    e.take_out().for_each(drop);
    (0..workers)
        .map(|lane| {
            let mut p = Pipeline::new(
                Arc::clone(&shared),
                Lane(lane as u8),
                7,
                Arc::new(WorkerStats::default()),
            );
            p.begin_batch(S);
            p
        })
        .collect()
}

/// Resumes every packet a hub handed off on the worker it was handed to, as the
/// workers' mailboxes do.
fn pass_handoffs(hubs: &mut [Pipeline]) {
    let handed: Vec<_> = hubs
        .iter_mut()
        .flat_map(|h| h.take_handoffs().collect::<Vec<_>>())
        .collect();
    for (lane, h) in handed {
        hubs[lane.index()].resume(h);
    }
}

/// The datagram a LAN host's packet becomes on the hub's WAN (through the edge).
fn from_edge(e: &mut Pipeline, f: &[u8]) -> Vec<u8> {
    let (v, mut wire) = run(e, 0, f);
    assert!(matches!(v, Verdict::Tx(1 | 2)), "{v:?}");
    wire[..6].copy_from_slice(&HUB_MAC);
    wire
}

/// Opens a tunnel frame the hub sent towards the edge, as the edge would.
fn to_lan(e: &mut Pipeline, mut wire: Vec<u8>) -> Vec<u8> {
    let port = if wire[33] == 11 { 1 } else { 2 };
    wire[..6].copy_from_slice(if port == 1 {
        &EDGE_WAN1_MAC
    } else {
        &EDGE_WAN2_MAC
    });
    let (v, out) = run(e, port, &wire);
    let why: Vec<_> = DropReason::ALL
        .iter()
        .filter(|r| e.stats().drops_of(**r) > 0)
        .collect();
    assert_eq!(v, Verdict::Tx(0), "delivered to the LAN {why:?}");
    assert_eq!(&out[..6], &HOST_MAC);
    out
}

fn udp_ok(f: &[u8]) -> bool {
    let ip = ipv4::Ipv4::parse(&f[14..]).unwrap();
    let l4 = ip.payload();
    checksum::finish(checksum::add(
        checksum::pseudo_header(ip.src(), ip.dst(), ip.protocol(), l4.len() as u16),
        l4,
    )) == 0
}

#[test]
fn udp_is_masqueraded_out_and_back() {
    let mut e = edge_resolved();
    let mut h = nat_hubs(&mut e, "", 1).remove(0);
    let out = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"query");
    let (v, sent) = run(&mut h, 0, &from_edge(&mut e, &out));
    assert_eq!(v, Verdict::Tx(0));
    let ip = assert_ipv4_valid(&sent);
    assert_eq!(ip.source, [203, 0, 113, 2], "the hub's public address");
    assert_eq!(
        &sent[34..36],
        &5555u16.to_be_bytes(),
        "free source port kept"
    );
    assert!(udp_ok(&sent));
    assert_eq!(
        h.stats().nat.created.get(),
        0,
        "published at the next batch"
    );
    h.begin_batch(2 * S);
    assert_eq!(h.stats().nat.created.get(), 1);
    assert_eq!(h.stats().nat.sessions.get(), 1);
    // The internet host answers the public address; it goes back to the LAN host.
    let reply = udp_frame(HUB_MAC, "203.0.113.130", "203.0.113.2", 63, b"answer");
    let mut reply = reply;
    reply[34..38].copy_from_slice(&[0, 9, 0x15, 0xb3]); // 9 -> 5555
    let c = checksum::finish(checksum::add(
        checksum::pseudo_header(addr("203.0.113.130"), addr("203.0.113.2"), 17, 14),
        &{
            let mut u = reply[34..].to_vec();
            u[6] = 0;
            u[7] = 0;
            u
        },
    ));
    reply[40..42].copy_from_slice(&c.to_be_bytes());
    let (v, tunnel) = run(&mut h, 0, &reply);
    assert_eq!(v, Verdict::Tx(0));
    let lan = to_lan(&mut e, tunnel);
    let ip = assert_ipv4_valid(&lan);
    assert_eq!(ip.destination, [198, 18, 1, 2]);
    assert_eq!(&lan[36..38], &5555u16.to_be_bytes());
    assert!(udp_ok(&lan));
    assert_eq!(&lan[42..], b"answer");
}

#[test]
fn unsolicited_and_tunnel_and_echo_traffic_to_the_hub() {
    let mut e = edge_resolved();
    let mut h = nat_hubs(&mut e, "", 1).remove(0);
    // No session: dropped and counted.
    let stray = udp_frame(HUB_MAC, "203.0.113.130", "203.0.113.2", 63, b"scan");
    assert_eq!(run(&mut h, 0, &stray).0, Verdict::Drop);
    assert_eq!(h.stats().drops_of(DropReason::LocalUnsupported), 1);
    // Tunnel datagrams still reach the tunnel on the shared address.
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"x");
    assert_eq!(run(&mut h, 0, &from_edge(&mut e, &f)).0, Verdict::Tx(0));
    // Pings to the hub are answered by the hub.
    let mut ping = udp_frame(HUB_MAC, "203.0.113.130", "203.0.113.2", 64, b"echo");
    ping[23] = ipv4::PROTO_ICMP;
    ping[24] = 0;
    ping[25] = 0;
    let c = checksum::checksum(&ping[14..34]);
    ping[24..26].copy_from_slice(&c.to_be_bytes());
    ping[34..38].copy_from_slice(&[icmp::ECHO_REQUEST, 0, 0, 0]);
    let c = checksum::checksum(&ping[34..]);
    ping[36..38].copy_from_slice(&c.to_be_bytes());
    let (v, pong) = run(&mut h, 0, &ping);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(pong[34], icmp::ECHO_REPLY);
}

#[test]
fn replies_reaching_another_worker_are_handed_to_the_owner() {
    let mut e = edge_resolved();
    let mut hubs = nat_hubs(&mut e, "", 2);
    // Find which worker owns the inside endpoint 198.18.1.2:5555/udp.
    let range = crate::nat::PortRange {
        lo: 1024,
        hi: 65535,
    };
    let owner =
        crate::nat::owner_of_inside(crate::nat::Proto::Udp, addr("198.18.1.2"), 5555, range, 2);
    let other = 1 - owner;
    let out = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"q");
    // It arrives on the other worker: handed over, sent by the owner.
    assert_eq!(
        run(&mut hubs[other], 0, &from_edge(&mut e, &out)).0,
        Verdict::Drop
    );
    assert_eq!(hubs[other].stats().handed_off.get(), 1);
    pass_handoffs(&mut hubs);
    let sent: Vec<_> = hubs[owner].take_out().collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 0);
    assert_eq!(&sent[0].1[26..30], &[203, 0, 113, 2]);
    // The reply lands on the other worker too, and comes back through the owner.
    let mut reply = udp_frame(HUB_MAC, "203.0.113.130", "203.0.113.2", 63, b"r");
    reply[36..38].copy_from_slice(&sent[0].1[34..36]);
    reply[40] = 0;
    reply[41] = 0; // no UDP checksum
    assert_eq!(run(&mut hubs[other], 0, &reply).0, Verdict::Drop);
    pass_handoffs(&mut hubs);
    let back: Vec<_> = hubs[owner].take_out().collect();
    assert_eq!(back.len(), 1);
    let lan = to_lan(&mut e, back[0].1.clone());
    assert_eq!(&lan[30..34], &[198, 18, 1, 2]);
    assert_eq!(&lan[40..42], &[0, 0], "a zero UDP checksum stays zero");
}

#[test]
fn icmp_errors_from_the_internet_reach_the_inside_host() {
    let mut e = edge_resolved();
    let mut h = nat_hubs(&mut e, "", 1).remove(0);
    let out = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"probe");
    let (_, sent) = run(&mut h, 0, &from_edge(&mut e, &out));
    // A router on the way answers "time exceeded", quoting the translated packet.
    let quote = &sent[14..];
    let mut err = vec![0u8; 14 + icmp::ERROR_HEAD_LEN];
    err[..6].copy_from_slice(&HUB_MAC);
    err[6..12].copy_from_slice(&HUB_GW_MAC);
    err[12..14].copy_from_slice(&[0x08, 0x00]);
    icmp::ErrorRepr {
        src: addr("203.0.113.1"),
        dst: addr("203.0.113.2"),
        icmp_type: icmp::TIME_EXCEEDED,
        code: 0,
        rest: 0,
    }
    .emit((&mut err[14..]).try_into().unwrap(), quote);
    err.extend_from_slice(quote);
    let (v, tunnel) = run(&mut h, 0, &err);
    assert_eq!(v, Verdict::Tx(0));
    let lan = to_lan(&mut e, tunnel);
    let ip = assert_ipv4_valid(&lan);
    assert_eq!(ip.destination, [198, 18, 1, 2]);
    assert_eq!(lan[34], icmp::TIME_EXCEEDED);
    assert_eq!(checksum::checksum(&lan[34..]), 0, "ICMP checksum");
    let inner = ipv4::Ipv4::parse(&lan[42..]).unwrap();
    assert_eq!(
        inner.src(),
        addr("198.18.1.2"),
        "the quote shows the inside source"
    );
    assert!(inner.checksum_ok());
}

#[test]
fn hairpin_is_dropped_by_default() {
    let mut e = edge_resolved();
    let mut h = nat_hubs(&mut e, "", 1).remove(0);
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.2", 64, b"to myself");
    assert_eq!(run(&mut h, 0, &from_edge(&mut e, &f)).0, Verdict::Drop);
    assert_eq!(h.stats().drops_of(DropReason::NatHairpin), 1);
}

/// Translated hairpin: one LAN host reaches another's mapping through the hub's address; the
/// packet goes back into the bond it came out of (translated, so not a loop) to the other host.
#[test]
fn hairpin_translated_returns_into_the_same_bond() {
    let mut e = edge_resolved();
    let mut h = nat_hubs(&mut e, "hairpin = \"translate\"\n", 1).remove(0);
    e.shared
        .neighbors
        .learn(0, addr("198.18.1.3"), [2, 0, 0, 0, 0, 0x13], S);
    e.begin_batch(S);
    // 198.18.1.3 opens a mapping to the internet.
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.3", "203.0.113.130", 64, b"out");
    let (v, out) = run(&mut h, 0, &from_edge(&mut e, &f));
    assert_eq!(v, Verdict::Tx(0));
    let port = u16::from_be_bytes([out[34], out[35]]);
    // 198.18.1.2 sends to that mapping.
    let mut f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.2", 64, b"hairpin");
    f[36..38].copy_from_slice(&port.to_be_bytes());
    f[40..42].copy_from_slice(&[0, 0]); // no UDP checksum
    let (v, back) = run(&mut h, 0, &from_edge(&mut e, &f));
    assert_eq!(v, Verdict::Tx(0), "into the bond again");
    assert_eq!(h.stats().drops_of(DropReason::BondLoop), 0);
    let port = if back[33] == 11 { 1 } else { 2 };
    let mut wire = back;
    wire[..6].copy_from_slice(if port == 1 {
        &EDGE_WAN1_MAC
    } else {
        &EDGE_WAN2_MAC
    });
    let (v, lan) = run(&mut e, port, &wire);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&lan[30..34], &[198, 18, 1, 3]);
    assert_eq!(&lan[26..30], &[203, 0, 113, 2], "from the sender's mapping");
}

#[test]
fn full_table_refuses_new_sessions_and_keeps_old_ones() {
    let mut e = edge_resolved();
    let mut h = nat_hubs(
        &mut e,
        "max_sessions = 1\nmax_per_host = 1\nwhen_full = \"icmp\"\n",
        1,
    )
    .remove(0);
    let first = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"a");
    assert_eq!(run(&mut h, 0, &from_edge(&mut e, &first)).0, Verdict::Tx(0));
    let mut second = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"b");
    second[34..36].copy_from_slice(&6666u16.to_be_bytes());
    second[40] = 0;
    second[41] = 0;
    let (v, back) = run(&mut h, 0, &from_edge(&mut e, &second));
    assert_eq!(v, Verdict::Tx(0), "an ICMP error goes back into the tunnel");
    let lan = to_lan(&mut e, back);
    assert_eq!(
        (lan[34], lan[35]),
        (icmp::DEST_UNREACHABLE, icmp::CODE_ADMIN_PROHIBITED)
    );
    assert_eq!(
        h.stats().drops_of(DropReason::NatHostLimit) + h.stats().drops_of(DropReason::NatTableFull),
        1
    );
    // The existing session still works.
    assert_eq!(run(&mut h, 0, &from_edge(&mut e, &first)).0, Verdict::Tx(0));
}

/// Split routing at the edge: one LAN host's traffic bypasses the bond and leaves
/// by isp1 directly, masqueraded to that link's own address; its replies come back
/// to it, while the tunnel keeps working on the same address.
#[test]
fn edge_bypass_is_masqueraded_to_the_link_address() {
    use super::tests::{EDGE, GW1_MAC};
    let text = EDGE.replace(
        "[[rule]]\nfrom = \"198.18.1.0/24\"",
        "[[rule]]\nfrom = \"198.18.1.50/32\"\ntable = \"isp1\"\n\n[[rule]]\nfrom = \"198.18.1.0/24\"",
    ) + "\n[[route]]\ntable = \"isp1\"\nto = \"0.0.0.0/0\"\nvia = \"198.18.11.1\"\ndev = \"wan1\"\n\n[[masquerade]]\ninterface = \"wan1\"\n";
    let cfg: Config = toml::from_str(&text).unwrap();
    let snap = Snapshot::build(
        &cfg,
        &[EDGE_LAN_MAC, EDGE_WAN1_MAC, EDGE_WAN2_MAC],
        &Secrets::of_lab(&cfg),
        1,
    )
    .unwrap();
    let mut e = Pipeline::new(
        Arc::new(Shared::new(snap, 7)),
        Lane(0),
        7,
        Arc::new(WorkerStats::default()),
    );
    e.shared.neighbors.learn(1, addr("198.18.11.1"), GW1_MAC, S);
    e.shared
        .neighbors
        .learn(2, addr("198.18.12.1"), super::tests::GW2_MAC, S);
    e.shared
        .neighbors
        .learn(0, addr("198.18.1.50"), HOST_MAC, S);
    super::tests::connect(&mut e, &mut super::tests::hub_resolved());
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.50", "203.0.113.130", 64, b"direct");
    let (v, out) = run(&mut e, 0, &f);
    assert_eq!(
        v,
        Verdict::Tx(1),
        "straight out of isp1, not into the tunnel"
    );
    assert_eq!(&out[..6], &GW1_MAC);
    let ip = assert_ipv4_valid(&out);
    assert_eq!(ip.source, [198, 18, 11, 2]);
    assert_eq!(out.len(), f.len(), "not encapsulated");
    assert!(udp_ok(&out));
    // The reply to isp1's address comes back to the host.
    let mut reply = udp_frame(EDGE_WAN1_MAC, "203.0.113.130", "198.18.11.2", 60, b"back");
    reply[34..38].copy_from_slice(&[0, 9, out[34], out[35]]);
    reply[40] = 0;
    reply[41] = 0;
    let (v, lan) = run(&mut e, 1, &reply);
    assert_eq!(v, Verdict::Tx(0));
    let ip = assert_ipv4_valid(&lan);
    assert_eq!(ip.destination, [198, 18, 1, 50]);
    assert_eq!(&lan[36..38], &5555u16.to_be_bytes());
    // Other LAN hosts still go through the bond.
    let g = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"bonded");
    assert!(matches!(run(&mut e, 0, &g).0, Verdict::Tx(1 | 2)));
    assert_eq!(
        e.stats().links[0].tx_packets.get() + e.stats().links[1].tx_packets.get(),
        1
    );
}

/// A UDP frame from `src`:`sport` to `dst`:`dport` (no UDP checksum).
fn udp_between(dst_mac: crate::wire::Mac, src: &str, sport: u16, dst: &str, dport: u16) -> Vec<u8> {
    let mut f = udp_frame(dst_mac, src, dst, 64, b"batch");
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[40..42].copy_from_slice(&[0, 0]);
    f
}

/// Runs `frames` through `p` in one [`Pipeline::process_batch`] on `port`, each in a
/// buffer shaped like [`run`]'s; returns each one's verdict and bytes.
fn run_batch(p: &mut Pipeline, port: usize, frames: &[Vec<u8>]) -> Vec<(Verdict, Vec<u8>)> {
    let mut bufs: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut buf = vec![0u8; 2048];
            buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
            buf
        })
        .collect();
    let mut views: Vec<Frame<'_>> = bufs
        .iter_mut()
        .zip(frames)
        .map(|(b, f)| Frame::at(b, HEADROOM, f.len()))
        .collect();
    let mut verdicts = vec![Verdict::Tx(99); frames.len()];
    p.process_batch(port, &mut views, &mut verdicts);
    verdicts
        .into_iter()
        .zip(&views)
        .map(|(v, f)| (v, f.data().to_vec()))
        .collect()
}

/// What `e`, the edge, makes of a frame its hub sent: the LAN frame for a tunnel
/// datagram to it, else the frame itself.
fn opened(e: &mut Pipeline, (v, f): (Verdict, Vec<u8>)) -> (Verdict, Vec<u8>) {
    let to_edge = v != Verdict::Drop && f[23] == ipv4::PROTO_UDP && f[30..32] == [198, 18];
    (v, if to_edge { to_lan(e, f) } else { f })
}

#[test]
fn a_batch_gives_what_its_frames_give_one_by_one() {
    // Two identical hubs, each with its own edge (their sessions' keys differ, so tunnel
    // frames are compared opened).
    let mut edges = [edge_resolved(), edge_resolved()];
    let mut hubs: Vec<Pipeline> = edges
        .iter_mut()
        .map(|e| nat_hubs(e, "", 1).remove(0))
        .collect();
    // Sessions to answer: eight flows out, one by one on both.
    let mut outside = Vec::new();
    for i in 0..8u16 {
        let f = udp_between(EDGE_LAN_MAC, "198.18.1.2", 6000 + i, "203.0.113.130", 53);
        let [a, b] = [0, 1].map(|k| {
            let wire = from_edge(&mut edges[k], &f);
            run(&mut hubs[k], 0, &wire)
        });
        assert_eq!(a, b);
        assert_eq!(a.0, Verdict::Tx(0));
        outside.push(u16::from_be_bytes([a.1[34], a.1[35]]));
    }
    // The batch: per hub, since tunnel frames are its edge's.
    let batch = |e: &mut Pipeline| -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for i in 0..8u16 {
            // Out through the tunnel: a live flow, and a new one.
            let live = udp_between(EDGE_LAN_MAC, "198.18.1.2", 6000 + i, "203.0.113.130", 53);
            frames.push(from_edge(e, &live));
            let new = udp_between(EDGE_LAN_MAC, "198.18.1.3", 7000 + i, "203.0.113.131", 53);
            frames.push(from_edge(e, &new));
            // In: an answer to a live session (back into the tunnel), and one to a
            // port without a session (dropped).
            let port = outside[usize::from(i)];
            frames.push(udp_between(
                HUB_MAC,
                "203.0.113.130",
                53,
                "203.0.113.2",
                port,
            ));
            frames.push(udp_between(
                HUB_MAC,
                "203.0.113.130",
                53,
                "203.0.113.2",
                40000 + i,
            ));
            // Not NAT: a truncated frame (dropped), and a packet between two internet
            // hosts (routed back out, its source not masqueraded).
            let mut short = udp_between(HUB_MAC, "203.0.113.130", 53, "203.0.113.2", port);
            short.truncate(30);
            frames.push(short);
            frames.push(udp_between(HUB_MAC, "203.0.113.131", 1, "203.0.113.130", 2));
        }
        frames
    };
    let frames: Vec<Vec<Vec<u8>>> = edges.iter_mut().map(batch).collect();
    for h in &mut hubs {
        h.begin_batch(2 * S);
    }
    let one_by_one: Vec<_> = frames[0].iter().map(|f| run(&mut hubs[0], 0, f)).collect();
    let batched = run_batch(&mut hubs[1], 0, &frames[1]);
    assert_eq!(
        hubs[1].parked.len(),
        32,
        "every frame for the NAT was parked"
    );
    assert_eq!(one_by_one.len(), batched.len());
    let mut kinds = std::collections::BTreeMap::new();
    for (i, (a, b)) in one_by_one.into_iter().zip(batched).enumerate() {
        let a = opened(&mut edges[0], a);
        let b = opened(&mut edges[1], b);
        assert_eq!(a, b, "frame {i}");
        *kinds.entry(format!("{:?}", a.0)).or_insert(0) += 1;
    }
    assert_eq!(kinds.get("Drop"), Some(&16), "{kinds:?}");
    assert_eq!(kinds.get("Tx(0)"), Some(&32), "{kinds:?}");
    for h in &mut hubs {
        h.begin_batch(3 * S);
    }
    let [a, b] = [0, 1].map(|k| {
        let s = hubs[k].stats();
        let drops: Vec<u64> = DropReason::ALL.iter().map(|r| s.drops_of(*r)).collect();
        let n = &s.nat;
        (
            drops,
            n.created.get(),
            n.translated_out.get(),
            n.translated_in.get(),
        )
    });
    assert_eq!(a, b);
    assert_eq!((a.1, a.2, a.3), (16, 24, 8));
}

/// The masquerade takes a TCP or UDP packet's endpoint from the facts the ingress parsed,
/// and leaves the whole check to the table on the session's owner: a TCP header cut
/// short and a first fragment are still refused and counted as such, whichever worker
/// they come in on, and nothing is translated or sent.
#[test]
fn a_short_tcp_header_and_a_first_fragment_are_refused_on_any_worker() {
    let mut e = edge_resolved();
    let mut hubs = nat_hubs(&mut e, "", 2);
    // UDP with 3 bytes of payload relabelled TCP: 11 bytes where a TCP header needs 20.
    let mut short = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"abc");
    short[23] = ipv4::PROTO_TCP;
    // A UDP packet with more fragments to come (and DF cleared).
    let mut first = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"part");
    first[20] = 0x20;
    for f in [&mut short, &mut first] {
        ipv4::Ipv4Mut::new_unchecked(&mut f[14..]).fill_checksum();
    }
    for (frame, why) in [
        (short, DropReason::Malformed),
        (first, DropReason::NatFragment),
    ] {
        for lane in 0..2 {
            let wire = from_edge(&mut e, &frame);
            let drops =
                |hubs: &[Pipeline]| -> u64 { hubs.iter().map(|h| h.stats().drops_of(why)).sum() };
            let before = drops(&hubs);
            let (v, _) = run(&mut hubs[lane], 0, &wire);
            pass_handoffs(&mut hubs);
            assert_eq!(v, Verdict::Drop, "{why:?} on lane {lane}");
            assert_eq!(drops(&hubs), before + 1, "{why:?} on lane {lane}");
        }
    }
    for h in &mut hubs {
        h.begin_batch(2 * S);
        assert_eq!(h.stats().nat.created.get(), 0);
        assert_eq!(h.take_out().count(), 0, "nothing sent");
    }
}
