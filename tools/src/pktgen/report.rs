//! Human-readable summaries: of a generator run, of a sink, of a trial, of a throughput search.

use super::gen::GenReport;
use super::latency::LatencySummary;
use super::rate::si;
use super::rfc2544::SizeResult;
use super::session::TrialResult;
use super::sink::{KernelDrops, SinkReport};
use std::fmt::Write;

/// Streams listed one by one in a summary; more are summed up.
const MAX_STREAM_ROWS: usize = 16;

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in nanoseconds with a readable unit: `850 ns`, `12.3 µs`, `4.56 ms`, `1.20 s`.
pub fn duration_ns(ns: u64) -> String {
    let n = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", n / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", n / 1e6)
    } else {
        format!("{:.2} s", n / 1e9)
    }
}

/// `loss 0.0012%`-style percentage of a ratio.
fn pct(ratio: f64) -> String {
    format!("{:.4}%", ratio * 100.0)
}

/// One line of latency percentiles.
pub fn latency_line(l: &LatencySummary) -> String {
    if l.count == 0 {
        return "latency   (nothing received)".into();
    }
    let mut s = format!(
        "latency   min {}  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        duration_ns(l.min_ns),
        duration_ns(l.p50_ns),
        duration_ns(l.p90_ns),
        duration_ns(l.p99_ns),
        duration_ns(l.p999_ns),
        duration_ns(l.max_ns)
    );
    if l.negative > 0 {
        let _ = write!(s, "  ({} before their stamp: clock step?)", l.negative);
    }
    s
}

/// The kernel's drops in front of the sink's sockets.
fn kernel_line(k: &KernelDrops) -> String {
    format!(
        "sink drops in the kernel: {} (fill ring empty {}, receive ring full {})",
        thousands(k.rx_dropped),
        thousands(k.fill_ring_empty),
        thousands(k.rx_ring_full)
    )
}

/// The summary of a generator run.
pub fn gen_summary(r: &GenReport) -> String {
    let mut s = format!(
        "sent      {} packets in {:.2} s: {} pps, {}bit/s\n",
        thousands(r.packets),
        r.elapsed_ns as f64 / 1e9,
        si(r.pps()),
        si(r.bps())
    );
    if r.tx_busy > 0 {
        let _ = writeln!(
            s,
            "          transmit ring full {} times",
            thousands(r.tx_busy)
        );
    }
    s
}

/// The summary of what a sink received on its own (loss by sequence: the tail is not seen).
pub fn sink_summary(r: &SinkReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "received  {} generated packets ({} bytes), {} foreign frames",
        thousands(r.packets),
        thousands(r.bytes),
        thousands(r.foreign)
    );
    let _ = writeln!(
        s,
        "{:>6} {:>12} {:>12} {:>10} {:>10} {:>10}",
        "stream", "received", "lost(seq)", "dup", "reordered", "late"
    );
    for st in r.streams.iter().take(MAX_STREAM_ROWS) {
        let c = &st.counts;
        let _ = writeln!(
            s,
            "{:>6} {:>12} {:>12} {:>10} {:>10} {:>10}",
            st.stream,
            c.unique,
            c.lost(st.start, None),
            c.duplicates,
            c.reordered,
            c.too_late
        );
    }
    if r.streams.len() > MAX_STREAM_ROWS {
        let _ = writeln!(s, "   ... {} streams in all", r.streams.len());
    }
    let _ = writeln!(s, "{}", kernel_line(&r.kernel));
    let _ = writeln!(s, "{}", latency_line(&r.latency));
    s
}

