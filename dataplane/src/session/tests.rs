use super::*;
use crate::ids::Lane;
use crate::tunnel::handshake::{Initiator, Responder, StaticKeys};
use crate::tunnel::CipherSet;
use std::sync::Arc;

const S: u64 = 1_000_000_000;
const SILENCE: u64 = 2 * S;

fn keys(b: u8) -> StaticKeys {
    StaticKeys::from_private([b; 32])
}

/// A real handshake between two key pairs: (initiator's, responder's) live sessions at `now`.
fn pair(now: u64, index: u32) -> (Live, Live) {
    let offer = CipherSet::local();
    let (i, init) =
        Initiator::start(&keys(1), &keys(2).public(), &[0; 32], offer, index, 0).unwrap();
    let (resp, r) = Responder::new(keys(2), offer)
        .respond(&init, index + 1, |_| Some([0; 32]))
        .unwrap();
    let s = i.finish(&resp).unwrap();
    (Live::new(s, now, true), Live::new(r, now, false))
}

/// A handshake under way with `index`, its initiation sent at `sent`.
fn pending(index: u32, sent: u64) -> Pending {
    let (initiator, _) = Initiator::start(
        &keys(1),
        &keys(2).public(),
        &[0; 32],
        CipherSet::local(),
        index,
        0,
    )
    .unwrap();
    Pending {
        initiator,
        index,
        sent,
        tries: 0,
    }
}

#[test]
fn an_initiator_without_a_session_initiates_at_once_then_backs_off() {
    let board = Sessions::new(7);
    let k = PeerKeys::default();
    let t = k.tick(&board, 5, true, SILENCE);
    assert_eq!(t.initiate, Some(0));
    k.start(pending(9, 5));
    let t = k.tick(&board, 5 + S / 2, true, SILENCE);
    assert_eq!(
        t,
        Tick {
            initiate: None,
            due: 5 + S
        }
    );
    assert_eq!(k.tick(&board, 5 + S, true, SILENCE).initiate, Some(1));
    assert_eq!(retry_after(1), 2 * S);
    assert_eq!(retry_after(9), RETRY_MAX_NS);
    // A responder never initiates.
    assert_eq!(
        PeerKeys::default().tick(&board, 5, false, SILENCE).initiate,
        None
    );
}

#[test]
fn a_response_is_taken_only_for_the_index_under_way() {
    let k = PeerKeys::default();
    k.start(pending(9, 0));
    assert!(k.take_pending(8, |_| true).is_none());
    // One not worth its cost leaves it waiting.
    assert!(k.take_pending(9, |_| false).is_none());
    assert_eq!(k.take_pending(9, |_| true).map(|p| p.index), Some(9));
    assert!(k.take_pending(9, |_| true).is_none());
}

#[test]
fn the_initiators_new_session_sends_at_once_and_the_old_one_opens_ten_seconds() {
    let board = Sessions::new(7);
    let k = PeerKeys::default();
    let (a, _) = pair(0, 10);
    let a = k.initiated(&board, 0, a);
    let e = board.epoch();
    let (b, _) = pair(100 * S, 20);
    let b = k.initiated(&board, 100 * S, b);
    assert!(board.epoch() > e);
    assert!(Arc::ptr_eq(&k.sending().unwrap(), &b));
    assert_eq!(k.receiving().len(), 2);
    assert_eq!(k.tick(&board, 100 * S, true, u64::MAX).due, 110 * S);
    k.tick(&board, 110 * S, true, u64::MAX);
    let open = k.receiving();
    assert_eq!(open.len(), 1);
    assert!(!open.iter().any(|l| Arc::ptr_eq(l, &a)));
}

#[test]
fn the_responders_session_sends_only_once_confirmed() {
    let board = Sessions::new(7);
    let k = PeerKeys::default();
    let (_, r) = pair(0, 10);
    k.responded(&board, r);
    assert!(k.sending().is_none());
    let open = k.receiving();
    assert_eq!(open.len(), 1);
    assert!(!open[0].is_confirmed());
    k.confirm(&board, S, &open[0]);
    assert!(open[0].is_confirmed());
    assert!(Arc::ptr_eq(&k.sending().unwrap(), &open[0]));
    // Confirming again changes nothing.
    let e = board.epoch();
    k.confirm(&board, 2 * S, &open[0]);
    assert_eq!(board.epoch(), e);
}

#[test]
fn unconfirmed_sessions_open_until_one_is_confirmed_the_newest_few_kept() {
    let board = Sessions::new(7);
    let k = PeerKeys::default();
    for i in 0..6u32 {
        let (_, r) = pair(u64::from(i), 10 + 2 * i);
        k.responded(&board, r);
    }
    // The newest four open; none sends.
    let open = k.receiving();
    assert_eq!(open.len(), 4);
    assert!(k.sending().is_none());
    // The initiator sent under the second newest: it sends, the others go.
    let chosen = Arc::clone(&open[2]);
    k.confirm(&board, S, &chosen);
    assert!(Arc::ptr_eq(&k.sending().unwrap(), &chosen));
    let open = k.receiving();
    assert_eq!(open.len(), 1);
    assert!(Arc::ptr_eq(&open[0], &chosen));
}

#[test]
fn the_initiator_rekeys_after_two_minutes_and_when_the_peer_falls_silent() {
    let board = Sessions::new(7);
    let k = PeerKeys::default();
    let (a, _) = pair(0, 10);
    let a = k.initiated(&board, 0, a);
    let t = k.tick(&board, S, true, SILENCE);
    assert_eq!(
        t,
        Tick {
            initiate: None,
            due: SILENCE
        }
    );
    a.heard_at(S);
    assert_eq!(k.tick(&board, 2 * S, true, SILENCE).initiate, None);
    assert_eq!(k.tick(&board, 3 * S + 1, true, SILENCE).initiate, Some(0));
    // Heard all the time: the rekey comes at two minutes.
    let k = PeerKeys::default();
    let (b, _) = pair(0, 10);
    let b = k.initiated(&board, 0, b);
    let mut t = 0;
    while t < REKEY_AFTER_NS {
        b.heard_at(t);
        assert_eq!(k.tick(&board, t, true, SILENCE).initiate, None, "at {t}");
        t += S / 2;
    }
    b.heard_at(t);
    assert_eq!(k.tick(&board, t, true, SILENCE).initiate, Some(0));
}

#[test]
fn a_session_is_dropped_at_three_minutes() {
    let board = Sessions::new(7);
    let k = PeerKeys::default();
    let (a, _) = pair(0, 10);
    k.initiated(&board, 0, a);
    k.tick(&board, REJECT_AFTER_NS - 1, false, SILENCE);
    assert!(k.sending().is_some());
    k.tick(&board, REJECT_AFTER_NS, false, SILENCE);
    assert!(k.sending().is_none());
    assert!(k.receiving().is_empty());
}

#[test]
fn lanes_count_from_zero_on_their_own_and_replays_are_refused() {
    let (a, _) = pair(0, 10);
    assert_eq!(a.next_counter(Lane(0)), Some(0));
    assert_eq!(a.next_counter(Lane(0)), Some(1));
    assert_eq!(a.next_counter(Lane(3)), Some(0));
    assert_eq!(a.next_counter(Lane(200)), None);
    assert!(a.accept(0, 5));
    assert!(!a.accept(0, 5));
    assert!(a.accept(1, 5));
    assert!(!a.accept(200, 1));
}

#[test]
fn session_indices_do_not_repeat() {
    let board = Sessions::new(0x1234_5678_9abc_def0);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100_000 {
        assert!(seen.insert(board.new_index()));
    }
}
