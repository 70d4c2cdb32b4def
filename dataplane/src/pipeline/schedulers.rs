//! The bond's link schedulers of one worker, one per peer.

use crate::bond::Scheduler;
use crate::ids::PeerIdx;
use crate::snapshot::Snapshot;

/// One link scheduler per peer, rebuilt (restarted) on every snapshot change.
#[derive(Debug, Default)]
pub struct Schedulers(Vec<Scheduler>);

impl Schedulers {
    /// Schedulers over the weights of `snap`'s peers.
    pub fn sync(&mut self, snap: &Snapshot) {
        self.0 = snap
            .peers
            .iter()
            .map(|p| p.scheduler(snap.mode, snap.balance))
            .collect();
    }

    /// The scheduler of `peer`.
    pub fn get(&self, peer: PeerIdx) -> Option<&Scheduler> {
        self.0.get(peer.0)
    }

    /// The link (index among the peer's links) for a packet of flow `hash` and
    /// `bytes` bytes.
    pub fn pick(&mut self, peer: PeerIdx, hash: u32, bytes: usize) -> Option<usize> {
        self.0.get_mut(peer.0)?.pick(hash, bytes)
    }
}
