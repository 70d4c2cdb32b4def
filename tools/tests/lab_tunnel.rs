//! The tunnel in the namespace lab (`tools/braid-lab`), with real braidd at both ends: the edge's
//! isp1 behind a NAT and its isp2 renumbered under a TCP transfer, the hub following both from
//! the edge's messages; one hub serving two edges behind the same NAT address; a restarted edge
//! with another clock back within a second, and no nonce repeated under any key, checked on the
//! wire.

mod common;

use braid_dataplane::tunnel::VERSION;
use braid_testkit::lab::{can_run, Need};
use common::{bin, exec, Lab, Transfer, INET_HOST};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// These tests run transfers and measure time: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn prefix(test: &str) -> String {
    format!("bt{}-{test}", std::process::id())
}

/// The link `name` of `braidctl links --json` at `role`.
fn link(lab: &Lab, role: &str, name: &str) -> Value {
    let links = lab.braidctl(role, "links");
    links["links"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == name))
        .cloned()
        .unwrap_or_else(|| lab.fail(&format!("{role}: no link {name} in {links}")))
}

/// Where the hub sends `name`'s messages.
fn hub_remote(lab: &Lab, name: &str) -> String {
    link(lab, "hub", name)["remote"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

/// One ping from the LAN host to the internet host, answered within `wait`.
fn ping(lab: &Lab, wait: &str) -> bool {
    exec(
        &lab.ns("lan"),
        &["ping", "-c", "1", "-W", wait, "-q", INET_HOST],
    )
    .status
    .success()
}

#[test]
fn the_hub_follows_an_edge_behind_nat_and_a_renumbered_uplink_under_a_transfer() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::up(prefix("nat"), "--isp1-nat --rate1 100mbit --rate2 200mbit");
    lab.start_braid();
    lab.wait_for_path();
    // isp1: the hub's config names no endpoint; it uses the NAT's address and port.
    let isp1 = hub_remote(&lab, "isp1");
    if !isp1.starts_with("203.0.113.1:") {
        lab.fail(&format!("isp1 is not followed to the NAT: {isp1}"));
    }
    // isp2: the edge's own address, from the port of whichever of its workers sent last
    // (worker i sends from 7420 + i).
    let isp2 = hub_remote(&lab, "isp2");
    assert!(
        ["198.18.12.2:7420", "198.18.12.2:7421"].contains(&isp2.as_str()),
        "{isp2}"
    );
    // isp2 is renumbered while a transfer runs; the old address is gone.
    let mut transfer = Transfer::start(&lab, 60_000_000);
    thread::sleep(Duration::from_millis(700));
    assert!(
        transfer.running(),
        "the transfer ended before the renumbering"
    );
    lab.cmd("rebind isp2 203.0.113.7");
    let before = link(&lab, "hub", "isp2")["tx"]["packets"]
        .as_u64()
        .unwrap_or(0);
    let report = transfer.finish(&lab);
    let isp2 = hub_remote(&lab, "isp2");
    if !isp2.starts_with("203.0.113.7:") {
        lab.fail(&format!("isp2 is not followed to its new address: {isp2}"));
    }
    let after = link(&lab, "hub", "isp2")["tx"]["packets"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        after > before + 1000,
        "the hub's isp2 carried {} packets after the renumbering",
        after - before
    );
    assert!(ping(&lab, "1"));
    eprintln!(
        "behind NAT: isp1 seen as {isp1}, isp2 renumbered to {isp2} under the transfer: {report}"
    );
}

#[test]
fn a_hub_serves_two_edges_behind_the_same_nat_address_at_once() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::up(
        prefix("two"),
        "--isp1-nat --edge2 --rate1 100mbit --rate2 100mbit",
    );
    lab.start_braid();
    lab.wait_for_path();
    // Both LANs at once, byte-exact, each through its own edge's sessions.
    let one = Transfer::start_from(&lab, "lan", 5001, 20_000_000);
    let two = Transfer::start_from(&lab, "lan2", 5002, 20_000_000);
    let (one, two) = (one.finish(&lab), two.finish(&lab));
    let links = lab.braidctl("hub", "links");
    let remote = |peer: &str| -> String {
        links["links"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["peer"] == peer && l["name"] == "isp1"))
            .and_then(|l| l["remote"].as_str())
            .unwrap_or("none")
            .to_string()
    };
    let (a, b) = (remote("edge1"), remote("edge2"));
    if !a.starts_with("203.0.113.1:") || !b.starts_with("203.0.113.1:") || a == b {
        lab.fail(&format!(
            "the edges are not told apart behind the NAT: {a}, {b}"
        ));
    }
    let status = lab.braidctl("hub", "status");
    let sessions = status["peers"].as_array().map_or(0, |ps| {
        ps.iter().filter(|p| !p["session"].is_null()).count()
    });
    assert_eq!(sessions, 2, "a session with each edge: {status}");
    eprintln!("two edges behind {a} and {b}: {one} and {two}");
}

/// tcpdump on the internet router's hub-facing veth, where every tunnel datagram passes once.
struct Capture {
    child: Child,
}

