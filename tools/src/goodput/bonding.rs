//! The bonding bench's results (benches/bonding.sh): one measured point per JSON line, summed up
//! as a markdown table and drawn as one TCP flow's goodput against the links' RTT difference, a
//! line per variant and loss.

use super::svg::{Chart, Line, Style};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::io::{self, BufRead, ErrorKind};

/// What was measured at a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Measure {
    /// TCP flows from the LAN host to the internet host, side by side.
    Tcp {
        /// How many.
        flows: u32,
        /// Their steady goodput added up, Mbit/s (None: no steady interval).
        goodput_mbps: Option<f64>,
        /// Segments the sender retransmitted, in percent of those it sent.
        retrans_pct: Option<f64>,
    },
    /// A UDP stream at a fixed rate, counted at the receiver.
    Udp {
        /// The rate sent, Mbit/s of frames.
        rate_mbps: f64,
        /// Packets received out of order, in percent of those received.
        reordered_pct: Option<f64>,
        /// Packets lost, in percent of those sent.
        lost_pct: Option<f64>,
        /// One-way latency, median and 99th percentile, ms.
        p50_ms: Option<f64>,
        p99_ms: Option<f64>,
        /// What the receiving end's reorder windows added to the stream's packets, 99th
        /// percentile over all of them, ms (braid only: from `braidctl stats`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window_p99_ms: Option<f64>,
    },
}

/// One point: a variant over links with an RTT difference and a loss on the slower-rated link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// braid or kernel.
    pub variant: String,
    /// isp2's round trip minus isp1's, ms (added by the emulator).
    pub rtt_diff_ms: f64,
    /// Random loss on isp1, each way, percent.
    pub loss_pct: f64,
    /// What was measured.
    #[serde(flatten)]
    pub measure: Measure,
}

/// Reads points, one JSON object a line; blank lines skipped; errors name the line.
pub fn read_points(input: impl BufRead) -> io::Result<Vec<Point>> {
    let mut out = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let p = serde_json::from_str(&line)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, format!("line {}: {e}", n + 1)))?;
        out.push(p);
    }
    Ok(out)
}

/// A column of the table: one kind of measure for one variant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Column {
    /// TCP with that many flows.
    Tcp(u32),
    /// The UDP stream.
    Udp,
}

fn column(m: &Measure) -> Column {
    match m {
        Measure::Tcp { flows, .. } => Column::Tcp(*flows),
        Measure::Udp { .. } => Column::Udp,
    }
}

/// The variants in the order they first appear.
fn variants(points: &[Point]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for p in points {
        if !out.contains(&p.variant.as_str()) {
            out.push(&p.variant);
        }
    }
    out
}

