//! An absolute time limit for a whole exchange, turned into per-call socket timeouts.

use std::io;
use std::time::{Duration, Instant};

/// The instant by which an exchange must be over.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// `limit` from now.
    pub fn after(limit: Duration) -> Self {
        Deadline(Instant::now() + limit)
    }

    /// Time left, or a `TimedOut` error once the deadline has passed.
    pub fn remaining(&self) -> io::Result<Duration> {
        let left = self.0.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
        } else {
            Ok(left)
        }
    }
}
