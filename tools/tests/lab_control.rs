//! `braidctl` against running daemons in the namespace lab (`tools/braid-lab`): weights and link
//! state change the split on the wire at once, a TCP transfer running through the changes stays
//! byte-exact with no drop counter rising, `watch` shows live rates, save and reload round-trip,
//! and the socket refuses what it must.
//!
//! Every test builds its own lab under its own prefix and tears it down when it ends, failed or
//! not. They need root (network namespaces); without it they are skipped, or fail if `CI` or
//! `BRAID_LAB=1` is set (`braid_testkit::lab`). `braidd` and `braidctl` are taken from the directory of the test binary's profile (target/<profile>/).

mod common;

use braid_testkit::lab::{can_run, Need};
use common::{args, bin, exec, idle_link_packets, text, xfer, Lab, INET_HOST};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Packets each measurement covers at least.
const MEASURED: u64 = 10_000;
/// Allowed relative deviation of the per-link packet ratio from the weights' ratio.
const RATIO_TOLERANCE: f64 = 0.02;
/// Bytes of the TCP transfer each way: long enough to run through every change.
const TRANSFER_BYTES: u64 = 1_200_000_000;

// ---- harness -------------------------------------------------------------------------------

impl Lab {
    /// `braid-lab up` with two queues and workers, packet mode, weights 1:2 (and `extra`
    /// options), then both daemons.
    fn start(test: &str, extra: &str) -> Lab {
        let lab = Lab::up(
            format!("bc{}-{test}", std::process::id()),
            &format!("--queues 2 --workers 2 --mode packet --weights 1,2 {extra}"),
        );
        lab.start_braid();
        lab.wait_for_path();
        lab
    }

    /// The control socket of the edge or the hub.
    fn socket(&self, role: &str) -> PathBuf {
        self.run_dir().join(format!("{role}.sock"))
    }

    /// `braidctl --socket <role's socket> <line>`; panics unless it succeeds; its stdout.
    fn ctl(&self, role: &str, line: &str) -> String {
        let out = braidctl(&self.socket(role), &args(line));
        if !out.status.success() {
            self.fail(&format!("braidctl {line} ({role}):\n{}", text(&out)));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `braidctl --json ...` parsed.
    fn ctl_json(&self, role: &str, line: &str) -> Value {
        let out = self.ctl(role, &format!("--json {line}"));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("braidctl {line}: {e}: {out}"))
    }

    /// Every drop counter of a daemon, by reason, summed over workers.
    fn drops(&self, role: &str) -> BTreeMap<String, u64> {
        let stats = self.ctl_json(role, "stats");
        stats["drops"]
            .as_array()
            .expect("drops")
            .iter()
            .map(|d| {
                (
                    d["reason"].as_str().expect("reason").to_string(),
                    d["count"].as_u64().expect("count"),
                )
            })
            .collect()
    }

    /// Waits (up to 15 s) until the daemon's last rate sample shows `nic` receiving more than
    /// `pps` packets a second.
    fn wait_for_rate(&self, role: &str, nic: &str, pps: u64) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let stats = self.ctl_json(role, "watch --count 1");
            let rx = stats["interfaces"]
                .as_array()
                .and_then(|a| a.iter().find(|i| i["name"] == nic))
                .and_then(|i| i["rx"]["pps"].as_u64());
            if rx.is_some_and(|r| r > pps) {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
        self.fail(&format!("{nic} never received {pps} packets a second"));
    }

    /// Sends `count` UDP datagrams from the LAN host to the echo on the internet host.
    fn udp_burst(&self, count: u64) -> Value {
        let line = format!(
            "{} udp-send --to {INET_HOST}:6001 --count {count} --size 200 --pps 10000 --timeout 20",
            xfer()
        );
        let out = exec(&self.ns("lan"), &args(&line));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| self.fail(&format!("udp-send report ({e}):\n{}", text(&out))))
    }
}

/// A process started in a lab namespace, killed on drop if still running.
struct Proc {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn start(ns: &str, line: &str) -> Proc {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args(line))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn in a namespace");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Proc { child, stdout }
    }

    /// The next JSON line it prints.
    fn line(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("it said {line:?}: {e}"))
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn braidctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(bin("braidctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run braidctl")
}

