//! `MemPorts`: ports backed by in-memory queues, for tests and benches.
//!
//! It keeps the contract of the AF_XDP backend: every received frame sits [`HEADROOM`]
//! bytes into a buffer, with room of a fixed size from there (pass
//! [`crate::io::xsk::FRAME_CAPACITY`] to give handlers exactly the room an AF_XDP frame
//! has), a verdict moves the
//! handler's final bytes to the target port's TX queue, and nothing is
//! transmitted until [`Ports::flush`]. Queues are bounded like rings: a full
//! queue drops and counts.

use super::{hand_over, PortCounters, PortId, Ports, Verdict, RX_BURST};
use crate::frame::{Frame, HEADROOM};
use std::collections::VecDeque;
use std::io;
use std::time::Duration;

/// Capacity of each port's receive queue and of its pending TX queue, in frames
/// (the AF_XDP backend's default ring size).
pub const MEM_RING_SIZE: usize = 2048;

/// One received frame: a full-size buffer and the length of the packet in it.
#[derive(Debug)]
struct Buffer {
    bytes: Vec<u8>,
    len: usize,
}

#[derive(Debug, Default)]
struct MemPort {
    rx: VecDeque<Buffer>,
    /// Queued by `rx_batch`/`tx_copy`, handed over by `flush`.
    tx_pending: Vec<Vec<u8>>,
    /// Transmitted (flushed), waiting for `take_tx`.
    tx_done: Vec<Vec<u8>>,
    counters: PortCounters,
}

/// In-memory [`Ports`]: frames are injected on a port's receive side and
/// collected from its transmit side.
#[derive(Debug)]
pub struct MemPorts {
    frame_size: usize,
    ports: Vec<MemPort>,
    /// Buffers given back by dropped frames, reused for injected ones.
    spare: Vec<Vec<u8>>,
    /// The frames of the burst under way (kept so a burst does not allocate).
    taken: Vec<Buffer>,
}

impl MemPorts {
    /// `n` ports whose frames live in buffers of `frame_size` bytes.
    pub fn new(n: usize, frame_size: usize) -> MemPorts {
        MemPorts {
            frame_size,
            ports: (0..n).map(|_| MemPort::default()).collect(),
            spare: Vec::new(),
            taken: Vec::with_capacity(RX_BURST),
        }
    }

    /// Queues `frame` to be received on `port`. False (and nothing queued) if the
    /// port does not exist, the frame is longer than a buffer (the kernel drops
    /// those too) or the receive queue already holds [`MEM_RING_SIZE`] frames.
    pub fn inject(&mut self, port: PortId, frame: &[u8]) -> bool {
        if frame.len() > self.frame_size {
            return false;
        }
        let Some(p) = self.ports.get_mut(port) else {
            return false;
        };
        if p.rx.len() >= MEM_RING_SIZE {
            return false;
        }
        let mut bytes = self
            .spare
            .pop()
            .unwrap_or_else(|| vec![0; HEADROOM + self.frame_size]);
        let Some(to) = bytes.get_mut(HEADROOM..HEADROOM + frame.len()) else {
            return false;
        };
        to.copy_from_slice(frame);
        p.rx.push_back(Buffer {
            bytes,
            len: frame.len(),
        });
        true
    }

    /// Takes every frame transmitted on `port` by the `flush` calls so far, in
    /// transmit order; frames queued but not yet flushed stay queued. Empty for a
    /// port that does not exist.
    pub fn take_tx(&mut self, port: PortId) -> Vec<Vec<u8>> {
        self.ports
            .get_mut(port)
            .map(|p| std::mem::take(&mut p.tx_done))
            .unwrap_or_default()
    }

    /// Queues `bytes` for TX on `port`, counting a drop on `counted_on` when the
    /// port does not exist or its queue is full. True if queued.
    fn queue_tx(&mut self, port: PortId, bytes: Vec<u8>, counted_on: PortId) -> bool {
        match self.ports.get_mut(port) {
            Some(p) if p.tx_pending.len() < MEM_RING_SIZE => {
                p.tx_pending.push(bytes);
                true
            }
            _ => {
                if let Some(p) = self.ports.get_mut(counted_on) {
                    p.counters.tx_dropped += 1;
                }
                self.recycle(bytes);
                false
            }
        }
    }

