//! One established session as the workers use it.

use super::MAX_LANES;
use crate::ids::Lane;
use crate::tunnel::handshake::Session;
use crate::tunnel::{ReplayWindow, SessionKey};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Heard times are written at most this often (a shared line is not written per packet).
const HEARD_GRAIN_NS: u64 = 1 << 26;

/// A lane's next counter on its own cache line: each lane is one worker's alone.
#[derive(Debug, Default)]
#[repr(align(64))]
struct LaneCounter(AtomicU64);

/// A window of one sender lane, made when its first message arrives: a peer uses as many
/// lanes as it has workers, so a session holds a 2 KiB window per lane the peer uses, not 64.
/// Every worker that receives the lane's messages updates it, without a lock.
type LaneWindow = OnceLock<Box<ReplayWindow>>;

/// A session both ends agreed on: its keys, both indices, a send counter and a replay
/// window per lane, and when it was made and last heard from.
pub struct Live {
    /// This end's index: the receiver index of the messages it receives.
    pub local_index: u32,
    /// The peer's index: the receiver index of the messages this end sends.
    pub remote_index: u32,
    /// Seals what this end sends.
    pub send: SessionKey,
    /// Opens what this end receives.
    pub recv: SessionKey,
    /// When the handshake finished (monotonic ns).
    pub born: u64,
    counters: Box<[LaneCounter]>,
    replay: Box<[LaneWindow]>,
    heard: AtomicU64,
    confirmed: AtomicBool,
    rekey: AtomicBool,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("cipher", &self.send.cipher())
            .field("born", &self.born)
            .finish_non_exhaustive()
    }
}

impl Live {
    /// The session `s`, made at `now`. An initiator's session is confirmed at once (its
    /// handshake response authenticated the peer); a responder's when the first message
    /// under it opens ([`Live::confirm`]).
    pub fn new(s: Session, now: u64, confirmed: bool) -> Live {
        Live {
            local_index: s.local_index,
            remote_index: s.remote_index,
            send: s.send,
            recv: s.recv,
            born: now,
            counters: (0..MAX_LANES).map(|_| LaneCounter::default()).collect(),
            replay: (0..MAX_LANES).map(|_| LaneWindow::new()).collect(),
            heard: AtomicU64::new(now),
            confirmed: AtomicBool::new(confirmed),
            rekey: AtomicBool::new(false),
        }
    }

    /// Takes lane `lane`'s next counter. Only lane `lane`'s worker may call this (so a
    /// load and a store suffice). None when the lane is used up.
    #[inline]
    pub fn next_counter(&self, lane: Lane) -> Option<u64> {
        let c = &self.counters.get(lane.index())?.0;
        let n = c.load(Ordering::Relaxed);
        if n >= super::REKEY_AFTER_MESSAGES {
            self.rekey.store(true, Ordering::Relaxed);
            if n >= crate::tunnel::COUNTER_LIMIT {
                return None;
            }
        }
        c.store(n + 1, Ordering::Relaxed);
        Some(n)
    }

    /// Takes `counter` of `lane` through the replay window (after the message
    /// authenticated): false for a replay or a message too old. Inlined into `Open`, its
    /// one caller a packet.
    #[inline(always)]
    pub fn accept(&self, lane: u8, counter: u64) -> bool {
        self.replay
            .get(usize::from(lane))
            .is_some_and(|w| w.get_or_init(Box::default).accept(counter))
    }

    /// Records that an authenticated message arrived at `now`.
    #[inline]
    pub fn heard_at(&self, now: u64) {
        if now.saturating_sub(self.heard.load(Ordering::Relaxed)) >= HEARD_GRAIN_NS {
            self.heard.store(now, Ordering::Relaxed);
        }
    }

    /// When an authenticated message last arrived (within 67 ms).
    pub fn heard(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    /// True once the peer is known to have this session.
    #[inline]
    pub fn is_confirmed(&self) -> bool {
        self.confirmed.load(Ordering::Acquire)
    }

    /// Marks the session confirmed; true if it was not yet.
    pub(super) fn confirm(&self) -> bool {
        !self.confirmed.swap(true, Ordering::AcqRel)
    }

    /// True when a lane asked for a new session (its counter passed the rekey mark).
    pub fn wants_rekey(&self) -> bool {
        self.rekey.load(Ordering::Relaxed)
    }
}
