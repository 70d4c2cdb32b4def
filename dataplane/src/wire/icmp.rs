//! ICMP (RFC 792): a checked view, echo replies made in place, error messages
//! quoting the packet that caused them, and rewrites of the quoted packet.

use super::checksum::{self, Delta};
use super::ipv4::{self, Ipv4Mut};
use super::{get_u16, get_u8, replace_u16, set_u8, update_u16, WireError};
use std::net::Ipv4Addr;

/// Length of an ICMP header.
pub const HEADER_LEN: usize = 8;
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
/// ICMP parameter problem type.
pub const PARAMETER_PROBLEM: u8 = 12;
/// Bytes of IPv4 and ICMP header in front of an error's quote.
pub const ERROR_HEAD_LEN: usize = ipv4::MIN_HEADER_LEN + HEADER_LEN;
/// Longest quote of the offending packet: keeps errors within 576 bytes (RFC 1812 4.3.2.3).
pub const MAX_QUOTE: usize = 576 - ERROR_HEAD_LEN;

/// The header's fields.
mod field {
    use crate::wire::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    /// The word holding the type and the code, for checksum updates.
    pub const TYPE_CODE: Field = 0..2;
    pub const CHECKSUM: Field = 2..4;
    /// Echo identifier.
    pub const IDENT: Field = 4..6;
    /// The second word: echo identifier and sequence, or an error's
    /// type-specific word (such as the next-hop MTU).
    pub const REST: Field = 4..8;
    /// Start of the data: an echo's payload, an error's quote.
    pub const DATA: usize = 8;
}

/// A view of an ICMP message in any buffer. Made by [`Icmp::new_checked`], it
/// is checked: the 8-byte header is present. No accessor panics on any view;
/// bytes missing from an unchecked one read as zero.
#[derive(Debug, Clone)]
pub struct Icmp<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmp<T> {
    /// Views `buffer` as an ICMP message without any check.
    pub const fn new_unchecked(buffer: T) -> Icmp<T> {
        Icmp { buffer }
    }

    /// Views `buffer` as an ICMP message whose header is present.
    pub fn new_checked(buffer: T) -> Result<Icmp<T>, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmp { buffer })
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::TYPE)
    }
    /// Message code.
    pub fn code(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::CODE)
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// True when the checksum over the whole buffer verifies.
    pub fn checksum_ok(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
    /// Identifier of an echo request or reply.
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }
    /// The data after the header: an echo's payload, or the packet an error quotes.
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA..).unwrap_or(&[])
    }
    /// True when every byte but the checksum's is zero.
    fn zero_but_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        let (head, rest) = (
            b.get(..field::CHECKSUM.start).unwrap_or(&[]),
            b.get(field::CHECKSUM.end..).unwrap_or(&[]),
        );
        head.iter().chain(rest).all(|&x| x == 0)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmp<T> {
    /// Sets the message type and updates the checksum.
    pub fn set_msg_type(&mut self, t: u8) {
        let b = self.buffer.as_mut();
        let old = get_u16(b, field::TYPE_CODE);
        set_u8(b, field::TYPE, t);
        let change = Delta::word(old, get_u16(b, field::TYPE_CODE));
        update_u16(b, field::CHECKSUM, |c| change.apply(c));
    }

    /// Sets the echo identifier and updates the checksum; returns the change of
    /// the header's words.
    pub(super) fn rewrite_ident(&mut self, ident: u16) -> Delta {
        let b = self.buffer.as_mut();
        let Some(old) = replace_u16(b, field::IDENT, ident) else {
            return Delta::default();
        };
        let change = Delta::word(old, ident);
        change + update_u16(b, field::CHECKSUM, |c| change.apply(c)).unwrap_or_default()
    }

    /// The data after the header (an error's quote), to rewrite in place.
    pub(super) fn data_mut(&mut self) -> Option<&mut [u8]> {
        self.buffer.as_mut().get_mut(field::DATA..)
    }

    /// Carries `change` of the message's words into its checksum.
    pub(super) fn add_to_checksum(&mut self, change: Delta) {
        update_u16(self.buffer.as_mut(), field::CHECKSUM, |c| change.apply(c));
    }
}

/// Turns the ICMP echo request in IPv4 packet `packet` (already checked with
/// [`ipv4::Ipv4::parse`]) into its reply, in place: addresses swapped, TTL reset to
/// `ttl`, type 0, both checksums updated. Fails if the ICMP checksum is wrong, and
/// leaves a refused packet as it was.
pub fn echo_request_to_reply(packet: &mut [u8], ttl: u8) -> Result<(), WireError> {
    let mut ip = Ipv4Mut::new_unchecked(packet);
    ip.check_header()?;
    let mut icmp = Icmp::new_checked(ip.payload_mut())?;
    if !icmp.checksum_ok() {
        return Err(WireError::BadChecksum);
    }
    if icmp.msg_type() != ECHO_REQUEST || icmp.code() != 0 {
        return Err(WireError::Malformed);
    }
    icmp.set_msg_type(ECHO_REPLY);
    // A reply whose other bytes are all zero (identifier, sequence and data 0) sums
    // to +0, and its checksum is 0xffff; the update gives the other zero, which
    // receivers refuse (RFC 1624 section 3). Found by fuzzing.
    if icmp.checksum() == 0 && icmp.zero_but_checksum() {
        replace_u16(icmp.buffer, field::CHECKSUM, 0xffff);
    }
    // Swapping source and destination leaves the header sum as it was.
    ip.swap_addrs();
    ip.set_ttl(ttl);
    Ok(())
}

/// An ICMP error message about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRepr {
    /// braid's address the error comes from.
    pub src: Ipv4Addr,
    /// The offending packet's source.
    pub dst: Ipv4Addr,
    /// Message type.
    pub icmp_type: u8,
    /// Message code.
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
            ttl: ipv4::DEFAULT_TTL,
            ident: 0,
            dont_fragment: false,
            payload_len: (HEADER_LEN + quote.len()) as u16,
        };
        let Some((ip, icmp)) = head.split_first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>() else {
            return;
        };
        repr.emit(ip);
        set_u8(icmp, field::TYPE, self.icmp_type);
        set_u8(icmp, field::CODE, self.code);
        replace_u16(icmp, field::CHECKSUM, 0);
        super::replace(icmp, field::REST.start, self.rest.to_be_bytes());
        let c = checksum::finish(checksum::add(checksum::add(0, icmp), quote));
        replace_u16(icmp, field::CHECKSUM, c);
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
