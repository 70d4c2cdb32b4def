//! ARP for IPv4 over Ethernet (RFC 826).

use super::{addr, be16, Mac, WireError};
use std::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// ARP request opcode.
pub const OP_REQUEST: u16 = 1;
/// ARP reply opcode.
pub const OP_REPLY: u16 = 2;

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// Reads an ARP packet (the Ethernet payload); refuses other hardware or
    /// protocol types.
    pub fn parse(payload: &[u8]) -> Result<Arp, WireError> {
        let p: &[u8; PACKET_LEN] = payload.first_chunk().ok_or(WireError::Truncated)?;
        if be16(p, 0) != 1 || be16(p, 2) != 0x0800 || p[4] != 6 || p[5] != 4 {
            return Err(WireError::Malformed);
        }
        let mut sender_mac = [0; 6];
        let mut target_mac = [0; 6];
        sender_mac.copy_from_slice(&p[8..14]);
        target_mac.copy_from_slice(&p[18..24]);
        Ok(Arp {
            op: be16(p, 6),
            sender_mac,
            sender_ip: addr(p, 14),
            target_mac,
            target_ip: addr(p, 24),
        })
    }

    /// Writes the packet.
    pub fn emit(&self, buf: &mut [u8; PACKET_LEN]) {
        buf[..6].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
        buf[6..8].copy_from_slice(&self.op.to_be_bytes());
        buf[8..14].copy_from_slice(&self.sender_mac);
        buf[14..18].copy_from_slice(&self.sender_ip.octets());
        buf[18..24].copy_from_slice(&self.target_mac);
        buf[24..28].copy_from_slice(&self.target_ip.octets());
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
