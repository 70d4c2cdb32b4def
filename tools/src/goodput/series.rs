//! Goodput series: bytes received per interval, bucketed as they arrive, and what a failover run
//! reads from them (the mean over a window, the time until the goodput is back).

use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, ErrorKind};
use std::time::Duration;

/// One interval of a series, as the sink prints it (one JSON object per line).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Start of the interval, Unix time in seconds.
    pub t: f64,
    /// Length of the interval in seconds (the last one of a series may be shorter).
    pub secs: f64,
    /// Bytes received in it.
    pub bytes: u64,
}

impl Sample {
    /// End of the interval, Unix time in seconds.
    pub fn end(&self) -> f64 {
        self.t + self.secs
    }

    /// Goodput in Mbit/s (0 for an interval of no length).
    pub fn mbps(&self) -> f64 {
        if self.secs > 0.0 {
            self.bytes as f64 * 8.0 / self.secs / 1e6
        } else {
            0.0
        }
    }
}

/// A closed interval: its number counted from time zero and the bytes received in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// 0 for the interval that starts at time zero.
    pub index: u64,
    /// Bytes received in it.
    pub bytes: u64,
}

/// Counts bytes into consecutive intervals of one length from time zero and hands each interval
/// over once it is over, empty ones included.
#[derive(Debug, Clone)]
pub struct Bucketer {
    interval: Duration,
    index: u64,
    bytes: u64,
}

impl Bucketer {
    /// Intervals of `interval` (not zero).
    pub fn new(interval: Duration) -> Self {
        assert!(!interval.is_zero(), "an interval has a length");
        Bucketer {
            interval,
            index: 0,
            bytes: 0,
        }
    }

    /// Passes every interval that is over at `at` (time since zero) to `emit`, oldest first.
    pub fn advance(&mut self, at: Duration, mut emit: impl FnMut(Interval)) {
        let now = u64::try_from(at.as_nanos() / self.interval.as_nanos()).unwrap_or(u64::MAX);
        while self.index < now {
            emit(Interval {
                index: self.index,
                bytes: std::mem::take(&mut self.bytes),
            });
            self.index += 1;
        }
    }

    /// Counts `bytes` received at `at` (never before an earlier call's), after handing over the
    /// intervals that are over.
    pub fn record(&mut self, at: Duration, bytes: u64, emit: impl FnMut(Interval)) {
        self.advance(at, emit);
        self.bytes += bytes;
    }

    /// Time since zero at which the interval in progress ends.
    pub fn current_end(&self) -> Duration {
        self.interval * u32::try_from(self.index + 1).unwrap_or(u32::MAX)
    }

    /// The interval in progress, with what it has so far.
    pub fn partial(&self) -> Interval {
        Interval {
            index: self.index,
            bytes: self.bytes,
        }
    }
}

/// Reads a series: one [`Sample`] per line, blank lines skipped.
pub fn read_series(input: impl BufRead) -> io::Result<Vec<Sample>> {
    let mut out = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let sample = serde_json::from_str(&line)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, format!("line {}: {e}", n + 1)))?;
        out.push(sample);
    }
    Ok(out)
}

/// Mean goodput in Mbit/s of the intervals that lie wholly within `[from, to)` (None if none does).
pub fn mean_mbps(series: &[Sample], from: f64, to: f64) -> Option<f64> {
    let (bytes, secs) = series
        .iter()
        .filter(|s| s.t >= from && s.end() <= to)
        .fold((0u64, 0.0), |(b, t), s| (b + s.bytes, t + s.secs));
    (secs > 0.0).then(|| bytes as f64 * 8.0 / secs / 1e6)
}

/// Steady goodput of a flow in Mbit/s: the mean from `ramp` seconds after its first interval on,
/// leaving out its last interval (cut short by the end of the flow).
pub fn steady_mbps(series: &[Sample], ramp: f64) -> Option<f64> {
    let (first, rest) = series.split_first()?;
    let (last, _) = rest.split_last()?;
    mean_mbps(series, first.t + ramp, last.t)
}

