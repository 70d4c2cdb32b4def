//! The tunnel handshake through the pipelines: arbitrary bytes as an initiation to a hub
//! and as a response to an edge whose handshake is under way, and a genuine exchange
//! with one of its messages altered first.
//!
//! Input: a mode byte, then the mode's bytes.
//!
//! - mode 0, `bytes`: the payload of a datagram from the edge's isp1 address to the tunnel
//!   port of a hub with no session. The hub answers (in place: one response, back to the
//!   sender) and keeps a session only when a responder with the hub's keys takes `bytes`
//!   as the lab edge's initiation; that session never sends (only a message under it
//!   confirms it).
//! - mode 1, `bytes`: the payload of a datagram from the hub to an edge whose initiation
//!   is under way. The edge's ephemeral key is new every run, so no input holds the
//!   response: nothing is answered and no session is made.
//! - mode 2, `which (1) | cut (1) | mask`: a genuine exchange between an edge and a hub
//!   through their pipelines. The initiation (`which` even) or the response (odd) is
//!   first delivered altered: xored with `mask` from its start and cut short by `cut`
//!   bytes. Unless that left it as it was (for the initiation: but for its mac2, which a
//!   hub not under load does not look at), it is refused: no answer, no session. Then the
//!   genuine messages still make the session at both ends, and a LAN packet reaches the
//!   internet through it. (A refused response that names the handshake under way uses it
//!   up: then the edge's retry, a second later, does.)

use super::frames::{self, IPV4};
use super::pipeline::{config, snapshot, T0};
use super::HUB_PRIVATE;
use super::{EDGE_MACS, EDGE_PRIVATE, GW1_MAC, GW2_MAC, HOST_MAC, HUB_GW_MAC, HUB_MAC};
use braid_dataplane::frame::Frame;
use braid_dataplane::ids::Lane;
use braid_dataplane::io::xsk::FRAME_CAPACITY;
use braid_dataplane::io::Verdict;
use braid_dataplane::pipeline::{Pipeline, Shared};
use braid_dataplane::session::RETRY_FIRST_NS;
use braid_dataplane::stats::WorkerStats;
use braid_dataplane::tunnel::handshake::{
    Responder, StaticKeys, INITIATION_LEN, MAC_LEN, RESPONSE_LEN, TYPE_INITIATION, TYPE_RESPONSE,
};
use braid_dataplane::tunnel::{CipherSet, VERSION};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// What one input did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Responses the hub sent.
    pub answered: u64,
    /// Sessions made (at the hub, the edge, or both ends of a genuine exchange: one each).
    pub sessions: u64,
    /// Altered messages refused.
    pub refused: u64,
}

/// Runs one input.
pub fn handshake(data: &[u8]) -> Outcome {
    match data.split_first() {
        Some((0, bytes)) => initiation(bytes),
        Some((1, bytes)) => response(bytes),
        Some((2, bytes)) => exchange(bytes),
        _ => Outcome::default(),
    }
}

/// Offset of the braid message in a tunnel frame (Ethernet, IPv4, UDP).
const MSG: usize = 14 + 20 + 8;

/// The edge's isp1 address, and the hub's.
const EDGE_ISP1: Ipv4Addr = Ipv4Addr::new(198, 18, 11, 2);
const HUB_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

/// A tunnel datagram holding `msg`, from the edge's isp1 to the hub.
fn to_hub(msg: &[u8]) -> Vec<u8> {
    let udp = frames::udp(7420, 7420, msg);
    let ip = frames::ipv4(EDGE_ISP1, HUB_ADDR, 17, 63, &udp);
    frames::eth(HUB_MAC, HUB_GW_MAC, IPV4, &ip)
}

/// A tunnel datagram holding `msg`, from the hub to the edge's isp1.
fn to_edge(msg: &[u8]) -> Vec<u8> {
    let udp = frames::udp(7420, 7420, msg);
    let ip = frames::ipv4(HUB_ADDR, EDGE_ISP1, 17, 60, &udp);
    frames::eth(EDGE_MACS[1], GW1_MAC, IPV4, &ip)
}

/// One worker of a fresh daemon (no session), its neighbours known.
struct Node {
    shared: Arc<Shared>,
    worker: Pipeline,
}

