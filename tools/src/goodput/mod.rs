//! Goodput over time, for the failover and bonding benches (`benches/failover.sh`,
//! `benches/bonding.sh`, `braid-goodput`): a TCP sink that counts received bytes per interval, a
//! sender bounded in time, the report of a failover run (failover time, goodput before, during and
//! after a cut, a table and an SVG chart) and the bonding bench's table and chart.

pub mod bonding;
pub mod flow;
pub mod series;
pub mod svg;

use serde::Serialize;
use series::{failover_secs, mean_mbps, steady_mbps, Sample};
use std::fmt::Write;
use std::io::{self, ErrorKind};

/// Seconds before the cut whose goodput is "before".
pub const BEFORE_SECS: f64 = 2.0;
/// Seconds after the restore left out of "after" (the link comes back, TCP grows its window).
pub const SETTLE_SECS: f64 = 1.0;
/// Seconds at the start of the reference flow left out of its steady goodput (slow start).
pub const RAMP_SECS: f64 = 1.0;

/// The instants of a run (Unix time, seconds): the link was cut, restored, and the sender stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Events {
    /// The cut took effect.
    pub cut: f64,
    /// The restore took effect.
    pub restore: f64,
    /// The sender's time was over.
    pub stop: f64,
}

impl Events {
    /// Parses lines `cut T`, `restore T` and `stop T` (any order; `#` starts a comment; other
    /// names are ignored).
    pub fn parse(text: &str) -> io::Result<Self> {
        let (mut cut, mut restore, mut stop) = (None, None, None);
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut words = line.split_whitespace();
            let (Some(name), Some(value)) = (words.next(), words.next()) else {
                continue;
            };
            let slot = match name {
                "cut" => &mut cut,
                "restore" => &mut restore,
                "stop" => &mut stop,
                _ => continue,
            };
            *slot = Some(value.parse::<f64>().map_err(|e| {
                io::Error::new(ErrorKind::InvalidData, format!("{name}: {value}: {e}"))
            })?);
        }
        let need = |v: Option<f64>, name: &str| {
            v.ok_or_else(|| io::Error::new(ErrorKind::InvalidData, format!("no `{name}` line")))
        };
        Ok(Events {
            cut: need(cut, "cut")?,
            restore: need(restore, "restore")?,
            stop: need(stop, "stop")?,
        })
    }
}

/// One variant's run: its flow across the cut and its reference flow over the surviving link alone.
#[derive(Debug, Clone)]
pub struct Run {
    /// The variant (braid, kernel).
    pub name: String,
    /// The flow across the cut.
    pub series: Vec<Sample>,
    /// When the cut, the restore and the end of sending happened.
    pub events: Events,
    /// A flow over the surviving link alone, for its rate.
    pub reference: Vec<Sample>,
}

/// What a run measured; goodputs in Mbit/s, None where no whole interval fell in the window.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The variant.
    pub name: String,
    /// Steady goodput of the reference flow: the surviving link alone.
    pub alone_mbps: Option<f64>,
    /// The goodput that counts as recovered: `share` of `alone_mbps`.
    pub target_mbps: Option<f64>,
    /// Mean over the [`BEFORE_SECS`] before the cut.
    pub before_mbps: Option<f64>,
    /// Mean from the cut to the restore, the outage included.
    pub during_mbps: Option<f64>,
    /// Mean from [`SETTLE_SECS`] after the restore until the sender stopped.
    pub after_mbps: Option<f64>,
    /// From the cut until the goodput held the target (None: not before the restore).
    pub failover_ms: Option<f64>,
    /// The cut and the restore, seconds after the flow's first interval began.
    pub cut_s: f64,
    pub restore_s: f64,
}

/// Sums a run up: `share` (0..1) of the surviving link's goodput must hold for `hold` intervals.
pub fn summarize(run: &Run, share: f64, hold: usize) -> Summary {
    let ev = run.events;
    let alone = steady_mbps(&run.reference, RAMP_SECS);
    let target = alone.map(|a| a * share);
    let zero = run.series.first().map_or(ev.cut, |s| s.t);
    Summary {
        name: run.name.clone(),
        alone_mbps: alone,
        target_mbps: target,
        before_mbps: mean_mbps(&run.series, ev.cut - BEFORE_SECS, ev.cut),
        during_mbps: mean_mbps(&run.series, ev.cut, ev.restore),
        after_mbps: mean_mbps(&run.series, ev.restore + SETTLE_SECS, ev.stop),
        failover_ms: target
            .and_then(|t| failover_secs(&run.series, ev.cut, ev.restore, t, hold))
            .map(|s| s * 1000.0),
        cut_s: ev.cut - zero,
        restore_s: ev.restore - zero,
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"))
}

/// The summaries as a text table.
pub fn table(summaries: &[Summary], share: f64, hold: usize) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<8} {:>11} {:>11} {:>9} {:>9} {:>9}  failover (to {:.0} % of alone, held {} intervals)",
        "variant",
        "alone Mb/s",
        "target",
        "before",
        "during",
        "after",
        share * 100.0,
        hold
    );
    for s in summaries {
        let failover = s
            .failover_ms
            .map_or_else(|| "never".to_string(), |ms| format!("{ms:.0} ms"));
        let _ = writeln!(
            t,
            "{:<8} {:>11} {:>11} {:>9} {:>9} {:>9}  {}",
            s.name,
            cell(s.alone_mbps),
            cell(s.target_mbps),
            cell(s.before_mbps),
            cell(s.during_mbps),
            cell(s.after_mbps),
            failover
        );
    }
    t
}