/// Seconds from `cut` until the goodput is back: the end of the first of `hold` consecutive
/// intervals that all start at or after `cut`, end by `until` and carry at least `target_mbps`
/// (None if there are no such intervals). The figure is an upper bound, above the moment the goodput
/// came back by less than one interval.
pub fn failover_secs(
    series: &[Sample],
    cut: f64,
    until: f64,
    target_mbps: f64,
    hold: usize,
) -> Option<f64> {
    let hold = hold.max(1);
    let window: Vec<&Sample> = series
        .iter()
        .filter(|s| s.t >= cut && s.end() <= until)
        .collect();
    window
        .windows(hold)
        .find(|run| run.iter().all(|s| s.mbps() >= target_mbps))
        .map(|run| run[0].end() - cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn collect(b: &mut Bucketer, at: Duration, bytes: u64) -> Vec<Interval> {
        let mut out = Vec::new();
        b.record(at, bytes, |i| out.push(i));
        out
    }

    fn iv(index: u64, bytes: u64) -> Interval {
        Interval { index, bytes }
    }

    #[test]
    fn bytes_land_in_the_interval_of_their_arrival_and_gaps_give_empty_intervals() {
        let mut b = Bucketer::new(100 * MS);
        assert_eq!(collect(&mut b, Duration::ZERO, 10), []);
        assert_eq!(collect(&mut b, 99 * MS, 5), []);
        assert_eq!(b.current_end(), 100 * MS);
        // 100 ms is the first instant of interval 1.
        assert_eq!(collect(&mut b, 100 * MS, 7), [iv(0, 15)]);
        assert_eq!(collect(&mut b, 420 * MS, 1), [iv(1, 7), iv(2, 0), iv(3, 0)]);
        assert_eq!(b.partial(), iv(4, 1));
        assert_eq!(b.current_end(), 500 * MS);
        let mut out = Vec::new();
        b.advance(510 * MS, |i| out.push(i));
        assert_eq!(out, [iv(4, 1)]);
        assert_eq!(b.partial(), iv(5, 0));
        // Once advanced to an instant, the interval in progress ends after it.
        assert_eq!(b.current_end(), 600 * MS);
    }

    /// Intervals of 1/8 s (exact in binary) from t = 0, one per goodput given.
    fn series(mbps: &[f64]) -> Vec<Sample> {
        mbps.iter()
            .enumerate()
            .map(|(i, &m)| Sample {
                t: i as f64 * Q,
                secs: Q,
                bytes: (m * 1e6 / 8.0 * Q) as u64,
            })
            .collect()
    }

    const Q: f64 = 0.125;

    #[test]
    fn sample_goodput_is_bits_per_second() {
        let s = Sample {
            t: 5.0,
            secs: 0.1,
            bytes: 1_250_000,
        };
        assert!((s.mbps() - 100.0).abs() < 1e-9, "{}", s.mbps());
        assert!((s.end() - 5.1).abs() < 1e-9);
        assert_eq!(Sample { secs: 0.0, ..s }.mbps(), 0.0);
    }

    #[test]
    fn failover_is_the_end_of_the_first_held_interval_after_the_cut() {
        let s = series(&[
            300.0, 300.0, 300.0, 300.0, 0.0, 50.0, 195.0, 185.0, 200.0, 300.0,
        ]);
        // Cut in the middle of interval 3: it straddles the cut and does not count, although high.
        let cut = 3.5 * Q;
        // Intervals 6, 7 and 8 hold 180; the first of them ends at 7 Q.
        assert_eq!(
            failover_secs(&s, cut, 10.0 * Q, 180.0, 3),
            Some(7.0 * Q - cut)
        );
        // 190 fails in interval 7: intervals 8 and 9 are the first 2 in a row, 8 ends at 9 Q.
        assert_eq!(
            failover_secs(&s, cut, 10.0 * Q, 190.0, 2),
            Some(9.0 * Q - cut)
        );
    }

    #[test]
    fn failover_needs_the_whole_hold_before_the_restore() {
        let s = series(&[300.0, 0.0, 0.0, 200.0, 200.0, 300.0]);
        assert_eq!(failover_secs(&s, Q, 6.0 * Q, 180.0, 2), Some(3.0 * Q));
        // A restore at 4.5 Q leaves one high interval before it: not enough for a hold of 2.
        assert_eq!(failover_secs(&s, Q, 4.5 * Q, 180.0, 2), None);
        assert_eq!(failover_secs(&s, Q, 6.0 * Q, 350.0, 1), None);
        assert_eq!(failover_secs(&[], 0.0, 1.0, 1.0, 3), None);
    }

    #[test]
    fn window_means_count_whole_intervals_only() {
        let s = series(&[100.0, 200.0, 300.0, 0.0]);
        assert_eq!(mean_mbps(&s, 0.0, 3.0 * Q), Some(200.0));
        // 0.05 to 0.4 s holds intervals 1 and 2 wholly, not 0 or 3.
        assert_eq!(mean_mbps(&s, 0.05, 0.4), Some(250.0));
        assert_eq!(mean_mbps(&s, 0.05, Q), None);
        // Steady: from Q after the first interval on, the last interval left out.
        assert_eq!(steady_mbps(&s, Q), Some(250.0));
        assert_eq!(steady_mbps(&s[..1], 0.0), None);
    }

    #[test]
    fn series_reads_json_lines_and_names_a_bad_line() {
        let text =
            "{\"t\":1.5,\"secs\":0.1,\"bytes\":42}\n\n{\"t\":1.6,\"secs\":0.05,\"bytes\":0}\n";
        let s = read_series(text.as_bytes()).unwrap();
        assert_eq!(
            s,
            [
                Sample {
                    t: 1.5,
                    secs: 0.1,
                    bytes: 42
                },
                Sample {
                    t: 1.6,
                    secs: 0.05,
                    bytes: 0
                }
            ]
        );
        let e = read_series("{\"t\":1}\n".as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 1:"), "{e}");
    }
}
