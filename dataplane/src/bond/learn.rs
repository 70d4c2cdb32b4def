//! Learned weights (`weights = "auto"`): each link's share of what this end sends follows
//! the link's measured capacity. Pure: figures in, weights out; the control thread feeds it
//! (`control/learn.rs`, docs/ARCHITECTURE.md).
//!
//! The trap: with weighted splitting, the rate the peer receives on each link mirrors the
//! weights unless the link is saturated, so received rates alone only repeat the weights
//! back. The learner therefore looks for the links that are saturated (at two decisions in a
//! row, their one-way delay grew above its minimum by a queue that is not draining, or the
//! peer received clearly less than was sent on them; or their probes are lost) and takes
//! what such a link delivers as its capacity. A link that is not saturated can carry more
//! than it does: it is credited with what it carried when it was last saturated, or twice
//! what it delivers now (at least an equal share) when that is unknown or it now carries
//! more, so share moves to it until it saturates too; a first sign of saturation, seen once,
//! stops that growth (what it delivers now) so that a link just filled is not given twice
//! its capacity. Once every link is saturated the received rates are the capacities, and the
//! weights their ratio.
//!
//! Figures wobble: on a busy machine a half-second figure is a tenth or more off, and the
//! ratio of two such figures twice that; a starved one delivers in bursts, and its figures
//! swing by a fifth either way in turn, on each link in its own time. A decision so takes the
//! mean of each link's figures since the one before, two of them (a second): a swing is
//! inside every such pair, whatever its phase. (Half-second decisions that set aside the far
//! figures of a swing locked the capacity at one end of it, and the weights moved with the
//! phase.) A saturated link's capacity is smoothed over these figures (a quarter of each new
//! one, once two agreed); once two agreed, one far (a quarter) from it counts only when the
//! next one agrees too. A small move of the weights (every share by less than 15 % of
//! itself) is made only when two decisions in a row want it; a large one (a capacity that
//! changed) at once.
//!
//! Nothing is learned while no link is saturated (the weights are not what limits traffic),
//! while the peer receives less than [`MIN_LOAD_BPS`] in all, or while the rate sent changes
//! by more than a quarter from one decision to the next (traffic that starts or stops): the
//! weights stay as they were. Received rates are measured by the peer over half a second; a
//! decision needs two new figures of every link since the last one (after a change, the
//! first of them spans it), so the weights change about once a second at most.

/// The weights the learner hands out add up to about this (per mille of the traffic).
pub const SCALE: u32 = 1000;
/// Least share a usable link keeps, so that it goes on carrying (and being measured).
const MIN_SHARE: u32 = 10;
/// Below this in all (bits per second received by the peer), nothing is learned.
pub const MIN_LOAD_BPS: u64 = 1_000_000;
/// One-way delay above the link's minimum that means a queue: the link is saturated (when
/// seen at two decisions in a row). A TCP flow whose receiver puts the links' packets back
/// in order keeps a saturated link's queue at a few milliseconds.
const QUEUE_NS: u64 = 3_000_000;
/// A delay that fell by more than this since the last decision belongs to a queue that
/// drains.
const DRAINING_NS: u64 = 1_000_000;
/// Probe loss (per mille of the last probes) that means the link is saturated.
const LOSS_PERMILLE: u32 = 100;
/// The peer receiving less than this share (per mille) of what was sent on a link means
/// the link drops what it cannot carry.
const DELIVERED_PERMILLE: u64 = 900;
/// Sent rate below which the sent/received comparison says nothing.
const MIN_SENT_BPS: u64 = 1_000_000;
/// A link not saturated is credited with this many times what it delivers when its
/// capacity is unknown.
const GROWTH: u64 = 2;
/// Shares change only when one moves by more than this (per mille of itself) and by at
/// least [`MIN_STEP`]: measurement noise does not rebuild the schedulers.
const DEADBAND_PERMILLE: u32 = 30;
const MIN_STEP: u32 = 5;
/// A move in which every usable link's share changes by less than this (per mille of
/// itself) is small: it is made only when the decision before wanted to move the same way.
const SMALL_MOVE_PERMILLE: u32 = 150;
/// Received-rate figures (half a second each) a decision waits for since the last one,
/// and takes the mean of (see the module documentation).
const FIGURES: u64 = 2;
/// Span of each half of the windowed minimum of the one-way delay.
const BASE_WINDOW_NS: u64 = 10_000_000_000;

/// What is known of one link at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkFigures {
    /// The link may carry data: administratively up, healthy, configured weight above 0.
    pub usable: bool,
    /// Bits per second of data the peer reports receiving on the link.
    pub delivered_bps: u64,
    /// Moves by one with each new received-rate figure.
    pub rate_samples: u64,
    /// Data bytes sent on the link so far (the same bytes the peer counts).
    pub sent_bytes: u64,
    /// The forward one-way delay plus the clocks' offset (smoothed; the offset is the same
    /// at every look), if measured.
    pub delay_ns: Option<i64>,
    /// Lost share of the last probes, per mille.
    pub loss_permille: u32,
}