impl Capture {
    fn start(lab: &Lab, file: &Path) -> Capture {
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("net")])
            .args([
                "timeout", "60", "tcpdump", "-i", "h0", "-U", "-c", "400000", "-w",
            ])
            .arg(file)
            .args(["udp", "and", "portrange", "7420-7421"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| lab.fail(&format!("tcpdump (scripts/deps installs it): {e}")));
        // Running once it has written a captured packet after the file's header: the links'
        // probes (every 50 ms both ways) bring one soon, and the traffic the test must see
        // comes after it.
        let start = Instant::now();
        while std::fs::metadata(file).map(|m| m.len()).unwrap_or(0) <= 24 {
            if start.elapsed() > Duration::from_secs(5) {
                lab.fail("tcpdump did not start capturing");
            }
            thread::sleep(Duration::from_millis(50));
        }
        Capture { child }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data-class message seen on the wire: to the hub?, receiver index, lane, counter.
type Seen = (bool, u32, u8, u64);

/// The tunnel messages in a pcap file of Ethernet frames: the data-class ones, and how many
/// handshake initiations.
fn tunnel_messages(file: &Path) -> (Vec<Seen>, usize) {
    let bytes = std::fs::read(file).expect("read the capture");
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "a little-endian pcap file"
    );
    let mut at = 24;
    let (mut seen, mut initiations) = (Vec::new(), 0);
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..(at + 16 + len).min(bytes.len())];
        at += 16 + len;
        if frame.len() < 42 + 16 || frame[12..14] != [8, 0] || frame[23] != 17 {
            continue;
        }
        let to_hub = frame[30..34] == [203, 0, 113, 2];
        let msg = &frame[42..];
        match (msg[0], msg[1]) {
            (VERSION, 1..=4) => seen.push((
                to_hub,
                u32::from_be_bytes(msg[4..8].try_into().unwrap()),
                msg[3],
                u64::from_be_bytes(msg[8..16].try_into().unwrap()),
            )),
            (VERSION, 5) => initiations += 1,
            _ => {}
        }
    }
    (seen, initiations)
}

#[test]
fn a_restarted_edge_with_another_clock_is_back_within_a_second_and_repeats_no_nonce() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::up(prefix("restart"), "");
    lab.start_braid();
    lab.wait_for_path();
    let file = lab.run_dir().join("tunnel.pcap");
    let capture = Capture::start(&lab, &file);
    for _ in 0..10 {
        assert!(ping(&lab, "1"));
    }
    // The edge restarts with its monotonic clock a day ahead; it remembers nothing.
    lab.cmd("stop edge");
    let launched = Instant::now();
    lab.cmd(&format!(
        "start edge --clock-offset 86400 --braidd {}",
        bin("braidd").display()
    ));
    let ready = Instant::now();
    let mut back = None;
    while ready.elapsed() < Duration::from_secs(3) {
        if ping(&lab, "0.1") {
            back = Some(ready.elapsed());
            break;
        }
    }
    let Some(back) = back else {
        lab.fail("no traffic through the restarted edge within 3 s of its start");
    };
    for _ in 0..10 {
        assert!(ping(&lab, "1"));
    }
    // tcpdump writes what it captured when it gets the CPU, which the workers spinning
    // through the pings may have kept from it, and what it has not read when it stops is
    // lost: wait (10 s at most) until the file shows the new session's messages to the hub
    // and its handshake, or time is up and the checks below say what is missing.
    let wrote_both = Instant::now();
    while wrote_both.elapsed() < Duration::from_secs(10) {
        let (seen, initiations) = tunnel_messages(&file);
        let to_hub: HashSet<u32> = seen.iter().filter(|m| m.0).map(|m| m.1).collect();
        if to_hub.len() >= 2 && initiations >= 1 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    capture.stop();
    let (seen, initiations) = tunnel_messages(&file);
    // No (lane, counter) twice under one key: a key is one session and direction, which the
    // receiver index names on the wire.
    let mut nonces: HashMap<(bool, u32), HashSet<(u8, u64)>> = HashMap::new();
    for &(to_hub, receiver, lane, counter) in &seen {
        if !nonces
            .entry((to_hub, receiver))
            .or_default()
            .insert((lane, counter))
        {
            lab.fail(&format!(
                "nonce repeated: to hub {to_hub}, receiver {receiver:#x}, lane {lane}, counter {counter}"
            ));
        }
    }
    let sessions_to_hub = nonces.keys().filter(|(to_hub, _)| *to_hub).count();
    if sessions_to_hub < 2 {
        let keys: Vec<_> = nonces.iter().map(|(k, v)| (k, v.len())).collect();
        lab.fail(&format!(
            "both sessions on the wire: {sessions_to_hub} to the hub; messages per (to hub, \
             receiver): {keys:?}; {initiations} initiations"
        ));
    }
    assert!(
        initiations >= 1,
        "the restarted edge's handshake on the wire"
    );
    assert!(
        back < Duration::from_secs(1),
        "the bond carried traffic {back:?} after the restarted edge was ready"
    );
    eprintln!(
        "restart: edge ready {:?} after launch, traffic through {back:?} after that; {} messages \
         under {} keys on the wire, none repeated",
        ready - launched,
        seen.len(),
        nonces.len()
    );
}
