//! What the daemon tells its log about sessions: a peer's session made or lost, and, at
//! most once a minute each, messages of the old protocol and refused handshakes.

use super::Live;
use std::collections::HashMap;
use std::sync::Arc;

/// Refusals of one kind are told at most this often.
const QUIET_NS: u64 = 60_000_000_000;

/// What the log was last told.
#[derive(Debug, Default)]
pub struct SessionLog {
    /// Each peer's (by name) session index when last looked at.
    seen: HashMap<String, u32>,
    old_version: Refusals,
    bad_handshake: Refusals,
}

/// A drop counter and when it was last told.
#[derive(Debug, Default)]
struct Refusals {
    total: u64,
    told: Option<u64>,
}

impl Refusals {
    /// The new count since it was last told, when it is time to tell it.
    fn due(&mut self, total: u64, now: u64) -> Option<u64> {
        let new = total.saturating_sub(self.total);
        if new == 0 || self.told.is_some_and(|t| now.saturating_sub(t) < QUIET_NS) {
            return None;
        }
        self.total = total;
        self.told = Some(now);
        Some(new)
    }
}

impl SessionLog {
    /// The lines to log at `now`, given each peer's name and the session it is sent with,
    /// and the workers' `old_version` and `bad_handshake` drops so far.
    pub fn lines<'p>(
        &mut self,
        peers: impl IntoIterator<Item = (&'p str, Option<Arc<Live>>)>,
        (old, bad): (u64, u64),
        now: u64,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (name, current) in peers {
            let before = self.seen.get(name).copied();
            match (&current, before) {
                (Some(l), None) => {
                    out.push(format!(
                        "session with {name} made ({})",
                        l.send.cipher().name()
                    ));
                    self.seen.insert(name.to_string(), l.local_index);
                }
                (Some(l), Some(_)) => {
                    self.seen.insert(name.to_string(), l.local_index);
                }
                (None, Some(_)) => {
                    out.push(format!(
                        "session with {name} lost: no handshake for three minutes"
                    ));
                    self.seen.remove(name);
                }
                (None, None) => {}
            }
        }
        if let Some(n) = self.old_version.due(old, now) {
            out.push(format!(
                "{n} tunnel message(s) of an older protocol version (1 or 2) dropped: a peer runs an older \
                 braid; upgrade both ends (docs/PROTOCOL.md)"
            ));
        }
        if let Some(n) = self.bad_handshake.due(bad, now) {
            out.push(format!(
                "{n} handshake message(s) refused: a peer with another key (check both ends' \
                 public_key and preshared_key_file), or forged"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Shared;
    use crate::snapshot::{Secrets, Snapshot};
    use braid_control::config::Config;

    /// The peers of `snap` as the daemon hands them to the log.
    fn peers(snap: &Snapshot) -> Vec<(&str, Option<Arc<Live>>)> {
        snap.peers
            .iter()
            .map(|p| (p.name.as_str(), p.keys.sending()))
            .collect()
    }

    const S: u64 = 1_000_000_000;

    fn shared(text: &str, macs: &[[u8; 6]]) -> Shared {
        let cfg: Config = toml::from_str(text).unwrap();
        Shared::new(
            Snapshot::build(&cfg, macs, &Secrets::of_lab(&cfg), 1).unwrap(),
            7,
        )
    }

    #[test]
    fn tells_a_session_made_and_lost_and_refusals_once_a_minute() {
        let edge = shared(braid_testkit::EDGE, &braid_testkit::EDGE_MACS);
        let hub = shared(braid_testkit::HUB, &[braid_testkit::HUB_MAC]);
        let mut log = SessionLog::default();
        assert!(log
            .lines(peers(&edge.snapshot.load()), (0, 0), S)
            .is_empty());
        edge.pair_with(&hub, S).unwrap();
        let lines = log.lines(peers(&edge.snapshot.load()), (0, 0), 2 * S);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("session with hub made ("), "{lines:?}");
        assert!(log
            .lines(peers(&edge.snapshot.load()), (0, 0), 3 * S)
            .is_empty());
        // Three minutes without a handshake: the session goes.
        let snap = edge.snapshot.load();
        snap.peers[0].keys.tick(
            &edge.sessions,
            S + crate::session::REJECT_AFTER_NS,
            false,
            u64::MAX,
        );
        let lines = log.lines(peers(&snap), (0, 0), 200 * S);
        assert_eq!(
            lines,
            ["session with hub lost: no handshake for three minutes"]
        );
        // Refusals: told at once, then at most once a minute, with the count since.
        let lines = log.lines(peers(&snap), (3, 1), 201 * S);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("3 tunnel message(s) of an older protocol version"));
        assert!(lines[1].starts_with("1 handshake message(s) refused"));
        assert!(log.lines(peers(&snap), (9, 1), 230 * S).is_empty());
        let lines = log.lines(peers(&snap), (9, 1), 261 * S);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("6 tunnel message(s)"), "{lines:?}");
    }
}