/// The runs as one chart, each series' time counted from its first interval. A last interval
/// shorter than half the first is left out: a few bytes over a few milliseconds make a meaningless
/// peak.
pub fn chart(title: &str, runs: &[Run], summaries: &[Summary], share: f64) -> svg::Chart {
    let lines = runs
        .iter()
        .zip(summaries)
        .map(|(run, sum)| {
            let zero = run.series.first().map_or(0.0, |s| s.t);
            let mut shown = run.series.as_slice();
            if let [first, .., last] = shown {
                if last.secs < first.secs / 2.0 {
                    shown = &shown[..shown.len() - 1];
                }
            }
            svg::Line {
                name: run.name.clone(),
                steps: shown
                    .iter()
                    .map(|s| (s.t - zero, s.end() - zero, s.mbps()))
                    .collect(),
                marks: vec![
                    ("cut".to_string(), sum.cut_s),
                    ("restore".to_string(), sum.restore_s),
                ],
                levels: sum
                    .target_mbps
                    .map(|t| (format!("{:.0}% alone ({})", share * 100.0, run.name), t))
                    .into_iter()
                    .collect(),
                style: svg::Style::default(),
            }
        })
        .collect();
    svg::Chart {
        title: title.to_string(),
        x_label: "time (s)".to_string(),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: f64 = 0.125;

    /// Intervals of 1/8 s from `t0`, one per goodput given.
    fn series(t0: f64, mbps: &[f64]) -> Vec<Sample> {
        mbps.iter()
            .enumerate()
            .map(|(i, &m)| Sample {
                t: t0 + i as f64 * Q,
                secs: Q,
                bytes: (m * 1e6 / 8.0 * Q) as u64,
            })
            .collect()
    }

    #[test]
    fn events_parse_in_any_order_and_name_what_is_missing() {
        let e = Events::parse("# run\nstop 12.5\ncut 10\nextra 1\nrestore 11.25 # late\n").unwrap();
        assert_eq!(
            e,
            Events {
                cut: 10.0,
                restore: 11.25,
                stop: 12.5
            }
        );
        let err = Events::parse("cut 1\nstop 2\n").unwrap_err();
        assert!(err.to_string().contains("no `restore` line"), "{err}");
        assert!(Events::parse("cut x\n").is_err());
    }

    fn run() -> Run {
        // From t = 100: 2 s at 300 (16 intervals), the cut at 102, 4 intervals at 0, 12 at 200
        // (to 104), the restore at 104, then 16 at 300 (to 106); the sender stopped at 106.
        let mut mbps = vec![300.0; 16];
        mbps.extend([0.0; 4]);
        mbps.extend([200.0; 12]);
        mbps.extend([300.0; 16]);
        Run {
            name: "braid".into(),
            series: series(100.0, &mbps),
            events: Events {
                cut: 102.0,
                restore: 104.0,
                stop: 106.0,
            },
            // 1 s of ramp at 100, then 210, and a short last interval.
            reference: series(
                50.0,
                &[[100.0; 8].as_slice(), &[210.0; 8], &[10.0]].concat(),
            ),
        }
    }

    #[test]
    fn a_run_sums_up_to_its_failover_time_and_window_means() {
        let s = summarize(&run(), 0.9, 3);
        assert_eq!(s.alone_mbps, Some(210.0));
        assert!((s.target_mbps.unwrap() - 189.0).abs() < 1e-9);
        assert_eq!(s.before_mbps, Some(300.0));
        // 4 of 16 intervals at 0, 12 at 200.
        assert_eq!(s.during_mbps, Some(150.0));
        // 105 to 106.
        assert_eq!(s.after_mbps, Some(300.0));
        // Back in the fifth interval after the cut, which ends 5 intervals after it.
        assert_eq!(s.failover_ms, Some(5.0 * Q * 1000.0));
        assert_eq!((s.cut_s, s.restore_s), (2.0, 4.0));
        // 200 never reaches 96 % of 210 before the restore.
        assert_eq!(summarize(&run(), 0.96, 3).failover_ms, None);
    }

    #[test]
    fn the_table_and_chart_show_every_run() {
        let r = run();
        let sums = [summarize(&r, 0.9, 3)];
        let t = table(&sums, 0.9, 3);
        assert_eq!(
            t.lines().nth(1).unwrap(),
            "braid          210.0       189.0     300.0     150.0     300.0  625 ms"
        );
        let c = chart("t", std::slice::from_ref(&r), &sums, 0.9);
        let line = &c.lines[0];
        assert_eq!(line.steps.len(), r.series.len());
        assert_eq!(line.steps[16], (2.0, 2.0 + Q, 0.0));
        assert_eq!(line.marks, [("cut".into(), 2.0), ("restore".into(), 4.0)]);
        assert_eq!(line.levels[0].0, "90% alone (braid)");
        let svg = svg::render(&c);
        assert!(svg.contains("<title>braid</title>"));
        // A short last interval is not drawn; one of half the length is.
        let mut short = r.clone();
        short.series.push(Sample {
            t: 106.0,
            secs: Q / 2.0 - 0.001,
            bytes: 1_000_000,
        });
        let c = chart("t", std::slice::from_ref(&short), &sums, 0.9);
        assert_eq!(c.lines[0].steps.len(), r.series.len());
        short.series.last_mut().unwrap().secs = Q / 2.0;
        let c = chart("t", std::slice::from_ref(&short), &sums, 0.9);
        assert_eq!(c.lines[0].steps.len(), r.series.len() + 1);
    }
}
