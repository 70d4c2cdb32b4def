//! The flow hash: a fast mix of an IPv4 packet's 5-tuple.

use crate::wire::ipv4::{Ipv4, PROTO_TCP, PROTO_UDP};
use crate::wire::l4;

/// A 64-bit finalizer (multiply-xorshift) in which every input bit affects every output bit.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Hash of an IPv4 packet's 5-tuple: addresses, protocol, and TCP/UDP ports when the
/// packet is not a fragment. Fragments (first included) hash without ports so all
/// pieces of one datagram take the same link. Short or garbage input never panics:
/// missing bytes count as 0.
pub fn flow_hash(ipv4_packet: &[u8]) -> u32 {
    // Unchecked: missing bytes read as zero.
    let ip = Ipv4::new_unchecked(ipv4_packet);
    let addresses = u64::from(u32::from(ip.src())) << 32 | u64::from(u32::from(ip.dst()));
    let proto = ip.protocol();
    let ports = if (proto == PROTO_TCP || proto == PROTO_UDP) && !ip.is_fragment() {
        let (sport, dport) = l4::ports(&ip);
        u32::from(sport) << 16 | u32::from(dport)
    } else {
        0
    };
    let h = mix(mix(addresses) ^ (u64::from(ports) << 8 | u64::from(proto)));
    (h ^ (h >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A 20-byte IPv4 header (plus options) and 8 bytes of transport header.
    fn packet(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Vec<u8> {
        let builder = etherparse::PacketBuilder::ipv4(src, dst, 64);
        let mut out = Vec::new();
        match proto {
            PROTO_TCP => {
                builder
                    .tcp(sport, dport, 1, 1000)
                    .write(&mut out, &[1, 2, 3])
                    .unwrap();
            }
            PROTO_UDP => builder
                .udp(sport, dport)
                .write(&mut out, &[1, 2, 3])
                .unwrap(),
            _ => builder
                .icmpv4_echo_request(sport, dport)
                .write(&mut out, &[1, 2, 3])
                .unwrap(),
        }
        out
    }

    const A: [u8; 4] = [198, 18, 0, 1];
    const B: [u8; 4] = [203, 0, 113, 7];

    #[test]
    fn same_tuple_same_hash_any_field_changes_it() {
        let base = flow_hash(&packet(A, B, PROTO_UDP, 1000, 53));
        assert_eq!(base, flow_hash(&packet(A, B, PROTO_UDP, 1000, 53)));
        for other in [
            packet(B, A, PROTO_UDP, 1000, 53),
            packet([198, 18, 0, 2], B, PROTO_UDP, 1000, 53),
            packet(A, [203, 0, 113, 8], PROTO_UDP, 1000, 53),
            packet(A, B, PROTO_TCP, 1000, 53),
            packet(A, B, PROTO_UDP, 1001, 53),
            packet(A, B, PROTO_UDP, 1000, 54),
        ] {
            assert_ne!(base, flow_hash(&other));
        }
    }

    #[test]
    fn payload_and_ttl_do_not_matter() {
        let mut p = packet(A, B, PROTO_TCP, 40000, 443);
        let h = flow_hash(&p);
        p[8] = 3; // TTL
        let last = p.len() - 1;
        p[last] ^= 0xff;
        assert_eq!(flow_hash(&p), h);
    }

    #[test]
    fn ports_follow_the_header_length() {
        let mut p = packet(A, B, PROTO_UDP, 1000, 53);
        let h = flow_hash(&p);
        // Insert 4 bytes of options (NOPs): IHL 6, ports move to offset 24.
        p.splice(20..20, [1u8; 4]);
        p[0] = 0x46;
        assert_eq!(flow_hash(&p), h);
        p[24] ^= 1;
        assert_ne!(flow_hash(&p), h);
    }

    #[test]
    fn fragments_hash_without_ports() {
        let whole = packet(A, B, PROTO_UDP, 1000, 53);
        let mut first = whole.clone();
        first[6] = 0x20; // more fragments, offset 0
        let mut later = whole.clone();
        later[6] = 0x00;
        later[7] = 0xb9; // offset 185 * 8
        later[20..24].copy_from_slice(&[9, 9, 9, 9]); // payload bytes, not ports
        let mut first_other_ports = packet(A, B, PROTO_UDP, 7, 7);
        first_other_ports[6] = 0x20;
        assert_eq!(flow_hash(&first), flow_hash(&later));
        assert_eq!(flow_hash(&first), flow_hash(&first_other_ports));
        assert_ne!(flow_hash(&first), flow_hash(&whole));
        // Don't-fragment alone is not a fragment.
        let mut df = whole.clone();
        df[6] = 0x40;
        assert_eq!(flow_hash(&df), flow_hash(&whole));
    }

    #[test]
    fn icmp_ignores_the_bytes_after_the_header() {
        let p = packet(A, B, 1, 1, 1);
        let q = packet(A, B, 1, 2, 9);
        assert_eq!(flow_hash(&p), flow_hash(&q));
    }

    #[test]
    fn short_input_reads_missing_bytes_as_zero() {
        let p = packet(A, B, PROTO_TCP, 4242, 80);
        for len in 0..=p.len() {
            let mut padded = p.clone();
            padded[len..].fill(0);
            assert_eq!(flow_hash(&p[..len]), flow_hash(&padded), "{len}");
        }
        assert_ne!(flow_hash(&p[..22]), flow_hash(&p));
        assert_eq!(flow_hash(&p[..24]), flow_hash(&p));
    }

    #[test]
    fn low_bits_spread_evenly() {
        // Sequential client ports to one server: the low 10 bits must fill evenly.
        let mut buckets = [0u32; 1024];
        for port in 0..65535u16 {
            let h = flow_hash(&packet(A, B, PROTO_TCP, port, 443));
            buckets[(h & 1023) as usize] += 1;
        }
        let mean = 65535.0 / 1024.0;
        let max = *buckets.iter().max().unwrap() as f64;
        let min = *buckets.iter().min().unwrap() as f64;
        assert!(max < mean * 1.6 && min > mean * 0.4, "{min} {max}");
        // And consecutive source addresses.
        let mut buckets = [0u32; 64];
        for host in 0..6400u32 {
            let src = (0xc612_0000 | host).to_be_bytes();
            let h = flow_hash(&packet(src, B, PROTO_UDP, 5000, 5000));
            buckets[(h & 63) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (60..=140).contains(&n)),
            "{buckets:?}"
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = flow_hash(&bytes);
        }
    }
}