/// The links' (weight, effective weight, state) as `braidctl links` reports them.
fn link_settings(links: &Value) -> Vec<(u64, u64, String)> {
    links["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| {
            (
                l["weight"].as_u64().expect("weight"),
                l["effective_weight"].as_u64().expect("effective weight"),
                l["state"].as_str().expect("state").to_string(),
            )
        })
        .collect()
}

/// The rows of one `watch` table: interface → (input kbps, input pk/s, output kbps, output pk/s).
fn watch_tables(out: &str) -> Vec<BTreeMap<String, [f64; 4]>> {
    out.split("Averages for the last ")
        .skip(1)
        .map(|table| {
            table
                .lines()
                .skip(2)
                .filter_map(|l| {
                    let cells: Vec<&str> = l.split_whitespace().collect();
                    let [name, a, b, c, d] = cells.as_slice() else {
                        return None;
                    };
                    let n = |s: &str| s.parse::<f64>().expect("a rate");
                    Some((name.to_string(), [n(a), n(b), n(c), n(d)]))
                })
                .collect()
        })
        .collect()
}

// ---- the tests -----------------------------------------------------------------------------

/// The scenario: traffic in packet mode from the LAN host; `weights isp1=1 isp2=3` makes
/// the split on the WAN veths 1:3 within 2% over the next 10,000+ packets; `link isp1 down` moves
/// everything to isp2; a TCP transfer running through both changes arrives byte for byte, and no
/// drop counter of either daemon rises. `watch` shows live rates meanwhile.
#[test]
fn weights_and_link_state_apply_at_once_without_loss() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::start("split", "");
    let (lan, inet) = (lab.ns("lan"), lab.ns("inet"));
    let drops_before = (lab.drops("edge"), lab.drops("hub"));

    let mut echo = Proc::start(
        &inet,
        &format!("{} udp-echo --listen {INET_HOST}:6001 --timeout 60", xfer()),
    );
    assert_eq!(echo.line()["event"], "listening");
    let mut server = Proc::start(
        &inet,
        &format!(
            "{} serve --listen {INET_HOST}:5001 --once --timeout 120",
            xfer()
        ),
    );
    assert_eq!(server.line()["event"], "listening");
    let mut client = Proc::start(
        &lan,
        &format!(
            "{} send --to {INET_HOST}:5001 --bytes {TRANSFER_BYTES} --timeout 120",
            xfer()
        ),
    );
    let still_running = |client: &mut Proc, what: &str| {
        if !client.running() {
            lab.fail(&format!(
                "the TCP transfer ended before {what}: make TRANSFER_BYTES larger"
            ));
        }
    };

    // watch: two refreshes during the transfer, every NIC with traffic both ways.
    lab.wait_for_rate("edge", "lan0", 1000);
    let watch = lab.ctl("edge", "watch --count 2");
    let tables = watch_tables(&watch);
    assert_eq!(tables.len(), 2, "two refreshes:\n{watch}");
    for table in &tables {
        for nic in ["lan0", "wan1", "wan2"] {
            let rates = table
                .get(nic)
                .unwrap_or_else(|| panic!("{nic} missing:\n{watch}"));
            assert!(rates.iter().all(|&r| r > 0.0), "{nic} idle:\n{watch}");
        }
        // The uplinks carry the LAN's traffic 1:2 (packets per second, within sampling noise).
        let up = table["wan2"][3] / table["wan1"][3];
        assert!((1.6..2.4).contains(&up), "wan2/wan1 output {up}:\n{watch}");
        assert!(
            table["lan0"][1] > 1000.0,
            "a transfer's worth of packets:\n{watch}"
        );
    }
    still_running(&mut client, "the weights changed");

    // 1:2 -> 1:3, one change for both links.
    let said = lab.ctl("edge", "weights isp1=1 isp2=3");
    assert!(
        said.starts_with("weights set: isp1=1 isp2=3 (generation 2)"),
        "{said}"
    );
    let before = lab.upstream_packets();
    let burst = lab.udp_burst(MEASURED);
    let after = lab.upstream_packets();
    let (isp1, isp2) = (after.0 - before.0, after.1 - before.1);
    assert!(isp1 + isp2 >= MEASURED, "only {} packets", isp1 + isp2);
    let ratio = isp2 as f64 / isp1.max(1) as f64;
    eprintln!("after weights 1:3: isp1 {isp1} isp2 {isp2} packets, ratio {ratio:.4}");
    assert!(
        (ratio - 3.0).abs() / 3.0 <= RATIO_TOLERANCE,
        "after weights 1:3: isp1 {isp1} isp2 {isp2} packets, ratio {ratio:.4}"
    );
    assert_eq!(burst["sent"], MEASURED, "{burst}");
    still_running(&mut client, "isp1 went down");

    // isp1 down: everything on isp2, isp1's weight kept.
    let said = lab.ctl("edge", "link isp1 down");
    assert!(said.starts_with("link isp1 down (generation 3)"), "{said}");
    let before = lab.upstream_packets();
    let started = std::time::Instant::now();
    lab.udp_burst(MEASURED);
    let after = lab.upstream_packets();
    let idle = idle_link_packets(started.elapsed().as_secs_f64());
    let (isp1, isp2) = (after.0 - before.0, after.1 - before.1);
    eprintln!("with isp1 down: isp1 {isp1} isp2 {isp2} packets");
    assert!(
        isp1 <= idle && isp2 >= MEASURED,
        "with isp1 down: isp1 {isp1} isp2 {isp2} packets"
    );
    let links = lab.ctl_json("edge", "links");
    assert_eq!(
        link_settings(&links),
        [(1, 0, "down".into()), (3, 3, "up".into())]
    );
    still_running(&mut client, "isp1 came back");
    lab.ctl("edge", "link isp1 up");

    // The transfer went through every change intact.
    let report = client.line();
    assert_eq!(report["ok"], true, "client: {report}");
    assert_eq!(report["bytes_up"], TRANSFER_BYTES, "{report}");
    assert_eq!(report["bytes_down"], TRANSFER_BYTES, "{report}");
    let served = server.line();
    assert_eq!(served["event"], "done", "{served}");
    assert_eq!(served["ok"], true, "server: {served}");

    let drops_after = (lab.drops("edge"), lab.drops("hub"));
    assert_eq!(drops_before.0, drops_after.0, "edge drop counters rose");
    assert_eq!(drops_before.1, drops_after.1, "hub drop counters rose");
    assert!(drops_after.0.values().all(|&n| n == 0), "{drops_after:?}");
    let edge_status = lab.ctl_json("edge", "status");
    assert_eq!(edge_status["generation"], 4, "{edge_status}");
}

