//! How long the reorder windows held packets, in buckets that the daemon counts and the
//! control protocol carries: 250 µs wide up to 50 ms (a delay difference plus 2 ms is
//! read to a quarter of a millisecond), 5 ms wide up to 250 ms (the longest wait), and
//! one for anything longer.

/// Buckets in all.
pub const BUCKETS: usize = 241;
const FINE_NS: u64 = 250_000;
const FINE_END_NS: u64 = 50_000_000;
const COARSE_NS: u64 = 5_000_000;
const FINE_BUCKETS: usize = (FINE_END_NS / FINE_NS) as usize;

/// The bucket of a packet held `ns` nanoseconds.
#[inline]
pub fn bucket(ns: u64) -> usize {
    if ns < FINE_END_NS {
        (ns / FINE_NS) as usize
    } else {
        (FINE_BUCKETS + ((ns - FINE_END_NS) / COARSE_NS) as usize).min(BUCKETS - 1)
    }
}

/// The upper edge of bucket `i` in µs (exclusive); `u64::MAX` for the last (longer than
/// 250 ms).
pub fn upper_us(i: usize) -> u64 {
    if i < FINE_BUCKETS {
        (i as u64 + 1) * FINE_NS / 1000
    } else if i < BUCKETS - 1 {
        (FINE_END_NS + (i - FINE_BUCKETS + 1) as u64 * COARSE_NS) / 1000
    } else {
        u64::MAX
    }
}

/// The `q` quantile (0..=1) of how long packets waited, in µs (a bucket's upper edge):
/// `held` is `[upper edge µs, packets]` per non-empty bucket in order, `not_held` the
/// packets that waited for nothing. 0 when the quantile falls among those, or there are
/// no packets.
pub fn quantile_us(held: &[[u64; 2]], not_held: u64, q: f64) -> u64 {
    let total = not_held + held.iter().map(|b| b[1]).sum::<u64>();
    let rank = (q.clamp(0.0, 1.0) * total as f64).ceil() as u64;
    if rank <= not_held {
        return 0;
    }
    let mut seen = not_held;
    for [upper, n] in held {
        seen += n;
        if seen >= rank {
            return *upper;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_time_in_order() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(249_999), 0);
        assert_eq!(bucket(250_000), 1);
        assert_eq!(upper_us(0), 250);
        assert_eq!(bucket(49_999_999), 199);
        assert_eq!(upper_us(199), 50_000);
        assert_eq!(bucket(50_000_000), 200);
        assert_eq!(upper_us(200), 55_000);
        assert_eq!(bucket(249_999_999), 239);
        assert_eq!(upper_us(239), 250_000);
        assert_eq!(bucket(250_000_000), 240);
        assert_eq!(bucket(u64::MAX), 240);
        assert_eq!(upper_us(240), u64::MAX);
        for ns in (0..300_000_000).step_by(77_777) {
            let i = bucket(ns);
            assert!(ns / 1000 < upper_us(i), "{ns} in bucket {i}");
            assert!(i == 0 || ns / 1000 >= upper_us(i - 1), "{ns} in bucket {i}");
        }
    }

    #[test]
    fn quantiles_count_the_packets_that_waited_for_nothing() {
        // 90 not held, 9 held 1-1.25 ms, 1 held 10-10.25 ms.
        let held = [[1250, 9], [10_250, 1]];
        assert_eq!(quantile_us(&held, 90, 0.5), 0);
        assert_eq!(quantile_us(&held, 90, 0.9), 0);
        assert_eq!(quantile_us(&held, 90, 0.91), 1250);
        assert_eq!(quantile_us(&held, 90, 0.99), 1250);
        assert_eq!(quantile_us(&held, 90, 1.0), 10_250);
        assert_eq!(quantile_us(&held, 0, 0.5), 1250);
        assert_eq!(quantile_us(&[], 0, 0.99), 0);
    }
}
