//! Rates and the token bucket that keeps a generator to one.

use std::fmt;
use std::str::FromStr;

/// Time a bucket may save up for, in seconds. A generator descheduled for longer than this
/// falls behind its rate; one descheduled for less catches up in a burst of at most this much.
const BURST_SECS: f64 = 0.005;

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// As fast as the generator can.
    Max,
    /// Packets per second.
    Pps(f64),
    /// Bits per second of Ethernet frames, FCS included (preamble and gap not counted).
    Bps(f64),
}

impl Rate {
    /// What a frame of `size` bytes costs in this rate's unit (packets or bits).
    pub fn cost(&self, size: usize) -> u64 {
        match self {
            Rate::Bps(_) => size as u64 * 8,
            _ => 1,
        }
    }

    /// The same rate shared by `n` senders: each one's part.
    pub fn split(&self, n: usize) -> Rate {
        let n = n.max(1) as f64;
        match *self {
            Rate::Max => Rate::Max,
            Rate::Pps(r) => Rate::Pps(r / n),
            Rate::Bps(r) => Rate::Bps(r / n),
        }
    }

    /// Packets per second for frames of mean size `mean` (None for [`Rate::Max`]).
    pub fn pps(&self, mean: f64) -> Option<f64> {
        match *self {
            Rate::Max => None,
            Rate::Pps(r) => Some(r),
            Rate::Bps(r) => Some(r / (mean * 8.0)),
        }
    }

    /// A bucket for this rate starting at `now_ns`, able to pass a batch of `batch` frames of up
    /// to `largest` bytes at once; None for [`Rate::Max`].
    pub fn bucket(&self, largest: usize, batch: usize, now_ns: u64) -> Option<TokenBucket> {
        let per_sec = match *self {
            Rate::Max => return None,
            Rate::Pps(r) | Rate::Bps(r) => r.max(0.0),
        };
        let saved = (per_sec * BURST_SECS) as u64;
        let burst = saved.max(self.cost(largest) * batch.max(1) as u64);
        Some(TokenBucket::new(per_sec, burst, now_ns))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Rate::Max => f.write_str("max"),
            Rate::Pps(r) => write!(f, "{} pps", si(r)),
            Rate::Bps(r) => write!(f, "{}bit/s", si(r)),
        }
    }
}

/// `r` with a k/M/G suffix and up to three decimals.
pub fn si(r: f64) -> String {
    let (v, unit) = if r >= 1e9 {
        (r / 1e9, "G")
    } else if r >= 1e6 {
        (r / 1e6, "M")
    } else if r >= 1e3 {
        (r / 1e3, "k")
    } else {
        (r, "")
    };
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{}{unit}", if unit.is_empty() { "" } else { " " })
        .trim_end()
        .to_string()
}

impl FromStr for Rate {
    type Err = String;

    /// `max`; packets per second as `10000`, `10k`, `1.5M`, `200kpps`; bits per second as
    /// `100mbit`, `1gbit`, `64000bps`.
    fn from_str(s: &str) -> Result<Rate, String> {
        let t = s.trim().to_ascii_lowercase();
        if t == "max" {
            return Ok(Rate::Max);
        }
        let bad = || format!("rate {s:?}: e.g. max, 10000, 250k, 1.5M, 200kpps, 100mbit, 1gbit");
        let (num, bits) = if let Some(n) = t.strip_suffix("bit") {
            (n, true)
        } else if let Some(n) = t.strip_suffix("bps") {
            (n, true)
        } else if let Some(n) = t.strip_suffix("pps") {
            (n, false)
        } else {
            (t.as_str(), false)
        };
        let (digits, scale) = match num.chars().last() {
            Some('k') => (&num[..num.len() - 1], 1e3),
            Some('m') => (&num[..num.len() - 1], 1e6),
            Some('g') => (&num[..num.len() - 1], 1e9),
            _ => (num, 1.0),
        };
        let v: f64 = digits.trim().parse().map_err(|_| bad())?;
        let v = v * scale;
        if !v.is_finite() || v <= 0.0 {
            return Err(bad());
        }
        Ok(if bits { Rate::Bps(v) } else { Rate::Pps(v) })
    }
}

/// Fixed-point scale of the bucket's fill: tokens are kept in trillionths.
const SCALE: u128 = 1_000_000_000_000;

/// A token bucket on an integer nanosecond clock: tokens accrue at a rate up to a burst, and a
/// frame takes its cost in tokens. Integer arithmetic on trillionths of a token (rates are kept to
/// a thousandth of a token a second), so no error builds up over long runs. Starts empty.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Trillionths of a token added per nanosecond.
    per_ns: u128,
    /// Capacity, in trillionths of a token.
    cap: u128,
    /// Current fill, in trillionths of a token.
    fill: u128,
    last_ns: u64,
}

