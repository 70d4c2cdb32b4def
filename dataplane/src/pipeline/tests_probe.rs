//! Link probes between an edge and a hub pipeline joined in memory, in virtual
//! time: both ends probe both links, a cut link goes down at both ends and data
//! avoids it, it comes back, and forged or replayed probes change nothing.

use super::tests::{addr, run, udp_frame, EDGE, EDGE_LAN_MAC, EDGE_WAN1_MAC, EDGE_WAN2_MAC};
use super::tests::{GW1_MAC, GW2_MAC, HOST_MAC, HUB, HUB_GW_MAC, HUB_MAC, S};
use super::{Pipeline, Shared};
use crate::frame::Verdict;
use crate::health::{Figures, Why};
use crate::ids::Lane;
use crate::snapshot::{Secrets, Snapshot};
use crate::stats::{DropReason, WorkerStats};
use braid_control::config::Config;
use std::sync::Arc;

const MS: u64 = 1_000_000;

fn probing(text: &str, macs: &[[u8; 6]]) -> Pipeline {
    let cfg: Config = toml::from_str(&text.replace("probe = false", "probe = true")).unwrap();
    let snap = Snapshot::build(&cfg, macs, &Secrets::of_lab(&cfg), 1).unwrap();
    Pipeline::new(
        Arc::new(Shared::new(snap, 7)),
        Lane(0),
        7,
        Arc::new(WorkerStats::default()),
    )
}

/// An edge and a hub, two links between them with 1 ms each way.
struct Lab {
    edge: Pipeline,
    hub: Pipeline,
    now: u64,
    /// Links (0: isp1, 1: isp2) that drop everything.
    cut: [bool; 2],
    /// (arrival, to the hub?, edge port, frame) on their way.
    flying: Vec<(u64, bool, usize, Vec<u8>)>,
}

impl Lab {
    fn new() -> Lab {
        let edge = probing(EDGE, &[EDGE_LAN_MAC, EDGE_WAN1_MAC, EDGE_WAN2_MAC]);
        let n = &edge.shared.neighbors;
        n.learn(1, addr("198.18.11.1"), GW1_MAC, S);
        n.learn(2, addr("198.18.12.1"), GW2_MAC, S);
        n.learn(0, addr("198.18.1.2"), HOST_MAC, S);
        let hub = probing(HUB, &[HUB_MAC]);
        hub.shared
            .neighbors
            .learn(0, addr("203.0.113.1"), HUB_GW_MAC, S);
        Lab {
            edge,
            hub,
            now: S,
            cut: [false; 2],
            flying: Vec::new(),
        }
    }

    /// The link of a frame between the ends: the edge port, or the hub's frame's
    /// destination address.
    fn link_of_hub_frame(frame: &[u8]) -> usize {
        match frame[30..34] {
            [198, 18, 11, 2] => 1,
            [198, 18, 12, 2] => 2,
            _ => panic!("hub sent to {:?}", &frame[30..34]),
        }
    }

    fn send(&mut self, to_hub: bool, port: usize, frame: Vec<u8>) {
        if !self.cut[port - 1] {
            self.flying.push((self.now + MS, to_hub, port, frame));
        }
    }

    /// Collects what both ends sent and puts it on the links; data the reorder windows
    /// released (by copy) leaves for the LAN or the internet.
    fn collect(&mut self) {
        let from_edge: Vec<_> = self.edge.take_out().collect();
        for (port, f) in from_edge {
            if port != 0 {
                assert!(port == 1 || port == 2, "edge sent on port {port}");
                self.send(true, port, f);
            }
        }
        let from_hub: Vec<_> = self.hub.take_out().collect();
        for (port, f) in from_hub {
            assert_eq!(port, 0);
            if f[30..32] == [198, 18] {
                let link = Lab::link_of_hub_frame(&f);
                self.send(false, link, f);
            }
        }
    }

    /// Runs `ms` milliseconds.
    fn step(&mut self, ms: u64) {
        for _ in 0..ms {
            self.now += MS;
            self.edge.begin_batch(self.now);
            self.hub.begin_batch(self.now);
            self.collect();
            let now = self.now;
            let due: Vec<_> = self.flying.iter().filter(|f| f.0 <= now).cloned().collect();
            self.flying.retain(|f| f.0 > now);
            for (_, to_hub, port, f) in due {
                self.deliver(to_hub, port, f);
            }
        }
    }

    fn deliver(&mut self, to_hub: bool, port: usize, mut f: Vec<u8>) {
        if to_hub {
            f[..6].copy_from_slice(&HUB_MAC);
            // Answers go back to the edge; data out of the tunnel leaves for the internet.
            if let (Verdict::Tx(0), answer) = run(&mut self.hub, 0, &f) {
                if answer[30..32] == [198, 18] {
                    let link = Lab::link_of_hub_frame(&answer);
                    self.send(false, link, answer);
                }
            }
        } else {
            f[..6].copy_from_slice(&[EDGE_WAN1_MAC, EDGE_WAN2_MAC][port - 1]);
            // Answers go back to the hub; data out of the tunnel leaves for the LAN.
            if let (Verdict::Tx(p @ 1..=2), answer) = run(&mut self.edge, port, &f) {
                self.send(true, p, answer);
            }
        }
    }

