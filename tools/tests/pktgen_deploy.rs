//! `deploy/pktgen/pktgen.sh` in its dry run (no kernel pktgen needed, nothing is sent): what it
//! would write to /proc/net/pktgen, and what it refuses.

use std::path::Path;
use std::process::{Command, Output};

fn script(args: &[&str]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/pktgen/pktgen.sh");
    Command::new("bash")
        .arg(path)
        .args(args)
        .output()
        .expect("run pktgen.sh")
}

#[test]
fn dry_run_configures_one_thread_per_queue_with_its_own_source_port() {
    let out = script(&[
        "-N",
        "-i",
        "eth9",
        "-d",
        "203.0.113.130",
        "-m",
        "02:00:00:00:00:02",
        "-t",
        "2",
        "-s",
        "128",
        "-r",
        "100000",
        "-n",
        "5000",
        "-S",
        "198.18.0.1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    for t in 0..2 {
        let dev = format!("/proc/net/pktgen/eth9@{t}");
        for want in [
            format!("/proc/net/pktgen/kpktgend_{t} <- add_device eth9@{t}"),
            format!("{dev} <- count 5000"),
            format!("{dev} <- clone_skb 0"),
            format!("{dev} <- pkt_size 124"),
            format!("{dev} <- dst 203.0.113.130"),
            format!("{dev} <- dst_mac 02:00:00:00:00:02"),
            format!("{dev} <- udp_src_min {}", 9000 + t),
            format!("{dev} <- udp_src_max {}", 9000 + t),
            format!("{dev} <- queue_map_min {t}"),
            format!("{dev} <- ratep 50000"),
        ] {
            assert!(
                lines.contains(&want.as_str()),
                "missing {want:?} in:\n{text}"
            );
        }
    }
    assert!(
        lines.last().is_some_and(|l| l.contains("pgctrl <- start")),
        "{text}"
    );
}

#[test]
fn unbounded_or_malformed_runs_are_refused() {
    let base = [
        "-N",
        "-i",
        "eth9",
        "-d",
        "203.0.113.130",
        "-m",
        "02:00:00:00:00:02",
    ];
    for extra in [
        &["-n", "0"][..],
        &["-s", "63"],
        &["-s", "1519"],
        &["-T", "0"],
        &["-p", "65535", "-t", "2"],
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let out = script(&args);
        assert!(!out.status.success(), "{extra:?} was accepted");
    }
    let out = script(&[
        "-N",
        "-i",
        "eth9",
        "-d",
        "203.0.113.130",
        "-m",
        "02:00:00:00:00",
    ]);
    assert!(!out.status.success());
    let out = script(&["-N", "-d", "203.0.113.130", "-m", "02:00:00:00:00:02"]);
    assert_eq!(out.status.code(), Some(2), "no interface: usage");
}
