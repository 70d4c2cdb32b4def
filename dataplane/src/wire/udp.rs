//! UDP headers (RFC 768): a checked view whose port setters keep the checksum
//! valid incrementally, and the header braid emits.

use super::checksum::Delta;
use super::End;
use super::{get_u16, replace_u16, update_u16, WireError};

/// Length of a UDP header.
pub const HEADER_LEN: usize = 8;

/// The header's fields.
mod field {
    use crate::wire::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    /// Length of the header and payload.
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    /// The payload of a datagram of `len` bytes.
    pub const fn payload(len: usize) -> crate::wire::Field {
        super::HEADER_LEN..len
    }
}

/// A view of a UDP datagram in any buffer. Made by [`Udp::new_checked`], it is
/// checked: a length field of at least 8 that fits in the buffer. No accessor
/// panics on any view; bytes missing from an unchecked one read as zero.
#[derive(Debug, Clone)]
pub struct Udp<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Udp<T> {
    /// Views `buffer` as a UDP datagram without any check.
    pub const fn new_unchecked(buffer: T) -> Udp<T> {
        Udp { buffer }
    }

    /// Views `buffer` as a UDP datagram, checked with [`Udp::check_len`].
    pub fn new_checked(buffer: T) -> Result<Udp<T>, WireError> {
        let udp = Udp::new_unchecked(buffer);
        udp.check_len()?;
        Ok(udp)
    }

    /// Checks that the header is present, and the length field covers it and
    /// fits in the buffer (which may hold more: padding).
    pub fn check_len(&self) -> Result<(), WireError> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len > have {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }
    /// Length of the header and payload (the field: a view is not a collection).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }
    /// Checksum field (0: none).
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// The payload: the bytes after the header up to the length field.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.len()).min(b.len());
        b.get(field::payload(end)).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Udp<T> {
    /// Sets the source port; a checksum other than 0 (none) is updated.
    pub fn set_src_port(&mut self, port: u16) {
        self.rewrite_port(End::Src, port, Delta::default());
    }

    /// Sets the destination port; a checksum other than 0 (none) is updated.
    pub fn set_dst_port(&mut self, port: u16) {
        self.rewrite_port(End::Dst, port, Delta::default());
    }

    /// Sets the port on `end` and updates a checksum other than 0 for it and for
    /// `pseudo`, a change of the pseudo-header (a rewritten address). Returns
    /// the change of the header's words.
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
        let mut change = Delta::word(old, port);
        if get_u16(b, field::CHECKSUM) != 0 {
            let sum = change + pseudo;
            // A sum that comes out 0 is sent as all ones: 0 means no checksum.
            let new = |c| match sum.apply(c) {
                0 => 0xffff,
                c => c,
            };
            change += update_u16(b, field::CHECKSUM, new).unwrap_or_default();
        }
        change
    }
}

/// The fields of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of what follows the header (at most 65527).
    pub payload_len: u16,
}

impl Repr {
    /// Reads the header of `udp`, which it checks; refuses destination port 0.
    /// The checksum is not verified (that needs the IPv4 addresses).
    pub fn parse<T: AsRef<[u8]>>(udp: &Udp<T>) -> Result<Repr, WireError> {
        udp.check_len()?;
        if udp.dst_port() == 0 {
            return Err(WireError::Malformed);
        }
        Ok(Repr {
            src_port: udp.src_port(),
            dst_port: udp.dst_port(),
            payload_len: udp.len().saturating_sub(HEADER_LEN as u16),
        })
    }

