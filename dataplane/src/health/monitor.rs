//! One link's health as one end sees it: the probes it sent and the answers it got,
//! the estimates they give, and the link's up/down state with hysteresis. Pure: time
//! comes in as arguments (monotonic ns), nothing here sends.

use super::Timing;

/// Probes remembered while their answer is awaited; a probe is lost at the latest when
/// its slot is reused, `RING` intervals after it was sent.
const RING: usize = 32;
/// Resolved probes (answered or lost) the loss figure covers.
const LOSS_WINDOW: u32 = 20;
/// Fewest resolved probes before loss alone can take a link down.
const LOSS_MIN_SAMPLES: u32 = 10;
/// Shortest span of the peer's clock a received-rate figure is measured over.
const RATE_SPAN_NS: u64 = 500_000_000;

/// Why a link's state last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No probe was answered for `down_after` intervals.
    Silent,
    /// Loss over the recent probes reached `loss_down_percent`.
    Loss,
    /// The interface lost its carrier.
    Carrier,
    /// `up_after` probes in a row were answered.
    Answered,
    /// Probing is off and the carrier came back.
    CarrierBack,
    /// The link carried traffic, then fell silent while the peer's other links went on.
    SilentUnderLoad,
}

impl Why {
    /// The reason in a few words, for logs and `braidctl links`.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Silent => "no answer",
            Why::Loss => "loss",
            Why::Carrier => "carrier lost",
            Why::Answered => "answered",
            Why::CarrierBack => "carrier back",
            Why::SilentUnderLoad => "silent under load",
        }
    }
}

/// A change of state: the link is now up (true) or down, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub up: bool,
    pub why: Why,
}

/// What one link's probes measured, for display and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// The health state (administrative state aside).
    pub up: bool,
    /// Why the state last changed (None: it never did).
    pub why: Option<Why>,
    /// When the state last changed (monotonic ns; 0 at start).
    pub since_ns: u64,
    /// Smoothed round-trip time and its mean deviation (0: no answer yet).
    pub srtt_ns: u64,
    pub rttvar_ns: u64,
    /// Mean difference of consecutive round-trip times.
    pub jitter_ns: u64,
    /// Lost share of the last resolved probes, in per mille.
    pub loss_permille: u32,
    /// Peer's receive time minus our send time, smoothed: the forward one-way delay plus
    /// the clocks' offset (the same offset for every link of a peer).
    pub fwd_offset_ns: Option<i64>,
    /// Our receive time minus the peer's send time, smoothed: the reverse one-way delay
    /// minus that offset.
    pub rev_offset_ns: Option<i64>,
    /// Bits per second of data the peer reports receiving on this link.
    pub peer_rx_bps: u64,
    /// Received-rate figures so far: moves by one with each new `peer_rx_bps`.
    pub rate_samples: u64,
    /// Probes sent, answered, and lost.
    pub sent: u64,
    pub answered: u64,
    pub lost: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    seq: u32,
    tx_ns: u64,
    open: bool,
}

/// The peer's received-bytes reports turned into a rate.
#[derive(Debug, Clone, Copy, Default)]
struct RateMeter {
    /// Peer clock and byte count at the start of the current span.
    start: Option<(u64, u64)>,
    bps: u64,
    /// Figures made so far.
    samples: u64,
}

impl RateMeter {
    fn sample(&mut self, peer_ns: u64, bytes: u64) {
        let Some((t0, b0)) = self.start else {
            self.start = Some((peer_ns, bytes));
            return;
        };
        let span = peer_ns.wrapping_sub(t0);
        if span > u64::MAX / 2 {
            // Older than the span's start (reordered): ignore.
            return;
        }
        if span >= RATE_SPAN_NS {
            let bits = u128::from(bytes.wrapping_sub(b0)) * 8 * 1_000_000_000;
            self.bps = u64::try_from(bits / u128::from(span)).unwrap_or(u64::MAX);
            self.samples += 1;
            self.start = Some((peer_ns, bytes));
        }
    }
}

