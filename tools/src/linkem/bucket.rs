//! The rate limit: a token bucket that schedules departures instead of polling for tokens.
//!
//! Tokens (bytes) flow in at the rate and the bucket holds at most `burst` of them. Packets leave
//! in arrival order, each once the bucket holds its size; so the bucket answers, at a packet's
//! arrival, when it will leave. The state is the time at which the bucket would be full again
//! (`full_at`): at time `t` it lacks `(full_at - t) × rate` bytes. Times are integer nanoseconds
//! and the sub-nanosecond remainders are carried, so a long run keeps the rate exactly.

/// Nanoseconds in a second.
const NS: u128 = 1_000_000_000;
/// The bucket holds at least this much: two full-size Ethernet frames (FCS included).
pub const MIN_BURST_BYTES: u64 = 2 * 1518;
/// Otherwise it holds what the rate brings in this long.
pub const BURST_NS: u64 = 1_000_000;

/// A token bucket on integer nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    rate_bps: u64,
    burst: u64,
    /// When the bucket is full again if nothing more is sent.
    full_at: u64,
    /// Bits × nanoseconds-per-second not yet turned into a whole nanosecond of `full_at`.
    carry: u128,
}

impl TokenBucket {
    /// A full bucket for `rate_bps` bits per second, holding `burst` bytes.
    pub fn new(rate_bps: u64, burst: u64) -> TokenBucket {
        TokenBucket {
            rate_bps: rate_bps.max(1),
            burst,
            full_at: 0,
            carry: 0,
        }
    }

    /// A full bucket for `rate_bps` with the default burst: [`BURST_NS`] at the rate, at least
    /// [`MIN_BURST_BYTES`].
    pub fn for_rate(rate_bps: u64) -> TokenBucket {
        let burst = (u128::from(rate_bps) * u128::from(BURST_NS) / NS / 8) as u64;
        TokenBucket::new(rate_bps, burst.max(MIN_BURST_BYTES))
    }

    /// Nanoseconds the rate takes to bring in `bytes`, and the remainder.
    fn time_for(&self, bytes: u64, carry: u128) -> (u64, u128) {
        let num = u128::from(bytes) * 8 * NS + carry;
        let rate = u128::from(self.rate_bps);
        ((num / rate) as u64, num % rate)
    }

    /// When a packet of `bytes` arriving at `now` leaves, if it need not wait longer than
    /// `max_wait`; None (and nothing changes) if it would, as a full queue drops it.
    pub fn depart(&mut self, now: u64, bytes: u64, max_wait: u64) -> Option<u64> {
        let room = self.burst.max(bytes);
        // It leaves once the bucket lacks no more than `room - bytes`.
        let (slack, _) = self.time_for(room - bytes, 0);
        let leave = now.max(self.full_at.saturating_sub(slack));
        if leave - now > max_wait {
            return None;
        }
        let (cost, carry) = self.time_for(bytes, self.carry);
        self.full_at = self.full_at.max(leave) + cost;
        self.carry = carry;
        Some(leave)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_full_bucket_lets_its_burst_go_at_once_then_paces() {
        // 8 Mbit/s is 1 byte per microsecond; a burst of 3000 bytes.
        let mut b = TokenBucket::new(8_000_000, 3000);
        assert_eq!(b.depart(0, 1000, MS), Some(0));
        assert_eq!(b.depart(0, 1000, MS), Some(0));
        assert_eq!(b.depart(0, 1000, MS), Some(0));
        // Empty now: each 1000 bytes wait 1 ms for their tokens.
        assert_eq!(b.depart(0, 1000, 5 * MS), Some(MS));
        assert_eq!(b.depart(0, 1000, 5 * MS), Some(2 * MS));
        // Later arrivals find the tokens that came in meanwhile.
        assert_eq!(b.depart(10 * MS, 1000, 0), Some(10 * MS));
    }

    #[test]
    fn a_packet_that_would_wait_too_long_is_refused_and_costs_nothing() {
        let mut b = TokenBucket::new(8_000_000, 1500);
        assert_eq!(b.depart(0, 1500, 0), Some(0));
        assert_eq!(b.depart(0, 1500, MS), None, "needs 1.5 ms");
        assert_eq!(b.depart(0, 1500, 2 * MS), Some(1_500_000));
        assert_eq!(b.depart(0, 1500, 2 * MS), None, "needs 3 ms");
    }

    #[test]
    fn larger_packets_than_the_burst_still_pass() {
        let mut b = TokenBucket::new(8_000_000, 100);
        assert_eq!(b.depart(0, 1500, 0), Some(0));
        assert_eq!(b.depart(0, 1500, 10 * MS), Some(1_500_000));
    }

    #[test]
    fn the_rate_holds_exactly_over_a_long_run() {
        // A rate whose byte time is no whole number of nanoseconds.
        let rate = 300_000_007;
        let mut b = TokenBucket::new(rate, 1518);
        let mut last = 0;
        let n = 1_000_000u64;
        for _ in 0..n {
            last = b.depart(0, 1518, u64::MAX).unwrap();
        }
        // The last packet leaves when all the others' bits have gone.
        let expected = u128::from(n - 1) * 1518 * 8 * NS / u128::from(rate);
        assert!(
            u128::from(last).abs_diff(expected) <= 1,
            "{last} vs {expected}"
        );
    }

    #[test]
    fn the_default_burst_is_a_millisecond_or_two_frames() {
        assert_eq!(TokenBucket::for_rate(200_000_000).burst, 25_000);
        assert_eq!(TokenBucket::for_rate(1_000_000).burst, MIN_BURST_BYTES);
    }
}
