//! Packet formats: bounds-checked views and in-place rewrites of Ethernet, ARP,
//! IPv4, ICMP, UDP and TCP, and the Internet checksum (RFC 1071, RFC 1624).
//!
//! Views are checked once at construction; accessors then read fixed offsets that
//! the check proved present, so no packet can make them panic. Every access is
//! checked all the same (the lints below refuse indexing that could panic), so a
//! mistake in a proof costs a wrong value, never a dead worker.

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
pub mod udp;

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

/// Reads a big-endian u16 at `at` (0 past the end; callers have checked the bounds).
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    b.get(at..)
        .and_then(<[u8]>::first_chunk)
        .map_or(0, |w| u16::from_be_bytes(*w))
}

/// Reads an IPv4 address (4 bytes) at `at` (0.0.0.0 past the end; callers have
/// checked the bounds).
#[inline]
pub(crate) fn addr(b: &[u8], at: usize) -> std::net::Ipv4Addr {
    b.get(at..)
        .and_then(<[u8]>::first_chunk::<4>)
        .map_or(std::net::Ipv4Addr::UNSPECIFIED, |a| (*a).into())
}
