//! The earliest-delivery scheduler in the pipeline (`[bond] scheduler = "earliest"`): full-size
//! tunnel frames on the edge's two links of 100 and 200 Mbit/s (weights 1:2), with and without
//! a delay difference the probes measured.

use super::tests::*;
use super::Pipeline;
use crate::frame::Verdict;
use crate::health::Timing;
use braid_control::config::HealthConfig;

const MS: u64 = 1_000_000;

/// An edge and hub with a session, the edge scheduling by earliest delivery.
fn earliest_pair() -> (Pipeline, Pipeline) {
    let (mut e, h) = pair();
    let text = braid_testkit::EDGE
        .replacen("[bond]\n", "[bond]\nscheduler = \"earliest\"\n", 1)
        .replacen("weight = 1\n", "weight = 1\nrate = \"100mbit\"\n", 1)
        .replacen("weight = 2\n", "weight = 2\nrate = \"200mbit\"\n", 1);
    assert!(
        text.contains("earliest") && text.contains("200mbit"),
        "{text}"
    );
    reload(&mut e, &text, S);
    (e, h)
}

/// The port (link) a full-size LAN datagram leaves the edge on, sent at `now`.
fn send_at(e: &mut Pipeline, now: u64) -> usize {
    e.begin_batch(now);
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, &[7; 1400]);
    match run(e, 0, &f) {
        (Verdict::Tx(port), _) => port,
        (v, _) => panic!("{v:?}"),
    }
}

/// Probes answered on each link with these forward one-way delays (what the hub's clock says
/// minus ours), as the edge's monitors would have measured them by `now`.
fn measured(e: &Pipeline, now: u64, delays: [u64; 2]) {
    let t = Timing::of(&HealthConfig::default());
    let snap = e.snapshot().clone();
    for (link, delay) in snap.peers[0].links.iter().zip(delays) {
        let mut m = link.health.lock();
        for k in 0..10 {
            let at = now - MS * 500 + k * t.interval_ns;
            let (seq, tx) = m.probe_due(at, &t).expect("a probe is due");
            m.on_reply(at + 2 * delay, seq, tx, tx + delay, &t);
        }
    }
}

#[test]
fn at_full_load_the_links_share_as_the_weights_say() {
    let (mut e, _h) = earliest_pair();
    // 3000 frames in one instant: the queues the model builds are all that decides.
    let mut per_port = [0u32; 3];
    for _ in 0..3000 {
        per_port[send_at(&mut e, 2 * S)] += 1;
    }
    assert_eq!(per_port[0], 0);
    assert!((950..=1050).contains(&per_port[1]), "{per_port:?}");
    assert_eq!(per_port[1] + per_port[2], 3000);
}

#[test]
fn at_light_load_everything_takes_the_faster_link() {
    let (mut e, _h) = earliest_pair();
    // isp2 (port 2, twice the rate) is 10 ms slower: at 1000 frames a second (11 Mbit/s)
    // nothing queues on isp1 and every frame is there first by isp1.
    measured(&e, 2 * S, [5 * MS, 15 * MS]);
    let ports: Vec<usize> = (0..500).map(|k| send_at(&mut e, 2 * S + k * MS)).collect();
    assert!(ports.iter().all(|&p| p == 1), "{ports:?}");
    // Equal delays: the faster link is the one that serializes sooner, isp2.
    let (mut e, _h) = earliest_pair();
    measured(&e, 2 * S, [5 * MS, 5 * MS]);
    let ports: Vec<usize> = (0..500).map(|k| send_at(&mut e, 2 * S + k * MS)).collect();
    assert!(ports.iter().all(|&p| p == 2), "{ports:?}");
}

#[test]
fn round_robin_stays_the_default() {
    let (mut e, _h) = pair();
    let ports: Vec<usize> = (0..6).map(|k| send_at(&mut e, 2 * S + k * MS)).collect();
    assert_eq!(ports.iter().filter(|&&p| p == 1).count(), 2, "{ports:?}");
}
