//! The bond's per-peer state on one worker: tunnel sequences of its sender lane
//! and link schedulers.

use crate::bond::Scheduler;
use crate::ids::{Lane, PeerIdx};
use crate::snapshot::Snapshot;
use std::collections::HashMap;

/// This worker's lane and its next tunnel sequence per peer. Sequences are
/// nonces under the peer's key: a peer that stays or comes back after a change
/// continues where it was.
#[derive(Debug)]
pub struct Sequences {
    lane: Lane,
    /// Next sequence per peer (snapshot order).
    next: Vec<u64>,
    /// The peer id each entry of `next` belongs to.
    ids: Vec<u32>,
    /// Next sequence of every peer this lane ever sent to, by id, as of the last
    /// snapshot change.
    kept: HashMap<u32, u64>,
    /// First sequence of a peer never sent to.
    start: u64,
}

impl Sequences {
    /// Sequences of lane `lane`, each peer starting at `start`.
    pub fn new(lane: Lane, start: u64) -> Sequences {
        Sequences {
            lane,
            next: Vec::new(),
            ids: Vec::new(),
            kept: HashMap::new(),
            start,
        }
    }

    /// Follows a new snapshot's peers (matched by id).
    pub fn sync(&mut self, snap: &Snapshot) {
        self.kept
            .extend(self.ids.iter().copied().zip(self.next.iter().copied()));
        self.next = snap
            .peers
            .iter()
            .map(|p| self.kept.get(&p.id).copied().unwrap_or(self.start))
            .collect();
        self.ids = snap.peers.iter().map(|p| p.id).collect();
    }

    /// This worker's sender lane.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// Takes the next sequence for `peer`.
    pub fn take(&mut self, peer: PeerIdx) -> Option<u64> {
        let seq = self.next.get_mut(peer.0)?;
        let now = *seq;
        *seq += 1;
        Some(now)
    }
}

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