impl TokenBucket {
    /// A bucket adding `per_sec` tokens a second, holding at most `burst` tokens (at least 1),
    /// empty at `now_ns`.
    pub fn new(per_sec: f64, burst: u64, now_ns: u64) -> TokenBucket {
        TokenBucket {
            per_ns: (per_sec.max(0.0) * 1000.0).round() as u128,
            cap: u128::from(burst.max(1)) * SCALE,
            fill: 0,
            last_ns: now_ns,
        }
    }

    fn refill(&mut self, now_ns: u64) {
        if now_ns > self.last_ns {
            let dt = u128::from(now_ns - self.last_ns);
            self.fill = (self.fill + dt * self.per_ns).min(self.cap);
            self.last_ns = now_ns;
        }
    }

    /// Takes `cost` tokens if the bucket holds them at `now_ns`.
    pub fn try_take(&mut self, now_ns: u64, cost: u64) -> bool {
        self.refill(now_ns);
        let need = u128::from(cost) * SCALE;
        if self.fill >= need {
            self.fill -= need;
            true
        } else {
            false
        }
    }

    /// Returns `cost` tokens taken for a frame that could not be sent after all.
    pub fn give_back(&mut self, cost: u64) {
        self.fill += u128::from(cost) * SCALE;
    }

    /// Nanoseconds from `now_ns` until `cost` tokens are there (u64::MAX at rate 0).
    pub fn wait_at(&mut self, now_ns: u64, cost: u64) -> u64 {
        self.refill(now_ns);
        self.wait_ns(cost)
    }

    /// Nanoseconds from the last refill until `cost` tokens are there (u64::MAX at rate 0).
    pub fn wait_ns(&self, cost: u64) -> u64 {
        let need = u128::from(cost) * SCALE;
        if self.fill >= need {
            return 0;
        }
        if self.per_ns == 0 {
            return u64::MAX;
        }
        u64::try_from((need - self.fill).div_ceil(self.per_ns)).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!("max".parse::<Rate>().unwrap(), Rate::Max);
        assert_eq!("10000".parse::<Rate>().unwrap(), Rate::Pps(10_000.0));
        assert_eq!("250k".parse::<Rate>().unwrap(), Rate::Pps(250_000.0));
        assert_eq!("1.5M".parse::<Rate>().unwrap(), Rate::Pps(1_500_000.0));
        assert_eq!("200kpps".parse::<Rate>().unwrap(), Rate::Pps(200_000.0));
        assert_eq!("100mbit".parse::<Rate>().unwrap(), Rate::Bps(100e6));
        assert_eq!("1Gbit".parse::<Rate>().unwrap(), Rate::Bps(1e9));
        assert_eq!("64000bps".parse::<Rate>().unwrap(), Rate::Bps(64_000.0));
        for bad in ["", "fast", "-5", "0", "1x", "kpps"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bit_rates_convert_to_packet_rates() {
        assert_eq!(Rate::Bps(512_000.0).pps(64.0), Some(1000.0));
        assert_eq!(Rate::Pps(5.0).split(2), Rate::Pps(2.5));
        assert_eq!(Rate::Max.pps(64.0), None);
        assert_eq!(Rate::Bps(1.0).cost(64), 512);
        assert_eq!(Rate::Pps(1.0).cost(1518), 1);
        assert_eq!(Rate::Pps(1_234_000.0).to_string(), "1.234 M pps");
    }

    #[test]
    fn bucket_passes_its_rate_and_no_more() {
        // 10 kpps for one second in 1 µs steps: 10,000 tokens, give or take the burst.
        let mut b = TokenBucket::new(10_000.0, 10, 0);
        let mut taken = 0u64;
        for t in 0..=1_000_000u64 {
            while b.try_take(t * 1000, 1) {
                taken += 1;
            }
        }
        assert_eq!(taken, 10_000);
    }

    #[test]
    fn bucket_caps_its_savings_at_the_burst() {
        let mut b = TokenBucket::new(1000.0, 5, 0);
        // Idle for a second: only the burst is there.
        let mut n = 0;
        while b.try_take(1_000_000_000, 1) {
            n += 1;
        }
        assert_eq!(n, 5);
        assert!(!b.try_take(1_000_000_000, 1));
        assert_eq!(b.wait_ns(1), 1_000_000);
        assert_eq!(b.wait_at(1_000_500_000, 1), 500_000);
        b.give_back(1);
        assert!(b.try_take(1_000_000_000, 1));
    }

    #[test]
    fn fractional_rates_are_kept() {
        // 2.5 tokens a second: 25 in 10 s.
        let mut b = TokenBucket::new(2.5, 1, 0);
        let mut n = 0;
        for ms in 0..=10_000u64 {
            while b.try_take(ms * 1_000_000, 1) {
                n += 1;
            }
        }
        assert_eq!(n, 25);
    }
}
