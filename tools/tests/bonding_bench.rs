//! `benches/bonding.sh --smoke`: both variants carry TCP and UDP through the lab with the link
//! emulator's delay and loss set at run time, the results come out as a table, points and a
//! chart, and the lab is gone afterwards. Needs root (network namespaces): without it the test is
//! skipped, or fails if `CI` or `BRAID_LAB=1` is set.

mod common;

use braid_testkit::lab::{can_run, Need};
use common::{bin, text};
use serde_json::Value;
use std::process::{Command, Stdio};

#[test]
fn bonding_bench_smoke_mode_measures_both_variants_and_stops_cleanly() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let prefix = format!("bb{}", std::process::id());
    let out_dir = std::env::temp_dir().join(format!("{prefix}-bonding"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/bonding.sh");
    let out = Command::new("timeout")
        .args(["300", "bash"])
        .arg(&script)
        .args(["--smoke", "--prefix", &prefix, "--braidd"])
        .arg(bin("braidd"))
        .arg("--out")
        .arg(&out_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run benches/bonding.sh");
    let read = |name: &str| std::fs::read_to_string(out_dir.join(name)).unwrap_or_default();
    let (points, svg) = (read("points.jsonl"), read("bonding.svg"));
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(out.status.success(), "{}", text(&out));

    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "namespaces left:\n{list}"
    );

    // --smoke: an RTT difference of 10 ms, loss 0 and 1 %; per variant one flow at each loss,
    // four flows and the UDP stream at no loss.
    let points: Vec<Value> = points
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON point"))
        .collect();
    for variant in ["braid", "kernel"] {
        let of = |kind: &str, loss: f64, flows: Option<u64>| -> Vec<&Value> {
            points
                .iter()
                .filter(|p| {
                    p["variant"] == variant
                        && p["kind"] == kind
                        && p["rtt_diff_ms"].as_f64() == Some(10.0)
                        && p["loss_pct"].as_f64() == Some(loss)
                        && (flows.is_none() || p["flows"].as_u64() == flows)
                })
                .collect()
        };
        for (loss, flows) in [(0.0, 1), (1.0, 1), (0.0, 4)] {
            let tcp = of("tcp", loss, Some(flows));
            assert_eq!(
                tcp.len(),
                1,
                "{variant}: {flows} flow(s) at {loss} %: {points:?}"
            );
            let goodput = tcp[0]["goodput_mbps"].as_f64().unwrap_or(0.0);
            assert!(
                goodput > 1.0 && goodput < 300.0,
                "{variant}: {flows} flow(s) at {loss} %: {goodput} Mbit/s is not what 300 Mbit/s of links carry"
            );
            assert!(
                tcp[0]["retrans_pct"].as_f64().is_some(),
                "{variant}: {:?}",
                tcp[0]
            );
        }
        let udp = of("udp", 0.0, None);
        assert_eq!(udp.len(), 1, "{variant}: UDP: {points:?}");
        let lost = udp[0]["lost_pct"].as_f64().unwrap_or(100.0);
        assert!(lost < 50.0, "{variant}: UDP lost {lost} %");
        // isp2 is 5 ms further each way: a third of the stream takes isp1 and arrives early.
        let p99 = udp[0]["p99_ms"].as_f64().unwrap_or(0.0);
        assert!(
            p99 >= 4.5,
            "{variant}: UDP p99 {p99} ms under isp2's added delay"
        );
        assert!(udp[0]["reordered_pct"].as_f64().is_some(), "{:?}", udp[0]);
        assert_eq!(of("udp", 1.0, None).len(), 0, "UDP only at no loss");
    }
    assert_eq!(points.len(), 8, "{points:?}");

    let stdout = String::from_utf8_lossy(&out.stdout);
    for row in ["| 10 ms | 0 % |", "| 10 ms | 1 % |"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(row)),
            "no row {row}:\n{}",
            text(&out)
        );
    }
    // One line per variant and loss.
    assert_eq!(svg.matches("<polyline").count(), 4, "{svg}");
}
