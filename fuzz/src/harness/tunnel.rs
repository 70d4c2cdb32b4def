//! The tunnel's open path: arbitrary messages, and authentic ones with bits
//! flipped or bytes cut, opened directly and sent through a hub; the replay
//! window against a model.
//!
//! Input: a mode byte, then the mode's bytes.
//!
//! - mode 0, `bytes`: opened as a braid message under a session key of each
//!   cipher. A refusal leaves the bytes unchanged; an acceptance (the fuzzer can
//!   learn a tag from the comparison, an attacker cannot) seals back to the same
//!   bytes.
//! - mode 1, `header (16) | flips (1) | positions (2 each) | plaintext`: sealed
//!   (version, type and counter made valid; the cipher ChaCha20-Poly1305, or
//!   AES-256-GCM when the first header byte's top bit is set), opened back (must give the
//!   plaintext), then with the flips applied (each a bit position modulo the
//!   message's bits; a bit flipped twice is not flipped) it must fail, and cut
//!   short by `flips` bytes it must fail too.
//! - mode 2, the same as 1 but as a datagram from the hub's edge, sealed under
//!   their session (its receiver index made the hub's): the original is received
//!   on a link; the altered one is dropped with a counted reason and changes
//!   nothing: no link counter, no NAT session, no neighbour entry.
//! - mode 3, `u16` steps: counters fed to a replay window and to a model.

use super::frames;
use super::pipeline::{give_back, lend, shared_of, Paired, T0};
use super::{HUB_MAC, KEY, KEY2};
use braid_dataplane::frame::Frame;
use braid_dataplane::ids::Lane;
use braid_dataplane::io::xsk::FRAME_CAPACITY;
use braid_dataplane::io::Verdict;
use braid_dataplane::pipeline::{Pipeline, Shared};
use braid_dataplane::snapshot::MAX_LANES;
use braid_dataplane::stats::{DropReason, WorkerStats, MAX_LINKS};
use braid_dataplane::tunnel::handshake::Session;
use braid_dataplane::tunnel::{
    Cipher, Header, ReplayWindow, SessionKey, HEADER_LEN, TAG_LEN, VERSION,
};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// What one input did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Authentic messages opened.
    pub opened: u64,
    /// Altered or arbitrary messages refused.
    pub refused: u64,
}

/// Runs one input.
pub fn tunnel(data: &[u8]) -> Outcome {
    match data.split_first() {
        Some((0, bytes)) => arbitrary(bytes),
        Some((1, bytes)) => altered(bytes),
        Some((2, bytes)) => through_hub(bytes),
        Some((3, bytes)) => replay(bytes),
        _ => Outcome::default(),
    }
}

/// A refused message keeps its header and tag; its body may have been wiped (ring
/// clears what it decrypted when the tag fails), but never holds anything else.
fn assert_kept(after: &[u8], before: &[u8]) {
    assert_eq!(
        after.len(),
        before.len(),
        "a refused message changed length"
    );
    if before.len() < HEADER_LEN + TAG_LEN {
        assert_eq!(after, before, "a refused short message was changed");
        return;
    }
    let body = HEADER_LEN..before.len() - TAG_LEN;
    assert_eq!(after[..HEADER_LEN], before[..HEADER_LEN], "header changed");
    assert_eq!(after[body.end..], before[body.end..], "tag changed");
    let (a, b) = (&after[body.clone()], &before[body]);
    assert!(
        a == b || a.iter().all(|&x| x == 0),
        "a refused body holds new bytes"
    );
}

fn arbitrary(bytes: &[u8]) -> Outcome {
    let _ = Header::parse(bytes);
    let _ = braid_dataplane::tunnel::Probe::parse(bytes);
    let mut out = Outcome::default();
    for cipher in Cipher::ALL {
        let key = SessionKey::new(cipher, &KEY);
        let mut msg = bytes.to_vec();
        match key.open(&mut msg) {
            Err(_) => {
                assert_kept(&msg, bytes);
                out.refused += 1;
            }
            // Only with the right tag, which a fuzzer may learn from the comparison (a
            // sender on the wire never sees it): sealing the plaintext again must give the
            // input.
            Ok(()) => {
                let mut again = msg.clone();
                assert!(key.seal(&mut again).is_ok());
                assert_eq!(
                    again, bytes,
                    "an opened message does not seal back to itself"
                );
                out.opened += 1;
            }
        }
    }
    out
}

