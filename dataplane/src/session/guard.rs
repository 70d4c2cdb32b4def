//! The responder's guard against cheap attacks (docs/PROTOCOL.md, "The handshake"): how many
//! initiations arrive in all and from each source address, whether the responder is under
//! load, and the cookies it asks for then. Shared by all workers behind one small mutex,
//! taken once per initiation whose mac1 holds (never on the data path).
//!
//! - Under load: more than [`LOAD_PER_SEC`] initiations in the current or the previous
//!   second, or their source over its own rate. Then an initiation without a valid mac2 is
//!   answered with a cookie reply instead of a response.
//! - Per source address, a token bucket of [`RATE_PER_SEC`] a second and a burst of
//!   [`BURST`]. Under load an initiation with a valid mac2 from a source over its rate is
//!   dropped.
//! - Bounded: at most [`MAX_SOURCES`] source addresses are tracked (about 100 KiB). A source
//!   whose bucket refilled is forgotten when room is needed (its bucket would be full
//!   anyway); when every tracked source was heard from within the last half second (a flood
//!   from more than 4096 addresses, so the responder is under load), a new source is not
//!   tracked: without a valid mac2 it gets a cookie reply, and with one (it proved its
//!   address) it takes the place of the source heard from longest ago.
//!
//! Time is the pipeline's monotonic ns; nothing here reads a clock or makes a system call.

use crate::tunnel::cookie::{self, Cookie, CookieSecret, Nonces, COOKIE_REPLY_LEN};
use crate::tunnel::handshake::{HandshakeError, KEY_LEN};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Mutex, MutexGuard};

/// More initiations than this in a second, in all, put the responder under load.
pub const LOAD_PER_SEC: u32 = 20;
/// Initiations a second one source address may make (under load).
pub const RATE_PER_SEC: u64 = 10;
/// Initiations one source address may make at once.
pub const BURST: u64 = 5;
/// Most source addresses tracked at once.
pub const MAX_SOURCES: usize = 4096;

const SECOND_NS: u64 = 1_000_000_000;
/// Time that earns one token.
const TOKEN_NS: u64 = SECOND_NS / RATE_PER_SEC;
/// Time that fills an empty bucket.
const FULL_NS: u64 = TOKEN_NS * BURST;
/// A full table is swept for refilled buckets at most this often.
const SWEEP_NS: u64 = 100_000_000;

/// What to do with an initiation whose mac1 holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Answer it; `mac2` is the cookie its mac2 was checked under (under load), if any.
    Answer(Option<Cookie>),
    /// Under load without a valid mac2: answer with a cookie reply, no Noise processing.
    Cookie,
    /// Under load, mac2 valid, but its source is over its rate: drop it.
    Limited,
}

/// A source's token bucket: credit in ns of earning time (one token is [`TOKEN_NS`]).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    credit: u64,
    at: u64,
}

impl Bucket {
    /// Refills to `now` and takes a token: false when there is none.
    fn take(&mut self, now: u64) -> bool {
        self.credit = self
            .credit
            .saturating_add(now.saturating_sub(self.at))
            .min(FULL_NS);
        self.at = self.at.max(now);
        if self.credit < TOKEN_NS {
            return false;
        }
        self.credit -= TOKEN_NS;
        true
    }
}

#[derive(Debug, Default)]
struct Rate {
    /// The second (`now / 1 s`) being counted, and the initiations in it and in the one
    /// before.
    second: u64,
    this: u32,
    last: u32,
    sources: HashMap<Ipv4Addr, Bucket>,
    swept: Option<u64>,
}

impl Rate {
    /// Counts one initiation at `now`; true when more than [`LOAD_PER_SEC`] came in this
    /// second or the last.
    fn count(&mut self, now: u64) -> bool {
        let second = now / SECOND_NS;
        if second != self.second {
            self.last = if second == self.second + 1 {
                self.this
            } else {
                0
            };
            self.this = 0;
            self.second = second;
        }
        self.this = self.this.saturating_add(1);
        self.this > LOAD_PER_SEC || self.last > LOAD_PER_SEC
    }

    /// Takes a token of `src`: Some(false) when it is over its rate, None when the table
    /// is full of sources heard from lately and `src` is not one of them.
    fn take(&mut self, now: u64, src: Ipv4Addr) -> Option<bool> {
        if let Some(b) = self.sources.get_mut(&src) {
            return Some(b.take(now));
        }
        if self.sources.len() >= MAX_SOURCES
            && self.swept.is_none_or(|t| now.saturating_sub(t) >= SWEEP_NS)
        {
            self.swept = Some(now);
            self.sources
                .retain(|_, b| now.saturating_sub(b.at) < FULL_NS);
        }
        if self.sources.len() >= MAX_SOURCES {
            return None;
        }
        Some(self.insert(now, src))
    }