impl Node {
    fn new(hub: bool) -> Node {
        let snap = if hub {
            snapshot(&config(true, 0), &[HUB_MAC], HUB_PRIVATE)
        } else {
            snapshot(&config(false, 0), &EDGE_MACS, EDGE_PRIVATE)
        };
        let shared = Arc::new(Shared::new(snap, 7));
        let n = &shared.neighbors;
        let ip = |a, b, c, d| Ipv4Addr::new(a, b, c, d);
        if hub {
            n.learn(0, ip(203, 0, 113, 1), HUB_GW_MAC, T0);
        } else {
            n.learn(1, ip(198, 18, 11, 1), GW1_MAC, T0);
            n.learn(2, ip(198, 18, 12, 1), GW2_MAC, T0);
            n.learn(0, ip(198, 18, 1, 2), HOST_MAC, T0);
        }
        let worker = Pipeline::new(
            Arc::clone(&shared),
            Lane(0),
            7,
            Arc::new(WorkerStats::default()),
        );
        Node { shared, worker }
    }

    /// Runs `frame` in on `port`: the verdict and the frame as it is after.
    fn run(&mut self, port: usize, frame: &[u8]) -> (Verdict, Vec<u8>) {
        let mut buf = vec![0u8; FRAME_CAPACITY];
        let len = frame.len().min(FRAME_CAPACITY);
        buf[..len].copy_from_slice(&frame[..len]);
        let mut f = Frame::new(&mut buf, len);
        let v = self.worker.process(port, &mut f);
        (v, f.data().to_vec())
    }

    /// Sessions that open messages (at most one peer here).
    fn receiving(&self) -> usize {
        let snap = self.shared.snapshot.load();
        snap.peers.iter().map(|p| p.keys.receiving().len()).sum()
    }

    /// True when a session sends.
    fn sending(&self) -> bool {
        let snap = self.shared.snapshot.load();
        snap.peers.iter().any(|p| p.keys.sending().is_some())
    }

    /// Starts a batch at `now`; the frames it sends.
    fn batch(&mut self, now: u64) -> Vec<(usize, Vec<u8>)> {
        self.worker.begin_batch(now);
        self.worker.take_out().collect()
    }
}

/// True when a responder with the hub's keys takes `msg` as the lab edge's initiation.
fn genuine_initiation(msg: &[u8]) -> bool {
    let edge = StaticKeys::from_private(EDGE_PRIVATE).public();
    Responder::new(StaticKeys::from_private(HUB_PRIVATE), CipherSet::local())
        .respond(msg, 1, |k| (*k == edge).then_some([0; 32]))
        .is_ok()
}

fn initiation(bytes: &[u8]) -> Outcome {
    let mut hub = Node::new(true);
    assert!(hub.batch(T0).is_empty(), "a hub never initiates");
    let (v, out) = hub.run(0, &to_hub(bytes));
    let sent = hub.batch(T0);
    assert!(sent.is_empty(), "a hub answers in place only");
    assert!(
        !hub.sending(),
        "an initiation alone made a session that sends"
    );
    let made = hub.receiving();
    if v == Verdict::Drop {
        assert!(
            made == 0 || genuine_initiation(bytes),
            "a refused forgery left a session"
        );
        return Outcome::default();
    }
    assert_eq!(v, Verdict::Tx(0), "an initiation is answered on its port");
    assert!(genuine_initiation(bytes), "answered a forged initiation");
    assert_eq!(made, 1, "an answered initiation makes one session");
    let msg = &out[MSG..];
    assert_eq!(msg.len(), RESPONSE_LEN);
    assert_eq!(msg[..2], [VERSION, TYPE_RESPONSE]);
    assert_eq!(
        msg[8..12],
        bytes[4..8],
        "the response names the initiator's index"
    );
    assert_eq!(
        out[30..34],
        EDGE_ISP1.octets(),
        "answered where it came from"
    );
    Outcome {
        answered: 1,
        sessions: 1,
        refused: 0,
    }
}

/// The initiation an edge sends in its batch at `now` (its first, or a retry).
fn initiate(edge: &mut Node, now: u64) -> Vec<u8> {
    let sent = edge.batch(now);
    let (_, f) = sent
        .into_iter()
        .find(|(_, f)| f.len() == MSG + INITIATION_LEN && f[MSG + 1] == TYPE_INITIATION)
        .expect("the edge initiates");
    f
}

fn response(bytes: &[u8]) -> Outcome {
    let mut edge = Node::new(false);
    initiate(&mut edge, T0);
    let (v, _) = edge.run(1, &to_edge(bytes));
    assert_eq!(v, Verdict::Drop, "the edge answered a forged response");
    assert!(
        edge.receiving() == 0 && !edge.sending(),
        "a forged response made a session"
    );
    assert!(edge.batch(T0).is_empty(), "nothing goes out in answer");
    Outcome::default()
}

