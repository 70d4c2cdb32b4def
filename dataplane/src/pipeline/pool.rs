//! Buffers for packet copies (handed to another worker, held in a reorder window, sent on
//! a second link, or sent by copy): taken from a per-worker pool and given back to it
//! when the copy is done with, so the steady state allocates nothing.
//!
//! A buffer often ends on another worker than the one that took it (a handoff). Each pool
//! keeps a small stack of its own and gives its surplus to a spare queue all workers share
//! (a lock-free bounded channel); a pool whose stack ran dry takes from there before it
//! allocates. The shared queue is touched only where the workers' handoffs are uneven.

use crate::frame::HEADROOM;
use crate::io::xsk::FRAME_CAPACITY;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::Arc;

/// Bytes of every pooled buffer: the headroom, then a frame's room (an AF_XDP chunk).
pub const BUFFER_SIZE: usize = HEADROOM + FRAME_CAPACITY;

/// Buffers one pool keeps for itself: two batches' worth of copies covers a worker that
/// takes and gives back about as many per batch; more would only hold memory (2 KiB each).
const LOCAL_MAX: usize = 512;

/// Buffers the shared spare queue holds: as many as a worker's handoff queue, the most a
/// worker can have in flight to others (8 MiB). Past it buffers are freed.
const SHARED_MAX: usize = super::HANDOFF_QUEUE;

/// The spare buffers every worker's pool shares.
#[derive(Debug)]
pub struct Spares {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
}

impl Default for Spares {
    fn default() -> Self {
        let (tx, rx) = bounded(SHARED_MAX);
        Spares { tx, rx }
    }
}

/// One worker's buffers.
#[derive(Debug, Default)]
pub struct Pool {
    free: Vec<Vec<u8>>,
    spares: Arc<Spares>,
    /// Buffers allocated because neither the stack nor the spare queue had one.
    misses: u64,
}

impl Pool {
    /// A pool that shares `spares` with the other workers' pools.
    pub fn new(spares: Arc<Spares>) -> Pool {
        Pool {
            free: Vec::with_capacity(LOCAL_MAX),
            spares,
            misses: 0,
        }
    }

    /// A buffer of [`BUFFER_SIZE`] bytes (contents left from its last use).
    #[inline]
    pub fn take(&mut self) -> Vec<u8> {
        if let Some(b) = self.free.pop() {
            return b;
        }
        if let Ok(b) = self.spares.rx.try_recv() {
            return b;
        }
        self.misses += 1;
        vec![0; BUFFER_SIZE]
    }

    /// Gives back a buffer [`Pool::take`] gave (here or on another worker); one of another
    /// size is freed.
    #[inline]
    pub fn give(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() < BUFFER_SIZE {
            return;
        }
        // Only a buffer shortened to its frame grows back; no byte is written otherwise.
        buf.resize(BUFFER_SIZE, 0);
        if self.free.len() < LOCAL_MAX {
            self.free.push(buf);
        } else {
            let _ = self.spares.tx.try_send(buf);
        }
    }

    /// Buffers allocated so far.
    pub fn misses(&self) -> u64 {
        self.misses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_buffers_are_taken_again_without_allocating() {
        let mut pool = Pool::default();
        let bufs: Vec<_> = (0..8).map(|_| pool.take()).collect();
        assert_eq!(pool.misses(), 8);
        assert!(bufs.iter().all(|b| b.len() == BUFFER_SIZE));
        for mut b in bufs {
            b.truncate(100);
            pool.give(b);
        }
        for _ in 0..1000 {
            let b = pool.take();
            assert_eq!(b.len(), BUFFER_SIZE);
            pool.give(b);
        }
        assert_eq!(pool.misses(), 8);
        pool.give(vec![0; 10]);
        assert_eq!(pool.free.len(), 8, "a small buffer is not kept");
    }

    #[test]
    fn a_pool_that_only_gives_feeds_one_that_only_takes() {
        let spares = Arc::new(Spares::default());
        let (mut a, mut b) = (Pool::new(spares.clone()), Pool::new(spares));
        let first: Vec<_> = (0..2 * LOCAL_MAX).map(|_| a.take()).collect();
        for buf in first {
            b.give(buf);
        }
        assert_eq!(b.free.len(), LOCAL_MAX);
        for _ in 0..LOCAL_MAX {
            let buf = a.take();
            b.give(buf);
        }
        assert_eq!(
            a.misses(),
            2 * LOCAL_MAX as u64,
            "the surplus came back through the spares"
        );
        assert_eq!(b.misses(), 0);
    }
}
