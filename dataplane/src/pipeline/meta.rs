//! What the pipeline knows of the frame it carries: parsed once at ingress (and
//! once more for the inner packet out of the tunnel), updated by the stages that
//! rewrite the packet, and read by the others instead of parsing again.

use crate::frame::PortId;
use crate::ids::PeerIdx;
use crate::wire::{ipv4::Ipv4, l4, Mac};
use std::net::Ipv4Addr;

/// A frame's facts on its way through the stages.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// The port the frame came in on.
    pub in_port: PortId,
    /// The Ethernet source of the frame as received: errors go back there.
    pub from_mac: Mac,
    /// The IPv4 packet after the Ethernet header (set by the `Ipv4` stage).
    pub ip: IpFacts,
    /// The peer whose tunnel the packet came out of (set by `Open`): it never goes
    /// back into that peer's bond.
    pub from_peer: Option<PeerIdx>,
    /// The packet is a copy (handed over by another worker, released by a window): it
    /// leaves after the frames this round sends in place.
    pub by_copy: bool,
}

/// The IPv4 and transport facts the stages route and classify by.
#[derive(Debug, Clone, Copy)]
pub struct IpFacts {
    pub header_len: usize,
    pub total_len: usize,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub dont_fragment: bool,
    /// A fragment other than the first (no transport header).
    pub later_fragment: bool,
    /// The start of the transport header: the ICMP type, the ports.
    pub l4: l4::Head,
}

impl Default for IpFacts {
    fn default() -> Self {
        IpFacts {
            header_len: 0,
            total_len: 0,
            protocol: 0,
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            ttl: 0,
            dont_fragment: false,
            later_fragment: false,
            l4: l4::Head::default(),
        }
    }
}

impl IpFacts {
    /// The destination port, for UDP.
    pub fn udp_dst_port(&self) -> Option<u16> {
        (self.protocol == crate::wire::ipv4::PROTO_UDP)
            .then(|| self.l4.dst_port())
            .flatten()
    }

    /// The facts of a checked IPv4 packet.
    #[inline(always)]
    pub fn of(ip: &Ipv4<'_>) -> IpFacts {
        IpFacts {
            header_len: ip.header_len(),
            total_len: ip.total_len(),
            protocol: ip.protocol(),
            src: ip.src(),
            dst: ip.dst(),
            ttl: ip.ttl(),
            dont_fragment: ip.dont_fragment(),
            later_fragment: ip.is_later_fragment(),
            l4: l4::Head::of(ip),
        }
    }
}

impl Meta {
    /// A frame just received on `in_port`, not parsed yet.
    pub fn new(in_port: PortId) -> Meta {
        Meta {
            in_port,
            from_mac: [0; 6],
            ip: IpFacts::default(),
            from_peer: None,
            by_copy: false,
        }
    }
}
