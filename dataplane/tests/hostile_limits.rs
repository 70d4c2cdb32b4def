//! Bounded state under floods: the neighbour cache, the resolution queue, the NAT table,
//! the handoff queues, the sessions and their replay windows each stop at their limit,
//! count what they refuse, and keep serving what they already hold.

mod hostile_common;

use braid_control::config::Config;
use braid_dataplane::ids::Lane;
use braid_dataplane::io::Verdict;
use braid_dataplane::pipeline::HANDOFF_QUEUE;
use braid_dataplane::route::neighbor::DEFAULT_CAPACITY;
use braid_dataplane::route::pending::{MAX_PER_ADDRESS, MAX_WAITING, WAIT_NS};
use braid_dataplane::snapshot::MAX_LANES;
use braid_dataplane::snapshot::{Secrets, Snapshot};
use braid_dataplane::stats::DropReason;
use braid_dataplane::tunnel::{Header, ReplayWindow};
use braid_dataplane::wire::ethernet;
use hostile_common::{
    addr, arp_request, datagram, edge, edge_with, forge, hub_with, lan_frame, run, udp_frame,
    EDGE_MACS, EDGE_PRIVATE, HUB, HUB_MAC, HUB_PRIVATE, MSG, S,
};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// True for ARP frames.
fn is_arp(f: &[u8]) -> bool {
    f[12..14] == ethernet::ETHERTYPE_ARP.to_be_bytes()
}

#[test]
fn an_arp_flood_fills_the_neighbour_cache_to_its_bound_and_no_further() {
    // A LAN as large as 198.18.0.0/15, so 10,000 senders are all on-link.
    let mut hub = hub_with("", "");
    let mut d = edge_with(
        &mut hub,
        |t| t.replace("198.18.1.1/24", "198.18.1.1/15"),
        EDGE_PRIVATE,
    );
    let mut answered = 0;
    let mut full_at = None;
    for i in 0..10_000u32 {
        let sender = Ipv4Addr::from(u32::from(addr("198.19.0.0")) + i);
        let mac = [2, 1, (i >> 16) as u8, (i >> 8) as u8, i as u8, 0];
        let before = d.shared.neighbors.load();
        let (v, _) = run(d.p(), 0, &arp_request(mac, sender, "198.18.1.1"));
        // Every request for our address is answered, learned or not.
        if v == Verdict::Tx(0) {
            answered += 1;
        }
        let after = d.shared.neighbors.load();
        if after.len() == DEFAULT_CAPACITY && full_at.is_none() {
            full_at = Some(i);
        } else if full_at.is_some() {
            assert!(
                Arc::ptr_eq(&before, &after),
                "request {i}: a full cache was copied"
            );
        }
    }
    assert_eq!(answered, 10_000);
    assert_eq!(d.shared.neighbors.load().len(), DEFAULT_CAPACITY);
    assert_eq!(full_at, Some(DEFAULT_CAPACITY as u32 - 3 - 1));
    // The neighbours known before the flood still carry traffic.
    d.p().begin_batch(2 * S);
    let (v, _) = run(d.p(), 0, &lan_frame("198.18.1.2", 1));
    assert!(matches!(v, Verdict::Tx(1 | 2)), "{v:?}");
    // Entries expire and make room again.
    let later = 2 * S + braid_dataplane::route::neighbor::EXPIRE_NS;
    d.shared.neighbors.expire(later);
    assert!(d.shared.neighbors.load().len() < 10);
}

#[test]
fn a_flood_of_new_destinations_is_bounded_by_the_resolution_queue() {
    let mut hub = hub_with("", "");
    let mut e = edge(&mut hub);
    // From the internet side to 300 LAN hosts nobody has resolved.
    let mut queued_requests = 0;
    for i in 0..300u32 {
        let dst = Ipv4Addr::from(u32::from(addr("198.18.1.10")) + i % 240);
        let f = udp_frame(EDGE_MACS[1], "203.0.113.130", &dst.to_string(), 9, i);
        assert_eq!(run(e.p(), 1, &f).0, Verdict::Drop);
        queued_requests += e.p().take_out().filter(|(_, f)| is_arp(f)).count();
    }
    // 240 addresses: each asked once (the cap is 256 a second), all packets queued
    // but the 44 beyond the queue's bound.
    assert_eq!(queued_requests, 240);
    assert_eq!(
        e.p().stats().drops_of(DropReason::NeighborQueueFull),
        300 - MAX_WAITING as u64
    );
    // One address cannot take more than its share.
    let mut one = edge(&mut hub);
    for i in 0..40 {
        let f = udp_frame(EDGE_MACS[1], "203.0.113.130", "198.18.1.77", 9, i);
        run(one.p(), 1, &f);
    }
    assert_eq!(
        one.p().stats().drops_of(DropReason::NeighborQueueFull),
        40 - MAX_PER_ADDRESS as u64
    );
    // The known LAN host is still served while the queue is full.
    let known = udp_frame(EDGE_MACS[1], "203.0.113.130", "198.18.1.2", 9, 0);
    assert_eq!(run(e.p(), 1, &known).0, Verdict::Tx(0));
    // Retries stay within the cap, and everything waiting expires.
    e.p().begin_batch(S + S);
    let retries = e.p().take_out().filter(|(_, f)| is_arp(f)).count();
    assert!(retries <= MAX_WAITING, "{retries} retries");
    e.p().begin_batch(S + WAIT_NS);
    assert_eq!(
        e.p().stats().drops_of(DropReason::NeighborUnresolved),
        MAX_WAITING as u64
    );
    // Room again.
    let f = udp_frame(EDGE_MACS[1], "203.0.113.130", "198.18.1.99", 9, 0);
    run(e.p(), 1, &f);
    assert_eq!(
        e.p().stats().drops_of(DropReason::NeighborQueueFull),
        300 - MAX_WAITING as u64
    );
}

