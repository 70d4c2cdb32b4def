//! The stamp at the start of every generated payload: what the sink needs to account for a packet.
//!
//! Layout (18 bytes, big-endian), small enough for a 64-byte UDP frame:
//!
//! | bytes | field |
//! |---|---|
//! | 0..2 | magic `0xb7a1` |
//! | 2..4 | stream id |
//! | 4..10 | sequence number (48 bits), per stream, from the stream's first packet |
//! | 10..18 | transmit time, nanoseconds of the host's real-time clock (see [`crate::pktgen::clock`]) |

/// Bytes of a stamp.
pub const STAMP_LEN: usize = 18;
/// The first two bytes of every stamp.
pub const MAGIC: u16 = 0xb7a1;
/// Largest sequence number a stamp carries.
pub const MAX_SEQ: u64 = (1 << 48) - 1;

/// What a generated packet says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The stream (one per generated flow).
    pub stream: u16,
    /// Position of the packet in its stream (48 bits; higher bits are dropped).
    pub seq: u64,
    /// When it was sent: nanoseconds since the Unix epoch.
    pub tx_ns: u64,
}

impl Stamp {
    /// Writes the stamp into `buf`.
    pub fn emit(&self, buf: &mut [u8; STAMP_LEN]) {
        buf[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        buf[2..4].copy_from_slice(&self.stream.to_be_bytes());
        buf[4..10].copy_from_slice(&(self.seq & MAX_SEQ).to_be_bytes()[2..]);
        buf[10..18].copy_from_slice(&self.tx_ns.to_be_bytes());
    }

    /// Reads the stamp at the start of `payload`; None when it is too short or lacks the magic.
    pub fn parse(payload: &[u8]) -> Option<Stamp> {
        let b: &[u8; STAMP_LEN] = payload.first_chunk()?;
        if u16::from_be_bytes([b[0], b[1]]) != MAGIC {
            return None;
        }
        let mut seq = [0u8; 8];
        seq[2..].copy_from_slice(&b[4..10]);
        let mut tx = [0u8; 8];
        tx.copy_from_slice(&b[10..18]);
        Some(Stamp {
            stream: u16::from_be_bytes([b[2], b[3]]),
            seq: u64::from_be_bytes(seq),
            tx_ns: u64::from_be_bytes(tx),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_bytes() {
        let mut b = [0u8; STAMP_LEN];
        Stamp {
            stream: 0x0102,
            seq: 0x0304_0506_0708,
            tx_ns: 0x1112_1314_1516_1718,
        }
        .emit(&mut b);
        assert_eq!(
            b,
            [0xb7, 0xa1, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        );
    }

    #[test]
    fn short_or_foreign_payloads_are_not_stamps() {
        let mut b = [0u8; STAMP_LEN];
        Stamp {
            stream: 1,
            seq: 2,
            tx_ns: 3,
        }
        .emit(&mut b);
        assert!(Stamp::parse(&b[..STAMP_LEN - 1]).is_none());
        b[0] ^= 1;
        assert!(Stamp::parse(&b).is_none());
        assert!(Stamp::parse(&[]).is_none());
    }

    proptest! {
        #[test]
        fn round_trips(stream: u16, seq in 0..=MAX_SEQ, tx_ns: u64, tail in prop::collection::vec(any::<u8>(), 0..8)) {
            let s = Stamp { stream, seq, tx_ns };
            let mut b = [0u8; STAMP_LEN];
            s.emit(&mut b);
            let mut payload = b.to_vec();
            payload.extend_from_slice(&tail);
            prop_assert_eq!(Stamp::parse(&payload), Some(s));
        }
    }
}
