//! TCP headers (RFC 9293): a checked view of the fields a router touches, with
//! port rewrites and MSS clamping that keep the checksum valid incrementally.

use super::checksum::Delta;
use super::End;
use super::{get_u16, get_u8, replace_u16, update_u16, WireError};

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;
/// SYN flag.
pub const SYN: u8 = 0x02;

/// The header's fields.
mod field {
    use crate::wire::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    /// Data offset in words (high nibble).
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const CHECKSUM: Field = 16..18;
    /// The options of a header of `header_len` bytes.
    pub const fn options(header_len: usize) -> Field {
        super::HEADER_LEN..header_len
    }
}

/// Option kinds and lengths (RFC 9293 section 3.2).
mod option {
    /// End of the option list.
    pub const END: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Length of the MSS option: kind, length, 16-bit value.
    pub const MSS_LEN: usize = 4;
    /// Offset of the MSS value in its option.
    pub const MSS_VALUE: usize = 2;
}

/// A view of a TCP segment in any buffer. Made by [`Tcp::new_checked`], it is
/// checked: the 20-byte fixed header is present (the data offset is checked
/// where options are read). No accessor panics on any view; bytes missing
/// from an unchecked one read as zero.
#[derive(Debug, Clone)]
pub struct Tcp<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Tcp<T> {
    /// Views `buffer` as a TCP segment without any check.
    pub const fn new_unchecked(buffer: T) -> Tcp<T> {
        Tcp { buffer }
    }