    fn figures(p: &Pipeline, link: usize) -> Figures {
        p.snapshot().peers[0].links[link].health.figures()
    }

    /// Ports the edge puts `n` LAN datagrams on.
    fn edge_ports(&mut self, n: usize) -> Vec<usize> {
        (0..n)
            .map(|i| {
                let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, &[i as u8]);
                match run(&mut self.edge, 0, &f).0 {
                    Verdict::Tx(p) => p,
                    v => panic!("{v:?}"),
                }
            })
            .collect()
    }

    /// Edge addresses the hub sends `n` return datagrams to (11: isp1, 12: isp2).
    fn hub_links(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| {
                let f = udp_frame(HUB_MAC, "203.0.113.130", "198.18.1.2", 64, &[i as u8]);
                match run(&mut self.hub, 0, &f) {
                    (Verdict::Tx(0), w) => w[32],
                    (v, _) => panic!("{v:?}"),
                }
            })
            .collect()
    }
}

#[test]
fn both_ends_probe_every_link_and_measure_it() {
    let mut lab = Lab::new();
    lab.step(1000);
    for p in [&lab.edge, &lab.hub] {
        for link in 0..2 {
            let f = Lab::figures(p, link);
            assert!(f.up, "{f:?}");
            assert!((19..=21).contains(&f.sent), "{f:?}");
            assert!(f.answered + 1 >= f.sent, "{f:?}");
            assert_eq!((f.lost, f.loss_permille), (0, 0), "{f:?}");
            // 1 ms each way, delivered on the next 1 ms step.
            assert!((2 * MS..=3 * MS).contains(&f.srtt_ns), "{f:?}");
            assert!(f.fwd_offset_ns.is_some() && f.rev_offset_ns.is_some());
        }
    }
    assert!(lab.edge.shared.board.take_events().is_empty());
    assert_eq!(lab.edge.stats().drops_of(DropReason::BadTag), 0);
    assert_eq!(lab.hub.stats().drops_of(DropReason::Replayed), 0);
}

#[test]
fn a_cut_link_goes_down_at_both_ends_data_avoids_it_and_it_comes_back() {
    let mut lab = Lab::new();
    lab.step(500);
    assert_eq!(lab.edge_ports(30).iter().filter(|&&p| p == 1).count(), 10);
    lab.cut[0] = true;
    lab.step(260);
    for p in [&lab.edge, &lab.hub] {
        let f = Lab::figures(p, 0);
        assert!(!f.up, "isp1 still up: {f:?}");
        assert!(Lab::figures(p, 1).up);
        let events = p.shared.board.take_events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].to_string().starts_with("link "), "{}", events[0]);
        assert!(!events[0].change.up);
        assert_eq!(events[0].link, "isp1");
    }
    // Everything takes isp2, both ways.
    assert!(lab.edge_ports(30).iter().all(|&p| p == 2));
    assert!(lab.hub_links(30).iter().all(|&l| l == 12));
    lab.cut[0] = false;
    lab.step(600);
    for p in [&lab.edge, &lab.hub] {
        assert!(Lab::figures(p, 0).up);
        let events = p.shared.board.take_events();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].change.up);
    }
    assert_eq!(lab.edge_ports(30).iter().filter(|&&p| p == 1).count(), 10);
    assert_eq!(lab.hub_links(30).iter().filter(|&&l| l == 11).count(), 10);
}

#[test]
fn with_every_link_down_data_is_dropped_and_counted_and_probing_goes_on() {
    let mut lab = Lab::new();
    lab.step(300);
    lab.cut = [true, true];
    lab.step(300);
    let sent_before = Lab::figures(&lab.edge, 0).sent;
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"x");
    assert_eq!(run(&mut lab.edge, 0, &f).0, Verdict::Drop);
    assert_eq!(lab.edge.stats().drops_of(DropReason::NoLink), 1);
    lab.step(500);
    assert!(Lab::figures(&lab.edge, 0).sent >= sent_before + 9);
    lab.cut = [false, false];
    lab.step(600);
    assert!(matches!(run(&mut lab.edge, 0, &f).0, Verdict::Tx(_)));
}

