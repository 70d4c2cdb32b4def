//! `braid-pktgen` over a veth pair, in a network namespace this test creates and removes:
//! generator on one end, sink on the other, at a low rate, so every packet must arrive.
//!
//! ```text
//!  ns bpg<pid>-<test>:  g0 ──── veth (2 queues each way) ──── s0
//!                       gen                                   sink
//! ```
//! Needs root (network namespaces); skipped otherwise, or failed if `CI` or `BRAID_LAB=1` is set
//! (`braid_testkit::lab`). Every run is bounded (rate, duration, count)
//! and every child is killed if it outlives its deadline.

use braid_testkit::lab::{can_run, Need};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Longest any child may run.
const CHILD_LIMIT: Duration = Duration::from_secs(30);

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace holding the veth pair g0/s0; deleted on drop, failed test or not.
struct Veth {
    ns: String,
}

impl Veth {
    fn new(test: &str) -> Veth {
        let ns = format!("bpg{}-{test}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        sh(&["ip", "netns", "add", &ns]);
        let v = Veth { ns };
        let n = v.ns.as_str();
        sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
        sh(&[
            "ip",
            "-n",
            n,
            "link",
            "add",
            "g0",
            "numrxqueues",
            "2",
            "numtxqueues",
            "2",
            "type",
            "veth",
            "peer",
            "name",
            "s0",
            "numrxqueues",
            "2",
            "numtxqueues",
            "2",
        ]);
        // No IPv6 chatter on the wire.
        sh(&[
            "ip",
            "netns",
            "exec",
            n,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ]);
        for dev in ["g0", "s0"] {
            sh(&["ip", "-n", n, "link", "set", dev, "up"]);
        }
        v
    }

    fn mac(&self, dev: &str) -> String {
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.ns,
            "cat",
            &format!("/sys/class/net/{dev}/address"),
        ])
        .trim()
        .to_string()
    }

    /// Starts `braid-pktgen <args>` in the namespace.
    fn spawn(&self, args: &[&str]) -> Running {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                env!("CARGO_BIN_EXE_braid-pktgen"),
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn braid-pktgen");
        Running {
            child: Some(child),
            started: Instant::now(),
        }
    }

    /// Runs `braid-pktgen <args> --json --quiet` to the end; its JSON.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--json", "--quiet"]);
        self.spawn(&all).json()
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// A child process, killed on drop if still running.
struct Running {
    child: Option<Child>,
    started: Instant,
}