/// The summary of a trial: sent, received, lost, latency, and per stream.
pub fn trial_summary(r: &TrialResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "sent      {} packets in {:.2} s: {} pps, {}bit/s (asked: {})",
        thousands(r.tx_packets),
        r.seconds,
        si(r.tx_pps),
        si(r.tx_bps),
        r.rate
    );
    let _ = writeln!(
        s,
        "received  {} packets: {} pps",
        thousands(r.rx_packets),
        si(r.rx_pps)
    );
    let _ = writeln!(
        s,
        "lost      {} ({})   duplicated {}   reordered {}   foreign {}",
        thousands(r.lost),
        pct(r.loss_ratio),
        thousands(r.duplicates),
        thousands(r.reordered),
        thousands(r.foreign)
    );
    let k = &r.sink_kernel_drops;
    if k.rx_ring_full + k.fill_ring_empty + k.rx_dropped > 0 {
        let _ = writeln!(s, "{}", kernel_line(k));
    }
    let _ = writeln!(s, "{}", latency_line(&r.latency));
    let _ = writeln!(
        s,
        "{:>6} {:>12} {:>12} {:>10} {:>10} {:>10}",
        "stream", "sent", "received", "lost", "dup", "reordered"
    );
    for st in r.streams.iter().take(MAX_STREAM_ROWS) {
        let _ = writeln!(
            s,
            "{:>6} {:>12} {:>12} {:>10} {:>10} {:>10}",
            st.stream, st.sent, st.received, st.lost, st.duplicates, st.reordered
        );
    }
    if r.streams.len() > MAX_STREAM_ROWS {
        let _ = writeln!(s, "   ... {} streams in all", r.streams.len());
    }
    s
}

/// The table of a throughput search, one row per frame size.
pub fn rfc2544_table(results: &[SizeResult]) -> String {
    let mut s = format!(
        "{:>6} {:>10} {:>10} {:>11} {:>10} {:>10} {:>10} {:>10} {:>7}\n",
        "size",
        "max kpps",
        "NDR kpps",
        "NDR Mbit/s",
        "NDR p50",
        "NDR p99",
        "PDR kpps",
        "PDR loss",
        "trials"
    );
    for r in results {
        let (nk, nm, n50, n99) =
            r.ndr
                .map_or(("-".into(), "-".into(), "-".into(), "-".into()), |n| {
                    (
                        format!("{:.1}", n.tx_pps / 1e3),
                        format!("{:.1}", n.tx_bps / 1e6),
                        duration_ns(n.latency.p50_ns),
                        duration_ns(n.latency.p99_ns),
                    )
                });
        let (pk, pl) = r.pdr.map_or(("-".into(), "-".into()), |p| {
            (format!("{:.1}", p.tx_pps / 1e3), pct(p.loss_ratio))
        });
        let _ = writeln!(
            s,
            "{:>6} {:>10.1} {:>10} {:>11} {:>10} {:>10} {:>10} {:>10} {:>7}",
            r.size,
            r.max_pps / 1e3,
            nk,
            nm,
            n50,
            n99,
            pk,
            pl,
            r.trials.len()
        );
    }
    s
}

/// The NDR of `size` in `results`, packets per second.
fn ndr_of(results: &[SizeResult], size: &str) -> Option<f64> {
    results
        .iter()
        .find(|r| r.size == size)
        .and_then(|r| r.ndr)
        .map(|n| n.tx_pps)
}

