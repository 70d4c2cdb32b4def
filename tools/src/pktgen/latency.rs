//! One-way latency: transmit stamp to receive time, into an HDR histogram.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency recorded as such (1 minute); larger ones count as this.
const MAX_NS: u64 = 60_000_000_000;
/// Significant decimal digits the histogram keeps.
const SIGFIG: u8 = 3;

/// Latencies of the packets one sink received.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
    /// Packets received before they were sent, by the clocks: a clock step.
    negative: u64,
}

/// Latency percentiles in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Packets measured.
    pub count: u64,
    /// Smallest latency.
    pub min_ns: u64,
    /// Mean latency.
    pub mean_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest latency.
    pub max_ns: u64,
    /// Packets whose receive time was before their transmit stamp (not in the percentiles).
    pub negative: u64,
}

impl Latency {
    /// An empty record.
    pub fn new() -> Latency {
        Latency {
            hist: Histogram::new_with_bounds(1, MAX_NS, SIGFIG).expect("valid histogram bounds"),
            negative: 0,
        }
    }

    /// Records a packet stamped at `tx_ns` and received at `rx_ns`.
    pub fn record(&mut self, tx_ns: u64, rx_ns: u64) {
        match rx_ns.checked_sub(tx_ns) {
            Some(d) => self.hist.saturating_record(d.max(1)),
            None => self.negative += 1,
        }
    }

    /// Adds another record.
    pub fn merge(&mut self, o: &Latency) {
        // Same bounds on both sides, so adding cannot fail; a failure would only lose data.
        let _ = self.hist.add(&o.hist);
        self.negative += o.negative;
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.hist.reset();
        self.negative = 0;
    }

    /// Percentiles of what was recorded (zeros when nothing was).
    pub fn summary(&self) -> LatencySummary {
        let h = &self.hist;
        if h.is_empty() {
            return LatencySummary {
                negative: self.negative,
                ..LatencySummary::default()
            };
        }
        LatencySummary {
            count: h.len(),
            min_ns: h.min(),
            mean_ns: h.mean() as u64,
            p50_ns: h.value_at_quantile(0.5),
            p90_ns: h.value_at_quantile(0.9),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            negative: self.negative,
        }
    }
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_latencies() {
        let mut l = Latency::new();
        // 1..=1000 µs, one each.
        for us in 1..=1000u64 {
            l.record(1_000_000_000, 1_000_000_000 + us * 1000);
        }
        l.record(5, 4);
        let s = l.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.negative, 1);
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 * 0.002;
        assert!(near(s.min_ns, 1000), "{s:?}");
        assert!(near(s.p50_ns, 500_000), "{s:?}");
        assert!(near(s.p90_ns, 900_000), "{s:?}");
        assert!(near(s.p99_ns, 990_000), "{s:?}");
        assert!(near(s.p999_ns, 999_000), "{s:?}");
        assert!(near(s.max_ns, 1_000_000), "{s:?}");
        let mut m = Latency::new();
        m.merge(&l);
        m.merge(&l);
        assert_eq!(m.summary().count, 2000);
        m.clear();
        assert_eq!(m.summary(), LatencySummary::default());
    }
}
