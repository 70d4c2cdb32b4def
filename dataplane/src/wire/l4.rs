//! What the router does across transport protocols: the endpoints (address and
//! port, or ICMP echo identifier) of a packet, rewritten in place as NAT does,
//! and the TCP MSS option, clamped on SYNs so segments fit the tunnel.

use super::checksum::Delta;
use super::icmp::Icmp;
use super::ipv4::{self, Ipv4, Ipv4Mut};
use super::tcp::{self, Tcp};
use super::udp::Udp;
use super::WireError;
use std::net::Ipv4Addr;

pub use super::End;

/// The MSS that fits TCP over IPv4 (minimal headers) into `mtu` bytes.
pub fn mss_for_mtu(mtu: u16) -> u16 {
    mtu.saturating_sub((ipv4::MIN_HEADER_LEN + tcp::HEADER_LEN) as u16)
}

/// The first four bytes of a transport header, read once (missing bytes zero),
/// and how many were there: enough to classify a packet (its ICMP type, its TCP
/// or UDP ports) without reading the header again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Head {
    word: [u8; 4],
    present: u8,
}

impl Head {
    /// The head of `ip`'s payload.
    #[inline]
    pub fn of(ip: &Ipv4<'_>) -> Head {
        let payload = ip.payload();
        Head {
            word: super::read(payload, 0),
            present: payload.len().min(4) as u8,
        }
    }

    /// The first byte (the ICMP type, for ICMP), if there is one.
    pub fn first_byte(&self) -> Option<u8> {
        (self.present >= 1).then_some(self.word[0])
    }

    /// The source port of a TCP or UDP header (the same place in both), if the
    /// bytes are there.
    pub fn src_port(&self) -> Option<u16> {
        let udp = Udp::new_unchecked(&self.word);
        (usize::from(self.present) == self.word.len()).then(|| udp.src_port())
    }

    /// The destination port of a TCP or UDP header (the same place in both), if
    /// the bytes are there.
    pub fn dst_port(&self) -> Option<u16> {
        let udp = Udp::new_unchecked(&self.word);
        (usize::from(self.present) == self.word.len()).then(|| udp.dst_port())
    }
}

/// The source and destination ports of a TCP or UDP packet `ip` (the two headers
/// start alike), read in one go for the flow hash; bytes missing read as zero.
pub fn ports(ip: &Ipv4<'_>) -> (u16, u16) {
    let udp = Udp::new_unchecked(ip.payload());
    (udp.src_port(), udp.dst_port())
}

/// The address and port on `end` of IPv4 packet `ip`: the TCP or UDP port, the
/// identifier of an ICMP message (at both ends; meaningful for echoes), 0 for
/// other protocols. Transport bytes missing (from a quote) read as zero.
#[inline]
pub fn endpoint(ip: &Ipv4<'_>, end: End) -> (Ipv4Addr, u16) {
    let l4 = ip.payload();
    let port = match (ip.protocol(), end) {
        (ipv4::PROTO_TCP, End::Src) => Tcp::new_unchecked(l4).src_port(),
        (ipv4::PROTO_TCP, End::Dst) => Tcp::new_unchecked(l4).dst_port(),
        (ipv4::PROTO_UDP, End::Src) => Udp::new_unchecked(l4).src_port(),
        (ipv4::PROTO_UDP, End::Dst) => Udp::new_unchecked(l4).dst_port(),
        (ipv4::PROTO_ICMP, _) => Icmp::new_unchecked(l4).echo_ident(),
        _ => 0,
    };
    let addr = match end {
        End::Src => ip.src(),
        End::Dst => ip.dst(),
    };
    (addr, port)
}

/// Sets the address on `end` of IPv4 packet `ip` to `addr`, and the port of its
/// TCP or UDP header on that end (or its ICMP identifier) to `port`. The header
/// checksum and the transport checksum are updated incrementally (a UDP
/// checksum of 0, none, stays 0), the latter only where the buffer holds it
/// (a quote may stop short). Returns the change of the sum of the packet's
/// words, for the checksum of an ICMP error that quotes it.
#[inline]
pub fn set_endpoint(ip: &mut Ipv4Mut<'_>, end: End, addr: Ipv4Addr, port: u16) -> Delta {
    let (pseudo, header) = match ip.replace_src_or_dst(end == End::Src, addr) {
        Some((old, header)) => (Delta::addr(old, addr), header),
        // Not wholly in the buffer (never in a checked view): nothing written, but
        // the change is reported as if it had been.
        None => {
            let old = match end {
                End::Src => ip.src(),
                End::Dst => ip.dst(),
            };
            (Delta::addr(old, addr), Delta::addr(old, addr))
        }
    };
    let protocol = ip.protocol();
    let l4 = ip.payload_mut();
    header
        + match protocol {
            ipv4::PROTO_TCP => Tcp::new_unchecked(l4).rewrite_port(end, port, pseudo),
            ipv4::PROTO_UDP => Udp::new_unchecked(l4).rewrite_port(end, port, pseudo),
            ipv4::PROTO_ICMP => Icmp::new_unchecked(l4).rewrite_ident(port),
            _ => Delta::default(),
        }
}

