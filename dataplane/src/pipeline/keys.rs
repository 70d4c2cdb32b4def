//! One worker's view of the tunnel sessions: the session each peer is sent with and the
//! sessions that open messages, by receiver index. Rebuilt when the sessions' epoch or
//! the snapshot moves (`crate::session` says why).

use crate::ids::{Lane, PeerIdx};
use crate::session::Live;
use crate::snapshot::Snapshot;
use std::sync::Arc;

/// The sessions as this worker uses them.
#[derive(Debug)]
pub struct Keys {
    lane: Lane,
    /// The sessions' epoch and the snapshot generation this view was built at.
    built: Option<(u64, u64)>,
    /// The session each peer is sent with (snapshot order).
    send: Vec<Option<Arc<Live>>>,
    /// Every session that opens, sorted by this end's index.
    recv: Vec<(u32, PeerIdx, Arc<Live>)>,
}

impl Keys {
    /// The view of worker `lane`, empty until [`Keys::sync`].
    pub fn new(lane: Lane) -> Keys {
        Keys {
            lane,
            built: None,
            send: Vec::new(),
            recv: Vec::new(),
        }
    }

    /// This worker's sender lane.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// Rebuilds the view from `snap`'s peers unless it was built at this `epoch` (read
    /// before calling, so that a change made meanwhile shows at the next batch); true
    /// when it did.
    pub fn sync(&mut self, snap: &Snapshot, epoch: u64) -> bool {
        if self.built == Some((epoch, snap.generation)) {
            return false;
        }
        self.send = snap.peers.iter().map(|p| p.keys.sending()).collect();
        self.recv.clear();
        for (i, p) in snap.peers.iter().enumerate() {
            for live in p.keys.receiving() {
                self.recv.push((live.local_index, PeerIdx(i), live));
            }
        }
        self.recv.sort_unstable_by_key(|(index, ..)| *index);
        self.built = Some((epoch, snap.generation));
        true
    }

    /// The session to send to `peer` with.
    #[inline]
    pub fn sender(&self, peer: PeerIdx) -> Option<&Live> {
        self.send.get(peer.0)?.as_deref()
    }

    /// The peer and session of the receiver index `index`.
    #[inline]
    pub fn receiver(&self, index: u32) -> Option<(PeerIdx, &Arc<Live>)> {
        let at = self.recv.binary_search_by_key(&index, |(i, ..)| *i).ok()?;
        self.recv.get(at).map(|(_, p, l)| (*p, l))
    }
}
