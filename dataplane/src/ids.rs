//! Typed indices into the running snapshot, so a peer number is never taken for a
//! link counter slot or a masquerade.

/// A peer: its position in [`Snapshot::peers`](crate::snapshot::Snapshot::peers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerIdx(pub usize);

/// A link's slot in the workers' per-link counters (unique over all peers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkSlot(pub usize);

/// A masquerade: its position in
/// [`Snapshot::masquerades`](crate::snapshot::Snapshot::masquerades).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MasqIdx(pub usize);

/// A worker, which is also a tunnel sender lane and a NAT session owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lane(pub u8);

impl Lane {
    /// The lane as an index into per-worker tables.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}
