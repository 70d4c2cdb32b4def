//! ICMP (RFC 792): echo replies made in place, and error messages quoting the
//! packet that caused them.

use super::{checksum, ipv4, WireError};
use std::net::Ipv4Addr;

/// ICMP echo reply type.
pub const ECHO_REPLY: u8 = 0;
/// ICMP destination unreachable type.
pub const DEST_UNREACHABLE: u8 = 3;
/// Destination unreachable code: fragmentation needed and DF set (RFC 1191).
pub const CODE_FRAG_NEEDED: u8 = 4;
/// Destination unreachable code: host unreachable.
pub const CODE_HOST_UNREACHABLE: u8 = 1;
/// Destination unreachable code: communication administratively prohibited (RFC 1812).
pub const CODE_ADMIN_PROHIBITED: u8 = 13;
/// ICMP echo request type.
pub const ECHO_REQUEST: u8 = 8;
/// ICMP time exceeded type (code 0: TTL exceeded in transit).
pub const TIME_EXCEEDED: u8 = 11;
/// Bytes of IPv4 and ICMP header in front of an error's quote.
pub const ERROR_HEAD_LEN: usize = ipv4::MIN_HEADER_LEN + 8;
/// Longest quote of the offending packet: keeps errors within 576 bytes (RFC 1812 4.3.2.3).
pub const MAX_QUOTE: usize = 576 - ERROR_HEAD_LEN;

/// Turns the ICMP echo request in IPv4 packet `packet` (already checked with
/// [`ipv4::Ipv4::parse`]) into its reply, in place: addresses swapped, TTL reset to
/// `ttl`, type 0, both checksums updated. Fails if the ICMP checksum is wrong, and
/// leaves a refused packet as it was.
pub fn echo_request_to_reply(packet: &mut [u8], ttl: u8) -> Result<(), WireError> {
    let hl = usize::from(packet.first().ok_or(WireError::Truncated)? & 0xf) * 4;
    if hl < ipv4::MIN_HEADER_LEN {
        return Err(WireError::Malformed);
    }
    let (head, icmp) = packet
        .split_at_mut_checked(hl)
        .ok_or(WireError::Truncated)?;
    let head: &mut [u8; ipv4::MIN_HEADER_LEN] =
        head.first_chunk_mut().ok_or(WireError::Truncated)?;
    if icmp.len() < 8 {
        return Err(WireError::Truncated);
    }
    if checksum::checksum(icmp) != 0 {
        return Err(WireError::BadChecksum);
    }
    let (icmp, rest) = icmp
        .split_first_chunk_mut::<4>()
        .ok_or(WireError::Truncated)?;
    if icmp[0] != ECHO_REQUEST || icmp[1] != 0 {
        return Err(WireError::Malformed);
    }
    // Swapping source and destination leaves the header sum as it was.
    let [s0, s1, s2, s3] = [head[12], head[13], head[14], head[15]];
    head.copy_within(16..20, 12);
    head[16..20].copy_from_slice(&[s0, s1, s2, s3]);
    let old = u16::from_be_bytes([head[8], head[9]]);
    head[8] = ttl;
    let c = checksum::update16(
        u16::from_be_bytes([head[10], head[11]]),
        old,
        u16::from_be_bytes([head[8], head[9]]),
    );
    head[10..12].copy_from_slice(&c.to_be_bytes());
    icmp[0] = ECHO_REPLY;
    let c = match checksum::update16(
        u16::from_be_bytes([icmp[2], icmp[3]]),
        u16::from(ECHO_REQUEST) << 8,
        u16::from(ECHO_REPLY) << 8,
    ) {
        // A reply whose other bytes are all zero (identifier, sequence and data 0) sums
        // to +0, and its checksum is 0xffff; the update gives the other zero, which
        // receivers refuse (RFC 1624 section 3). Found by fuzzing.
        0 if rest.iter().all(|&b| b == 0) => 0xffff,
        c => c,
    };
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// An ICMP error message about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRepr {
    /// braid's address the error comes from.
    pub src: Ipv4Addr,
    /// The offending packet's source.
    pub dst: Ipv4Addr,
    pub icmp_type: u8,
    pub code: u8,
    /// The second word of the ICMP header (next-hop MTU in its low 16 bits for
    /// "fragmentation needed", else zero).
    pub rest: u32,
}

