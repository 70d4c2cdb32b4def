//! Learned weights end to end, in the namespace lab with the link emulator shaping isp1 to
//! 100 and isp2 to 200 Mbit/s: the edge learns its weights (`braidctl weights auto`) while a
//! UDP stream from the LAN host saturates the bond; isp2 is then shaped to 50 Mbit/s at run
//! time, and the edge's learned weights must reach the new ratio (2:1) within 10 % in under
//! 5 s and stay there, and stay as they are once the stream ends. `braidctl weights isp1=1
//! isp2=2` makes them manual again.
//!
//! The test builds its own lab under its own prefix and tears it down when it ends, failed or
//! not. It needs root (network namespaces, AF_XDP): without it it is skipped, or fails if `CI`
//! or `BRAID_LAB=1` is set.

mod common;

use braid_testkit::lab::{can_run, Need};
use common::{bin, exec, text, Lab, INET_HOST};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The LAN host.
const LAN_HOST: &str = "198.18.1.2";
/// How long the learned ratio may take to reach the new capacities' after the change.
const CONVERGE: Duration = Duration::from_secs(5);
/// How long it must then stay within 10 % of them.
const HOLD: Duration = Duration::from_secs(2);

/// `braidctl --socket <edge> ARGS`; panics unless it succeeds.
fn braidctl(lab: &Lab, line: &[&str]) -> String {
    let out = Command::new(bin("braidctl"))
        .arg("--socket")
        .arg(lab.run_dir().join("edge.sock"))
        .args(line)
        .output()
        .expect("run braidctl");
    assert!(out.status.success(), "braidctl {line:?}:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The edge's links as `braidctl weights --json` gives them.
fn weights(lab: &Lab) -> Vec<Value> {
    let v: Value = serde_json::from_str(&braidctl(lab, &["weights", "--json"])).expect("JSON");
    v["links"].as_array().expect("links").clone()
}

/// The learned weights of isp1 and isp2, if both were learned.
fn learned(lab: &Lab) -> Option<(u64, u64)> {
    let links = weights(lab);
    let of = |name: &str| {
        links
            .iter()
            .find(|l| l["name"] == name)
            .and_then(|l| l["learned_weight"].as_u64())
    };
    Some((of("isp1")?, of("isp2")?))
}

/// True when `got` (isp1 : isp2) is within 10 % of `want`.
fn near(got: Option<(u64, u64)>, want: f64) -> bool {
    got.is_some_and(|(a, b)| b > 0 && (a as f64 / b as f64 / want - 1.0).abs() <= 0.10)
}

/// The UDP stream from the LAN host, stopped when dropped.
struct Stream(Child);

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `braid-pktgen gen` on the LAN host's eth0 to the internet host through the edge: 1400-byte
/// frames at 180 Mbit/s for at most `seconds`: more than the bond carries once isp2 is at 50
/// (150 Mbit/s), whatever the split; less than it carries before, at 1:2.
fn stream(lab: &Lab, seconds: u32) -> Stream {
    let mac = exec(&lab.ns("edge"), &["cat", "/sys/class/net/lan0/address"]);
    let mac = String::from_utf8_lossy(&mac.stdout).trim().to_string();
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("lan"),
            env!("CARGO_BIN_EXE_braid-pktgen"),
        ])
        .args(["gen", "--iface", "eth0", "--dst-mac", &mac])
        .args(["--src-ip", LAN_HOST, "--dst-ip", INET_HOST, "--flows", "8"])
        .args(["--size", "1400", "--rate", "180mbit", "--quiet"])
        .args(["--duration", &seconds.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn braid-pktgen");
    Stream(child)
}

#[test]
fn learned_weights_follow_a_capacity_changed_at_run_time_within_five_seconds() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::up(
        format!("bw{}-learn", std::process::id()),
        "--linkem --rate1 100mbit --rate2 200mbit",
    );
    lab.start_braid();
    lab.wait_for_path();

    let done = braidctl(&lab, &["weights", "auto"]);
    assert!(
        done.starts_with("weights: auto (learned from the links' capacity)"),
        "{done}"
    );
    for l in weights(&lab) {
        assert_eq!(l["weights"], "auto", "{l}");
        assert!(l["learned_weight"].is_null(), "nothing learned yet: {l}");
    }
    let table = braidctl(&lab, &["weights"]);
    assert!(
        table.starts_with("PEER  LINK  MODE  WEIGHT  LEARNED"),
        "{table}"
    );

    let load = stream(&lab, 20);
    // Let the stream and the figures settle: at 1:2 over 100 and 200 Mbit/s, 180 Mbit/s
    // saturates neither link, so the weights may stay as configured (or be learned near 1:2).
    thread::sleep(Duration::from_secs(3));
    let before = learned(&lab);
    assert!(before.is_none() || near(before, 0.5), "{before:?}");

    lab.cmd("linkem set --rate isp2=50mbit");
    let changed = Instant::now();
    let mut last = before;
    while !near(last, 2.0) {
        if changed.elapsed() > CONVERGE {
            lab.fail(&format!(
                "learned weights {last:?} are not 2:1 within 10 % {CONVERGE:?} after isp2 went \
                 from 200 to 50 Mbit/s"
            ));
        }
        thread::sleep(Duration::from_millis(100));
        last = learned(&lab);
    }
    let took = changed.elapsed();
    eprintln!("lab_weights: learned {last:?} (2:1 within 10 %) {took:?} after the change");
    let hold = Instant::now();
    while hold.elapsed() < HOLD {
        thread::sleep(Duration::from_millis(200));
        let now = learned(&lab);
        assert!(near(now, 2.0), "left 2:1 again: {now:?}\n{}", lab.logs());
    }

    // The stream ends: idle, the learned weights stay.
    drop(load);
    let kept = learned(&lab);
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(3) {
        thread::sleep(Duration::from_millis(200));
        assert_eq!(learned(&lab), kept, "idle, the learned weights move");
    }

    // Manual again: the configured weights (0 while a link's health has it down: a full
    // queue drops probes too), nothing learned shown.
    braidctl(&lab, &["weights", "isp1=1", "isp2=2"]);
    for l in weights(&lab) {
        assert_eq!(l["weights"], "manual", "{l}");
        assert!(l["learned_weight"].is_null(), "{l}");
        let used = if l["health"]["up"] == true {
            l["weight"].clone()
        } else {
            Value::from(0)
        };
        assert_eq!(l["effective_weight"], used, "{l}");
    }
}
