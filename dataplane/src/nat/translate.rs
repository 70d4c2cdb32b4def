//! Translation of whole IPv4 packets in place: TCP, UDP, ICMP echo, and ICMP
//! errors for the session they quote.

use super::packet::{parse, Endpoint, Kind, Parsed};
use super::session::Dir;
use super::table::{NatTable, SlotHint};
use super::NatError;
use crate::wire::icmp::Icmp;
use crate::wire::ipv4::Ipv4Mut;
use crate::wire::l4::{self, End};

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
        self.translate_out_at(packet, None, now)
    }

    /// [`NatTable::translate_out`], trying first the slot `hint` that
    /// [`NatTable::prefetch_session_out`] found for the packet.
    #[inline]
    pub fn translate_out_at(
        &mut self,
        packet: &mut [u8],
        hint: Option<SlotHint>,
        now: u64,
    ) -> Result<Translated, NatError> {
        self.translate_at(packet, Dir::Out, hint, now)
    }

    /// [`NatTable::translate_out`] of packet `ip`, parsed as `p`; `hint` is the slot
    /// its lookup found when it started ([`NatTable::prefetch_slot`]), if it did.
    #[inline]
    pub(crate) fn translate_out_parsed(
        &mut self,
        mut ip: Ipv4Mut<'_>,
        p: Parsed,
        hint: Option<SlotHint>,
        now: u64,
    ) -> Result<Translated, NatError> {
        let t = match p.kind {
            Kind::Flow { tcp_flags } => {
                let (i, created) = self.by_inside_or_new(p.ep, hint, now)?;
                self.touch(i, Dir::Out, tcp_flags, now);
                let (inside, outside) =
                    self.endpoints(self.slots.get(i as usize).ok_or(NatError::NoSession)?);
                l4::set_endpoint(&mut ip, End::Src, outside.addr, outside.port);
                Translated {
                    inside,
                    outside,
                    created,
                    icmp_error: false,
                }
            }
            Kind::Error => {
                let i = self.by_inside(p.ep, hint, now).ok_or(NatError::NoSession)?;
                let (inside, outside) =
                    self.endpoints(self.slots.get(i as usize).ok_or(NatError::NoSession)?);
                // The quoted packet came in, its destination translated: undo that.
                translate_quote(&mut ip, End::Dst, outside)?;
                ip.set_src(outside.addr);
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
        self.translate_in_at(packet, None, now)
    }

    /// [`NatTable::translate_in`], trying first the slot `hint` that
    /// [`NatTable::prefetch_session_in`] found for the packet.
    #[inline]
    pub fn translate_in_at(
        &mut self,
        packet: &mut [u8],
        hint: Option<SlotHint>,
        now: u64,
    ) -> Result<Translated, NatError> {
        self.translate_at(packet, Dir::In, hint, now)
    }

    /// Parses `packet` going `dir` and translates it (`hint` as for
    /// [`NatTable::translate_out_at`]).
    #[inline]
    fn translate_at(
        &mut self,
        packet: &mut [u8],
        dir: Dir,
        hint: Option<SlotHint>,
        now: u64,
    ) -> Result<Translated, NatError> {
        let ip = Ipv4Mut::parse(packet).map_err(|_| NatError::Malformed)?;
        let p = parse(&ip.view(), dir)?;
        self.translate_parsed(ip, (p, dir), hint, now)
    }

    /// Translates packet `ip`, parsed as `p` going `dir` ([`NatTable::translate_out_parsed`]
    /// or [`NatTable::translate_in_parsed`]).
    #[inline]
    pub(crate) fn translate_parsed(
        &mut self,
        ip: Ipv4Mut<'_>,
        (p, dir): (Parsed, Dir),
        hint: Option<SlotHint>,
        now: u64,
    ) -> Result<Translated, NatError> {
        match dir {
            Dir::Out => self.translate_out_parsed(ip, p, hint, now),
            Dir::In => self.translate_in_parsed(ip, p, hint, now),
        }
    }

    /// [`NatTable::translate_in`] of packet `ip`, parsed as `p` (`hint` as for
    /// [`NatTable::translate_out_parsed`]).
    #[inline]
    pub(crate) fn translate_in_parsed(
        &mut self,
        mut ip: Ipv4Mut<'_>,
        p: Parsed,
        hint: Option<SlotHint>,
        now: u64,
    ) -> Result<Translated, NatError> {
        let t = match p.kind {
            Kind::Flow { tcp_flags } => {
                let i = self
                    .by_outside(p.ep, hint, now)
                    .ok_or(NatError::NoSession)?;
                self.touch(i, Dir::In, tcp_flags, now);
                let (inside, outside) =
                    self.endpoints(self.slots.get(i as usize).ok_or(NatError::NoSession)?);
                l4::set_endpoint(&mut ip, End::Dst, inside.addr, inside.port);
                Translated {
                    inside,
                    outside,
                    created: false,
                    icmp_error: false,
                }
            }
            Kind::Error => {
                // The error must be addressed to the quoted packet's source.
                if ip.view().dst() != p.ep.addr {
                    return Err(NatError::NoSession);
                }
                let i = self
                    .by_outside(p.ep, hint, now)
                    .ok_or(NatError::NoSession)?;
                let (inside, outside) =
                    self.endpoints(self.slots.get(i as usize).ok_or(NatError::NoSession)?);
                // The quoted packet went out, its source translated: undo that.
                translate_quote(&mut ip, End::Src, inside)?;
                ip.set_dst(inside.addr);
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

/// Sets endpoint `ep` on `end` of the packet quoted by the ICMP error `ip`
/// (checked by `parse`), carrying the change into the ICMP checksum. The quoted
/// transport checksum is fixed only if the quote holds it.
fn translate_quote(ip: &mut Ipv4Mut<'_>, end: End, ep: Endpoint) -> Result<(), NatError> {
    l4::set_quoted_endpoint(
        &mut Icmp::new_unchecked(ip.payload_mut()),
        end,
        ep.addr,
        ep.port,
    )
    .map_err(|_| NatError::Malformed)
}
