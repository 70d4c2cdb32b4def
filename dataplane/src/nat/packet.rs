//! Reading a packet's session endpoint, and rewriting an endpoint in place with
//! incremental checksum updates (RFC 1624).

use super::hash::mix;
use super::ports::{owner_of_port, PortRange};
use super::session::{Dir, Proto};
use super::NatError;
use crate::wire::{addr, be16, icmp, ipv4::Ipv4};
use std::net::Ipv4Addr;
use std::ops::AddAssign;

/// ICMP parameter problem type (an error quoting the offending packet).
const PARAMETER_PROBLEM: u8 = 12;

/// A transport endpoint: protocol, address and port (for ICMP, the echo identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Transport protocol.
    pub proto: Proto,
    /// IPv4 address.
    pub addr: Ipv4Addr,
    /// Port, or ICMP echo identifier.
    pub port: u16,
}

/// The worker that must translate inside→outside packets of inside endpoint
/// `proto`/`addr`/`port`, so each inside endpoint has one mapping over all
/// workers. A port in the range goes to the worker owning that outside port,
/// which lets the mapping keep it; other ports go by a hash of the endpoint.
pub fn owner_of_inside(
    proto: Proto,
    addr: Ipv4Addr,
    port: u16,
    range: PortRange,
    workers: usize,
) -> usize {
    if workers == 0 {
        return 0;
    }
    if range.contains(port) {
        return owner_of_port(port, range, workers);
    }
    let key = u64::from(u32::from(addr)) << 32 | u64::from(port) << 8 | u64::from(proto.number());
    (mix(key) % workers as u64) as usize
}

/// The inside endpoint an inside→outside packet belongs to (for an ICMP error,
/// the destination of the packet it quotes). Route the packet to
/// [`owner_of_inside`] of it.
pub fn outbound_endpoint(packet: &[u8]) -> Result<Endpoint, NatError> {
    parse(packet, Dir::Out).map(|p| p.ep)
}

/// The outside endpoint an outside→inside packet is for (for an ICMP error, the
/// source of the packet it quotes). Route the packet to [`owner_of_port`] of its port.
pub fn inbound_endpoint(packet: &[u8]) -> Result<Endpoint, NatError> {
    parse(packet, Dir::In).map(|p| p.ep)
}

/// The side of a header an endpoint sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Src,
    Dst,
}

/// What a packet is to the NAT.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// TCP, UDP or ICMP echo: the endpoint is in the packet's own headers.
    Flow { tcp_flags: u8 },
    /// An ICMP error: the endpoint is in the quoted packet, which starts at byte
    /// `quote` and has a header of `qhl` bytes.
    Error { quote: usize, qhl: usize },
}

/// A packet checked for translation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parsed {
    /// Length of the IPv4 packet (without link padding).
    pub(crate) total: usize,
    /// IPv4 header length.
    pub(crate) hl: usize,
    pub(crate) kind: Kind,
    /// The session's endpoint on the side the packet names: inside for `Out`,
    /// outside for `In`.
    pub(crate) ep: Endpoint,
}

/// Byte offset of the port (or echo identifier) on `side` in a transport header.
fn port_at(proto: Proto, side: Side) -> usize {
    match (proto, side) {
        (Proto::Icmp, _) => 4,
        (_, Side::Src) => 0,
        (_, Side::Dst) => 2,
    }
}

/// Byte offset of the address on `side` in an IPv4 header.
fn addr_at(side: Side) -> usize {
    match side {
        Side::Src => 12,
        Side::Dst => 16,
    }
}

/// The endpoint on `side` of the IPv4 packet at the start of `b`, whose header
/// (`hl` bytes) and first 8 transport bytes the caller has checked are present.
fn endpoint(b: &[u8], hl: usize, proto: Proto, side: Side) -> Endpoint {
    let at = addr_at(side);
    Endpoint {
        proto,
        addr: addr(b, at),
        port: be16(b, hl + port_at(proto, side)),
    }
}

/// Checks `packet` for translation in direction `dir` and finds its endpoint.
pub(crate) fn parse(packet: &[u8], dir: Dir) -> Result<Parsed, NatError> {
    let ip = Ipv4::parse(packet).map_err(|_| NatError::Malformed)?;
    let proto = Proto::from_number(ip.protocol()).ok_or(NatError::Unsupported)?;
    if ip.is_fragment() {
        return Err(NatError::Fragment);
    }
    let (b, hl, l4) = (ip.bytes(), ip.header_len(), ip.payload());
    let need = if proto == Proto::Tcp { 20 } else { 8 };
    if l4.len() < need {
        return Err(NatError::Malformed);
    }
    let side = match dir {
        Dir::Out => Side::Src,
        Dir::In => Side::Dst,
    };
    let flow = |tcp_flags| Parsed {
        total: b.len(),
        hl,
        kind: Kind::Flow { tcp_flags },
        ep: endpoint(b, hl, proto, side),
    };
    match proto {
        Proto::Tcp => Ok(flow(l4.get(13).copied().unwrap_or(0))),
        Proto::Udp => Ok(flow(0)),
        Proto::Icmp => match (l4.first().copied().unwrap_or(0), dir) {
            (icmp::ECHO_REQUEST, Dir::Out) | (icmp::ECHO_REPLY, Dir::In) => Ok(flow(0)),
            (icmp::DEST_UNREACHABLE | icmp::TIME_EXCEEDED | PARAMETER_PROBLEM, _) => {
                parse_error(b, hl, dir)
            }
            _ => Err(NatError::Unsupported),
        },
    }
}

