use super::*;
use proptest::prelude::*;

const MS: u64 = 1_000_000;

/// Admits `seq` as a receiver would: holds what is ahead (the item is its sequence) and
/// returns what leaves now, in order.
fn arrive(w: &mut Window<u32>, seq: u32, now: u64) -> Vec<u32> {
    let mut out = Vec::new();
    match w.admit(seq) {
        Admit::InOrder | Admit::Late => {
            out.extend(w.release_before().map(|r| r.item));
            out.push(seq);
        }
        Admit::Ahead => assert!(w.hold(seq, seq, 100, now)),
        Admit::Duplicate => {}
    }
    out.extend(w.release().map(|r| r.item));
    out
}

#[test]
fn in_order_packets_go_at_once_and_nothing_is_held() {
    let mut w = Window::default();
    for s in 10..20 {
        assert_eq!(arrive(&mut w, s, 0), [s]);
    }
    assert_eq!(w.held(), (0, 0));
    assert_eq!(w.tally().in_order, 10);
    assert_eq!(w.deadline(5 * MS), None);
}

#[test]
fn a_turn_is_idle_only_with_nothing_held_released_or_filled() {
    let mut w = Window::default();
    assert!(!w.is_idle_turn(1), "not in step with a sender yet");
    assert_eq!(arrive(&mut w, 1, 0), [1]);
    assert!(w.is_idle_turn(2) && !w.is_idle_turn(3));
    w.take_turn();
    assert_eq!((w.next(), w.tally().in_order), (3, 2));
    assert_eq!(
        w.admit(2),
        Admit::Duplicate,
        "a turn taken counts as delivered"
    );
    // Held: no turn is idle until the gap is filled, the release taken and the filled
    // gap reported.
    assert!(w.hold(4, 4, 100, MS));
    assert!(!w.is_idle_turn(3));
    assert_eq!(w.admit(3), Admit::InOrder);
    assert!(!w.is_idle_turn(5));
    assert_eq!(w.release().map(|r| r.item).collect::<Vec<_>>(), [4]);
    assert!(!w.is_idle_turn(5), "a filled gap to report");
    assert_eq!(w.take_filled_since(), Some(MS));
    assert!(w.is_idle_turn(5));
    // Released by a gap given up, not taken yet.
    assert!(w.hold(6, 6, 100, MS));
    w.give_up_oldest();
    assert!(!w.is_idle_turn(7));
    assert_eq!(w.release_before().map(|r| r.item).collect::<Vec<_>>(), [6]);
    assert!(w.is_idle_turn(7));
}

#[test]
fn a_packet_ahead_waits_for_the_one_in_front_of_it() {
    let mut w = Window::default();
    assert_eq!(arrive(&mut w, 1, 0), [1]);
    assert_eq!(arrive(&mut w, 3, MS), Vec::<u32>::new());
    assert_eq!(arrive(&mut w, 4, MS), Vec::<u32>::new());
    assert_eq!(w.held(), (2, 200));
    assert_eq!(w.deadline(5 * MS), Some(6 * MS));
    assert_eq!(arrive(&mut w, 2, 2 * MS), [2, 3, 4]);
    assert_eq!(w.held(), (0, 0));
    let t = w.tally();
    assert_eq!((t.in_order, t.repaired, t.late, t.given_up), (2, 2, 0, 0));
}

#[test]
fn a_gap_is_given_up_when_its_wait_runs_out_and_its_packet_is_then_late() {
    let mut w = Window::default();
    arrive(&mut w, 1, 0);
    arrive(&mut w, 3, MS);
    arrive(&mut w, 5, 2 * MS);
    w.expire(5 * MS, 5 * MS);
    assert_eq!(
        w.release().map(|r| r.item).collect::<Vec<_>>(),
        Vec::<u32>::new()
    );
    // 3 waited 5 ms: 2 is given up, 3 goes; 5 has waited 4 ms only.
    w.expire(6 * MS, 5 * MS);
    assert_eq!(w.release().map(|r| r.item).collect::<Vec<_>>(), [3]);
    assert_eq!(w.deadline(5 * MS), Some(7 * MS));
    w.expire(7 * MS, 5 * MS);
    assert_eq!(w.release().map(|r| r.item).collect::<Vec<_>>(), [5]);
    assert_eq!(arrive(&mut w, 2, 8 * MS), [2]);
    assert_eq!(arrive(&mut w, 4, 8 * MS), [4]);
    let t = w.tally();
    assert_eq!((t.late, t.given_up, t.repaired), (2, 2, 2));
    assert_eq!(arrive(&mut w, 6, 9 * MS), [6]);
}

