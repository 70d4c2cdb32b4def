//! Time for the generator and the sink.
//!
//! Pacing uses a monotonic clock. Stamps carry the real-time clock (`CLOCK_REALTIME`, through
//! `SystemTime`) in nanoseconds since the Unix epoch: the only clock std exposes as a number two
//! processes can compare. On one host, generator and sink read the same clock, so one-way latency
//! is the difference of two readings; a clock step (NTP) during a run shows up as outliers, and
//! negative differences are counted apart. Between hosts the clocks must be synchronised (PTP).

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Below this, a pause spins instead of sleeping (a sleep overshoots by tens of microseconds).
const SPIN_BELOW: Duration = Duration::from_micros(200);
/// A sleep is cut short by this much, and the rest spun, to wake up on time.
const SLEEP_SLACK: Duration = Duration::from_micros(100);

/// Where a worker gets its time from.
pub trait Clock {
    /// Monotonic nanoseconds since an arbitrary start.
    fn now_ns(&self) -> u64;
    /// Nanoseconds since the Unix epoch, for stamps.
    fn wall_ns(&self) -> u64;
    /// Waits about `ns` nanoseconds.
    fn pause(&self, ns: u64);
}

/// The host's clocks.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    start: Instant,
}

impl HostClock {
    /// A clock whose monotonic time starts now.
    pub fn new() -> HostClock {
        HostClock {
            start: Instant::now(),
        }
    }
}

impl Default for HostClock {
    fn default() -> Self {
        HostClock::new()
    }
}

impl Clock for HostClock {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn wall_ns(&self) -> u64 {
        wall_ns()
    }

    fn pause(&self, ns: u64) {
        let d = Duration::from_nanos(ns);
        if d >= SPIN_BELOW {
            std::thread::sleep(d - SLEEP_SLACK);
        } else {
            std::thread::yield_now();
        }
    }
}

/// Nanoseconds since the Unix epoch on the real-time clock (0 if it is set before 1970).
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A simulated clock: every reading moves it on by `tick` ns, a pause by the time asked. Real time
/// and monotonic time are the same here.
#[derive(Debug)]
pub struct SimClock {
    now: Cell<u64>,
    tick: u64,
}

impl SimClock {
    /// A clock at `start` ns that advances `tick` ns per reading.
    pub fn new(start: u64, tick: u64) -> SimClock {
        SimClock {
            now: Cell::new(start),
            tick,
        }
    }
}

impl Clock for SimClock {
    fn now_ns(&self) -> u64 {
        let t = self.now.get();
        self.now.set(t + self.tick);
        t
    }

    fn wall_ns(&self) -> u64 {
        self.now.get()
    }

    fn pause(&self, ns: u64) {
        self.now.set(self.now.get().saturating_add(ns.max(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_clocks_move_forward() {
        let c = HostClock::new();
        let (a, wa) = (c.now_ns(), c.wall_ns());
        c.pause(1_000_000);
        assert!(c.now_ns() >= a + 800_000);
        assert!(c.wall_ns() > wa);
        // After 2020.
        assert!(wa > 1_577_836_800_000_000_000);
    }

    #[test]
    fn sim_clock_ticks_and_pauses() {
        let c = SimClock::new(100, 5);
        assert_eq!(c.now_ns(), 100);
        assert_eq!(c.now_ns(), 105);
        c.pause(1000);
        assert_eq!(c.wall_ns(), 1110);
    }
}