/// `msg` xored with `mask` from its start, then cut short by `cut` bytes.
fn alter(msg: &[u8], cut: u8, mask: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    for (b, x) in m.iter_mut().zip(mask) {
        *b ^= x;
    }
    m.truncate(m.len().saturating_sub(usize::from(cut)));
    m
}

fn exchange(bytes: &[u8]) -> Outcome {
    let (which, cut, mask) = match bytes {
        [w, c, mask @ ..] => (w & 1, *c, mask),
        _ => return Outcome::default(),
    };
    let (mut edge, mut hub) = (Node::new(false), Node::new(true));
    let mut out = Outcome::default();
    let init = initiate(&mut edge, T0);
    let altered = alter(&init[MSG..], cut, mask);
    // Not under load the hub does not look at mac2 (docs/PROTOCOL.md, "The handshake"): an
    // initiation altered there alone is the genuine one, and is not delivered first.
    let covered = |m: &[u8]| {
        m.len()
            .checked_sub(MAC_LEN)
            .and_then(|n| m.get(..n))
            .map(<[u8]>::to_vec)
    };
    let mac2_alone =
        altered.len() == init.len() - MSG && covered(&altered) == covered(&init[MSG..]);
    if which == 0 && altered != init[MSG..] && !mac2_alone {
        let (v, _) = hub.run(0, &to_hub(&altered));
        assert_eq!(v, Verdict::Drop, "an altered initiation was answered");
        assert_eq!(hub.receiving(), 0, "an altered initiation made a session");
        out.refused += 1;
    }
    let (v, resp) = hub.run(0, &to_hub(&init[MSG..]));
    assert_eq!(v, Verdict::Tx(0), "the genuine initiation is answered");
    out.answered += 1;
    let altered = alter(&resp[MSG..], cut, mask);
    let mut used_up = false;
    if which == 1 && altered != resp[MSG..] {
        let (v, _) = edge.run(1, &to_edge(&altered));
        assert_eq!(v, Verdict::Drop, "an altered response was answered");
        assert!(!edge.sending(), "an altered response made a session");
        out.refused += 1;
        used_up = altered.len() >= 12
            && altered[..2] == [VERSION, TYPE_RESPONSE]
            && altered[8..12] == resp[MSG + 8..MSG + 12];
    }
    // The genuine response makes the edge's session; its keepalive confirms the hub's.
    let (mut v, mut keepalive) = edge.run(1, &to_edge(&resp[MSG..]));
    if used_up && v == Verdict::Drop {
        let init = initiate(&mut edge, T0 + RETRY_FIRST_NS);
        let (answered, resp) = hub.run(0, &to_hub(&init[MSG..]));
        assert_eq!(answered, Verdict::Tx(0), "the retry is answered");
        out.answered += 1;
        (v, keepalive) = edge.run(1, &to_edge(&resp[MSG..]));
    }
    assert!(matches!(v, Verdict::Tx(1 | 2)), "the edge confirms: {v:?}");
    assert!(
        edge.sending(),
        "the genuine response made the edge's session"
    );
    hub.worker.begin_batch(T0 + RETRY_FIRST_NS);
    let (v, _) = hub.run(0, &to_hub(&keepalive[MSG..]));
    assert_eq!(v, Verdict::Drop, "a keepalive is taken");
    assert!(hub.sending(), "the keepalive confirmed the hub's session");
    out.sessions += 2;
    // Data under the session: a LAN packet through the edge reaches the internet.
    edge.worker.begin_batch(T0 + RETRY_FIRST_NS);
    hub.worker.begin_batch(T0 + RETRY_FIRST_NS);
    let packet = frames::ipv4(
        Ipv4Addr::new(198, 18, 1, 2),
        Ipv4Addr::new(203, 0, 113, 130),
        17,
        64,
        &frames::udp(5555, 9, b"after the handshake"),
    );
    let mut lan = frames::eth(EDGE_MACS[0], HOST_MAC, IPV4, &packet);
    frames::fix_ipv4(&mut lan[14..]);
    let (v, sealed) = edge.run(0, &lan);
    assert!(matches!(v, Verdict::Tx(1 | 2)), "the edge seals: {v:?}");
    let mut at_hub = sealed;
    at_hub[..6].copy_from_slice(&HUB_MAC);
    assert_eq!(hub.run(0, &at_hub).0, Verdict::Tx(0), "the hub forwards");
    out
}
