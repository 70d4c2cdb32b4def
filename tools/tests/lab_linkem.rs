//! `braid-linkem` in the namespace lab (`tools/braid-lab up --linkem`, `--delay1`...): the delay
//! that ping and a paced 200 Mbit/s stream see, random and bursty loss, the blackhole of
//! `braid-lab cut` and `restore` (carrier up throughout), and the rate limit.
//!
//! ```text
//!  P-edge wan1 ── a1 P-isp [braid-linkem] b1 ── e1 P-net     (and wan2 ── a2 ... b2 ── e2)
//! ```
//! braidd does not run: the kernel takes its place on the edge's uplinks (addresses 198.18.11.2
//! and 198.18.12.2), or `braid-pktgen` sends from them to a sink on P-net's e1/e2. Each test builds
//! its own lab under its own prefix and removes it when it ends, failed or not; they run one at a
//! time, so that one's traffic does not disturb another's timing. They need root (network
//! namespaces); without it they are skipped, or fail if `CI` or `BRAID_LAB=1` is set
//! (`braid_testkit::lab`).

mod common;

use braid_testkit::lab::{can_run, Need};
use common::{args, braid_lab, exec, sh, text, Lab};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Longest any child may run.
const CHILD_LIMIT: Duration = Duration::from_secs(60);
/// How far the delay seen may be from the one set: the issue's accuracy.
const ACCURACY_MS: f64 = 0.5;
/// How much earlier than its time the emulator may release a frame (`pace::EARLY`), in ms.
const EARLY_MS: f64 = 0.05;

/// One test at a time: timing measurements must not share the two cores with another's stream.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn linkem() -> &'static str {
    env!("CARGO_BIN_EXE_braid-linkem")
}

fn pktgen() -> &'static str {
    env!("CARGO_BIN_EXE_braid-pktgen")
}

/// `braid-lab up` with the emulator and `options`; the kernel on the edge's uplinks.
fn lab(test: &str, options: &str) -> Lab {
    let lab = Lab::up(
        format!("blk{}-{test}", std::process::id()),
        &format!("--linkem-bin {} {options}", linkem()),
    );
    let edge = lab.ns("edge");
    for n in [1, 2] {
        // The kernel sends to the emulator here: whole frames with their checksums.
        sh(&edge, &format!("ethtool -K wan{n} tx off tso off gso off"));
        sh(&edge, &format!("ip addr add 198.18.1{n}.2/24 dev wan{n}"));
    }
    lab
}

/// `braid-lab linkem show --json`, parsed: one object per path.
fn show(lab: &Lab) -> Vec<Value> {
    let out = lab.cmd("linkem show --json");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("linkem show: {e}: {out}"))
}

/// The counters of one direction ("up" or "down") of ISP path `n`.
fn counters(lab: &Lab, n: usize, dir: &str) -> Value {
    show(lab)[n - 1][dir]["counters"].clone()
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// Round-trip times in ms of `count` pings from `ns` to `dst`, 10 ms apart; the first (which
/// may wait for ARP) left out.
fn ping_rtts(ns: &str, dst: &str, count: u32) -> Vec<f64> {
    let out = sh(ns, &format!("ping -n -c {count} -i 0.01 -W 2 {dst}"));
    let mut rtts: Vec<f64> = out
        .lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .skip(1)
        .collect();
    assert!(rtts.len() + 1 >= count as usize, "lost pings:\n{out}");
    rtts.sort_by(f64::total_cmp);
    rtts
}

/// The value below which a share `q` of the sorted `v` lies.
fn quantile(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q) as usize]
}

/// A child process, killed on drop if still running.
struct Running(Option<Child>);

