//! The RFC 2544 throughput search: per frame size, the highest rate with no loss (NDR) and the
//! highest with loss under a small ratio (PDR, 0.5% as in FD.io CSIT), by bisection.
//!
//! The first trial runs as fast as the generator can, which bounds both searches from above.
//! Every trial narrows both intervals at once, assuming loss grows with the rate: a trial without
//! loss passes both, one with loss above the PDR ratio fails both. Each search stops when its
//! interval is narrower than the precision (relative to its upper end), or when the trial budget
//! is spent; its result is the highest rate that passed.

use super::latency::LatencySummary;
use super::rate::Rate;
use super::session::TrialResult;
use serde::{Deserialize, Serialize};
use std::io;

/// The PDR loss ratio.
pub const PDR_LOSS: f64 = 0.005;

/// How the search proceeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchParams {
    /// Stop once an interval is narrower than this fraction of its upper end.
    pub precision: f64,
    /// Trials at most, the first one included.
    pub max_trials: u32,
    /// Loss ratio a PDR trial may have.
    pub pdr_loss: f64,
    /// Rates below this (packets per second) are not tried.
    pub min_rate: f64,
}

impl Default for SearchParams {
    fn default() -> Self {
        SearchParams {
            precision: 0.02,
            max_trials: 12,
            pdr_loss: PDR_LOSS,
            min_rate: 100.0,
        }
    }
}

/// The rates known to pass and to fail one criterion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Highest rate that passed (0: none yet).
    pub pass: f64,
    /// Lowest rate that failed (the first trial's rate when none did: nothing faster was tried).
    pub fail: f64,
}

impl Interval {
    fn done(&self, p: &SearchParams) -> bool {
        self.fail - self.pass <= p.precision * self.fail || self.fail <= p.min_rate
    }

    fn record(&mut self, rate: f64, passed: bool) {
        if passed {
            self.pass = self.pass.max(rate);
        } else {
            self.fail = self.fail.min(rate);
        }
        // A pass above a failure (noise): the pass wins and the interval closes at it.
        if self.pass > self.fail {
            self.fail = self.pass;
        }
    }
}

/// A search in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    params: SearchParams,
    /// No loss.
    pub ndr: Interval,
    /// Loss under `pdr_loss`.
    pub pdr: Interval,
    trials: u32,
}

impl Search {
    /// A search whose first trial, as fast as the generator could, offered `max_rate` pps and
    /// lost `loss_ratio` of it.
    pub fn new(params: SearchParams, max_rate: f64, loss_ratio: f64) -> Search {
        let top = Interval {
            pass: 0.0,
            fail: max_rate,
        };
        let mut s = Search {
            params,
            ndr: top,
            pdr: top,
            trials: 0,
        };
        s.record(max_rate, loss_ratio);
        s
    }

    /// Accounts for a trial that offered `rate` pps and lost `loss_ratio` of it.
    pub fn record(&mut self, rate: f64, loss_ratio: f64) {
        self.trials += 1;
        self.ndr.record(rate, loss_ratio == 0.0);
        self.pdr.record(rate, loss_ratio < self.params.pdr_loss);
    }

    /// The next rate to try; None when both searches are done or the budget is spent.
    pub fn next_rate(&self) -> Option<f64> {
        if self.trials >= self.params.max_trials {
            return None;
        }
        let open = |i: &Interval| (!i.done(&self.params)).then_some(*i);
        // The wider open interval first (relative to its upper end); NDR on ties.
        let pick = match (open(&self.ndr), open(&self.pdr)) {
            (Some(n), Some(p)) => {
                let w = |i: &Interval| (i.fail - i.pass) / i.fail;
                if w(&p) > w(&n) {
                    p
                } else {
                    n
                }
            }
            (Some(i), None) | (None, Some(i)) => i,
            (None, None) => return None,
        };
        Some((pick.pass + pick.fail) / 2.0)
    }

    /// Trials recorded.
    pub fn trials(&self) -> u32 {
        self.trials
    }
}

