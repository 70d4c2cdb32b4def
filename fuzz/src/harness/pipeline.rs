//! The edge and hub pipelines fed a sequence of frames on every port, with a
//! simulated clock, as the workers run them.
//!
//! Input: one byte choosing the configuration variant, then records of
//! `control (1) | length (2, big-endian) | frame bytes`. The control byte:
//!
//! | bits | meaning |
//! |---|---|
//! | 0-1 | port (modulo the number of ports) |
//! | 2 | repair the frame: destination MAC, IPv4 lengths and checksums (inner too when sealed) |
//! | 3 | seal the braid message under a session (the fuzzer cannot forge tags): its receiver index (bytes 4..8) picks the peer (modulo their number) and becomes that peer's session's index |
//! | 4-6 | clock step before the frame (0 = same batch; else a new batch on every worker) |
//! | 7 | worker (lane) that receives it, when there are two |
//!
//! Checked after every frame, besides "no panic": every frame braid sends has the
//! sending port's MAC as source and is ARP (42 bytes) or IPv4 with a valid header
//! checksum and a total length matching the frame; a datagram counts as received
//! on a link only if it authenticates (no forgery gets through); the
//! neighbour cache and the NAT tables stay within their limits.
//!
//! Every input starts from the same fresh daemon state, with a session per peer as a
//! handshake makes it (the edge's with the hub; the hub's with each edge). Building a
//! snapshot and running a handshake cost more than running most inputs, so each thread
//! keeps the snapshot of a configuration variant and its sessions' keys once made, and
//! lends them to the next input of that variant with every peer's sessions and learned
//! endpoints made anew (the only state a snapshot holds; see [`lend`]). Everything else
//! (shared neighbour cache, session board, pipelines, NAT tables, counters) is built anew
//! for every input.

use super::frames::{self, ETH_LEN};
use super::{
    EDGE2_PUBLIC, EDGE_MACS, EDGE_PRIVATE, GW1_MAC, GW2_MAC, HOST_MAC, HUB_GW_MAC, HUB_MAC,
    HUB_PRIVATE, KEY2,
};
use arc_swap::ArcSwap;
use braid_control::config::Config;
use braid_dataplane::frame::Frame;
use braid_dataplane::ids::Lane;
use braid_dataplane::io::xsk::FRAME_CAPACITY;
use braid_dataplane::io::{PortId, Verdict};
use braid_dataplane::pipeline::{Pipeline, Shared};
use braid_dataplane::route::neighbor::DEFAULT_CAPACITY;
use braid_dataplane::route::Neighbors;
use braid_dataplane::session::{Live, PeerKeys, Sessions};
use braid_dataplane::snapshot::{Secrets, Snapshot};
use braid_dataplane::stats::{DropReason, LinkCounters, WorkerStats};
use braid_dataplane::tunnel::handshake::Session;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The lab edge and hub the pipeline tests use.
pub use braid_testkit::{EDGE, HUB};

/// Clock steps (ns) selected by bits 4-6 of a record's control byte.
const STEPS: [u64; 8] = [
    0,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    4_000_000_000,
    61_000_000_000,
    1_000_000_000_000,
];

/// Sessions a fuzzed hub's masquerade allows (small, so limits are reached).
pub const MAX_SESSIONS: usize = 64;

/// What a run did, for tests that check a seed reaches what it was made for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Frames sent (by verdict and by copy), per port.
    pub sent: Vec<u64>,
    /// Tunnel packets received over all links.
    pub link_rx: u64,
    /// Tunnel packets sent over all links.
    pub link_tx: u64,
    /// NAT sessions created over all workers.
    pub nat_created: u64,
    /// Frames answered or consumed by braid itself.
    pub local: u64,
    /// Drops counted, by reason name.
    pub drops: Vec<(&'static str, u64)>,
}

impl Report {
    /// Drops counted for `why`.
    pub fn drops_of(&self, why: DropReason) -> u64 {
        self.drops
            .iter()
            .find(|(n, _)| *n == why.name())
            .map_or(0, |(_, c)| *c)
    }
}

/// Runs the input through an edge.
pub fn edge(data: &[u8]) -> Report {
    run(Side::Edge, data)
}

/// Runs the input through a hub that masquerades its edge's LAN.
pub fn hub(data: &[u8]) -> Report {
    run(Side::Hub, data)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    Edge,
    Hub,
}

