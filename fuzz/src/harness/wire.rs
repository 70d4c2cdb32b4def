//! The packet parsers and in-place rewrites, each on arbitrary bytes, with the
//! properties they promise checked.
//!
//! Input: a selector byte, two argument bytes, then the packet.

use super::frames::{checksum, finish, sum};
use braid_dataplane::nat::{self, NatConfig, NatTable, PortRange, PortSlice};
use braid_dataplane::tunnel::{Header, Probe, HEADER_LEN};
use braid_dataplane::wire::{arp, checksum as csum, ethernet, icmp, ipv4, l4};
use std::net::Ipv4Addr;

/// Which parser an input exercised (for the corpus tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The selected parser accepted the bytes.
    Accepted,
    /// It refused them.
    Refused,
}

/// Runs one input.
pub fn wire(data: &[u8]) -> Parsed {
    let [sel, a, b, packet @ ..] = data else {
        return Parsed::Refused;
    };
    let arg = u16::from_be_bytes([*a, *b]);
    let ok = match sel % 8 {
        0 => ethernet_and_arp(packet),
        1 => ipv4_view(packet),
        2 => echo(packet, *a),
        3 => mss(packet, arg),
        4 => ttl(packet),
        5 => updates(packet, arg),
        6 => tunnel_header(packet),
        _ => nat(packet, *a),
    };
    if ok {
        Parsed::Accepted
    } else {
        Parsed::Refused
    }
}

fn ethernet_and_arp(p: &[u8]) -> bool {
    let Ok(h) = ethernet::Header::parse(p) else {
        return false;
    };
    let mut again = [0u8; ethernet::HEADER_LEN];
    h.emit(&mut again);
    assert_eq!(
        &again[..],
        &p[..ethernet::HEADER_LEN],
        "Ethernet round trip"
    );
    match arp::Arp::parse(&p[ethernet::HEADER_LEN..]) {
        Ok(a) => {
            let mut out = [0u8; arp::PACKET_LEN];
            a.emit(&mut out);
            assert_eq!(arp::Arp::parse(&out), Ok(a), "ARP round trip");
            assert_eq!(&out[..], &p[ethernet::HEADER_LEN..][..arp::PACKET_LEN]);
            true
        }
        Err(_) => false,
    }
}

fn ipv4_view(p: &[u8]) -> bool {
    let Ok(ip) = ipv4::Ipv4::parse(p) else {
        return false;
    };
    let hl = ip.header_len();
    assert!(hl >= 20 && hl <= ip.total_len() && ip.total_len() <= p.len());
    assert_eq!(ip.payload().len(), ip.total_len() - hl);
    assert_eq!(ip.checksum_ok(), checksum(&p[..hl]) == 0);
    let _ = (ip.src(), ip.dst(), ip.ttl(), ip.protocol(), ip.ident());
    let _ = (ip.dont_fragment(), ip.is_fragment(), ip.is_later_fragment());
    assert!(!ip.is_later_fragment() || ip.is_fragment());
    true
}

fn echo(p: &[u8], ttl: u8) -> bool {
    let mut m = p.to_vec();
    match icmp::echo_request_to_reply(&mut m, ttl) {
        Ok(()) => {
            // Both checksums stay valid when they were.
            let hl = usize::from(p[0] & 0xf) * 4;
            if checksum(&p[..hl]) == 0 {
                assert_eq!(checksum(&m[..hl]), 0, "IPv4 checksum after the echo reply");
            }
            assert_eq!(checksum(&m[hl..]), 0, "ICMP checksum after the echo reply");
            assert_eq!(m[hl], icmp::ECHO_REPLY);
            assert_eq!(&m[12..16], &p[16..20]);
            true
        }
        Err(_) => {
            assert_eq!(m, p, "a refused echo request was changed");
            false
        }
    }
}

/// True when the TCP checksum of a whole (unfragmented) TCP packet verifies.
fn tcp_ok(p: &[u8]) -> Option<bool> {
    let ip = ipv4::Ipv4::parse(p).ok()?;
    if ip.protocol() != ipv4::PROTO_TCP || ip.is_fragment() {
        return None;
    }
    let l4 = ip.payload();
    let pseudo = sum(sum(0, &ip.src().octets()), &ip.dst().octets()) + 6 + l4.len() as u64;
    Some(finish(sum(pseudo, l4)) == 0)
}

fn mss(p: &[u8], mss: u16) -> bool {
    let mut m = p.to_vec();
    let before = tcp_ok(p);
    let changed = l4::clamp_mss(&mut m, mss);
    if !changed {
        assert_eq!(m, p, "clamp_mss changed a packet it says it left alone");
        return false;
    }
    if before == Some(true) {
        assert_eq!(
            tcp_ok(&m),
            Some(true),
            "TCP checksum after clamping the MSS"
        );
    }
    assert_eq!(m.len(), p.len());
    true
}

