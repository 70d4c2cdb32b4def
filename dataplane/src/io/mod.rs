//! Packet I/O: the ports of one worker. `xsk` drives AF_XDP sockets, `prog` loads braid's
//! XDP program that feeds them (`tx_ring` writes their TX rings), `host` reads the kernel's
//! addresses, `netlink` hears that they changed, `pages` gives large tables huge pages and
//! prefetches (these hold the only `unsafe` in the project); `mem` is an in-memory
//! implementation for tests and benches.
//!
//! A worker owns one `Ports` value covering queue *i* of every dataplane NIC. With
//! AF_XDP all of them share one UMEM, so a frame received on one port is transmitted
//! on another without a copy: the verdict returned for a received frame says where
//! it goes.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod host;
pub mod mem;
pub mod netlink;
pub mod pages;
pub mod prog;
mod tx_ring;
pub mod wake;
pub mod xsk;

pub use mem::MemPorts;
pub use prog::{Steering, XdpProgram};
pub use xsk::{XskOptions, XskPorts};

pub use crate::frame::{Frame, PortId, Verdict};
pub use crate::stats::PortCounters;

use std::io;
use std::time::Duration;

/// Most frames [`Ports::rx_burst`] hands over at once: a worker's batch from a port.
pub const RX_BURST: usize = 64;

/// Hands the frames of a burst (what `made` yields, at most [`RX_BURST`]) to `handle`
/// together, each with a verdict that is [`Verdict::Drop`] until `handle` sets it; returns,
/// in their order, each frame's verdict and where its bytes are then (start, length), for
/// the port to transmit or free it once the frames are gone.
fn hand_over<'a>(
    made: impl Iterator<Item = Frame<'a>>,
    handle: &mut dyn FnMut(&mut [Frame<'_>], &mut [Verdict]),
) -> [(Verdict, usize, usize); RX_BURST] {
    let mut frames: [Frame<'a>; RX_BURST] = std::array::from_fn(|_| Frame::new(&mut [], 0));
    let mut n = 0;
    for (slot, frame) in frames.iter_mut().zip(made) {
        *slot = frame;
        n += 1;
    }
    let mut verdicts = [Verdict::Drop; RX_BURST];
    handle(
        frames.get_mut(..n).unwrap_or_default(),
        verdicts.get_mut(..n).unwrap_or_default(),
    );
    let mut handled = [(Verdict::Drop, 0, 0); RX_BURST];
    for ((h, verdict), frame) in handled.iter_mut().zip(verdicts).zip(&frames) {
        *h = (verdict, frame.start(), frame.len());
    }
    handled
}

/// The ports one worker drives.
pub trait Ports {
    /// Number of ports.
    fn len(&self) -> usize;

    /// True when there are no ports.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Receives up to `max` frames (at most [`RX_BURST`]) from `port` and, if there are
    /// any, hands them to `handle` together, with as many verdicts (each [`Verdict::Drop`] until `handle`
    /// sets it). Then, in the frames' order, each verdict transmits its frame from the
    /// frame's start (queued until `flush`) or frees it. Returns the number of frames
    /// received.
    fn rx_burst(
        &mut self,
        port: PortId,
        max: usize,
        handle: &mut dyn FnMut(&mut [Frame<'_>], &mut [Verdict]),
    ) -> io::Result<usize>;

    /// Receives up to `max` frames from `port`, handing each to `handle` in turn; the
    /// returned verdict transmits the frame (queued until `flush`) or frees it, once the
    /// burst it came in (up to [`RX_BURST`] frames) is handled. Returns the number of
    /// frames received.
    fn rx_batch(
        &mut self,
        port: PortId,
        max: usize,
        handle: &mut dyn FnMut(&mut Frame<'_>) -> Verdict,
    ) -> io::Result<usize> {
        let mut received = 0;
        while received < max {
            let want = (max - received).min(RX_BURST);
            let got = self.rx_burst(port, want, &mut |frames, verdicts| {
                for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
                    *verdict = handle(frame);
                }
            })?;
            received += got;
            if got < want {
                break;
            }
        }
        Ok(received)
    }

    /// Queues a copy of `frame` for transmission on `port` (slow path: ARP, ICMP,
    /// packets released from the resolution queue). False if no buffer or ring slot.
    fn tx_copy(&mut self, port: PortId, frame: &[u8]) -> bool;

    /// Hands queued TX frames to the kernel (kicking it where needed), reclaims
    /// completed frames and refills the receive side.
    fn flush(&mut self) -> io::Result<()>;

    /// Blocks until a port may have frames to receive, the wake fd (if set) is
    /// written, or `timeout` passes.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;

    /// Adds `fd` to what `wait` watches, so other threads can wake this worker.
    fn set_wake_fd(&mut self, fd: wake::WakeFd);

    /// Counters of `port`.
    fn counters(&self, port: PortId) -> PortCounters;
}

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// In the driver (`drv`): faster, and spreads veth flows over queues.
    #[default]
    Native,
    /// In the generic network stack (`skb`): works on any device.
    Generic,
}
