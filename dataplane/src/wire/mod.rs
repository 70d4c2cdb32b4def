//! Packet formats: bounds-checked views and in-place rewrites of Ethernet, ARP,
//! IPv4, ICMP, UDP and TCP, and the Internet checksum (RFC 1071, RFC 1624).
//! No byte offset of a header is needed outside this module.
//!
//! Each header has a view over its bytes (`ipv4::Ipv4`, `udp::Udp`, …) whose
//! private `mod field` names the byte ranges. A view made by `parse` or
//! `new_checked` is checked once; accessors then read fields the check proved
//! present. Every access is checked all the same (the lints below refuse
//! indexing that could panic): on an unchecked view, or after a mistake in a
//! proof, missing bytes read as zero and writes that do not fit are dropped, so
//! no packet can make a view panic. Setters keep checksums valid incrementally;
//! a `Repr` holds a header's fields and emits it.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod l4;
pub mod tcp;
pub mod udp;

/// One end of a packet: its source or its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The source address and port.
    Src,
    /// The destination address and port.
    Dst,
}

/// A 48-bit Ethernet address.
pub type Mac = [u8; 6];

/// The broadcast Ethernet address.
pub const BROADCAST: Mac = [0xff; 6];

/// Why bytes could not be read as a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header (or its stated length) needs.
    Truncated,
    /// A field holds a value this format does not allow.
    Malformed,
    /// A checksum does not verify.
    BadChecksum,
}

/// Where a multi-byte field sits in its header: a byte range (single bytes are
/// named by their offset). Each view names its fields in a private `mod field`.
type Field = std::ops::Range<usize>;

/// `N` bytes of `b` from `at`; bytes past the end of `b` read as zero.
fn read<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let rest = b.get(at..).unwrap_or(&[]);
    if let Some(w) = rest.first_chunk::<N>() {
        return *w;
    }
    let mut out = [0; N];
    for (o, v) in out.iter_mut().zip(rest) {
        *o = *v;
    }
    out
}

/// Writes `new` at `at` of `b` if it fits wholly and returns what it replaced;
/// a field that does not fit is left alone.
fn replace<const N: usize>(b: &mut [u8], at: usize, new: [u8; N]) -> Option<[u8; N]> {
    let w = b.get_mut(at..)?.first_chunk_mut::<N>()?;
    Some(std::mem::replace(w, new))
}

/// The byte at `at` (0 past the end).
fn get_u8(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// Writes the byte at `at` (if present).
fn set_u8(b: &mut [u8], at: usize, v: u8) {
    if let Some(x) = b.get_mut(at) {
        *x = v;
    }
}

/// The big-endian u16 in `f` (missing bytes read as 0).
fn get_u16(b: &[u8], f: Field) -> u16 {
    u16::from_be_bytes(read(b, f.start))
}

/// Writes the big-endian u16 in `f` if it fits and returns the old value.
fn replace_u16(b: &mut [u8], f: Field, v: u16) -> Option<u16> {
    replace(b, f.start, v.to_be_bytes()).map(u16::from_be_bytes)
}

/// Replaces the big-endian u16 `old` in `f` with `op(old)` if the field is present
/// and returns the change, for a checksum that covers it.
#[inline]
fn update_u16(b: &mut [u8], f: Field, op: impl FnOnce(u16) -> u16) -> Option<checksum::Delta> {
    let w = b.get_mut(f.start..)?.first_chunk_mut::<2>()?;
    let old = u16::from_be_bytes(*w);
    let new = op(old);
    *w = new.to_be_bytes();
    Some(checksum::Delta::word(old, new))
}

/// The IPv4 address in `f` (missing bytes read as 0).
fn get_addr(b: &[u8], f: Field) -> std::net::Ipv4Addr {
    read::<4>(b, f.start).into()
}