#[test]
fn second_copies_are_dropped_whether_held_delivered_or_late() {
    let mut w = Window::default();
    arrive(&mut w, 1, 0);
    assert_eq!(arrive(&mut w, 1, 0), Vec::<u32>::new());
    arrive(&mut w, 3, 0);
    assert_eq!(w.admit(3), Admit::Duplicate);
    w.expire(10 * MS, MS);
    assert_eq!(w.release().map(|r| r.item).collect::<Vec<_>>(), [3]);
    assert_eq!(w.admit(3), Admit::Duplicate);
    assert_eq!(w.admit(2), Admit::Late);
    assert_eq!(w.admit(2), Admit::Duplicate);
    assert_eq!(w.tally().late, 1);
}

#[test]
fn flush_releases_everything_in_order_and_stays_in_step() {
    let mut w = Window::default();
    arrive(&mut w, 100, 0);
    for s in [105, 102, 103] {
        arrive(&mut w, s, 0);
    }
    w.flush();
    assert_eq!(
        w.release().map(|r| r.item).collect::<Vec<_>>(),
        [102, 103, 105]
    );
    assert_eq!(w.held(), (0, 0));
    assert_eq!(arrive(&mut w, 106, 0), [106]);
    assert_eq!(w.tally().given_up, 2);
}

#[test]
fn reset_starts_over_at_the_next_packet() {
    let mut w = Window::default();
    arrive(&mut w, 100, 0);
    arrive(&mut w, 102, 0);
    w.reset();
    assert_eq!(w.release().map(|r| r.item).collect::<Vec<_>>(), [102]);
    assert_eq!(arrive(&mut w, 7, 0), [7]);
    assert_eq!(arrive(&mut w, 8, 0), [8]);
}

#[test]
fn a_sender_that_started_over_is_followed() {
    let mut w = Window::default();
    for s in 1_000_000..1_000_010 {
        arrive(&mut w, s, 0);
    }
    assert_eq!(arrive(&mut w, 1, 0), [1]);
    assert_eq!(arrive(&mut w, 2, 0), [2]);
}

#[test]
fn a_packet_beyond_the_capacity_gives_up_the_oldest_gaps() {
    let mut w = Window::default();
    arrive(&mut w, 0, 0);
    arrive(&mut w, 2, 0);
    let far = CAPACITY as u32 + 10;
    // 2 is released on the way (its gap given up); far is held at the window's end.
    assert_eq!(arrive(&mut w, far, 0), [2]);
    let (held, _) = w.held();
    assert_eq!(held, 1);
    assert_eq!(w.tally().repaired, 1);
    w.flush();
    assert_eq!(w.release().map(|r| r.item).collect::<Vec<_>>(), [far]);
}

/// [`Window::give_up_to`] the long way, one sequence at a time.
fn give_up_to_step_by_step<T>(w: &mut Window<T>, seq: u32) {
    while w.next != seq {
        w.skip_one();
    }
    w.release_run();
}

#[test]
fn a_jump_far_ahead_takes_bounded_work_and_counts_every_sequence_given_up() {
    let mut w = Window::default();
    arrive(&mut w, 0, 0);
    arrive(&mut w, 2, 0);
    arrive(&mut w, 5, 0);
    // The farthest a sequence can be ahead: 2^31 - 1 (further is "behind", a restart).
    let far = u32::MAX / 2 - 1;
    assert_eq!(arrive(&mut w, far, 0), [2, 5]);
    let first_kept = far - (CAPACITY as u32 - 1);
    assert_eq!(w.next(), first_kept);
    assert_eq!(w.held().0, 1, "the far packet, at the window's end");
    let t = w.tally();
    assert_eq!((t.in_order, t.repaired), (1, 2));
    assert_eq!(t.given_up, u64::from(first_kept) - 1 - 2);
    // A packet of a gap given up just before the window is late, not a second copy.
    assert_eq!(arrive(&mut w, first_kept - 10, 0), [first_kept - 10]);
    assert_eq!(w.tally().late, 1);
}

proptest! {
    /// The bounded jump leaves the window as stepping through every sequence would.
    #[test]
    fn a_far_jump_ends_as_stepping_would(
        start: u32,
        held in proptest::collection::vec(1u32..CAPACITY as u32, 0..20),
        delivered in proptest::collection::vec(1u32..CAPACITY as u32, 0..20),
        distance in 2 * CAPACITY as u32..5 * CAPACITY as u32,
    ) {
        // Two windows given the same packets: in turn or ahead, some leave, some are held.
        let make = || {
            let mut w = Window::default();
            arrive(&mut w, start, 0);
            for &d in delivered.iter().chain(&held) {
                arrive(&mut w, start.wrapping_add(d), 0);
            }
            w
        };
        let (mut w, mut stepped) = (make(), make());
        let target = w.next().wrapping_add(distance);
        w.give_up_to(target);
        give_up_to_step_by_step(&mut stepped, target);
        prop_assert_eq!(w.next(), stepped.next());
        prop_assert_eq!(w.tally(), stepped.tally());
        prop_assert_eq!(w.held(), stepped.held());
        prop_assert_eq!(&w.delivered, &stepped.delivered);
        let ours: Vec<u32> = w.release().map(|r| r.item).collect();
        let theirs: Vec<u32> = stepped.release().map(|r| r.item).collect();
        prop_assert_eq!(ours, theirs);
    }
}

