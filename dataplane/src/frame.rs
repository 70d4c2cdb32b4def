//! A frame buffer as the pipeline sees it: the bytes of one Ethernet frame at the
//! start of a fixed-capacity buffer (a UMEM chunk or a `Vec` in tests).
//!
//! xsk-rs fixes a descriptor's start address, so headers are prepended and
//! stripped by moving the packet inside its buffer (`copy_within`, a few tens of
//! nanoseconds for a full-size frame, measured in the benches) rather than by moving
//! the descriptor. The pipeline never needs to know which I/O backend owns the bytes.

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

/// One frame: `buf[..len]` is the packet, `buf[len..]` is free tail room.
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Frame<'a> {
    /// Wraps `buf` whose first `len` bytes hold a frame (`len` is clamped to the buffer).
    pub fn new(buf: &'a mut [u8], len: usize) -> Self {
        let len = len.min(buf.len());
        Frame { buf, len }
    }

    /// The frame's bytes.
    pub fn data(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The frame's bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(..self.len).unwrap_or_default()
    }

    /// Length of the frame in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the frame holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Capacity of the underlying buffer.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Inserts `n` bytes at the front (their content is left as it was); false if
    /// the buffer is too small.
    pub fn push_front(&mut self, n: usize) -> bool {
        if self.len + n > self.buf.len() {
            return false;
        }
        self.buf.copy_within(..self.len, n);
        self.len += n;
        true
    }

    /// Removes `n` bytes from the front; false if the frame is shorter.
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
        true
    }

    /// Sets the frame length; false (and no change) if beyond capacity.
    pub fn set_len(&mut self, len: usize) -> bool {
        if len > self.buf.len() {
            return false;
        }
        self.len = len;
        true
    }

    /// The whole buffer, including tail room past `len`.
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_pull_front_move_the_packet() {
        let mut buf = [0u8; 16];
        buf[..4].copy_from_slice(&[1, 2, 3, 4]);
        let mut f = Frame::new(&mut buf, 4);
        assert!(f.push_front(2));
        assert_eq!(&f.data()[2..], &[1, 2, 3, 4]);
        assert!(f.pull_front(3));
        assert_eq!(f.data(), &[2, 3, 4]);
        assert!(!f.push_front(14));
        assert!(!f.pull_front(4));
        assert_eq!(f.len(), 3);
    }
}