/// An authentic message from the input, its alteration, and how many bytes to cut.
struct Case {
    header: Header,
    sealed: Vec<u8>,
    plain: Vec<u8>,
    altered: Vec<u8>,
    cut: usize,
}

/// The case of `bytes`, sealed under `key` with receiver index `receiver` when given.
fn case(bytes: &[u8], key: &SessionKey, receiver: Option<u32>) -> Option<Case> {
    let (h, rest) = bytes.split_first_chunk::<HEADER_LEN>()?;
    let (&flips, rest) = rest.split_first()?;
    let positions_len = (usize::from(flips) * 2).min(rest.len());
    let (positions, plain) = rest.split_at(positions_len);
    let mut head = *h;
    head[0] = VERSION;
    head[1] = 1 + head[1].wrapping_sub(1) % 4;
    head[8] &= 0x0f; // counters stay below 2^60
    if let Some(r) = receiver {
        head[4..8].copy_from_slice(&r.to_be_bytes());
    }
    let header = Header::parse(&head).ok()?;
    let mut sealed = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
    sealed.extend_from_slice(&head);
    sealed.extend_from_slice(plain);
    sealed.extend_from_slice(&[0; TAG_LEN]);
    key.seal(&mut sealed).ok()?;
    let mut altered = sealed.clone();
    let bits = altered.len() * 8;
    for p in positions.chunks_exact(2) {
        let at = usize::from(u16::from_be_bytes([p[0], p[1]])) % bits;
        altered[at / 8] ^= 1 << (at % 8);
    }
    Some(Case {
        header,
        sealed,
        plain: plain.to_vec(),
        altered,
        cut: usize::from(flips),
    })
}

fn altered(bytes: &[u8]) -> Outcome {
    let cipher = Cipher::ALL[usize::from(bytes.first().is_some_and(|b| b & 0x80 != 0))];
    let key = SessionKey::new(cipher, &KEY);
    let Some(c) = case(bytes, &key, None) else {
        return Outcome::default();
    };
    let mut ok = c.sealed.clone();
    assert_eq!(key.open(&mut ok), Ok(()), "an authentic message opens");
    assert_eq!(Header::parse(&ok), Ok(c.header));
    assert_eq!(&ok[HEADER_LEN..ok.len() - TAG_LEN], &c.plain[..]);
    for other in [
        SessionKey::new(cipher, &KEY2),
        SessionKey::new(Cipher::ALL[0], &KEY2),
    ] {
        assert!(
            other.open(&mut c.sealed.clone()).is_err(),
            "a message opened under another key"
        );
    }
    let mut refused = 0;
    if c.altered != c.sealed {
        let mut m = c.altered.clone();
        assert!(
            key.open(&mut m).is_err(),
            "a message with flipped bits opened"
        );
        assert_kept(&m, &c.altered);
        refused += 1;
    }
    if c.cut > 0 {
        let mut m = c.sealed[..c.sealed.len().saturating_sub(c.cut)].to_vec();
        assert!(key.open(&mut m).is_err(), "a shortened message opened");
        refused += 1;
    }
    Outcome { opened: 1, refused }
}

/// A hub with a session with its first edge and that edge's gateway known, and the
/// counters to compare.
struct Hub {
    shared: Arc<Shared>,
    /// The hub's session with its first edge.
    session: Session,
    sessions: Vec<Session>,
    worker: Pipeline,
}

impl Hub {
    fn new() -> Hub {
        let Paired { snap, sessions } = lend(true, 0);
        let shared = shared_of(snap);
        let gw = Ipv4Addr::new(203, 0, 113, 1);
        shared.neighbors.learn(0, gw, [2, 0, 0, 0, 0, 0x20], T0);
        let mut worker = Pipeline::new(
            Arc::clone(&shared),
            Lane(0),
            7,
            Arc::new(WorkerStats::default()),
        );
        worker.begin_batch(T0 + 1);
        let _ = worker.take_out().count();
        Hub {
            shared,
            session: sessions[0].clone(),
            sessions,
            worker,
        }
    }

    fn run(&mut self, frame: &[u8]) -> Verdict {
        let mut buf = vec![0u8; FRAME_CAPACITY];
        let len = frame.len().min(FRAME_CAPACITY);
        buf[..len].copy_from_slice(&frame[..len]);
        self.worker.process(0, &mut Frame::new(&mut buf, len))
    }