/// Keys of floats that are whole numbers of thousandths (ms and percent as the bench sets them).
fn key(v: f64) -> i64 {
    (v * 1000.0).round() as i64
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn cell(m: &Measure) -> String {
    match m {
        Measure::Tcp {
            goodput_mbps,
            retrans_pct,
            ..
        } => format!("{} ({} %)", num(*goodput_mbps, 1), num(*retrans_pct, 2)),
        Measure::Udp {
            reordered_pct,
            lost_pct,
            p99_ms,
            window_p99_ms,
            ..
        } => {
            let window = window_p99_ms.map_or_else(String::new, |w| format!(" (window {w:.2} ms)"));
            format!(
                "{} % / {} % / {} ms{window}",
                num(*reordered_pct, 2),
                num(*lost_pct, 2),
                num(*p99_ms, 1)
            )
        }
    }
}

/// The points as a markdown table: a row per RTT difference and loss, a column per measure and
/// variant. A TCP cell is "goodput Mbit/s (retransmitted %)", a UDP cell "out of order % / lost %
/// / p99 latency ms", with "(window p99 ms)" where the reorder windows' wait was measured; ""
/// where a point was not measured.
pub fn table(points: &[Point]) -> String {
    let vars = variants(points);
    let columns: BTreeSet<Column> = points.iter().map(|p| column(&p.measure)).collect();
    let rows: BTreeSet<(i64, i64)> = points
        .iter()
        .map(|p| (key(p.rtt_diff_ms), key(p.loss_pct)))
        .collect();
    let mut t = String::from("| RTT difference | loss on isp1 |");
    let mut rule = String::from("|---|---|");
    for c in &columns {
        for v in &vars {
            let what = match c {
                Column::Tcp(1) => "1 TCP flow".to_string(),
                Column::Tcp(n) => format!("{n} TCP flows"),
                Column::Udp => {
                    let rate = points.iter().find_map(|p| match p.measure {
                        Measure::Udp { rate_mbps, .. } => Some(rate_mbps),
                        Measure::Tcp { .. } => None,
                    });
                    format!("UDP {} Mbit/s", num(rate, 0))
                }
            };
            let _ = write!(t, " {v}, {what} |");
            rule.push_str("---|");
        }
    }
    let _ = writeln!(t, "\n{rule}");
    for &(rtt, loss) in &rows {
        let _ = write!(
            t,
            "| {} ms | {} % |",
            rtt as f64 / 1000.0,
            loss as f64 / 1000.0
        );
        for c in &columns {
            for v in &vars {
                let found = points.iter().find(|p| {
                    p.variant == *v
                        && key(p.rtt_diff_ms) == rtt
                        && key(p.loss_pct) == loss
                        && column(&p.measure) == *c
                });
                let _ = write!(
                    t,
                    " {} |",
                    found.map_or_else(String::new, |p| cell(&p.measure))
                );
            }
        }
        t.push('\n');
    }
    t
}

/// One TCP flow's goodput against the RTT difference: a line per variant and loss, the colour
/// telling the loss, the first variant solid, the second dashed and the others dotted, a dot per
/// point.
pub fn chart(title: &str, points: &[Point]) -> Chart {
    let losses: BTreeSet<i64> = points.iter().map(|p| key(p.loss_pct)).collect();
    let mut lines = Vec::new();
    for (vi, v) in variants(points).into_iter().enumerate() {
        for (li, &loss) in losses.iter().enumerate() {
            let mut steps: Vec<(f64, f64, f64)> = points
                .iter()
                .filter(|p| p.variant == v && key(p.loss_pct) == loss)
                .filter_map(|p| match p.measure {
                    Measure::Tcp {
                        flows: 1,
                        goodput_mbps: Some(g),
                        ..
                    } => Some((p.rtt_diff_ms, p.rtt_diff_ms, g)),
                    _ => None,
                })
                .collect();
            if steps.is_empty() {
                continue;
            }
            steps.sort_by(|a, b| a.0.total_cmp(&b.0));
            lines.push(Line {
                name: format!("{v}, {} % loss", loss as f64 / 1000.0),
                steps,
                marks: Vec::new(),
                levels: Vec::new(),
                style: Style {
                    colour: Some(li),
                    dashes: vi.min(2) as u8,
                    dots: true,
                },
            });
        }
    }
    Chart {
        title: title.to_string(),
        x_label: "RTT difference between the links (ms)".to_string(),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goodput::svg;

    const POINTS: &str = r#"
{"variant":"braid","rtt_diff_ms":0,"loss_pct":0,"kind":"tcp","flows":1,"goodput_mbps":270.0,"retrans_pct":0.5}
{"variant":"braid","rtt_diff_ms":0,"loss_pct":0,"kind":"tcp","flows":4,"goodput_mbps":280.0,"retrans_pct":1.25}
{"variant":"braid","rtt_diff_ms":0,"loss_pct":0,"kind":"udp","rate_mbps":100,"reordered_pct":52.5,"lost_pct":0,"p50_ms":0.25,"p99_ms":1.2}
{"variant":"braid","rtt_diff_ms":20,"loss_pct":0,"kind":"tcp","flows":1,"goodput_mbps":25.0,"retrans_pct":30}
{"variant":"braid","rtt_diff_ms":0,"loss_pct":5,"kind":"tcp","flows":1,"goodput_mbps":100.0,"retrans_pct":4}
{"variant":"kernel","rtt_diff_ms":0,"loss_pct":0,"kind":"tcp","flows":1,"goodput_mbps":200.0,"retrans_pct":null}
{"variant":"kernel","rtt_diff_ms":0,"loss_pct":0,"kind":"udp","rate_mbps":100,"reordered_pct":7,"lost_pct":0,"p50_ms":0.5,"p99_ms":3.25,"window_p99_ms":0.25}
{"variant":"kernel","rtt_diff_ms":20,"loss_pct":0,"kind":"tcp","flows":1,"goodput_mbps":null,"retrans_pct":40}

{"variant":"kernel","rtt_diff_ms":0,"loss_pct":5,"kind":"tcp","flows":1,"goodput_mbps":50.0,"retrans_pct":6}
"#;

    fn points() -> Vec<Point> {
        read_points(POINTS.as_bytes()).unwrap()
    }

    #[test]
    fn points_read_back_and_bad_lines_are_named() {
        let p = points();
        assert_eq!(p.len(), 9);
        assert_eq!(
            p[2],
            Point {
                variant: "braid".into(),
                rtt_diff_ms: 0.0,
                loss_pct: 0.0,
                measure: Measure::Udp {
                    rate_mbps: 100.0,
                    reordered_pct: Some(52.5),
                    lost_pct: Some(0.0),
                    p50_ms: Some(0.25),
                    p99_ms: Some(1.2),
                    window_p99_ms: None,
                },
            }
        );
        let line = serde_json::to_string(&p[0]).unwrap();
        assert_eq!(read_points(line.as_bytes()).unwrap(), [p[0].clone()]);
        let err = read_points("\n{\"variant\":\"braid\"}\n".as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("line 2: "), "{err}");
    }

    #[test]
    fn the_table_has_a_row_per_point_and_a_column_per_measure_and_variant() {
        let t = table(&points());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "| RTT difference | loss on isp1 | braid, 1 TCP flow | kernel, 1 TCP flow | \
             braid, 4 TCP flows | kernel, 4 TCP flows | braid, UDP 100 Mbit/s | kernel, UDP 100 Mbit/s |"
        );
        assert_eq!(lines[1], "|---|---|---|---|---|---|---|---|");
        assert_eq!(
            lines[2],
            "| 0 ms | 0 % | 270.0 (0.50 %) | 200.0 (- %) | 280.0 (1.25 %) |  | 52.50 % / 0.00 % / 1.2 ms | \
             7.00 % / 0.00 % / 3.2 ms (window 0.25 ms) |"
        );
        assert_eq!(
            lines[3],
            "| 0 ms | 5 % | 100.0 (4.00 %) | 50.0 (6.00 %) |  |  |  |  |"
        );
        assert_eq!(
            lines[4],
            "| 20 ms | 0 % | 25.0 (30.00 %) | - (40.00 %) |  |  |  |  |"
        );
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn the_chart_draws_one_flow_against_the_rtt_difference() {
        let c = chart("goodput", &points());
        let names: Vec<&str> = c.lines.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "braid, 0 % loss",
                "braid, 5 % loss",
                "kernel, 0 % loss",
                "kernel, 5 % loss"
            ]
        );
        // Points sorted by RTT difference; four flows and a missing goodput left out.
        assert_eq!(c.lines[0].steps, [(0.0, 0.0, 270.0), (20.0, 20.0, 25.0)]);
        assert_eq!(c.lines[2].steps, [(0.0, 0.0, 200.0)]);
        assert_eq!(
            c.lines[3].style,
            Style {
                colour: Some(1),
                dashes: 1,
                dots: true
            }
        );
        assert_eq!(
            c.lines[0].style,
            Style {
                colour: Some(0),
                dashes: 0,
                dots: true
            }
        );

        let s = svg::render(&c);
        // x: 0..20 ms over 700 px from 70; y: 0..300 (270 * 1.05, a step of 50) over 370 px from 50.
        assert!(
            s.contains(r#"stroke-width="1.6" points="70.0,87.0 70.0,87.0 770.0,389.2 770.0,389.2"><title>braid, 0 % loss</title>"#),
            "{s}"
        );
        assert!(
            s.contains(r##"<polyline fill="none" stroke="#d62728" stroke-width="1.6" stroke-dasharray="6 4" points="70.0,358.3 70.0,358.3"><title>kernel, 5 % loss</title>"##),
            "{s}"
        );
        assert_eq!(s.matches("<circle").count(), 5);
        assert!(
            s.contains(r##"<circle cx="770.0" cy="389.2" r="3" fill="#1f77b4"/>"##),
            "{s}"
        );
        assert!(
            s.contains(">RTT difference between the links (ms)</text>"),
            "{s}"
        );
        assert!(s.contains(">20</text>") && s.contains(">300</text>"), "{s}");
    }
}
