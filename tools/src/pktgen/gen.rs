//! The generator of one worker: stamped frames on one port, paced by a token bucket, for a
//! bounded time and count. It runs on any [`Ports`]: AF_XDP in `braid-pktgen`, in memory in tests.

use super::clock::Clock;
use super::frame::{FrameFactory, FrameSpec};
use super::live::Live;
use super::rate::Rate;
use super::size::SizeMix;
use super::stamp::Stamp;
use braid_dataplane::io::{PortId, Ports, Verdict};
use serde::{Deserialize, Serialize};
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Frames queued per flush unless told otherwise.
pub const DEFAULT_BATCH: usize = 64;
/// Rounds between two emptyings of the generator's own receive ring.
const RX_DRAIN_EVERY: u32 = 64;
/// A paced generator sends a whole batch at once, or what it may after this long: frames leave
/// in bursts of up to a batch at most this far apart, and the generator sleeps in between
/// instead of making a system call for every frame or two.
const PACE_NS: u64 = 1_000_000;

/// One run of a generator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenParams {
    /// This worker's rate.
    pub rate: Rate,
    /// How long to send at most.
    pub duration: Duration,
    /// How many frames to send at most.
    pub count: Option<u64>,
}

/// What a generator sent of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSent {
    /// Stream id.
    pub stream: u16,
    /// Sequence of the run's first packet of the stream.
    pub start: u64,
    /// Packets of the stream sent in the run.
    pub sent: u64,
}

/// What a generator sent in one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenReport {
    /// Frames sent.
    pub packets: u64,
    /// Frame bytes sent, FCS included.
    pub bytes: u64,
    /// Time the run took, in nanoseconds (the longest worker's, once merged).
    pub elapsed_ns: u64,
    /// Times the transmit ring had no room and the generator had to wait.
    pub tx_busy: u64,
    /// Per stream.
    pub streams: Vec<StreamSent>,
}

impl GenReport {
    /// Adds another worker's report of the same run.
    pub fn merge(&mut self, o: &GenReport) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.elapsed_ns = self.elapsed_ns.max(o.elapsed_ns);
        self.tx_busy += o.tx_busy;
        self.streams.extend_from_slice(&o.streams);
    }

    /// Packets per second over the run.
    pub fn pps(&self) -> f64 {
        per_sec(self.packets, self.elapsed_ns)
    }

    /// Frame bits per second over the run.
    pub fn bps(&self) -> f64 {
        per_sec(self.bytes * 8, self.elapsed_ns)
    }
}

/// `n` per second over `ns` nanoseconds (0 over no time).
pub fn per_sec(n: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        n as f64 * 1e9 / ns as f64
    }
}

/// A generator: its frames, its flows and their next sequence numbers, kept across runs.
#[derive(Debug)]
pub struct Generator {
    factory: FrameFactory,
    /// Frame size of each template, by template index.
    sizes: Vec<usize>,
    /// Template index of each position of the size cycle.
    cycle: Vec<usize>,
    pos: usize,
    flows: Range<u32>,
    /// Index (from `flows.start`) of the next frame's flow.
    flow_pos: usize,
    /// Next sequence of each flow's stream.
    next_seq: Vec<u64>,
    stream_base: u16,
    port: PortId,
    batch: usize,
}

impl Generator {
    /// A generator of `mix` frames shaped by `spec` for flows `flows` (a part of
    /// `0..spec.flows`), whose stream ids are `stream_base + flow`, sending on `port` in batches
    /// of `batch`.
    pub fn new(
        spec: &FrameSpec,
        mix: SizeMix,
        flows: Range<u32>,
        stream_base: u16,
        port: PortId,
        batch: usize,
    ) -> Result<Generator, String> {
        if flows.is_empty() || flows.end > spec.flows {
            return Err(format!(
                "flows {flows:?}: not a part of 0..{} with at least one flow",
                spec.flows
            ));
        }
        let full = mix.cycle();
        let mut sizes: Vec<usize> = full.clone();
        sizes.sort_unstable();
        sizes.dedup();
        let cycle = full
            .iter()
            .map(|s| sizes.iter().position(|x| x == s).unwrap_or(0))
            .collect();
        let factory = FrameFactory::new(spec, &sizes)?;
        Ok(Generator {
            factory,
            sizes,
            cycle,
            pos: 0,
            next_seq: vec![0; flows.len()],
            flows,
            flow_pos: 0,
            stream_base,
            port,
            batch: batch.max(1),
        })
    }

    fn stream_of(&self, flow: u32) -> u16 {
        self.stream_base.wrapping_add(flow as u16)
    }

