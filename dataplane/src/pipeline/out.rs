//! What a worker's pipeline leaves for the worker to send: frames by copy (ARP,
//! released and resumed packets) and packets for other workers. The pipeline only
//! fills these; the worker moves them to ports and queues.

use super::meta::Meta;
use super::{Handoff, Next, Resume, HANDOFF_QUEUE};
use crate::frame::{Frame, PortId, Verdict};
use crate::ids::Lane;
use crate::stats::{DropReason, WorkerStats};

/// A copy of a packet, off its receive buffer (handed to another worker, held in a reorder
/// window, or sent on a second link): `buf[..len]` is the frame, in a buffer as large as the
/// one it came in.
#[derive(Debug)]
pub struct Packet {
    pub meta: Meta,
    pub buf: Vec<u8>,
    pub len: usize,
}

impl Packet {
    /// A copy of the packet in `frame`, with its facts `meta`.
    pub fn copy(meta: &Meta, frame: &Frame<'_>) -> Packet {
        let mut buf = frame.data().to_vec();
        let len = buf.len();
        buf.resize(frame.capacity(), 0);
        Packet {
            meta: *meta,
            buf,
            len,
        }
    }
}

/// A packet copy that goes on its way from a stage after the frame that made it.
type Again = (Next, Packet);

/// Frames and handoffs waiting for the worker.
#[derive(Debug, Default)]
pub struct Out {
    copies: Vec<(PortId, Vec<u8>)>,
    handoffs: Vec<(Lane, Handoff)>,
    again: Vec<Again>,
}

impl Out {
    /// Leaves a copy of a packet to go on from `next` once the current frame's way ends.
    pub(super) fn again(&mut self, next: Next, packet: Packet) {
        self.again.push((next, packet));
    }

    /// The next copy left by [`Out::again`].
    #[inline]
    pub(super) fn take_again(&mut self) -> Option<Again> {
        self.again.pop()
    }

    /// Queues `frame` to be sent on `port`.
    pub fn send_copy(&mut self, port: PortId, frame: Vec<u8>) {
        self.copies.push((port, frame));
    }

    /// The frames to send by copy.
    pub fn take_copies(&mut self) -> std::vec::Drain<'_, (PortId, Vec<u8>)> {
        self.copies.drain(..)
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
        self.handoffs.push((
            owner,
            Handoff {
                resume,
                packet: Packet::copy(meta, frame),
            },
        ));
        stats.handed_off.add(1);
        Next::Done(Verdict::Drop)
    }
}