/// The configuration of a side; `variant` bits choose options:
/// edge: 0 flow mode, 1 a LAN host bypassing the bond masqueraded on isp1, 2 two workers;
/// hub: 0 hairpin translated, 1 refusals answered by ICMP, 2 other protocols passed,
/// 3 two workers, 4 a narrow port range (128 ports), 5 a second edge with its own key.
/// Other bits are ignored (see [`VARIANT_BITS`]).
pub fn config_text(side: bool, variant: u8) -> String {
    let bit = |b: u8| variant & (1 << b) != 0;
    if side {
        let mut t = String::new();
        t.push_str(&format!("workers = {}\n", if bit(3) { 2 } else { 1 }));
        t.push_str(HUB);
        if bit(5) {
            t.push_str(&format!(
                "\n[[peer]]\nname = \"edge2\"\npublic_key = \"{EDGE2_PUBLIC}\"\n\
                 allowed = [\"198.18.2.0/24\"]\n[[peer.link]]\nname = \"dsl\"\n\
                 interface = \"wan0\"\ngateway = \"203.0.113.1\"\nremote = \"198.18.21.2:7420\"\n\
                 weight = 1\n[[route]]\nto = \"198.18.2.0/24\"\npeer = \"edge2\"\n",
            ));
        }
        t.push_str(&format!(
            "\n[[masquerade]]\ninterface = \"wan0\"\nsources = [\"198.18.1.0/24\", \"198.18.2.0/24\"]\n\
             max_sessions = {MAX_SESSIONS}\nmax_per_host = 16\nudp_timeout = 30\nicmp_timeout = 10\n\
             tcp_transitory_timeout = 20\ntcp_established_timeout = 600\n"
        ));
        t.push_str(&format!(
            "when_full = \"{}\"\nhairpin = \"{}\"\nother_protocols = \"{}\"\n",
            if bit(1) { "icmp" } else { "drop" },
            if bit(0) { "translate" } else { "drop" },
            if bit(2) { "pass" } else { "drop" },
        ));
        if bit(4) {
            t.push_str("port_min = 20000\nport_max = 20127\n");
        }
        t
    } else {
        let mut t = format!("workers = {}\n", if bit(2) { 2 } else { 1 });
        let mut edge = EDGE.to_string();
        if bit(0) {
            edge = edge.replace("mode = \"packet\"", "mode = \"flow\"");
        }
        if bit(1) {
            edge = edge.replace(
                "[[rule]]\nfrom = \"198.18.1.0/24\"",
                "[[rule]]\nfrom = \"198.18.1.50/32\"\ntable = \"isp1\"\n\n[[rule]]\nfrom = \"198.18.1.0/24\"",
            ) + "\n[[route]]\ntable = \"isp1\"\nto = \"0.0.0.0/0\"\nvia = \"198.18.11.1\"\n\
                 dev = \"wan1\"\n\n[[masquerade]]\ninterface = \"wan1\"\nmax_sessions = 64\nmax_per_host = 16\n";
        }
        t.push_str(&edge);
        t
    }
}

/// The bits of the variant byte [`config_text`] reads: (edge, hub).
pub const VARIANT_BITS: (u8, u8) = (0b111, 0b11_1111);

/// The parsed configuration of a side and variant (parsed once: TOML parsing would
/// otherwise cost more than the frames of an input).
pub fn config(hub: bool, variant: u8) -> Config {
    static PARSED: OnceLock<Mutex<HashMap<(bool, u8), Config>>> = OnceLock::new();
    let mut parsed = PARSED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    parsed
        .entry((hub, variant))
        .or_insert_with(|| {
            toml::from_str(&config_text(hub, variant)).expect("the harness configs parse")
        })
        .clone()
}

/// The time every input starts at (monotonic ns), when its sessions were made.
pub const T0: u64 = 1_000_000_000;

/// A daemon's snapshot and, per peer (in config order), this end's session with it.
pub struct Paired {
    /// The snapshot, its peers' sessions installed.
    pub snap: Arc<Snapshot>,
    /// This end's session with each peer: `recv` opens what the peer seals.
    pub sessions: Vec<Session>,
}

/// Shared state around `snap`, as `Shared::new` makes it.
pub fn shared_of(snap: Arc<Snapshot>) -> Arc<Shared> {
    Arc::new(Shared {
        snapshot: ArcSwap::new(snap),
        neighbors: Neighbors::new(DEFAULT_CAPACITY),
        board: Default::default(),
        sessions: Sessions::new(7),
        spares: Default::default(),
    })
}

/// A daemon's snapshot for `cfg` with this private key, no pre-shared keys.
pub fn snapshot(cfg: &Config, macs: &[[u8; 6]], private: [u8; 32]) -> Snapshot {
    let secrets = Secrets {
        private,
        psks: vec![[0; 32]; cfg.peers.len()],
    };
    Snapshot::build(cfg, macs, &secrets, 1).expect("the harness configs build")
}

