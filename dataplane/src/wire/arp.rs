//! ARP for IPv4 over Ethernet (RFC 826).

use super::{get_addr, get_u16, get_u8, read, replace, replace_u16, set_u8, Mac, WireError};
use std::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// ARP request opcode.
pub const OP_REQUEST: u16 = 1;
/// ARP reply opcode.
pub const OP_REPLY: u16 = 2;

/// Hardware type of Ethernet.
const HTYPE_ETHERNET: u16 = 1;
/// Protocol type of IPv4.
const PTYPE_IPV4: u16 = 0x0800;

/// The packet's fields.
mod field {
    use crate::wire::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// Operation: [`OP_REQUEST`] or [`OP_REPLY`].
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: Mac,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: Mac,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// Reads an ARP packet (the Ethernet payload); refuses other hardware or
    /// protocol types.
    pub fn parse(payload: &[u8]) -> Result<Arp, WireError> {
        let p = payload;
        if p.len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        if get_u16(p, field::HTYPE) != HTYPE_ETHERNET
            || get_u16(p, field::PTYPE) != PTYPE_IPV4
            || get_u8(p, field::HLEN) != 6
            || get_u8(p, field::PLEN) != 4
        {
            return Err(WireError::Malformed);
        }
        Ok(Arp {
            op: get_u16(p, field::OPER),
            sender_mac: read(p, field::SHA.start),
            sender_ip: get_addr(p, field::SPA),
            target_mac: read(p, field::THA.start),
            target_ip: get_addr(p, field::TPA),
        })
    }

    /// Writes the packet.
    pub fn emit(&self, buf: &mut [u8; PACKET_LEN]) {
        let b = buf.as_mut_slice();
        replace_u16(b, field::HTYPE, HTYPE_ETHERNET);
        replace_u16(b, field::PTYPE, PTYPE_IPV4);
        set_u8(b, field::HLEN, 6);
        set_u8(b, field::PLEN, 4);
        replace_u16(b, field::OPER, self.op);
        replace(b, field::SHA.start, self.sender_mac);
        replace(b, field::SPA.start, self.sender_ip.octets());
        replace(b, field::THA.start, self.target_mac);
        replace(b, field::TPA.start, self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_request() {
        let a = Arp {
            op: OP_REQUEST,
            sender_mac: [2, 0, 0, 0, 0, 1],
            sender_ip: Ipv4Addr::new(198, 18, 1, 1),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(198, 18, 1, 2),
        };
        let mut b = [0u8; PACKET_LEN];
        a.emit(&mut b);
        let golden = [
            0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 198, 18, 1, 1, 0, 0, 0, 0, 0, 0, 198, 18, 1,
            2,
        ];
        assert_eq!(b, golden);
        assert_eq!(Arp::parse(&b), Ok(a));
        assert_eq!(Arp::parse(&b[..27]), Err(WireError::Truncated));
        let mut bad = b;
        bad[1] = 6;
        assert_eq!(Arp::parse(&bad), Err(WireError::Malformed));
    }
}
