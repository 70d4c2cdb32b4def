//! Interfaces shared with the host (`mode = "shared"`), in the namespace lab: braid's XDP
//! program gives braid what it handles and the kernel the rest.
//!
//! - `--shared-hub --nat`: the hub's ONE NIC carries the tunnel, the masquerade's return
//!   traffic and a TCP service of the hub host's kernel. An interactive TCP session from the
//!   internet host to that service stays usable while a bulk transfer runs through the bond,
//!   and the hub's address answers ping once per request.
//! - `--shared-lan`: the edge's LAN address is the edge host kernel's; it answers the LAN host's
//!   TCP and ping itself (braid answers nothing, so no double answers), while braid still
//!   routes the LAN through the bond; an address the host gains later is followed. That
//!   broadcasts, multicast and martians from a shared LAN put nothing on an uplink is in
//!   lab_hygiene.rs, beside the owned LAN's.
//!
//! The interactive session and its echo server are this test binary run again inside a lab
//! namespace (`ip netns exec`), its role named in `BRAID_SHARED_ROLE`; they report on stdout
//! in lines starting with `@@`. The lab needs root (network namespaces); without it the tests
//! are skipped, or fail if `CI` or `BRAID_LAB=1` is set (`braid_testkit::lab`). `braidd` and
//! `braidctl` are taken from the directory of the test binary's profile (target/<profile>/).

mod common;

use braid_testkit::lab::{can_run, Need};
use common::{exec, sh, text, Lab, Transfer};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const ROLE_ENV: &str = "BRAID_SHARED_ROLE";
const ADDR_ENV: &str = "BRAID_SHARED_ADDR";
const STOP_ENV: &str = "BRAID_SHARED_STOP";
/// The host's own TCP service on a shared interface (below the masquerade's 20000-29999).
const SERVICE_PORT: u16 = 2222;
/// Bytes of one exchange of the interactive session: a keystroke's packet and its echo.
const EXCHANGE: usize = 64;
/// Longest an exchange may take before the session counts as unusable.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two exchanges.
const EXCHANGE_PAUSE: Duration = Duration::from_millis(20);
/// Bound on every child's life.
const ROLE_TIME: Duration = Duration::from_secs(90);
/// Requests of each ping and datagram count of each refused class.
const COUNT: u64 = 100;

