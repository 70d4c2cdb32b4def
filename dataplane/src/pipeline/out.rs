//! What a worker's pipeline leaves for the worker to send: frames by copy (ARP,
//! released and resumed packets) and packets for other workers. The pipeline only
//! fills these; the worker moves them to ports and queues.

use super::meta::Meta;
use super::pool::Pool;
use super::{Handoff, Next, Resume, HANDOFF_QUEUE};
use crate::frame::{Frame, PortId, HEADROOM};
use crate::ids::Lane;
use crate::stats::{DropReason, WorkerStats};

/// A copy of a packet, off its receive buffer (handed to another worker, held in a reorder
/// window, or sent on a second link): `buf[start..start + len]` is the frame, in a pooled
/// buffer with the receive buffers' headroom in front of it.
#[derive(Debug)]
pub struct Packet {
    pub meta: Meta,
    pub buf: Vec<u8>,
    pub start: usize,
    pub len: usize,
}

impl Packet {
    /// A copy of the packet in `frame`, with its facts `meta`, in a buffer from `pool`.
    #[inline]
    pub fn copy(pool: &mut Pool, meta: &Meta, frame: &Frame<'_>) -> Packet {
        let data = frame.data();
        let mut buf = pool.take();
        if buf.len() < HEADROOM + data.len() {
            // Longer than a frame of the AF_XDP backend: only a test's buffers hold one.
            buf.resize(HEADROOM + data.len(), 0);
        }
        if let Some(to) = buf.get_mut(HEADROOM..HEADROOM + data.len()) {
            to.copy_from_slice(data);
        }
        Packet {
            meta: *meta,
            buf,
            start: HEADROOM,
            len: data.len(),
        }
    }

    /// The packet as a frame.
    #[inline]
    pub fn frame(&mut self) -> Frame<'_> {
        Frame::at(&mut self.buf, self.start, self.len)
    }
}

/// A packet copy that goes on its way from a stage after the frame that made it.
type Again = (Next, Packet);

/// A frame to send by copy: `buf[start..start + len]`, for `port`.
#[derive(Debug)]
struct Copy {
    port: PortId,
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

/// Frames and handoffs waiting for the worker, and the buffers for packet copies.
#[derive(Debug, Default)]
pub struct Out {
    copies: Vec<Copy>,
    handoffs: Vec<(Lane, Handoff)>,
    again: Vec<Again>,
    pool: Pool,
}

impl Out {
    /// Output whose packet copies take their buffers from `pool`.
    pub(super) fn new(pool: Pool) -> Out {
        Out {
            pool,
            ..Out::default()
        }
    }

    /// The buffers for packet copies.
    #[inline]
    pub(super) fn pool(&mut self) -> &mut Pool {
        &mut self.pool
    }

    /// Leaves a copy of a packet to go on from `next` once the current frame's way ends.
    pub(super) fn again(&mut self, next: Next, packet: Packet) {
        self.again.push((next, packet));
    }

    /// True when copies left by [`Out::again`] wait.
    #[inline]
    pub(super) fn has_again(&self) -> bool {
        !self.again.is_empty()
    }

    /// The next copy left by [`Out::again`].
    #[inline]
    pub(super) fn take_again(&mut self) -> Option<Again> {
        self.again.pop()
    }

    /// Queues `frame` to be sent on `port`.
    pub fn send_copy(&mut self, port: PortId, frame: Vec<u8>) {
        let len = frame.len();
        self.copies.push(Copy {
            port,
            buf: frame,
            start: 0,
            len,
        });
    }

    /// Queues the frame `buf[start..start + len]` (a packet copy's buffer) to be sent on
    /// `port`; its buffer goes back to the pool once sent.
    #[inline]
    pub(super) fn send_packet(&mut self, port: PortId, buf: Vec<u8>, start: usize, len: usize) {
        self.copies.push(Copy {
            port,
            buf,
            start,
            len,
        });
    }

    /// The frames to send by copy, each in a buffer of its own (for tests and tools: the
    /// worker sends them with [`Out::send_all`], which keeps the buffers).
    pub fn take_copies(&mut self) -> impl Iterator<Item = (PortId, Vec<u8>)> + '_ {
        self.copies.drain(..).map(|mut c| {
            c.buf.truncate(c.start + c.len);
            c.buf.drain(..c.start);
            (c.port, c.buf)
        })
    }

    /// Hands every frame to send by copy to `send`, then their buffers to the pool;
    /// returns how many `send` refused.
    pub(super) fn send_all(&mut self, mut send: impl FnMut(PortId, &[u8]) -> bool) -> u64 {
        let mut refused = 0;
        for c in self.copies.drain(..) {
            let frame = c.buf.get(c.start..c.start + c.len).unwrap_or_default();
            if !send(c.port, frame) {
                refused += 1;
            }
            self.pool.give(c.buf);
        }
        refused
    }

    /// The packets for other workers, with the lane of each.
    pub fn take_handoffs(&mut self) -> std::vec::Drain<'_, (Lane, Handoff)> {
        self.handoffs.drain(..)
    }

    /// The `Handoff` stage: copies the frame for the worker `owner`, to resume
    /// there as `resume` says. At most [`HANDOFF_QUEUE`] wait between two takes.
    pub(super) fn hand_off(
        &mut self,
        stats: &WorkerStats,
        owner: Lane,
        resume: Resume,
        meta: &Meta,
        frame: &Frame<'_>,
    ) -> Next {
        if self.handoffs.len() >= HANDOFF_QUEUE {
            return Next::Drop(DropReason::HandoffFull);
        }
        let packet = Packet::copy(&mut self.pool, meta, frame);
        self.handoffs.push((owner, Handoff { resume, packet }));
        stats.handed_off.add(1);
        Next::Consumed
    }
}
