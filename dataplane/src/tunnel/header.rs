//! The 16-byte tunnel header and the probe payload.

use super::TunnelError;

/// Length of the fixed header that starts every tunnel message.
pub const HEADER_LEN: usize = 16;

/// The protocol version this code speaks.
pub const VERSION: u8 = 1;

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
}

impl MsgType {
    fn from_u8(v: u8) -> Result<MsgType, TunnelError> {
        match v {
            1 => Ok(MsgType::Data),
            2 => Ok(MsgType::Probe),
            3 => Ok(MsgType::ProbeReply),
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
    /// The sending worker's index; each (sender, lane) numbers its own messages.
    pub lane: u8,
    /// Id of the sending end; the two ends sharing a key must use different ids.
    pub sender: u32,
    /// Per (sender, lane) message number; below 2^56.
    pub seq: u64,
}

impl Header {
    /// Reads the header at the start of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Header, TunnelError> {
        let b: &[u8; HEADER_LEN] = buf
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(TunnelError::Truncated)?;
        if b[0] != VERSION {
            return Err(TunnelError::BadVersion);
        }
        let [_, ty, link, lane, s0, s1, s2, s3, q @ ..] = *b;
        Ok(Header {
            msg_type: MsgType::from_u8(ty)?,
            link,
            lane,
            sender: u32::from_be_bytes([s0, s1, s2, s3]),
            seq: u64::from_be_bytes(q),
        })
    }

    /// Writes the header, version included, into `buf`.
    pub fn emit(&self, buf: &mut [u8; HEADER_LEN]) {
        buf[0] = VERSION;
        buf[1] = self.msg_type as u8;
        buf[2] = self.link;
        buf[3] = self.lane;
        buf[4..8].copy_from_slice(&self.sender.to_be_bytes());
        buf[8..16].copy_from_slice(&self.seq.to_be_bytes());
    }
}

/// Payload of [`MsgType::Probe`] and [`MsgType::ProbeReply`] messages.
///
/// A probe sets `tx_ns` to its send time and `echo_tx_ns` to 0; the reply sets
/// `tx_ns` to its own send time and echoes the probe's `tx_ns` in `echo_tx_ns`, so
/// the prober gets the round-trip time from its own clock alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Send time of this message, nanoseconds on the sender's monotonic clock.
    pub tx_ns: u64,
    /// In a reply, the `tx_ns` of the probe answered; 0 in a probe.
    pub echo_tx_ns: u64,
}

impl Probe {
    /// Encoded length; longer payloads are accepted and the rest ignored (padding).
    pub const LEN: usize = 16;

    /// Reads a probe payload (plaintext after opening).
    pub fn parse(buf: &[u8]) -> Result<Probe, TunnelError> {
        let b: &[u8; Probe::LEN] = buf
            .get(..Probe::LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(TunnelError::Truncated)?;
        let [t0, t1, t2, t3, t4, t5, t6, t7, e @ ..] = *b;
        Ok(Probe {
            tx_ns: u64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
            echo_tx_ns: u64::from_be_bytes(e),
        })
    }

    /// Writes the probe payload into `buf`.
    pub fn emit(&self, buf: &mut [u8; Probe::LEN]) {
        buf[..8].copy_from_slice(&self.tx_ns.to_be_bytes());
        buf[8..].copy_from_slice(&self.echo_tx_ns.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOLDEN: [u8; HEADER_LEN] = [
        0x01, 0x03, 0x05, 0x02, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
        0x07,
    ];

    fn golden_header() -> Header {
        Header {
            msg_type: MsgType::ProbeReply,
            link: 5,
            lane: 2,
            sender: 0xdead_beef,
            seq: 0x0001_0203_0405_0607,
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
        for v in [0u8, 2, 0xff] {
            let mut b = GOLDEN;
            b[0] = v;
            assert_eq!(Header::parse(&b), Err(TunnelError::BadVersion));
        }
        for t in [0u8, 4, 0x80, 0xff] {
            let mut b = GOLDEN;
            b[1] = t;
            assert_eq!(Header::parse(&b), Err(TunnelError::BadType));
        }
        for (t, ty) in [
            (1, MsgType::Data),
            (2, MsgType::Probe),
            (3, MsgType::ProbeReply),
        ] {
            let mut b = GOLDEN;
            b[1] = t;
            assert_eq!(Header::parse(&b).map(|h| h.msg_type), Ok(ty));
        }
    }

    #[test]
    fn probe_golden_bytes() {
        let p = Probe {
            tx_ns: 0x1122_3344_5566_7788,
            echo_tx_ns: 0x99aa_bbcc_ddee_ff00,
        };
        let mut buf = [0u8; Probe::LEN];
        p.emit(&mut buf);
        assert_eq!(
            buf,
            [
                0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
                0xff, 0x00
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
            Just(MsgType::ProbeReply)
        ]
    }

    proptest! {
        #[test]
        fn header_round_trip(ty in any_type(), link: u8, lane: u8, sender: u32, seq: u64) {
            let h = Header { msg_type: ty, link, lane, sender, seq };
            let mut buf = [0u8; HEADER_LEN];
            h.emit(&mut buf);
            prop_assert_eq!(Header::parse(&buf), Ok(h));
        }

        #[test]
        fn header_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Header::parse(&bytes);
            let _ = Probe::parse(&bytes);
        }
    }
}