    /// Tracks `src` with a full bucket and takes a token from it.
    fn insert(&mut self, now: u64, src: Ipv4Addr) -> bool {
        let mut b = Bucket {
            credit: FULL_NS,
            at: now,
        };
        let took = b.take(now);
        self.sources.insert(src, b);
        took
    }

    /// Makes room for `src` in the place of the source heard from longest ago.
    fn evict_for(&mut self, now: u64, src: Ipv4Addr) -> bool {
        let oldest = self
            .sources
            .iter()
            .min_by_key(|(_, b)| b.at)
            .map(|(a, _)| *a);
        if let Some(a) = oldest {
            self.sources.remove(&a);
        }
        self.insert(now, src)
    }
}

/// The responder's rate state and cookie secrets, shared by all workers.
#[derive(Debug)]
pub struct Guard {
    secret: CookieSecret,
    nonces: Nonces,
    rate: Mutex<Rate>,
}

impl Guard {
    /// A guard whose cookie secrets and nonces derive from `seed`: for tests, and until
    /// the daemon gives it a key ([`Guard::with_key`]).
    pub fn new(seed: u64) -> Guard {
        Guard {
            secret: CookieSecret::from_seed(seed),
            nonces: Nonces::from_seed(seed),
            rate: Mutex::new(Rate::default()),
        }
    }

