//! The worker loop: run to completion over the ports of one queue — receive a
//! batch on every port, run it through the pipeline (`Pipeline::process_batch`:
//! each frame to its verdict, those that meet the NAT parked until the batch's
//! lookups have been loaded), transmit, repeat.
//! An idle worker sleeps in `poll()` until a frame arrives, another thread
//! writes its wake-up, or the pipeline's next deadline: on small router boxes an
//! idle core should cost nothing.
//!
//! Between those, light traffic (a few frames since the last sleep): a wake-up from
//! `poll()` per frame costs about as much as spinning did (on a VM with copy-mode
//! AF_XDP, tens of microseconds of CPU each), so the worker naps a fixed short time
//! (`nap_us`, docs/CONFIG.md) and takes what gathered meanwhile in one round: fewer
//! wake-ups than frames, for at most the nap's delay per hop. A nap that finds nothing
//! is followed by a `poll()` sleep; busy traffic spins as before.

mod mailbox;

pub use mailbox::Mailboxes;

use crate::io::wake::WakeFd;
use crate::io::Ports;
use crate::pipeline::Pipeline;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most frames taken from one port per round, handed to the pipeline together.
pub const BATCH: usize = crate::io::RX_BURST;
/// Empty rounds before a worker sleeps while traffic flows.
const SPIN_ROUNDS: u32 = 128;
/// Empty rounds before a worker sleeps when it woke for a few frames only (link
/// probes, ARP): spinning pays off for a stream, not for a frame every few ms.
const SHORT_SPIN_ROUNDS: u32 = 8;
/// Frames since the last sleep from which a worker counts as busy.
const BUSY_FRAMES: usize = 32;
/// Longest sleep: the stop flag is looked at least this often.
const MAX_SLEEP: Duration = Duration::from_millis(250);
/// How often the ports' I/O counters are published to the worker's stats while busy.
const PUBLISH_NS: u64 = 10_000_000;

/// One round at time `now` (monotonic ns): the worker's mailbox and a batch from
/// every port through the pipeline, then transmit. Returns the number of frames
/// and messages handled.
pub fn poll_once<P: Ports>(
    ports: &mut P,
    pipeline: &mut Pipeline,
    mail: &Mailboxes,
    now: u64,
) -> io::Result<usize> {
    pipeline.begin_batch(now);
    let mut handled = mail.serve(pipeline);
    for port in 0..ports.len() {
        handled += ports.rx_burst(port, BATCH, &mut |frames, verdicts| {
            pipeline.process_batch(port, frames, verdicts);
        })?;
    }
    mail.post(pipeline);
    pipeline.send_out(|port, frame| ports.tx_copy(port, frame));
    ports.flush()?;
    Ok(handled)
}

/// A worker's clock and how it naps.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Time is measured from here.
    pub epoch: Instant,
    /// The nap between rounds while traffic is light (zero: none).
    pub nap: Duration,
}

/// Runs rounds until `stop` is set. `wake` is the receiving end of this worker's
/// wake-ups (see [`Mailboxes::new`]).
pub fn run<P: Ports>(
    ports: &mut P,
    pipeline: &mut Pipeline,
    mail: &Mailboxes,
    wake: Option<WakeFd>,
    stop: &AtomicBool,
    Timing { epoch, nap }: Timing,
) -> io::Result<()> {
    if let Some(fd) = wake {
        ports.set_wake_fd(fd);
    }
    let mut idle = 0u32;
    let mut since_sleep = 0usize;
    let mut next_publish = 0;
    while !stop.load(Ordering::Relaxed) {
        let now = epoch.elapsed().as_nanos() as u64;
        if now >= next_publish {
            next_publish = now + PUBLISH_NS;
            publish(ports, pipeline);
        }
        let handled = poll_once(ports, pipeline, mail, now)?;
        if handled > 0 {
            idle = 0;
            since_sleep = since_sleep.saturating_add(handled);
            continue;
        }
        idle = idle.saturating_add(1);
        let spin = if since_sleep >= BUSY_FRAMES {
            SPIN_ROUNDS
        } else {
            SHORT_SPIN_ROUNDS
        };
        if idle > spin {
            publish(ports, pipeline);
            let timeout = pipeline.next_deadline().map_or(MAX_SLEEP, |d| {
                Duration::from_nanos(d.saturating_sub(now)).min(MAX_SLEEP)
            });
            if timeout.is_zero() {
                continue;
            }
            if since_sleep > 0 && since_sleep < BUSY_FRAMES && !nap.is_zero() {
                std::thread::sleep(timeout.min(nap));
            } else {
                sleep(ports, pipeline, mail, timeout)?;
            }
            since_sleep = 0;
        }
    }
    Ok(())
}