    /// Writes the header with checksum 0 (none, allowed over IPv4: braid's
    /// tunnel relies on its AEAD tag).
    pub fn emit(&self, h: &mut [u8; HEADER_LEN]) {
        let b = h.as_mut_slice();
        replace_u16(b, field::SRC_PORT, self.src_port);
        replace_u16(b, field::DST_PORT, self.dst_port);
        let len = self.payload_len.saturating_add(HEADER_LEN as u16);
        replace_u16(b, field::LENGTH, len);
        replace_u16(b, field::CHECKSUM, 0);
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

    /// Port 49153 to 7420, 4 bytes of payload, no checksum.
    const GOLDEN: [u8; 12] = [0xc0, 0x01, 0x1c, 0xfc, 0, 12, 0, 0, 1, 2, 3, 4];

    /// The checksum of `d` (header and payload) over the pseudo-header of SRC, DST.
    fn full_checksum(d: &[u8]) -> u16 {
        let mut d = d.to_vec();
        d[6..8].fill(0);
        let c = checksum::finish(checksum::add(
            checksum::pseudo_header(SRC, DST, 17, d.len() as u16),
            &d,
        ));
        if c == 0 {
            0xffff
        } else {
            c
        }
    }

    #[test]
    fn deconstruct_golden() {
        let udp = Udp::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(udp.src_port(), 49153);
        assert_eq!(udp.dst_port(), 7420);
        assert_eq!(udp.len(), 12);
        assert_eq!(udp.checksum(), 0);
        assert_eq!(udp.payload(), &[1, 2, 3, 4]);
        assert_eq!(
            Repr::parse(&udp),
            Ok(Repr {
                src_port: 49153,
                dst_port: 7420,
                payload_len: 4
            })
        );
        let (h, rest) = etherparse::UdpHeader::from_slice(&GOLDEN).unwrap();
        assert_eq!(
            (h.source_port, h.destination_port, h.length),
            (49153, 7420, 12)
        );
        assert_eq!(rest, &[1, 2, 3, 4]);
    }

    #[test]
    fn emit_golden() {
        let mut h = [0xaa; HEADER_LEN];
        Repr {
            src_port: 49153,
            dst_port: 7420,
            payload_len: 4,
        }
        .emit(&mut h);
        assert_eq!(h, GOLDEN[..HEADER_LEN]);
    }

    #[test]
    fn padding_is_not_payload_and_bad_lengths_are_refused() {
        let mut padded = GOLDEN.to_vec();
        padded.extend_from_slice(&[0xee; 3]);
        assert_eq!(
            Udp::new_checked(&padded[..]).unwrap().payload(),
            &[1, 2, 3, 4]
        );
        let mut short = GOLDEN;
        short[5] = 7;
        assert_eq!(
            Udp::new_checked(&short[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut port0 = GOLDEN;
        port0[2..4].fill(0);
        assert_eq!(
            Repr::parse(&Udp::new_unchecked(&port0[..])),
            Err(WireError::Malformed)
        );
        // Unchecked views of short buffers read zeros and never panic.
        let udp = Udp::new_unchecked(&GOLDEN[..3]);
        assert_eq!((udp.src_port(), udp.dst_port()), (49153, 0x1c00));
        assert!(udp.payload().is_empty());
    }

    #[test]
    fn port_setters_update_a_checksum_and_leave_none_alone() {
        let mut d = GOLDEN;
        let mut udp = Udp::new_unchecked(&mut d[..]);
        udp.set_src_port(1);
        udp.set_dst_port(2);
        assert_eq!(udp.checksum(), 0);
        let c = full_checksum(&d);
        d[6..8].copy_from_slice(&c.to_be_bytes());
        let mut udp = Udp::new_unchecked(&mut d[..]);
        udp.set_src_port(40000);
        udp.set_dst_port(53);
        assert_eq!((udp.src_port(), udp.dst_port()), (40000, 53));
        assert_eq!(udp.checksum(), full_checksum(&d));
    }

    fn repr() -> impl Strategy<Value = Repr> {
        (any::<u16>(), 1..=u16::MAX, 0u16..600).prop_map(|(src_port, dst_port, payload_len)| Repr {
            src_port,
            dst_port,
            payload_len,
        })
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips(r in repr(), fill in any::<u8>()) {
            let mut d = vec![fill; HEADER_LEN + usize::from(r.payload_len)];
            r.emit(d.first_chunk_mut().unwrap());
            let udp = Udp::new_checked(&d[..]).unwrap();
            prop_assert_eq!(Repr::parse(&udp), Ok(r));
            prop_assert_eq!(udp.payload().len(), usize::from(r.payload_len));
            let (h, _) = etherparse::UdpHeader::from_slice(&d).unwrap();
            prop_assert_eq!((h.source_port, h.destination_port), (r.src_port, r.dst_port));
            prop_assert_eq!((h.length, h.checksum), (r.payload_len + 8, 0));
        }

        #[test]
        fn every_truncated_length_is_refused(r in repr()) {
            let mut d = vec![0; HEADER_LEN + usize::from(r.payload_len)];
            r.emit(d.first_chunk_mut().unwrap());
            for len in 0..d.len() {
                prop_assert_eq!(Udp::new_checked(&d[..len]).unwrap_err(), WireError::Truncated);
                prop_assert!(Repr::parse(&Udp::new_unchecked(&d[..len])).is_err());
            }
        }

        #[test]
        fn port_setters_match_a_full_computation(
            payload in proptest::collection::vec(any::<u8>(), 0..40),
            ports in any::<(u16, u16, u16, u16)>(),
        ) {
            let mut d = vec![0; HEADER_LEN];
            Repr { src_port: ports.0, dst_port: ports.1, payload_len: payload.len() as u16 }
                .emit(d.first_chunk_mut().unwrap());
            d.extend_from_slice(&payload);
            let c = full_checksum(&d);
            d[6..8].copy_from_slice(&c.to_be_bytes());
            let mut udp = Udp::new_checked(&mut d[..]).unwrap();
            udp.set_src_port(ports.2);
            udp.set_dst_port(ports.3);
            let c = udp.checksum();
            prop_assert_eq!(c, full_checksum(&d));
        }

        #[test]
        fn parse_never_panics_and_agrees_with_etherparse(data in proptest::collection::vec(any::<u8>(), 0..24)) {
            let udp = Udp::new_unchecked(&data[..]);
            let _ = (udp.src_port(), udp.dst_port(), udp.len(), udp.checksum(), udp.payload());
            if let Ok(udp) = Udp::new_checked(&data[..]) {
                let (h, _) = etherparse::UdpHeader::from_slice(&data).unwrap();
                prop_assert_eq!((h.source_port, h.destination_port), (udp.src_port(), udp.dst_port()));
                prop_assert_eq!(udp.payload().len(), usize::from(h.length) - HEADER_LEN);
            }
        }
    }
}
