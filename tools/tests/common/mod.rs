//! The namespace-lab harness shared by the lab tests: a [`Lab`] that exists while its value does
//! (`braid-lab up` on creation, `down` on drop, also on panic), commands run in its namespaces,
//! and the workspace binaries the tests drive. Each test binary uses part of it.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The internet host, where the servers listen.
pub const INET_HOST: &str = "203.0.113.130";

/// A lab under its own namespace prefix.
pub struct Lab {
    pub prefix: String,
}

impl Lab {
    /// `braid-lab up --prefix <prefix> <options>`, after removing a stale lab of that name.
    pub fn up(prefix: String, options: &str) -> Lab {
        let _ = braid_lab(&["down", "--prefix", &prefix]);
        let lab = Lab { prefix };
        lab.cmd(&format!("up {options}"));
        lab
    }

    /// The namespace of a lab role: lan, edge, net, hub or inet.
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// Where braid-lab keeps the lab's configs, keys, sockets and logs.
    pub fn run_dir(&self) -> PathBuf {
        Path::new("/tmp/braid-lab").join(&self.prefix)
    }

    /// Runs `braid-lab <line> --prefix <prefix>`; panics unless it succeeds; returns its stdout.
    pub fn cmd(&self, line: &str) -> String {
        let mut argv = args(line);
        argv.extend(["--prefix", &self.prefix]);
        let out = braid_lab(&argv);
        assert!(out.status.success(), "braid-lab {line}:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Packets the edge sent up each uplink, as `net` counts them on e1 (isp1) and e2 (isp2),
    /// read together by one process so that traffic between the two reads does not skew them.
    pub fn upstream_packets(&self) -> (u64, u64) {
        let out = exec(
            &self.ns("net"),
            &[
                "cat",
                "/sys/class/net/e1/statistics/rx_packets",
                "/sys/class/net/e2/statistics/rx_packets",
            ],
        );
        let n: Vec<u64> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        match n[..] {
            [e1, e2] => (e1, e2),
            _ => panic!("uplink counters: {}", text(&out)),
        }
    }

    /// `braidctl <what> --json` of `role` (edge or hub).
    pub fn braidctl(&self, role: &str, what: &str) -> Value {
        let socket = self.run_dir().join(format!("{role}.sock"));
        let out = Command::new(bin("braidctl"))
            .args(["--socket"])
            .arg(&socket)
            .args([what, "--json"])
            .output()
            .expect("run braidctl");
        assert!(out.status.success(), "braidctl {what}:\n{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("braidctl's JSON")
    }

    /// Starts braidd (from target/<profile>/) at the hub and the edge.
    pub fn start_braid(&self) {
        let line = format!(
            "start --prefix {} --braidd {}",
            self.prefix,
            bin("braidd").display()
        );
        let out = braid_lab(&args(&line));
        if !out.status.success() {
            self.fail(&format!("braid-lab start failed:\n{}", text(&out)));
        }
    }

    /// braidd's own lines (not libxdp's) of both daemons' logs.
    pub fn logs(&self) -> String {
        ["hub", "edge"]
            .iter()
            .map(|role| {
                let log = std::fs::read_to_string(self.run_dir().join(format!("{role}.log")))
                    .unwrap_or_else(|e| format!("(no log: {e})"));
                let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("braidd")).collect();
                format!("--- braidd ({role}):\n{}\n", lines.join("\n"))
            })
            .collect()
    }

    /// Panics with `msg` and the daemons' logs.
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.logs())
    }

    /// Waits (up to 15 s) until the LAN host gets an answer from the internet host.
    pub fn wait_for_path(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let ping = format!("ping -c 1 -W 1 {INET_HOST}");
            if exec(&self.ns("lan"), &args(&ping)).status.success() {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
        self.fail("the LAN host never reached the internet host through braid");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = braid_lab(&["down", "--prefix", &self.prefix]);
        if !out.status.success() {
            eprintln!("braid-lab down {} failed:\n{}", self.prefix, text(&out));
        }
    }
}

/// Runs `args` in namespace `ns` and returns its output.
pub fn exec(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip netns exec")
}

/// Runs a whitespace-separated command line in `ns`; panics unless it succeeds; returns its stdout.
pub fn sh(ns: &str, line: &str) -> String {
    let out = exec(ns, &args(line));
    assert!(out.status.success(), "{ns}: {line} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The words of a command line.
pub fn args(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Runs `tools/braid-lab` with `args`, with this build's braidctl for the keys.
pub fn braid_lab(args: &[&str]) -> Output {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("braid-lab"))
        .args(args)
        .env("BRAIDCTL", bin("braidctl"))
        .stdin(Stdio::null())
        .output()
        .expect("run braid-lab")
}

/// A command's status and output, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A workspace binary from target/<profile>/, where cargo puts them (`scripts/test` builds them
/// all first).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build --workspace --bins --profile test; \
         scripts/test does)",
        path.display()
    );
    path
}

/// The byte-exact transfer tool.
pub fn xfer() -> &'static str {
    env!("CARGO_BIN_EXE_braid-xfer")
}

/// Packets a link that carries no traffic may still see over `secs` seconds one way: ARP, and
/// the link probes of both ends (each sends 20 a second and answers the other's 20).
pub fn idle_link_packets(secs: f64) -> u64 {
    20 + (45.0 * secs).ceil() as u64
}

/// A byte-exact transfer of `bytes` each way from the LAN host, running in the background.
pub struct Transfer {
    server: Child,
    client: Child,
}

impl Transfer {
    pub fn start(lab: &Lab, bytes: u64) -> Transfer {
        Transfer::start_from(lab, "lan", 5001, bytes)
    }

    /// A transfer from the host of namespace role `lan` to the internet host's `port`.
    pub fn start_from(lab: &Lab, lan: &str, port: u16, bytes: u64) -> Transfer {
        let listen = format!("{INET_HOST}:{port}");
        let serve = format!("{} serve --listen {listen} --once --timeout 120", xfer());
        let server = Command::new("ip")
            .args(["netns", "exec", &lab.ns("inet")])
            .args(args(&serve))
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn braid-xfer serve");
        thread::sleep(Duration::from_millis(300));
        let send = format!(
            "{} send --to {listen} --bytes {bytes} --timeout 120",
            xfer()
        );
        let client = Command::new("ip")
            .args(["netns", "exec", &lab.ns(lan)])
            .args(args(&send))
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn braid-xfer send");
        Transfer { server, client }
    }

    pub fn running(&mut self) -> bool {
        matches!(self.client.try_wait(), Ok(None))
    }

    /// The client's report, after checking it says ok.
    pub fn finish(mut self, lab: &Lab) -> Value {
        let client = std::mem::replace(
            &mut self.client,
            Command::new("true").spawn().expect("spawn true"),
        );
        let out = client.wait_with_output().expect("wait for braid-xfer send");
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| lab.fail(&format!("client report unreadable ({e}): {out:?}")));
        if report["ok"] != true {
            lab.fail(&format!("transfer failed: {report}"));
        }
        report
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        for c in [&mut self.client, &mut self.server] {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// Drops of `reason` in `stats` (`braidctl stats --json`), summed over workers.
pub fn drops(stats: &Value, reason: &str) -> u64 {
    stats["drops"]
        .as_array()
        .expect("drops")
        .iter()
        .filter(|d| d["reason"] == reason)
        .filter_map(|d| d["count"].as_u64())
        .sum()
}
