//! Translating a batch of packets with the memory reads of their lookups
//! started before the first is needed. A table larger than the caches misses
//! twice per lookup (index entry, then session slot); one packet at a time,
//! each miss waits alone, while a batch overlaps them.

use super::packet::Endpoint;
use super::packet::{parse, Parsed};
use super::session::Dir;
use super::table::{NatTable, SlotHint};
use super::translate::Translated;
use super::NatError;
use crate::wire::ipv4::Ipv4Mut;

/// A lookup whose index entry is on its way into the cache (see
/// [`NatTable::prefetch_out`]): what [`NatTable::prefetch_session_out`] (or `_in`, for
/// the direction it was started in) needs to start loading its session slot once the
/// entry has arrived. Four bytes, so that the pipeline's stage result carries it.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    tag: u32,
}

/// How many packets ahead of the one translated its session slot is loaded (the
/// batch loads the index entry twice that ahead): at least one memory latency's
/// worth of translations, and few enough that the loads in flight stay within what
/// the core tracks (a batch of 64 started at once measured a quarter slower at 1 M
/// sessions, most likely as loads beyond that waited or were dropped). The
/// pipeline's parked frames load their slots as far ahead.
pub const AHEAD: usize = 8;
/// Packets parsed and not yet translated (a power of two above `2 * AHEAD`).
const RING: usize = (2 * AHEAD + 1).next_power_of_two();

/// A packet parsed ahead of its translation, the tag of its lookup, then the slot
/// that lookup found.
struct Staged<'a> {
    ip: Ipv4Mut<'a>,
    parsed: Parsed,
    tag: u32,
    hint: Option<SlotHint>,
}

impl NatTable {
    /// Translates `packets` inside→outside, in order, each exactly as
    /// [`NatTable::translate_out`] would, passing `each` the packet's position
    /// and result. Each packet's index entry is loaded 16 packets ahead of its
    /// translation, and its session slot 8 ahead.
    pub fn translate_out_batch<P: AsMut<[u8]>>(
        &mut self,
        packets: &mut [P],
        now: u64,
        each: impl FnMut(usize, Result<Translated, NatError>),
    ) {
        self.batch(packets, Dir::Out, now, each);
    }

    /// Translates `packets` outside→inside like [`NatTable::translate_out_batch`],
    /// each exactly as [`NatTable::translate_in`] would.
    pub fn translate_in_batch<P: AsMut<[u8]>>(
        &mut self,
        packets: &mut [P],
        now: u64,
        each: impl FnMut(usize, Result<Translated, NatError>),
    ) {
        self.batch(packets, Dir::In, now, each);
    }

    /// Starts loading the index entry the lookup of inside endpoint `ep` (an
    /// inside→outside packet's, [`outbound_endpoint`](super::outbound_endpoint))
    /// begins with. A hint only: nothing changes.
    pub fn prefetch_out(&self, ep: Endpoint) -> Lookup {
        Lookup {
            tag: self.prefetch_entry(ep, Dir::Out),
        }
    }

    /// As [`NatTable::prefetch_out`], for outside endpoint `ep` (an outside→inside
    /// packet's, [`inbound_endpoint`](super::inbound_endpoint)).
    pub fn prefetch_in(&self, ep: Endpoint) -> Lookup {
        Lookup {
            tag: self.prefetch_entry(ep, Dir::In),
        }
    }

    /// Starts loading the session slot that the index entry of `lookup` (from
    /// [`NatTable::prefetch_out`]) names: call it when that entry has had time to
    /// arrive (a memory latency after), before the packet is translated. Nothing
    /// changes; the slot is returned for [`NatTable::translate_out_at`].
    pub fn prefetch_session_out(&self, lookup: Lookup) -> Option<SlotHint> {
        self.prefetch_slot(lookup.tag, Dir::Out)
    }

    /// As [`NatTable::prefetch_session_out`], for a lookup from
    /// [`NatTable::prefetch_in`] (the slot for [`NatTable::translate_in_at`]).
    pub fn prefetch_session_in(&self, lookup: Lookup) -> Option<SlotHint> {
        self.prefetch_slot(lookup.tag, Dir::In)
    }

    /// Each packet is parsed once, when its index entry is loaded.
    fn batch<P: AsMut<[u8]>>(
        &mut self,
        packets: &mut [P],
        dir: Dir,
        now: u64,
        mut each: impl FnMut(usize, Result<Translated, NatError>),
    ) {
        let n = packets.len();
        let mut ring: [Result<Staged<'_>, NatError>; RING] =
            std::array::from_fn(|_| Err(NatError::Malformed));
        let mut rest = packets.iter_mut();
        for i in 0..n + 2 * AHEAD {
            if let (Some(p), Some(r)) = (rest.next(), ring.get_mut(i % RING)) {
                *r = self.stage(p.as_mut(), dir);
            }
            if let Some(j) = i.checked_sub(AHEAD).filter(|&j| j < n) {
                if let Some(Ok(s)) = ring.get_mut(j % RING) {
                    s.hint = self.prefetch_slot(s.tag, dir);
                }
            }
            let Some(k) = i.checked_sub(2 * AHEAD).filter(|&k| k < n) else {
                continue;
            };
            if let Some(r) = ring.get_mut(k % RING) {
                let result = std::mem::replace(r, Err(NatError::Malformed))
                    .and_then(|s| self.translate_parsed(s.ip, (s.parsed, dir), s.hint, now));
                each(k, result);
            }
        }
    }

    /// Parses `packet` for translation going `dir` and starts loading its index entry.
    #[inline]
    fn stage<'a>(&self, packet: &'a mut [u8], dir: Dir) -> Result<Staged<'a>, NatError> {
        let ip = Ipv4Mut::parse(packet).map_err(|_| NatError::Malformed)?;
        let parsed = parse(&ip.view(), dir)?;
        let tag = self.prefetch_entry(parsed.ep, dir);
        Ok(Staged {
            ip,
            parsed,
            tag,
            hint: None,
        })
    }
}