impl Running {
    fn spawn(ns: &str, line: &str) -> Running {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args(line))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in a namespace");
        Running(Some(child))
    }

    fn wait(mut self) -> Output {
        let mut child = self.0.take().expect("a child");
        let start = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if start.elapsed() > CHILD_LIMIT {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!("child ran over {CHILD_LIMIT:?}:\n{}", text(&out));
            }
            thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `braid-pktgen run` from the edge's wan`n` to a sink on P-net's e`n`, through ISP path `n`:
/// frames of `size` bytes at `rate` for `seconds` (and at most `count` of them). Its report.
fn stream(lab: &Lab, n: usize, size: u32, rate: &str, seconds: f64, count: Option<u64>) -> Value {
    let (edge, net) = (lab.ns("edge"), lab.ns("net"));
    let sock: PathBuf = lab.run_dir().join(format!("sink{n}.sock"));
    let sock = sock.to_str().expect("utf-8 path");
    let sink = Running::spawn(
        &net,
        &format!(
            "{} sink --iface e{n} --control {sock} --duration 50 --quiet",
            pktgen()
        ),
    );
    let e_mac = sh(&net, &format!("cat /sys/class/net/e{n}/address"));
    let count = count.map(|c| format!("--count {c}")).unwrap_or_default();
    let out = Running::spawn(
        &edge,
        &format!(
            "{} run --tx wan{n} --sink-control {sock} --dst-mac {} --src-ip 198.18.1{n}.2 \
             --dst-ip 198.18.1{n}.1 --size {size} --rate {rate} --duration {seconds} {count} \
             --json --quiet",
            pktgen(),
            e_mac.trim()
        ),
    )
    .wait();
    assert!(out.status.success(), "braid-pktgen run:\n{}", text(&out));
    // Ended by its control socket, the sink detaches its XDP program from e`n`.
    if let Ok(c) = UnixStream::connect(sock) {
        let _ = (&c).write_all(b"{\"op\":\"quit\"}\n");
        let _ = BufReader::new(&c).read_line(&mut String::new());
    }
    sink.wait();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out)))
}

/// Kernel counter `what` (rx_packets, tx_packets...) of `dev` in `ns`.
fn kernel_counter(ns: &str, dev: &str, what: &str) -> u64 {
    sh(ns, &format!("cat /sys/class/net/{dev}/statistics/{what}"))
        .trim()
        .parse()
        .expect("a counter")
}

/// Whether `dev` in `ns` has its carrier and is up.
fn carrier_up(ns: &str, dev: &str) -> bool {
    let read = |f: &str| {
        sh(ns, &format!("cat /sys/class/net/{dev}/{f}"))
            .trim()
            .to_string()
    };
    read("carrier") == "1" && read("operstate") == "up"
}

/// Ping RTTs on both paths within 0.5 ms of twice the one-way delay set; a paced stream of
/// 1518-byte frames at 200 Mbit/s sees the one-way delay within 0.5 ms, and loses nothing.
#[test]
fn delay_is_accurate_for_ping_and_a_paced_200mbit_stream() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _serial = serial();
    let lab = lab("delay", "--delay1 5ms --delay2 15ms");
    let edge = lab.ns("edge");
    for (dst, delay_ms) in [("198.18.11.1", 5.0), ("198.18.12.1", 15.0)] {
        let rtts = ping_rtts(&edge, dst, 200);
        let (min, p50, p90) = (rtts[0], quantile(&rtts, 0.5), quantile(&rtts, 0.9));
        let want = 2.0 * delay_ms;
        assert!(
            min >= want - 2.0 * EARLY_MS && (p50 - want).abs() <= ACCURACY_MS,
            "{dst}: RTT min {min} p50 {p50} p90 {p90} ms, want {want} ms"
        );
    }

    let r = stream(&lab, 1, 1518, "200mbit", 2.0, None);
    let sent = u(&r, "tx_packets");
    assert!(sent >= 30_000, "200 Mbit/s for 2 s is 32,938 frames: {r}");
    assert_eq!(u(&r, "lost"), 0, "{r}");
    let l = &r["latency"];
    let ms = |k: &str| u(l, k) as f64 / 1e6;
    assert!(
        ms("min_ns") >= 5.0 - EARLY_MS && (ms("p50_ns") - 5.0).abs() <= ACCURACY_MS,
        "one-way delay over isp1 (5 ms): {l}"
    );
    let c = counters(&lab, 1, "up");
    assert_eq!(
        u(&c, "tx_packets") + u(&c, "held"),
        u(&c, "rx_packets"),
        "{c}"
    );
}

