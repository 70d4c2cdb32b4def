//! TCP and UDP details the router touches: ports for flow hashing and the TCP
//! MSS option, clamped on SYNs so segments fit the tunnel.

use super::{checksum, ipv4};

/// TCP SYN flag.
const TCP_SYN: u8 = 0x02;
/// Length of a TCP header without options.
pub const TCP_MIN_HEADER_LEN: usize = 20;

/// The largest TCP segment (MSS) that fits an IPv4 packet of `mtu` bytes with
/// option-less IPv4 and TCP headers.
pub fn mss_for_mtu(mtu: u16) -> u16 {
    mtu.saturating_sub((ipv4::MIN_HEADER_LEN + TCP_MIN_HEADER_LEN) as u16)
}

/// Clamps the MSS option of a TCP SYN in IPv4 packet `packet` to `mss`, updating
/// the TCP checksum incrementally. Returns true if the packet was changed. Packets
/// that are not TCP SYNs, or whose options are malformed, are left alone.
pub fn clamp_mss(packet: &mut [u8], mss: u16) -> bool {
    let Ok(ip) = ipv4::Ipv4::parse(packet) else {
        return false;
    };
    if ip.protocol() != ipv4::PROTO_TCP || ip.is_later_fragment() {
        return false;
    }
    let (hl, total) = (ip.header_len(), ip.total_len());
    let Some(tcp) = packet.get_mut(hl..total) else {
        return false;
    };
    let Some(fixed) = tcp.first_chunk::<20>() else {
        return false;
    };
    if fixed[13] & TCP_SYN == 0 {
        return false;
    }
    let data_off = usize::from(fixed[12] >> 4) * 4;
    if data_off < 20 || data_off > tcp.len() {
        return false;
    }
    let mut at = 20;
    while at < data_off {
        match tcp.get(at).copied() {
            None | Some(0) => return false,
            Some(1) => at += 1,
            Some(kind) => {
                let Some(&len) = tcp.get(at + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || at + len > data_off {
                    return false;
                }
                if kind == 2 && len == 4 {
                    return rewrite_mss(tcp, at, mss);
                }
                at += len;
            }
        }
    }
    false
}

/// Lowers the MSS option at `at` of TCP segment `tcp` to `mss` (if above it) and
/// updates the checksum; true if it changed.
fn rewrite_mss(tcp: &mut [u8], at: usize, mss: u16) -> bool {
    // The byte before the value (the option's length) and the one after it
    // (or 0 at the very end: a checksum pads an odd length with zero).
    let (Some(&before), Some(&[o0, o1])) = (
        tcp.get(at + 1),
        tcp.get(at + 2..).and_then(<[u8]>::first_chunk::<2>),
    ) else {
        return false;
    };
    let after = tcp.get(at + 4).copied().unwrap_or(0);
    let old = u16::from_be_bytes([o0, o1]);
    if old <= mss {
        return false;
    }
    let [n0, n1] = mss.to_be_bytes();
    // The option may sit at an odd offset relative to 16-bit words only if the
    // options are misaligned; MSS kind 2 is always preceded by an even number of
    // bytes in practice, but handle both by updating the word(s) that contain it.
    let Some(sum) = tcp.get(16..).and_then(<[u8]>::first_chunk::<2>) else {
        return false;
    };
    let sum = u16::from_be_bytes(*sum);
    let c = if at.is_multiple_of(2) {
        checksum::update16(sum, old, mss)
    } else {
        // Bytes at+2..at+4 straddle the words at at+1 and at+3.
        let c = checksum::update16(
            sum,
            u16::from_be_bytes([before, o0]),
            u16::from_be_bytes([before, n0]),
        );
        checksum::update16(
            c,
            u16::from_be_bytes([o1, after]),
            u16::from_be_bytes([n1, after]),
        )
    };
    if let Some(v) = tcp.get_mut(at + 2..at + 4) {
        v.copy_from_slice(&[n0, n1]);
    }
    if let Some(field) = tcp.get_mut(16..18) {
        field.copy_from_slice(&c.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::be16;
    use std::net::Ipv4Addr;

    /// An IPv4 TCP SYN with options `opts`, valid checksums.
    fn syn(opts: &[u8]) -> Vec<u8> {
        let tcp_len = 20 + opts.len();
        let mut p = vec![0u8; 20 + tcp_len];
        let (src, dst) = (
            Ipv4Addr::new(198, 18, 1, 2),
            Ipv4Addr::new(203, 0, 113, 130),
        );
        ipv4::Repr {
            src,
            dst,
            protocol: ipv4::PROTO_TCP,
            ttl: 64,
            ident: 1,
            dont_fragment: true,
            payload_len: tcp_len as u16,
        }
        .emit(p.first_chunk_mut().unwrap());
        let t = &mut p[20..];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[12] = ((tcp_len / 4) as u8) << 4;
        t[13] = TCP_SYN;
        t[14..16].copy_from_slice(&64240u16.to_be_bytes());
        t[20..].copy_from_slice(opts);
        let c = checksum::finish(checksum::add(
            checksum::pseudo_header(src, dst, 6, tcp_len as u16),
            t,
        ));
        t[16..18].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn tcp_ok(p: &[u8]) -> bool {
        let (src, dst) = (
            Ipv4Addr::new(198, 18, 1, 2),
            Ipv4Addr::new(203, 0, 113, 130),
        );
        checksum::finish(checksum::add(
            checksum::pseudo_header(src, dst, 6, (p.len() - 20) as u16),
            &p[20..],
        )) == 0
    }

    #[test]
    fn clamps_mss_and_keeps_checksum() {
        let mut p = syn(&[2, 4, 0x05, 0xb4, 1, 1, 4, 2]);
        assert!(clamp_mss(&mut p, 1400));
        assert_eq!(be16(&p, 42), 1400);
        assert!(tcp_ok(&p));
        let (_, rest) = etherparse::Ipv4Header::from_slice(&p).unwrap();
        let tcp = etherparse::TcpHeader::from_slice(rest).unwrap().0;
        assert!(tcp.syn);
    }

    #[test]
    fn clamps_misaligned_option() {
        let mut p = syn(&[1, 2, 4, 0x05, 0xb4, 1, 1, 0]);
        assert!(clamp_mss(&mut p, 1300));
        assert_eq!(be16(&p, 43), 1300);
        assert!(tcp_ok(&p));
    }

    #[test]
    fn leaves_small_mss_and_non_syn_alone() {
        let mut p = syn(&[2, 4, 0x04, 0x00]);
        assert!(!clamp_mss(&mut p, 1400));
        let mut ack = syn(&[2, 4, 0x05, 0xb4]);
        ack[33] = 0x10;
        assert!(!clamp_mss(&mut ack, 1400));
        let mut bad = syn(&[2, 9, 0x05, 0xb4]);
        assert!(!clamp_mss(&mut bad, 1400));
    }
}
