//! Fixtures of braid's per-packet benchmarks (the criterion benches in `benches/`): an edge and a
//! hub pipeline shaped like the lab's, with their neighbours resolved, the frames they handle, and
//! a runner that pushes a batch through a pipeline as a worker does. The lab bench is `lab.sh`.

use braid_control::config::Config;
use braid_dataplane::frame::{Frame, HEADROOM};
use braid_dataplane::ids::Lane;
use braid_dataplane::io::xsk::FRAME_CAPACITY;
use braid_dataplane::io::{PortId, Verdict};
use braid_dataplane::pipeline::{Pipeline, Shared};
use braid_dataplane::snapshot::{Secrets, Snapshot};
use braid_dataplane::stats::WorkerStats;
use braid_dataplane::wire::{checksum, ethernet, ipv4, Mac};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Frames per batch, as a worker takes them from a port.
pub const BATCH: usize = braid_dataplane::worker::BATCH;
/// The time every batch runs at: neighbours learned then stay fresh.
pub const NOW: u64 = 1_000_000_000;

/// The edge's MACs: lan0, wan1, wan2.
pub const EDGE_MACS: [Mac; 3] = braid_testkit::EDGE_MACS;
/// The hub's wan0 MAC.
pub const HUB_MAC: Mac = braid_testkit::HUB_MAC;
const HOST_MAC: Mac = braid_testkit::HOST_MAC;
const GATEWAY_MAC: Mac = [2, 0, 0, 0, 0, 0x20];

/// The lab's edge: a LAN, two uplinks weighted 1:2, the LAN routed into the bond. The uplinks
/// have MTU 1600 (as in `lab.sh`), so full-size 1518-byte frames fit in the tunnel.
pub const EDGE: &str = braid_testkit::EDGE_MTU1600;

/// The lab's hub: one NIC (MTU 1600), the edge's LAN behind the bond, the rest to the internet.
pub const HUB: &str = braid_testkit::HUB_MTU1600;

fn addr(s: &str) -> Ipv4Addr {
    s.parse().expect("a fixture address")
}

/// A pipeline for `config` with `macs` and the lab's key of its role, its neighbours
/// `(port, address)` resolved at [`NOW`].
fn pipeline(
    config: &str,
    macs: &[Mac],
    neighbours: &[(PortId, &str)],
    private: [u8; 32],
) -> Pipeline {
    let cfg: Config = toml::from_str(config).expect("a fixture config");
    let secrets = Secrets {
        private,
        psks: vec![[0; 32]; cfg.peers.len()],
    };
    let snap = Snapshot::build(&cfg, macs, &secrets, 1).expect("a fixture snapshot");
    let shared = Arc::new(Shared::new(snap, 7));
    for &(port, ip) in neighbours {
        shared.neighbors.learn(port, addr(ip), GATEWAY_MAC, NOW);
    }
    Pipeline::new(shared, Lane(0), 7, Arc::new(WorkerStats::default()))
}

/// Runs `p`'s first batch and forgets what it had to send (the edge's initiation).
fn started(mut p: Pipeline) -> Pipeline {
    p.begin_batch(NOW);
    p.take_out().for_each(drop);
    p
}

/// The edge, its gateways and the LAN host resolved, with a session with `hub` (made in
/// memory, as a handshake at [`NOW`] would): the hub's cipher is the one this machine runs
/// fastest.
pub fn edge_with(hub: &Pipeline) -> Pipeline {
    let e = pipeline(
        EDGE,
        &EDGE_MACS,
        &[(0, "198.18.1.2"), (1, "198.18.11.1"), (2, "198.18.12.1")],
        braid_testkit::EDGE_PRIVATE,
    );
    e.shared()
        .pair_with(hub.shared(), NOW)
        .expect("the lab keys make a session");
    started(e)
}

/// The edge with a session with a hub that is not used further.
pub fn edge() -> Pipeline {
    edge_with(&hub())
}

/// The hub, its gateway resolved.
pub fn hub() -> Pipeline {
    started(pipeline(
        HUB,
        &[HUB_MAC],
        &[(0, "203.0.113.1")],
        braid_testkit::HUB_PRIVATE,
    ))
}

/// Outside addresses of the masquerade benches: 32 of them, room for 2 M UDP sessions.
pub fn nat_pool() -> Vec<Ipv4Addr> {
    (16..48).map(|i| Ipv4Addr::new(203, 0, 113, i)).collect()
}