    /// Views `buffer` as a TCP segment whose fixed header is present.
    pub fn new_checked(buffer: T) -> Result<Tcp<T>, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Tcp { buffer })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }
    /// The flags byte (CWR … FIN).
    pub fn flags(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::FLAGS)
    }
    /// Header length in bytes, from the data offset.
    pub fn header_len(&self) -> usize {
        usize::from(get_u8(self.buffer.as_ref(), field::DATA_OFF) >> 4) * 4
    }
    /// The options, or None when the data offset is below 20 bytes or past the buffer.
    pub fn options(&self) -> Option<&[u8]> {
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return None;
        }
        self.buffer.as_ref().get(field::options(hl))
    }

    /// Offset in the segment of the value of the first MSS option, if one is
    /// well formed and comes before any malformed option or the end of the list.
    fn mss_at(&self) -> Option<usize> {
        let opts = self.options()?;
        let mut at = 0;
        loop {
            match *opts.get(at)? {
                option::END => return None,
                option::NOP => at += 1,
                kind => {
                    let len = usize::from(*opts.get(at + 1)?);
                    if len < 2 || at + len > opts.len() {
                        return None;
                    }
                    if kind == option::MSS && len == option::MSS_LEN {
                        return Some(HEADER_LEN + at + option::MSS_VALUE);
                    }
                    at += len;
                }
            }
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tcp<T> {
    /// Sets the port on `end` and updates the checksum (if the buffer holds it)
    /// for it and for `pseudo`, a change of the pseudo-header (a rewritten
    /// address). Returns the change of the header's words.
    #[inline]
    pub(super) fn rewrite_port(&mut self, end: End, port: u16, pseudo: Delta) -> Delta {
        let b = self.buffer.as_mut();
        let f = match end {
            End::Src => field::SRC_PORT,
            End::Dst => field::DST_PORT,
        };
        let Some(old) = replace_u16(b, f, port) else {
            return Delta::default();
        };
        let change = Delta::word(old, port);
        let sum = change + pseudo;
        change + update_u16(b, field::CHECKSUM, |c| sum.apply(c)).unwrap_or_default()
    }

    /// Lowers the value of the MSS option (see [`Tcp::options`]) to `mss` if it
    /// is above, updating the checksum; true if it changed.
    pub fn clamp_mss(&mut self, mss: u16) -> bool {
        let Some(at) = self.mss_at() else {
            return false;
        };
        let b = self.buffer.as_mut();
        let value = at..at + 2;
        let old = get_u16(b, value.clone());
        if old <= mss || replace_u16(b, value, mss).is_none() {
            return false;
        }
        let change = if at.is_multiple_of(2) {
            Delta::word(old, mss)
        } else {
            // Misaligned options: the value's first byte is the low half of one
            // checksum word, its second the high half of the next.
            let ([o0, o1], [n0, n1]) = (old.to_be_bytes(), mss.to_be_bytes());
            Delta::word(o0.into(), n0.into()) + Delta::word(u16::from(o1) << 8, u16::from(n1) << 8)
        };
        update_u16(b, field::CHECKSUM, |c| change.apply(c));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 130);

    /// A SYN from port 40000 to 80 with options `opts` and a valid checksum.
    fn syn(opts: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut h = etherparse::TcpHeader::new(40000, 80, 7, 64240);
        h.syn = true;
        h.set_options_raw(opts).unwrap();
        h.checksum = h
            .calc_checksum_ipv4_raw(SRC.octets(), DST.octets(), payload)
            .unwrap();
        let mut out = h.to_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn checksum_ok(seg: &[u8]) -> bool {
        checksum::finish(checksum::add(
            checksum::pseudo_header(SRC, DST, 6, seg.len() as u16),
            seg,
        )) == 0
    }

    #[test]
    fn deconstruct_golden() {
        let seg = [
            0x9c, 0x40, 0, 80, 0, 0, 0, 7, 0, 0, 0, 0, 0x60, 0x02, 0xfa, 0xf0, 0x12, 0x34, 0, 0, 2,
            4, 0x05, 0xb4,
        ];
        let tcp = Tcp::new_checked(&seg[..]).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (40000, 80));
        assert_eq!(tcp.flags(), SYN);
        assert_eq!(tcp.header_len(), 24);
        assert_eq!(tcp.options(), Some(&[2, 4, 0x05, 0xb4][..]));
        assert_eq!(tcp.mss_at(), Some(22));
        assert_eq!(
            Tcp::new_checked(&seg[..19]).unwrap_err(),
            WireError::Truncated
        );
        // A data offset past the buffer or inside the fixed header: no options.
        assert_eq!(Tcp::new_checked(&seg[..23]).unwrap().options(), None);
        let mut low = seg;
        low[12] = 0x40;
        assert_eq!(Tcp::new_checked(&low[..]).unwrap().options(), None);
    }

    #[test]
    fn option_walk_stops_at_the_end_and_at_malformed_options() {
        for (opts, at) in [
            (&[1, 1, 2, 4, 5, 0xb4][..], Some(24)),
            (&[1, 2, 4, 5, 0xb4, 1, 1, 0], Some(23)),
            (&[0, 0, 2, 4, 5, 0xb4, 0, 0], None),
            (&[8, 1, 2, 4, 5, 0xb4, 0, 0], None),
            (&[3, 3, 1, 2, 3, 1, 1, 1], None),
            (&[2, 3, 0, 2, 4, 5, 0xb4, 0], Some(25)),
            (&[4, 2, 2, 4, 5, 0xb4, 0, 0], Some(24)),
        ] {
            let mut padded = opts.to_vec();
            padded.resize(opts.len().next_multiple_of(4), 0);
            let seg = syn(&padded, &[]);
            assert_eq!(Tcp::new_checked(&seg[..]).unwrap().mss_at(), at, "{opts:?}");
        }
    }

    proptest! {
        #[test]
        fn setters_keep_the_checksum_valid(
            lead in 0usize..3,
            value in any::<u16>(),
            mss in any::<u16>(),
            ports in any::<(u16, u16)>(),
            payload in proptest::collection::vec(any::<u8>(), 0..9),
        ) {
            // NOPs in front put the MSS option at any alignment.
            let mut opts = vec![1; lead];
            opts.extend_from_slice(&[2, 4]);
            opts.extend_from_slice(&value.to_be_bytes());
            opts.resize(8, 0);
            let mut seg = syn(&opts, &payload);
            let mut tcp = Tcp::new_checked(&mut seg[..]).unwrap();
            prop_assert_eq!(tcp.clamp_mss(mss), value > mss);
            tcp.rewrite_port(End::Src, ports.0, Delta::default());
            tcp.rewrite_port(End::Dst, ports.1, Delta::default());
            prop_assert_eq!((tcp.src_port(), tcp.dst_port()), ports);
            prop_assert!(checksum_ok(&seg));
            let (h, _) = etherparse::TcpHeader::from_slice(&seg).unwrap();
            let first = h.options_iterator().map(Result::unwrap)
                .find(|o| *o != etherparse::TcpOptionElement::Noop);
            prop_assert_eq!(first, Some(etherparse::TcpOptionElement::MaximumSegmentSize(value.min(mss))));
        }

        #[test]
        fn accessors_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let tcp = Tcp::new_unchecked(&data[..]);
            let _ = (tcp.src_port(), tcp.dst_port(), tcp.flags(), tcp.options());
            let _ = tcp.mss_at();
            let mut copy = data.clone();
            let changed = Tcp::new_unchecked(&mut copy[..]).clamp_mss(536);
            prop_assert_eq!(changed, copy != data);
        }
    }
}
