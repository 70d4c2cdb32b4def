//! The bond's order and redundancy end to end, in the namespace lab with the link emulator:
//! real AF_XDP sockets at both ends, kernel UDP sockets on the LAN host and the internet host.
//!
//! - isp2 10 ms slower each way than isp1 (20 ms of round-trip difference): a UDP stream spread
//!   packet by packet over both links comes back to the LAN host in order, because both ends'
//!   reorder windows put it back in order (they count the packets they repaired).
//! - Both links lose 5 % each way: datagrams of a `[[bond.redundant]]` rule go on both links
//!   and reach the application far more often than those of another port, in the same run.
//! - With `scheduler = "earliest"` a light stream over the same unequal links goes all on the
//!   faster one, and the windows have nothing to wait for.
//! - With two workers at each end, a stream over equal links comes back in order although the
//!   workers hand each other the packets of the lanes they do not own.
//!
//! They need root (network namespaces); without it they are skipped, or fail if `CI` or
//! `BRAID_LAB=1` is set (`braid_testkit::lab`). One at a time: their figures need the cores.

mod common;

use braid_testkit::lab::{can_run, Need};
use common::{args, drops, exec, text, xfer, Lab, INET_HOST};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn linkem() -> &'static str {
    env!("CARGO_BIN_EXE_braid-linkem")
}

/// Kills a child process when dropped (also on panic).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A UDP echo on the internet host's `port`, for at most 30 s.
fn echo(lab: &Lab, port: u16) -> KillOnDrop {
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns("inet"), xfer(), "udp-echo"])
        .args([
            "--listen",
            &format!("{INET_HOST}:{port}"),
            "--timeout",
            "30",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn udp-echo");
    KillOnDrop(child)
}

/// `count` datagrams from the LAN host to the echo on `port`, at `pps`: udp-send's report.
fn udp_send(lab: &Lab, port: u16, count: u64, pps: u64) -> Value {
    let line = format!(
        "{} udp-send --to {INET_HOST}:{port} --count {count} --pps {pps} --size 512 --timeout 20",
        xfer()
    );
    let out = exec(&lab.ns("lan"), &args(&line));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| lab.fail(&format!("udp-send report ({e}):\n{}", text(&out))))
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// A reorder counter of `role`, summed over its workers.
fn reorder(lab: &Lab, role: &str, key: &str) -> u64 {
    lab.braidctl(role, "stats")["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| n(&w["reorder"], key))
        .sum()
}

#[test]
fn a_stream_over_links_of_unequal_delay_comes_back_in_order() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _one = serial();
    let lab = Lab::up(
        format!("bro{}", std::process::id()),
        &format!("--nat --linkem-bin {} --delay2 10ms", linkem()),
    );
    lab.start_braid();
    lab.wait_for_path();
    // The probes measure the links' delays (a few rounds of 50 ms).
    thread::sleep(Duration::from_millis(800));
    let _echo = echo(&lab, 6101);
    thread::sleep(Duration::from_millis(300));
    let count = 20_000;
    let r = udp_send(&lab, 6101, count, 10_000);
    let received = n(&r, "received");
    // Loss is not what this is about (the emulator, sharing two cores with both daemons,
    // may drop some under load), but a run that lost most would prove nothing.
    assert!(received >= count * 9 / 10, "lost too many: {r}");
    // Without the windows, two of three datagrams come back out of order here. With them,
    // only those whose gap was given up before they came (a link that stalled longer
    // than the wait) are: a handful, at most 1 % even on a busy machine.
    assert!(
        n(&r, "reordered") * 100 <= received,
        "more than 1 % out of order: {r}"
    );
    assert_eq!(n(&r, "duplicates"), 0, "{r}");
    for role in ["hub", "edge"] {
        let repaired = reorder(&lab, role, "repaired");
        assert!(
            repaired >= received / 4,
            "{role} repaired only {repaired} of {received}"
        );
    }
}

#[test]
fn a_stream_through_two_workers_at_each_end_comes_back_in_order() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _one = serial();
    // No emulator: both links are plain veths of equal delay. The tunnel's packets reach
    // each end on whichever queue the veth's RSS picks for their ports (random per lab), and
    // a worker hands those of a lane it does not own to the worker that owns the lane's
    // window. Whether a given lab crosses workers is RSS's choice (most do at one end or
    // the other); pipeline/tests_reorder.rs crosses them every time, frame by frame.
    let lab = Lab::up(
        format!("brw{}", std::process::id()),
        "--nat --queues 2 --workers 2",
    );
    lab.start_braid();
    lab.wait_for_path();
    let _echo = echo(&lab, 6401);
    thread::sleep(Duration::from_millis(300));
    let count = 20_000;
    let r = udp_send(&lab, 6401, count, 5_000);
    let received = n(&r, "received");
    assert!(received >= count * 9 / 10, "lost too many: {r}");
    // A packet handed over in its turn leaves by copy after the owner's own frames of the
    // round; when those were not held back behind it, one in ten came back out of order.
    assert!(
        n(&r, "reordered") * 100 <= received,
        "more than 1 % out of order: {r}"
    );
}

