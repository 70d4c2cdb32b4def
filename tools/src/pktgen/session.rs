//! One trial: the generators send for a while, the sink counts, and the two are put side by side
//! per stream. Prints a progress line once a second while it runs.

use super::control::SinkControl;
use super::gen::{per_sec, GenReport};
use super::latency::LatencySummary;
use super::live::Live;
use super::rate::{si, Rate};
use super::sink::{KernelDrops, SinkReport};
use super::workers::GenPool;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::thread;
use std::time::{Duration, Instant};

/// How often progress is shown.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How often the sink is asked whether the last packets arrived, after the generators stop.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// The sink is done once its count stays put this long...
const DRAIN_QUIET: Duration = Duration::from_millis(200);
/// ...or after this long in any case.
const DRAIN_MAX: Duration = Duration::from_secs(2);

/// What to send in a trial.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialSpec {
    /// Total rate of all generators.
    pub rate: Rate,
    /// How long to send at most.
    pub duration: Duration,
    /// How many frames to send at most, in total.
    pub count: Option<u64>,
}

/// One stream of a trial: sent against received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamResult {
    /// Stream id.
    pub stream: u16,
    /// Packets sent.
    pub sent: u64,
    /// Distinct packets received.
    pub received: u64,
    /// Packets sent and never received.
    pub lost: u64,
    /// Packets received more than once.
    pub duplicates: u64,
    /// Packets received after a later one of the stream.
    pub reordered: u64,
}

/// The result of a trial.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialResult {
    /// The rate asked for.
    pub rate: String,
    /// Seconds the generators sent for.
    pub seconds: f64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Packets per second sent.
    pub tx_pps: f64,
    /// Frame bits per second sent, FCS included.
    pub tx_bps: f64,
    /// Times the generators found their transmit ring full.
    pub tx_busy: u64,
    /// Distinct packets received.
    pub rx_packets: u64,
    /// Distinct packets per second received, over the sending time.
    pub rx_pps: f64,
    /// Packets sent and never received, summed over the streams.
    pub lost: u64,
    /// `lost / tx_packets`.
    pub loss_ratio: f64,
    /// Packets received more than once.
    pub duplicates: u64,
    /// Packets received after a later one of their stream.
    pub reordered: u64,
    /// Packets of earlier trials, not counted.
    pub stale: u64,
    /// Packets too late to tell new from duplicate.
    pub too_late: u64,
    /// Frames received that were not generated ones.
    pub foreign: u64,
    /// Frames the kernel dropped before the sink's sockets.
    pub sink_kernel_drops: KernelDrops,
    /// One-way latency.
    pub latency: LatencySummary,
    /// Per stream.
    pub streams: Vec<StreamResult>,
}

impl TrialResult {
    /// Puts what was sent and what was received side by side.
    pub fn new(rate: Rate, gen: &GenReport, sink: &SinkReport) -> TrialResult {
        let received: BTreeMap<u16, _> = sink.streams.iter().map(|s| (s.stream, s)).collect();
        let streams: Vec<StreamResult> = gen
            .streams
            .iter()
            .map(|g| {
                let r = received.get(&g.stream);
                let unique = r.map_or(0, |r| r.counts.unique);
                StreamResult {
                    stream: g.stream,
                    sent: g.sent,
                    received: unique,
                    lost: g.sent.saturating_sub(unique),
                    duplicates: r.map_or(0, |r| r.counts.duplicates),
                    reordered: r.map_or(0, |r| r.counts.reordered),
                }
            })
            .collect();
        let sum = |f: fn(&StreamResult) -> u64| streams.iter().map(f).sum::<u64>();
        let lost = sum(|s| s.lost);
        let rx_packets = sum(|s| s.received);
        let all = |f: fn(&super::seq::SeqCounts) -> u64| {
            sink.streams.iter().map(|s| f(&s.counts)).sum::<u64>()
        };
        TrialResult {
            rate: rate.to_string(),
            seconds: gen.elapsed_ns as f64 / 1e9,
            tx_packets: gen.packets,
            tx_pps: gen.pps(),
            tx_bps: gen.bps(),
            tx_busy: gen.tx_busy,
            rx_packets,
            rx_pps: per_sec(rx_packets, gen.elapsed_ns),
            lost,
            loss_ratio: if gen.packets == 0 {
                0.0
            } else {
                lost as f64 / gen.packets as f64
            },
            duplicates: sum(|s| s.duplicates),
            reordered: sum(|s| s.reordered),
            stale: all(|c| c.stale),
            too_late: all(|c| c.too_late),
            foreign: sink.foreign,
            sink_kernel_drops: sink.kernel,
            latency: sink.latency,
            streams,
        }
    }
}

/// Runs one trial of `gens` into `sink`. With `progress`, writes a line there once a second.
pub fn trial(
    gens: &mut GenPool,
    sink: &mut dyn SinkControl,
    live: &Live,
    spec: &TrialSpec,
    progress: Option<&mut dyn Write>,
) -> io::Result<TrialResult> {
    sink.begin(gens.next_seqs())?;
    let rx0 = sink.received()?;
    let gen = send(gens, Some(&mut *sink), live, spec, progress)?;
    drain(sink, rx0 + gen.packets)?;
    let report = sink.report()?;
    Ok(TrialResult::new(spec.rate, &gen, &report))
}