/// Sets end `end` of the packet the ICMP error `icmp` quotes (see [`set_endpoint`])
/// and carries the change into the error's checksum. Refuses (leaving all as it
/// was) data that is not a quote ([`ipv4::Ipv4::parse_quoted`]).
pub fn set_quoted_endpoint<T: AsRef<[u8]> + AsMut<[u8]>>(
    icmp: &mut Icmp<T>,
    end: End,
    addr: Ipv4Addr,
    port: u16,
) -> Result<(), WireError> {
    let data = icmp.data_mut().ok_or(WireError::Truncated)?;
    let mut quote = Ipv4Mut::parse_quoted(data)?;
    let change = set_endpoint(&mut quote, end, addr, port);
    icmp.add_to_checksum(change);
    Ok(())
}

/// Clamps the MSS option of a TCP SYN in IPv4 packet `packet` to `mss`, updating
/// the TCP checksum incrementally. Returns true if the packet was changed. Packets
/// that are not TCP SYNs, or whose options are malformed, are left alone.
#[inline]
pub fn clamp_mss(packet: &mut [u8], mss: u16) -> bool {
    let Ok(mut ip) = Ipv4Mut::parse(packet) else {
        return false;
    };
    if ip.protocol() != ipv4::PROTO_TCP || ip.view().is_later_fragment() {
        return false;
    }
    match Tcp::new_checked(ip.payload_mut()) {
        Ok(mut tcp) if tcp.flags() & tcp::SYN != 0 => tcp.clamp_mss(mss),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{checksum, icmp};
    use proptest::prelude::*;
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
        t[13] = tcp::SYN;
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
        assert_eq!(u16::from_be_bytes([p[42], p[43]]), 1400);
        assert!(tcp_ok(&p));
        let (_, rest) = etherparse::Ipv4Header::from_slice(&p).unwrap();
        let tcp = etherparse::TcpHeader::from_slice(rest).unwrap().0;
        assert!(tcp.syn);
    }

    #[test]
    fn clamps_misaligned_option() {
        let mut p = syn(&[1, 2, 4, 0x05, 0xb4, 1, 1, 0]);
        assert!(clamp_mss(&mut p, 1300));
        assert_eq!(u16::from_be_bytes([p[43], p[44]]), 1300);
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

    #[test]
    fn mss_for_mtu_leaves_room_for_minimal_headers() {
        assert_eq!(mss_for_mtu(1420), 1380);
        assert_eq!(mss_for_mtu(30), 0);
    }

    /// A packet of protocol `kind` (0 TCP, 1 UDP, 2 ICMP echo) with valid checksums.
    fn packet(kind: u8, src: [u8; 4], dst: [u8; 4], ports: (u16, u16), data: &[u8]) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ipv4(src, dst, 64);
        let mut out = Vec::new();
        match kind {
            0 => b.tcp(ports.0, ports.1, 1, 1000).write(&mut out, data),
            1 => b.udp(ports.0, ports.1).write(&mut out, data),
            _ => b.icmpv4_echo_request(ports.0, 1).write(&mut out, data),
        }
        .unwrap();
        out
    }

    /// True when the packet's IPv4 and transport checksums verify.
    fn checksums_ok(p: &[u8]) -> bool {
        let ip = Ipv4::parse(p).unwrap();
        let l4 = ip.payload();
        let sum = match ip.protocol() {
            ipv4::PROTO_ICMP => checksum::checksum(l4),
            proto => checksum::finish(checksum::add(
                checksum::pseudo_header(ip.src(), ip.dst(), proto, l4.len() as u16),
                l4,
            )),
        };
        ip.checksum_ok() && sum == 0
    }

    proptest! {
        #[test]
        fn set_endpoint_keeps_every_checksum_valid(
            kind in 0u8..3,
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            ports in any::<(u16, u16)>(),
            data in proptest::collection::vec(any::<u8>(), 0..12),
            src_end in any::<bool>(),
            new in any::<([u8; 4], u16)>(),
        ) {
            let end = if src_end { End::Src } else { End::Dst };
            let mut p = packet(kind, src, dst, ports, &data);
            let before = p.clone();
            let mut ip = Ipv4Mut::parse(&mut p).unwrap();
            let change = set_endpoint(&mut ip, end, new.0.into(), new.1);
            prop_assert_eq!(endpoint(&ip.view(), end), (new.0.into(), new.1));
            prop_assert!(checksums_ok(&p));
            // The change of the packet's sum, as an ICMP error quoting it needs.
            let (old_sum, new_sum) = (checksum::checksum(&before), checksum::checksum(&p));
            prop_assert_eq!(change.apply(old_sum) % 0xffff, new_sum % 0xffff);

            // The same packet quoted (cut short) by an ICMP error.
            let quote = &before[..28.max(before.len() - data.len() / 2)];
            let mut err = vec![0; icmp::ERROR_HEAD_LEN];
            icmp::ErrorRepr {
                src: Ipv4Addr::new(192, 0, 2, 1),
                dst: Ipv4Addr::from(src),
                icmp_type: icmp::TIME_EXCEEDED,
                code: 0,
                rest: 0,
            }
            .emit(err.first_chunk_mut().unwrap(), quote);
            err.extend_from_slice(quote);
            let mut ip = Ipv4Mut::parse(&mut err).unwrap();
            let mut msg = icmp::Icmp::new_unchecked(ip.payload_mut());
            set_quoted_endpoint(&mut msg, end, new.0.into(), new.1).unwrap();
            prop_assert!(checksums_ok(&err));
            let q = Ipv4::parse_quoted(&err[icmp::ERROR_HEAD_LEN..]).unwrap();
            prop_assert!(q.checksum_ok());
            prop_assert_eq!(endpoint(&q, end), (new.0.into(), new.1));
        }
    }
}