    /// What a batch of frames costs at `rate`, on average over the size cycle.
    fn batch_cost(&self, rate: &Rate) -> u64 {
        let cycle: u64 = self.cycle.iter().map(|&t| rate.cost(self.sizes[t])).sum();
        (cycle * self.batch as u64).div_ceil(self.cycle.len() as u64)
    }

    /// Each stream's id and the sequence its next packet will carry.
    pub fn next_seqs(&self) -> Vec<(u16, u64)> {
        self.flows
            .clone()
            .zip(&self.next_seq)
            .map(|(f, &s)| (self.stream_of(f), s))
            .collect()
    }

    /// Sends until `params` says stop (time or count) or `stop` is set, on `ports`, with time
    /// from `clock`; counts into `live` as it goes.
    pub fn run<P: Ports, C: Clock>(
        &mut self,
        ports: &mut P,
        clock: &C,
        params: &GenParams,
        stop: &AtomicBool,
        live: &Live,
    ) -> io::Result<GenReport> {
        let start = clock.now_ns();
        let end = start.saturating_add(params.duration.as_nanos() as u64);
        let largest = self.sizes.iter().copied().max().unwrap_or(0);
        let mut bucket = params.rate.bucket(largest, self.batch, start);
        let first = self.next_seq.clone();
        let count = params.count.unwrap_or(u64::MAX);
        let mut r = GenReport::default();
        let mut rounds = 0u32;
        let batch_cost = self.batch_cost(&params.rate);
        let mut last_send = start;
        while r.packets < count && !stop.load(Ordering::Relaxed) {
            let now = clock.now_ns();
            if now >= end {
                break;
            }
            if let Some(b) = bucket.as_mut() {
                let full = b.wait_at(now, batch_cost);
                let since = now - last_send;
                if full > 0 && since < PACE_NS {
                    clock.pause(full.min(PACE_NS - since).min(end - now));
                    continue;
                }
            }
            rounds = rounds.wrapping_add(1);
            if rounds.is_multiple_of(RX_DRAIN_EVERY) {
                ports.rx_batch(self.port, self.batch, &mut |_| Verdict::Drop)?;
            }
            let wall = clock.wall_ns();
            let (mut queued, mut bytes, mut blocked, mut wait) = (0u64, 0u64, false, 0u64);
            while queued < self.batch as u64 && r.packets + queued < count {
                let template = self.cycle[self.pos];
                let size = self.sizes[template];
                let cost = params.rate.cost(size);
                if let Some(b) = bucket.as_mut() {
                    if !b.try_take(now, cost) {
                        wait = b.wait_ns(cost);
                        break;
                    }
                }
                let flow = self.flows.start + self.flow_pos as u32;
                let stamp = Stamp {
                    stream: self.stream_of(flow),
                    seq: self.next_seq[self.flow_pos],
                    tx_ns: wall,
                };
                let frame = self.factory.frame(template, flow, &stamp);
                if !ports.tx_copy(self.port, frame) {
                    if let Some(b) = bucket.as_mut() {
                        b.give_back(cost);
                    }
                    r.tx_busy += 1;
                    blocked = true;
                    break;
                }
                self.next_seq[self.flow_pos] += 1;
                self.pos = (self.pos + 1) % self.cycle.len();
                self.flow_pos = (self.flow_pos + 1) % self.next_seq.len();
                queued += 1;
                bytes += size as u64;
            }
            if queued > 0 || blocked {
                ports.flush()?;
            }
            if queued > 0 {
                last_send = now;
                r.packets += queued;
                r.bytes += bytes;
                live.add_sent(queued, bytes);
            } else if !blocked && wait > 0 {
                clock.pause(wait.min(end - now));
            }
        }
        ports.flush()?;
        r.elapsed_ns = clock.now_ns().saturating_sub(start);
        r.streams = self
            .flows
            .clone()
            .enumerate()
            .map(|(i, f)| StreamSent {
                stream: self.stream_of(f),
                start: first[i],
                sent: self.next_seq[i] - first[i],
            })
            .collect();
        Ok(r)
    }
}

