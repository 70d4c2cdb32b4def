//! IPv4 headers (RFC 791): a checked read view, a writable view whose setters
//! keep the header checksum valid incrementally, and the header braid emits.

use super::checksum::{self, Delta};
use super::{get_addr, get_u16, get_u8, read, replace, replace_u16, set_u8, update_u16, WireError};
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

/// The header's fields.
mod field {
    use crate::wire::Field;

    /// Version (high nibble) and header length in words (low nibble).
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    /// Flags (high 3 bits) and fragment offset.
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    /// The word holding the TTL and the protocol, for checksum updates.
    pub const TTL_PROTO: Field = 8..10;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Don't-fragment flag in [`field::FLG_OFF`].
const DF: u16 = 0x4000;
/// More-fragments flag in [`field::FLG_OFF`].
const MF: u16 = 0x2000;
/// Fragment offset in [`field::FLG_OFF`].
const OFFSET: u16 = 0x1fff;

/// Bytes the ICMP quote of a packet must hold past its IPv4 header (RFC 792).
const QUOTED_L4_LEN: usize = 8;

/// A read view of an IPv4 packet. Made by [`Ipv4::parse`], it is checked:
/// version 4, a header length of at least 20 bytes, and a total length that
/// covers the header and fits in the buffer (the view ends there). No accessor
/// panics on any view; bytes missing from an unchecked one read as zero.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4<'a> {
    /// The packet (without link padding, once checked).
    b: &'a [u8],
    /// A copy of the fixed header (missing bytes zero), read once: the fields are
    /// then read at constant offsets of an array, with no bounds to check.
    h: [u8; MIN_HEADER_LEN],
}

impl<'a> Ipv4<'a> {
    /// Checks `bytes` (which may carry trailing link padding) as an IPv4 packet.
    #[inline]
    pub fn parse(bytes: &'a [u8]) -> Result<Ipv4<'a>, WireError> {
        if bytes.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let ip = Ipv4::new_unchecked(bytes);
        if ip.version() != 4 {
            return Err(WireError::Malformed);
        }
        let (hl, total) = (ip.header_len(), ip.total_len());
        if hl < MIN_HEADER_LEN || total < hl {
            return Err(WireError::Malformed);
        }
        let b = bytes.get(..total).ok_or(WireError::Truncated)?;
        Ok(Ipv4 { b, h: ip.h })
    }

    /// Checks `bytes` as the packet an ICMP error quotes: an IPv4 header of at
    /// least 20 bytes and 8 bytes after it (RFC 792). The total length is not
    /// checked (quotes are cut short): the view holds all of `bytes`.
    pub fn parse_quoted(bytes: &'a [u8]) -> Result<Ipv4<'a>, WireError> {
        let ip = Ipv4::new_unchecked(bytes);
        if bytes.is_empty() {
            return Err(WireError::Truncated);
        }
        if ip.version() != 4 {
            return Err(WireError::Malformed);
        }
        ip.check_header()?;
        if ip.payload().len() < QUOTED_L4_LEN {
            return Err(WireError::Truncated);
        }
        Ok(ip)
    }

    /// Views `bytes` as an IPv4 packet without any check.
    #[inline]
    pub fn new_unchecked(bytes: &'a [u8]) -> Ipv4<'a> {
        Ipv4 {
            b: bytes,
            h: read(bytes, 0),
        }
    }

    /// Checks the header length alone: at least 20 bytes, all present.
    fn check_header(&self) -> Result<(), WireError> {
        if self.b.is_empty() {
            return Err(WireError::Truncated);
        }
        if self.header_len() < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if self.b.len() < self.header_len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The packet's bytes (header and payload, without link padding).
    pub fn bytes(&self) -> &'a [u8] {
        self.b
    }
    /// IP version (4 in a checked view).
    fn version(&self) -> u8 {
        get_u8(&self.h, field::VER_IHL) >> 4
    }
    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(get_u8(&self.h, field::VER_IHL) & 0xf) * 4
    }
    /// Total length in bytes.
    pub fn total_len(&self) -> usize {
        usize::from(get_u16(&self.h, field::LENGTH))
    }
    /// Identification field.
    pub fn ident(&self) -> u16 {
        get_u16(&self.h, field::IDENT)
    }
    /// Don't Fragment flag.
    pub fn dont_fragment(&self) -> bool {
        get_u16(&self.h, field::FLG_OFF) & DF != 0
    }
    /// True for a fragment other than the first (its payload has no L4 header).
    pub fn is_later_fragment(&self) -> bool {
        get_u16(&self.h, field::FLG_OFF) & OFFSET != 0
    }
    /// True for any fragment (more-fragments set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        get_u16(&self.h, field::FLG_OFF) & (MF | OFFSET) != 0
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        get_u8(&self.h, field::TTL)
    }
    /// Protocol number of the payload.
    pub fn protocol(&self) -> u8 {
        get_u8(&self.h, field::PROTOCOL)
    }
    /// Differentiated Services Code Point (the six high bits of the second byte).
    pub fn dscp(&self) -> u8 {
        get_u8(&self.h, field::DSCP_ECN) >> 2
    }
    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(&self.h, field::CHECKSUM)
    }
    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        get_addr(&self.h, field::SRC_ADDR)
    }
    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        get_addr(&self.h, field::DST_ADDR)
    }
    /// True when the header checksum verifies.
    #[inline]
    pub fn checksum_ok(&self) -> bool {
        if self.header_len() == MIN_HEADER_LEN && self.b.len() >= MIN_HEADER_LEN {
            // The usual header, summed from the copy of fixed size (unrolled).
            return checksum::header20(&self.h) == 0;
        }
        self.b
            .get(..self.header_len())
            .is_some_and(|h| checksum::checksum(h) == 0)
    }
    /// The payload after the header (never inside the fixed 20 bytes).
    pub fn payload(&self) -> &'a [u8] {
        let hl = self.header_len().max(MIN_HEADER_LEN);
        self.b.get(hl..).unwrap_or(&[])
    }
}