/// Runs the generators once as `spec` says; with `progress`, writes a line there once a second,
/// with what `sink` (if any) received.
pub fn send(
    gens: &mut GenPool,
    mut sink: Option<&mut dyn SinkControl>,
    live: &Live,
    spec: &TrialSpec,
    mut progress: Option<&mut dyn Write>,
) -> io::Result<GenReport> {
    let received = |sink: &mut Option<&mut dyn SinkControl>| -> io::Result<Option<u64>> {
        sink.as_deref_mut().map(|s| s.received()).transpose()
    };
    let rx0 = received(&mut sink)?;
    let tx0 = live.totals().sent;
    gens.start(spec.rate, spec.duration, spec.count)?;
    let start = Instant::now();
    thread::scope(|s| {
        let waiter = s.spawn(|| gens.finish());
        let (mut last_tx, mut last_rx, mut next) = (tx0, rx0, start + PROGRESS_EVERY);
        while !waiter.is_finished() {
            thread::sleep(Duration::from_millis(20));
            if Instant::now() < next {
                continue;
            }
            next += PROGRESS_EVERY;
            let Some(out) = progress.as_deref_mut() else {
                continue;
            };
            let tx = live.totals().sent;
            let rx = received(&mut sink)?;
            let counts = Counts {
                tx: tx - last_tx,
                tx_total: tx - tx0,
                rx: rx.zip(last_rx).map(|(now, before)| {
                    let total = now.saturating_sub(rx0.unwrap_or(0));
                    (now.saturating_sub(before), total)
                }),
            };
            let _ = writeln!(out, "{}", progress_line(start.elapsed(), &counts));
            (last_tx, last_rx) = (tx, rx);
        }
        waiter
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("generator waiter panicked")))
    })
}

/// Waits for the last packets: until the sink has `want`, or its count stays put for
/// [`DRAIN_QUIET`], or [`DRAIN_MAX`] passed.
fn drain(sink: &mut dyn SinkControl, want: u64) -> io::Result<()> {
    let start = Instant::now();
    let (mut last, mut since) = (sink.received()?, Instant::now());
    while last < want && start.elapsed() < DRAIN_MAX && since.elapsed() < DRAIN_QUIET {
        thread::sleep(DRAIN_POLL);
        let now = sink.received()?;
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    Ok(())
}

/// One second of a run, for the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Packets sent in the last second.
    pub tx: u64,
    /// Packets sent so far.
    pub tx_total: u64,
    /// Packets received in the last second and so far, when a sink counts.
    pub rx: Option<(u64, u64)>,
}

/// `[   3s] tx 1.2 M pps | rx 1.19 M pps | lost so far 0.005% (148)`: packets still on their way
/// count as lost until they arrive.
pub fn progress_line(at: Duration, c: &Counts) -> String {
    let mut line = format!("[{:>4}s] tx {} pps", at.as_secs(), si(c.tx as f64));
    if let Some((rx, rx_total)) = c.rx {
        let missing = c.tx_total.saturating_sub(rx_total);
        let pct = if c.tx_total == 0 {
            0.0
        } else {
            missing as f64 * 100.0 / c.tx_total as f64
        };
        line += &format!(
            " | rx {} pps | lost so far {pct:.3}% ({missing})",
            si(rx as f64)
        );
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::gen::StreamSent;
    use crate::pktgen::seq::SeqCounts;
    use crate::pktgen::sink::StreamReport;

    #[test]
    fn trial_result_matches_streams_by_id() {
        let gen = GenReport {
            packets: 30,
            bytes: 30 * 64,
            elapsed_ns: 1_000_000_000,
            tx_busy: 2,
            streams: vec![
                StreamSent {
                    stream: 1,
                    start: 5,
                    sent: 10,
                },
                StreamSent {
                    stream: 2,
                    start: 0,
                    sent: 20,
                },
            ],
        };
        let sink = SinkReport {
            packets: 12,
            bytes: 12 * 64,
            foreign: 3,
            kernel: KernelDrops::default(),
            streams: vec![
                StreamReport {
                    stream: 1,
                    start: 5,
                    counts: SeqCounts {
                        received: 12,
                        unique: 9,
                        duplicates: 3,
                        reordered: 1,
                        stale: 4,
                        too_late: 0,
                        next: 15,
                    },
                },
                StreamReport {
                    stream: 7,
                    start: 0,
                    counts: SeqCounts::default(),
                },
            ],
            latency: LatencySummary::default(),
        };
        let r = TrialResult::new(Rate::Pps(30.0), &gen, &sink);
        assert_eq!(r.lost, 1 + 20, "stream 2 never arrived");
        assert_eq!(r.rx_packets, 9);
        assert!((r.loss_ratio - 21.0 / 30.0).abs() < 1e-12);
        assert_eq!(
            (r.duplicates, r.reordered, r.stale, r.foreign),
            (3, 1, 4, 3)
        );
        assert_eq!(r.streams[1].received, 0);
        assert_eq!(r.tx_pps, 30.0);
        assert_eq!(r.tx_bps, 30.0 * 64.0 * 8.0);
        assert_eq!(r.rate, "30 pps");
    }

    #[test]
    fn progress_line_reads_well() {
        let c = Counts {
            tx: 1_200_000,
            tx_total: 3_000_000,
            rx: Some((1_190_000, 2_999_852)),
        };
        assert_eq!(
            progress_line(Duration::from_secs(3), &c),
            "[   3s] tx 1.2 M pps | rx 1.19 M pps | lost so far 0.005% (148)"
        );
        let c = Counts {
            tx: 0,
            tx_total: 0,
            rx: None,
        };
        assert_eq!(progress_line(Duration::ZERO, &c), "[   0s] tx 0 pps");
    }
}