const SMALL_NAT: &str = "[[masquerade]]\ninterface = \"wan0\"\nsources = [\"198.18.1.0/24\"]\n\
                         max_sessions = 64\nmax_per_host = 4\nudp_timeout = 30\n";

#[test]
fn a_flood_of_new_flows_stops_at_the_nat_limits_and_old_flows_keep_working() {
    let mut hub = hub_with("", SMALL_NAT);
    let mut e = edge(&mut hub);
    // The first flow, answered from the internet.
    assert_eq!(
        run(hub.p(), 0, &datagram(&mut e, "198.18.1.2", 0)).0,
        Verdict::Tx(0)
    );
    let reply = udp_frame(HUB_MAC, "203.0.113.130", "203.0.113.2", 9, 0);
    let mut reply = reply;
    reply[34..38].copy_from_slice(&[0, 9, 0x13, 0x88]); // 9 -> 5000
    reply[40..42].copy_from_slice(&[0, 0]);
    // 200 hosts, 4 flows each: 64 sessions in all, per host at most 4.
    for host in 0..200u32 {
        let src = Ipv4Addr::from(u32::from(addr("198.18.1.10")) + host % 240).to_string();
        for f in 1..=5 {
            let _ = run(hub.p(), 0, &datagram(&mut e, &src, host * 8 + f));
        }
    }
    hub.p().begin_batch(2 * S);
    let s = hub.workers[0].stats();
    assert_eq!(s.nat.sessions.get(), 64);
    assert_eq!(s.nat.created.get(), 64);
    let (full, per_host) = (
        hub.drops(DropReason::NatTableFull),
        hub.drops(DropReason::NatHostLimit),
    );
    assert!(full > 0 && per_host > 0, "{full} {per_host}");
    assert_eq!(
        full + per_host,
        200 * 5 - 63,
        "every other flow refused and counted"
    );
    // The established flow still works both ways.
    assert_eq!(run(hub.p(), 0, &reply).0, Verdict::Tx(0));
    assert_eq!(
        run(hub.p(), 0, &datagram(&mut e, "198.18.1.2", 0)).0,
        Verdict::Tx(0)
    );
    // Idle sessions time out and free their room.
    hub.p().begin_batch(40 * S);
    for _ in 0..10 {
        hub.p().begin_batch(41 * S);
    }
    assert!(hub.workers[0].stats().nat.sessions.get() < 64);
    assert_eq!(
        run(hub.p(), 0, &datagram(&mut e, "198.18.1.250", 9999)).0,
        Verdict::Tx(0)
    );
}

