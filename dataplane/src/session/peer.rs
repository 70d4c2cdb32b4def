//! The sessions of one peer and its handshake under way: which session sends, which
//! still open, and when the initiator starts a new handshake.

use super::{retry_after, Live, Sessions, KEEP_PREVIOUS_NS, REJECT_AFTER_NS, REKEY_AFTER_NS};
use crate::tunnel::cookie::{Cookie, COOKIE_KEEP_NS};
use crate::tunnel::handshake::Initiator;
use std::sync::{Arc, Mutex, MutexGuard};

/// A handshake this end started and has not heard back about.
#[derive(Debug)]
pub struct Pending {
    /// Waits for the response.
    pub initiator: Initiator,
    /// This end's index of the session to be.
    pub index: u32,
    /// When the initiation was sent.
    pub sent: u64,
    /// Initiations sent before this one without an answer.
    pub tries: u32,
}

#[derive(Debug, Default)]
struct State {
    /// Seals what is sent, and opens.
    current: Option<Arc<Live>>,
    /// The session `current` replaced, opening until the time given.
    previous: Option<(Arc<Live>, u64)>,
    /// A responder's new sessions, opening but not sending until the first message of one
    /// of them, the newest last (at most [`NEXT_KEPT`]).
    next: Vec<Arc<Live>>,
    pending: Option<Pending>,
    /// The last cookie the responder sent: for initiations on this link id, got then.
    cookie: Option<Held>,
}

/// Unconfirmed sessions a responder keeps for a peer. Not one: an initiation answered after
/// the one the initiator finished (a retry's predecessor that took a slower link, or a copy
/// of the last one) must not replace the session the initiator sends under, or its data
/// finds no session here until the next rekey, two minutes later with probes off. (With
/// one kept, a lab test over lossy links, probes off, most likely lost its path that way in
/// CI.) A few are enough: each is an initiation that passed the guard's rate limit.
const NEXT_KEPT: usize = 4;

/// A cookie this end holds, for the link it came back on.
#[derive(Debug, Clone, Copy)]
struct Held {
    cookie: Cookie,
    link: u8,
    got: u64,
}

/// What became of a cookie reply to this peer's handshake.
#[derive(Debug, PartialEq, Eq)]
pub enum CookieTaken {
    /// No handshake of that index is under way, or the reply does not open: nothing
    /// changed.
    Refused,
    /// Kept, but the initiation already carries that cookie: nothing to send again.
    Kept,
    /// Kept; the initiation again, now with mac2 under it, to send at once.
    Retry(Vec<u8>),
}

/// The sessions of one peer. Carried from one snapshot to the next while the peer
/// stays (same public key), so a configuration change does not cost a handshake.
#[derive(Debug, Default)]
pub struct PeerKeys {
    state: Mutex<State>,
}

/// What the timers of a peer ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Start a handshake now; the number of unanswered initiations before it.
    pub initiate: Option<u32>,
    /// When the timers next have something to do (monotonic ns; `u64::MAX`: nothing).
    pub due: u64,
}

impl PeerKeys {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session to send with.
    pub fn sending(&self) -> Option<Arc<Live>> {
        self.lock().current.clone()
    }

    /// Every session that opens messages now.
    pub fn receiving(&self) -> Vec<Arc<Live>> {
        let s = self.lock();
        let previous = s.previous.as_ref().map(|(l, _)| l);
        s.current
            .iter()
            .chain(previous)
            .chain(&s.next)
            .cloned()
            .collect()
    }

    /// The initiator's handshake finished at `now`: `live` sends from now on, the
    /// session it replaces opens a little longer.
    pub fn initiated(&self, board: &Sessions, now: u64, live: Live) -> Arc<Live> {
        let live = Arc::new(live);
        let mut s = self.lock();
        if let Some(old) = s.current.replace(Arc::clone(&live)) {
            s.previous = Some((old, now.saturating_add(KEEP_PREVIOUS_NS)));
        }
        drop(s);
        board.changed();
        live
    }

    /// The responder answered an initiation: `live` opens messages, and sends once the
    /// first of them arrives. The sessions answered before and never used still open
    /// (see [`NEXT_KEPT`]); the oldest beyond that goes.
    pub fn responded(&self, board: &Sessions, live: Live) {
        let mut s = self.lock();
        if s.next.len() >= NEXT_KEPT {
            s.next.remove(0);
        }
        s.next.push(Arc::new(live));
        drop(s);
        board.changed();
    }

    /// A message opened under `live` at `now`: a responder's new session is confirmed
    /// and sends from now on. Cheap when it already is.
    pub fn confirm(&self, board: &Sessions, now: u64, live: &Arc<Live>) {
        if !live.confirm() {
            return;
        }
        let mut s = self.lock();
        if s.next.iter().any(|n| Arc::ptr_eq(n, live)) {
            // The initiator sends under this one: the others were never used.
            s.next.clear();
            if let Some(old) = s.current.replace(Arc::clone(live)) {
                s.previous = Some((old, now.saturating_add(KEEP_PREVIOUS_NS)));
            }
        }
        drop(s);
        board.changed();
    }