/// A child of this test binary in a lab namespace; killed on drop.
struct Role {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Role {
    fn spawn(ns: &str, role: &str, addr: &str, stop: &Path) -> Role {
        let exe = std::env::current_exe().expect("test executable");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(exe)
            .args(["--exact", "shared_role", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(ROLE_ENV, role)
            .env(ADDR_ENV, addr)
            .env(STOP_ENV, stop)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn a role");
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        Role { child, out }
    }

    /// The next `@@` line of the child (without the marker); panics if it ends first.
    fn report(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).expect("read a role's output");
            assert!(n > 0, "a role ended without reporting");
            // libtest's "test shared_role ... " may start the line.
            if let Some((_, rest)) = line.trim().split_once("@@ ") {
                return rest.to_owned();
            }
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Entry point of the children spawned by the tests below; does nothing without a role.
#[test]
#[ignore = "run by the lab_shared tests inside their namespaces"]
fn shared_role() {
    let addr = std::env::var(ADDR_ENV).unwrap_or_default();
    let stop = PathBuf::from(std::env::var_os(STOP_ENV).unwrap_or_default());
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("echo") => role_echo(&addr),
        Ok("session") => role_session(&addr, &stop),
        _ => eprintln!("no {ROLE_ENV}: nothing to do"),
    }
}

/// Echoes every byte of one connection back, then ends.
fn role_echo(addr: &str) {
    let listener = TcpListener::bind(addr).expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    println!("@@ listening");
    let started = Instant::now();
    let mut conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(started.elapsed() < ROLE_TIME, "no client came");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    conn.set_nonblocking(false).expect("blocking");
    conn.set_read_timeout(Some(ROLE_TIME)).expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// One TCP connection: an exchange every `EXCHANGE_PAUSE` until the stop file exists (or
/// `ROLE_TIME`); reports the exchanges, the slowest, and the first failure.
fn role_session(addr: &str, stop: &Path) {
    let started = Instant::now();
    let report = |n: u32, slowest: Duration, error: &str| {
        println!(
            "@@ exchanges={n} slowest_ms={} error={error}",
            slowest.as_millis()
        );
    };
    let mut conn =
        match TcpStream::connect_timeout(&addr.parse().expect("session address"), EXCHANGE_TIMEOUT)
        {
            Ok(c) => c,
            Err(e) => return report(0, Duration::ZERO, &format!("connect:{e}").replace(' ', "_")),
        };
    conn.set_read_timeout(Some(EXCHANGE_TIMEOUT))
        .expect("timeout");
    conn.set_nodelay(true).expect("nodelay");
    let (mut n, mut slowest) = (0u32, Duration::ZERO);
    while !stop.exists() && started.elapsed() < ROLE_TIME {
        let sent: Vec<u8> = (0..EXCHANGE).map(|i| (i as u32 + n) as u8).collect();
        let t = Instant::now();
        let mut back = vec![0u8; EXCHANGE];
        let result = conn
            .write_all(&sent)
            .and_then(|()| conn.read_exact(&mut back));
        if let Err(e) = result {
            return report(n, slowest, &format!("exchange:{e}").replace(' ', "_"));
        }
        if back != sent {
            return report(n, slowest, "echo_differs");
        }
        slowest = slowest.max(t.elapsed());
        n += 1;
        std::thread::sleep(EXCHANGE_PAUSE);
    }
    report(n, slowest, "none");
}

fn field<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {report}"))
}

/// Replies counted by `ping` in `ns` to `COUNT` requests to `dst`, after checking that none
/// came twice.
fn ping_replies(lab: &Lab, ns: &str, dst: &str) -> u64 {
    let line = format!("timeout 20 ping -n -c {COUNT} -i 0.01 -W 1 {dst}");
    let out = exec(&lab.ns(ns), &common::args(&line));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("DUP!"), "double answers:\n{}", text(&out));
    stdout
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("transmitted, ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("{line}:\n{}", text(&out)))
}

/// Frames braid received on interface `name` at `role`, over its workers.
fn braid_rx(lab: &Lab, role: &str, name: &str) -> u64 {
    lab.braidctl(role, "stats")["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .flat_map(|w| w["interfaces"].as_array().expect("interfaces"))
        .filter(|i| i["interface"] == name)
        .filter_map(|i| i["rx_packets"].as_u64())
        .sum()
}

/// A stop file for a session, removed when dropped.
struct StopFile(PathBuf);

impl StopFile {
    fn new(lab: &Lab) -> StopFile {
        let path = std::env::temp_dir().join(format!("{}-stop", lab.prefix));
        let _ = std::fs::remove_file(&path);
        StopFile(path)
    }

    fn raise(&self) {
        std::fs::write(&self.0, b"stop").expect("write the stop file");
    }
}

impl Drop for StopFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An interactive session from `from` to the echo service on `server_ns`'s `addr`: started,
/// then run while `during` runs, then stopped; returns its report.
fn session_during(
    lab: &Lab,
    server_ns: &str,
    from: &str,
    addr: &str,
    during: impl FnOnce(),
) -> String {
    let stop = StopFile::new(lab);
    let mut echo = Role::spawn(&lab.ns(server_ns), "echo", addr, &stop.0);
    assert_eq!(echo.report(), "listening");
    let mut session = Role::spawn(&lab.ns(from), "session", addr, &stop.0);
    during();
    stop.raise();
    session.report()
}

#[test]
fn a_one_nic_hub_serves_its_host_while_the_bond_carries_a_bulk_transfer() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::up(format!("sh{}", std::process::id()), "--nat --shared-hub");
    lab.start_braid();
    lab.wait_for_path();
    // The hub host's own address answers ping from the kernel, once per request.
    assert_eq!(
        ping_replies(&lab, "inet", "203.0.113.2"),
        COUNT,
        "{}",
        lab.logs()
    );
    let service = format!("203.0.113.2:{SERVICE_PORT}");
    let mut bulk_done = None;
    let report = session_during(&lab, "hub", "inet", &service, || {
        // The bulk transfer goes LAN -> bond -> hub (masqueraded) -> internet host and back.
        let mut bulk = Transfer::start(&lab, 20_000_000);
        while bulk.running() {
            std::thread::sleep(Duration::from_millis(50));
        }
        bulk_done = Some(bulk.finish(&lab));
    });
    eprintln!("hub host's session during the bulk transfer: {report}");
    assert_eq!(field(&report, "error"), "none", "{report}\n{}", lab.logs());
    let exchanges: u32 = field(&report, "exchanges").parse().expect("count");
    assert!(
        exchanges >= 10,
        "only {exchanges} exchanges during the transfer: {report}"
    );
    let bulk = bulk_done.expect("the transfer ran");
    assert_eq!(bulk["ok"], true, "{bulk}");
    let links: Value = lab.braidctl("hub", "links");
    let tunnel_rx: u64 = links["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["rx"]["packets"].as_u64().expect("rx packets"))
        .sum();
    assert!(
        tunnel_rx > 10_000,
        "the bond carried {tunnel_rx} packets to the hub"
    );
    eprintln!("hub: {tunnel_rx} data packets out of the tunnel");
    // The path through the bond still works afterwards.
    lab.wait_for_path();
}

#[test]
fn the_edges_shared_lan_address_is_the_kernels() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::up(format!("sl{}", std::process::id()), "--nat --shared-lan");
    lab.start_braid();
    // braid resolves the LAN host beside the kernel (ARP probes, answered to 0.0.0.0).
    lab.wait_for_path();
    // Counters are published by idle workers: let them settle.
    std::thread::sleep(Duration::from_millis(500));
    let before = braid_rx(&lab, "edge", "lan0");
    assert_eq!(
        ping_replies(&lab, "lan", "198.18.1.1"),
        COUNT,
        "{}",
        lab.logs()
    );
    let service = format!("198.18.1.1:{SERVICE_PORT}");
    let report = session_during(&lab, "edge", "lan", &service, || {
        std::thread::sleep(Duration::from_secs(2));
    });
    eprintln!("LAN host's session with the edge host: {report}");
    assert_eq!(field(&report, "error"), "none", "{report}\n{}", lab.logs());
    assert!(
        field(&report, "exchanges").parse::<u32>().expect("count") >= 10,
        "{report}"
    );
    // Every answer came from the kernel: the pings, the session and the LAN host's ARP for
    // the address never reached braid (a few ARP answers to braid's own requests may).
    std::thread::sleep(Duration::from_millis(500));
    let seen = braid_rx(&lab, "edge", "lan0") - before;
    assert!(
        seen < 10,
        "braid received {seen} frames on lan0 meant for the edge host"
    );
    // An address the host gains while braid runs is the host's within a second or two: until
    // braid's program knows it, braid routes what is sent to it (and finds no such neighbour).
    sh(&lab.ns("edge"), "ip addr add 198.18.1.50/24 dev lan0");
    let deadline = Instant::now() + Duration::from_secs(5);
    let ping = "ping -n -c 1 -W 1 198.18.1.50";
    while !exec(&lab.ns("lan"), &common::args(ping)).status.success() {
        assert!(
            Instant::now() < deadline,
            "the edge host's new address never answered\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(ping_replies(&lab, "lan", "198.18.1.50"), COUNT);
    lab.wait_for_path();
}