/// Checks the packet an ICMP error quotes: an IPv4 header and at least 8 bytes of
/// a first (or only) fragment of TCP, UDP or an ICMP echo that went the other way.
fn parse_error(b: &[u8], hl: usize, dir: Dir) -> Result<Parsed, NatError> {
    let quote = hl + 8;
    let q = b.get(quote..).ok_or(NatError::Malformed)?;
    let first = *q.first().ok_or(NatError::Malformed)?;
    let qhl = usize::from(first & 0xf) * 4;
    if first >> 4 != 4 || qhl < 20 || q.len() < qhl + 8 {
        return Err(NatError::Malformed);
    }
    if be16(q, 6) & 0x1fff != 0 {
        return Err(NatError::Unsupported);
    }
    let qproto = q
        .get(9)
        .and_then(|&n| Proto::from_number(n))
        .ok_or(NatError::Unsupported)?;
    // Errors about inbound packets went out, and quote packets that came in.
    let (side, echo) = match dir {
        Dir::In => (Side::Src, icmp::ECHO_REQUEST),
        Dir::Out => (Side::Dst, icmp::ECHO_REPLY),
    };
    if qproto == Proto::Icmp && q.get(qhl) != Some(&echo) {
        return Err(NatError::Unsupported);
    }
    Ok(Parsed {
        total: b.len(),
        hl,
        kind: Kind::Error { quote, qhl },
        ep: endpoint(q, qhl, qproto, side),
    })
}

/// A sum of 16-bit word changes (`~old + new` for each), applied to a checksum
/// as in RFC 1624 equation 3: `HC' = ~(~HC + sum)`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Delta(u64);

impl AddAssign for Delta {
    fn add_assign(&mut self, other: Delta) {
        self.0 += other.0;
    }
}

impl Delta {
    /// The checksum `csum` after the changes.
    pub(crate) fn apply(self, csum: u16) -> u16 {
        let mut acc = u64::from(!csum) + self.0;
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(acc as u16)
    }
}

/// The big-endian word at `at` in `b`, if present.
pub(crate) fn get16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..)
        .and_then(<[u8]>::first_chunk)
        .map(|w| u16::from_be_bytes(*w))
}

/// Writes `new` as the word at `at` (if present) and returns the change.
pub(crate) fn set16(b: &mut [u8], at: usize, new: u16) -> Delta {
    match b.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<2>) {
        Some(w) => {
            let old = u16::from_be_bytes(*w);
            *w = new.to_be_bytes();
            Delta(u64::from(!old) + u64::from(new))
        }
        None => Delta::default(),
    }
}

/// Sets the address on `side` of the IPv4 header at the start of `b` and fixes
/// the header checksum. Returns the change of the address words alone and the
/// change of all the header's words.
pub(crate) fn set_addr(b: &mut [u8], side: Side, new: Ipv4Addr) -> (Delta, Delta) {
    let at = addr_at(side);
    let o = new.octets();
    let mut addr = set16(b, at, u16::from_be_bytes([o[0], o[1]]));
    addr += set16(b, at + 2, u16::from_be_bytes([o[2], o[3]]));
    let mut all = addr;
    if let Some(old) = get16(b, 10) {
        all += set16(b, 10, addr.apply(old));
    }
    (addr, all)
}

/// Sets the endpoint on `side` of the IPv4 packet at the start of `b` (header of
/// `hl` bytes, then at least 8 transport bytes, possibly no more: a quote). Fixes
/// the header checksum and the transport checksum if `b` holds it; a zero UDP
/// checksum (none) stays zero. Returns the change of the sum of `b`'s words.
pub(crate) fn set_endpoint(b: &mut [u8], hl: usize, side: Side, ep: Endpoint) -> Delta {
    let (addr, mut all) = set_addr(b, side, ep.addr);
    let port = set16(b, hl + port_at(ep.proto, side), ep.port);
    all += port;
    let (csum_at, pseudo) = match ep.proto {
        Proto::Tcp => (16, true),
        Proto::Udp => (6, true),
        Proto::Icmp => (2, false),
    };
    let at = hl + csum_at;
    match get16(b, at) {
        Some(0) if ep.proto == Proto::Udp => {}
        Some(old) => {
            let mut change = port;
            if pseudo {
                change += addr;
            }
            let new = match change.apply(old) {
                0 if ep.proto == Proto::Udp => 0xffff,
                c => c,
            };
            all += set16(b, at, new);
        }
        None => {}
    }
    all
}
