//! Link health: every end probes every link of every peer, answers the peer's
//! probes, and keeps per link what the probes measured and whether the link may
//! carry data. The timers, messages and state machine are in docs/PROTOCOL.md.
//!
//! Each link's [`LinkHealth`] is shared by the workers (any of them may receive an
//! answer) and carried from snapshot to snapshot like the replay windows. Its state
//! changes under its own lock, a few dozen times a second at most; the data path
//! reads one atomic flag only when the [`Board`] says something changed.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod monitor;

pub use monitor::{Change, Figures, Monitor, Why, RX_CHECK_NS};

use braid_control::config::HealthConfig;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Most link events kept until the daemon logs them; older ones are dropped first.
const EVENT_QUEUE: usize = 256;

/// The probe timers of a snapshot, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Probing on; off, links are up unless their carrier is lost.
    pub enabled: bool,
    pub interval_ns: u64,
    /// Intervals without an answer that take a link down.
    pub down_after: u32,
    /// Answers in a row that bring it back.
    pub up_after: u32,
    /// Loss over the recent probes that takes it down.
    pub loss_down_percent: u32,
}

impl Timing {
    /// The timers of a `[health]` section.
    pub fn of(c: &HealthConfig) -> Timing {
        Timing {
            enabled: c.probe,
            interval_ns: u64::from(c.interval_ms) * 1_000_000,
            down_after: c.down_after,
            up_after: c.up_after,
            loss_down_percent: c.loss_down_percent,
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing::of(&HealthConfig::default())
    }
}

/// One link's health, shared by the workers.
#[derive(Debug, Default)]
pub struct LinkHealth {
    monitor: Mutex<Monitor>,
    /// Mirrors the monitor's state for readers that must not lock.
    down: AtomicBool,
    /// Inner bytes of data received on this link over all workers, published by the
    /// daemon; reported to the peer in probes and answers.
    rx_bytes: AtomicU64,
    /// When the link last received data (within about a millisecond).
    last_rx: AtomicU64,
}

impl LinkHealth {
    /// True unless the link's health took it down.
    pub fn is_up(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    /// The monitor, locked. A poisoned lock is taken over: the monitor holds only
    /// figures, and a worker must not stop over them.
    pub fn lock(&self) -> MutexGuard<'_, Monitor> {
        self.monitor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the probes measured.
    pub fn figures(&self) -> Figures {
        self.lock().figures()
    }

    /// Publishes the data bytes received on this link.
    pub fn set_rx_bytes(&self, bytes: u64) {
        self.rx_bytes.store(bytes, Ordering::Relaxed);
    }

    /// The data bytes received on this link, as last published.
    pub fn rx_bytes(&self) -> u64 {
        self.rx_bytes.load(Ordering::Relaxed)
    }

    /// Records that authentic data arrived on the link at `now`. Written about once a
    /// millisecond at most, so busy workers do not bounce the line.
    #[inline]
    pub fn heard_at(&self, now: u64) {
        if now.saturating_sub(self.last_rx.load(Ordering::Relaxed)) >= 1 << 20 {
            self.last_rx.store(now, Ordering::Relaxed);
        }
    }

    /// When the link last received data.
    pub fn last_rx(&self) -> u64 {
        self.last_rx.load(Ordering::Relaxed)
    }

    /// Makes a change the monitor reported visible to the data path.
    fn publish(&self, change: Change) {
        self.down.store(!change.up, Ordering::Relaxed);
    }
}

/// A link that went down or came back, with what was measured then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub peer: String,
    pub link: String,
    pub change: Change,
    pub figures: Figures,
}

impl fmt::Display for LinkEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        let g = &self.figures;
        write!(
            f,
            "link {}/{} {} ({}): rtt {:.1} ms, jitter {:.1} ms, loss {:.1} %, {} of {} probes answered",
            self.peer,
            self.link,
            if self.change.up { "up" } else { "down" },
            self.change.why.as_str(),
            ms(g.srtt_ns),
            ms(g.jitter_ns),
            f64::from(g.loss_permille) / 10.0,
            g.answered,
            g.sent,
        )
    }
}

/// Where link state changes are announced: a counter the workers watch to rebuild
/// their schedulers, and the events the daemon logs; and a counter of learned weights'
/// changes, which rebuild the schedulers too.
#[derive(Debug, Default)]
pub struct Board {
    changes: AtomicU64,
    events: Mutex<VecDeque<LinkEvent>>,
    weights: AtomicU64,
}

impl Board {
    /// Bumped each time learned weights are stored in the links.
    pub fn weight_changes(&self) -> u64 {
        self.weights.load(Ordering::Acquire)
    }

    /// Tells the workers that learned weights changed (stored before this call).
    pub fn weights_learned(&self) {
        self.weights.fetch_add(1, Ordering::AcqRel);
    }

    /// Bumped on every change of any link's state.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Applies `change` of `link` (of `peer`/`name`, measured `figures`): the data
    /// path sees it from its next batch, and an event is queued for the log. Call it
    /// with the link's monitor unlocked.
    pub fn record(
        &self,
        link: &LinkHealth,
        (peer, name): (&str, &str),
        change: Change,
        figures: Figures,
    ) {
        link.publish(change);
        self.changes.fetch_add(1, Ordering::AcqRel);
        let mut q = self.events.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= EVENT_QUEUE {
            q.pop_front();
        }
        q.push_back(LinkEvent {
            peer: peer.to_owned(),
            link: name.to_owned(),
            change,
            figures,
        });
    }

    /// The events queued since the last call, oldest first.
    pub fn take_events(&self) -> Vec<LinkEvent> {
        let mut q = self.events.lock().unwrap_or_else(|e| e.into_inner());
        q.drain(..).collect()
    }
}