/// A ratio with two decimals, or `-`.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// One table of several variants' searches (e.g. `ceiling`, `braid`, `kernel`), a row per
/// variant and frame size; the rows of `subject` get its NDR's ratio to each of `against`.
pub fn compare_table(
    variants: &[(String, Vec<SizeResult>)],
    subject: &str,
    against: &[&str],
) -> String {
    let mut s = format!(
        "{:<8} {:>5} {:>10} {:>11} {:>10} {:>10} {:>10} {:>10}",
        "variant", "size", "NDR kpps", "NDR Mbit/s", "PDR kpps", "NDR p50", "NDR p99", "max kpps"
    );
    for a in against {
        let _ = write!(s, " {:>14}", format!("{subject}/{a}"));
    }
    s.push('\n');
    let of = |name: &str| variants.iter().find(|(n, _)| n == name).map(|(_, r)| r);
    for (name, results) in variants {
        for r in results {
            let dash = || "-".to_string();
            let ndr = r.ndr;
            let _ = write!(
                s,
                "{:<8} {:>5} {:>10} {:>11} {:>10} {:>10} {:>10} {:>10.1}",
                name,
                r.size,
                ndr.map_or_else(dash, |n| format!("{:.1}", n.tx_pps / 1e3)),
                ndr.map_or_else(dash, |n| format!("{:.1}", n.tx_bps / 1e6)),
                r.pdr
                    .map_or_else(dash, |p| format!("{:.1}", p.tx_pps / 1e3)),
                ndr.map_or_else(dash, |n| duration_ns(n.latency.p50_ns)),
                ndr.map_or_else(dash, |n| duration_ns(n.latency.p99_ns)),
                r.max_pps / 1e3
            );
            for a in against {
                let cell = if name == subject {
                    ratio(
                        ndr.map(|n| n.tx_pps),
                        of(a).and_then(|o| ndr_of(o, &r.size)),
                    )
                } else {
                    dash()
                };
                let _ = write!(s, " {cell:>14}");
            }
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::rfc2544::TrialBrief;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(duration_ns(850), "850 ns");
        assert_eq!(duration_ns(12_345), "12.3 µs");
        assert_eq!(duration_ns(4_560_000), "4.56 ms");
        assert_eq!(duration_ns(1_200_000_000), "1.20 s");
    }

    fn size(size: &str, ndr_kpps: Option<f64>) -> SizeResult {
        let brief = |pps: f64| TrialBrief {
            rate_pps: Some(pps),
            tx_pps: pps,
            tx_bps: pps * 512.0,
            rx_pps: pps,
            lost: 0,
            loss_ratio: 0.0,
            latency: LatencySummary {
                count: 1,
                p50_ns: 30_000,
                p99_ns: 150_000,
                ..LatencySummary::default()
            },
        };
        SizeResult {
            size: size.into(),
            max_pps: 500_000.0,
            ndr: ndr_kpps.map(|k| brief(k * 1e3)),
            pdr: ndr_kpps.map(|k| brief(k * 1e3)),
            trials: vec![],
        }
    }

    #[test]
    fn comparison_puts_ratios_on_the_subjects_rows() {
        let variants = vec![
            (
                "ceiling".to_string(),
                vec![size("64", Some(400.0)), size("1518", Some(300.0))],
            ),
            (
                "braid".to_string(),
                vec![size("64", Some(200.0)), size("1518", None)],
            ),
            (
                "kernel".to_string(),
                vec![size("64", Some(100.0)), size("1518", Some(150.0))],
            ),
        ];
        let t = compare_table(&variants, "braid", &["kernel", "ceiling"]);
        let rows: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows.len(), 7, "{t}");
        assert_eq!(rows[0].last(), Some(&"braid/ceiling"), "{t}");
        assert_eq!(rows[0][rows[0].len() - 2], "braid/kernel", "{t}");
        let braid64 = rows
            .iter()
            .find(|r| r[0] == "braid" && r[1] == "64")
            .unwrap();
        assert_eq!(&braid64[braid64.len() - 2..], ["2.00", "0.50"], "{t}");
        let braid1518 = rows
            .iter()
            .find(|r| r[0] == "braid" && r[1] == "1518")
            .unwrap();
        assert_eq!(&braid1518[braid1518.len() - 2..], ["-", "-"], "{t}");
        let kernel64 = rows
            .iter()
            .find(|r| r[0] == "kernel" && r[1] == "64")
            .unwrap();
        assert_eq!(kernel64[2], "100.0");
        assert_eq!(&kernel64[kernel64.len() - 2..], ["-", "-"], "{t}");
    }

    #[test]
    fn search_table_has_a_row_per_size() {
        let brief = TrialBrief {
            rate_pps: Some(1e5),
            tx_pps: 100_000.0,
            tx_bps: 51_200_000.0,
            rx_pps: 100_000.0,
            lost: 0,
            loss_ratio: 0.0,
            latency: LatencySummary {
                count: 1,
                p50_ns: 20_000,
                p99_ns: 90_000,
                ..LatencySummary::default()
            },
        };
        let rows = [
            SizeResult {
                size: "64".into(),
                max_pps: 250_000.0,
                ndr: Some(brief),
                pdr: Some(brief),
                trials: vec![brief; 3],
            },
            SizeResult {
                size: "imix".into(),
                max_pps: 90_000.0,
                ndr: None,
                pdr: None,
                trials: vec![brief],
            },
        ];
        let t = rfc2544_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(
            lines[1].split_whitespace().collect::<Vec<_>>()
                == [
                    "64", "250.0", "100.0", "51.2", "20.0", "µs", "90.0", "µs", "100.0", "0.0000%",
                    "3"
                ],
            "{t}"
        );
        assert!(lines[2].contains("imix") && lines[2].contains(" - "), "{t}");
    }
}