/// Publishes the ports' I/O counters to the worker's stats.
fn publish<P: Ports>(ports: &P, pipeline: &Pipeline) {
    for port in 0..ports.len() {
        pipeline.stats().publish_port(port, ports.counters(port));
    }
}

/// Sleeps until a port has frames, another thread wakes this worker, or
/// `timeout` passes. The sleep is announced before the last look at the
/// mailbox, so a hand-over either is seen here or wakes the poll.
fn sleep<P: Ports>(
    ports: &mut P,
    pipeline: &Pipeline,
    mail: &Mailboxes,
    timeout: Duration,
) -> io::Result<()> {
    let lane = pipeline.lane();
    let Some(waker) = mail.waker(lane) else {
        return ports.wait(timeout);
    };
    waker.going_to_sleep();
    let result = if mail.has_mail(lane) {
        Ok(())
    } else {
        ports.wait(timeout)
    };
    waker.awake();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Lane;
    use crate::io::{xsk::FRAME_CAPACITY, MemPorts};
    use crate::pipeline::Shared;
    use crate::snapshot::{Secrets, Snapshot};
    use crate::stats::WorkerStats;
    use crate::wire::{checksum, ethernet, ipv4};
    use std::sync::Arc;

    const EDGE: &str = include_str!("../../tests/data/edge.toml");
    const HUB: &str = include_str!("../../tests/data/hub.toml");
    const MS: u64 = 1_000_000;

    fn pipeline(text: &str, macs: &[[u8; 6]]) -> Pipeline {
        let cfg: braid_control::config::Config = toml::from_str(text).unwrap();
        let snap = Snapshot::build(&cfg, macs, &Secrets::of_lab(&cfg), 1).unwrap();
        Pipeline::new(
            Arc::new(Shared::new(snap, 7)),
            Lane(0),
            7,
            Arc::new(WorkerStats::default()),
        )
    }

    /// A UDP datagram from the LAN host to the internet host, checksums valid.
    fn lan_datagram(dst_mac: [u8; 6], n: u32) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 28 + 4];
        ethernet::write(
            &mut f,
            dst_mac,
            [2, 0, 0, 0, 0, 0x10],
            ethernet::ETHERTYPE_IPV4,
        );
        ipv4::Repr {
            src: "198.18.1.2".parse().unwrap(),
            dst: "203.0.113.130".parse().unwrap(),
            protocol: ipv4::PROTO_UDP,
            ttl: 64,
            ident: 1,
            dont_fragment: true,
            payload_len: 12,
        }
        .emit((&mut f[14..34]).try_into().unwrap());
        f[34..36].copy_from_slice(&4000u16.to_be_bytes());
        f[36..38].copy_from_slice(&9u16.to_be_bytes());
        f[38..40].copy_from_slice(&12u16.to_be_bytes());
        f[42..].copy_from_slice(&n.to_be_bytes());
        f
    }

    /// Answers every ARP request in `frames` as neighbour `mac` would, by
    /// injecting the reply into `port` of `ports`.
    fn answer_arp(
        frames: &[Vec<u8>],
        ports: &mut MemPorts,
        port: usize,
        mac: [u8; 6],
    ) -> Vec<Vec<u8>> {
        let mut rest = Vec::new();
        for f in frames {
            match crate::wire::arp::Arp::parse(f.get(14..).unwrap_or(&[])) {
                Ok(a) if u16::from_be_bytes([f[12], f[13]]) == ethernet::ETHERTYPE_ARP => {
                    let mut r = vec![0u8; 42];
                    ethernet::write(&mut r, a.sender_mac, mac, ethernet::ETHERTYPE_ARP);
                    crate::wire::arp::Arp {
                        op: crate::wire::arp::OP_REPLY,
                        sender_mac: mac,
                        sender_ip: a.target_ip,
                        target_mac: a.sender_mac,
                        target_ip: a.sender_ip,
                    }
                    .emit((&mut r[14..42]).try_into().unwrap());
                    assert!(ports.inject(port, &r));
                }
                _ => rest.push(f.clone()),
            }
        }
        rest
    }

    #[test]
    fn edge_and_hub_workers_carry_traffic_over_in_memory_ports() {
        let (lan_mac, w1, w2, hub_mac, gw) = (
            [2, 0, 0, 0, 1, 0],
            [2, 0, 0, 0, 1, 1],
            [2, 0, 0, 0, 1, 2],
            [2, 0, 0, 0, 2, 0],
            [2, 0, 0, 0, 9, 9],
        );
        let mut edge = pipeline(EDGE, &[lan_mac, w1, w2]);
        let mut hub = pipeline(HUB, &[hub_mac]);
        // Frames go one way only here: the session is made in memory.
        edge.shared().pair_with(hub.shared(), 0).unwrap();
        let mut ep = MemPorts::new(3, FRAME_CAPACITY);
        let mut hp = MemPorts::new(1, FRAME_CAPACITY);
        let mut delivered = Vec::new();
        let (edge_mail, _) = Mailboxes::new(1).unwrap();
        let (hub_mail, _) = Mailboxes::new(1).unwrap();
        // The first datagram waits for ARP on both sides; the rest find MACs known.
        assert!(ep.inject(0, &lan_datagram(lan_mac, 0)));
        for round in 0..50u64 {
            if round == 10 {
                for n in 1..300u32 {
                    assert!(ep.inject(0, &lan_datagram(lan_mac, n)));
                }
            }
            let now = round * MS;
            poll_once(&mut ep, &mut edge, &edge_mail, now).unwrap();
            // The "internet" between them: gateways answer ARP, frames cross with
            // their destination MAC rewritten, as the lab's router does.
            for port in 1..3 {
                let out = ep.take_tx(port);
                for mut f in answer_arp(&out, &mut ep, port, gw) {
                    f[..6].copy_from_slice(&hub_mac);
                    assert!(hp.inject(0, &f));
                }
            }
            poll_once(&mut hp, &mut hub, &hub_mail, now).unwrap();
            let out = hp.take_tx(0);
            delivered.extend(answer_arp(&out, &mut hp, 0, gw));
        }
        assert_eq!(
            delivered.len(),
            300,
            "every datagram reached the internet side"
        );
        let mut seen: Vec<u32> = delivered
            .iter()
            .map(|f| u32::from_be_bytes([f[42], f[43], f[44], f[45]]))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..300).collect::<Vec<_>>());
        for f in &delivered {
            assert_eq!(&f[..6], &gw);
            let ip = ipv4::Ipv4::parse(&f[14..]).unwrap();
            assert!(ip.checksum_ok());
            assert_eq!(ip.ttl(), 62);
            assert_eq!(checksum::checksum(&f[14..34]), 0);
        }
        let s = edge.stats();
        assert_eq!(s.links[0].tx_packets.get(), 100);
        assert_eq!(s.links[1].tx_packets.get(), 200);
    }
}