    /// Everything an attack must not change.
    fn state(&mut self) -> (Vec<u64>, u64, usize, u64) {
        self.worker.begin_batch(T0 + 2);
        let s = self.worker.stats();
        let links = (0..MAX_LINKS)
            .flat_map(|l| {
                let c = &s.links[l];
                [c.rx_packets.get(), c.rx_bytes.get(), c.tx_packets.get()]
            })
            .collect();
        (
            links,
            s.nat.created.get(),
            self.shared.neighbors.load().len(),
            s.forwarded.get(),
        )
    }

    fn drops(&self) -> u64 {
        let s = self.worker.stats();
        DropReason::ALL.iter().map(|d| s.drops_of(*d)).sum()
    }

    /// Gives the snapshot back for the next input.
    fn done(self) {
        let Hub {
            shared,
            sessions,
            worker,
            ..
        } = self;
        drop(worker);
        if let Ok(shared) = Arc::try_unwrap(shared) {
            let snap = shared.snapshot.into_inner();
            give_back(true, 0, Paired { snap, sessions });
        }
    }
}

/// The frame of message `msg` from the edge's isp1 address to the hub.
fn frame_of(msg: &[u8]) -> Vec<u8> {
    let udp = frames::udp(0xc001, 7420, msg);
    let ip = frames::ipv4(
        Ipv4Addr::new(198, 18, 11, 2),
        Ipv4Addr::new(203, 0, 113, 2),
        17,
        63,
        &udp,
    );
    frames::eth(HUB_MAC, [2, 0, 0, 0, 0, 0x20], frames::IPV4, &ip)
}

fn through_hub(bytes: &[u8]) -> Outcome {
    let mut hub = Hub::new();
    // The edge seals with the key the hub opens with, to the hub's index of the session.
    let Some(c) = case(bytes, &hub.session.recv, Some(hub.session.local_index)) else {
        hub.done();
        return Outcome::default();
    };
    let mut refused = 0;
    // The altered copies go first, so an accepted original cannot hide them as replays.
    let mut attacks = Vec::new();
    if c.altered != c.sealed {
        attacks.push(c.altered.clone());
    }
    if c.cut > 0 && c.cut < c.sealed.len() {
        attacks.push(c.sealed[..c.sealed.len() - c.cut].to_vec());
    }
    for attack in attacks {
        let before = hub.state();
        let drops = hub.drops();
        assert_eq!(
            hub.run(&frame_of(&attack)),
            Verdict::Drop,
            "altered datagram"
        );
        assert_eq!(
            hub.drops(),
            drops + 1,
            "an altered datagram is counted once"
        );
        assert_eq!(hub.state(), before, "an altered datagram changed state");
        refused += 1;
    }
    // The original is authentic: it is received on its link when the header names
    // one and carries data (whatever then becomes of the inner packet).
    let links_before = hub.state().0;
    let _ = hub.run(&frame_of(&c.sealed));
    let received = hub.state().0 != links_before;
    if received {
        assert!(
            c.header.link < 2 && usize::from(c.header.lane) < MAX_LANES,
            "received on another link or lane: {:?}",
            c.header
        );
    }
    // A replay of the original changes nothing.
    let before = hub.state();
    let _ = hub.run(&frame_of(&c.sealed));
    assert_eq!(
        hub.state().0,
        before.0,
        "a replayed datagram moved link counters"
    );
    assert_eq!(
        hub.state().1,
        before.1,
        "a replayed datagram made a NAT session"
    );
    hub.done();
    Outcome {
        opened: u64::from(received),
        refused,
    }
}

/// A replay window against a set of accepted counters.
fn replay(bytes: &[u8]) -> Outcome {
    let w = ReplayWindow::new();
    let mut seen = BTreeSet::new();
    let mut top: Option<u64> = None;
    // Counters start at 0 under each session.
    let mut front: u64 = 0;
    let mut opened = 0;
    for step in bytes.chunks_exact(2) {
        let s = i64::from(i16::from_be_bytes([step[0], step[1]]));
        // Large negative steps reach past the window; large positive ones jump it.
        let seq = front.saturating_add_signed(s * 3);
        front = front.max(seq);
        let want = match top {
            None => true,
            Some(t) => seq > t || (t - seq < ReplayWindow::SIZE && !seen.contains(&seq)),
        };
        assert_eq!(w.check(seq), want, "check {seq}");
        assert_eq!(w.accept(seq), want, "accept {seq}");
        assert!(!w.check(seq), "accepted twice: {seq}");
        if want {
            seen.insert(seq);
            top = Some(top.map_or(seq, |t| t.max(seq)));
            opened += 1;
        }
    }
    Outcome { opened, refused: 0 }
}