    /// A guard whose cookie secrets and nonces derive from `key` (32 bytes from a random
    /// source: whoever finds it makes cookies for any address).
    pub fn with_key(key: &[u8; 32]) -> Guard {
        Guard {
            secret: CookieSecret::new(key),
            nonces: Nonces::new(key),
            rate: Mutex::new(Rate::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rate> {
        self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cookie of `src` at `now`.
    pub fn cookie(&self, now: u64, src: SocketAddrV4) -> Cookie {
        self.secret.cookie(now, src)
    }

    /// Decides about `initiation` (its mac1 already verified) from `src` at `now`; its
    /// mac2 is checked only when the responder is under load.
    pub fn admit(&self, now: u64, src: SocketAddrV4, initiation: &[u8]) -> Admit {
        let (busy, tokens) = {
            let mut r = self.lock();
            let busy = r.count(now);
            (busy, r.take(now, *src.ip()))
        };
        if !busy && tokens == Some(true) {
            return Admit::Answer(None);
        }
        let c = self.cookie(now, src);
        if cookie::check_mac2(&c, initiation).is_err() {
            return Admit::Cookie;
        }
        match tokens {
            Some(true) => Admit::Answer(Some(c)),
            Some(false) => Admit::Limited,
            // It proved its address: it takes the place of the quietest source.
            None => {
                if self.lock().evict_for(now, *src.ip()) {
                    Admit::Answer(Some(c))
                } else {
                    Admit::Limited
                }
            }
        }
    }

    /// The cookie reply to `initiation` from `src` at `now`, by the responder whose public
    /// key is `responder`.
    pub fn cookie_reply(
        &self,
        now: u64,
        src: SocketAddrV4,
        responder: &[u8; KEY_LEN],
        initiation: &[u8],
    ) -> Result<[u8; COOKIE_REPLY_LEN], HandshakeError> {
        cookie::reply(
            responder,
            &self.cookie(now, src),
            initiation,
            self.nonces.next(),
        )
    }

    /// Source addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.lock().sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::handshake::INITIATION_LEN;

    const S: u64 = SECOND_NS;
    const MS: u64 = 1_000_000;

    fn src(n: u32) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(0x0a00_0000 + n), 7420)
    }

    /// An initiation-sized message with mac2 under the guard's cookie for `from`, or not.
    fn init(g: &Guard, now: u64, from: SocketAddrV4, mac2: bool) -> Vec<u8> {
        let mut m = vec![0x5a; INITIATION_LEN];
        if mac2 {
            cookie::write_mac2(&g.cookie(now, from), &mut m).unwrap();
        }
        m
    }

    #[test]
    fn quiet_initiations_are_answered_without_mac2() {
        let g = Guard::new(1);
        for n in 0..LOAD_PER_SEC {
            assert_eq!(
                g.admit(S, src(n), &init(&g, S, src(n), false)),
                Admit::Answer(None)
            );
        }
        // The 21st in the second: under load.
        let m = init(&g, S, src(99), false);
        assert_eq!(g.admit(S, src(99), &m), Admit::Cookie);
        let m = init(&g, S, src(99), true);
        assert!(matches!(g.admit(S, src(99), &m), Admit::Answer(Some(_))));
        // Still under load the next second (the last one was busy), not the one after.
        let m = init(&g, 2 * S, src(1), false);
        assert_eq!(g.admit(2 * S, src(1), &m), Admit::Cookie);
        let m = init(&g, 3 * S, src(1), false);
        assert_eq!(g.admit(3 * S, src(1), &m), Admit::Answer(None));
    }

    #[test]
    fn a_source_over_its_rate_needs_a_cookie_and_then_is_limited() {
        let g = Guard::new(1);
        let a = src(1);
        for _ in 0..BURST {
            assert_eq!(g.admit(S, a, &init(&g, S, a, false)), Admit::Answer(None));
        }
        // Over its burst: a cookie; with mac2, limited until a token comes back.
        assert_eq!(g.admit(S, a, &init(&g, S, a, false)), Admit::Cookie);
        assert_eq!(g.admit(S, a, &init(&g, S, a, true)), Admit::Limited);
        let t = S + TOKEN_NS;
        assert!(matches!(
            g.admit(t, a, &init(&g, t, a, true)),
            Admit::Answer(_)
        ));
        assert_eq!(g.admit(t, a, &init(&g, t, a, true)), Admit::Limited);
        // Another source is not held back.
        assert_eq!(
            g.admit(t, src(2), &init(&g, t, src(2), false)),
            Admit::Answer(None)
        );
        // Ten a second, sustained.
        let mut answered = 0;
        for i in 0..100 {
            let now = 10 * S + i * 10 * MS;
            if matches!(g.admit(now, a, &init(&g, now, a, true)), Admit::Answer(_)) {
                answered += 1;
            }
        }
        assert!((BURST + 9..=BURST + 11).contains(&answered), "{answered}");
    }

    #[test]
    fn the_table_is_bounded() {
        let g = Guard::new(1);
        let n = MAX_SOURCES as u32 + 100;
        for i in 0..n {
            let now = S + u64::from(i) * 10_000;
            g.admit(now, src(i), &init(&g, now, src(i), false));
        }
        assert_eq!(g.tracked(), MAX_SOURCES);
        // Untracked and no mac2: a cookie. With mac2: the quietest source makes room.
        let now = S + u64::from(n) * 10_000;
        let late = src(n + 1);
        assert_eq!(
            g.admit(now, late, &init(&g, now, late, false)),
            Admit::Cookie
        );
        assert!(matches!(
            g.admit(now, late, &init(&g, now, late, true)),
            Admit::Answer(Some(_))
        ));
        assert_eq!(g.tracked(), MAX_SOURCES);
        // Once the buckets refilled, the next new source sweeps them out.
        let later = now + FULL_NS;
        g.admit(later, src(n + 2), &init(&g, later, src(n + 2), false));
        assert!(g.tracked() < 10, "{}", g.tracked());
    }

    #[test]
    fn cookie_replies_carry_the_cookie_of_the_source() {
        let g = Guard::new(3);
        let responder = [9; KEY_LEN];
        let m = init(&g, S, src(1), false);
        let r = g.cookie_reply(S, src(1), &responder, &m).unwrap();
        let mac1 = cookie::mac1_of(&m).unwrap();
        let got = cookie::open(&responder, &r, 0x5a5a_5a5a, &mac1).unwrap();
        assert_eq!(got, g.cookie(S, src(1)));
        assert_ne!(got, g.cookie(S, src(2)));
        // A new nonce each time.
        let again = g.cookie_reply(S, src(1), &responder, &m).unwrap();
        assert_ne!(r[8..32], again[8..32]);
    }

    #[test]
    fn the_key_makes_the_cookies() {
        let from = src(1);
        let a = Guard::with_key(&[1; 32]);
        assert_eq!(a.cookie(S, from), Guard::with_key(&[1; 32]).cookie(S, from));
        assert_ne!(a.cookie(S, from), Guard::with_key(&[2; 32]).cookie(S, from));
        assert_ne!(a.cookie(S, from), Guard::new(1).cookie(S, from));
        let mut s = crate::session::Sessions::new(1);
        assert_eq!(s.guard().cookie(S, from), Guard::new(1).cookie(S, from));
        s.set_cookie_key(&[1; 32]);
        assert_eq!(s.guard().cookie(S, from), a.cookie(S, from));
    }
}
