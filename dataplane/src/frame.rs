//! A frame buffer as the pipeline sees it: the bytes of one Ethernet frame somewhere in
//! a fixed-capacity buffer (a UMEM chunk, a pooled packet buffer or a `Vec` in tests).
//!
//! A frame starts `start` bytes into its buffer. The I/O backends receive packets
//! [`HEADROOM`] bytes in, so the tunnel's outer headers are written in front of the packet
//! in place (`push_front` moves the start back) and decapsulation advances the start
//! (`pull_front`): no byte of the packet moves. Only a frame with too little room in front
//! (one built at the start of its buffer) is moved within it. The backend sends from the
//! frame's start ([`Frame::start`]). The pipeline never needs to know which I/O backend owns
//! the bytes.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

/// Index of a port (NIC queue) within a worker, in config interface order.
pub type PortId = usize;

/// What to do with a received frame once the pipeline has handled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (possibly rewritten) frame on this port.
    Tx(PortId),
    /// Give the frame back to the free pool.
    Drop,
}

/// Room kept in front of every received packet for the headers a tunnel or an ICMP error
/// puts there: the kernel's own XDP headroom, which an AF_XDP chunk reserves anyway, and far
/// more than the 76 bytes the longest way (an ICMP error about a packet, then sealed) adds.
pub const HEADROOM: usize = 256;

/// One frame: `buf[start..end]` is the packet, what is in front of it is room for headers,
/// what is behind it tail room. (Start and end rather than a length: the slice of the
/// packet is then taken without an addition.)
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    start: usize,
    end: usize,
}

impl<'a> Frame<'a> {
    /// Wraps `buf` whose first `len` bytes hold a frame (`len` is clamped to the buffer).
    #[inline]
    pub fn new(buf: &'a mut [u8], len: usize) -> Self {
        Frame::at(buf, 0, len)
    }

    /// Wraps `buf` whose bytes `start..start + len` hold a frame (both clamped to the buffer).
    #[inline]
    pub fn at(buf: &'a mut [u8], start: usize, len: usize) -> Self {
        let start = start.min(buf.len());
        let end = start + len.min(buf.len() - start);
        Frame { buf, start, end }
    }

    /// Where the frame starts in its buffer.
    #[inline]
    pub fn start(&self) -> usize {
        self.start
    }

    /// The frame's bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The frame's bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.start..self.end).unwrap_or_default()
    }

    /// Length of the frame in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the frame holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Bytes from the frame's start to the end of its buffer: the longest it may grow
    /// at the back.
    pub fn capacity(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Inserts `n` bytes at the front (their content is whatever the buffer held there);
    /// false if the buffer is too small. Moves the start back when there is room in front,
    /// else moves the packet (frames built at the start of their buffer).
    #[inline]
    pub fn push_front(&mut self, n: usize) -> bool {
        if n <= self.start {
            self.start -= n;
            return true;
        }
        if self.end + n > self.buf.len() {
            return false;
        }
        self.buf.copy_within(self.start..self.end, self.start + n);
        self.end += n;
        true
    }

    /// Removes `n` bytes from the front by advancing the start; false if the frame is
    /// shorter.
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }

    /// Sets the frame length; false (and no change) if beyond capacity.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        if len > self.capacity() {
            return false;
        }
        self.end = self.start + len;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_room_in_front_push_moves_the_packet() {
        let mut buf = [0u8; 16];
        buf[..4].copy_from_slice(&[1, 2, 3, 4]);
        let mut f = Frame::new(&mut buf, 4);
        assert!(f.push_front(2));
        assert_eq!(f.start(), 0);
        assert_eq!(&f.data()[2..], &[1, 2, 3, 4]);
        assert!(f.pull_front(3));
        assert_eq!(f.start(), 3);
        assert_eq!(f.data(), &[2, 3, 4]);
        assert!(!f.push_front(14));
        assert!(!f.pull_front(4));
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn with_room_in_front_push_and_pull_move_the_start_only() {
        let mut buf = [0u8; 32];
        buf[10..14].copy_from_slice(&[1, 2, 3, 4]);
        buf[..10].copy_from_slice(&[9; 10]);
        let mut f = Frame::at(&mut buf, 10, 4);
        assert_eq!(f.capacity(), 22);
        assert!(f.push_front(6));
        assert_eq!(f.start(), 4);
        assert_eq!(f.data(), &[9, 9, 9, 9, 9, 9, 1, 2, 3, 4]);
        f.data_mut()[0] = 7;
        assert!(f.pull_front(7));
        assert_eq!((f.start(), f.data()), (11, &[2, 3, 4][..]));
        assert!(f.set_len(21) && !f.set_len(22));
        assert_eq!(buf[4], 7);
        assert_eq!(&buf[10..14], &[1, 2, 3, 4], "the packet never moved");
    }

    #[test]
    fn start_and_length_are_clamped_to_the_buffer() {
        let mut buf = [0u8; 8];
        let f = Frame::at(&mut buf, 6, 10);
        assert_eq!((f.start(), f.len(), f.capacity()), (6, 2, 2));
        let f = Frame::at(&mut buf, 20, 1);
        assert_eq!((f.start(), f.len()), (8, 0));
    }
}