/// Builds the snapshot of a side and variant and runs a handshake with each of its peers
/// (in memory, `Shared::pair_with`): the edge with the lab hub, the hub with the lab edge
/// and, when configured, the second edge (key [`KEY2`]).
fn pair(hub: bool, variant: u8) -> Paired {
    let edge_cfg = |v| config(false, v);
    let (macs, private): (&[[u8; 6]], _) = if hub {
        (&[HUB_MAC], HUB_PRIVATE)
    } else {
        (&EDGE_MACS, EDGE_PRIVATE)
    };
    let cfg = config(hub, variant);
    let ours = shared_of(Arc::new(snapshot(&cfg, macs, private)));
    if hub {
        let edges = [EDGE_PRIVATE, KEY2];
        for private in &edges[..cfg.peers.len()] {
            let edge = shared_of(Arc::new(snapshot(&edge_cfg(0), &EDGE_MACS, *private)));
            edge.pair_with(&ours, T0).expect("a handshake with an edge");
        }
    } else {
        let hub = shared_of(Arc::new(snapshot(
            &config(true, 0),
            &[HUB_MAC],
            HUB_PRIVATE,
        )));
        ours.pair_with(&hub, T0).expect("a handshake with the hub");
    }
    let snap = ours.snapshot.load_full();
    let sessions = snap
        .peers
        .iter()
        .map(|p| {
            let live = p.keys.sending().expect("a session with every peer");
            Session {
                cipher: live.recv.cipher(),
                send: live.send.clone(),
                recv: live.recv.clone(),
                local_index: live.local_index,
                remote_index: live.remote_index,
                peer_static: p.public_key,
            }
        })
        .collect();
    Paired { snap, sessions }
}

thread_local! {
    /// What this thread made, by (hub, variant bits), while no input uses it.
    static PAIRED: RefCell<HashMap<(bool, u8), Paired>> = RefCell::default();
}

/// The snapshot of a side (`hub`) and `variant` (only its [`VARIANT_BITS`]) for one input,
/// with a new session per peer made of this thread's handshake keys, as fresh as
/// [`pair`] leaves it: no message yet under any session, nothing learned. [`give_back`]
/// returns it.
pub fn lend(hub: bool, variant: u8) -> Paired {
    let variant = variant & if hub { VARIANT_BITS.1 } else { VARIANT_BITS.0 };
    let kept = PAIRED.with(|p| p.borrow_mut().remove(&(hub, variant)));
    match kept.and_then(|p| refreshed(p, hub)) {
        Some(p) => p,
        None => pair(hub, variant),
    }
}

/// `p` with every peer's sessions made anew from its keys and every learned endpoint
/// forgotten; None when anything else still holds the snapshot.
fn refreshed(mut p: Paired, hub: bool) -> Option<Paired> {
    let s = Arc::get_mut(&mut p.snap)?;
    let board = Sessions::new(7);
    for (peer, session) in s.peers.iter_mut().zip(&p.sessions) {
        let keys = Arc::new(PeerKeys::default());
        if hub {
            keys.responded(&board, Live::new(session.clone(), T0, false));
            for live in keys.receiving() {
                keys.confirm(&board, T0, &live);
            }
        } else {
            keys.initiated(&board, T0, Live::new(session.clone(), T0, true));
        }
        peer.keys = keys;
        for link in &mut peer.links {
            link.endpoint = Arc::default();
        }
    }
    Some(p)
}

/// Keeps `p` for the next input of its side and variant.
pub fn give_back(hub: bool, variant: u8, p: Paired) {
    let variant = variant & if hub { VARIANT_BITS.1 } else { VARIANT_BITS.0 };
    PAIRED.with(|m| m.borrow_mut().insert((hub, variant), p));
}

/// Drops what this thread keeps: the next input of each variant makes its own, as a
/// fresh daemon does (for tests that compare with one).
pub fn forget_snapshots() {
    PAIRED.with(|p| p.borrow_mut().clear());
}

/// Pipelines of one daemon, a clock, and the checks.
struct Bench {
    side: Side,
    variant: u8,
    shared: Arc<Shared>,
    /// This end's session with each peer.
    sessions: Vec<Session>,
    workers: Vec<Pipeline>,
    macs: Vec<[u8; 6]>,
    /// The counter slots of the configured links (the only ones the pipeline counts in).
    link_slots: Vec<usize>,
    now: u64,
    sent: Vec<u64>,
    /// The frame buffer, zero past the frame each record puts in.
    buf: Vec<u8>,
    /// The frame as it went in (the pipeline rewrites `buf`).
    input: Vec<u8>,
}

fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
}

impl Bench {
    fn new(side: Side, variant: u8) -> Bench {
        let variant = variant
            & match side {
                Side::Edge => VARIANT_BITS.0,
                Side::Hub => VARIANT_BITS.1,
            };
        let macs = match side {
            Side::Edge => EDGE_MACS.to_vec(),
            Side::Hub => vec![HUB_MAC],
        };
        let Paired { snap, sessions } = lend(side == Side::Hub, variant);
        let lanes = snap.workers;
        let link_slots = snap
            .peers
            .iter()
            .flat_map(|p| p.links.iter().map(|l| l.slot.0))
            .collect();
        let shared = shared_of(snap);
        // Gateways and the LAN host are known, as after the first ARP exchange;
        // frames may still teach or refresh others.
        let t0 = T0;
        let n = &shared.neighbors;
        match side {
            Side::Edge => {
                n.learn(1, addr("198.18.11.1"), GW1_MAC, t0);
                n.learn(2, addr("198.18.12.1"), GW2_MAC, t0);
                n.learn(0, addr("198.18.1.2"), HOST_MAC, t0);
            }
            Side::Hub => {
                n.learn(0, addr("203.0.113.1"), HUB_GW_MAC, t0);
            }
        }
        let workers = (0..lanes)
            .map(|lane| {
                let mut p = Pipeline::new(
                    Arc::clone(&shared),
                    Lane(lane as u8),
                    7,
                    Arc::new(WorkerStats::default()),
                );
                p.begin_batch(t0);
                p
            })
            .collect();
        let sent = vec![0; macs.len()];
        let mut b = Bench {
            side,
            variant,
            shared,
            sessions,
            workers,
            macs,
            link_slots,
            now: t0,
            sent,
            buf: vec![0; FRAME_CAPACITY],
            input: Vec::new(),
        };
        b.drain();
        b
    }

    /// Tunnel packets received on all links by all workers.
    fn link_rx(&self) -> u64 {
        self.link_sum(|l| l.rx_packets.get())
    }

    /// The sum of a link counter over the configured links and all workers.
    fn link_sum(&self, f: impl Fn(&LinkCounters) -> u64) -> u64 {
        self.workers
            .iter()
            .map(|w| {
                let links = &w.stats().links;
                self.link_slots
                    .iter()
                    .filter_map(|&l| links.get(l))
                    .map(&f)
                    .sum::<u64>()
            })
            .sum()
    }

    /// Checks a frame braid sends out of `port`.
    fn check_sent(&mut self, port: PortId, f: &[u8]) {
        check_sent(&self.macs, &mut self.sent, port, f);
    }

    /// Starts a batch on every worker at the current time and checks what they send.
    fn new_batch(&mut self) {
        self.shared.neighbors.expire(self.now);
        for w in &mut self.workers {
            w.begin_batch(self.now);
        }
        self.drain();
    }

    /// Resumes the packets workers handed off on their owners (as the workers'
    /// mailboxes do), then checks and discards the frames every worker sends by copy.
    fn drain(&mut self) {
        let mut handed = Vec::new();
        for w in &mut self.workers {
            handed.extend(w.take_handoffs());
        }
        for (lane, h) in handed {
            if let Some(w) = self.workers.get_mut(lane.index()) {
                w.resume(h);
            }
        }
        let mut out = Vec::new();
        for w in &mut self.workers {
            out.extend(w.take_out());
        }
        for (port, f) in out {
            self.check_sent(port, &f);
        }
    }

    /// One record: prepare the frame, run it, check the outcome.
    fn step(&mut self, ctl: u8, bytes: &[u8]) {
        let port = usize::from(ctl & 3) % self.macs.len();
        let (repair, sealed) = (ctl & 4 != 0, ctl & 8 != 0);
        let step = STEPS[usize::from((ctl >> 4) & 7)];
        let lane = usize::from(ctl >> 7) % self.workers.len();
        if step > 0 {
            self.now += step;
            self.new_batch();
        }
        let len = bytes.len().min(FRAME_CAPACITY);
        let (frame, rest) = self.buf.split_at_mut(len);
        frame.copy_from_slice(&bytes[..len]);
        rest.fill(0);
        let mut authentic = false;
        if repair && frame.len() >= ETH_LEN && frame[..6] != frames::BROADCAST {
            frame[..6].copy_from_slice(&self.macs[port]);
        }
        if sealed {
            if let Some(msg) = frames::tunnel_message(frame) {
                authentic = frames::seal(msg, &self.sessions, repair);
            }
        }
        if repair && frame.len() > ETH_LEN && frame[12..14] == frames::IPV4.to_be_bytes() {
            frames::fix_ipv4(&mut frame[ETH_LEN..]);
        }
        self.input.clear();
        self.input.extend_from_slice(frame);
        let rx_before = self.link_rx();
        let mut f = Frame::new(&mut self.buf, len);
        let verdict = self.workers[lane].process(port, &mut f);
        if let Verdict::Tx(out) = verdict {
            check_sent(&self.macs, &mut self.sent, out, f.data());
        }
        self.drain();
        if !authentic && self.link_rx() != rx_before {
            // The fuzzer can learn a tag from the comparison (an attacker cannot): what
            // was received must at least be authentic.
            assert!(
                opens(&self.input, &self.sessions),
                "a datagram that does not authenticate was received on a link"
            );
        }
        assert!(self.shared.neighbors.load().len() <= DEFAULT_CAPACITY);
    }

