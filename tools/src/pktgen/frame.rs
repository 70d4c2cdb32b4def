//! Building the generator's frames: Ethernet, IPv4 and UDP (or a TCP SYN) with a [`Stamp`] at the
//! start of the payload.
//!
//! One template per frame size holds every constant byte; a frame is the template with its source
//! port (the flow), its stamp and its layer-4 checksum patched in. The checksum is the template's
//! precomputed sum plus the patched words, so a frame costs the same whatever its size.

use super::size::FCS_LEN;
use super::stamp::{Stamp, STAMP_LEN};
use braid_dataplane::wire::{checksum, ethernet, ipv4, Mac};
use std::net::Ipv4Addr;

const L4: usize = ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN;
const UDP_LEN: usize = 8;
const TCP_LEN: usize = 20;
/// TCP flags of a SYN.
const TCP_SYN: u8 = 0x02;
/// The TCP window the SYNs advertise.
const TCP_WINDOW: u16 = 64240;
/// The TCP sequence number of every SYN.
const TCP_ISN: u32 = 0x6272_6169;

/// The transport the frames carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// TCP SYNs carrying the stamp as data (as TCP Fast Open does).
    TcpSyn,
}

impl Proto {
    /// Length of the transport header.
    fn header_len(self) -> usize {
        match self {
            Proto::Udp => UDP_LEN,
            Proto::TcpSyn => TCP_LEN,
        }
    }

    fn number(self) -> u8 {
        match self {
            Proto::Udp => ipv4::PROTO_UDP,
            Proto::TcpSyn => ipv4::PROTO_TCP,
        }
    }

    /// Offset of the checksum within the transport header.
    fn checksum_at(self) -> usize {
        match self {
            Proto::Udp => 6,
            Proto::TcpSyn => 16,
        }
    }
}

/// What the generated frames look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSpec {
    /// Ethernet source: the sending interface's MAC.
    pub src_mac: Mac,
    /// Ethernet destination: the next hop's MAC.
    pub dst_mac: Mac,
    /// IPv4 source.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination.
    pub dst_ip: Ipv4Addr,
    /// Source port of flow 0; flow *i* uses `src_port + i`.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// UDP or TCP SYN.
    pub proto: Proto,
    /// Number of flows (distinct source ports), at least 1.
    pub flows: u32,
    /// IPv4 time to live.
    pub ttl: u8,
}

impl FrameSpec {
    /// The smallest frame size (FCS included) that holds the headers and a stamp.
    pub fn min_frame(&self) -> usize {
        L4 + self.proto.header_len() + STAMP_LEN + FCS_LEN
    }

    /// Source port of `flow`.
    pub fn src_port_of(&self, flow: u32) -> u16 {
        self.src_port.wrapping_add(flow as u16)
    }

    /// Checks that flows fit in the port range and every size holds a stamp.
    pub fn check(&self, sizes: &[usize]) -> Result<(), String> {
        if self.flows == 0 {
            return Err("flows: at least 1".into());
        }
        let last = u32::from(self.src_port) + self.flows - 1;
        if last > u32::from(u16::MAX) {
            return Err(format!(
                "{} flows from source port {} run past port 65535",
                self.flows, self.src_port
            ));
        }
        if self.flows > u32::from(u16::MAX) + 1 {
            return Err("flows: at most 65536 (one stream id each)".into());
        }
        if let Some(&small) = sizes.iter().find(|&&s| s < self.min_frame()) {
            return Err(format!(
                "frame size {small} is too small for {:?} with a stamp: at least {}",
                self.proto,
                self.min_frame()
            ));
        }
        Ok(())
    }
}

/// A frame of one size with everything constant filled in.
#[derive(Debug)]
struct Template {
    bytes: Vec<u8>,
    /// Unfolded checksum sum of the pseudo-header and the transport segment, with the source
    /// port, the checksum field and the stamp as zeros.
    base: u64,
}

/// Makes the frames of one generator.
#[derive(Debug)]
pub struct FrameFactory {
    proto: Proto,
    src_port: u16,
    templates: Vec<Template>,
}

