//! IPv4 headers (RFC 791): a checked view and in-place rewrites with incremental
//! checksum updates.

use super::{checksum, WireError};
use std::net::Ipv4Addr;

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// TTL of the packets braid originates (RFC 1700's default).
pub const DEFAULT_TTL: u8 = 64;
/// Protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// Protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// Protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// A checked IPv4 packet: version 4, a header length of at least 20 bytes, and a
/// total length that covers the header and fits in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4<'a> {
    /// The packet, without link padding.
    b: &'a [u8],
    /// Its fixed header.
    h: &'a [u8; MIN_HEADER_LEN],
    /// The whole header, options included.
    header: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Ipv4<'a> {
    /// Checks `bytes` (which may carry trailing link padding) as an IPv4 packet.
    pub fn parse(bytes: &'a [u8]) -> Result<Ipv4<'a>, WireError> {
        let h: &[u8; MIN_HEADER_LEN] = bytes.first_chunk().ok_or(WireError::Truncated)?;
        if h[0] >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let hl = usize::from(h[0] & 0xf) * 4;
        let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if hl < MIN_HEADER_LEN || total < hl {
            return Err(WireError::Malformed);
        }
        let b = bytes.get(..total).ok_or(WireError::Truncated)?;
        let (header, payload) = b.split_at_checked(hl).ok_or(WireError::Malformed)?;
        Ok(Ipv4 {
            b,
            h,
            header,
            payload,
        })
    }

    /// The packet's bytes (header and payload, without link padding).
    pub fn bytes(&self) -> &'a [u8] {
        self.b
    }
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        self.header.len()
    }
    /// Total length in bytes.
    pub fn total_len(&self) -> usize {
        self.b.len()
    }
    /// Identification field.
    pub fn ident(&self) -> u16 {
        u16::from_be_bytes([self.h[4], self.h[5]])
    }
    /// Don't Fragment flag.
    pub fn dont_fragment(&self) -> bool {
        self.h[6] & 0x40 != 0
    }
    /// True for a fragment other than the first (its payload has no L4 header).
    pub fn is_later_fragment(&self) -> bool {
        u16::from_be_bytes([self.h[6], self.h[7]]) & 0x1fff != 0
    }
    /// True for any fragment (more-fragments set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        u16::from_be_bytes([self.h[6], self.h[7]]) & 0x3fff != 0
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.h[8]
    }
    /// Protocol number of the payload.
    pub fn protocol(&self) -> u8 {
        self.h[9]
    }
    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.h[12], self.h[13], self.h[14], self.h[15])
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.h[16], self.h[17], self.h[18], self.h[19])
    }
    /// True when the header checksum verifies.
    pub fn checksum_ok(&self) -> bool {
        checksum::checksum(self.header) == 0
    }
    /// The payload after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Decrements the TTL of the IPv4 packet at the start of `packet` and updates its
/// header checksum incrementally. The packet must have passed [`Ipv4::parse`].
pub fn decrement_ttl(packet: &mut [u8]) {
    if let Some(h) = packet.first_chunk_mut::<MIN_HEADER_LEN>() {
        let old = u16::from_be_bytes([h[8], h[9]]);
        h[8] = h[8].wrapping_sub(1);
        let new = u16::from_be_bytes([h[8], h[9]]);
        let c = checksum::update16(u16::from_be_bytes([h[10], h[11]]), old, new);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

/// The fields of an IPv4 header braid emits (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub ident: u16,
    pub dont_fragment: bool,
    /// Length of what follows the header.
    pub payload_len: u16,
}

impl Repr {
    /// Writes a 20-byte header with its checksum.
    pub fn emit(&self, h: &mut [u8; MIN_HEADER_LEN]) {
        h[0] = 0x45;
        h[1] = 0;
        h[2..4].copy_from_slice(&(self.payload_len.saturating_add(20)).to_be_bytes());
        h[4..6].copy_from_slice(&self.ident.to_be_bytes());
        h[6] = if self.dont_fragment { 0x40 } else { 0 };
        h[7] = 0;
        h[8] = self.ttl;
        h[9] = self.protocol;
        h[10] = 0;
        h[11] = 0;
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum::checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let mut p = vec![0u8; 28];
        let r = Repr {
            src: Ipv4Addr::new(198, 18, 1, 2),
            dst: Ipv4Addr::new(203, 0, 113, 130),
            protocol: PROTO_UDP,
            ttl: 64,
            ident: 0x1234,
            dont_fragment: true,
            payload_len: 8,
        };
        r.emit(p.first_chunk_mut().unwrap());
        p
    }

    #[test]
    fn emit_matches_etherparse_and_golden() {
        let p = sample();
        let golden = [
            0x45, 0, 0, 28, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 198, 18, 1, 2, 203, 0, 113, 130,
        ];
        let csum = checksum::checksum(&{
            let mut g = golden;
            g[10] = 0;
            g
        });
        assert_eq!(p[..10], golden[..10]);
        assert_eq!(p[12..20], golden[12..20]);
        assert_eq!(u16::from_be_bytes([p[10], p[11]]), csum);
        let (h, _) = etherparse::Ipv4Header::from_slice(&p).unwrap();
        assert_eq!(h.calc_header_checksum(), h.header_checksum);
        let v = Ipv4::parse(&p).unwrap();
        assert!(v.checksum_ok());
        assert!(v.dont_fragment());
        assert_eq!(v.src(), Ipv4Addr::new(198, 18, 1, 2));
        assert_eq!(v.payload().len(), 8);
    }

    #[test]
    fn decrement_ttl_keeps_checksum_valid() {
        let mut p = sample();
        decrement_ttl(&mut p);
        let v = Ipv4::parse(&p).unwrap();
        assert_eq!(v.ttl(), 63);
        assert!(v.checksum_ok());
    }

    #[test]
    fn refuses_bad_headers() {
        let p = sample();
        assert_eq!(Ipv4::parse(&p[..19]).unwrap_err(), WireError::Truncated);
        assert_eq!(Ipv4::parse(&p[..27]).unwrap_err(), WireError::Truncated);
        let mut v6 = p.clone();
        v6[0] = 0x65;
        assert_eq!(Ipv4::parse(&v6).unwrap_err(), WireError::Malformed);
        let mut short_ihl = p.clone();
        short_ihl[0] = 0x44;
        assert_eq!(Ipv4::parse(&short_ihl).unwrap_err(), WireError::Malformed);
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_agrees_with_etherparse(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(v) = Ipv4::parse(&data) {
                prop_assert!(v.header_len() >= 20 && v.total_len() <= data.len());
                let _ = v.payload();
                if let Ok((h, _)) = etherparse::Ipv4Header::from_slice(&data) {
                    prop_assert_eq!(h.source, v.src().octets());
                    prop_assert_eq!(usize::from(h.total_len), v.total_len());
                }
            }
        }
    }
}
