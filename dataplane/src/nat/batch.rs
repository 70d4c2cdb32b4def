//! Translating a batch of packets with the memory reads of their lookups
//! started before the first is needed. A table larger than the caches misses
//! twice per lookup (index entry, then session slot); one packet at a time,
//! each miss waits alone, while a batch overlaps them.

use super::packet::{inbound_endpoint, outbound_endpoint};
use super::session::Dir;
use super::table::NatTable;
use super::translate::Translated;
use super::NatError;

/// Packets whose reads are in flight together: enough to overlap many memory
/// latencies, few enough that the lines fetched are still cached when used.
const CHUNK: usize = 16;

impl NatTable {
    /// Translates `packets` inside→outside, in order, each exactly as
    /// [`NatTable::translate_out`] would, passing `each` the packet's position
    /// and result. For up to 16 packets at a time, their index entries and then
    /// their session slots are loaded before the first is translated.
    pub fn translate_out_batch<P: AsMut<[u8]>>(
        &mut self,
        packets: &mut [P],
        now: u64,
        each: impl FnMut(usize, Result<Translated, NatError>),
    ) {
        self.batch(packets, Dir::Out, each, |t, p| t.translate_out(p, now));
    }

    /// Translates `packets` outside→inside like [`NatTable::translate_out_batch`],
    /// each exactly as [`NatTable::translate_in`] would.
    pub fn translate_in_batch<P: AsMut<[u8]>>(
        &mut self,
        packets: &mut [P],
        now: u64,
        each: impl FnMut(usize, Result<Translated, NatError>),
    ) {
        self.batch(packets, Dir::In, each, |t, p| t.translate_in(p, now));
    }

    fn batch<P: AsMut<[u8]>>(
        &mut self,
        packets: &mut [P],
        dir: Dir,
        mut each: impl FnMut(usize, Result<Translated, NatError>),
        translate: impl Fn(&mut NatTable, &mut [u8]) -> Result<Translated, NatError>,
    ) {
        for (c, chunk) in packets.chunks_mut(CHUNK).enumerate() {
            let mut tags = [None; CHUNK];
            for (tag, p) in tags.iter_mut().zip(chunk.iter_mut()) {
                let packet = p.as_mut();
                let ep = match dir {
                    Dir::Out => outbound_endpoint(packet),
                    Dir::In => inbound_endpoint(packet),
                };
                *tag = ep.ok().map(|ep| self.prefetch_entry(ep, dir));
            }
            for &tag in tags.iter().flatten() {
                self.prefetch_slot(tag, dir);
            }
            for (k, p) in chunk.iter_mut().enumerate() {
                each(c * CHUNK + k, translate(self, p.as_mut()));
            }
        }
    }
}