#[test]
fn sequences_wrap() {
    let mut w = Window::default();
    assert_eq!(arrive(&mut w, u32::MAX - 1, 0), [u32::MAX - 1]);
    assert_eq!(arrive(&mut w, 0, 0), Vec::<u32>::new());
    assert_eq!(arrive(&mut w, u32::MAX, 0), [u32::MAX, 0]);
}

proptest! {
    /// Whatever the arrival order within the window and whatever duplicates: with no
    /// expiry every packet leaves exactly once, in sequence order.
    #[test]
    fn a_shuffled_stream_leaves_in_order_exactly_once(
        start: u32,
        swaps in proptest::collection::vec((0usize..300, 0usize..300), 0..200),
        dups in proptest::collection::vec(0usize..300, 0..50),
    ) {
        let mut order: Vec<u32> = (0..300u32).map(|i| start.wrapping_add(i)).collect();
        // The first packet opens the window: keep it first.
        for (a, b) in swaps {
            order.swap(a.max(1), b.max(1));
        }
        for d in dups {
            let s = order[d];
            order.insert(d.max(1), s);
        }
        let mut w = Window::default();
        let mut out = Vec::new();
        for s in order {
            out.extend(arrive(&mut w, s, 0));
        }
        let want: Vec<u32> = (0..300u32).map(|i| start.wrapping_add(i)).collect();
        prop_assert_eq!(out, want);
        prop_assert_eq!(w.held(), (0, 0));
    }

    /// With expiry and losses: nothing leaves twice, nothing is held forever, and what
    /// leaves in order (all but the late ones) is increasing.
    #[test]
    fn with_losses_every_received_packet_leaves_once(
        lost in proptest::collection::vec(any::<bool>(), 200),
        swaps in proptest::collection::vec((1usize..200, 1usize..200), 0..100),
    ) {
        let mut order: Vec<u32> = (0..200u32).filter(|&i| i == 0 || !lost[i as usize]).collect();
        for (a, b) in swaps {
            let n = order.len();
            order.swap(a % n, b % n);
        }
        let pos = order.iter().position(|&s| s == 0).unwrap();
        order.swap(0, pos);
        let mut w = Window::default();
        let mut out = Vec::new();
        for (t, &s) in order.iter().enumerate() {
            out.extend(arrive(&mut w, s, t as u64 * MS));
            w.expire(t as u64 * MS, 3 * MS);
            out.extend(w.release().map(|r| r.item));
        }
        w.flush();
        out.extend(w.release().map(|r| r.item));
        let mut sorted = out.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), out.len(), "a packet left twice");
        let mut want = order.clone();
        want.sort_unstable();
        prop_assert_eq!(sorted, want);
        prop_assert_eq!(w.held(), (0, 0));
    }
}

#[test]
fn a_filled_gap_tells_how_long_its_packets_waited() {
    let mut w = Window::default();
    arrive(&mut w, 1, 0);
    arrive(&mut w, 3, 2 * MS);
    arrive(&mut w, 4, 3 * MS);
    assert_eq!(w.take_filled_since(), None);
    assert_eq!(arrive(&mut w, 2, 9 * MS), [2, 3, 4]);
    assert_eq!(w.take_filled_since(), Some(2 * MS));
    assert_eq!(w.take_filled_since(), None);
    // A gap given up is not a gap filled.
    arrive(&mut w, 6, 10 * MS);
    w.expire(20 * MS, 5 * MS);
    assert_eq!(w.release().map(|r| r.item).collect::<Vec<_>>(), [6]);
    assert_eq!(w.take_filled_since(), None);
}

#[test]
fn a_released_packet_says_when_it_arrived() {
    let mut w = Window::default();
    arrive(&mut w, 1, 0);
    arrive(&mut w, 3, 2 * MS);
    arrive(&mut w, 4, 3 * MS);
    assert_eq!(w.admit(2), Admit::InOrder);
    let released: Vec<_> = w.release().map(|r| (r.item, r.since)).collect();
    assert_eq!(released, [(3, 2 * MS), (4, 3 * MS)]);
}
