//! The bond's link schedulers of one worker, one per peer, and the bond sequence this
//! worker (a sender lane) numbers its data packets to each peer with.

use crate::bond::Scheduler;
use crate::ids::PeerIdx;
use crate::snapshot::Snapshot;
use braid_control::config::BondMode;

/// One link scheduler per peer, rebuilt (restarted) on every snapshot change, and one
/// bond sequence per peer, kept across them.
#[derive(Debug, Default)]
pub struct Schedulers {
    scheds: Vec<Scheduler>,
    /// Per peer: the packets spread over more than one link (packet mode, two links in use).
    spreads: Vec<bool>,
    /// Per peer: the last bond sequence given.
    seqs: Vec<u32>,
}

impl Schedulers {
    /// Schedulers over the weights of `snap`'s peers.
    pub fn sync(&mut self, snap: &Snapshot) {
        self.scheds = snap
            .peers
            .iter()
            .map(|p| p.scheduler(snap.mode, snap.balance))
            .collect();
        self.spreads = self
            .scheds
            .iter()
            .map(|s| {
                s.mode() == BondMode::Packet && s.weights().iter().filter(|&&w| w > 0).count() > 1
            })
            .collect();
        self.seqs.resize(self.scheds.len(), 0);
    }

    /// The scheduler of `peer`.
    pub fn get(&self, peer: PeerIdx) -> Option<&Scheduler> {
        self.scheds.get(peer.0)
    }

    /// The link (index among the peer's links) for a packet of flow `hash` and
    /// `bytes` bytes.
    #[inline]
    pub fn pick(&mut self, peer: PeerIdx, hash: u32, bytes: usize) -> Option<usize> {
        self.scheds.get_mut(peer.0)?.pick(hash, bytes)
    }

    /// The bond sequence of the next data packet to `peer`: 1, 2, ... (0 is skipped
    /// when it wraps), or 0 when the packets do not spread over links and so keep their
    /// order without it (flow mode, or one link in use).
    #[inline]
    pub fn next_seq(&mut self, peer: PeerIdx) -> u32 {
        if !self.spreads.get(peer.0).copied().unwrap_or(false) {
            return 0;
        }
        self.next_seq_always(peer)
    }

    /// The bond sequence of the next data packet to `peer`, whatever the mode: for a
    /// packet sent on several links, whose second copies the receiver must recognise.
    #[inline]
    pub fn next_seq_always(&mut self, peer: PeerIdx) -> u32 {
        let Some(seq) = self.seqs.get_mut(peer.0) else {
            return 0;
        };
        *seq = seq.wrapping_add(1).max(1);
        *seq
    }
}
