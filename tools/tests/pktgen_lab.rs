//! `braid-pktgen` through braid in the namespace lab (`tools/braid-lab`): the generator on the LAN
//! host, braid at the edge and the hub, the sink on the internet host. And the lab bench
//! (`benches/lab.sh`) in its smoke mode: it must start and stop cleanly.
//!
//! ```text
//!  P-lan eth0 (gen) ─ lan0 [braidd edge] wan1/wan2 ─ P-net ─ wan0 [braidd hub] ─ P-net ─ eth0 P-inet (sink)
//! ```
//! Each test builds its own lab under its own prefix and removes it when it ends, failed or not.
//! They need root (network namespaces); without it they are skipped, or fail if `CI` or
//! `BRAID_LAB=1` is set (`braid_testkit::lab`). `braidd` comes from target/<profile>/.

use braid_testkit::lab::{can_run, Need};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The internet host's address: the generator's destination.
const INET_HOST: &str = "203.0.113.130";
/// The LAN host's address: the generator's source.
const LAN_HOST: &str = "198.18.1.2";
/// Longest any child may run.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// Runs `args` in namespace `ns`; panics unless it succeeds; its stdout.
fn sh(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    let out = run("ip", &all);
    assert!(out.status.success(), "{ns}: {args:?}\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// target/<profile>/, where cargo puts the workspace's binaries.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps")
        .to_path_buf()
}

fn braidd() -> PathBuf {
    let b = bin_dir().join("braidd");
    assert!(
        b.is_file(),
        "{} is missing: build it first (cargo build --workspace --bins --profile test)",
        b.display()
    );
    b
}

fn pktgen() -> &'static str {
    env!("CARGO_BIN_EXE_braid-pktgen")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn braid_lab(args: &[&str]) -> Output {
    let lab = workspace().join("tools/braid-lab");
    run(lab.to_str().expect("utf-8 path"), args)
}

/// A lab that exists while this value does.
struct Lab {
    prefix: String,
}

impl Lab {
    /// `braid-lab up` with one queue per veth and one braidd worker, then `start`.
    fn up(test: &str) -> Lab {
        let prefix = format!("bpl{}-{test}", std::process::id());
        let _ = braid_lab(&["down", "--prefix", &prefix]);
        let lab = Lab { prefix };
        let out = braid_lab(&[
            "up",
            "--prefix",
            &lab.prefix,
            "--queues",
            "1",
            "--workers",
            "1",
        ]);
        assert!(out.status.success(), "braid-lab up:\n{}", text(&out));
        let b = braidd();
        let out = braid_lab(&[
            "start",
            "--prefix",
            &lab.prefix,
            "--braidd",
            b.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "braid-lab start:\n{}", text(&out));
        lab
    }

    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    fn mac(&self, role: &str, dev: &str) -> String {
        sh(
            &self.ns(role),
            &["cat", &format!("/sys/class/net/{dev}/address")],
        )
        .trim()
        .to_string()
    }

    /// Waits (up to 15 s) until the LAN host's pings reach the internet host through braid.
    fn wait_for_path(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let lan = self.ns("lan");
        while Instant::now() < deadline {
            let out = run(
                "ip",
                &[
                    "netns", "exec", &lan, "ping", "-c", "1", "-W", "1", INET_HOST,
                ],
            );
            if out.status.success() {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
        panic!("the LAN host never reached the internet host through braid");
    }

    /// Packets `net` received from the edge on isp1 and isp2 (e1/e2's rx counters).
    fn uplinks(&self) -> (u64, u64) {
        let net = self.ns("net");
        let rx = |dev: &str| -> u64 {
            sh(
                &net,
                &[
                    "cat",
                    &format!("/sys/class/net/{dev}/statistics/rx_packets"),
                ],
            )
            .trim()
            .parse()
            .expect("a counter")
        };
        (rx("e1"), rx("e2"))
    }

    fn spawn_pktgen(&self, role: &str, args: &[&str]) -> Running {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role), pktgen()])
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
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = braid_lab(&["down", "--prefix", &self.prefix]);
        if !out.status.success() {
            eprintln!("braid-lab down {}:\n{}", self.prefix, text(&out));
        }
    }
}

/// A child process, killed on drop if still running.
struct Running {
    child: Option<Child>,
    started: Instant,
}

