//! Tests of the NAT through whole packets: golden packets, properties and
//! simulated time. Packets are built with etherparse; checksums are checked by
//! full recomputation.

mod golden;
mod props;
mod time;

use super::*;
use crate::wire::checksum;
use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TcpHeader, TransportSlice};
use std::net::Ipv4Addr;

/// An address and port (or ICMP echo identifier).
pub(crate) type Addr = (Ipv4Addr, u16);

pub(crate) const PUBLIC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub(crate) const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
pub(crate) const ROUTER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);
pub(crate) const HOST_A: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
pub(crate) const HOST_B: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 11);
pub(crate) const LAN_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);

pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const ACK: u8 = 0x10;

/// Seconds as the tables' nanoseconds.
pub(crate) const S: u64 = 1_000_000_000;

/// One public address, defaults otherwise, `max_sessions` over one worker.
pub(crate) fn config(max_sessions: usize) -> NatConfig {
    NatConfig {
        max_sessions,
        ..NatConfig::new(vec![PUBLIC])
    }
}

/// The only worker's table for `config`.
pub(crate) fn table(config: &NatConfig) -> NatTable {
    NatTable::new(
        config,
        PortSlice {
            worker: 0,
            workers: 1,
        },
        7,
    )
    .expect("valid config")
}

pub(crate) fn tcp(src: Addr, dst: Addr, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = TcpHeader::new(src.1, dst.1, 0x1234_5678, 64240);
    h.fin = flags & FIN != 0;
    h.syn = flags & SYN != 0;
    h.rst = flags & RST != 0;
    h.ack = flags & ACK != 0;
    if h.ack {
        h.acknowledgment_number = 0x0abc_def0;
    }
    let mut out = Vec::new();
    PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64)
        .tcp_header(h)
        .write(&mut out, payload)
        .unwrap();
    out
}

pub(crate) fn udp(src: Addr, dst: Addr, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 64)
        .udp(src.1, dst.1)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// An ICMP echo request (or reply) with identifier `id`.
pub(crate) fn echo(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    request: bool,
    id: u16,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.octets(), dst.octets(), 64);
    let b = if request {
        b.icmpv4_echo_request(id, 9)
    } else {
        b.icmpv4_echo_reply(id, 9)
    };
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// An ICMP error of type `t` from `src` to `dst` quoting `quote`.
pub(crate) fn icmp_error(src: Ipv4Addr, dst: Ipv4Addr, t: Icmpv4Type, quote: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .icmpv4(t)
        .write(&mut out, quote)
        .unwrap();
    out
}

pub(crate) fn time_exceeded() -> Icmpv4Type {
    Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit)
}

pub(crate) fn unreachable(h: etherparse::icmpv4::DestUnreachableHeader) -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(h)
}

/// Sets the UDP checksum of a UDP packet (no IP options) to zero: none.
pub(crate) fn zero_udp_checksum(p: &mut [u8]) {
    p[26] = 0;
    p[27] = 0;
}

/// Inserts `words` 4-byte groups of IP options (NOPs) after the 20-byte header.
pub(crate) fn with_options(p: &[u8], words: usize) -> Vec<u8> {
    let mut out = p[..20].to_vec();
    out.extend(std::iter::repeat_n(1u8, words * 4));
    out.extend_from_slice(&p[20..]);
    out[0] = 0x40 | (5 + words as u8);
    let total = (out.len() as u16).to_be_bytes();
    out[2..4].copy_from_slice(&total);
    out[10] = 0;
    out[11] = 0;
    let hl = 20 + words * 4;
    let c = checksum::checksum(&out[..hl]);
    out[10..12].copy_from_slice(&c.to_be_bytes());
    out
}

/// Source and destination (address, port or echo identifier) as etherparse reads them.
pub(crate) fn ends(p: &[u8]) -> (Addr, Addr) {
    let s = SlicedPacket::from_ip(p).expect("etherparse parses the packet");
    let Some(etherparse::NetSlice::Ipv4(ip)) = s.net else {
        panic!("not IPv4");
    };
    let (src, dst) = (ip.header().source_addr(), ip.header().destination_addr());
    let (sp, dp) = match s.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        Some(TransportSlice::Icmpv4(i)) => match i.icmp_type() {
            Icmpv4Type::EchoRequest(e) | Icmpv4Type::EchoReply(e) => (e.id, e.id),
            _ => (0, 0),
        },
        other => panic!("unexpected transport {other:?}"),
    };
    ((src, sp), (dst, dp))
}

/// Checks every checksum of IPv4 packet `p` by recomputing it in full: the IP
/// header, TCP and UDP with their pseudo-header (a zero UDP checksum passes),
/// the ICMP message, and for an ICMP error the quoted IP header and, when the
/// quote holds the whole quoted packet, its checksums too.
pub(crate) fn verify(p: &[u8]) -> Result<(), String> {
    let hl = usize::from(p[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if checksum::checksum(&p[..hl]) != 0 {
        return Err("IPv4 header checksum".into());
    }
    let l4 = &p[hl..total];
    let pseudo = |proto| {
        let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
        let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
        checksum::finish(checksum::add(
            checksum::pseudo_header(src, dst, proto, l4.len() as u16),
            l4,
        ))
    };
    match p[9] {
        6 if pseudo(6) != 0 => Err("TCP checksum".into()),
        17 if l4[6..8] != [0, 0] && pseudo(17) != 0 => Err("UDP checksum".into()),
        1 => {
            if checksum::checksum(l4) != 0 {
                return Err("ICMP checksum".into());
            }
            if matches!(l4[0], 3 | 11 | 12) {
                let q = &l4[8..];
                let qhl = usize::from(q[0] & 0xf) * 4;
                if checksum::checksum(&q[..qhl]) != 0 {
                    return Err("quoted IPv4 header checksum".into());
                }
                let qtotal = usize::from(u16::from_be_bytes([q[2], q[3]]));
                if q.len() >= qtotal {
                    return verify(&q[..qtotal]).map_err(|e| format!("quoted {e}"));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