/// A writable view of an IPv4 packet, checked like [`Ipv4`]. Its setters keep
/// the header checksum as valid as it was (RFC 1624), except
/// [`Ipv4Mut::set_total_len`], which can undo the check.
#[derive(Debug)]
pub struct Ipv4Mut<'a> {
    /// The packet (without link padding, once checked).
    b: &'a mut [u8],
}

impl<'a> Ipv4Mut<'a> {
    /// Checks `bytes` as [`Ipv4::parse`] does; the view ends with the packet.
    #[inline]
    pub fn parse(bytes: &'a mut [u8]) -> Result<Ipv4Mut<'a>, WireError> {
        let total = Ipv4::parse(bytes)?.bytes().len();
        let b = bytes.get_mut(..total).ok_or(WireError::Truncated)?;
        Ok(Ipv4Mut { b })
    }

    /// Checks `bytes` as [`Ipv4::parse_quoted`] does: the packet an ICMP error quotes.
    pub fn parse_quoted(bytes: &'a mut [u8]) -> Result<Ipv4Mut<'a>, WireError> {
        Ipv4::parse_quoted(bytes)?;
        Ok(Ipv4Mut { b: bytes })
    }

    /// Views `bytes` as an IPv4 packet without any check; setters leave fields
    /// that are not wholly present alone.
    pub fn new_unchecked(bytes: &'a mut [u8]) -> Ipv4Mut<'a> {
        Ipv4Mut { b: bytes }
    }

    /// Checks the header length alone: at least 20 bytes, all present (see
    /// [`Ipv4::check_header`]).
    pub(super) fn check_header(&self) -> Result<(), WireError> {
        self.view().check_header()
    }

    /// The packet's fields.
    #[inline]
    pub fn view(&self) -> Ipv4<'_> {
        Ipv4::new_unchecked(self.b)
    }

    /// Source address (read in place, without the copy [`Ipv4Mut::view`] makes).
    pub fn src(&self) -> Ipv4Addr {
        get_addr(self.b, field::SRC_ADDR)
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        get_addr(self.b, field::DST_ADDR)
    }

    /// Protocol number of the payload.
    pub fn protocol(&self) -> u8 {
        get_u8(self.b, field::PROTOCOL)
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.b, field::CHECKSUM)
    }

    /// The payload after the header, to rewrite in place.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.view().header_len().max(MIN_HEADER_LEN);
        self.b.get_mut(hl..).unwrap_or_default()
    }

    /// Applies `change` of the header's words to its checksum.
    fn update_checksum(&mut self, change: Delta) {
        update_u16(self.b, field::CHECKSUM, |c| change.apply(c));
    }