/// The gist of one trial of a search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrialBrief {
    /// Rate asked for, packets per second (None: as fast as possible).
    pub rate_pps: Option<f64>,
    /// Packets per second sent.
    pub tx_pps: f64,
    /// Frame bits per second sent, FCS included.
    pub tx_bps: f64,
    /// Distinct packets per second received.
    pub rx_pps: f64,
    /// Packets lost.
    pub lost: u64,
    /// `lost` over packets sent.
    pub loss_ratio: f64,
    /// One-way latency of the trial.
    pub latency: LatencySummary,
}

impl TrialBrief {
    fn new(rate: Rate, t: &TrialResult) -> TrialBrief {
        TrialBrief {
            rate_pps: match rate {
                Rate::Pps(r) => Some(r),
                _ => None,
            },
            tx_pps: t.tx_pps,
            tx_bps: t.tx_bps,
            rx_pps: t.rx_pps,
            lost: t.lost,
            loss_ratio: t.loss_ratio,
            latency: t.latency,
        }
    }
}

/// The result of a search for one frame size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeResult {
    /// The frame size (or `imix`).
    pub size: String,
    /// What the generator offered at full speed, packets per second.
    pub max_pps: f64,
    /// The fastest trial without loss.
    pub ndr: Option<TrialBrief>,
    /// The fastest trial with loss under the PDR ratio.
    pub pdr: Option<TrialBrief>,
    /// Every trial, in order.
    pub trials: Vec<TrialBrief>,
}

