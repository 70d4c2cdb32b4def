//! Packet builders and repairs for the fuzz targets and their seeds, written
//! independently of the dataplane's own `wire` code so they can check it.

use braid_dataplane::tunnel::handshake::Session;
use braid_dataplane::tunnel::{HEADER_LEN, SEQ_LEN, TAG_LEN};
use std::net::Ipv4Addr;

/// Ethernet header length.
pub const ETH_LEN: usize = 14;
/// EtherType of IPv4.
pub const IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ARP: u16 = 0x0806;
/// The broadcast MAC.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// The Internet checksum (RFC 1071) of `data`, folded and complemented.
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// `data` added to `acc` as big-endian 16-bit words (an odd byte padded with 0).
pub fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds and complements a sum.
pub fn finish(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Sum of the TCP/UDP pseudo-header.
fn pseudo(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u64 {
    sum(sum(0, &src), &dst) + u64::from(proto) + len as u64
}

/// An Ethernet frame.
pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_LEN + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP packet (Ethernet/IPv4).
pub fn arp(op: u16, sender: ([u8; 6], Ipv4Addr), target: ([u8; 6], Ipv4Addr)) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sender.0);
    a.extend_from_slice(&sender.1.octets());
    a.extend_from_slice(&target.0);
    a.extend_from_slice(&target.1.octets());
    a
}

/// An IPv4 packet without options (DF set) around `payload`, whose transport
/// checksum (TCP, UDP, ICMP) is filled in.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, ttl, proto, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    fix_ipv4(&mut p);
    p
}

/// A UDP header and payload (checksum left for [`fix_ipv4`]).
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// TCP flags.
pub const SYN: u8 = 0x02;
/// TCP ACK flag.
pub const ACK: u8 = 0x10;
/// TCP FIN flag.
pub const FIN: u8 = 0x01;
/// TCP RST flag.
pub const RST: u8 = 0x04;

/// A TCP segment; a SYN carries an MSS option of `mss` (checksum left for [`fix_ipv4`]).
pub fn tcp(sport: u16, dport: u16, flags: u8, mss: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let opts: Vec<u8> = match mss {
        Some(m) => {
            let b = m.to_be_bytes();
            vec![2, 4, b[0], b[1]]
        }
        None => Vec::new(),
    };
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&0x1000_0000u32.to_be_bytes());
    t.extend_from_slice(&0x2000_0000u32.to_be_bytes());
    t.push((((20 + opts.len()) / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(&opts);
    t.extend_from_slice(payload);
    t
}

/// An ICMP echo request (8) or reply (0) (checksum left for [`fix_ipv4`]).
pub fn echo(kind: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut e = vec![kind, 0, 0, 0];
    e.extend_from_slice(&id.to_be_bytes());
    e.extend_from_slice(&seq.to_be_bytes());
    e.extend_from_slice(payload);
    e
}

/// An ICMP error quoting `quote` (checksum left for [`fix_ipv4`]).
pub fn icmp_error(kind: u8, code: u8, rest: u32, quote: &[u8]) -> Vec<u8> {
    let mut e = vec![kind, code, 0, 0];
    e.extend_from_slice(&rest.to_be_bytes());
    e.extend_from_slice(quote);
    e
}

/// Makes the IPv4 packet at the start of `p` consistent: version 4, total length
/// = `p.len()` (capped), header checksum, and the TCP, UDP (length too) or ICMP
/// checksum over the packet. Does nothing to a buffer shorter than 20 bytes.
pub fn fix_ipv4(p: &mut [u8]) {
    if p.len() < 20 {
        return;
    }
    let hl = (usize::from(p[0] & 0xf) * 4).clamp(20, 60).min(p.len());
    p[0] = 0x40 | (hl / 4) as u8;
    let total = p.len().min(usize::from(u16::MAX));
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[10] = 0;
    p[11] = 0;
    let c = checksum(&p[..hl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let (src, dst, proto) = (
        [p[12], p[13], p[14], p[15]],
        [p[16], p[17], p[18], p[19]],
        p[9],
    );
    let first_fragment = u16::from_be_bytes([p[6], p[7]]) & 0x1fff == 0;
    let l4 = &mut p[hl..total];
    match proto {
        1 if l4.len() >= 4 => {
            l4[2] = 0;
            l4[3] = 0;
            let c = checksum(l4);
            l4[2..4].copy_from_slice(&c.to_be_bytes());
        }
        6 if l4.len() >= 20 && first_fragment => {
            l4[16] = 0;
            l4[17] = 0;
            let c = finish(sum(pseudo(src, dst, 6, l4.len()), l4));
            l4[16..18].copy_from_slice(&c.to_be_bytes());
        }
        17 if l4.len() >= 8 && first_fragment => {
            let len = l4.len() as u16;
            l4[4..6].copy_from_slice(&len.to_be_bytes());
            l4[6] = 0;
            l4[7] = 0;
            let c = match finish(sum(pseudo(src, dst, 17, l4.len()), l4)) {
                0 => 0xffff,
                c => c,
            };
            l4[6..8].copy_from_slice(&c.to_be_bytes());
        }
        _ => {}
    }
}

/// The braid message of a tunnel datagram frame: the bytes after the Ethernet,
/// IPv4 (its stated header length) and UDP headers; None when there are none.
pub fn tunnel_message(frame: &mut [u8]) -> Option<&mut [u8]> {
    let hl = usize::from(*frame.get(ETH_LEN)? & 0xf) * 4;
    frame.get_mut(ETH_LEN + hl.max(20) + 8..)
}

/// Seals `msg` (header | plaintext | room for the tag) as the peer of one of `sessions`
/// would: its receiver index (bytes 4..8), modulo their number, picks the session and
/// becomes that session's index here; first makes the inner IPv4 packet (behind the bond
/// sequence) consistent when `fix_inner`. False when `msg` cannot be sealed (too short, counter at 2^60 or beyond,
/// no session).
pub fn seal(msg: &mut [u8], sessions: &[Session], fix_inner: bool) -> bool {
    if msg.len() < HEADER_LEN + TAG_LEN || sessions.is_empty() {
        return false;
    }
    let pick = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]) as usize % sessions.len();
    let session = &sessions[pick];
    msg[4..8].copy_from_slice(&session.local_index.to_be_bytes());
    if fix_inner {
        let end = msg.len() - TAG_LEN;
        if let Some(inner) = msg.get_mut(HEADER_LEN + SEQ_LEN..end) {
            fix_ipv4(inner);
        }
    }
    session.recv.seal(msg).is_ok()
}
