//! Pipelines and packets shared by the `hostile_*` tests: the lab edge and hub (the
//! pipeline tests' configs), built in memory, and real datagrams from the edge.

// Each test binary uses part of these helpers.
#![allow(dead_code)]

use braid_control::config::Config;
use braid_control::key::PublicKey;
use braid_dataplane::frame::Frame;
use braid_dataplane::ids::Lane;
use braid_dataplane::io::xsk::FRAME_CAPACITY;
use braid_dataplane::io::Verdict;
use braid_dataplane::pipeline::{Pipeline, Shared};
use braid_dataplane::session::Live;
use braid_dataplane::snapshot::{Secrets, Snapshot};
use braid_dataplane::stats::{DropReason, WorkerStats};
use braid_dataplane::tunnel::handshake::StaticKeys;
use braid_dataplane::tunnel::{split_data, Header, SessionKey, HEADER_LEN, SEQ_LEN, TAG_LEN};
use braid_dataplane::wire::{arp, checksum, ethernet, ipv4};
use braid_dataplane::worker::Mailboxes;
use std::net::Ipv4Addr;
use std::sync::Arc;

pub use braid_testkit::{
    EDGE, EDGE_MACS, EDGE_PRIVATE, GW1_MAC, GW2_MAC, HOST_MAC, HUB, HUB_GW_MAC, HUB_MAC,
    HUB_PRIVATE,
};
/// The second edge's private key (its public key is in [`edge2`]).
pub const EDGE2_PRIVATE: [u8; 32] = [3; 32];
pub const S: u64 = 1_000_000_000;
/// Offset of the braid message in a tunnel frame (Ethernet, IPv4, UDP).
pub const MSG: usize = 14 + 20 + 8;

pub fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Workers of one daemon and the state they share.
pub struct Daemon {
    pub workers: Vec<Pipeline>,
    pub shared: Arc<Shared>,
    pub mail: Mailboxes,
    /// The time of the latest batch.
    pub now: u64,
}

impl Daemon {
    /// A daemon running config `text` (validated only by deserialising, as the pipeline
    /// tests do) with these MACs and static private key, no pre-shared keys; its clock
    /// starts at `S`.
    pub fn new(text: &str, macs: &[[u8; 6]], private: [u8; 32]) -> Daemon {
        let cfg: Config = toml::from_str(text).unwrap();
        let secrets = Secrets {
            private,
            psks: vec![[0; 32]; cfg.peers.len()],
        };
        let snap = Snapshot::build(&cfg, macs, &secrets, 1).unwrap();
        let shared = Arc::new(Shared::new(snap, 7));
        let workers = (0..cfg.workers.max(1))
            .map(|lane| {
                let mut p = Pipeline::new(
                    Arc::clone(&shared),
                    Lane(lane as u8),
                    7,
                    Arc::new(WorkerStats::default()),
                );
                p.begin_batch(S);
                let _ = p.take_out().count();
                p
            })
            .collect();
        let mail = Mailboxes::new(cfg.workers).unwrap().0;
        Daemon {
            workers,
            shared,
            mail,
            now: S,
        }
    }

    /// Posts every worker's handoffs, then runs a batch of worker `lane` at `now`,
    /// its mailbox included, as the worker loop does.
    pub fn batch(&mut self, lane: usize, now: u64) {
        for w in &mut self.workers {
            self.mail.post(w);
        }
        self.now = self.now.max(now);
        let w = &mut self.workers[lane];
        w.begin_batch(now);
        self.mail.serve(w);
    }

    /// Worker 0.
    pub fn p(&mut self) -> &mut Pipeline {
        &mut self.workers[0]
    }

    /// Starts a batch on every worker at the latest time, so they see new sessions and
    /// neighbours; forgets what they had to send.
    pub fn sync(&mut self) {
        for w in &mut self.workers {
            w.begin_batch(self.now);
            let _ = w.take_out().count();
        }
    }

    /// Learns a neighbour and starts a batch on every worker so they see it.
    pub fn learn(&mut self, port: usize, ip: &str, mac: [u8; 6]) {
        self.shared.neighbors.learn(port, addr(ip), mac, S);
        self.sync();
    }

    /// Drops counted for `why` by all workers.
    pub fn drops(&self, why: DropReason) -> u64 {
        self.workers.iter().map(|w| w.stats().drops_of(why)).sum()
    }

    /// The session this daemon sends to its first peer with.
    pub fn session(&self) -> Arc<Live> {
        self.shared.snapshot.load().peers[0]
            .keys
            .sending()
            .expect("a session")
    }
}

/// The lab edge (config edited by `edit`) with static key `private`, its gateways and the
/// LAN host known, and a session with `hub` made by a handshake in memory at `S`.
pub fn edge_with(hub: &mut Daemon, edit: impl Fn(String) -> String, private: [u8; 32]) -> Daemon {
    let mut d = Daemon::new(&edit(EDGE.to_string()), &EDGE_MACS, private);
    d.learn(1, "198.18.11.1", GW1_MAC);
    d.learn(2, "198.18.12.1", GW2_MAC);
    d.learn(0, "198.18.1.2", HOST_MAC);
    d.shared.pair_with(&hub.shared, S).expect("handshake");
    d.sync();
    hub.sync();
    d
}

