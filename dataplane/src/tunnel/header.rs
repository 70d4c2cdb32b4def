//! The 16-byte header of the tunnel's data-class messages, the bond sequence that starts a
//! data message's plaintext, and the probe payload.

use super::TunnelError;

/// Length of the fixed header that starts every data-class message: one AES block, so the
/// AEAD authenticates it as one block of associated data.
pub const HEADER_LEN: usize = 16;

/// Length of the bond sequence that starts a data message's plaintext (sealed with the
/// packet, so authenticated and hidden, and outside the associated data: a 20-byte
/// header cost `ring`'s AES-256-GCM a partial block of associated data, benches/RESULTS.md).
pub const SEQ_LEN: usize = 4;

/// The protocol version this code speaks.
pub const VERSION: u8 = 3;

/// What a tunnel message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    /// An inner IPv4 packet.
    Data = 1,
    /// A link probe: a [`Probe`] with the sender's timestamp.
    Probe = 2,
    /// The answer to a probe: a [`Probe`] echoing the probe's timestamp.
    ProbeReply = 3,
    /// Nothing: keeps a NAT binding, and confirms a new session to the responder.
    Keepalive = 4,
}

impl MsgType {
    fn from_u8(v: u8) -> Result<MsgType, TunnelError> {
        match v {
            1 => Ok(MsgType::Data),
            2 => Ok(MsgType::Probe),
            3 => Ok(MsgType::ProbeReply),
            4 => Ok(MsgType::Keepalive),
            _ => Err(TunnelError::BadType),
        }
    }
}

/// A parsed tunnel header (the version is implied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub msg_type: MsgType,
    /// The sender's index of the uplink used; in a probe reply, the probe's link id.
    pub link: u8,
    /// The sending worker's index; each (session, direction, lane) counts its own messages.
    pub lane: u8,
    /// The session, as the receiver numbered it in the handshake.
    pub receiver: u32,
    /// Per (session, direction, lane) message number from 0; with the lane, the nonce.
    pub counter: u64,
}

impl Header {
    /// Reads the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Header, TunnelError> {
        let b: &[u8; HEADER_LEN] = buf
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(TunnelError::Truncated)?;
        match b[0] {
            VERSION => {}
            1..VERSION => return Err(TunnelError::OldVersion),
            _ => return Err(TunnelError::BadVersion),
        }
        let [_, ty, link, lane, r0, r1, r2, r3, c0, c1, c2, c3, c4, c5, c6, c7] = *b;
        Ok(Header {
            msg_type: MsgType::from_u8(ty)?,
            link,
            lane,
            receiver: u32::from_be_bytes([r0, r1, r2, r3]),
            counter: u64::from_be_bytes([c0, c1, c2, c3, c4, c5, c6, c7]),
        })
    }

    /// Writes the header, version included, into `buf`.
    pub fn emit(&self, buf: &mut [u8; HEADER_LEN]) {
        buf[0] = VERSION;
        buf[1] = self.msg_type as u8;
        buf[2] = self.link;
        buf[3] = self.lane;
        buf[4..8].copy_from_slice(&self.receiver.to_be_bytes());
        buf[8..16].copy_from_slice(&self.counter.to_be_bytes());
    }
}

/// A data message's plaintext: the bond sequence, per (peer, direction, lane) across links
/// and sessions, that the receiver restores the order by (0 when the sender does not ask
/// for it: one link in use, flow mode), and the packet behind it (padding included).
pub fn split_data(plain: &[u8]) -> Result<(u32, &[u8]), TunnelError> {
    let (seq, packet) = plain
        .split_first_chunk::<SEQ_LEN>()
        .ok_or(TunnelError::Truncated)?;
    Ok((u32::from_be_bytes(*seq), packet))
}

/// Payload of [`MsgType::Probe`] and [`MsgType::ProbeReply`] messages.
///
/// A probe sets `tx_ns` to its send time; the reply echoes the probe's `seq` and
/// `tx_ns`, and says when the probe arrived (`echo_rx_ns`, the replier's clock), so
/// the prober gets the round-trip time from its own clock alone and the one-way
/// delay up to a constant (the clocks' offset, the same for all links of a peer).
/// Both carry `rx_bytes`: the data bytes the sender received on this link so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Probe {
    /// Per-link probe number (a reply: the probe's).
    pub seq: u32,
    /// Send time of this message, nanoseconds on the sender's monotonic clock.
    pub tx_ns: u64,
    /// In a reply, the `tx_ns` of the probe answered; 0 in a probe.
    pub echo_tx_ns: u64,
    /// In a reply, when the probe arrived on the replier's clock; 0 in a probe.
    pub echo_rx_ns: u64,
    /// Inner bytes of data the sender has received on this link (wrapping).
    pub rx_bytes: u64,
}

impl Probe {
    /// Encoded length; longer payloads are accepted and the rest ignored (padding).
    pub const LEN: usize = 40;

    /// Reads a probe payload (plaintext after opening).
    pub fn parse(buf: &[u8]) -> Result<Probe, TunnelError> {
        let b: &[u8; Probe::LEN] = buf
            .get(..Probe::LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(TunnelError::Truncated)?;
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
            u64::from_be_bytes(w)
        };
        Ok(Probe {
            seq: (word(0) >> 32) as u32,
            tx_ns: word(8),
            echo_tx_ns: word(16),
            echo_rx_ns: word(24),
            rx_bytes: word(32),
        })
    }