/// The minimum of a value over the last one to two windows.
#[derive(Debug, Clone, Copy, Default)]
struct WindowMin {
    /// Minimum of the current window and when it started.
    current: Option<i64>,
    started_ns: u64,
    /// Minimum of the window before.
    previous: Option<i64>,
}

impl WindowMin {
    fn add(&mut self, now: u64, v: i64) {
        if now.saturating_sub(self.started_ns) >= BASE_WINDOW_NS {
            self.previous = self.current;
            self.current = None;
            self.started_ns = now;
        }
        self.current = Some(self.current.map_or(v, |c| c.min(v)));
    }

    fn get(&self) -> Option<i64> {
        match (self.current, self.previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What the learner keeps of one link.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    /// The minimum one-way delay: the delay without a queue.
    base: WindowMin,
    /// What the link delivered when last saturated (bits per second).
    capacity: Option<u64>,
    /// `capacity` was met again by a figure close to it.
    confirmed: bool,
    /// A figure far from a confirmed `capacity` at the last decision, waiting to be
    /// confirmed.
    far: Option<u64>,
    /// The link's rate figure count at the last decision.
    decided_at: u64,
    /// The peer received clearly less than was sent at the last decision.
    was_short: bool,
    /// The link had a queue at the last decision.
    was_queued: bool,
    /// Sent bytes and the delay at the last decision.
    sent_mark: u64,
    delay_mark: Option<i64>,
    /// The received-rate figures since the last decision: their sum, how many, and the
    /// count of the last one.
    rates: u64,
    rates_n: u64,
    rate_at: u64,
}

impl Memory {
    /// Notes the link's received-rate figure, if it is a new one. The first after a change
    /// of the weights spans the change, and is noted too: a decision on a single figure
    /// would see one end of a swing.
    fn note_rate(&mut self, f: &LinkFigures) {
        if f.rate_samples > self.rate_at {
            self.rates = self.rates.saturating_add(f.delivered_bps);
            self.rates_n += 1;
            self.rate_at = f.rate_samples;
        }
    }

    /// What the link delivered since the last decision (the mean of its figures), and
    /// starts over.
    fn take_delivered(&mut self, latest: u64) -> u64 {
        let r = self.rates.checked_div(self.rates_n).unwrap_or(latest);
        (self.rates, self.rates_n) = (0, 0);
        r
    }
}

/// Why a link counts as saturated, for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Saturation {
    /// Its one-way delay grew by more than [`QUEUE_NS`].
    pub queue: bool,
    /// Its probes are lost.
    pub loss: bool,
    /// The peer received clearly less than was sent.
    pub short: bool,
}

impl Saturation {
    /// True when any sign says so.
    pub fn any(self) -> bool {
        self.queue || self.loss || self.short
    }

    /// The signs as words: `queue`, `loss`, `short`, joined by `+` (empty: none).
    pub fn words(self) -> String {
        let signs = [
            (self.queue, "queue"),
            (self.loss, "loss"),
            (self.short, "short"),
        ];
        let on: Vec<&str> = signs
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, w)| *w)
            .collect();
        on.join("+")
    }
}

/// The learned weights of one peer's links.
#[derive(Debug, Clone)]
pub struct Learner {
    weights: Vec<u32>,
    links: Vec<Memory>,
    /// What the last decision found saturated, per link.
    saturated: Vec<Saturation>,
    /// When the last decision was made (ns), for the sent rates.
    decided_ns: u64,
    /// Bits per second sent on the usable links over the span before the last decision.
    sent_before: Option<u64>,
    /// The weights the last decision wanted when it held back a small move.
    wanted: Option<Vec<u32>>,
}

impl Learner {
    /// A learner starting from the configured weights (index = link index), scaled to
    /// [`SCALE`]; `now` starts the sent-rate span.
    pub fn new(configured: &[u32], now: u64) -> Learner {
        let total: u64 = configured.iter().map(|&w| u64::from(w)).sum::<u64>().max(1);
        Learner {
            weights: configured
                .iter()
                .map(|&w| (u64::from(w) * u64::from(SCALE) / total) as u32)
                .collect(),
            links: vec![Memory::default(); configured.len()],
            saturated: vec![Saturation::default(); configured.len()],
            decided_ns: now,
            sent_before: None,
            wanted: None,
        }
    }

    /// The weights as learned so far (the configured ones scaled, until a change).
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// Which links the last decision found saturated, and why.
    pub fn saturated(&self) -> &[Saturation] {
        &self.saturated
    }