#[test]
fn forged_replayed_and_stray_probes_change_nothing() {
    let mut lab = Lab::new();
    lab.step(200);
    // Catch the edge's next probe on isp1 instead of delivering it.
    lab.cut[0] = true;
    let mut probe = None;
    for _ in 0..60 {
        lab.now += MS;
        lab.edge.begin_batch(lab.now);
        let out: Vec<_> = lab.edge.take_out().collect();
        if let Some((_, f)) = out.into_iter().find(|(p, _)| *p == 1) {
            probe = Some(f);
            break;
        }
    }
    let mut probe = probe.expect("a probe on isp1 within 60 ms");
    probe[..6].copy_from_slice(&HUB_MAC);
    let hub_before = Lab::figures(&lab.hub, 0);
    // Forged: one bit of the sealed payload flipped.
    let mut forged = probe.clone();
    forged[60] ^= 1;
    assert_eq!(run(&mut lab.hub, 0, &forged).0, Verdict::Drop);
    assert_eq!(lab.hub.stats().drops_of(DropReason::BadTag), 1);
    assert_eq!(Lab::figures(&lab.hub, 0), hub_before);
    // The real one is answered; the same again is a replay.
    let (v, answer) = run(&mut lab.hub, 0, &probe);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(run(&mut lab.hub, 0, &probe).0, Verdict::Drop);
    assert_eq!(lab.hub.stats().drops_of(DropReason::Replayed), 1);
    // The answer, forged, then twice: only the first counts.
    let mut answer = answer;
    answer[..6].copy_from_slice(&EDGE_WAN1_MAC);
    let edge_before = Lab::figures(&lab.edge, 0);
    let mut forged = answer.clone();
    forged[70] ^= 0x80;
    assert_eq!(run(&mut lab.edge, 1, &forged).0, Verdict::Drop);
    assert_eq!(Lab::figures(&lab.edge, 0), edge_before);
    assert_eq!(run(&mut lab.edge, 1, &answer).0, Verdict::Drop);
    let after = Lab::figures(&lab.edge, 0);
    assert_eq!(after.answered, edge_before.answered + 1);
    assert_eq!(run(&mut lab.edge, 1, &answer).0, Verdict::Drop);
    assert_eq!(lab.edge.stats().drops_of(DropReason::Replayed), 1);
    assert_eq!(Lab::figures(&lab.edge, 0), after);
}

#[test]
fn under_load_a_dead_link_goes_down_in_tens_of_milliseconds_at_both_ends() {
    let mut lab = Lab::new();
    lab.step(300);
    // Traffic both ways, a datagram each way every millisecond, over both links.
    let traffic = |lab: &mut Lab, ms: u64| {
        for n in 0..ms {
            let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, &[n as u8]);
            if let (Verdict::Tx(p), wire) = run(&mut lab.edge, 0, &f) {
                lab.send(true, p, wire);
            }
            let f = udp_frame(HUB_MAC, "203.0.113.130", "198.18.1.2", 64, &[n as u8]);
            if let (Verdict::Tx(0), wire) = run(&mut lab.hub, 0, &f) {
                let link = Lab::link_of_hub_frame(&wire);
                lab.send(false, link, wire);
            }
            lab.step(1);
        }
    };
    traffic(&mut lab, 200);
    for p in [&lab.edge, &lab.hub] {
        assert!(Lab::figures(p, 0).up && Lab::figures(p, 1).up);
    }
    let cut = lab.now;
    lab.cut[0] = true;
    traffic(&mut lab, 60);
    for p in [&lab.edge, &lab.hub] {
        let f = Lab::figures(p, 0);
        assert!(!f.up, "isp1 still up 60 ms after the cut under load: {f:?}");
        assert_eq!(f.why, Some(Why::SilentUnderLoad));
        let after = f.since_ns - cut;
        assert!(after <= 45 * MS, "down {} ms after the cut", after / MS);
        assert!(Lab::figures(p, 1).up, "isp2 stays up");
    }
    // Probes bring it back once the cut ends.
    lab.cut[0] = false;
    lab.step(600);
    assert!(Lab::figures(&lab.edge, 0).up && Lab::figures(&lab.hub, 0).up);
}

#[test]
fn after_an_outage_the_handshake_under_way_is_retried_as_soon_as_a_link_is_back() {
    let mut lab = Lab::new();
    lab.step(300);
    let first = lab.edge.snapshot().peers[0].keys.sending().unwrap();
    // Everything cut for 8 s: the links go down, the edge hears nothing and starts a new
    // handshake, whose retries back off to 4 s apart.
    lab.cut = [true, true];
    lab.step(8000);
    assert!(!Lab::figures(&lab.edge, 0).up && !Lab::figures(&lab.edge, 1).up);
    assert!(lab.edge.snapshot().peers[0].keys.awaiting().is_some());
    // Back: the probes under the old session bring the links up (8 answers), and the
    // handshake goes out at once then, not at its next retry.
    lab.cut = [false, false];
    let restored = lab.now;
    let mut renewed = None;
    for _ in 0..1500 {
        lab.step(1);
        let now = lab.edge.snapshot().peers[0].keys.sending();
        if now.is_some_and(|l| !Arc::ptr_eq(&l, &first)) {
            renewed = Some(lab.now - restored);
            break;
        }
    }
    let renewed = renewed.expect("a new session within 1.5 s of the restore");
    assert!(
        renewed < 600 * MS,
        "new session {} ms after the restore",
        renewed / MS
    );
}
