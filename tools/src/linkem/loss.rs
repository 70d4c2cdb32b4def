//! Losses: independent random loss, and bursty loss from a Gilbert–Elliott chain.
//!
//! The chain has a good and a bad state. For every packet it first moves (good to bad with
//! probability `p`, bad to good with probability `r`), then loses the packet with the loss
//! probability of the state it is in (`bad`, 100% unless given; `good`, 0% unless given). In the
//! long run it is bad a share `p / (p + r)` of the packets, and a stay in the bad state lasts
//! `1 / r` packets on average.

use super::rng::Rng;
use super::units::{format_percent, parse_percent};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The parameters of a Gilbert–Elliott chain: `P,R[,BAD[,GOOD]]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeParams {
    /// Probability of moving from good to bad, per packet.
    pub p: f64,
    /// Probability of moving from bad to good, per packet.
    pub r: f64,
    /// Loss probability in the bad state.
    pub bad: f64,
    /// Loss probability in the good state.
    pub good: f64,
}

impl GeParams {
    /// `P,R[,BAD[,GOOD]]` as percentages, e.g. `1%,25%` or `0.5%,10%,80%,0.1%`; `off` is None.
    pub fn parse(s: &str) -> Result<Option<GeParams>, String> {
        if s.trim() == "off" {
            return Ok(None);
        }
        let parts: Vec<&str> = s.split(',').collect();
        if !(2..=4).contains(&parts.len()) {
            return Err(format!(
                "`{s}` is not a burst loss: give P,R[,BAD[,GOOD]] as percentages (e.g. 1%,25%) or off"
            ));
        }
        let get = |i: usize, default: f64| parts.get(i).map_or(Ok(default), |v| parse_percent(v));
        let ge = GeParams {
            p: get(0, 0.0)?,
            r: get(1, 0.0)?,
            bad: get(2, 1.0)?,
            good: get(3, 0.0)?,
        };
        if ge.r == 0.0 {
            return Err(format!(
                "`{s}`: R (bad to good) must be above 0, or the loss never ends"
            ));
        }
        Ok(Some(ge))
    }
}

impl fmt::Display for GeParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{}",
            format_percent(self.p),
            format_percent(self.r),
            format_percent(self.bad),
            format_percent(self.good)
        )
    }
}

/// A Gilbert–Elliott chain's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GilbertElliott {
    bad: bool,
}

impl GilbertElliott {
    /// Moves the chain one packet on; true if that packet is lost.
    pub fn lose(&mut self, ge: &GeParams, rng: &mut Rng) -> bool {
        let flip = if self.bad { ge.r } else { ge.p };
        if rng.chance(flip) {
            self.bad = !self.bad;
        }
        rng.chance(if self.bad { ge.bad } else { ge.good })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ge(s: &str) -> GeParams {
        GeParams::parse(s).unwrap().unwrap()
    }

    /// The long-run loss probability of `g`.
    fn mean_loss(g: &GeParams) -> f64 {
        let bad_share = g.p / (g.p + g.r);
        bad_share * g.bad + (1.0 - bad_share) * g.good
    }

    #[test]
    fn parameters_parse_with_defaults() {
        assert_eq!(
            ge("1%,25%"),
            GeParams {
                p: 0.01,
                r: 0.25,
                bad: 1.0,
                good: 0.0
            }
        );
        assert_eq!(
            ge("0.5%,10%,80%,0.1%"),
            GeParams {
                p: 0.005,
                r: 0.1,
                bad: 0.8,
                good: 0.001
            }
        );
        assert_eq!(GeParams::parse("off"), Ok(None));
        assert!(GeParams::parse("1%")
            .unwrap_err()
            .contains("P,R[,BAD[,GOOD]]"));
        assert!(GeParams::parse("1%,2%,3%,4%,5%").is_err());
        assert!(GeParams::parse("1%,x").unwrap_err().contains("`x`"));
        assert!(GeParams::parse("1%,0").unwrap_err().contains("above 0"));
        assert_eq!(ge("1%,25%").to_string(), "1%,25%,100%,0");
    }

    #[test]
    fn the_chain_is_reproducible_for_a_seed() {
        let g = ge("10%,30%");
        let mut rng = Rng::new(7);
        let mut chain = GilbertElliott::default();
        let lost: String = (0..40)
            .map(|_| if chain.lose(&g, &mut rng) { 'x' } else { '.' })
            .collect();
        let mut again = (Rng::new(7), GilbertElliott::default());
        let lost_again: String = (0..40)
            .map(|_| {
                if again.1.lose(&g, &mut again.0) {
                    'x'
                } else {
                    '.'
                }
            })
            .collect();
        assert_eq!(lost, lost_again);
        assert!(lost.contains("xx"), "losses come in bursts: {lost}");
    }

    #[test]
    fn long_runs_match_the_stationary_loss_and_burst_length() {
        let g = ge("2%,20%");
        let mut rng = Rng::new(1);
        let mut chain = GilbertElliott::default();
        let n = 1_000_000;
        let (mut lost, mut bursts, mut prev) = (0u64, 0u64, false);
        for _ in 0..n {
            let l = chain.lose(&g, &mut rng);
            lost += u64::from(l);
            bursts += u64::from(l && !prev);
            prev = l;
        }
        let rate = lost as f64 / n as f64;
        // Expected 2/22 = 9.09%; mean burst 1/r = 5 packets.
        assert!((rate - mean_loss(&g)).abs() < 0.003, "loss {rate}");
        let burst = lost as f64 / bursts as f64;
        assert!((burst - 5.0).abs() < 0.2, "burst {burst}");
    }
}