impl Running {
    fn wait(mut self) -> Output {
        let mut child = self.child.take().expect("a child");
        while child.try_wait().expect("wait").is_none() {
            if self.started.elapsed() > CHILD_LIMIT {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!("child ran over {CHILD_LIMIT:?}:\n{}", text(&out));
            }
            thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }

    fn json(self) -> Value {
        let out = self.wait();
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(&out)))
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

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("{name}{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn gen_through_braid_edge_and_hub_to_the_sink_loses_nothing() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::up("bond");
    lab.wait_for_path();
    // The sink takes every frame of the internet host's eth0, ARP included: net keeps its MAC.
    let inet_mac = lab.mac("inet", "eth0");
    sh(
        &lab.ns("net"),
        &[
            "ip",
            "neigh",
            "replace",
            INET_HOST,
            "lladdr",
            &inet_mac,
            "dev",
            "i0",
            "nud",
            "permanent",
        ],
    );
    let dir = TempDir::new("bpl-ctl");
    let sock = dir.0.join("sink.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let sink = lab.spawn_pktgen(
        "inet",
        &[
            "sink",
            "--iface",
            "eth0",
            "--control",
            sock,
            "--duration",
            "40",
            "--json",
            "--quiet",
        ],
    );
    let edge_lan0 = lab.mac("edge", "lan0");
    let before = lab.uplinks();
    let r = lab
        .spawn_pktgen(
            "lan",
            &[
                "run",
                "--tx",
                "eth0",
                "--sink-control",
                sock,
                "--dst-mac",
                &edge_lan0,
                "--src-ip",
                LAN_HOST,
                "--dst-ip",
                INET_HOST,
                "--flows",
                "4",
                "--size",
                "256",
                "--rate",
                "3k",
                "--duration",
                "3",
                "--json",
                "--quiet",
            ],
        )
        .json();
    let after = lab.uplinks();

    let sent = u(&r, "tx_packets");
    assert!(
        (8_500..=9_100).contains(&sent),
        "sent {sent} in 3 s at 3 kpps: {r}"
    );
    assert_eq!(u(&r, "lost"), 0, "{r}");
    assert_eq!(u(&r, "rx_packets"), sent, "{r}");
    assert_eq!(u(&r, "duplicates"), 0, "{r}");
    let l = &r["latency"];
    assert_eq!(u(l, "count"), sent, "{l}");
    let p: Vec<u64> = ["min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"]
        .iter()
        .map(|k| u(l, k))
        .collect();
    assert!(p[0] > 0 && p.windows(2).all(|w| w[0] <= w[1]), "{l}");
    let streams = r["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 4);
    for s in streams {
        assert_eq!(u(s, "lost"), 0, "{s}");
    }
    // Per-packet bonding with weights 1:2: both uplinks carried the stream, isp2 about twice
    // as much (the edge's own keepalives and ARP add a few).
    let (isp1, isp2) = (after.0 - before.0, after.1 - before.1);
    assert!(
        isp1 + isp2 >= sent,
        "uplinks carried {isp1} + {isp2} for {sent}"
    );
    let ratio = isp2 as f64 / isp1.max(1) as f64;
    assert!((1.8..=2.2).contains(&ratio), "isp1 {isp1}, isp2 {isp2}");

    // End the sink; its last report is the trial's.
    let c = UnixStream::connect(sock).expect("connect to the sink");
    (&c).write_all(b"{\"op\":\"quit\"}\n").expect("quit");
    let mut answer = String::new();
    BufReader::new(&c).read_line(&mut answer).expect("answer");
    let last = sink.json();
    assert_eq!(u(&last, "packets"), sent, "{last}");
}

/// `benches/lab.sh --smoke`: a few seconds of every variant, then the lab is gone.
#[test]
fn lab_bench_smoke_mode_starts_and_stops_cleanly() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let prefix = format!("bpb{}", std::process::id());
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = braid_lab(&["down", "--prefix", &self.0]);
        }
    }
    let _down = Down(prefix.clone());
    let script = workspace().join("benches/lab.sh");
    let b = braidd();
    let child = Command::new("bash")
        .arg(&script)
        .args([
            "--smoke",
            "--prefix",
            &prefix,
            "--braidd",
            b.to_str().unwrap(),
        ])
        .args(["--pktgen", pktgen()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run benches/lab.sh");
    let out = Running {
        child: Some(child),
        started: Instant::now(),
    }
    .wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    for variant in [
        "ceiling",
        "ceiling-braid",
        "braid",
        "braid-libxdp",
        "kernel",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(variant)),
            "no {variant} row:\n{}",
            text(&out)
        );
    }
    assert!(stdout.contains("braid/kernel"), "{}", text(&out));
    let list = String::from_utf8_lossy(&run("ip", &["netns", "list"]).stdout).into_owned();
    assert!(
        !list.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "namespaces left:\n{list}"
    );
    assert!(!Path::new("/tmp/braid-lab").join(&prefix).exists());
}
