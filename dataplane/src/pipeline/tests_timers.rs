//! The pipeline's deadlines: what an idle worker waits for, and that what is due
//! at a deadline is done by the batch at that time (virtual time, no clock).

use super::tests::{
    addr, edge_resolved, run, udp_frame, EDGE, EDGE_LAN_MAC, EDGE_WAN1_MAC, EDGE_WAN2_MAC, GW1_MAC,
    GW2_MAC, HOST_MAC, HUB, HUB_MAC, S,
};
use super::{Pipeline, Shared};
use crate::frame::Verdict;
use crate::ids::Lane;
use crate::snapshot::{Secrets, Snapshot};
use crate::stats::{DropReason, WorkerStats};
use braid_control::config::Config;
use std::sync::Arc;

const MS: u64 = 1_000_000;

fn lane_of(text: &str, macs: &[[u8; 6]], lane: u8) -> Pipeline {
    let cfg: Config = toml::from_str(text).unwrap();
    let snap = Snapshot::build(&cfg, macs, &Secrets::of_lab(&cfg), 1).unwrap();
    let mut p = Pipeline::new(
        Arc::new(Shared::new(snap, 7)),
        Lane(lane),
        7,
        Arc::new(WorkerStats::default()),
    );
    p.begin_batch(S);
    p
}

#[test]
fn an_idle_worker_waits_for_its_gateway_check_or_for_nothing() {
    let mut p = edge_resolved();
    let _ = p.take_out().count();
    // Worker 0 checks the gateways every 100 ms; nothing else is due.
    assert_eq!(p.next_deadline(), Some(S + 100 * MS));
    p.begin_batch(S + 50 * MS);
    assert_eq!(p.next_deadline(), Some(S + 100 * MS), "not moved early");
    p.begin_batch(S + 100 * MS);
    assert_eq!(p.next_deadline(), Some(S + 200 * MS));
    // Another worker has nothing to do until a frame arrives.
    let text = format!("workers = 2\n{EDGE}");
    let q = lane_of(&text, &[EDGE_LAN_MAC, EDGE_WAN1_MAC, EDGE_WAN2_MAC], 1);
    assert_eq!(q.next_deadline(), None);
}

#[test]
fn a_packet_waiting_for_its_neighbour_keeps_the_worker_looking() {
    let text = format!("workers = 2\n{EDGE}");
    let mut p = lane_of(&text, &[EDGE_LAN_MAC, EDGE_WAN1_MAC, EDGE_WAN2_MAC], 1);
    p.shared
        .pair_with(&super::tests::hub_resolved().shared, S)
        .unwrap();
    p.begin_batch(S);
    assert_eq!(p.next_deadline(), None);
    let f = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"waits");
    assert_eq!(run(&mut p, 0, &f).0, Verdict::Drop, "queued for ARP");
    assert_eq!(p.next_deadline(), Some(S + 5 * MS));
    // Another worker learns the gateways; this one sends the packet at its deadline.
    p.shared.neighbors.learn(1, addr("198.18.11.1"), GW1_MAC, S);
    p.shared.neighbors.learn(2, addr("198.18.12.1"), GW2_MAC, S);
    p.shared.neighbors.learn(0, addr("198.18.1.2"), HOST_MAC, S);
    p.begin_batch(S + 5 * MS);
    let sent: Vec<_> = p
        .take_out()
        .filter(|(_, f)| f[12..14] == [0x08, 0x00])
        .collect();
    assert_eq!(sent.len(), 1, "released");
    assert_eq!(p.next_deadline(), None, "nothing waits any more");
    assert_eq!(p.stats().drops_of(DropReason::NeighborUnresolved), 0);
}

#[test]
fn a_nat_session_is_due_at_its_expiry_and_removed_then() {
    let text =
        format!("workers = 1\n{HUB}\n[[masquerade]]\ninterface = \"wan0\"\nudp_timeout = 30\n");
    let mut h = lane_of(&text, &[HUB_MAC], 0);
    assert_eq!(h.masq.next_deadline(), None);
    h.shared
        .neighbors
        .learn(0, addr("203.0.113.1"), super::tests::HUB_GW_MAC, S);
    h.begin_batch(S);
    // A datagram the hub routes out of its masquerading port (as if from the tunnel).
    let mut e = edge_resolved();
    let out = udp_frame(EDGE_LAN_MAC, "198.18.1.2", "203.0.113.130", 64, b"q");
    let (_, mut wire) = run(&mut e, 0, &out);
    wire[..6].copy_from_slice(&HUB_MAC);
    assert_eq!(run(&mut h, 0, &wire).0, Verdict::Tx(0));
    // Last seen at 1 s: due exactly 30 s later.
    assert_eq!(h.masq.next_deadline(), Some(31 * S));
    assert_eq!(
        h.next_deadline(),
        Some(S + 100 * MS),
        "the gateway check is earlier"
    );
    h.begin_batch(30 * S);
    assert_eq!(h.stats().nat.sessions.get(), 1, "not before its time");
    assert_eq!(h.masq.next_deadline(), Some(31 * S));
    h.begin_batch(31 * S - 1);
    assert_eq!(h.stats().nat.sessions.get(), 1);
    h.begin_batch(31 * S);
    assert_eq!(h.stats().nat.sessions.get(), 0);
    assert_eq!(h.stats().nat.expired.get(), 1);
    assert_eq!(h.masq.next_deadline(), None);
}

#[test]
fn a_masquerade_that_cannot_give_every_worker_ports_is_refused_at_build() {
    let text = format!(
        "workers = 4\n{HUB}\n[[masquerade]]\ninterface = \"wan0\"\nport_min = 20000\nport_max = 20127\n"
    );
    let cfg: Config = toml::from_str(&text).unwrap();
    let e = Snapshot::build(&cfg, &[HUB_MAC], &Secrets::of_lab(&cfg), 1).unwrap_err();
    assert!(e.starts_with("masquerade on wan0: "), "{e}");
    assert!(e.contains("64-port chunk"), "{e}");
    let two = text.replace("workers = 4", "workers = 2");
    let cfg: Config = toml::from_str(&two).unwrap();
    assert!(Snapshot::build(&cfg, &[HUB_MAC], &Secrets::of_lab(&cfg), 1).is_ok());
}