/// Splits `0..flows` into `workers` contiguous parts (the first ones one larger); None when
/// there are fewer flows than workers.
pub fn split_flows(flows: u32, workers: usize) -> Option<Vec<Range<u32>>> {
    let w = u32::try_from(workers).ok()?;
    if w == 0 || flows < w {
        return None;
    }
    let (each, extra) = (flows / w, flows % w);
    let mut start = 0;
    Some(
        (0..w)
            .map(|i| {
                let len = each + u32::from(i < extra);
                let r = start..start + len;
                start += len;
                r
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::clock::SimClock;
    use crate::pktgen::frame::Proto;
    use crate::pktgen::stamp::STAMP_LEN;
    use braid_dataplane::io::MemPorts;
    use std::net::Ipv4Addr;

    const SEC: u64 = 1_000_000_000;

    fn spec(flows: u32) -> FrameSpec {
        FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: Ipv4Addr::new(198, 18, 1, 2),
            dst_ip: Ipv4Addr::new(203, 0, 113, 130),
            src_port: 20_000,
            dst_port: 9,
            proto: Proto::Udp,
            flows,
            ttl: 64,
        }
    }

    /// The stamp of a frame the generator built (UDP: payload at 42).
    fn stamp(f: &[u8]) -> Stamp {
        Stamp::parse(&f[42..42 + STAMP_LEN]).expect("a stamped frame")
    }

    /// Runs a generator for `secs` simulated seconds at `rate`; returns its report and frames.
    fn simulate(mix: SizeMix, rate: Rate, secs: u64, flows: u32) -> (GenReport, Vec<Vec<u8>>) {
        let mut g = Generator::new(&spec(flows), mix, 0..flows, 0, 0, DEFAULT_BATCH).unwrap();
        let mut ports = MemPorts::new(1, 2048);
        // 10 s into the clock, 250 ns per reading: a busy loop's own cost.
        let clock = SimClock::new(10 * SEC, 250);
        let params = GenParams {
            rate,
            duration: Duration::from_secs(secs),
            count: None,
        };
        let live = Live::default();
        let r = g
            .run(&mut ports, &clock, &params, &AtomicBool::new(false), &live)
            .unwrap();
        assert_eq!(live.totals().sent, r.packets);
        (r, ports.take_tx(0))
    }

    #[test]
    fn ten_kpps_for_one_second_stays_within_five_percent() {
        let (r, frames) = simulate(SizeMix::Fixed(64), Rate::Pps(10_000.0), 1, 4);
        assert_eq!(frames.len() as u64, r.packets);
        let dev = (r.packets as f64 - 10_000.0).abs() / 10_000.0;
        assert!(dev < 0.05, "sent {} packets in 1 s at 10 kpps", r.packets);
        // Smooth, too: every 100 ms of the second carries its tenth, within 5%.
        let mut tenths = [0u64; 10];
        for f in &frames {
            let t = (stamp(f).tx_ns - 10 * SEC) / (SEC / 10);
            tenths[t as usize] += 1;
        }
        for (i, n) in tenths.iter().enumerate() {
            assert!(
                (*n as f64 - 1000.0).abs() <= 50.0,
                "100 ms slice {i}: {n} packets ({tenths:?})"
            );
        }
        assert!((r.pps() - 10_000.0).abs() / 10_000.0 < 0.05, "{}", r.pps());
    }

    #[test]
    fn paced_frames_leave_in_batches_at_most_a_millisecond_apart() {
        // 10 kpps: a batch of 64 takes 6.4 ms to earn, so every 1 ms the ten frames earned go.
        let (_, frames) = simulate(SizeMix::Fixed(64), Rate::Pps(10_000.0), 1, 1);
        let mut bursts = std::collections::BTreeMap::<u64, u64>::new();
        for f in &frames {
            *bursts.entry(stamp(f).tx_ns).or_default() += 1;
        }
        let times: Vec<u64> = bursts.keys().copied().collect();
        assert!(
            times.windows(2).all(|w| w[1] - w[0] <= PACE_NS + 1_000),
            "gaps over 1 ms"
        );
        assert!(
            bursts.values().all(|&n| (9..=11).contains(&n)),
            "{bursts:?}"
        );
        // 200 kpps: whole batches, 320 µs apart.
        let (r, frames) = simulate(SizeMix::Fixed(64), Rate::Pps(200_000.0), 1, 1);
        assert!(
            (r.packets as f64 - 200_000.0).abs() < 10_000.0,
            "{}",
            r.packets
        );
        let mut sizes = std::collections::BTreeMap::<u64, u64>::new();
        for f in &frames {
            *sizes.entry(stamp(f).tx_ns).or_default() += 1;
        }
        let full = sizes
            .values()
            .filter(|&&n| n == DEFAULT_BATCH as u64)
            .count();
        assert!(
            full * 10 >= sizes.len() * 9,
            "mostly whole batches: {full} of {}",
            sizes.len()
        );
    }

    #[test]
    fn bit_rate_with_imix_stays_within_five_percent_and_keeps_the_mix() {
        let (r, frames) = simulate(SizeMix::Imix, Rate::Bps(50e6), 1, 3);
        let bits = r.bytes * 8;
        assert!(
            (bits as f64 - 50e6).abs() / 50e6 < 0.05,
            "{bits} bits in 1 s at 50 Mbit/s"
        );
        // Frames are the sizes minus the FCS, 7:4:1 over every full cycle.
        let mut count = std::collections::BTreeMap::new();
        for f in &frames {
            *count.entry(f.len()).or_insert(0u64) += 1;
        }
        let cycles = frames.len() as u64 / 12;
        assert!(cycles > 1000);
        for (len, per_cycle) in [(60, 7), (566, 4), (1514, 1)] {
            let n = count[&len];
            assert!(
                n >= cycles * per_cycle && n <= (cycles + 1) * per_cycle,
                "{len}-byte frames: {n} in {cycles} cycles"
            );
        }
        assert_eq!(count.len(), 3);
    }

    #[test]
    fn count_bounds_a_run_and_sequences_continue_across_runs() {
        let flows = 3;
        let mut g = Generator::new(&spec(flows), SizeMix::Fixed(64), 0..3, 100, 0, 16).unwrap();
        let mut ports = MemPorts::new(1, 2048);
        let clock = SimClock::new(0, 100);
        let stop = AtomicBool::new(false);
        let live = Live::default();
        let params = GenParams {
            rate: Rate::Max,
            duration: Duration::from_secs(5),
            count: Some(1000),
        };
        let first = g.run(&mut ports, &clock, &params, &stop, &live).unwrap();
        assert_eq!(first.packets, 1000);
        assert_eq!(first.bytes, 64_000);
        let second = g.run(&mut ports, &clock, &params, &stop, &live).unwrap();
        assert_eq!(
            second.streams,
            [
                StreamSent {
                    stream: 100,
                    start: 334,
                    sent: 333
                },
                StreamSent {
                    stream: 101,
                    start: 333,
                    sent: 334
                },
                StreamSent {
                    stream: 102,
                    start: 333,
                    sent: 333
                },
            ]
        );
        assert_eq!(g.next_seqs(), [(100, 667), (101, 667), (102, 666)]);
        // On the wire: each stream's sequences in order, the flow in the source port.
        let frames = ports.take_tx(0);
        assert_eq!(frames.len(), 2000);
        let mut next = [0u64; 3];
        for f in &frames {
            let s = stamp(f);
            let flow = usize::from(s.stream - 100);
            assert_eq!(s.seq, next[flow]);
            next[flow] += 1;
            assert_eq!(u16::from_be_bytes([f[34], f[35]]), 20_000 + flow as u16);
        }
    }

    #[test]
    fn time_bounds_a_run_and_stop_ends_it() {
        let (r, _) = simulate(SizeMix::Fixed(64), Rate::Pps(1000.0), 2, 1);
        assert!((1990..=2010).contains(&r.packets), "{}", r.packets);
        let mut g = Generator::new(&spec(1), SizeMix::Fixed(64), 0..1, 0, 0, 8).unwrap();
        let mut ports = MemPorts::new(1, 2048);
        let params = GenParams {
            rate: Rate::Max,
            duration: Duration::from_secs(60),
            count: None,
        };
        let r = g
            .run(
                &mut ports,
                &SimClock::new(0, 1),
                &params,
                &AtomicBool::new(true),
                &Live::default(),
            )
            .unwrap();
        assert_eq!(r.packets, 0);
    }

    #[test]
    fn a_full_ring_holds_frames_back_without_losing_sequences() {
        // MemPorts takes 2048 frames per flush; a batch larger than that meets a full ring.
        let mut g = Generator::new(&spec(1), SizeMix::Fixed(64), 0..1, 0, 0, 3000).unwrap();
        let mut ports = MemPorts::new(1, 2048);
        let params = GenParams {
            rate: Rate::Max,
            duration: Duration::from_secs(1),
            count: Some(5000),
        };
        let r = g
            .run(
                &mut ports,
                &SimClock::new(0, 1),
                &params,
                &AtomicBool::new(false),
                &Live::default(),
            )
            .unwrap();
        assert_eq!(r.packets, 5000);
        assert!(r.tx_busy > 0);
        let seqs: Vec<u64> = ports.take_tx(0).iter().map(|f| stamp(f).seq).collect();
        assert_eq!(seqs, (0..5000).collect::<Vec<_>>());
    }

    #[test]
    fn flows_split_over_workers() {
        assert_eq!(split_flows(5, 2), Some(vec![0..3, 3..5]));
        assert_eq!(split_flows(2, 2), Some(vec![0..1, 1..2]));
        assert_eq!(split_flows(1, 2), None);
        assert_eq!(split_flows(1, 0), None);
        assert!(Generator::new(&spec(2), SizeMix::Fixed(64), 1..3, 0, 0, 8).is_err());
        assert!(Generator::new(&spec(2), SizeMix::Fixed(64), 1..1, 0, 0, 8).is_err());
    }
}
