//! One direction of a path: its settings, the state of its impairments and its counters. It
//! decides each frame's fate at arrival: the blackhole, random loss, bursty loss, the rate limit
//! (a frame that would wait longer than the buffer is dropped), then the delay with its jitter.
//! The frames themselves wait in the delay lines of the threads that received them
//! ([`DelayLine`](super::delay::DelayLine)), which report back here.

use super::bucket::TokenBucket;
use super::loss::GilbertElliott;
use super::rng::Rng;
use super::settings::Settings;
use serde::{Deserialize, Serialize};

/// What happened to the frames of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames handed to the far side.
    pub tx_packets: u64,
    /// Bytes handed to the far side.
    pub tx_bytes: u64,
    /// Dropped by the blackhole (arriving, or in flight when it was switched on).
    pub cut: u64,
    /// Dropped by random loss.
    pub lost: u64,
    /// Dropped by bursty loss.
    pub burst_lost: u64,
    /// Dropped because they would have waited longer than the buffer behind the rate limit.
    pub rate_dropped: u64,
    /// Dropped because a delay line was full.
    pub overflow: u64,
    /// Released but refused by the transmit ring.
    pub tx_failed: u64,
    /// In delay lines now.
    pub held: u64,
}

/// Why a frame is dropped at arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The blackhole.
    Cut,
    /// Random loss.
    Lost,
    /// Bursty loss.
    BurstLost,
    /// The rate limit's buffer.
    RateDropped,
}

/// One direction.
#[derive(Debug)]
pub struct Direction {
    settings: Settings,
    rng: Rng,
    chain: GilbertElliott,
    bucket: Option<TokenBucket>,
    counters: Counters,
}

impl Direction {
    /// A direction with `settings` whose randomness starts from `seed`.
    pub fn new(settings: Settings, seed: u64) -> Direction {
        let bucket = settings.rate_bps.map(TokenBucket::for_rate);
        Direction {
            settings,
            rng: Rng::new(seed),
            chain: GilbertElliott::default(),
            bucket,
            counters: Counters::default(),
        }
    }

    /// The current settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Replaces the settings. Frames in flight keep their times (with the blackhole on, their
    /// threads drop them); a new rate starts with a full bucket.
    pub fn set(&mut self, settings: Settings) {
        if settings.rate_bps != self.settings.rate_bps {
            self.bucket = settings.rate_bps.map(TokenBucket::for_rate);
        }
        self.settings = settings;
    }

    /// Decides the fate of a frame of `len` bytes received at `now`: when it is due to leave, or
    /// why it is dropped. A frame given a time counts as held until [`Direction::released`],
    /// [`Direction::overflowed`] or [`Direction::dropped_in_flight`] says otherwise.
    pub fn admit(&mut self, now: u64, len: usize) -> Result<u64, Refusal> {
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += len as u64;
        let r = self.due(now, len as u64);
        let c = &mut self.counters;
        match r {
            Ok(_) => c.held += 1,
            Err(Refusal::Cut) => c.cut += 1,
            Err(Refusal::Lost) => c.lost += 1,
            Err(Refusal::BurstLost) => c.burst_lost += 1,
            Err(Refusal::RateDropped) => c.rate_dropped += 1,
        }
        r
    }

    /// When a frame of `len` bytes received at `now` is due, if it survives.
    fn due(&mut self, now: u64, len: u64) -> Result<u64, Refusal> {
        let s = &self.settings;
        if s.cut {
            return Err(Refusal::Cut);
        }
        // Both losses draw for every frame, so that one does not change the other's sequence.
        let lost = self.rng.chance(s.loss);
        let burst_lost = s
            .burst_loss
            .is_some_and(|ge| self.chain.lose(&ge, &mut self.rng));
        if lost {
            return Err(Refusal::Lost);
        }
        if burst_lost {
            return Err(Refusal::BurstLost);
        }
        let leave = match &mut self.bucket {
            Some(b) => b
                .depart(now, len, s.buffer_ns)
                .ok_or(Refusal::RateDropped)?,
            None => now,
        };
        let j = s.jitter_ns;
        let delay = if j == 0 {
            s.delay_ns
        } else {
            (s.delay_ns + self.rng.up_to(2 * j)).saturating_sub(j)
        };
        Ok(leave + delay)
    }

    /// An admitted frame found its delay line full and was dropped.
    pub fn overflowed(&mut self) {
        self.counters.held -= 1;
        self.counters.overflow += 1;
    }

    /// `sent` frames of `bytes` in all left, and `refused` more were refused by the ring.
    pub fn released(&mut self, sent: u64, bytes: u64, refused: u64) {
        let c = &mut self.counters;
        c.held -= sent + refused;
        c.tx_packets += sent;
        c.tx_bytes += bytes;
        c.tx_failed += refused;
    }