    /// Sets the TTL.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        let old = get_u16(self.b, field::TTL_PROTO);
        set_u8(self.b, field::TTL, ttl);
        let new = get_u16(self.b, field::TTL_PROTO);
        self.update_checksum(Delta::word(old, new));
    }

    /// Decrements the TTL (wrapping; check it first).
    #[inline]
    pub fn decrement_ttl(&mut self) {
        self.set_ttl(self.view().ttl().wrapping_sub(1));
    }

    /// Sets the Don't Fragment flag.
    pub fn set_dont_fragment(&mut self, df: bool) {
        let old = get_u16(self.b, field::FLG_OFF);
        let new = if df { old | DF } else { old & !DF };
        if replace_u16(self.b, field::FLG_OFF, new).is_some() {
            self.update_checksum(Delta::word(old, new));
        }
    }

    /// Sets the total length. The view keeps its bytes: a packet parsed again
    /// may be refused, or end elsewhere.
    pub fn set_total_len(&mut self, len: u16) {
        if let Some(old) = replace_u16(self.b, field::LENGTH, len) {
            self.update_checksum(Delta::word(old, len));
        }
    }

    /// Sets the source address.
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        self.set_addr(field::SRC_ADDR, addr);
    }

    /// Sets the destination address.
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        self.set_addr(field::DST_ADDR, addr);
    }

    /// Sets the address in `f`.
    fn set_addr(&mut self, f: super::Field, addr: Ipv4Addr) {
        self.replace_addr(f, addr);
    }

    /// Sets the address in `f` (if wholly present) and updates the checksum;
    /// returns the address it replaced and the change of the header's words
    /// (address and checksum), for a checksum that covers the header.
    #[inline]
    fn replace_addr(&mut self, f: super::Field, addr: Ipv4Addr) -> Option<(Ipv4Addr, Delta)> {
        let old = Ipv4Addr::from(replace(self.b, f.start, addr.octets())?);
        let change = Delta::addr(old, addr);
        let csum = update_u16(self.b, field::CHECKSUM, |c| change.apply(c)).unwrap_or_default();
        Some((old, change + csum))
    }

    /// [`Ipv4Mut::replace_addr`] of the source (`true`) or destination address.
    #[inline]
    pub(super) fn replace_src_or_dst(
        &mut self,
        src: bool,
        addr: Ipv4Addr,
    ) -> Option<(Ipv4Addr, Delta)> {
        let f = if src {
            field::SRC_ADDR
        } else {
            field::DST_ADDR
        };
        self.replace_addr(f, addr)
    }

    /// Swaps the source and destination addresses (which leaves the checksum as it was).
    pub fn swap_addrs(&mut self) {
        let (src, dst) = (self.src(), self.dst());
        replace(self.b, field::SRC_ADDR.start, dst.octets());
        replace(self.b, field::DST_ADDR.start, src.octets());
    }

    /// Computes the header checksum afresh and writes it.
    pub fn fill_checksum(&mut self) {
        replace_u16(self.b, field::CHECKSUM, 0);
        let hl = self.view().header_len();
        let c = self.b.get(..hl).map_or(0, checksum::checksum);
        replace_u16(self.b, field::CHECKSUM, c);
    }
}

/// Decrements the TTL of the IPv4 packet at the start of `packet` and updates its
/// header checksum incrementally. The packet must have passed [`Ipv4::parse`];
/// one shorter than 20 bytes is left alone.
#[inline]
pub fn decrement_ttl(packet: &mut [u8]) {
    if let Some(h) = packet.first_chunk_mut::<MIN_HEADER_LEN>() {
        Ipv4Mut::new_unchecked(h).decrement_ttl();
    }
}

/// The fields of an IPv4 header braid emits (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number of the payload.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification field.
    pub ident: u16,
    /// Don't Fragment flag.
    pub dont_fragment: bool,
    /// Length of what follows the header.
    pub payload_len: u16,
}