    /// Looks at the links' figures at `now` (monotonic ns). Returns the new weights when
    /// they changed. Call it often (every 50 to 100 ms): delays are followed at every call,
    /// decisions are made when every usable link has a new received-rate figure.
    pub fn step(&mut self, now: u64, figures: &[LinkFigures]) -> Option<&[u32]> {
        if figures.len() != self.links.len() {
            return None;
        }
        for (m, f) in self.links.iter_mut().zip(figures) {
            if let Some(d) = f.delay_ns {
                m.base.add(now, d);
            }
            m.note_rate(f);
        }
        let usable: Vec<usize> = (0..figures.len())
            .filter(|&i| figures.get(i).is_some_and(|f| f.usable))
            .collect();
        if usable.len() < 2 {
            // One link or none: there is nothing to split.
            return None;
        }
        let fresh = usable
            .iter()
            .all(|&i| match (figures.get(i), self.links.get(i)) {
                (Some(f), Some(m)) => f.rate_samples >= m.decided_at + FIGURES,
                _ => false,
            });
        if !fresh {
            return None;
        }
        let span = now.saturating_sub(self.decided_ns).max(1);
        self.decided_ns = now;
        let mut sat = vec![Saturation::default(); figures.len()];
        let mut hints = vec![false; figures.len()];
        let mut sent_total = 0u64;
        let mut delivered = vec![0u64; figures.len()];
        for (i, (m, f)) in self.links.iter_mut().zip(figures).enumerate() {
            let sent = f.sent_bytes.wrapping_sub(m.sent_mark);
            m.sent_mark = f.sent_bytes;
            // What the peer received over the span, as what was sent is.
            let seen = LinkFigures {
                delivered_bps: m.take_delivered(f.delivered_bps),
                ..*f
            };
            if let Some(r) = delivered.get_mut(i) {
                *r = seen.delivered_bps;
            }
            m.decided_at = f.rate_samples;
            let sent_bps = u64::try_from(u128::from(sent) * 8_000_000_000 / u128::from(span))
                .unwrap_or(u64::MAX);
            let (signs, hint) = saturation(m, &seen, sent_bps);
            if let (Some(s), Some(h)) = (sat.get_mut(i), hints.get_mut(i)) {
                *s = signs;
                *h = hint;
            }
            m.delay_mark = f.delay_ns;
            if f.usable {
                sent_total = sent_total.saturating_add(sent_bps);
            }
        }
        // Traffic that starts, stops or changes pace: the peer's figures and our spans
        // do not cover the same moments, so they do not compare. Wait until it is steady.
        let steady = self
            .sent_before
            .is_some_and(|b| sent_total.abs_diff(b) <= b.max(sent_total) / 4);
        self.sent_before = Some(sent_total);
        self.saturated.clone_from(&sat);
        let load: u64 = usable.iter().filter_map(|&i| delivered.get(i)).sum();
        let saturated = usable.iter().any(|&i| sat.get(i).is_some_and(|s| s.any()));
        let wanted = self.wanted.take();
        if load < MIN_LOAD_BPS || !saturated || !steady {
            return None;
        }
        let equal = load / usable.len() as u64;
        let mut credit = vec![0u64; figures.len()];
        for &i in &usable {
            let (Some(m), Some(&r), Some(s), Some(&hint), Some(c)) = (
                self.links.get_mut(i),
                delivered.get(i),
                sat.get(i),
                hints.get(i),
                credit.get_mut(i),
            ) else {
                continue;
            };
            *c = if s.any() {
                let cap = match m.capacity {
                    // Close to what it was: smoothed, and confirmed. Once confirmed, a
                    // figure moves it by a quarter of the gap only: the peer's half-second
                    // figures wobble by a tenth or more on a loaded machine, and half of such
                    // a wobble on each of two links moves their ratio past 10 %.
                    Some(old) if r.abs_diff(old) < old / 4 => {
                        m.far = None;
                        let was = std::mem::replace(&mut m.confirmed, true);
                        if was {
                            (3 * old + r) / 4
                        } else {
                            (old + r) / 2
                        }
                    }
                    // Far from a confirmed figure twice in a row, on the same side: the
                    // capacity changed. Once: an outlier (a busy CPU at either end), kept
                    // aside. A figure not confirmed yet (the first after a change may span
                    // it) gives way at once.
                    Some(old) if m.confirmed => match m.far.take() {
                        Some(before) if (before < old) == (r < old) => {
                            m.confirmed = false;
                            r
                        }
                        _ => {
                            m.far = Some(r);
                            old
                        }
                    },
                    _ => {
                        m.confirmed = false;
                        r
                    }
                };
                m.capacity = Some(cap);
                cap
            } else {
                match m.capacity {
                    // Not using all it carried: it keeps that much (a tenth over it is
                    // noise, or a TCP sender's queue that just drained).
                    Some(cap) if r < cap + cap / 10 => cap,
                    _ => {
                        // Never saturated, or carrying more than it did then: find out,
                        // unless a first sign (a queue, or less received than sent) says
                        // it may be full already: growing into it would overload it by as
                        // much again, and a link that loses a third of its probes is taken
                        // down by its health. Then it keeps what it delivers until the
                        // next decision tells.
                        m.capacity = None;
                        m.far = None;
                        if hint {
                            r
                        } else {
                            (GROWTH * r).max(equal)
                        }
                    }
                }
            };
        }
        let next = shares(&self.weights, &usable, &credit);
        if !moved(&self.weights, &next, &usable) {
            return None;
        }
        // A small move may be one figure that wobbled (a busy CPU at either end moves a
        // half-second figure by a tenth or more, and a ratio of two such figures by twice
        // that): it waits for the next decision to want the same.
        if small(&self.weights, &next, &usable)
            && !wanted.is_some_and(|w| same_way(&self.weights, &w, &next, &usable))
        {
            self.wanted = Some(next);
            return None;
        }
        self.weights = next;
        Some(&self.weights)
    }
}