/// The hub masquerading the LAN on wan0 to [`nat_pool`], with room for `sessions`
/// sessions from any one host (one worker: no handoff).
pub fn hub_masquerading(sessions: usize) -> Pipeline {
    let pool: Vec<String> = nat_pool().iter().map(|a| format!("\"{a}\"")).collect();
    let config = format!(
        "{HUB}\n[[masquerade]]\ninterface = \"wan0\"\naddresses = [{}]\nmax_sessions = {}\nmax_per_host = {}\n",
        pool.join(", "),
        sessions * 2,
        sessions * 2
    );
    started(pipeline(
        &config,
        &[HUB_MAC],
        &[(0, "203.0.113.1")],
        braid_testkit::HUB_PRIVATE,
    ))
}

/// A 64-byte UDP frame from inside endpoint number `i` (LAN hosts 198.18.1.2-251, 250
/// ports each from 1024 up) to the internet host; the UDP checksum is left 0.
pub fn flow_frame(i: u32) -> Vec<u8> {
    let mut f = lan_frame(60, i);
    f[29] = (2 + i % 250) as u8;
    f[34..36].copy_from_slice(&((1024 + i / 250) as u16).to_be_bytes());
    f[40..42].copy_from_slice(&[0, 0]);
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// A UDP frame of `len` bytes (no FCS; at least 46) from the LAN host to the internet host,
/// addressed to the edge's lan0, checksums valid, its payload starting with `n`.
pub fn lan_frame(len: usize, n: u32) -> Vec<u8> {
    let (src, dst) = (addr("198.18.1.2"), addr("203.0.113.130"));
    let mut f = vec![0u8; len.max(46)];
    ethernet::write(&mut f, EDGE_MACS[0], HOST_MAC, ethernet::ETHERTYPE_IPV4);
    let udp_len = (f.len() - 34) as u16;
    if let Some(h) = f[14..].first_chunk_mut() {
        ipv4::Repr {
            src,
            dst,
            protocol: ipv4::PROTO_UDP,
            ttl: 64,
            ident: 0,
            dont_fragment: true,
            payload_len: udp_len,
        }
        .emit(h);
    }
    let udp = &mut f[34..];
    udp[0..2].copy_from_slice(&((10_000 + n % 4) as u16).to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[8..12].copy_from_slice(&n.to_be_bytes());
    let c = checksum::finish(checksum::add(
        checksum::pseudo_header(src, dst, ipv4::PROTO_UDP, udp_len),
        udp,
    ));
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    f
}

/// Buffers the size of an AF_XDP chunk (the headroom, then the frame's room), one per frame
/// of a batch.
pub fn buffers() -> Vec<Vec<u8>> {
    vec![vec![0u8; HEADROOM + FRAME_CAPACITY]; BATCH]
}

/// What a worker does with one batch: `begin_batch`, then the frames of `frames` (copied into
/// `bufs`, as the NIC would have written them; at most [`BATCH`] of them) through
/// `process_batch` on `port`. Returns how many are to be transmitted.
pub fn run_batch(
    p: &mut Pipeline,
    port: PortId,
    frames: &[Vec<u8>],
    bufs: &mut [Vec<u8>],
) -> usize {
    let (lens, n) = receive(frames, bufs);
    process_received(p, port, bufs, &lens[..n])
}

/// Copies `frames` (at most [`BATCH`]) into `bufs` at [`HEADROOM`], as the NIC would have
/// written them; returns their lengths and how many there are (no allocation: `run_batch`
/// times this).
pub fn receive(frames: &[Vec<u8>], bufs: &mut [Vec<u8>]) -> ([usize; BATCH], usize) {
    let mut lens = [0; BATCH];
    let mut n = 0;
    for ((f, buf), len) in frames.iter().zip(bufs.iter_mut()).zip(lens.iter_mut()) {
        buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
        *len = f.len();
        n += 1;
    }
    (lens, n)
}

/// `begin_batch`, then the frames [`receive`] put in `bufs` (of lengths `lens`) through
/// `process_batch` on `port`. Returns how many are to be transmitted.
pub fn process_received(
    p: &mut Pipeline,
    port: PortId,
    bufs: &mut [Vec<u8>],
    lens: &[usize],
) -> usize {
    p.begin_batch(NOW);
    let n = lens.len().min(bufs.len()).min(BATCH);
    let mut received = lens.iter().zip(bufs.iter_mut());
    let mut views: [Frame<'_>; BATCH] = std::array::from_fn(|_| match received.next() {
        Some((&len, buf)) => Frame::at(buf, HEADROOM, len),
        None => Frame::new(&mut [], 0),
    });
    let mut verdicts = [Verdict::Drop; BATCH];
    p.process_batch(port, &mut views[..n], &mut verdicts[..n]);
    verdicts[..n]
        .iter()
        .filter(|v| matches!(v, Verdict::Tx(_)))
        .count()
}

/// Times `p`'s work on batches of `frames()` (made anew for each batch) without the copy into
/// `bufs` that stands for the NIC's: each batch is received untimed, then processed timed.
pub fn time_in_place(
    b: &mut criterion::Bencher<'_>,
    p: &mut Pipeline,
    mut frames: impl FnMut() -> Vec<Vec<u8>>,
    bufs: &mut [Vec<u8>],
) {
    b.iter_custom(|iters| {
        let mut total = std::time::Duration::ZERO;
        for _ in 0..iters {
            let (lens, n) = receive(&frames(), bufs);
            let start = std::time::Instant::now();
            std::hint::black_box(process_received(p, 0, bufs, &lens[..n]));
            total += start.elapsed();
        }
        total
    });
}

/// The edge's tunnel frames for `frames` (LAN frames), as the hub receives them: each one's
/// bytes after `process`, addressed to the hub.
pub fn tunnel_frames(edge: &mut Pipeline, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    edge.begin_batch(NOW);
    frames
        .iter()
        .map(|f| {
            let mut buf = vec![0u8; HEADROOM + FRAME_CAPACITY];
            buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
            let mut frame = Frame::at(&mut buf, HEADROOM, f.len());
            let _ = edge.process(0, &mut frame);
            let mut out = frame.data().to_vec();
            out[..6].copy_from_slice(&HUB_MAC);
            out
        })
        .collect()
}

/// Benches sealing and opening, in place, a batch of [`BATCH`] messages around the inner packet of
/// a 64, 512 and 1518-byte frame: `{prefix}seal/{size}B` and `{prefix}open/{size}B` in `g`.
/// `message(n, inner)` makes message `n`, unsealed; `seal` and `open` say whether they succeeded.
pub fn seal_and_open(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    prefix: &str,
    message: impl Fn(u64, usize) -> Vec<u8>,
    seal: impl Fn(&mut [u8]) -> bool,
    open: impl Fn(&mut [u8]) -> bool,
) {
    for size in [64, 512, 1518] {
        // The inner IPv4 packet: the frame without Ethernet header and FCS.
        let inner = size - 18;
        let mut msgs: Vec<Vec<u8>> = (0..BATCH as u64).map(|n| message(n, inner)).collect();
        g.bench_function(format!("{prefix}seal/{size}B"), |b| {
            b.iter(|| msgs.iter_mut().map(|m| seal(m)).filter(|&ok| ok).count())
        });
        let sealed: Vec<Vec<u8>> = (0..BATCH as u64)
            .map(|n| {
                let mut m = message(n, inner);
                assert!(seal(&mut m), "seal");
                m
            })
            .collect();
        g.bench_function(format!("{prefix}open/{size}B"), |b| {
            b.iter_batched(
                || sealed.clone(),
                |mut ms| ms.iter_mut().map(|m| open(m)).filter(|&ok| ok).count(),
                criterion::BatchSize::SmallInput,
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_through_the_edge_and_then_the_hub() {
        let mut h = hub();
        let mut e = edge_with(&h);
        let lan: Vec<Vec<u8>> = (0..BATCH as u32).map(|n| lan_frame(64, n)).collect();
        let mut bufs = buffers();
        assert_eq!(run_batch(&mut e, 0, &lan, &mut bufs), BATCH);
        let wire = tunnel_frames(&mut e, &lan);
        // The bond sequence and the 50-byte packet, padded to 64 (docs/PROTOCOL.md, "Padding").
        assert!(wire.iter().all(|f| f.len() == 14 + 20 + 8 + 16 + 64 + 16));
        // A full-size frame fits in the tunnel: sequence and packet fill 94 blocks.
        let big = [lan_frame(1514, 0)];
        assert_eq!(
            tunnel_frames(&mut e, &big)[0].len(),
            14 + 20 + 8 + 16 + 4 + 1500 + 16
        );
        assert_eq!(run_batch(&mut h, 0, &wire, &mut bufs), BATCH);
        // The hub hands the inner frame on: same payload, TTL down by two. Decapsulation
        // advanced the frame's start past the outer IPv4, UDP and braid headers and the bond
        // sequence.
        let at = HEADROOM + 20 + 8 + 16 + 4;
        let out = &bufs[5][at..at + 64];
        assert_eq!(&out[34..], &lan[5][34..]);
        assert_eq!(out[22], 62);
        // Replayed: the same sealed frames are refused the second time.
        assert_eq!(run_batch(&mut h, 0, &wire, &mut bufs), 0);
        assert_eq!(h.stats().forwarded.get(), BATCH as u64);
    }
}