    /// `n` frames in flight were dropped by the blackhole.
    pub fn dropped_in_flight(&mut self, n: u64) {
        self.counters.held -= n;
        self.counters.cut += n;
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linkem::loss::GeParams;

    const MS: u64 = 1_000_000;

    #[test]
    fn delay_sets_the_due_time_and_counters_follow_the_frame() {
        let mut d = Direction::new(
            Settings {
                delay_ns: 5 * MS,
                ..Settings::default()
            },
            1,
        );
        assert_eq!(d.admit(1000, 100), Ok(1000 + 5 * MS));
        assert_eq!(d.admit(2000, 100), Ok(2000 + 5 * MS));
        assert_eq!(d.admit(3000, 100), Ok(3000 + 5 * MS));
        assert_eq!(d.counters().held, 3);
        d.released(1, 100, 0);
        d.overflowed();
        d.dropped_in_flight(1);
        let c = d.counters();
        assert_eq!(
            (c.rx_packets, c.rx_bytes, c.tx_packets, c.tx_bytes, c.held),
            (3, 300, 1, 100, 0)
        );
        assert_eq!((c.overflow, c.cut), (1, 1));
        d.admit(0, 1).unwrap();
        d.released(0, 0, 1);
        assert_eq!((d.counters().tx_failed, d.counters().held), (1, 0));
    }

    #[test]
    fn jitter_spreads_delays_evenly_around_the_delay() {
        let mut d = Direction::new(
            Settings {
                delay_ns: 10 * MS,
                jitter_ns: 2 * MS,
                ..Settings::default()
            },
            3,
        );
        let n = 10_000u64;
        let (mut lo, mut hi, mut sum) = (u64::MAX, 0, 0);
        for i in 0..n {
            let now = i * 100 * MS;
            let delay = d.admit(now, 64).unwrap() - now;
            (lo, hi, sum) = (lo.min(delay), hi.max(delay), sum + delay);
        }
        assert!((8 * MS..8 * MS + 10_000).contains(&lo), "{lo}");
        assert!(hi <= 12 * MS && hi > 12 * MS - 10_000, "{hi}");
        let mean = sum / n;
        // The mean of 10,000 draws from 8..12 ms: its deviation is 12 us; this allows 4 of them.
        assert!(mean.abs_diff(10 * MS) < 50_000, "{mean}");
    }

    #[test]
    fn jitter_never_makes_a_negative_delay() {
        let mut d = Direction::new(
            Settings {
                delay_ns: MS,
                jitter_ns: 5 * MS,
                ..Settings::default()
            },
            5,
        );
        for i in 0..1000 {
            let now = i * 100 * MS;
            assert!(d.admit(now, 1).unwrap() >= now);
        }
    }

    #[test]
    fn loss_drops_about_its_share_reproducibly() {
        let run = |seed| {
            let mut d = Direction::new(
                Settings {
                    loss: 0.1,
                    ..Settings::default()
                },
                seed,
            );
            for _ in 0..100_000 {
                let _ = d.admit(0, 60);
            }
            d.counters()
        };
        let c = run(9);
        assert_eq!(c, run(9), "same seed, same losses");
        // 10% of 100,000: the deviation is 95; this allows 6 of them.
        assert!((9_430..=10_570).contains(&c.lost), "{c:?}");
        assert_eq!(c.lost + c.held, 100_000);
    }

    #[test]
    fn burst_loss_is_counted_apart() {
        let mut d = Direction::new(
            Settings {
                burst_loss: GeParams::parse("5%,50%").unwrap(),
                ..Settings::default()
            },
            11,
        );
        for _ in 0..10_000 {
            let _ = d.admit(0, 60);
        }
        let c = d.counters();
        assert_eq!(c.lost, 0);
        // Expected 5/55 = 9.1%.
        assert!((700..=1_100).contains(&c.burst_lost), "{c:?}");
    }

    #[test]
    fn the_rate_limit_paces_and_drops_past_the_buffer() {
        // 12 Mbit/s: a 1500-byte frame every millisecond; the bucket holds 3036 bytes, so the
        // third frame lacks 1464 of its bytes (0.976 ms).
        let mut d = Direction::new(
            Settings {
                rate_bps: Some(12_000_000),
                buffer_ns: 3 * MS,
                delay_ns: 10 * MS,
                ..Settings::default()
            },
            1,
        );
        let dues: Vec<Result<u64, Refusal>> = (0..7).map(|_| d.admit(0, 1500)).collect();
        assert_eq!(
            dues,
            [
                Ok(10 * MS),
                Ok(10 * MS),
                Ok(10 * MS + 976_000),
                Ok(11 * MS + 976_000),
                Ok(12 * MS + 976_000),
                Err(Refusal::RateDropped),
                Err(Refusal::RateDropped)
            ]
        );
        assert_eq!(d.counters().rate_dropped, 2);
        // A new rate starts with a full bucket.
        d.set(Settings {
            rate_bps: Some(24_000_000),
            ..d.settings().clone()
        });
        assert_eq!(d.admit(0, 1500), Ok(10 * MS));
    }

    #[test]
    fn the_blackhole_drops_arrivals_until_switched_off() {
        let mut d = Direction::new(Settings::default(), 1);
        d.set(Settings {
            cut: true,
            ..Settings::default()
        });
        assert_eq!(d.admit(0, 1), Err(Refusal::Cut));
        d.set(Settings::default());
        assert_eq!(d.admit(7, 1), Ok(7));
        assert_eq!(d.counters().cut, 1);
    }
}
