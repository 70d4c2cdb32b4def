//! UDP headers (RFC 768): a checked view and the header braid emits.

use super::{be16, WireError};

/// Length of a UDP header.
pub const HEADER_LEN: usize = 8;

/// A checked UDP datagram: a header whose length field covers it and fits the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Udp<T: AsRef<[u8]>> {
    b: T,
}

impl<T: AsRef<[u8]>> Udp<T> {
    /// Checks `b` as a UDP datagram.
    pub fn parse(b: T) -> Result<Udp<T>, WireError> {
        let bytes = b.as_ref();
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(be16(bytes, 4));
        if len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len > bytes.len() {
            return Err(WireError::Truncated);
        }
        Ok(Udp { b })
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.b.as_ref(), 0)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.b.as_ref(), 2)
    }
}

/// The destination port of the UDP header at the start of `payload`, read without
/// checking the rest of the header (None when fewer than 4 bytes).
pub fn dst_port_unchecked(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 4).then(|| be16(payload, 2))
}

/// The fields of a UDP header braid emits (checksum 0: allowed over IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    /// Length of what follows the header.
    pub payload_len: u16,
}

impl Repr {
    /// Writes the header.
    pub fn emit(&self, h: &mut [u8; HEADER_LEN]) {
        let len = self.payload_len.saturating_add(HEADER_LEN as u16);
        let [a, b] = self.src_port.to_be_bytes();
        let [c, d] = self.dst_port.to_be_bytes();
        let [e, f] = len.to_be_bytes();
        *h = [a, b, c, d, e, f, 0, 0];
    }
}
