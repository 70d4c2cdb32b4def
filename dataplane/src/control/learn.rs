//! Runs the weight learners (`bond/learn.rs`) of the peers whose weights are learned, on the
//! control thread: every [`LEARN_EVERY`] it hands each learner its links' figures (what the
//! probes measured, what was sent on them) and stores the weights it learns in the links;
//! the workers rebuild their schedulers at their next batch (`Board::weights_learned`).

use crate::bond::learn::{Learner, LinkFigures};
use crate::pipeline::Shared;
use crate::snapshot::{Link, Peer};
use crate::stats::WorkerStats;
use braid_control::config::LinkState;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often the learners look at the links.
pub const LEARN_EVERY: Duration = Duration::from_millis(50);

/// A peer's learner, known by the peer's key and its links' names: a change that keeps
/// both (a route, a mode) keeps what was learned.
struct Entry {
    public_key: [u8; 32],
    links: Vec<String>,
    learner: Learner,
}

/// The learners of the peers in auto.
#[derive(Default)]
pub struct Learners {
    entries: Vec<Entry>,
}

impl Learners {
    /// Looks at every peer in auto at `now` (monotonic ns); returns a line to log per peer
    /// whose weights changed.
    pub fn step(&mut self, shared: &Shared, stats: &[Arc<WorkerStats>], now: u64) -> Vec<String> {
        let snap = shared.snapshot.load();
        let mut kept = Vec::new();
        let mut log = Vec::new();
        for peer in snap.peers.iter().filter(|p| p.links.iter().any(|l| l.auto)) {
            let names: Vec<String> = peer.links.iter().map(|l| l.name.clone()).collect();
            let mut entry = match self
                .entries
                .iter()
                .position(|e| e.public_key == peer.public_key && e.links == names)
            {
                Some(i) => self.entries.swap_remove(i),
                None => Entry {
                    public_key: peer.public_key,
                    links: names,
                    learner: Learner::new(&start(peer), now),
                },
            };
            let figures: Vec<LinkFigures> = peer.links.iter().map(|l| figures(l, stats)).collect();
            if entry.learner.step(now, &figures).is_some() {
                let weights = entry.learner.weights();
                for (l, &w) in peer.links.iter().zip(weights) {
                    l.learned.store(w, Ordering::Relaxed);
                }
                shared.board.weights_learned();
                let each: Vec<String> = peer
                    .links
                    .iter()
                    .zip(weights)
                    .zip(&figures)
                    .zip(entry.learner.saturated())
                    .map(|(((l, w), f), s)| {
                        let mbit = f.delivered_bps as f64 / 1e6;
                        match s.words() {
                            why if why.is_empty() => format!("{} {w} ({mbit:.1} Mbit/s)", l.name),
                            why => format!("{} {w} ({mbit:.1} Mbit/s, saturated: {why})", l.name),
                        }
                    })
                    .collect();
                log.push(format!(
                    "weights of {} learned: {}",
                    peer.name,
                    each.join(", ")
                ));
            }
            kept.push(entry);
        }
        self.entries = kept;
        log
    }
}

/// Where a peer's learner starts: what it learned before (a peer whose learner was
/// dropped keeps its links' learned weights), else its configured weights.
fn start(peer: &Peer) -> Vec<u32> {
    let learned: Vec<u32> = peer
        .links
        .iter()
        .map(|l| l.learned.load(Ordering::Relaxed))
        .collect();
    if learned.iter().any(|&w| w > 0) {
        learned
    } else {
        peer.links.iter().map(|l| l.weight).collect()
    }
}

/// What the learner is told about `link`.
fn figures(link: &Link, stats: &[Arc<WorkerStats>]) -> LinkFigures {
    let f = link.health.figures();
    LinkFigures {
        usable: link.state == LinkState::Up && link.weight > 0 && link.health.is_up(),
        delivered_bps: f.peer_rx_bps,
        rate_samples: f.rate_samples,
        sent_bytes: stats
            .iter()
            .filter_map(|s| s.links.get(link.slot.0))
            .map(|c| c.tx_bytes.get())
            .fold(0, u64::wrapping_add),
        delay_ns: f.fwd_offset_ns,
        loss_permille: f.loss_permille,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Secrets, Snapshot};
    use braid_control::config::Config;

    const MS: u64 = 1_000_000;

    /// The lab edge with learned weights, its workers' counters, and the links fed as the
    /// probes and the workers would: 400 Mbit/s split by the weights the workers use, over
    /// links that carry 100 and 50 Mbit/s.
    #[test]
    fn learned_weights_reach_the_links_and_the_workers_are_told() {
        let text = braid_testkit::EDGE.replacen(
            "allowed = [\"0.0.0.0/0\"]",
            "allowed = [\"0.0.0.0/0\"]\nweights = \"auto\"",
            1,
        );
        let cfg: Config = toml::from_str(&text).unwrap();
        let snap =
            Snapshot::build(&cfg, &braid_testkit::EDGE_MACS, &Secrets::of_lab(&cfg), 1).unwrap();
        let shared = Shared::new(snap, 7);
        let stats = vec![Arc::new(WorkerStats::default())];
        let caps = [100_000_000u64, 50_000_000];
        let mut delivered = [0u64; 2];
        let mut learners = Learners::default();
        let mut log = Vec::new();
        let tick = 50 * MS;
        for step in 1..=100u64 {
            let now = step * tick;
            let snap = shared.snapshot.load();
            let links = &snap.peers[0].links;
            let w: Vec<u64> = links.iter().map(|l| u64::from(l.admin_weight())).collect();
            let total: u64 = w.iter().sum();
            for (i, l) in links.iter().enumerate() {
                let sent = 400_000_000 * w[i] / total * tick / 8_000_000_000;
                stats[0].links[l.slot.0].tx_bytes.add(sent);
                delivered[i] += sent.min(caps[i] * tick / 8_000_000_000);
                l.health.lock().on_peer_clock(now, now, delivered[i]);
            }
            log.extend(learners.step(&shared, &stats, now));
        }
        let snap = shared.snapshot.load();
        let learned: Vec<Option<u32>> = snap.peers[0]
            .links
            .iter()
            .map(|l| l.learned_weight())
            .collect();
        let (Some(a), Some(b)) = (learned[0], learned[1]) else {
            panic!("nothing learned: {learned:?}")
        };
        let ratio = f64::from(a) / f64::from(b);
        assert!((ratio / 2.0 - 1.0).abs() <= 0.10, "{learned:?}");
        assert_eq!(shared.board.weight_changes(), log.len() as u64);
        assert!(
            log[0].starts_with("weights of hub learned: isp1 "),
            "{log:?}"
        );
        // Settled: a few changes in 5 s, not one per figure.
        assert!(log.len() <= 3, "{log:?}");
    }
}
