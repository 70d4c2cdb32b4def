use super::*;

const MS: u64 = 1_000_000;

fn timing() -> Timing {
    Timing {
        enabled: true,
        interval_ns: 50 * MS,
        down_after: 4,
        up_after: 8,
        loss_down_percent: 30,
    }
}

/// A link in virtual time, stepped by 1 ms: probes go out when due; `path(t)` says
/// whether a probe sent at `t` is answered and after what round trip.
struct Sim {
    m: Monitor,
    t: Timing,
    now: u64,
    /// (arrival, seq, tx) of answers on their way back.
    flying: Vec<(u64, u32, u64)>,
    changes: Vec<(u64, Change)>,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            m: Monitor::new(),
            t: timing(),
            now: 1000 * MS,
            flying: Vec::new(),
            changes: Vec::new(),
        }
    }

    fn run(&mut self, ms: u64, path: impl Fn(u64) -> Option<u64>) {
        for _ in 0..ms {
            self.now += MS;
            let now = self.now;
            let due: Vec<_> = self.flying.iter().filter(|f| f.0 <= now).copied().collect();
            self.flying.retain(|f| f.0 > now);
            for (_, seq, tx) in due {
                if let Some(c) = self.m.on_reply(now, seq, tx, tx + 7, &self.t) {
                    self.changes.push((now, c));
                }
            }
            if let Some(c) = self.m.tick(now, &self.t) {
                self.changes.push((now, c));
            }
            if let Some((seq, tx)) = self.m.probe_due(now, &self.t) {
                if let Some(rtt) = path(tx) {
                    self.flying.push((tx + rtt, seq, tx));
                }
            }
            if let Some(d) = self.m.next_deadline(&self.t) {
                assert!(d > now, "a deadline in the past: {d} at {now}");
            }
        }
    }
}

#[test]
fn a_healthy_link_stays_up_and_measures_its_round_trip() {
    let mut s = Sim::new();
    s.run(2000, |_| Some(3 * MS));
    let f = s.m.figures();
    assert!(f.up && s.changes.is_empty(), "{:?}", s.changes);
    assert_eq!(f.srtt_ns, 3 * MS);
    assert_eq!(f.jitter_ns, 0);
    assert_eq!(f.loss_permille, 0);
    assert_eq!(f.sent, 40);
    assert_eq!(f.answered, 40);
    assert_eq!(f.fwd_offset_ns, Some(7));
}

#[test]
fn a_silent_link_goes_down_within_the_documented_time_and_comes_back_after_up_after() {
    let mut s = Sim::new();
    s.run(1000, |_| Some(2 * MS));
    let cut = s.now;
    s.run(1000, |_| None);
    let (at, c) = s.changes[0];
    assert_eq!(
        c,
        Change {
            up: false,
            why: Why::Silent
        }
    );
    // The last answer came at most one interval + rtt before the cut; down after 4
    // intervals of silence: 250 ms at most.
    assert!(
        at - cut <= 250 * MS,
        "down {} ms after the cut",
        (at - cut) / MS
    );
    assert!(
        at - cut >= 150 * MS,
        "down {} ms after the cut",
        (at - cut) / MS
    );
    assert!(!s.m.is_up());
    let restore = s.now;
    s.run(1000, |_| Some(2 * MS));
    assert_eq!(s.changes.len(), 2, "{:?}", s.changes);
    let (at, c) = s.changes[1];
    assert_eq!(
        c,
        Change {
            up: true,
            why: Why::Answered
        }
    );
    // 8 answers in a row: the 8th probe after the restore, 7 intervals later.
    let after = (at - restore) / MS;
    assert!(
        (350..=402).contains(&after),
        "up {after} ms after the restore"
    );
    assert_eq!(s.m.figures().loss_permille, 0);
}

#[test]
fn a_link_flapping_every_200_ms_does_not_flap_the_state() {
    let mut s = Sim::new();
    s.run(500, |_| Some(MS));
    let start = s.now;
    s.run(4000, |tx| {
        ((tx - start) / (200 * MS) % 2 == 1).then_some(MS)
    });
    // Down once; 200 ms of answers (4 probes) never reach the 8 that bring it back.
    assert_eq!(s.changes.len(), 1, "{:?}", s.changes);
    assert!(!s.changes[0].1.up);
}

