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
//!
//! The sink also reads the header Linux's own pktgen module writes at the start of UDP payloads
//! ([`Stamp::parse_kernel_pktgen`]), so `deploy/pktgen/` runs can be counted by `braid-pktgen sink`.

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

/// The magic of the kernel pktgen header.
pub const KERNEL_PKTGEN_MAGIC: u32 = 0xbe9b_e955;
/// Bytes of the kernel pktgen header: magic, sequence, seconds, microseconds (all 32-bit).
pub const KERNEL_PKTGEN_LEN: usize = 16;

impl Stamp {
    /// Reads the header Linux's pktgen puts at the start of a UDP payload: a 32-bit sequence and
    /// the real-time clock in microseconds. Its stream is the datagram's source port (the
    /// `deploy/pktgen` scripts give each sending thread its own port); None without the magic.
    pub fn parse_kernel_pktgen(payload: &[u8], src_port: u16) -> Option<Stamp> {
        let b: &[u8; KERNEL_PKTGEN_LEN] = payload.first_chunk()?;
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if word(0) != KERNEL_PKTGEN_MAGIC {
            return None;
        }
        Some(Stamp {
            stream: src_port,
            seq: u64::from(word(4)),
            tx_ns: u64::from(word(8)) * 1_000_000_000 + u64::from(word(12)) * 1_000,
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

    #[test]
    fn kernel_pktgen_header() {
        let mut p = vec![
            0xbe, 0x9b, 0xe9, 0x55, 0, 0, 1, 0, 0x65, 0, 0, 0, 0, 0, 0, 7,
        ];
        p.extend_from_slice(&[0; 10]);
        assert_eq!(
            Stamp::parse_kernel_pktgen(&p, 9000),
            Some(Stamp {
                stream: 9000,
                seq: 256,
                tx_ns: 0x6500_0000 * 1_000_000_000 + 7_000,
            })
        );
        assert_eq!(Stamp::parse_kernel_pktgen(&p[..15], 9000), None);
        p[0] = 0;
        assert_eq!(Stamp::parse_kernel_pktgen(&p, 9000), None);
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
