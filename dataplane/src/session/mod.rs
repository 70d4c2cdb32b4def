//! Tunnel sessions, shared by all workers: per peer the sessions its handshakes made
//! ([`Live`]) and the handshake under way ([`PeerKeys`]), and the [`Sessions`] board whose
//! epoch tells workers to look again, with the responder's rate state and cookie secrets
//! ([`Guard`]). Timers and messages are in docs/PROTOCOL.md; the
//! handshake itself is `crate::tunnel::handshake`, the stage that runs it
//! `crate::pipeline`'s `handshake`.
//!
//! Why a mutex per peer and an epoch: sessions change a few times in two minutes, packets
//! pass millions of times a second. Workers keep their own view (a map from receiver index
//! to session, the session each peer is sent with) and rebuild it only when the epoch
//! moves, so the data path reads one atomic per batch and takes no lock (the replay
//! windows are lock-free, `crate::tunnel::replay`).

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod endpoint;
mod guard;
mod live;
mod log;
mod peer;

pub use endpoint::Endpoint;
pub use guard::{Admit, Guard, BURST, LOAD_PER_SEC, MAX_SOURCES, RATE_PER_SEC};
pub use live::Live;
pub use log::SessionLog;
pub use peer::{CookieTaken, PeerKeys, Pending, Tick};

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Most sender lanes (workers) a peer may use; each has its own counter and replay
/// window per session.
pub const MAX_LANES: usize = 64;
/// A session is replaced when it is this old (the initiator starts a new handshake).
pub const REKEY_AFTER_NS: u64 = 120_000_000_000;
/// A session is not used for anything once it is this old.
pub const REJECT_AFTER_NS: u64 = 180_000_000_000;
/// The session a new one replaced still opens messages this long (packets in flight).
pub const KEEP_PREVIOUS_NS: u64 = 10_000_000_000;
/// A lane that sent this many messages under a session asks for a new one.
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 59;
/// The first retry of an unanswered initiation; each next waits twice as long.
pub const RETRY_FIRST_NS: u64 = 1_000_000_000;
/// The longest wait between two initiations.
pub const RETRY_MAX_NS: u64 = 16_000_000_000;

/// What all workers share about sessions: the epoch that moves whenever a session is
/// made, confirmed or dropped, the numbering of this end's sessions, and the responder's
/// guard (rate state and cookies).
#[derive(Debug)]
pub struct Sessions {
    epoch: AtomicU64,
    next_index: AtomicU32,
    index_mask: u32,
    guard: Guard,
}

impl Sessions {
    /// A board whose session indices are scrambled with `seed` (take it from a random
    /// source, so that indices say nothing about how many sessions there were). Its cookie
    /// secrets derive from `seed` too until [`Sessions::set_cookie_key`] gives them a key
    /// of their own: the indices on the wire tell about the seed, and 64 bits are too few.
    pub fn new(seed: u64) -> Sessions {
        Sessions {
            epoch: AtomicU64::new(0),
            next_index: AtomicU32::new(1),
            index_mask: (seed ^ (seed >> 32)) as u32,
            guard: Guard::new(seed),
        }
    }

    /// The responder's rate state and cookie secrets.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Derives the cookie secrets and nonces from `key` (32 bytes from a random source),
    /// before the workers start.
    pub fn set_cookie_key(&mut self, key: &[u8; 32]) {
        self.guard = Guard::with_key(key);
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Announces a change of sessions to the workers.
    pub fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// A new local session index, different from every other one this board gave out
    /// (until 2^32 of them): an odd multiplier and an xor are bijections on u32.
    pub fn new_index(&self) -> u32 {
        let n = self.next_index.fetch_add(1, Ordering::Relaxed);
        n.wrapping_mul(0x9e37_79b1) ^ self.index_mask
    }
}

/// Doubles the retry wait `tries` times from [`RETRY_FIRST_NS`], up to [`RETRY_MAX_NS`].
pub fn retry_after(tries: u32) -> u64 {
    RETRY_FIRST_NS
        .saturating_mul(1 << tries.min(5))
        .min(RETRY_MAX_NS)
}

#[cfg(test)]
mod tests;