/// One link's probes, estimates and state.
#[derive(Debug, Clone)]
pub struct Monitor {
    figures: Figures,
    /// The interface has carrier (as far as the daemon knows).
    carrier: bool,
    /// Probing started (the first probe was due).
    started: bool,
    next_seq: u32,
    next_probe_ns: u64,
    sent: [Sent; RING],
    /// Last time a probe was answered (or probing started).
    last_heard_ns: u64,
    /// The newest probe answered: an answer to the one after it continues the run.
    last_answered: Option<u32>,
    /// Probes answered in a row, in the order they were sent.
    answered_in_row: u32,
    /// Outcomes of the last resolved probes, newest in bit 0 (1: lost).
    outcomes: u32,
    resolved: u32,
    last_rtt_ns: u64,
    rate: RateMeter,
    /// Looks at what the link received, newest in bit 0 (1: something arrived since the
    /// look before), every [`RX_CHECK_NS`].
    rx_checks: u32,
    /// The link's last receive time at the last look.
    rx_seen_ns: u64,
}

/// How often the links' traffic is looked at while they carry some.
pub const RX_CHECK_NS: u64 = 10_000_000;
/// Looks in a row with traffic that make a link busy.
const BUSY_CHECKS: u32 = 5;
/// Looks in a row without traffic that take a busy link down, when the peer's other
/// links received at each of them.
const QUIET_CHECKS: u32 = 3;

impl Default for Monitor {
    fn default() -> Self {
        Monitor::new()
    }
}

impl Monitor {
    /// A link assumed up, with carrier, until probes say otherwise.
    pub fn new() -> Monitor {
        Monitor {
            figures: Figures {
                up: true,
                ..Figures::default()
            },
            carrier: true,
            started: false,
            next_seq: 0,
            next_probe_ns: 0,
            sent: [Sent::default(); RING],
            last_heard_ns: 0,
            last_answered: None,
            answered_in_row: 0,
            outcomes: 0,
            resolved: 0,
            last_rtt_ns: 0,
            rx_checks: 0,
            rx_seen_ns: 0,
            rate: RateMeter::default(),
        }
    }

    /// True while the link may carry data as far as its health goes.
    pub fn is_up(&self) -> bool {
        self.figures.up
    }

    /// The measured figures.
    pub fn figures(&self) -> Figures {
        self.figures
    }

    /// The probe to send now, if one is due: its sequence and send time. Starts probing
    /// on the first call.
    pub fn probe_due(&mut self, now: u64, t: &Timing) -> Option<(u32, u64)> {
        if !t.enabled || now < self.next_probe_ns {
            return None;
        }
        if !self.started {
            self.started = true;
            self.last_heard_ns = now;
        }
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let slot = self.sent.get_mut(seq as usize % RING)?;
        let old = std::mem::replace(
            slot,
            Sent {
                seq,
                tx_ns: now,
                open: true,
            },
        );
        if old.open {
            // Unanswered for RING intervals: lost at the latest now.
            self.resolve_lost();
        }
        self.figures.sent += 1;
        self.next_probe_ns = now + t.interval_ns;
        Some((seq, now))
    }