    /// Writes the probe payload into `buf` (the four bytes after `seq` are zero).
    pub fn emit(&self, buf: &mut [u8; Probe::LEN]) {
        let words = [
            u64::from(self.seq) << 32,
            self.tx_ns,
            self.echo_tx_ns,
            self.echo_rx_ns,
            self.rx_bytes,
        ];
        for (chunk, w) in buf.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&w.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOLDEN: [u8; HEADER_LEN] = [
        0x03, 0x03, 0x05, 0x02, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];

    fn golden_header() -> Header {
        Header {
            msg_type: MsgType::ProbeReply,
            link: 5,
            lane: 2,
            receiver: 0xdead_beef,
            counter: 0x0001_0203_0405_0607,
        }
    }

    #[test]
    fn header_golden_bytes() {
        let mut buf = [0u8; HEADER_LEN];
        golden_header().emit(&mut buf);
        assert_eq!(buf, GOLDEN);
        assert_eq!(Header::parse(&GOLDEN), Ok(golden_header()));
    }

    #[test]
    fn header_parse_ignores_trailing_bytes() {
        let mut msg = GOLDEN.to_vec();
        msg.extend_from_slice(&[0xff; 40]);
        assert_eq!(Header::parse(&msg), Ok(golden_header()));
    }

    #[test]
    fn header_errors() {
        for len in 0..HEADER_LEN {
            assert_eq!(Header::parse(&GOLDEN[..len]), Err(TunnelError::Truncated));
        }
        for v in [0u8, 4, 0xff] {
            let mut b = GOLDEN;
            b[0] = v;
            assert_eq!(Header::parse(&b), Err(TunnelError::BadVersion));
        }
        for v in [1, 2] {
            let mut old = GOLDEN;
            old[0] = v;
            assert_eq!(Header::parse(&old), Err(TunnelError::OldVersion));
        }
        // 5 to 7 are the handshake's: not data-class, so not for this header.
        for t in [0u8, 5, 6, 7, 0x80, 0xff] {
            let mut b = GOLDEN;
            b[1] = t;
            assert_eq!(Header::parse(&b), Err(TunnelError::BadType));
        }
        for (t, ty) in [
            (1, MsgType::Data),
            (2, MsgType::Probe),
            (3, MsgType::ProbeReply),
            (4, MsgType::Keepalive),
        ] {
            let mut b = GOLDEN;
            b[1] = t;
            assert_eq!(Header::parse(&b).map(|h| h.msg_type), Ok(ty));
        }
    }

    #[test]
    fn data_plaintext_starts_with_the_bond_sequence() {
        let plain = [0x80, 0, 0, 0x2a, 0x45, 0, 0, 20];
        assert_eq!(split_data(&plain), Ok((0x8000_002a, &[0x45, 0, 0, 20][..])));
        assert_eq!(split_data(&plain[..4]), Ok((0x8000_002a, &[][..])));
        for len in 0..SEQ_LEN {
            assert_eq!(split_data(&plain[..len]), Err(TunnelError::Truncated));
        }
    }

    #[test]
    fn probe_golden_bytes() {
        let p = Probe {
            seq: 0x0a0b_0c0d,
            tx_ns: 0x1122_3344_5566_7788,
            echo_tx_ns: 0x99aa_bbcc_ddee_ff00,
            echo_rx_ns: 0x0102_0304_0506_0708,
            rx_bytes: 0xf0e0_d0c0_b0a0_9080,
        };
        let mut buf = [0u8; Probe::LEN];
        p.emit(&mut buf);
        assert_eq!(
            buf,
            [
                0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                0x07, 0x08, 0xf0, 0xe0, 0xd0, 0xc0, 0xb0, 0xa0, 0x90, 0x80
            ]
        );
        assert_eq!(Probe::parse(&buf), Ok(p));
        for len in 0..Probe::LEN {
            assert_eq!(Probe::parse(&buf[..len]), Err(TunnelError::Truncated));
        }
        let mut padded = buf.to_vec();
        padded.resize(1200, 0);
        assert_eq!(Probe::parse(&padded), Ok(p));
    }

    fn any_type() -> impl Strategy<Value = MsgType> {
        prop_oneof![
            Just(MsgType::Data),
            Just(MsgType::Probe),
            Just(MsgType::ProbeReply),
            Just(MsgType::Keepalive)
        ]
    }

    proptest! {
        #[test]
        fn header_round_trip(ty in any_type(), link: u8, lane: u8, receiver: u32, counter: u64) {
            let h = Header { msg_type: ty, link, lane, receiver, counter };
            let mut buf = [0u8; HEADER_LEN];
            h.emit(&mut buf);
            prop_assert_eq!(Header::parse(&buf), Ok(h));
        }

        #[test]
        fn probe_round_trip(seq: u32, tx_ns: u64, echo_tx_ns: u64, echo_rx_ns: u64, rx_bytes: u64) {
            let p = Probe { seq, tx_ns, echo_tx_ns, echo_rx_ns, rx_bytes };
            let mut buf = [0u8; Probe::LEN];
            p.emit(&mut buf);
            prop_assert_eq!(Probe::parse(&buf), Ok(p));
        }

        #[test]
        fn header_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Header::parse(&bytes);
            let _ = Probe::parse(&bytes);
        }
    }
}