#[test]
fn a_handoff_queue_holds_at_most_its_bound() {
    let mut hub = hub_with("workers = 2\n", SMALL_NAT);
    let range = braid_dataplane::nat::PortRange {
        lo: 1024,
        hi: 65535,
    };
    // Inbound packets for ports worker 1 owns, all arriving at worker 0, while worker 1
    // does not run.
    let ports: Vec<u16> = (1024..=65535)
        .filter(|&p| {
            !hub.workers[0].snapshot().is_tunnel_port(p)
                && braid_dataplane::nat::owner_of_port(p, range, 2) == 1
        })
        .take(HANDOFF_QUEUE + 1000)
        .collect();
    for &port in &ports {
        let mut f = udp_frame(HUB_MAC, "203.0.113.130", "203.0.113.2", 9, 0);
        f[36..38].copy_from_slice(&port.to_be_bytes());
        f[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(run(hub.p(), 0, &f).0, Verdict::Drop);
    }
    assert_eq!(
        hub.workers[0].stats().handed_off.get(),
        HANDOFF_QUEUE as u64
    );
    assert_eq!(hub.drops(DropReason::HandoffFull), 1000);
    // Worker 1 works through its queue a batch at a time; none of them has a session.
    for t in 0..20 {
        hub.batch(1, 2 * S + t);
    }
    assert_eq!(
        hub.workers[1].stats().drops_of(DropReason::NatNoSession)
            + hub.workers[1]
                .stats()
                .drops_of(DropReason::LocalUnsupported),
        HANDOFF_QUEUE as u64
    );
    assert!(!hub.mail.has_mail(Lane(1)));
}

#[test]
fn replay_windows_are_fixed_per_session_and_lane_and_survive_a_reload() {
    let mut hub = hub_with("", SMALL_NAT);
    let mut e = edge(&mut hub);
    let live = e.session();
    // A window is a fixed bitmap: 8192 counters in 2 KiB (each word a block of 32 and the
    // block's number, so one compare-and-swap marks a counter) and the top.
    assert!(std::mem::size_of::<ReplayWindow>() <= 2 * 1024 + 64 + 8);
    let good = datagram(&mut e, "198.18.1.2", 1);
    assert_eq!(Header::parse(&good[MSG..]).unwrap().counter, 0);
    let lane = |l: u8, counter: u64| {
        forge(&good, &live.send, &live.send, |h, seq| {
            h.lane = l;
            h.counter = counter;
            // Not sequenced: this is about the replay windows, not the reorder windows.
            *seq = 0;
        })
    };
    // Each lane with a window counts on its own: counter 0 is new on every one of them.
    for l in 0..MAX_LANES as u8 {
        assert_eq!(run(hub.p(), 0, &lane(l, 0)).0, Verdict::Tx(0), "lane {l}");
    }
    // Every lane number the header can carry beyond those is refused from the header,
    // before decryption, even sealed by the session itself: there is no window to take it.
    for l in MAX_LANES..=255 {
        assert_eq!(run(hub.p(), 0, &lane(l as u8, 0)).0, Verdict::Drop);
    }
    assert_eq!(
        hub.drops(DropReason::BadTunnelHeader),
        (256 - MAX_LANES) as u64
    );
    assert_eq!(hub.drops(DropReason::Replayed), 0);
    // Counters far apart move one window forward; it never grows or moves back.
    for jump in [1u64 << 20, 1 << 40, 1 << 50] {
        assert_eq!(run(hub.p(), 0, &lane(0, jump)).0, Verdict::Tx(0));
    }
    assert_eq!(run(hub.p(), 0, &lane(0, 5)).0, Verdict::Drop);
    assert_eq!(hub.drops(DropReason::Replayed), 1);
    // A reload keeps the peer's sessions, their windows with them: what was seen stays
    // refused, and nothing old comes in again.
    let text = format!("{HUB}\n{SMALL_NAT}").replace("weight = 2", "weight = 3");
    let cfg: Config = toml::from_str(&text).unwrap();
    let secrets = Secrets {
        private: HUB_PRIVATE,
        psks: vec![[0; 32]],
    };
    let before = hub.session();
    let previous = hub.shared.snapshot.load_full();
    let next = Snapshot::rebuild(&cfg, &[HUB_MAC], &secrets, &previous).unwrap();
    hub.shared.snapshot.store(Arc::new(next));
    hub.batch(0, 2 * S);
    assert_eq!(hub.shared.snapshot.load().generation, 2);
    assert!(Arc::ptr_eq(&hub.session(), &before));
    assert_eq!(before.local_index, live.remote_index);
    for d in [lane(0, 1 << 50), lane(1, 0), good.clone()] {
        assert_eq!(run(hub.p(), 0, &d).0, Verdict::Drop);
    }
    assert_eq!(hub.drops(DropReason::Replayed), 4);
    assert_eq!(hub.drops(DropReason::UnknownSession), 0);
    assert_eq!(run(hub.p(), 0, &lane(0, (1 << 50) + 1)).0, Verdict::Tx(0));
}

#[test]
fn handshakes_over_and_over_keep_a_peer_at_three_sessions() {
    let mut hub = hub_with("", SMALL_NAT);
    let mut first = edge(&mut hub);
    let old = datagram(&mut first, "198.18.1.2", 1);
    // The same edge, restarted fifty times: each handshake replaces the session.
    let mut last = None;
    for _ in 0..50 {
        last = Some(edge(&mut hub));
    }
    let peer = &hub.shared.snapshot.load().peers[0];
    assert!(peer.keys.receiving().len() <= 3);
    // The latest session carries traffic; the first one is gone.
    let mut last = last.unwrap();
    assert_eq!(
        run(hub.p(), 0, &datagram(&mut last, "198.18.1.2", 2)).0,
        Verdict::Tx(0)
    );
    assert_eq!(run(hub.p(), 0, &old).0, Verdict::Drop);
    assert_eq!(hub.drops(DropReason::UnknownSession), 1);
}