    /// An answer to one of our probes arrived at `now`. Answers that match no probe
    /// awaiting one (late past the ring, duplicated, invented) change nothing.
    pub fn on_reply(
        &mut self,
        now: u64,
        seq: u32,
        echo_tx_ns: u64,
        echo_rx_ns: u64,
        t: &Timing,
    ) -> Option<Change> {
        let slot = self.sent.get_mut(seq as usize % RING)?;
        if !slot.open || slot.seq != seq || slot.tx_ns != echo_tx_ns || now < echo_tx_ns {
            return None;
        }
        slot.open = false;
        let rtt = now - echo_tx_ns;
        self.sample_rtt(rtt);
        let offset = (echo_rx_ns as i64).wrapping_sub(echo_tx_ns as i64);
        self.figures.fwd_offset_ns = Some(smooth(self.figures.fwd_offset_ns, offset));
        self.figures.answered += 1;
        self.last_heard_ns = now;
        // A run is unbroken only if the probe sent just before was answered too: one
        // unanswered (lost, or not answered yet) starts it over.
        self.answered_in_row = if self.last_answered == Some(seq.wrapping_sub(1)) {
            self.answered_in_row.saturating_add(1)
        } else {
            1
        };
        self.last_answered = Some(seq);
        self.resolve(false);
        if !self.figures.up && self.carrier && self.answered_in_row >= t.up_after {
            // A fresh start: the loss that took it down is history.
            self.outcomes = 0;
            self.resolved = 0;
            self.figures.loss_permille = 0;
            return self.set(true, Why::Answered, now);
        }
        None
    }

    /// A message from the peer with its own send time and received-bytes report
    /// (a probe, or the peer-side fields of a reply).
    pub fn on_peer_clock(&mut self, now: u64, peer_tx_ns: u64, peer_rx_bytes: u64) {
        let offset = (now as i64).wrapping_sub(peer_tx_ns as i64);
        self.figures.rev_offset_ns = Some(smooth(self.figures.rev_offset_ns, offset));
        self.rate.sample(peer_tx_ns, peer_rx_bytes);
        self.figures.peer_rx_bps = self.rate.bps;
        self.figures.rate_samples = self.rate.samples;
    }

    /// Resolves probes that waited too long, and takes the link down when it has been
    /// silent for `down_after` intervals or lost too much.
    pub fn tick(&mut self, now: u64, t: &Timing) -> Option<Change> {
        if !t.enabled || !self.started {
            return None;
        }
        let lost_after = self.lost_after(t);
        for i in 0..RING {
            let Some(s) = self.sent.get_mut(i) else {
                break;
            };
            if s.open && now.saturating_sub(s.tx_ns) >= lost_after {
                s.open = false;
                self.resolve_lost();
            }
        }
        if !self.figures.up {
            return None;
        }
        if now.saturating_sub(self.last_heard_ns) >= self.silence_limit(t) {
            return self.set(false, Why::Silent, now);
        }
        if self.resolved >= LOSS_MIN_SAMPLES
            && self.figures.loss_permille >= t.loss_down_percent * 10
        {
            return self.set(false, Why::Loss, now);
        }
        None
    }

    /// The interface's carrier as the daemon saw it at `now`.
    pub fn set_carrier(&mut self, up: bool, now: u64, t: &Timing) -> Option<Change> {
        if up == self.carrier {
            return None;
        }
        self.carrier = up;
        self.answered_in_row = 0;
        if !up && self.figures.up {
            return self.set(false, Why::Carrier, now);
        }
        if up && !t.enabled {
            return self.set(true, Why::CarrierBack, now);
        }
        // With probing on, the link comes back after `up_after` answers.
        self.last_heard_ns = now;
        None
    }

    /// Records a look at the link's traffic: `last_rx_ns` is when it last received
    /// anything authentic. True when it received since the look before.
    pub fn look_at_rx(&mut self, last_rx_ns: u64) -> bool {
        let heard = last_rx_ns != self.rx_seen_ns;
        self.rx_seen_ns = last_rx_ns;
        self.rx_checks = self.rx_checks << 1 | u32::from(heard);
        heard
    }

    /// True when the link received at each of the last [`QUIET_CHECKS`] looks.
    pub fn receiving(&self) -> bool {
        let quiet = (1 << QUIET_CHECKS) - 1;
        self.rx_checks & quiet == quiet
    }