    fn report(mut self) -> Report {
        // Let handed-over packets and timers run out.
        self.now += STEPS[4];
        self.new_batch();
        let ws = |f: fn(&WorkerStats) -> u64| self.workers.iter().map(|w| f(w.stats())).sum();
        let link_tx = self.link_sum(|l| l.tx_packets.get());
        let live: u64 = ws(|s| s.nat.sessions.get());
        assert!(
            live <= MAX_SESSIONS as u64,
            "{live} NAT sessions, more than the limit"
        );
        let report = Report {
            sent: self.sent.clone(),
            link_rx: self.link_rx(),
            link_tx,
            nat_created: ws(|s| s.nat.created.get()),
            local: ws(|s| s.local.get()),
            drops: DropReason::ALL
                .iter()
                .map(|d| (d.name(), ws_drop(&self.workers, *d)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        };
        // The pipelines go first: then nothing else holds the snapshot.
        drop(self.workers);
        if let Ok(shared) = Arc::try_unwrap(self.shared) {
            let paired = Paired {
                snap: shared.snapshot.into_inner(),
                sessions: self.sessions,
            };
            give_back(self.side == Side::Hub, self.variant, paired);
        }
        report
    }
}

/// Checks a frame braid sends out of `port`, and counts it in `sent`.
fn check_sent(macs: &[[u8; 6]], sent: &mut [u64], port: PortId, f: &[u8]) {
    let mac = macs.get(port).expect("a verdict names a port");
    sent[port] += 1;
    assert!(f.len() >= ETH_LEN, "a sent frame has an Ethernet header");
    assert_eq!(&f[6..12], mac, "sent with the port's own MAC");
    match u16::from_be_bytes([f[12], f[13]]) {
        frames::ARP => assert_eq!(f.len(), 42, "ARP frames braid sends"),
        frames::IPV4 => {
            let ip = &f[ETH_LEN..];
            assert!(ip.len() >= 20, "IPv4 frame shorter than a header");
            assert_eq!(ip[0] >> 4, 4, "IPv4 version");
            let hl = usize::from(ip[0] & 0xf) * 4;
            assert!(hl >= 20 && hl <= ip.len(), "IPv4 header length");
            assert_eq!(frames::checksum(&ip[..hl]), 0, "IPv4 header checksum");
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            assert_eq!(total, ip.len(), "IPv4 total length = frame length");
        }
        other => panic!("braid sent EtherType {other:#06x}"),
    }
}

/// True when the tunnel message of `frame` opens under one of `sessions`.
fn opens(frame: &[u8], sessions: &[Session]) -> bool {
    let mut f = frame.to_vec();
    let Some(msg) = frames::tunnel_message(&mut f) else {
        return false;
    };
    sessions
        .iter()
        .any(|s| s.recv.open(&mut msg.to_vec()).is_ok())
}

fn ws_drop(workers: &[Pipeline], why: DropReason) -> u64 {
    workers.iter().map(|w| w.stats().drops_of(why)).sum()
}

/// Splits the input into its records: (control, frame bytes).
pub fn records(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let [ctl, hi, lo, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (frame, next) = rest.split_at(len);
        out.push((*ctl, frame));
        data = next;
    }
    out
}

/// Encodes records (the inverse of [`records`]).
pub fn encode(variant: u8, records: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![variant];
    for (ctl, frame) in records {
        out.push(*ctl);
        out.extend_from_slice(&(frame.len() as u16).to_be_bytes());
        out.extend_from_slice(frame);
    }
    out
}

fn run(side: Side, data: &[u8]) -> Report {
    let Some((&variant, rest)) = data.split_first() else {
        return Report::default();
    };
    let mut bench = Bench::new(side, variant);
    for (ctl, frame) in records(rest) {
        bench.step(ctl, frame);
    }
    bench.report()
}