impl Repr {
    /// Writes a 20-byte header with its checksum.
    pub fn emit(&self, h: &mut [u8; MIN_HEADER_LEN]) {
        let b = h.as_mut_slice();
        set_u8(b, field::VER_IHL, 0x45);
        set_u8(b, field::DSCP_ECN, 0);
        let total = self.payload_len.saturating_add(MIN_HEADER_LEN as u16);
        replace_u16(b, field::LENGTH, total);
        replace_u16(b, field::IDENT, self.ident);
        replace_u16(b, field::FLG_OFF, if self.dont_fragment { DF } else { 0 });
        set_u8(b, field::TTL, self.ttl);
        set_u8(b, field::PROTOCOL, self.protocol);
        replace(b, field::SRC_ADDR.start, self.src.octets());
        replace(b, field::DST_ADDR.start, self.dst.octets());
        replace_u16(b, field::CHECKSUM, 0);
        let c = checksum::header20(h);
        replace_u16(h.as_mut_slice(), field::CHECKSUM, c);
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

    #[test]
    fn views_end_with_the_packet_and_quotes_need_eight_bytes() {
        let mut padded = sample();
        padded.extend_from_slice(&[0xee; 6]);
        assert_eq!(Ipv4::parse(&padded).unwrap().bytes().len(), 28);
        assert_eq!(Ipv4Mut::parse(&mut padded).unwrap().payload_mut().len(), 8);
        // A quote: the header says 28 bytes, 8 are there after the header, or fewer.
        let mut quote = sample();
        quote[2..4].copy_from_slice(&1500u16.to_be_bytes());
        assert_eq!(Ipv4::parse(&quote).unwrap_err(), WireError::Truncated);
        assert_eq!(Ipv4::parse_quoted(&quote).unwrap().payload().len(), 8);
        assert_eq!(
            Ipv4::parse_quoted(&quote[..27]).unwrap_err(),
            WireError::Truncated
        );
        quote[0] = 0x44;
        assert_eq!(
            Ipv4Mut::parse_quoted(&mut quote).unwrap_err(),
            WireError::Malformed
        );
    }

    #[test]
    fn setters_write_their_fields() {
        let mut p = sample();
        let mut ip = Ipv4Mut::parse(&mut p).unwrap();
        ip.set_src(Ipv4Addr::new(10, 1, 2, 3));
        ip.set_dst(Ipv4Addr::new(10, 4, 5, 6));
        ip.set_ttl(9);
        ip.set_dont_fragment(false);
        ip.swap_addrs();
        ip.set_total_len(24);
        let (h, _) = etherparse::Ipv4Header::from_slice(&p).unwrap();
        assert_eq!(h.source, [10, 4, 5, 6]);
        assert_eq!(h.destination, [10, 1, 2, 3]);
        assert_eq!(h.time_to_live, 9);
        assert!(!h.dont_fragment);
        assert_eq!(h.total_len, 24);
        assert_eq!(h.calc_header_checksum(), h.header_checksum);
    }

    #[test]
    fn unchecked_views_read_missing_bytes_as_zero_and_never_panic() {
        let p = sample();
        let ip = Ipv4::new_unchecked(&p[..14]);
        assert_eq!(ip.src(), Ipv4Addr::new(198, 18, 0, 0));
        assert_eq!(ip.dst(), Ipv4Addr::UNSPECIFIED);
        assert!(ip.payload().is_empty() && !ip.checksum_ok());
        let mut short = p[..11].to_vec();
        let mut w = Ipv4Mut::new_unchecked(&mut short);
        w.set_src(Ipv4Addr::BROADCAST);
        w.fill_checksum();
        w.set_ttl(1);
        let mut expect = p[..11].to_vec();
        expect[8] = 1;
        assert_eq!(short, expect);
    }

    /// A header with options, random fields and a valid checksum.
    fn header() -> impl Strategy<Value = Vec<u8>> {
        (0usize..=10, proptest::collection::vec(any::<u8>(), 64)).prop_map(|(words, mut b)| {
            let hl = 20 + 4 * words;
            b.truncate(hl + 4);
            b[0] = 0x40 | (hl / 4) as u8;
            let len = b.len() as u16;
            b[2..4].copy_from_slice(&len.to_be_bytes());
            Ipv4Mut::new_unchecked(&mut b).fill_checksum();
            b
        })
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

        #[test]
        fn setters_keep_the_checksum_valid(
            mut b in header(),
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            ttl in any::<u8>(),
            df in any::<bool>(),
            len in any::<u16>(),
        ) {
            let mut ip = Ipv4Mut::parse(&mut b).unwrap();
            ip.set_src(src.into());
            prop_assert!(ip.view().checksum_ok());
            ip.set_dst(dst.into());
            prop_assert!(ip.view().checksum_ok());
            ip.set_ttl(ttl);
            ip.decrement_ttl();
            prop_assert!(ip.view().checksum_ok());
            ip.set_dont_fragment(df);
            prop_assert!(ip.view().checksum_ok());
            prop_assert_eq!(ip.view().dont_fragment(), df);
            ip.swap_addrs();
            prop_assert!(ip.view().checksum_ok());
            prop_assert_eq!((ip.view().src(), ip.view().dst()), (dst.into(), src.into()));
            prop_assert_eq!(ip.view().ttl(), ttl.wrapping_sub(1));
            ip.set_total_len(len);
            prop_assert!(ip.view().checksum_ok());
            prop_assert_eq!(ip.view().total_len(), usize::from(len));
        }
    }
}
