//! Sessions made in memory, for tests, benches and fuzzing that start from a running
//! tunnel: the same handshake as on the wire, without the wire.

use super::Shared;
use crate::session::Live;
use crate::tunnel::handshake::{HandshakeError, Initiator};

impl Shared {
    /// Runs a handshake between this edge and `hub` (each a peer of the other) at `now`,
    /// and installs its session at both ends, confirmed, as the first message under it
    /// would leave it.
    pub fn pair_with(&self, hub: &Shared, now: u64) -> Result<(), HandshakeError> {
        let (e, h) = (self.snapshot.load(), hub.snapshot.load());
        let at_edge = e
            .peer_by_key(&h.statics.public())
            .and_then(|i| e.peer(i))
            .ok_or(HandshakeError::UnknownPeer)?;
        let index = self.sessions.new_index();
        let (initiator, init) = Initiator::start(
            &e.statics,
            &at_edge.public_key,
            at_edge.psk(),
            e.offer,
            index,
            0,
        )?;
        let (response, theirs) = h.responder.respond(&init, hub.sessions.new_index(), |k| {
            h.peer_by_key(k).and_then(|i| h.peer(i)).map(|p| *p.psk())
        })?;
        let ours = initiator.finish(&response)?;
        let at_hub = h
            .peer_by_key(&e.statics.public())
            .and_then(|i| h.peer(i))
            .ok_or(HandshakeError::UnknownPeer)?;
        let hub_index = theirs.local_index;
        at_edge
            .keys
            .initiated(&self.sessions, now, Live::new(ours, now, true));
        at_hub
            .keys
            .responded(&hub.sessions, Live::new(theirs, now, false));
        for live in at_hub.keys.receiving() {
            if live.local_index == hub_index {
                at_hub.keys.confirm(&hub.sessions, now, &live);
            }
        }
        Ok(())
    }
}