impl Running {
    /// Waits (at most [`CHILD_LIMIT`] since the start) for the end; its output.
    fn wait(mut self) -> Output {
        let mut child = self.child.take().expect("a child");
        while child.try_wait().expect("wait").is_none() {
            if self.started.elapsed() > CHILD_LIMIT {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "braid-pktgen ran over {CHILD_LIMIT:?}; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }

    /// Waits for the end, checks success and parses stdout as JSON.
    fn json(self) -> Value {
        let out = self.wait();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "braid-pktgen failed: {}\n{stderr}",
            out.status
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}):\n{}\n{stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// Percentiles are there, ordered, and plausible for a veth on one host (under a second).
fn check_latency(l: &Value, count: u64) {
    assert_eq!(u(l, "count"), count, "{l}");
    let p: Vec<u64> = ["min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"]
        .iter()
        .map(|k| u(l, k))
        .collect();
    assert!(p[0] > 0, "{l}");
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]),
        "percentiles out of order: {l}"
    );
    assert!(p[5] < 1_000_000_000, "{l}");
    assert_eq!(u(l, "negative"), 0, "{l}");
}

/// Two generator threads (one per TX queue, two flows each), a sink thread per RX queue.
#[test]
fn run_over_a_veth_pair_loses_nothing_and_reports_everything() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let v = Veth::new("run");
    let dst = v.mac("s0");
    let r = v.json(&[
        "run",
        "--tx",
        "g0",
        "--rx",
        "s0",
        "--dst-mac",
        &dst,
        "--src-ip",
        "198.18.0.1",
        "--dst-ip",
        "198.18.0.2",
        "--flows",
        "4",
        "--size",
        "imix",
        "--rate",
        "20k",
        "--duration",
        "2",
        "--queues",
        "2",
    ]);
    let sent = u(&r, "tx_packets");
    assert!(
        (38_000..=40_100).contains(&sent),
        "sent {sent} in 2 s at 20 kpps: {r}"
    );
    assert_eq!(u(&r, "rx_packets"), sent, "{r}");
    for key in ["lost", "duplicates", "reordered", "stale", "too_late"] {
        assert_eq!(u(&r, key), 0, "{key}: {r}");
    }
    assert_eq!(r["loss_ratio"].as_f64(), Some(0.0));
    let tx_pps = r["tx_pps"].as_f64().expect("tx_pps");
    assert!((tx_pps - 20_000.0).abs() < 1_000.0, "{tx_pps}");
    // IMIX: mean frame 353.8 bytes.
    let bits_per_packet = r["tx_bps"].as_f64().unwrap() / tx_pps;
    assert!(
        (bits_per_packet / 8.0 - 353.8).abs() < 1.0,
        "{bits_per_packet}"
    );
    check_latency(&r["latency"], sent);
    let streams = r["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 4);
    for s in streams {
        assert_eq!(u(s, "sent"), u(s, "received"), "{s}");
        // Two TX threads share the streams: an even split, give or take a pacing batch.
        assert!(u(s, "sent") + 64 >= sent / 4, "{s}");
    }
    let per_stream: u64 = streams.iter().map(|s| u(s, "sent")).sum();
    assert_eq!(per_stream, sent, "{r}");
    let k = &r["sink_kernel_drops"];
    assert_eq!(u(k, "rx_dropped"), 0, "{k}");
}

#[test]
fn gen_and_sink_processes_count_the_same_packets() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let v = Veth::new("pair");
    let dst = v.mac("s0");
    let count = "5000";
    let sink = v.spawn(&[
        "sink",
        "--iface",
        "s0",
        "--count",
        count,
        "--duration",
        "15",
        "--json",
        "--quiet",
    ]);
    // The sink binds its sockets before the generator sends: wait for its XDP program.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sh(&["ip", "-n", &v.ns, "-d", "link", "show", "dev", "s0"]).contains("prog/xdp") {
        assert!(Instant::now() < deadline, "the sink never attached");
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    let g = v.json(&[
        "gen",
        "--iface",
        "g0",
        "--dst-mac",
        &dst,
        "--src-ip",
        "198.18.0.1",
        "--dst-ip",
        "198.18.0.2",
        "--proto",
        "tcp-syn",
        "--size",
        "128",
        "--flows",
        "2",
        "--stream-base",
        "40",
        "--rate",
        "10k",
        "--count",
        count,
        "--duration",
        "10",
    ]);
    assert_eq!(u(&g, "packets"), 5000, "{g}");
    assert_eq!(u(&g, "bytes"), 5000 * 128, "{g}");
    let gs = g["streams"].as_array().expect("streams");
    assert_eq!(gs.len(), 2);
    let s = sink.json();
    assert_eq!(u(&s, "packets"), 5000, "{s}");
    assert_eq!(u(&s, "bytes"), 5000 * 128, "{s}");
    let ss = s["streams"].as_array().expect("streams");
    assert_eq!(ss.len(), 2, "{s}");
    for (sent, got) in gs.iter().zip(ss) {
        assert_eq!(u(sent, "stream"), u(got, "stream"));
        assert_eq!(u(got, "unique"), u(sent, "sent"), "{got}");
        assert_eq!(u(got, "next"), u(sent, "sent"), "nothing missing: {got}");
        assert_eq!(u(got, "duplicates") + u(got, "reordered"), 0, "{got}");
    }
    assert_eq!(u(&ss[0], "stream"), 40);
    check_latency(&s["latency"], 5000);
}

#[test]
fn a_sink_in_another_process_serves_a_run_over_its_control_socket() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let v = Veth::new("ctl");
    let dst = v.mac("s0");
    let dir = std::env::temp_dir().join(format!("bpg{}-ctl", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    struct RemoveDir(PathBuf);
    impl Drop for RemoveDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let dir = RemoveDir(dir);
    let sock = dir.0.join("sink.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let sink = v.spawn(&[
        "sink",
        "--iface",
        "s0",
        "--control",
        sock,
        "--duration",
        "20",
        "--json",
        "--quiet",
    ]);
    let r = v.json(&[
        "run",
        "--tx",
        "g0",
        "--sink-control",
        sock,
        "--dst-mac",
        &dst,
        "--src-ip",
        "198.18.0.1",
        "--dst-ip",
        "198.18.0.2",
        "--rate",
        "10k",
        "--count",
        "3000",
        "--duration",
        "5",
    ]);
    assert_eq!(u(&r, "tx_packets"), 3000, "{r}");
    assert_eq!(u(&r, "rx_packets"), 3000, "{r}");
    assert_eq!(u(&r, "lost"), 0, "{r}");
    check_latency(&r["latency"], 3000);
    // The sink keeps serving until told to quit (or its time is up): end it now.
    let quit = std::os::unix::net::UnixStream::connect(sock).expect("connect to the sink");
    use std::io::{BufRead, BufReader, Write};
    (&quit)
        .write_all(b"{\"op\":\"quit\"}\n")
        .expect("send quit");
    let mut answer = String::new();
    BufReader::new(&quit)
        .read_line(&mut answer)
        .expect("answer");
    assert_eq!(answer.trim(), "\"ok\"");
    let last = sink.json();
    assert_eq!(u(&last, "packets"), 3000, "{last}");
}