/// The lab edge with a session with `hub`.
pub fn edge(hub: &mut Daemon) -> Daemon {
    edge_with(hub, |t| t, EDGE_PRIVATE)
}

/// The lab hub plus `extra` config, its gateway known; a second edge (key
/// [`EDGE2_PRIVATE`], 198.18.2.0/24, one link) is added by [`edge2`]'s config.
pub fn hub_with(head: &str, extra: &str) -> Daemon {
    let text = format!("{head}{HUB}\n{extra}");
    let mut d = Daemon::new(&text, &[HUB_MAC], HUB_PRIVATE);
    d.learn(0, "203.0.113.1", HUB_GW_MAC);
    d
}

/// A second edge on the hub (its `[[peer]]`, named by the public key of
/// [`EDGE2_PRIVATE`], and its route).
pub fn edge2() -> String {
    let public = PublicKey::from_bytes(StaticKeys::from_private(EDGE2_PRIVATE).public());
    format!(
        r#"
[[peer]]
name = "edge2"
public_key = "{public}"
allowed = ["198.18.2.0/24"]
[[peer.link]]
name = "dsl"
interface = "wan0"
gateway = "203.0.113.1"
remote = "198.18.21.2:7420"
weight = 1
[[route]]
to = "198.18.2.0/24"
peer = "edge2"
"#
    )
}

/// The datagram `good` (a tunnel frame holding data) with its message opened under `open`,
/// its header and bond sequence changed by `edit`, and sealed again under `seal`: what only a
/// holder of `seal` can make.
pub fn forge(
    good: &[u8],
    open: &SessionKey,
    seal: &SessionKey,
    edit: impl FnOnce(&mut Header, &mut u32),
) -> Vec<u8> {
    let mut d = good.to_vec();
    let msg = &mut d[MSG..];
    open.open(msg).expect("an authentic message");
    let mut h = Header::parse(msg).unwrap();
    let mut seq = split_data(&msg[HEADER_LEN..]).unwrap().0;
    edit(&mut h, &mut seq);
    h.emit((&mut msg[..HEADER_LEN]).try_into().unwrap());
    msg[HEADER_LEN..HEADER_LEN + SEQ_LEN].copy_from_slice(&seq.to_be_bytes());
    assert!(msg.len() >= HEADER_LEN + TAG_LEN);
    seal.seal(msg).unwrap();
    d
}

/// A UDP packet from `src`:`sport` to the internet host's port 9, in an Ethernet frame
/// to `dst_mac`; checksums valid.
pub fn udp_frame(dst_mac: [u8; 6], src: &str, dst: &str, sport: u16, n: u32) -> Vec<u8> {
    let (src, dst) = (addr(src), addr(dst));
    let mut f = vec![0u8; 14 + 28 + 4];
    ethernet::write(&mut f, dst_mac, HOST_MAC, ethernet::ETHERTYPE_IPV4);
    ipv4::Repr {
        src,
        dst,
        protocol: ipv4::PROTO_UDP,
        ttl: 64,
        ident: 1,
        dont_fragment: true,
        payload_len: 12,
    }
    .emit((&mut f[14..34]).try_into().unwrap());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&12u16.to_be_bytes());
    f[42..46].copy_from_slice(&n.to_be_bytes());
    let c = checksum::finish(checksum::add(
        checksum::pseudo_header(src, dst, 17, 12),
        &f[34..],
    ));
    f[40..42].copy_from_slice(&c.to_be_bytes());
    f
}

/// A LAN host's UDP packet to the internet host, as the edge receives it.
pub fn lan_frame(src: &str, n: u32) -> Vec<u8> {
    udp_frame(EDGE_MACS[0], src, "203.0.113.130", 5000 + n as u16, n)
}

/// An ARP request for `target` from `sender` (`mac`), broadcast.
pub fn arp_request(mac: [u8; 6], sender: Ipv4Addr, target: &str) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    ethernet::write(&mut f, [0xff; 6], mac, ethernet::ETHERTYPE_ARP);
    arp::Arp {
        op: arp::OP_REQUEST,
        sender_mac: mac,
        sender_ip: sender,
        target_mac: [0; 6],
        target_ip: addr(target),
    }
    .emit((&mut f[14..42]).try_into().unwrap());
    f
}

/// Runs `frame` through `p` on `port` in a UMEM-sized buffer.
pub fn run(p: &mut Pipeline, port: usize, frame: &[u8]) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0u8; FRAME_CAPACITY];
    buf[..frame.len()].copy_from_slice(frame);
    let mut f = Frame::new(&mut buf, frame.len());
    let v = p.process(port, &mut f);
    (v, f.data().to_vec())
}

/// The datagram `edge` (worker 0) makes of LAN packet number `n` from `src`, addressed to
/// the hub.
pub fn datagram(edge: &mut Daemon, src: &str, n: u32) -> Vec<u8> {
    let (v, mut wire) = run(edge.p(), 0, &lan_frame(src, n));
    assert!(matches!(v, Verdict::Tx(1 | 2)), "the edge sealed it: {v:?}");
    wire[..6].copy_from_slice(&HUB_MAC);
    wire
}
