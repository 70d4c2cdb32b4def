//! Reading a packet's session endpoint: the packet's own, or for an ICMP error,
//! that of the packet it quotes.

use super::hash::mix;
use super::ports::{owner_of_port, PortRange};
use super::session::{Dir, Proto};
use super::NatError;
use crate::wire::icmp::{self, Icmp};
use crate::wire::ipv4::Ipv4;
use crate::wire::l4::{self, End};
use crate::wire::tcp::{self, Tcp};
use crate::wire::udp;
use std::net::Ipv4Addr;

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
    let ip = Ipv4::parse(packet).map_err(|_| NatError::Malformed)?;
    parse(&ip, Dir::Out).map(|p| p.ep)
}

/// The outside endpoint an outside→inside packet is for (for an ICMP error, the
/// source of the packet it quotes). Route the packet to [`owner_of_port`] of its port.
pub fn inbound_endpoint(packet: &[u8]) -> Result<Endpoint, NatError> {
    let ip = Ipv4::parse(packet).map_err(|_| NatError::Malformed)?;
    parse(&ip, Dir::In).map(|p| p.ep)
}

/// What a packet is to the NAT.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// TCP, UDP or ICMP echo: the endpoint is in the packet's own headers.
    Flow { tcp_flags: u8 },
    /// An ICMP error: the endpoint is in the packet it quotes.
    Error,
}

/// A packet checked for translation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parsed {
    pub(crate) kind: Kind,
    /// The session's endpoint on the side the packet names: inside for `Out`,
    /// outside for `In`.
    pub(crate) ep: Endpoint,
}

/// The endpoint on `end` of `ip`, a packet of protocol `proto`.
fn endpoint(ip: &Ipv4<'_>, proto: Proto, end: End) -> Endpoint {
    let (addr, port) = l4::endpoint(ip, end);
    Endpoint { proto, addr, port }
}

/// The end of a packet in direction `dir` that names the session's endpoint.
fn end_of(dir: Dir) -> End {
    match dir {
        Dir::Out => End::Src,
        Dir::In => End::Dst,
    }
}

/// Checks IPv4 packet `ip` for translation in direction `dir` and finds its endpoint.
#[inline]
pub(crate) fn parse(ip: &Ipv4<'_>, dir: Dir) -> Result<Parsed, NatError> {
    let proto = Proto::from_number(ip.protocol()).ok_or(NatError::Unsupported)?;
    if ip.is_fragment() {
        return Err(NatError::Fragment);
    }
    let l4 = ip.payload();
    let need = match proto {
        Proto::Tcp => tcp::HEADER_LEN,
        Proto::Udp => udp::HEADER_LEN,
        Proto::Icmp => icmp::HEADER_LEN,
    };
    if l4.len() < need {
        return Err(NatError::Malformed);
    }
    let flow = |tcp_flags| Parsed {
        kind: Kind::Flow { tcp_flags },
        ep: endpoint(ip, proto, end_of(dir)),
    };
    match proto {
        Proto::Tcp => Ok(flow(Tcp::new_unchecked(l4).flags())),
        Proto::Udp => Ok(flow(0)),
        Proto::Icmp => {
            let msg = Icmp::new_unchecked(l4);
            match (msg.msg_type(), dir) {
                (icmp::ECHO_REQUEST, Dir::Out) | (icmp::ECHO_REPLY, Dir::In) => Ok(flow(0)),
                (icmp::DEST_UNREACHABLE | icmp::TIME_EXCEEDED | icmp::PARAMETER_PROBLEM, _) => {
                    parse_error(msg.data(), dir)
                }
                _ => Err(NatError::Unsupported),
            }
        }
    }
}

/// Checks the packet an ICMP error quotes: an IPv4 header and at least 8 bytes of
/// a first (or only) fragment of TCP, UDP or an ICMP echo that went the other way.
fn parse_error(quote: &[u8], dir: Dir) -> Result<Parsed, NatError> {
    let q = Ipv4::parse_quoted(quote).map_err(|_| NatError::Malformed)?;
    if q.is_later_fragment() {
        return Err(NatError::Unsupported);
    }
    let qproto = Proto::from_number(q.protocol()).ok_or(NatError::Unsupported)?;
    // Errors about inbound packets went out, and quote packets that came in.
    let (end, echo) = match dir {
        Dir::In => (End::Src, icmp::ECHO_REQUEST),
        Dir::Out => (End::Dst, icmp::ECHO_REPLY),
    };
    if qproto == Proto::Icmp && Icmp::new_unchecked(q.payload()).msg_type() != echo {
        return Err(NatError::Unsupported);
    }
    Ok(Parsed {
        kind: Kind::Error,
        ep: endpoint(&q, qproto, end),
    })
}