#[test]
fn redundant_datagrams_get_through_links_that_lose() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _one = serial();
    let lab = Lab::up(
        format!("brr{}", std::process::id()),
        &format!("--nat --linkem-bin {} --loss1 5% --loss2 5%", linkem()),
    );
    // Port 6201 is redundant both ways: the edge sends it up both links, the hub down both.
    // The links are not probed, so they stay up whatever they lose: a link that is down gets
    // no copies, and one taken down (by lost probes, or by a moment of silence while the
    // other link receives when the link emulator is starved of CPU) comes back only after 8
    // answers in a row, which a 10 % round-trip loss can take a second to give. This test is
    // about the data.
    let rule = "\n[[bond.redundant]]\nprotocol = \"udp\"\nports = 6201\n\
                \n[health]\nprobe = false\n";
    for role in ["edge", "hub"] {
        let path = lab.run_dir().join(format!("{role}.toml"));
        let mut cfg = std::fs::read_to_string(&path).expect("lab config");
        cfg.push_str(rule);
        std::fs::write(&path, cfg).expect("write lab config");
    }
    lab.start_braid();
    lab.wait_for_path();
    let (_a, _b) = (echo(&lab, 6201), echo(&lab, 6202));
    thread::sleep(Duration::from_millis(300));
    let count = 4000;
    let redundant = udp_send(&lab, 6201, count, 2000);
    let plain = udp_send(&lab, 6202, count, 2000);
    // A round trip crosses a 5 % link twice: about 10 % lost. Sent on both links, a
    // datagram is lost only when both copies are, 0.25 % each way: about 0.5 %.
    let lost = |r: &Value| n(r, "lost") as f64 / count as f64;
    assert!(lost(&plain) > 0.05, "the links lose less than set: {plain}");
    if lost(&redundant) >= 0.02 {
        lab.fail(&format!(
            "redundant: {redundant}; plain: {plain}\nedge links: {}\nhub links: {}",
            lab.braidctl("edge", "links"),
            lab.braidctl("hub", "links")
        ));
    }
    assert_eq!(n(&redundant, "duplicates"), 0, "{redundant}");
    assert!(drops(&lab.braidctl("hub", "stats"), "duplicate") > count / 2);
    let edge = lab.braidctl("edge", "stats");
    assert!(drops(&edge, "duplicate") > count / 2, "{edge}");
}

#[test]
fn earliest_delivery_keeps_a_light_stream_on_the_faster_link() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _one = serial();
    let lab = Lab::up(
        format!("bre{}", std::process::id()),
        &format!("--nat --linkem-bin {} --delay2 10ms", linkem()),
    );
    // Both ends pick by earliest delivery, each link said to carry 100 Mbit/s.
    for role in ["edge", "hub"] {
        let path = lab.run_dir().join(format!("{role}.toml"));
        let cfg = std::fs::read_to_string(&path)
            .expect("lab config")
            .replacen("[bond]\n", "[bond]\nscheduler = \"earliest\"\n", 1)
            .replace("name = \"isp1\"\n", "name = \"isp1\"\nrate = \"100mbit\"\n")
            .replace("name = \"isp2\"\n", "name = \"isp2\"\nrate = \"100mbit\"\n");
        std::fs::write(&path, cfg).expect("write lab config");
    }
    lab.start_braid();
    lab.wait_for_path();
    // The probes measure the links' delays (a few rounds of 50 ms).
    thread::sleep(Duration::from_millis(800));
    let _echo = echo(&lab, 6301);
    thread::sleep(Duration::from_millis(300));
    let (isp1, isp2) = lab.upstream_packets();
    // 4 Mbit/s: far below what isp1 carries, so every datagram is there first by isp1.
    let count = 2000;
    let r = udp_send(&lab, 6301, count, 1000);
    let (isp1_after, isp2_after) = lab.upstream_packets();
    let received = n(&r, "received");
    assert!(received >= count * 9 / 10, "lost too many: {r}");
    assert!(
        isp1_after - isp1 >= received,
        "isp1 carried {} of {received}",
        isp1_after - isp1
    );
    assert!(
        isp2_after - isp2 <= common::idle_link_packets(2.5),
        "isp2 carried {} packets: more than its probes",
        isp2_after - isp2
    );
    // Nothing to put back in order: the windows repaired (waited for) next to nothing.
    assert!(n(&r, "reordered") * 100 <= received, "{r}");
    for role in ["hub", "edge"] {
        let repaired = reorder(&lab, role, "repaired");
        assert!(
            repaired * 100 <= received,
            "{role} repaired {repaired} of {received}"
        );
    }
}