/// Searches NDR and PDR for one frame size; `trial` runs one trial at a rate.
pub fn search_size(
    size: &str,
    params: SearchParams,
    mut trial: impl FnMut(Rate) -> io::Result<TrialResult>,
) -> io::Result<SizeResult> {
    let first = trial(Rate::Max)?;
    let mut search = Search::new(params, first.tx_pps, first.loss_ratio);
    let mut trials = vec![TrialBrief::new(Rate::Max, &first)];
    while let Some(r) = search.next_rate() {
        let rate = Rate::Pps(r);
        let t = trial(rate)?;
        search.record(t.tx_pps, t.loss_ratio);
        trials.push(TrialBrief::new(rate, &t));
    }
    let best = |ok: &dyn Fn(&TrialBrief) -> bool| {
        trials
            .iter()
            .filter(|t| ok(t))
            .max_by(|a, b| a.tx_pps.total_cmp(&b.tx_pps))
            .copied()
    };
    Ok(SizeResult {
        size: size.to_string(),
        max_pps: first.tx_pps,
        ndr: best(&|t| t.lost == 0 && t.tx_pps > 0.0),
        pdr: best(&|t| t.loss_ratio < params.pdr_loss && t.tx_pps > 0.0),
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a device that loses `loss(rate)`; returns it and the rates tried.
    fn search(max: f64, params: SearchParams, loss: impl Fn(f64) -> f64) -> (Search, Vec<f64>) {
        let mut s = Search::new(params, max, loss(max));
        let mut tried = vec![max];
        while let Some(r) = s.next_rate() {
            tried.push(r);
            s.record(r, loss(r));
        }
        (s, tried)
    }

    /// Loses nothing up to 600 kpps, then a growing share: 0.5% is crossed at 630 kpps.
    fn knee(r: f64) -> f64 {
        if r <= 600_000.0 {
            0.0
        } else {
            (r - 600_000.0) / 6_000_000.0
        }
    }

    #[test]
    fn finds_both_rates_within_the_precision() {
        let p = SearchParams::default();
        let (s, tried) = search(1_000_000.0, p, knee);
        assert!(s.ndr.pass <= 600_000.0 && s.ndr.pass >= 600_000.0 * (1.0 - p.precision));
        assert!(s.pdr.pass < 630_000.0 && s.pdr.pass >= 630_000.0 * (1.0 - p.precision));
        assert!(s.ndr.fail > 600_000.0 && s.pdr.fail >= 630_000.0);
        assert!(tried.len() as u32 <= p.max_trials);
        assert_eq!(s.trials() as usize, tried.len());
    }

    #[test]
    fn a_lossless_first_trial_ends_the_search() {
        let (s, tried) = search(300_000.0, SearchParams::default(), |_| 0.0);
        assert_eq!(tried, [300_000.0]);
        assert_eq!(s.ndr.pass, 300_000.0);
        assert_eq!(s.pdr.pass, 300_000.0);
    }

    #[test]
    fn small_loss_at_full_speed_passes_pdr_only() {
        let (s, _) = search(100_000.0, SearchParams::default(), |r| {
            if r > 50_000.0 {
                0.001
            } else {
                0.0
            }
        });
        assert_eq!(s.pdr.pass, 100_000.0);
        assert!(
            s.ndr.pass <= 50_000.0 && s.ndr.pass >= 49_000.0,
            "{:?}",
            s.ndr
        );
    }

    #[test]
    fn the_budget_and_the_floor_bound_the_search() {
        let p = SearchParams {
            max_trials: 4,
            ..SearchParams::default()
        };
        let (_, tried) = search(1e6, p, |_| 1.0);
        assert_eq!(tried.len(), 4);
        // Loss at every rate: the search walks down to the floor and stops there.
        let (s, tried) = search(1e6, SearchParams::default(), |_| 1.0);
        assert_eq!(s.ndr.pass, 0.0);
        assert!(tried.len() <= 12);
        assert!(*tried.last().unwrap() >= 100.0 / 2.0);
    }

    #[test]
    fn a_pass_above_a_failure_closes_the_interval_at_the_pass() {
        let mut i = Interval {
            pass: 0.0,
            fail: 100.0,
        };
        i.record(50.0, false);
        i.record(70.0, true);
        assert_eq!(
            i,
            Interval {
                pass: 70.0,
                fail: 70.0
            }
        );
    }
    #[test]
    fn search_size_keeps_the_fastest_passing_trials() {
        use crate::pktgen::gen::{GenReport, StreamSent};
        use crate::pktgen::seq::SeqCounts;
        use crate::pktgen::sink::{SinkReport, StreamReport};
        // A fake device: the generator reaches 1 Mpps; loss follows `knee`.
        let mut asked = Vec::new();
        let r = search_size("64", SearchParams::default(), |rate| {
            asked.push(rate);
            let pps = rate.pps(64.0).unwrap_or(1_000_000.0);
            let sent = pps as u64;
            let lost = (knee(pps) * sent as f64).ceil() as u64;
            let gen = GenReport {
                packets: sent,
                bytes: sent * 64,
                elapsed_ns: 1_000_000_000,
                tx_busy: 0,
                streams: vec![StreamSent {
                    stream: 0,
                    start: 0,
                    sent,
                }],
            };
            let counts = SeqCounts {
                received: sent - lost,
                unique: sent - lost,
                next: sent,
                ..SeqCounts::default()
            };
            let sink = SinkReport {
                packets: sent - lost,
                bytes: (sent - lost) * 64,
                foreign: 0,
                kernel: Default::default(),
                streams: vec![StreamReport {
                    stream: 0,
                    start: 0,
                    counts,
                }],
                latency: LatencySummary::default(),
            };
            Ok(TrialResult::new(rate, &gen, &sink))
        })
        .unwrap();
        assert_eq!(asked[0], Rate::Max);
        assert_eq!(r.max_pps, 1_000_000.0);
        assert_eq!(r.trials.len(), asked.len());
        let ndr = r.ndr.unwrap();
        assert!(ndr.tx_pps <= 600_000.0 && ndr.tx_pps > 588_000.0, "{ndr:?}");
        assert_eq!(ndr.lost, 0);
        let pdr = r.pdr.unwrap();
        assert!(
            pdr.tx_pps > ndr.tx_pps && pdr.loss_ratio < PDR_LOSS,
            "{pdr:?}"
        );
        assert_eq!(r.trials[0].rate_pps, None);
        assert!(r.trials[1].rate_pps.is_some());
    }
}
