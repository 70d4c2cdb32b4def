//! How the emulator waits for the next frame to fall due, without spinning.
//!
//! It blocks in `poll()` on its sockets, which returns at once for an arrival (so arrivals are
//! stamped when they come) or a control request. `poll()` counts its timeout in whole
//! milliseconds, so the release is rung by an [`Alarm`](super::alarm::Alarm) instead; the poll
//! timeout is only a fallback. A wake-up comes some tens of microseconds after the instant asked
//! (more in a virtual machine), so the alarm is set that much early ([`Lead`], learned from the
//! wake-ups seen), and a round releases the frames due within [`EARLY`] of its time. With nothing
//! held the emulator polls for [`IDLE`] at a time.

use std::time::Duration;

/// Longest poll (the stop flag is looked at between two).
pub const IDLE: Duration = Duration::from_millis(100);
/// A round releases frames due this soon (ns): a frame may leave this much before its time.
pub const EARLY: u64 = 50_000;
/// Longest lead the alarm is given (ns).
pub const MAX_LEAD: u64 = 300_000;

/// What to do until the next round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Nothing held: block in `poll()` for this long, or until a frame or a request comes.
    Idle(Duration),
    /// Block until the alarm rings at `wake_at`, a frame or a request comes, or `timeout`
    /// passes.
    Until {
        /// When to ring, in the emulator's nanoseconds: the next release less the lead (now, if
        /// the lead is longer than the time left: the wake-up itself is the pause then).
        wake_at: u64,
        /// The poll's timeout: past the release, in case the alarm is late.
        timeout: Duration,
    },
    /// A frame is due within [`EARLY`]: go round again at once.
    Again,
}

/// The pause before the next round, at `now`, with the next release due at `next_due` and the
/// alarm's lead `lead` (all in nanoseconds).
pub fn plan(now: u64, next_due: Option<u64>, lead: u64) -> Pause {
    let Some(due) = next_due else {
        return Pause::Idle(IDLE);
    };
    let left = due.saturating_sub(now);
    if left <= EARLY {
        return Pause::Again;
    }
    let ms = Duration::from_millis(left / 1_000_000 + 2);
    Pause::Until {
        wake_at: due - lead.min(left),
        timeout: ms.min(IDLE),
    }
}

/// How late the alarm's wake-ups come: a moving average of the last few (each counted up to
/// [`MAX_LEAD`], so that a stall of the whole machine does not make later releases early).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lead {
    ns: u64,
}

impl Lead {
    /// The lead to give the alarm.
    pub fn get(&self) -> u64 {
        self.ns
    }

    /// Notes a wake-up `late` nanoseconds after the instant asked.
    pub fn observe(&mut self, late: u64) {
        let late = late.min(MAX_LEAD);
        // An average over about 8 wake-ups.
        self.ns = (self.ns * 7 + late) / 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u64 = 1_000;

    #[test]
    fn nothing_held_polls_long() {
        assert_eq!(plan(0, None, 0), Pause::Idle(IDLE));
    }

    #[test]
    fn releases_are_waited_for_with_the_lead_and_a_fallback_past_them() {
        assert_eq!(
            plan(0, Some(1_500 * US), 100 * US),
            Pause::Until {
                wake_at: 1_400 * US,
                timeout: Duration::from_millis(3)
            }
        );
        assert_eq!(
            plan(100 * US, Some(160 * US), 100 * US),
            Pause::Until {
                wake_at: 100 * US,
                timeout: Duration::from_millis(2)
            },
            "a lead past now rings at once"
        );
        assert_eq!(
            plan(0, Some(10_000_000_000), 0),
            Pause::Until {
                wake_at: 10_000_000_000,
                timeout: IDLE
            }
        );
    }

    #[test]
    fn frames_due_within_early_go_round_again() {
        assert_eq!(plan(0, Some(EARLY), 0), Pause::Again);
        assert_eq!(plan(100, Some(50), 0), Pause::Again, "overdue");
    }

    #[test]
    fn the_lead_follows_the_wake_ups_and_ignores_stalls() {
        let mut lead = Lead::default();
        for _ in 0..100 {
            lead.observe(80 * US);
        }
        assert!(lead.get().abs_diff(80 * US) < US, "{}", lead.get());
        lead.observe(50_000 * US);
        assert_eq!(lead.get(), (lead_after(80 * US) * 7 + MAX_LEAD) / 8);
        let mut lead = Lead::default();
        lead.observe(800);
        assert_eq!(lead.get(), 100);
    }

    /// What 100 wake-ups of `late` leave.
    fn lead_after(late: u64) -> u64 {
        let mut lead = Lead::default();
        for _ in 0..100 {
            lead.observe(late);
        }
        lead.get()
    }
}
