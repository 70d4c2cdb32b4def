//! Translation of whole IPv4 packets in place: TCP, UDP, ICMP echo, and ICMP
//! errors for the session they quote.

use super::packet::{get16, parse, set16, set_addr, set_endpoint, Endpoint, Kind, Side};
use super::session::Dir;
use super::table::NatTable;
use super::NatError;

/// What a translation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translated {
    /// The session's inside endpoint.
    pub inside: Endpoint,
    /// The session's outside endpoint.
    pub outside: Endpoint,
    /// The packet created the session.
    pub created: bool,
    /// The packet was an ICMP error, translated for the session it quotes.
    pub icmp_error: bool,
}

impl NatTable {
    /// Translates an inside→outside IPv4 packet in place: its source becomes the
    /// session's outside address and port (or ICMP echo identifier), the session
    /// is created if needed. An ICMP error from inside about a packet that came
    /// in gets its outer source and the quoted destination translated back.
    /// Checksums are updated incrementally; trailing bytes past the IPv4 total
    /// length are left alone. On error the packet is unchanged.
    pub fn translate_out(&mut self, packet: &mut [u8], now: u64) -> Result<Translated, NatError> {
        let p = parse(packet, Dir::Out)?;
        let b = packet.get_mut(..p.total).ok_or(NatError::Malformed)?;
        let t = match p.kind {
            Kind::Flow { tcp_flags } => {
                let (i, created) = self.by_inside_or_new(p.ep, now)?;
                self.touch(i, Dir::Out, tcp_flags, now);
                let (inside, outside) =
                    self.endpoints(self.slots.get(i as usize).ok_or(NatError::NoSession)?);
                set_endpoint(b, p.hl, Side::Src, outside);
                Translated {
                    inside,
                    outside,
                    created,
                    icmp_error: false,
                }
            }
            Kind::Error { quote, qhl } => {
                let i = self.by_inside(p.ep, now).ok_or(NatError::NoSession)?;
                let (inside, outside) =
                    self.endpoints(self.slots.get(i as usize).ok_or(NatError::NoSession)?);
                translate_error(b, p.hl, quote, qhl, Side::Dst, outside);
                set_addr(b, Side::Src, outside.addr);
                Translated {
                    inside,
                    outside,
                    created: false,
                    icmp_error: true,
                }
            }
        };
        self.counters.translated_out += 1;
        Ok(t)
    }

    /// Translates an outside→inside IPv4 packet in place: its destination (a pool
    /// address and port or echo identifier) becomes the session's inside endpoint.
    /// Any outside host may reach a live mapping (endpoint-independent
    /// filtering); nothing creates one. An ICMP error about a packet that went
    /// out gets its outer destination and the quoted source translated back.
    /// On error the packet is unchanged.
    pub fn translate_in(&mut self, packet: &mut [u8], now: u64) -> Result<Translated, NatError> {
        let p = parse(packet, Dir::In)?;
        let b = packet.get_mut(..p.total).ok_or(NatError::Malformed)?;
        let t = match p.kind {
            Kind::Flow { tcp_flags } => {
                let i = self.by_outside(p.ep, now).ok_or(NatError::NoSession)?;
                self.touch(i, Dir::In, tcp_flags, now);
                let (inside, outside) =
                    self.endpoints(self.slots.get(i as usize).ok_or(NatError::NoSession)?);
                set_endpoint(b, p.hl, Side::Dst, inside);
                Translated {
                    inside,
                    outside,
                    created: false,
                    icmp_error: false,
                }
            }
            Kind::Error { quote, qhl } => {
                // The error must be addressed to the quoted packet's source.
                if b.get(16..20) != Some(&p.ep.addr.octets()[..]) {
                    return Err(NatError::NoSession);
                }
                let i = self.by_outside(p.ep, now).ok_or(NatError::NoSession)?;
                let (inside, outside) =
                    self.endpoints(self.slots.get(i as usize).ok_or(NatError::NoSession)?);
                translate_error(b, p.hl, quote, qhl, Side::Src, inside);
                set_addr(b, Side::Dst, inside.addr);
                Translated {
                    inside,
                    outside,
                    created: false,
                    icmp_error: true,
                }
            }
        };
        self.counters.translated_in += 1;
        Ok(t)
    }
}

/// Sets endpoint `ep` on `side` of the packet quoted by the ICMP error in `b`
/// (IPv4 header of `hl` bytes; quote at `quote` with a `qhl`-byte header) and
/// carries every changed word into the ICMP checksum. The quoted transport
/// checksum is fixed only if the quote holds it.
fn translate_error(b: &mut [u8], hl: usize, quote: usize, qhl: usize, side: Side, ep: Endpoint) {
    let Some(q) = b.get_mut(quote..) else {
        return;
    };
    let change = set_endpoint(q, qhl, side, ep);
    if let Some(c) = get16(b, hl + 2) {
        set16(b, hl + 2, change.apply(c));
    }
}