    /// Takes the link down when it received at every look for a while and then at none
    /// for [`QUIET_CHECKS`] looks (20 to 30 ms) while another link of the peer received at
    /// each of them (`others_receiving`): in packet mode the peer spreads its traffic over
    /// all its links, so one that alone falls silent has died. Probes bring it back.
    pub fn check_silence(
        &mut self,
        now: u64,
        others_receiving: bool,
        t: &Timing,
    ) -> Option<Change> {
        if !t.enabled || !self.figures.up || !others_receiving {
            return None;
        }
        let quiet = (1 << QUIET_CHECKS) - 1;
        let busy = (1 << BUSY_CHECKS) - 1;
        if self.rx_checks & quiet == 0 && (self.rx_checks >> QUIET_CHECKS) & busy == busy {
            return self.set(false, Why::SilentUnderLoad, now);
        }
        None
    }

    /// When [`Monitor::probe_due`] or [`Monitor::tick`] next has something to do.
    pub fn next_deadline(&self, t: &Timing) -> Option<u64> {
        if !t.enabled {
            return None;
        }
        let mut next = self.next_probe_ns;
        if self.started {
            if self.figures.up {
                next = next.min(self.last_heard_ns + self.silence_limit(t));
            }
            let lost_after = self.lost_after(t);
            if let Some(oldest) = self.sent.iter().filter(|s| s.open).map(|s| s.tx_ns).min() {
                next = next.min(oldest + lost_after);
            }
        }
        Some(next)
    }

    fn silence_limit(&self, t: &Timing) -> u64 {
        u64::from(t.down_after) * t.interval_ns
    }

    /// Age at which an unanswered probe counts as lost: four intervals, or three
    /// round trips on a slow link, and always before its ring slot is reused.
    fn lost_after(&self, t: &Timing) -> u64 {
        (4 * t.interval_ns)
            .max(3 * self.figures.srtt_ns)
            .min((RING as u64 - 1) * t.interval_ns)
    }

    fn sample_rtt(&mut self, rtt: u64) {
        let f = &mut self.figures;
        if f.srtt_ns == 0 {
            // RFC 6298's first measurement.
            f.srtt_ns = rtt.max(1);
            f.rttvar_ns = rtt / 2;
        } else {
            f.rttvar_ns = (3 * f.rttvar_ns + f.srtt_ns.abs_diff(rtt)) / 4;
            f.srtt_ns = (7 * f.srtt_ns + rtt) / 8;
            f.jitter_ns = (15 * f.jitter_ns + self.last_rtt_ns.abs_diff(rtt)) / 16;
        }
        self.last_rtt_ns = rtt;
    }

    /// A probe is lost (the gap it leaves breaks the run of answers).
    fn resolve_lost(&mut self) {
        self.resolve(true);
        self.figures.lost += 1;
    }

    fn resolve(&mut self, lost: bool) {
        self.outcomes = (self.outcomes << 1) | u32::from(lost);
        self.resolved = (self.resolved + 1).min(LOSS_WINDOW);
        let mask = (1u32 << self.resolved) - 1;
        let lost_n = (self.outcomes & mask).count_ones();
        self.figures.loss_permille = lost_n * 1000 / self.resolved;
    }

    fn set(&mut self, up: bool, why: Why, now: u64) -> Option<Change> {
        if !up {
            // Coming back takes `up_after` answers from now on, even if the next
            // answer follows the last one (a late answer after a long delay).
            self.answered_in_row = 0;
        }
        self.figures.up = up;
        self.figures.why = Some(why);
        self.figures.since_ns = now;
        Some(Change { up, why })
    }
}

/// An exponentially weighted mean with gain 1/8 (the first sample as is). Computed wide:
/// a peer's timestamps are whatever it sends, and the mean lies between the two.
fn smooth(old: Option<i64>, sample: i64) -> i64 {
    match old {
        None => sample,
        Some(o) => {
            let (o, x) = (i128::from(o), i128::from(sample));
            (o + (x - o) / 8) as i64
        }
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