#[test]
fn a_link_that_went_silent_needs_up_after_fresh_answers() {
    let t = timing();
    let mut m = Monitor::new();
    let mut now = 1000 * MS;
    // A long run of answers.
    for _ in 0..20 {
        let (seq, tx) = m.probe_due(now, &t).unwrap();
        assert_eq!(m.on_reply(now + MS, seq, tx, tx, &t), None);
        now += 50 * MS;
        assert_eq!(m.tick(now, &t), None);
    }
    let heard = now - 50 * MS + MS;
    // Silence: three probes unanswered, down 200 ms after the last answer, before
    // any of them is old enough to count as lost.
    for _ in 0..3 {
        m.probe_due(now, &t).unwrap();
        now += 50 * MS;
    }
    let down = heard + 200 * MS;
    assert_eq!(m.tick(down - MS, &t), None);
    assert_eq!(
        m.tick(down, &t),
        Some(Change {
            up: false,
            why: Why::Silent
        })
    );
    // The next probe is answered at once: one fresh answer is not `up_after`, however
    // long the run before the silence was.
    let (seq, tx) = m.probe_due(down, &t).unwrap();
    assert_eq!(m.on_reply(down + MS, seq, tx, tx, &t), None);
    assert!(!m.is_up());
    let mut now = down + 50 * MS;
    let mut change = None;
    for _ in 0..10 {
        assert_eq!(m.tick(now, &t), None);
        if let Some((seq, tx)) = m.probe_due(now, &t) {
            change = change.or(m.on_reply(now + MS, seq, tx, tx, &t));
        }
        now += 50 * MS;
    }
    assert_eq!(
        change,
        Some(Change {
            up: true,
            why: Why::Answered
        })
    );
}

#[test]
fn runs_of_answers_count_in_send_order_whenever_the_losses_are_resolved() {
    let t = timing();
    let mut m = Monitor::new();
    let mut now = 1000 * MS;
    let probe = |m: &mut Monitor, now: u64| m.probe_due(now, &t).unwrap();
    // Down by silence first.
    probe(&mut m, now);
    now += 300 * MS;
    assert!(m.tick(now, &t).is_some_and(|c| !c.up));
    // Then, in turn, 4 answered and 4 unanswered probes, with no tick in between to
    // resolve the unanswered ones as lost: never 8 in a row.
    for round in 0..6 {
        for i in 0..8 {
            let (seq, tx) = probe(&mut m, now);
            if i < 4 {
                let c = m.on_reply(now + MS, seq, tx, tx, &t);
                assert_eq!(c, None, "up in round {round}");
            }
            now += 50 * MS;
        }
    }
    assert!(!m.is_up());
}

#[test]
fn answers_that_match_no_probe_change_nothing() {
    let mut s = Sim::new();
    s.run(500, |_| Some(4 * MS));
    let before = s.m.figures();
    let now = s.now + MS;
    // A forged or replayed answer: unknown sequence, wrong echo, from the future, twice.
    let (seq, tx) = s.m.probe_due(s.now + 50 * MS, &s.t).unwrap();
    let later = s.now + 60 * MS;
    assert_eq!(s.m.on_reply(later, seq + 1, tx, 0, &s.t), None);
    assert_eq!(s.m.on_reply(later, seq, tx + 1, 0, &s.t), None);
    assert_eq!(s.m.on_reply(tx - 1, seq, tx, 0, &s.t), None);
    assert_eq!(s.m.on_reply(later, seq.wrapping_sub(3), tx, 0, &s.t), None);
    let f = s.m.figures();
    assert_eq!((f.srtt_ns, f.answered), (before.srtt_ns, before.answered));
    assert_eq!(s.m.on_reply(later, seq, tx, 0, &s.t), None);
    assert_eq!(s.m.figures().answered, before.answered + 1);
    // The same answer again is a duplicate.
    let srtt = s.m.figures().srtt_ns;
    assert_eq!(s.m.on_reply(later + 40 * MS, seq, tx, 0, &s.t), None);
    assert_eq!(s.m.figures().srtt_ns, srtt);
    let _ = now;
}

#[test]
fn heavy_loss_takes_a_link_down_for_loss() {
    let mut s = Sim::new();
    // Two of every five probes lost (40 % ≥ 30 %), never four in a row silent.
    s.run(3000, |tx| ((tx / (50 * MS)) % 5 >= 2).then_some(MS));
    let down = s.changes.iter().find(|c| !c.1.up).expect("went down");
    assert_eq!(down.1.why, Why::Loss);
}

#[test]
fn light_loss_keeps_a_link_up() {
    let mut s = Sim::new();
    // One in ten lost: 10 % < 30 %.
    s.run(5000, |tx| {
        (!(tx / (50 * MS)).is_multiple_of(10)).then_some(MS)
    });
    assert!(s.changes.is_empty(), "{:?}", s.changes);
    assert_eq!(s.m.figures().loss_permille, 100);
}

#[test]
fn carrier_loss_takes_the_link_down_at_once_and_answers_bring_it_back() {
    let mut s = Sim::new();
    s.run(300, |_| Some(MS));
    let t = s.t;
    let c = s.m.set_carrier(false, s.now, &t);
    assert_eq!(
        c,
        Some(Change {
            up: false,
            why: Why::Carrier
        })
    );
    assert_eq!(s.m.set_carrier(false, s.now, &t), None);
    s.run(300, |_| None);
    assert_eq!(s.m.set_carrier(true, s.now, &t), None);
    s.run(1000, |_| Some(MS));
    assert!(s.m.is_up());
    assert_eq!(s.changes.last().unwrap().1.why, Why::Answered);
}