/// Whether a link is saturated, from its figures and the rate sent on it since the last
/// decision; and whether a sign that needs a second look to count was seen this time.
fn saturation(m: &mut Memory, f: &LinkFigures, sent_bps: u64) -> (Saturation, bool) {
    // A queue that drains does not count: the delay is smoothed, and lags behind a queue
    // that emptied when the link was given less. One look at a queue may be noise (a busy
    // CPU on the way), two in a row are not.
    let queued = match (f.delay_ns, m.base.get()) {
        (Some(d), Some(base)) => {
            let draining = m
                .delay_mark
                .is_some_and(|before| d < before.saturating_sub(DRAINING_NS as i64));
            d.saturating_sub(base) > QUEUE_NS as i64 && !draining
        }
        _ => false,
    };
    // Sent and received rates cover slightly different moments: one short figure may be
    // noise, two in a row are not.
    let short = sent_bps >= MIN_SENT_BPS
        && u128::from(f.delivered_bps) * 1000
            < u128::from(sent_bps) * u128::from(DELIVERED_PERMILLE);
    let signs = Saturation {
        queue: std::mem::replace(&mut m.was_queued, queued) && queued,
        loss: f.loss_permille >= LOSS_PERMILLE,
        short: std::mem::replace(&mut m.was_short, short) && short,
    };
    (signs, queued || short)
}

/// The usable links' credits as shares of [`SCALE`] (each at least [`MIN_SHARE`]); the
/// other links keep their weights.
fn shares(old: &[u32], usable: &[usize], credit: &[u64]) -> Vec<u32> {
    let total: u128 = usable
        .iter()
        .filter_map(|&i| credit.get(i))
        .map(|&c| u128::from(c))
        .sum::<u128>()
        .max(1);
    let mut next = old.to_vec();
    for &i in usable {
        if let (Some(w), Some(&c)) = (next.get_mut(i), credit.get(i)) {
            let share = (u128::from(c) * u128::from(SCALE) + total / 2) / total;
            *w = (share as u32).max(MIN_SHARE);
        }
    }
    next
}

/// True when every usable link's share moves by less than [`SMALL_MOVE_PERMILLE`] of itself.
fn small(old: &[u32], next: &[u32], usable: &[usize]) -> bool {
    usable.iter().all(|&i| match (old.get(i), next.get(i)) {
        (Some(&a), Some(&b)) => a.abs_diff(b) * 1000 < a.max(1) * SMALL_MOVE_PERMILLE,
        _ => true,
    })
}

/// True when `first` and `then` move each usable link's share from `old` the same way.
fn same_way(old: &[u32], first: &[u32], then: &[u32], usable: &[usize]) -> bool {
    usable
        .iter()
        .all(|&i| match (old.get(i), first.get(i), then.get(i)) {
            (Some(a), Some(f), Some(t)) => f.cmp(a) == t.cmp(a),
            _ => true,
        })
}

/// True when a usable link's weight moved past the dead band.
fn moved(old: &[u32], next: &[u32], usable: &[usize]) -> bool {
    usable.iter().any(|&i| match (old.get(i), next.get(i)) {
        (Some(&a), Some(&b)) => {
            let step = a.abs_diff(b);
            step >= MIN_STEP && step * 1000 > a.max(1) * DEADBAND_PERMILLE
        }
        _ => false,
    })
}

#[cfg(test)]
#[path = "learn_tests.rs"]
mod tests;