/// The control plane of a real daemon: its socket refuses a user without permission and
/// malformed lines, `save` writes the running state into the file keeping its comments, and
/// `reload` brings back what was saved (and refuses a broken file whole).
#[test]
fn save_reload_and_refusals_against_a_real_daemon() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::start("ctl", "");
    let socket = lab.socket("edge");
    let meta = std::fs::metadata(&socket).expect("edge socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // A user without permission gets a clear refusal (a copy of braidctl any user may run).
    let public = std::env::temp_dir().join(format!("braid-lab-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&public).expect("temp dir");
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let exe = public.join("braidctl");
    std::fs::copy(bin("braidctl"), &exe).expect("copy braidctl");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut denied = None;
    for _ in 0..50 {
        match Command::new(&exe)
            .arg("--socket")
            .arg(&socket)
            .arg("status")
            .uid(65534)
            .gid(65534)
            .output()
        {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                thread::sleep(Duration::from_millis(20))
            }
            other => {
                denied = Some(other.expect("run braidctl as nobody"));
                break;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&public);
    let denied = denied.expect("braidctl ran");
    assert_eq!(denied.status.code(), Some(1), "{}", text(&denied));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("permission denied"),
        "{}",
        text(&denied)
    );

    // Malformed lines get errors; the connection and the daemon go on.
    let stream = UnixStream::connect(&socket).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    for line in [
        "garbage\n",
        "{\"version\":9,\"request\":{\"type\":\"status\"}}\n",
        "{\"version\":1,\"request\":{\"type\":\"set_weights\",\"weights\":[{\"link\":\"isp1\",\"weight\":5000}]}}\n",
        "{\"version\":1,\"request\":{\"type\":\"status\"}}\n",
    ] {
        writer.write_all(line.as_bytes()).expect("send");
        let mut answer = String::new();
        reader.read_line(&mut answer).expect("answer");
        let v: Value = serde_json::from_str(&answer).expect("a JSON answer");
        if line.contains("\"status\"}}") && line.contains("\"version\":1") {
            assert_eq!(v["ok"]["type"], "status", "{answer}");
        } else {
            assert!(v["error"]["kind"].is_string(), "{line} -> {answer}");
        }
    }
    drop((reader, writer));

    // Runtime changes, saved, survive a reload; the file keeps its comments.
    let config = lab.run_dir().join("edge.toml");
    let original = std::fs::read_to_string(&config).expect("edge.toml");
    lab.ctl("edge", "weights isp1=2 isp2=5");
    lab.ctl("edge", "link isp2 down");
    lab.ctl(
        "edge",
        "routes add 198.18.70.0/24 --dev wan1 --via 198.18.11.1",
    );
    lab.ctl("edge", "rules add 198.18.2.0/24 bond --index 0");
    let said = lab.ctl("edge", "save");
    assert!(said.starts_with("saved the running state to "), "{said}");
    let saved = std::fs::read_to_string(&config).expect("edge.toml");
    for comment in original.lines().filter(|l| l.starts_with('#')) {
        assert!(saved.contains(comment), "{comment:?} lost:\n{saved}");
    }
    assert!(
        saved.contains("weight = 5") && saved.contains("state = \"down\""),
        "{saved}"
    );
    let generation = lab.ctl_json("edge", "status")["generation"]
        .as_u64()
        .expect("generation");
    lab.ctl("edge", "reload");
    let status = lab.ctl_json("edge", "status");
    assert_eq!(status["generation"], generation + 1);
    assert_eq!(
        link_settings(&lab.ctl_json("edge", "links")),
        [(2, 2, "up".into()), (5, 0, "down".into())]
    );
    let rules = lab.ctl_json("edge", "rules");
    assert_eq!(rules["rules"][0]["from"], "198.18.2.0/24", "{rules}");
    let routes = lab.ctl_json("edge", "routes");
    assert!(
        routes["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .any(|r| r["to"] == "198.18.70.0/24"),
        "{routes}"
    );
    lab.wait_for_path();

    // A broken file is refused whole; the daemon keeps running as it was.
    std::fs::write(&config, saved.replace("weight = 5", "weight = 5000")).expect("write");
    let out = braidctl(&socket, &["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is refused; the running configuration stays")
            && err.contains("peer[0].link[1].weight: link isp2: weight 5000 is out of range"),
        "{err}"
    );
    assert_eq!(lab.ctl_json("edge", "status")["generation"], generation + 1);
    lab.wait_for_path();
}

/// `braidctl nat` lists a masquerading hub's sessions, filtered by address; an edge that does
/// not masquerade says so.
#[test]
fn nat_lists_the_sessions_of_a_masquerading_hub() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::start("nat", "--nat");
    assert_eq!(lab.ctl("edge", "nat"), "masquerade not enabled\n");
    let mut echo = Proc::start(
        &lab.ns("inet"),
        &format!("{} udp-echo --listen {INET_HOST}:6001 --timeout 30", xfer()),
    );
    assert_eq!(echo.line()["event"], "listening");
    let burst = lab.udp_burst(100);
    assert_eq!(burst["received"], 100, "{burst}");

    let nat = lab.ctl_json("hub", "nat --address 198.18.1.2");
    assert_eq!(nat["enabled"], true, "{nat}");
    assert_eq!(nat["masquerades"][0]["interface"], "wan0", "{nat}");
    assert_eq!(
        nat["masquerades"][0]["addresses"][0], "203.0.113.2",
        "{nat}"
    );
    let sessions = nat["sessions"].as_array().expect("sessions");
    let udp: Vec<&Value> = sessions
        .iter()
        .filter(|s| s["protocol"] == "udp" && s["state"] == "udp")
        .collect();
    assert_eq!(udp.len(), 1, "one UDP flow, one session: {nat}");
    let inside = udp[0]["inside"].as_str().expect("inside");
    let outside = udp[0]["outside"].as_str().expect("outside");
    assert!(inside.starts_with("198.18.1.2:"), "{nat}");
    assert!(outside.starts_with("203.0.113.2:"), "{nat}");
    assert!(
        nat["counters"]["translated_out"].as_u64() >= Some(100),
        "{nat}"
    );
    assert!(
        nat["counters"]["translated_in"].as_u64() >= Some(100),
        "{nat}"
    );

    let table = lab.ctl("hub", "nat");
    assert!(
        table.starts_with("masquerade on wan0 as 203.0.113.2\n"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains(inside) && l.contains(outside)),
        "{table}"
    );
    let other = lab.ctl_json("hub", "nat --address 198.18.9.9");
    assert_eq!(
        other["sessions"].as_array().map(Vec::len),
        Some(0),
        "{other}"
    );
}