/// 10% random loss on isp1 and bursty loss (2%,20%: 9.1% on average, in bursts of 5) on isp2 drop
/// about that share of the 20,000 frames sent, and the sink misses at least those.
#[test]
fn random_and_bursty_loss_are_about_as_configured() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _serial = serial();
    let lab = lab("loss", "--loss1 10% --burst-loss2 2%,20%");
    let frames = 20_000;
    // The share is taken of the frames that reached the emulator (a busy machine may drop a few
    // on the way), within 8 standard deviations, which chance does not exceed: independent loss
    // of 20,000 frames at 10% deviates by 42 frames (0.21%); the bursty chain's correlation
    // (1 - p - r = 0.78) widens that to 116 frames (0.58%).
    for (n, share, slack) in [(1usize, 0.1, 0.017), (2, 2.0 / 22.0, 0.047)] {
        let r = stream(&lab, n, 256, "20k", 5.0, Some(frames));
        assert_eq!(u(&r, "tx_packets"), frames, "{r}");
        let c = counters(&lab, n, "up");
        let (seen, random, bursty) = (u(&c, "rx_packets"), u(&c, "lost"), u(&c, "burst_lost"));
        assert!(
            seen >= frames * 9 / 10,
            "isp{n}: the emulator saw {seen}: {c}"
        );
        let dropped = random + bursty;
        let ratio = dropped as f64 / seen as f64;
        assert!(
            (ratio - share).abs() <= slack,
            "isp{n}: dropped {dropped} of {seen} ({ratio:.4}), want {share:.4}: {c}"
        );
        assert!(
            if n == 1 { bursty == 0 } else { random == 0 },
            "isp{n}: {c}"
        );
        assert!(
            u(&r, "lost") >= dropped,
            "isp{n}: the sink missed less: {r}"
        );
    }
}

/// `braid-lab cut isp1` drops every frame of isp1 both ways while every interface keeps its
/// carrier; isp2 goes on; `restore isp1` brings isp1 back. `down` then removes everything.
#[test]
fn cut_stops_every_frame_and_restore_brings_them_back_with_carrier_up() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _serial = serial();
    let lab = lab("cut", "--delay1 2ms");
    let (edge, net, isp) = (lab.ns("edge"), lab.ns("net"), lab.ns("isp"));
    sh(&edge, "ping -c 2 -i 0.2 -W 2 198.18.11.1");
    sh(&net, "ping -c 2 -i 0.2 -W 2 198.18.11.2");

    lab.cmd("cut isp1");
    let ends = [(&edge, "wan1"), (&isp, "a1"), (&isp, "b1"), (&net, "e1")];
    for (ns, dev) in ends {
        assert!(carrier_up(ns, dev), "{ns} {dev} lost its carrier");
    }
    let (into_net, into_edge) = (
        kernel_counter(&net, "e1", "rx_packets"),
        kernel_counter(&edge, "wan1", "rx_packets"),
    );
    let up = exec(&edge, &args("ping -c 10 -i 0.1 -W 1 198.18.11.1"));
    let down = exec(&net, &args("ping -c 10 -i 0.1 -W 1 198.18.11.2"));
    assert!(
        !up.status.success() && !down.status.success(),
        "pings crossed a cut path"
    );
    let st = show(&lab);
    for dir in ["up", "down"] {
        assert_eq!(st[0][dir]["settings"]["cut"], true, "{st:?}");
        assert!(u(&st[0][dir]["counters"], "cut") >= 10, "{dir}: {st:?}");
        assert_eq!(st[1][dir]["settings"]["cut"], false, "{st:?}");
    }
    // ARP too: forgotten neighbours are not found again.
    sh(&edge, "ip neigh flush dev wan1");
    sh(&net, "ip neigh flush dev e1");
    assert!(!exec(&edge, &args("ping -c 2 -i 0.5 -W 1 198.18.11.1"))
        .status
        .success());
    assert!(!exec(&net, &args("ping -c 2 -i 0.5 -W 1 198.18.11.2"))
        .status
        .success());
    assert_eq!(
        kernel_counter(&net, "e1", "rx_packets"),
        into_net,
        "e1 received"
    );
    assert_eq!(
        kernel_counter(&edge, "wan1", "rx_packets"),
        into_edge,
        "wan1 received"
    );
    // The other path goes on.
    sh(&edge, "ping -c 3 -i 0.1 -W 2 198.18.12.1");
    for (ns, dev) in ends {
        assert!(carrier_up(ns, dev), "{ns} {dev} lost its carrier");
    }

    lab.cmd("restore isp1");
    sh(&edge, "ping -c 3 -i 0.1 -W 2 198.18.11.1");
    sh(&net, "ping -c 3 -i 0.1 -W 2 198.18.11.2");
    assert!(kernel_counter(&net, "e1", "rx_packets") > into_net);

    // `down` stops the emulator and removes its namespace; a second `down` is harmless.
    let (prefix, run_dir) = (lab.prefix.clone(), lab.run_dir());
    let pid = std::fs::read_to_string(run_dir.join("linkem.pid")).expect("linkem.pid");
    lab.cmd("down");
    assert!(
        !PathBuf::from(format!("/proc/{}", pid.trim())).exists(),
        "braid-linkem runs on"
    );
    let list = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list")
            .stdout,
    )
    .into_owned();
    assert!(
        !list.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "namespaces left:\n{list}"
    );
    assert!(!run_dir.exists());
}