impl FrameFactory {
    /// Templates for each of `sizes` (frame sizes, FCS included).
    pub fn new(spec: &FrameSpec, sizes: &[usize]) -> Result<FrameFactory, String> {
        spec.check(sizes)?;
        let templates = sizes.iter().map(|&size| template(spec, size)).collect();
        Ok(FrameFactory {
            proto: spec.proto,
            src_port: spec.src_port,
            templates,
        })
    }

    /// The frame of size index `size` for `flow`, stamped (length: the size minus the FCS).
    /// Panics if `size` is not an index into the sizes given to [`FrameFactory::new`].
    pub fn frame(&mut self, size: usize, flow: u32, stamp: &Stamp) -> &[u8] {
        let proto = self.proto;
        let sport = self.src_port.wrapping_add(flow as u16);
        let t = &mut self.templates[size];
        let payload = L4 + proto.header_len();
        let mut s = [0u8; STAMP_LEN];
        stamp.emit(&mut s);
        t.bytes[payload..payload + STAMP_LEN].copy_from_slice(&s);
        t.bytes[L4..L4 + 2].copy_from_slice(&sport.to_be_bytes());
        let sum = checksum::add(t.base + u64::from(sport), &s);
        let mut c = checksum::finish(sum);
        if proto == Proto::Udp && c == 0 {
            c = 0xffff;
        }
        let at = L4 + proto.checksum_at();
        t.bytes[at..at + 2].copy_from_slice(&c.to_be_bytes());
        &t.bytes
    }
}