#[test]
fn without_probes_only_the_carrier_counts() {
    let mut m = Monitor::new();
    let t = Timing {
        enabled: false,
        ..timing()
    };
    assert_eq!(m.probe_due(10 * MS, &t), None);
    assert_eq!(m.tick(10_000 * MS, &t), None);
    assert_eq!(m.next_deadline(&t), None);
    assert!(m.is_up());
    assert!(m.set_carrier(false, MS, &t).is_some());
    assert_eq!(
        m.set_carrier(true, 2 * MS, &t),
        Some(Change {
            up: true,
            why: Why::CarrierBack
        })
    );
}

#[test]
fn jitter_and_variance_follow_varying_round_trips() {
    let mut s = Sim::new();
    s.run(3000, |tx| {
        Some(if (tx / (50 * MS)).is_multiple_of(2) {
            2 * MS
        } else {
            6 * MS
        })
    });
    let f = s.m.figures();
    assert!(f.srtt_ns > 3 * MS && f.srtt_ns < 5 * MS, "{f:?}");
    assert!(f.jitter_ns > 3 * MS && f.jitter_ns <= 4 * MS, "{f:?}");
    assert!(f.rttvar_ns > MS, "{f:?}");
}

#[test]
fn the_peer_rate_and_reverse_offset_come_from_its_clock() {
    let mut m = Monitor::new();
    // The peer's clock is 5 s behind ours; its messages take 3 ms to arrive.
    for i in 0..=20u64 {
        let peer_tx = i * 100 * MS;
        m.on_peer_clock(peer_tx + 5000 * MS + 3 * MS, peer_tx, i * 125_000);
    }
    let f = m.figures();
    // 125 kB every 100 ms: 10 Mbit/s.
    assert_eq!(f.peer_rx_bps, 10_000_000);
    // Spans of 500 ms of the peer's clock: 2 s gave four figures.
    assert_eq!(f.rate_samples, 4);
    assert_eq!(f.rev_offset_ns, Some(5003 * MS as i64));
}

proptest::proptest! {
    /// A peer's timestamps are whatever it sends (authenticated, not trusted): the smoothed
    /// mean stays between the old mean and the sample, never overflowing, whatever they are.
    #[test]
    fn smoothing_stays_between_the_mean_and_the_sample(old: i64, sample: i64) {
        let m = smooth(Some(old), sample);
        proptest::prop_assert!(old.min(sample) <= m && m <= old.max(sample));
    }
}

#[test]
fn smoothing_far_apart_values_does_not_overflow() {
    // The fuzzer's case: a mean near the top and a sample that wraps below it.
    let m = smooth(Some(i64::MAX - 10), -12);
    assert!((-12..=i64::MAX - 10).contains(&m));
}

#[test]
fn a_busy_link_that_alone_falls_silent_goes_down_within_three_looks() {
    let t = Timing::default();
    let looks = |m: &mut Monitor, pattern: &[bool], others: bool, start: u64| {
        let mut rx = start;
        let mut changes = Vec::new();
        for (i, &heard) in pattern.iter().enumerate() {
            if heard {
                rx += 1;
            }
            m.look_at_rx(rx);
            if let Some(c) = m.check_silence(i as u64, others, &t) {
                changes.push((i, c));
            }
        }
        changes
    };
    // Busy for 6 looks, then silent while the others receive: down at the third silent look.
    let mut m = Monitor::default();
    let pattern = [
        true, true, true, true, true, true, false, false, false, false,
    ];
    let changes = looks(&mut m, &pattern, true, 0);
    assert_eq!(
        changes,
        [(
            8,
            Change {
                up: false,
                why: Why::SilentUnderLoad
            }
        )]
    );
    assert!(!m.figures().up);
    // Everything silent at once (the peer stopped sending): nothing.
    let mut m = Monitor::default();
    assert!(looks(&mut m, &pattern, false, 0).is_empty());
    // Traffic that was not steady (a gap among the busy looks): nothing.
    let mut m = Monitor::default();
    let patchy = [true, true, false, true, true, true, false, false, false];
    assert!(looks(&mut m, &patchy, true, 0).is_empty());
    // A link that always received is receiving; probes off: never down this way.
    let mut m = Monitor::default();
    looks(&mut m, &[true; 4], true, 0);
    assert!(m.receiving());
    let off = Timing {
        enabled: false,
        ..Timing::default()
    };
    let mut m = Monitor::default();
    for (i, heard) in pattern.iter().enumerate() {
        m.look_at_rx(u64::from(*heard) * i as u64 + 1);
        assert_eq!(m.check_silence(i as u64, true, &off), None);
    }
}