impl ErrorRepr {
    /// Writes the IPv4 and ICMP headers into `head`; `quote` (at most
    /// [`MAX_QUOTE`] bytes of the offending packet) follows them on the wire.
    pub fn emit(&self, head: &mut [u8; ERROR_HEAD_LEN], quote: &[u8]) {
        let quote = quote.get(..MAX_QUOTE).unwrap_or(quote);
        let repr = ipv4::Repr {
            src: self.src,
            dst: self.dst,
            protocol: ipv4::PROTO_ICMP,
            ttl: 64,
            ident: 0,
            dont_fragment: false,
            payload_len: (8 + quote.len()) as u16,
        };
        let Some((ip, icmp)) = head.split_first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>() else {
            return;
        };
        repr.emit(ip);
        let Some(icmp) = icmp.first_chunk_mut::<8>() else {
            return;
        };
        icmp[0] = self.icmp_type;
        icmp[1] = self.code;
        icmp[2] = 0;
        icmp[3] = 0;
        icmp[4..8].copy_from_slice(&self.rest.to_be_bytes());
        let c = checksum::finish(checksum::add(checksum::add(0, icmp), quote));
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_request() -> Vec<u8> {
        let payload = b"braid-ping";
        let mut p = vec![0u8; 28 + payload.len()];
        ipv4::Repr {
            src: Ipv4Addr::new(198, 18, 1, 2),
            dst: Ipv4Addr::new(198, 18, 1, 1),
            protocol: ipv4::PROTO_ICMP,
            ttl: 64,
            ident: 7,
            dont_fragment: true,
            payload_len: (8 + payload.len()) as u16,
        }
        .emit(p.first_chunk_mut().unwrap());
        p[20] = ECHO_REQUEST;
        p[24..28].copy_from_slice(&[0x12, 0x34, 0, 1]);
        p[28..].copy_from_slice(payload);
        let c = checksum::checksum(&p[20..]);
        p[22..24].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn echo_reply_in_place_is_valid() {
        let mut p = echo_request();
        echo_request_to_reply(&mut p, 64).unwrap();
        let (h, rest) = etherparse::Ipv4Header::from_slice(&p).unwrap();
        assert_eq!(h.calc_header_checksum(), h.header_checksum);
        assert_eq!(h.source, [198, 18, 1, 1]);
        assert_eq!(h.destination, [198, 18, 1, 2]);
        let icmp = etherparse::Icmpv4Slice::from_slice(rest).unwrap();
        assert_eq!(icmp.type_u8(), ECHO_REPLY);
        assert_eq!(checksum::checksum(rest), 0);
        assert_eq!(&rest[8..], b"braid-ping");
    }

    #[test]
    fn an_all_zero_echo_gets_a_reply_that_verifies() {
        // Identifier 0, sequence 0, no data: the reply's bytes sum to +0.
        let mut p = echo_request();
        p.truncate(28);
        p[2..4].copy_from_slice(&28u16.to_be_bytes());
        p[10] = 0;
        p[11] = 0;
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[22..28].fill(0);
        let c = checksum::checksum(&p[20..]);
        p[22..24].copy_from_slice(&c.to_be_bytes());
        echo_request_to_reply(&mut p, 64).unwrap();
        assert_eq!(&p[20..], &[0, 0, 0xff, 0xff, 0, 0, 0, 0]);
        assert_eq!(checksum::checksum(&p[20..]), 0);
    }

    #[test]
    fn echo_with_bad_checksum_is_refused() {
        let mut p = echo_request();
        p[30] ^= 1;
        assert_eq!(
            echo_request_to_reply(&mut p, 64),
            Err(WireError::BadChecksum)
        );
    }

    #[test]
    fn echo_with_a_short_header_length_is_refused_unchanged() {
        // IHL 4 (16 bytes): found by the wire fuzzer, it used to panic.
        for ihl in 0..5u8 {
            let mut p = echo_request();
            p[0] = 0x40 | ihl;
            let before = p.clone();
            assert_eq!(echo_request_to_reply(&mut p, 64), Err(WireError::Malformed));
            assert_eq!(p, before);
        }
        let mut short = echo_request()[..27].to_vec();
        assert_eq!(
            echo_request_to_reply(&mut short, 64),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn frag_needed_error_is_valid_and_quotes() {
        let orig = echo_request();
        let mut head = [0u8; ERROR_HEAD_LEN];
        ErrorRepr {
            src: Ipv4Addr::new(198, 18, 1, 1),
            dst: Ipv4Addr::new(198, 18, 1, 2),
            icmp_type: DEST_UNREACHABLE,
            code: CODE_FRAG_NEEDED,
            rest: 1440,
        }
        .emit(&mut head, &orig);
        let mut msg = head.to_vec();
        msg.extend_from_slice(&orig);
        let (h, rest) = etherparse::Ipv4Header::from_slice(&msg).unwrap();
        assert_eq!(h.calc_header_checksum(), h.header_checksum);
        assert_eq!(usize::from(h.total_len), msg.len());
        assert_eq!(checksum::checksum(rest), 0);
        let icmp = etherparse::Icmpv4Slice::from_slice(rest).unwrap();
        match icmp.icmp_type() {
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
            ) => assert_eq!(next_hop_mtu, 1440),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(&rest[8..], &orig[..]);
    }
}