    /// Records the handshake just started.
    pub fn start(&self, pending: Pending) {
        self.lock().pending = Some(pending);
    }

    /// The cookie for an initiation on link id `link` at `now`, while it is fresh enough.
    pub fn cookie_for(&self, link: u8, now: u64) -> Option<Cookie> {
        self.lock()
            .cookie
            .filter(|h| h.link == link && now.saturating_sub(h.got) < COOKIE_KEEP_NS)
            .map(|h| h.cookie)
    }

    /// A cookie reply to the handshake under way if its index is `index`: `open`
    /// authenticates it against that handshake's initiation. Only an authenticated cookie
    /// changes anything: it is kept, and unless the initiation already carries it, the
    /// initiation gets mac2 under it and is to be sent again at once (`now`).
    pub fn take_cookie(
        &self,
        index: u32,
        now: u64,
        open: impl FnOnce(&Initiator) -> Option<Cookie>,
    ) -> CookieTaken {
        let mut s = self.lock();
        let Some(p) = s.pending.as_mut().filter(|p| p.index == index) else {
            return CookieTaken::Refused;
        };
        let Some(cookie) = open(&p.initiator) else {
            return CookieTaken::Refused;
        };
        if p.initiator.cookie() == Some(&cookie) {
            // A reply sent again (or replayed): the cookie was kept when it was set.
            return CookieTaken::Kept;
        }
        let link = p.initiator.link();
        let Ok(msg) = p.initiator.set_cookie(&cookie) else {
            return CookieTaken::Refused;
        };
        p.sent = now;
        s.cookie = Some(Held {
            cookie,
            link,
            got: now,
        });
        CookieTaken::Retry(msg)
    }

    /// Takes the handshake under way if its index is `index` and `worth` says its answer
    /// deserves the Noise message's cost; else it stays, waiting.
    pub fn take_pending(
        &self,
        index: u32,
        worth: impl FnOnce(&Pending) -> bool,
    ) -> Option<Pending> {
        let mut s = self.lock();
        if s.pending
            .as_ref()
            .is_some_and(|p| p.index == index && worth(p))
        {
            return s.pending.take();
        }
        None
    }

    /// The unanswered initiations before the handshake under way, if one is: a link that
    /// just came up is worth a retry without waiting for its time.
    pub fn awaiting(&self) -> Option<u32> {
        self.lock().pending.as_ref().map(|p| p.tries)
    }

    /// Drops what is too old, and says whether an initiator (`initiator`) has to start a
    /// handshake: no session, one due for rekeying, or nothing heard for `silence` while
    /// the session was at least that old (the peer may have lost it: it restarted).
    pub fn tick(&self, board: &Sessions, now: u64, initiator: bool, silence: u64) -> Tick {
        let mut s = self.lock();
        let mut changed = false;
        if s.previous.as_ref().is_some_and(|(_, until)| now >= *until) {
            s.previous = None;
            changed = true;
        }
        let old = |l: &Arc<Live>| now.saturating_sub(l.born) >= REJECT_AFTER_NS;
        if s.current.as_ref().is_some_and(old) {
            s.current = None;
            changed = true;
        }
        let before = s.next.len();
        s.next.retain(|l| !old(l));
        changed |= s.next.len() != before;
        if changed {
            board.changed();
        }
        let mut due = u64::MAX;
        if let Some((_, until)) = &s.previous {
            due = due.min(*until);
        }
        for l in s.current.iter().chain(&s.next) {
            due = due.min(l.born.saturating_add(REJECT_AFTER_NS));
        }
        if !initiator {
            return Tick {
                initiate: None,
                due,
            };
        }
        let (want, when) = match &s.current {
            None => (true, now),
            Some(l) => {
                let rekey = l.born.saturating_add(REKEY_AFTER_NS);
                let quiet = l.heard().max(l.born).saturating_add(silence);
                (
                    l.wants_rekey() || now >= rekey || now >= quiet,
                    rekey.min(quiet),
                )
            }
        };
        if !want {
            return Tick {
                initiate: None,
                due: due.min(when),
            };
        }
        match &s.pending {
            Some(p) => {
                let retry = p.sent.saturating_add(retry_after(p.tries));
                if now >= retry {
                    Tick {
                        initiate: Some(p.tries + 1),
                        due,
                    }
                } else {
                    Tick {
                        initiate: None,
                        due: due.min(retry),
                    }
                }
            }
            None => Tick {
                initiate: Some(0),
                due,
            },
        }
    }
}