fn template(spec: &FrameSpec, size: usize) -> Template {
    let len = size - FCS_LEN;
    let mut f = vec![0u8; len];
    ethernet::write(&mut f, spec.dst_mac, spec.src_mac, ethernet::ETHERTYPE_IPV4);
    let l4_len = len - L4;
    if let Some(h) = f[ethernet::HEADER_LEN..].first_chunk_mut() {
        ipv4::Repr {
            src: spec.src_ip,
            dst: spec.dst_ip,
            protocol: spec.proto.number(),
            ttl: spec.ttl,
            ident: 0,
            dont_fragment: true,
            payload_len: l4_len as u16,
        }
        .emit(h);
    }
    let seg = &mut f[L4..];
    seg[2..4].copy_from_slice(&spec.dst_port.to_be_bytes());
    match spec.proto {
        Proto::Udp => seg[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes()),
        Proto::TcpSyn => {
            seg[4..8].copy_from_slice(&TCP_ISN.to_be_bytes());
            seg[12] = (TCP_LEN as u8 / 4) << 4;
            seg[13] = TCP_SYN;
            seg[14..16].copy_from_slice(&TCP_WINDOW.to_be_bytes());
        }
    }
    // After the stamp: a byte pattern, so a truncated or shifted payload is visible.
    let data = spec.proto.header_len() + STAMP_LEN;
    for (i, b) in seg[data..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let base = checksum::add(
        checksum::pseudo_header(spec.src_ip, spec.dst_ip, spec.proto.number(), l4_len as u16),
        seg,
    );
    Template { bytes: f, base }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    pub(crate) fn spec(proto: Proto, flows: u32) -> FrameSpec {
        FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: Ipv4Addr::new(198, 18, 1, 2),
            dst_ip: Ipv4Addr::new(203, 0, 113, 130),
            src_port: 10_000,
            dst_port: 9,
            proto,
            flows,
            ttl: 64,
        }
    }

    /// Parses `f` with etherparse and checks every length and checksum; returns the payload.
    fn check_frame(f: &[u8], spec: &FrameSpec, flow: u32) -> Vec<u8> {
        let p = SlicedPacket::from_ethernet(f).expect("etherparse reads the frame");
        let eth = p
            .link
            .as_ref()
            .and_then(|l| l.to_header())
            .expect("ethernet");
        let eth = match eth {
            etherparse::LinkHeader::Ethernet2(e) => e,
            other => panic!("not Ethernet II: {other:?}"),
        };
        assert_eq!(eth.source, spec.src_mac);
        assert_eq!(eth.destination, spec.dst_mac);
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(usize::from(h.total_len), f.len() - 14);
        assert_eq!(h.source, spec.src_ip.octets());
        assert_eq!(h.destination, spec.dst_ip.octets());
        assert!(h.dont_fragment);
        assert_eq!(h.time_to_live, spec.ttl);
        let sport = spec.src_port_of(flow);
        match &p.transport {
            Some(TransportSlice::Udp(u)) => {
                assert_eq!(spec.proto, Proto::Udp);
                let uh = u.to_header();
                assert_eq!(
                    (uh.source_port, uh.destination_port),
                    (sport, spec.dst_port)
                );
                assert_eq!(usize::from(uh.length), f.len() - 34);
                let want = uh.calc_checksum_ipv4(&h, u.payload()).unwrap();
                assert_eq!(uh.checksum, want, "UDP checksum");
                u.payload().to_vec()
            }
            Some(TransportSlice::Tcp(t)) => {
                assert_eq!(spec.proto, Proto::TcpSyn);
                let th = t.to_header();
                assert!(th.syn && !th.ack && !th.rst && !th.fin);
                assert_eq!(
                    (th.source_port, th.destination_port),
                    (sport, spec.dst_port)
                );
                let want = th.calc_checksum_ipv4(&h, t.payload()).unwrap();
                assert_eq!(th.checksum, want, "TCP checksum");
                t.payload().to_vec()
            }
            other => panic!("unexpected transport {other:?}"),
        }
    }

    #[test]
    fn sixty_four_byte_udp_frame_is_valid_and_stamped() {
        let s = spec(Proto::Udp, 4);
        let mut fac = FrameFactory::new(&s, &[64]).unwrap();
        let stamp = Stamp {
            stream: 7,
            seq: 123_456,
            tx_ns: 42,
        };
        let f = fac.frame(0, 3, &stamp).to_vec();
        assert_eq!(f.len(), 60);
        let payload = check_frame(&f, &s, 3);
        assert_eq!(payload.len(), STAMP_LEN);
        assert_eq!(Stamp::parse(&payload), Some(stamp));
    }

    #[test]
    fn tcp_syn_needs_room_for_the_stamp() {
        let s = spec(Proto::TcpSyn, 1);
        assert_eq!(s.min_frame(), 76);
        assert!(FrameFactory::new(&s, &[64]).is_err());
        let mut fac = FrameFactory::new(&s, &[76, 1518]).unwrap();
        let stamp = Stamp {
            stream: 0,
            seq: 1,
            tx_ns: 2,
        };
        for size in 0..2 {
            let f = fac.frame(size, 0, &stamp).to_vec();
            let payload = check_frame(&f, &s, 0);
            assert_eq!(Stamp::parse(&payload), Some(stamp));
        }
    }

    #[test]
    fn flows_must_fit_the_port_range() {
        let mut s = spec(Proto::Udp, 0);
        assert!(s.check(&[64]).is_err());
        s.flows = 65_536 - 10_000;
        assert!(s.check(&[64]).is_ok());
        s.flows += 1;
        assert!(s.check(&[64]).is_err());
    }

    proptest! {
        #[test]
        fn every_frame_is_valid(
            udp: bool,
            size in 76usize..=1518,
            flow in 0u32..100,
            stream: u16,
            seq in 0..=crate::pktgen::stamp::MAX_SEQ,
            tx_ns: u64,
        ) {
            let s = spec(if udp { Proto::Udp } else { Proto::TcpSyn }, 100);
            let mut fac = FrameFactory::new(&s, &[64.max(s.min_frame()), size]).unwrap();
            let stamp = Stamp { stream, seq, tx_ns };
            // The second frame of a template must not carry anything of the first.
            fac.frame(1, 99, &Stamp { stream: !stream, seq: seq ^ 1, tx_ns: !tx_ns });
            let f = fac.frame(1, flow, &stamp).to_vec();
            prop_assert_eq!(f.len(), size - FCS_LEN);
            let payload = check_frame(&f, &s, flow);
            prop_assert_eq!(Stamp::parse(&payload), Some(stamp));
            for (i, b) in payload[STAMP_LEN..].iter().enumerate() {
                prop_assert_eq!(*b, i as u8);
            }
        }
    }
}
