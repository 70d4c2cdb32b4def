//! Counters the workers bump as they go and the progress line reads once a second.

use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals of one run, shared by its workers.
#[derive(Debug, Default)]
pub struct Live {
    sent: AtomicU64,
    sent_bytes: AtomicU64,
    received: AtomicU64,
    received_bytes: AtomicU64,
}

/// A reading of [`Live`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LiveTotals {
    /// Packets sent.
    pub sent: u64,
    /// Frame bytes sent (FCS included).
    pub sent_bytes: u64,
    /// Packets received (generated ones only).
    pub received: u64,
    /// Frame bytes received (FCS included).
    pub received_bytes: u64,
}

impl Live {
    /// Counts `packets` frames of `bytes` in total sent.
    pub fn add_sent(&self, packets: u64, bytes: u64) {
        self.sent.fetch_add(packets, Ordering::Relaxed);
        self.sent_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `packets` frames of `bytes` in total received.
    pub fn add_received(&self, packets: u64, bytes: u64) {
        self.received.fetch_add(packets, Ordering::Relaxed);
        self.received_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The totals now.
    pub fn totals(&self) -> LiveTotals {
        LiveTotals {
            sent: self.sent.load(Ordering::Relaxed),
            sent_bytes: self.sent_bytes.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            received_bytes: self.received_bytes.load(Ordering::Relaxed),
        }
    }
}
