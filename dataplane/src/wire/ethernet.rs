//! Ethernet II headers.

use super::{get_u16, read, replace, replace_u16, Mac, WireError};

/// Length of an Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// The header's fields.
mod field {
    use crate::wire::Field;

    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
}

/// The fields of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Destination address.
    pub dst: Mac,
    /// Source address.
    pub src: Mac,
    /// Type of the payload.
    pub ethertype: u16,
}

impl Header {
    /// Reads the header at the start of `frame`.
    pub fn parse(frame: &[u8]) -> Result<Header, WireError> {
        if frame.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Header {
            dst: read(frame, field::DST.start),
            src: read(frame, field::SRC.start),
            ethertype: get_u16(frame, field::ETHERTYPE),
        })
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8; HEADER_LEN]) {
        let b = buf.as_mut_slice();
        replace(b, field::DST.start, self.dst);
        replace(b, field::SRC.start, self.src);
        replace_u16(b, field::ETHERTYPE, self.ethertype);
    }
}

/// Writes an Ethernet header at the start of `frame`; false if it is too short.
pub fn write(frame: &mut [u8], dst: Mac, src: Mac, ethertype: u16) -> bool {
    match frame.first_chunk_mut::<HEADER_LEN>() {
        Some(h) => {
            Header {
                dst,
                src,
                ethertype,
            }
            .emit(h);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit_round_trip() {
        let bytes = [
            1, 2, 3, 4, 5, 6, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x08, 0x00, 0x45,
        ];
        let h = Header::parse(&bytes).unwrap();
        assert_eq!(h.dst, [1, 2, 3, 4, 5, 6]);
        assert_eq!(h.src, [0xa, 0xb, 0xc, 0xd, 0xe, 0xf]);
        assert_eq!(h.ethertype, ETHERTYPE_IPV4);
        let mut out = [0u8; 15];
        assert!(write(&mut out, h.dst, h.src, h.ethertype));
        assert_eq!(out[..14], bytes[..14]);
        assert_eq!(Header::parse(&bytes[..13]), Err(WireError::Truncated));
    }
}
