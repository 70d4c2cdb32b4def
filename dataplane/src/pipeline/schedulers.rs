//! The bond's link schedulers of one worker, one per peer, and the bond sequence this
//! worker (a sender lane) numbers its data packets to each peer with.

use crate::bond::{flow_hash, Earliest, Scheduler};
use crate::ids::PeerIdx;
use crate::snapshot::{Peer, Snapshot};
use braid_control::config::{BondMode, Scheduling};

/// How often the earliest-delivery schedulers take the links' delays from the probes.
const DELAYS_EVERY_NS: u64 = 20_000_000;
/// Each half of the window a link's base delay is the lowest of.
const BASE_WINDOW_NS: u64 = 5_000_000_000;
/// Delay differences below this are the probes' noise, not the links': taken as none.
const DELAY_NOISE_NS: u64 = 250_000;

/// Bytes a packet takes on a link beyond its inner IP packet: the tunnel's IP, UDP and header,
/// the AEAD tag, the Ethernet header.
const WIRE_OVERHEAD: usize = 64 + 14;

/// One link scheduler per peer, rebuilt (restarted) on every snapshot change, and one
/// bond sequence per peer, kept across them.
#[derive(Debug, Default)]
pub struct Schedulers {
    scheds: Vec<Scheduler>,
    /// Per peer with `scheduler = "earliest"` (packet mode): the earliest-delivery choice,
    /// used instead of the round robin, and its links' base delays.
    earliest: Vec<Option<(Earliest, Vec<BaseDelay>)>>,
    /// The worker's time at the start of this batch, and when the delays were last taken.
    now: u64,
    delays_at: Option<u64>,
    /// Per peer: the packets spread over more than one link (packet mode, two links in use).
    spreads: Vec<bool>,
    /// Per peer: the last bond sequence given.
    seqs: Vec<u32>,
}

/// A link's forward one-way delay (plus the clocks' offset) at its lowest over the last one
/// to two windows: the delay without the queues the probes also see, which the
/// earliest-delivery model counts itself.
#[derive(Debug, Clone, Copy, Default)]
struct BaseDelay {
    current: Option<i64>,
    previous: Option<i64>,
    started: u64,
}

impl BaseDelay {
    fn add(&mut self, now: u64, value: i64) -> i64 {
        if now.saturating_sub(self.started) >= BASE_WINDOW_NS {
            self.previous = self.current;
            self.current = None;
            self.started = now;
        }
        let current = self.current.map_or(value, |c| c.min(value));
        self.current = Some(current);
        self.previous.map_or(current, |p| p.min(current))
    }
}

impl Schedulers {
    /// Schedulers over the weights of `snap`'s peers.
    pub fn sync(&mut self, snap: &Snapshot) {
        self.scheds = snap
            .peers
            .iter()
            .map(|p| p.scheduler(snap.mode, snap.balance))
            .collect();
        let earliest = snap.scheduling == Scheduling::Earliest && snap.mode == BondMode::Packet;
        self.earliest = snap
            .peers
            .iter()
            .zip(&self.scheds)
            .map(|(p, s)| {
                earliest.then(|| (earliest_of(p, s), vec![BaseDelay::default(); p.links.len()]))
            })
            .collect();
        self.delays_at = None;
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

    /// The start of a batch at `now`: the earliest-delivery schedulers take the links'
    /// delays from the probes every [`DELAYS_EVERY_NS`].
    pub fn tick(&mut self, snap: &Snapshot, now: u64) {
        self.now = now;
        if self
            .delays_at
            .is_some_and(|t| now.saturating_sub(t) < DELAYS_EVERY_NS)
        {
            return;
        }
        self.delays_at = Some(now);
        for (peer, e) in snap.peers.iter().zip(&mut self.earliest) {
            let Some((e, bases)) = e else { continue };
            let figures: Vec<_> = peer.links.iter().map(|l| l.health.figures()).collect();
            let base: Vec<Option<i64>> = (figures.iter().zip(bases.iter_mut()))
                .map(|(f, b)| f.fwd_offset_ns.map(|o| b.add(now, o)))
                .collect();
            let fastest = base.iter().flatten().min().copied().unwrap_or(0);
            let delays: Vec<u64> = (base.iter().zip(&figures))
                .map(|(b, f)| {
                    let above = b.map_or(0, |b| b.saturating_sub(fastest).max(0) as u64);
                    let above = if above < DELAY_NOISE_NS { 0 } else { above };
                    // A lost packet arrives a retransmission later: about two round trips
                    // (the sender's and the loss's noticing), as often as the link loses.
                    let loss = 2 * f.srtt_ns * u64::from(f.loss_permille) / 1000;
                    above + loss
                })
                .collect();
            e.set_delays(&delays);
        }
    }

    /// The link (index among the peer's links) for the IPv4 packet `inner` of `bytes`
    /// bytes.
    #[inline]
    pub fn pick(&mut self, peer: PeerIdx, inner: &[u8], bytes: usize) -> Option<usize> {
        if let Some(Some((e, _))) = self.earliest.get_mut(peer.0) {
            return e.pick(self.now, bytes + WIRE_OVERHEAD);
        }
        let s = self.scheds.get_mut(peer.0)?;
        // Only flow mode reads the flow's hash: packet mode spreads every flow.
        let hash = match s.mode() {
            BondMode::Flow => flow_hash(inner),
            BondMode::Packet => 0,
        };
        s.pick(hash, bytes)
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

/// The earliest-delivery choice over `peer`'s links with the weights of its scheduler `s`
/// (links down or of weight 0 unused) and their configured rates.
fn earliest_of(peer: &Peer, s: &Scheduler) -> Earliest {
    let rates: Vec<u64> = peer.links.iter().map(|l| l.rate_bps.unwrap_or(0)).collect();
    Earliest::new(&rates, s.weights())
}