/// `--rate1 50mbit` with the emulator: a 100 Mbit/s stream arrives at 50 Mbit/s (counting
/// frames without their FCS, as the emulator does), within 5%.
#[test]
fn rate_limit_holds() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _serial = serial();
    let lab = lab("rate", "--linkem --rate1 50mbit --rate2 50mbit");
    // No tbf in P-net: the emulator limits the rate.
    assert!(!sh(&lab.ns("net"), "tc qdisc show dev e1").contains("tbf"));
    let r = stream(&lab, 1, 1518, "100mbit", 2.0, None);
    let seconds = r["seconds"].as_f64().expect("seconds");
    let received = u(&r, "rx_packets") as f64;
    let want = 50e6 * seconds / (1514.0 * 8.0);
    assert!(
        (received / want - 1.0).abs() <= 0.05,
        "received {received} frames in {seconds} s, want {want:.0} (50 Mbit/s): {r}"
    );
    let c = counters(&lab, 1, "up");
    assert!(u(&c, "rate_dropped") > 0, "{c}");
}

/// Without the emulator `cut` and `restore` say so; bad impairment options are refused naming the
/// option before anything is built.
#[test]
fn cut_needs_the_emulator_and_bad_options_are_named() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _serial = serial();
    let prefix = format!("blk{}-plain", std::process::id());
    let lab = Lab::up(prefix.clone(), "");
    for cmd in ["cut", "restore"] {
        let out = braid_lab(&[cmd, "isp1", "--prefix", &prefix]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("no link emulator"),
            "{}",
            text(&out)
        );
    }
    drop(lab);
    let bad = format!("blk{}-bad", std::process::id());
    for (opt, value, named) in [
        ("--delay1", "5xs", "bad --delay1: 5xs"),
        ("--jitter2", "-1ms", "bad --jitter2"),
        ("--loss1", "150%", "bad --loss1: 150%"),
        ("--loss2", "1", "bad --loss2"),
        ("--burst-loss1", "1%", "bad --burst-loss1"),
        ("--burst-loss2", "1%,0", "bad --burst-loss2"),
        ("--delay2", "11s", "bad --delay2"),
    ] {
        let out = braid_lab(&["up", "--prefix", &bad, opt, value]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(named),
            "{}",
            text(&out)
        );
    }
    let list = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list")
            .stdout,
    )
    .into_owned();
    assert!(
        !list.contains(&bad),
        "a refused up built something:\n{list}"
    );
}