    /// Keeps a buffer for reuse, restored to full size.
    fn recycle(&mut self, mut bytes: Vec<u8>) {
        bytes.resize(HEADROOM + self.frame_size, 0);
        self.spare.push(bytes);
    }
}

impl Ports for MemPorts {
    fn len(&self) -> usize {
        self.ports.len()
    }

    fn rx_burst(
        &mut self,
        port: PortId,
        max: usize,
        handle: &mut dyn FnMut(&mut [Frame<'_>], &mut [Verdict]),
    ) -> io::Result<usize> {
        let have = self.ports.len();
        let Some(p) = self.ports.get_mut(port) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no port {port} (have {have})"),
            ));
        };
        let want = max.min(RX_BURST);
        let mut taken = std::mem::take(&mut self.taken);
        while taken.len() < want {
            let Some(buf) = p.rx.pop_front() else {
                break;
            };
            p.counters.rx_packets += 1;
            p.counters.rx_bytes += buf.len as u64;
            taken.push(buf);
        }
        let got = taken.len();
        if got == 0 {
            self.taken = taken;
            return Ok(0);
        }
        let handled = hand_over(
            taken
                .iter_mut()
                .map(|buf| Frame::at(&mut buf.bytes, HEADROOM, buf.len)),
            handle,
        );
        for (mut buf, (verdict, start, len)) in taken.drain(..).zip(handled) {
            match verdict {
                Verdict::Tx(to) => {
                    // What an AF_XDP descriptor would send: the frame from its start.
                    buf.bytes.truncate(start + len);
                    buf.bytes.drain(..start);
                    self.queue_tx(to, buf.bytes, port);
                }
                Verdict::Drop => self.recycle(buf.bytes),
            }
        }
        self.taken = taken;
        Ok(got)
    }

    fn tx_copy(&mut self, port: PortId, frame: &[u8]) -> bool {
        if frame.len() > self.frame_size {
            if let Some(p) = self.ports.get_mut(port) {
                p.counters.tx_dropped += 1;
            }
            return false;
        }
        self.queue_tx(port, frame.to_vec(), port)
    }

    fn flush(&mut self) -> io::Result<()> {
        for p in &mut self.ports {
            for bytes in p.tx_pending.drain(..) {
                p.counters.tx_packets += 1;
                p.counters.tx_bytes += bytes.len() as u64;
                p.tx_done.push(bytes);
            }
        }
        Ok(())
    }

    fn wait(&mut self, _timeout: Duration) -> io::Result<()> {
        Ok(())
    }

    fn set_wake_fd(&mut self, _fd: super::wake::WakeFd) {}

    fn counters(&self, port: PortId) -> PortCounters {
        self.ports.get(port).map(|p| p.counters).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forwarded_frame_carries_the_handlers_bytes_after_flush() {
        let mut ports = MemPorts::new(2, 64);
        assert!(ports.inject(0, &[1, 2, 3, 4]));
        let n = ports
            .rx_batch(0, 8, &mut |f| {
                assert_eq!(f.capacity(), 64);
                assert!(f.push_front(2));
                f.data_mut()[..2].copy_from_slice(&[9, 8]);
                Verdict::Tx(1)
            })
            .unwrap();
        assert_eq!(n, 1);
        assert!(ports.take_tx(1).is_empty(), "nothing leaves before flush");
        ports.flush().unwrap();
        assert_eq!(ports.take_tx(1), vec![vec![9, 8, 1, 2, 3, 4]]);
        assert!(ports.take_tx(1).is_empty());
        assert_eq!(
            ports.counters(0),
            PortCounters {
                rx_packets: 1,
                rx_bytes: 4,
                ..Default::default()
            }
        );
        assert_eq!(
            ports.counters(1),
            PortCounters {
                tx_packets: 1,
                tx_bytes: 6,
                ..Default::default()
            }
        );
    }

    #[test]
    fn frames_arrive_after_the_headroom_and_leave_from_their_start() {
        let mut ports = MemPorts::new(1, 64);
        assert!(ports.inject(0, &[1, 2, 3, 4, 5]));
        assert!(ports.inject(0, &[6, 7]));
        let mut decap = true;
        ports
            .rx_batch(0, 2, &mut |f| {
                assert_eq!(f.start(), HEADROOM);
                if std::mem::take(&mut decap) {
                    assert!(f.pull_front(2));
                } else {
                    assert!(f.push_front(HEADROOM));
                    f.data_mut()[..HEADROOM].fill(9);
                }
                Verdict::Tx(0)
            })
            .unwrap();
        ports.flush().unwrap();
        let mut second = vec![9; HEADROOM];
        second.extend([6, 7]);
        assert_eq!(ports.take_tx(0), vec![vec![3, 4, 5], second]);
    }

    #[test]
    fn buffers_are_reused_without_leaking_old_lengths() {
        let mut ports = MemPorts::new(1, 32);
        ports.inject(0, &[7; 20]);
        ports.rx_batch(0, 1, &mut |_| Verdict::Drop).unwrap();
        ports.inject(0, &[5; 3]);
        ports
            .rx_batch(0, 1, &mut |f| {
                assert_eq!(f.data(), &[5, 5, 5]);
                assert_eq!(f.capacity(), 32);
                Verdict::Tx(0)
            })
            .unwrap();
        ports.flush().unwrap();
        assert_eq!(ports.take_tx(0), vec![vec![5, 5, 5]]);
    }

    #[test]
    fn rx_batch_honours_max_and_order() {
        let mut ports = MemPorts::new(1, 16);
        for i in 0..5u8 {
            ports.inject(0, &[i]);
        }
        let mut seen = Vec::new();
        let mut h = |f: &mut Frame<'_>| {
            seen.push(f.data()[0]);
            Verdict::Drop
        };
        assert_eq!(ports.rx_batch(0, 3, &mut h).unwrap(), 3);
        assert_eq!(ports.rx_batch(0, 3, &mut h).unwrap(), 2);
        assert_eq!(ports.rx_batch(0, 3, &mut h).unwrap(), 0);
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn rx_burst_hands_the_frames_over_together_and_applies_verdicts_in_order() {
        let mut ports = MemPorts::new(2, 16);
        for i in 0..(RX_BURST as u8 + 6) {
            ports.inject(0, &[i, i]);
        }
        let mut sizes = Vec::new();
        let got = ports
            .rx_burst(0, usize::MAX, &mut |frames, verdicts| {
                sizes.push(frames.len());
                assert_eq!(frames.len(), verdicts.len());
                assert!(verdicts.iter().all(|v| *v == Verdict::Drop));
                // Every frame is there at once; each keeps its own buffer.
                for (i, f) in frames.iter_mut().enumerate() {
                    assert_eq!(f.data(), &[i as u8, i as u8]);
                    f.data_mut()[1] = 0xee;
                }
                // Odd frames go out of port 1, after a header in front; the rest of the
                // verdicts stay as given (dropped).
                for (i, (f, v)) in frames.iter_mut().zip(verdicts.iter_mut()).enumerate() {
                    if i % 2 == 1 {
                        assert!(f.push_front(1));
                        f.data_mut()[0] = 7;
                        *v = Verdict::Tx(1);
                    }
                }
            })
            .unwrap();
        assert_eq!((got, sizes), (RX_BURST, vec![RX_BURST]), "at most a burst");
        ports.flush().unwrap();
        let want: Vec<Vec<u8>> = (0..RX_BURST as u8)
            .filter(|i| i % 2 == 1)
            .map(|i| vec![7, i, 0xee])
            .collect();
        assert_eq!(ports.take_tx(1), want);
        // The rest, then nothing (`handle` is not called for no frames).
        let mut seen = Vec::new();
        let mut h = |frames: &mut [Frame<'_>], _: &mut [Verdict]| {
            seen.extend(frames.iter().map(|f| f.data()[0]));
        };
        assert_eq!(ports.rx_burst(0, 4, &mut h).unwrap(), 4);
        assert_eq!(ports.rx_burst(0, 4, &mut h).unwrap(), 2);
        assert_eq!(
            ports
                .rx_burst(0, 4, &mut |_, _| panic!("no frames"))
                .unwrap(),
            0
        );
        let base = RX_BURST as u8;
        assert_eq!(seen, (base..base + 6).collect::<Vec<_>>());
        assert!(ports.rx_burst(2, 1, &mut |_, _| ()).is_err());
    }

    #[test]
    fn rx_batch_takes_more_than_a_burst_one_frame_at_a_time() {
        let mut ports = MemPorts::new(1, 16);
        for i in 0..(2 * RX_BURST + 3) {
            ports.inject(0, &[i as u8]);
        }
        let mut n = 0usize;
        let got = ports
            .rx_batch(0, 3 * RX_BURST, &mut |f| {
                assert_eq!(f.data(), &[n as u8]);
                n += 1;
                Verdict::Tx(0)
            })
            .unwrap();
        assert_eq!((got, n), (2 * RX_BURST + 3, 2 * RX_BURST + 3));
        ports.flush().unwrap();
        assert_eq!(ports.take_tx(0).len(), 2 * RX_BURST + 3);
    }

    #[test]
    fn bad_ports_and_oversize_frames_are_refused_and_counted() {
        let mut ports = MemPorts::new(2, 8);
        assert!(!ports.inject(2, &[0]));
        assert!(!ports.inject(0, &[0; 9]));
        assert!(ports.rx_batch(5, 1, &mut |_| Verdict::Drop).is_err());
        assert!(!ports.tx_copy(1, &[0; 9]));
        assert!(!ports.tx_copy(7, &[0]));
        ports.inject(0, &[1]);
        ports.rx_batch(0, 1, &mut |_| Verdict::Tx(9)).unwrap();
        assert_eq!(ports.counters(0).tx_dropped, 1);
        assert_eq!(ports.counters(1).tx_dropped, 1);
        ports.flush().unwrap();
        assert!(ports.take_tx(0).is_empty() && ports.take_tx(1).is_empty());
        assert_eq!(ports.counters(9), PortCounters::default());
    }

    #[test]
    fn full_queues_drop_and_count() {
        let mut ports = MemPorts::new(1, 8);
        for _ in 0..MEM_RING_SIZE {
            assert!(ports.inject(0, &[1]));
            assert!(ports.tx_copy(0, &[2]));
        }
        assert!(!ports.inject(0, &[1]));
        assert!(!ports.tx_copy(0, &[2]));
        assert_eq!(ports.counters(0).tx_dropped, 1);
        ports.flush().unwrap();
        assert_eq!(ports.take_tx(0).len(), MEM_RING_SIZE);
        assert!(ports.tx_copy(0, &[3]));
    }

    proptest! {
        #[test]
        fn every_frame_lands_where_its_verdict_says(
            frames in prop::collection::vec(
                (0usize..3, prop::collection::vec(any::<u8>(), 0..64), 0usize..4),
                0..100,
            )
        ) {
            let mut ports = MemPorts::new(3, 64);
            let mut expect: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
            for (rx, bytes, to) in &frames {
                prop_assert!(ports.inject(*rx, bytes));
                let to = *to;
                ports.rx_batch(*rx, 1, &mut |_| {
                    if to < 3 { Verdict::Tx(to) } else { Verdict::Drop }
                }).unwrap();
                if to < 3 {
                    expect[to].push(bytes.clone());
                }
            }
            ports.flush().unwrap();
            for (p, want) in expect.iter().enumerate() {
                prop_assert_eq!(&ports.take_tx(p), want);
                prop_assert_eq!(ports.counters(p).tx_packets, want.len() as u64);
            }
        }
    }
}