fn ttl(p: &[u8]) -> bool {
    if ipv4::Ipv4::parse(p).is_err() {
        return false;
    }
    let hl = usize::from(p[0] & 0xf) * 4;
    let mut m = p.to_vec();
    ipv4::decrement_ttl(&mut m);
    assert_eq!(m[8], p[8].wrapping_sub(1));
    if checksum(&p[..hl]) == 0 {
        assert_eq!(checksum(&m[..hl]), 0, "IPv4 checksum after the TTL");
    }
    true
}

fn updates(p: &[u8], new: u16) -> bool {
    // A 16-bit field and a 32-bit field rewritten in a buffer with a valid checksum.
    if p.len() < 8 {
        return false;
    }
    let mut m = p.to_vec();
    m[0] = 0;
    m[1] = 0;
    let c = checksum(&m);
    m[0..2].copy_from_slice(&c.to_be_bytes());
    assert_eq!(csum::checksum(&m), 0, "the crate's checksum agrees");
    let old = u16::from_be_bytes([m[2], m[3]]);
    m[2..4].copy_from_slice(&new.to_be_bytes());
    let c = csum::update16(u16::from_be_bytes([m[0], m[1]]), old, new);
    m[0..2].copy_from_slice(&c.to_be_bytes());
    assert!(verifies(&m), "update16");
    let old4 = [m[4], m[5], m[6], m[7]];
    let new4 = [m[3], m[2], new as u8, 0x5a];
    m[4..8].copy_from_slice(&new4);
    let c = csum::update32(u16::from_be_bytes([m[0], m[1]]), old4, new4);
    m[0..2].copy_from_slice(&c.to_be_bytes());
    assert!(verifies(&m), "update32");
    true
}

/// True when `m` verifies: its sum is one's-complement zero. Data summing to +0 (all
/// zero words) carries the checksum 0x0000 after an incremental update where a full
/// computation gives 0xffff (RFC 1624 section 3); both are zero, and no IPv4 header or
/// datagram braid rewrites sums to +0.
fn verifies(m: &[u8]) -> bool {
    checksum(m) == 0 || m.iter().all(|&b| b == 0)
}

fn tunnel_header(p: &[u8]) -> bool {
    let _ = Probe::parse(p);
    let Ok(h) = Header::parse(p) else {
        return false;
    };
    let mut out = [0u8; HEADER_LEN];
    h.emit(&mut out);
    assert_eq!(&out[..], &p[..HEADER_LEN], "tunnel header round trip");
    true
}

fn nat(p: &[u8], how: u8) -> bool {
    let out_ep = nat::outbound_endpoint(p);
    let _ = nat::inbound_endpoint(p);
    let mut cfg = NatConfig::new(vec![Ipv4Addr::new(203, 0, 113, 2)]);
    cfg.max_sessions = 16;
    cfg.max_per_host = 8;
    if how & 1 != 0 {
        cfg.ports = PortRange { lo: 2000, hi: 2063 };
    }
    let Ok(mut t) = NatTable::new(
        &cfg,
        PortSlice {
            worker: 0,
            workers: 1,
        },
        7,
    ) else {
        return false;
    };
    let mut m = p.to_vec();
    let header_ok = ipv4::Ipv4::parse(p).is_ok_and(|ip| ip.checksum_ok());
    let out = t.translate_out(&mut m, 1_000);
    match out {
        Err(_) => {
            assert_eq!(m, p, "a refused outbound packet was changed");
            return false;
        }
        Ok(_) => {
            assert!(
                out_ep.is_ok(),
                "translated an outbound packet without an endpoint"
            );
            if header_ok {
                let hl = usize::from(m[0] & 0xf) * 4;
                assert_eq!(checksum(&m[..hl]), 0, "IPv4 checksum after translating out");
            }
        }
    }
    // The reply: addresses swapped (and ports, for TCP and UDP), back in.
    let hl = usize::from(m[0] & 0xf) * 4;
    let mut reply = m.clone();
    reply.copy_within(12..16, 16);
    reply[12..16].copy_from_slice(&m[16..20]);
    if matches!(m[9], 6 | 17) && reply.len() >= hl + 4 {
        reply[hl..hl + 2].copy_from_slice(&m[hl + 2..hl + 4]);
        reply[hl + 2..hl + 4].copy_from_slice(&m[hl..hl + 2]);
    }
    let mut r = reply.clone();
    if t.translate_in(&mut r, 2_000).is_err() {
        assert_eq!(r, reply, "a refused inbound packet was changed");
    }
    assert!(t.len() <= 16);
    true
}
