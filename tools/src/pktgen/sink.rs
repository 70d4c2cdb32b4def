//! The sink of one worker: recognises generated frames by their stamp and accounts for them per
//! stream (sequence) and in one latency histogram. Anything else received is counted as foreign.

use super::clock::Clock;
use super::latency::{Latency, LatencySummary};
use super::live::Live;
use super::seq::{Arrival, SeqCounts, SeqTracker};
use super::size::FCS_LEN;
use super::stamp::Stamp;
use braid_dataplane::io::{PortId, Ports, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;

const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// The stamp of a generated frame: Ethernet, IPv4 (not a later fragment), then UDP or TCP whose
/// payload starts with a [`Stamp`] (or UDP with the kernel pktgen's header). None for anything
/// else, however malformed.
pub fn frame_stamp(frame: &[u8]) -> Option<Stamp> {
    let ethertype = frame.get(12..14)?;
    if u16::from_be_bytes([ethertype[0], ethertype[1]]) != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(14..)?;
    let (&vihl, _) = ip.split_first()?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    if frag & 0x1fff != 0 {
        return None;
    }
    let l4 = ip.get(ihl..total)?;
    match *ip.get(9)? {
        PROTO_UDP => {
            let payload = l4.get(8..)?;
            Stamp::parse(payload)
                .or_else(|| Stamp::parse_kernel_pktgen(payload, u16::from_be_bytes([l4[0], l4[1]])))
        }
        PROTO_TCP => Stamp::parse(l4.get(usize::from(*l4.get(12)? >> 4) * 4..)?),
        _ => None,
    }
}

/// Frames the kernel dropped before they reached a sink's socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelDrops {
    /// The socket's receive ring was full.
    pub rx_ring_full: u64,
    /// The fill ring was found empty (no buffer for a frame).
    pub fill_ring_empty: u64,
    /// Dropped in all (the kernel's `rx_dropped`: an empty fill ring counts here too).
    pub rx_dropped: u64,
}

impl KernelDrops {
    /// What was counted since `base`.
    pub fn since(&self, base: &KernelDrops) -> KernelDrops {
        KernelDrops {
            rx_ring_full: self.rx_ring_full.saturating_sub(base.rx_ring_full),
            fill_ring_empty: self.fill_ring_empty.saturating_sub(base.fill_ring_empty),
            rx_dropped: self.rx_dropped.saturating_sub(base.rx_dropped),
        }
    }

    /// Adds another socket's counts.
    pub fn merge(&mut self, o: &KernelDrops) {
        self.rx_ring_full += o.rx_ring_full;
        self.fill_ring_empty += o.fill_ring_empty;
        self.rx_dropped += o.rx_dropped;
    }
}

/// The sink state of one worker.
#[derive(Debug)]
pub struct SinkState {
    /// Tracker of each stream seen, by stream id.
    streams: Vec<Option<Box<SeqTracker>>>,
    /// First sequence of each stream, as announced by [`SinkState::begin`] (0 otherwise).
    starts: BTreeMap<u16, u64>,
    latency: Latency,
    packets: u64,
    bytes: u64,
    foreign: u64,
    /// The socket's kernel counters as last noted, and as they were at `begin`.
    kernel: KernelDrops,
    kernel_base: KernelDrops,
}

impl SinkState {
    /// A sink that expects every stream to start at sequence 0.
    pub fn new() -> SinkState {
        SinkState {
            streams: (0..=u16::MAX).map(|_| None).collect(),
            starts: BTreeMap::new(),
            latency: Latency::new(),
            packets: 0,
            bytes: 0,
            foreign: 0,
            kernel: KernelDrops::default(),
            kernel_base: KernelDrops::default(),
        }
    }

    /// Notes the socket's kernel drop counters (totals since it was opened).
    pub fn note_kernel(&mut self, k: KernelDrops) {
        self.kernel = k;
    }

    /// Forgets everything counted and expects the given streams to start at the given sequences
    /// (a new trial; older packets then count as stale).
    pub fn begin(&mut self, starts: &[(u16, u64)]) {
        self.streams.iter_mut().for_each(|s| *s = None);
        self.starts = starts.iter().copied().collect();
        self.latency.clear();
        self.packets = 0;
        self.bytes = 0;
        self.foreign = 0;
        self.kernel_base = self.kernel;
    }

    /// Accounts for one received frame (its bytes without FCS) received at `rx_ns` on the
    /// real-time clock; true if it counts: a generated frame of this trial (not a stale one).
    pub fn handle(&mut self, frame: &[u8], rx_ns: u64) -> bool {
        let Some(s) = frame_stamp(frame) else {
            self.foreign += 1;
            return false;
        };
        let start = self.starts.get(&s.stream).copied().unwrap_or(0);
        let t = self.streams[usize::from(s.stream)]
            .get_or_insert_with(|| Box::new(SeqTracker::new(start)));
        if t.record(s.seq) == Arrival::Stale {
            return false;
        }
        self.latency.record(s.tx_ns, rx_ns);
        self.packets += 1;
        self.bytes += (frame.len() + FCS_LEN) as u64;
        true
    }

    /// What this worker counted, in a form that merges with other workers'.
    pub fn tally(&self) -> SinkTally {
        let mut streams: BTreeMap<u16, (u64, SeqCounts)> = self
            .starts
            .iter()
            .map(|(&id, &start)| {
                (
                    id,
                    (
                        start,
                        SeqCounts {
                            next: start,
                            ..SeqCounts::default()
                        },
                    ),
                )
            })
            .collect();
        for (id, t) in self.streams.iter().enumerate() {
            if let Some(t) = t {
                streams.insert(id as u16, (t.start(), t.counts()));
            }
        }
        SinkTally {
            streams,
            latency: self.latency.clone(),
            packets: self.packets,
            bytes: self.bytes,
            foreign: self.foreign,
            kernel: self.kernel.since(&self.kernel_base),
        }
    }
}

impl Default for SinkState {
    fn default() -> Self {
        SinkState::new()
    }
}

/// Counts of one or more sink workers, mergeable.
#[derive(Debug, Clone, Default)]
pub struct SinkTally {
    /// Start and counters of each stream.
    pub streams: BTreeMap<u16, (u64, SeqCounts)>,
    /// Latencies.
    pub latency: Latency,
    /// Generated frames of this trial received (stale ones not included).
    pub packets: u64,
    /// Their bytes, FCS included.
    pub bytes: u64,
    /// Other frames received.
    pub foreign: u64,
    /// Frames the kernel dropped before the sockets.
    pub kernel: KernelDrops,
}

impl SinkTally {
    /// Adds another worker's counts (per stream: exact when each stream stays on one worker,
    /// as RSS keeps a flow on one queue).
    pub fn merge(&mut self, o: &SinkTally) {
        for (id, (start, c)) in &o.streams {
            self.streams
                .entry(*id)
                .and_modify(|(s, mine)| {
                    *s = (*s).min(*start);
                    mine.merge(c)
                })
                .or_insert((*start, *c));
        }
        self.latency.merge(&o.latency);
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.foreign += o.foreign;
        self.kernel.merge(&o.kernel);
    }

    /// The report of what was received.
    pub fn report(&self) -> SinkReport {
        SinkReport {
            packets: self.packets,
            bytes: self.bytes,
            foreign: self.foreign,
            kernel: self.kernel,
            streams: self
                .streams
                .iter()
                .map(|(&stream, &(start, counts))| StreamReport {
                    stream,
                    start,
                    counts,
                })
                .collect(),
            latency: self.latency.summary(),
        }
    }
}

/// What a sink received of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamReport {
    /// Stream id.
    pub stream: u16,
    /// The sequence the stream was expected to start at.
    pub start: u64,
    /// Its counters.
    #[serde(flatten)]
    pub counts: SeqCounts,
}

/// What a sink received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkReport {
    /// Generated frames received, duplicates included.
    pub packets: u64,
    /// Their bytes, FCS included.
    pub bytes: u64,
    /// Other frames received.
    pub foreign: u64,
    /// Frames the kernel dropped before the sockets (AF_XDP statistics).
    pub kernel: KernelDrops,
    /// Per stream.
    pub streams: Vec<StreamReport>,
    /// One-way latency.
    pub latency: LatencySummary,
}

/// Receives one batch on `port` into `state`. The batch's receive time is read once, when its
/// first frame is handled: every frame of the batch was in the ring by then, none is stamped
/// later. Returns the number of frames received.
pub fn sink_round<P: Ports, C: Clock>(
    ports: &mut P,
    port: PortId,
    batch: usize,
    state: &mut SinkState,
    clock: &C,
    live: &Live,
) -> io::Result<usize> {
    let mut rx_ns = None;
    let (mut ours, mut bytes) = (0u64, 0u64);
    let got = ports.rx_batch(port, batch, &mut |f| {
        let now = *rx_ns.get_or_insert_with(|| clock.wall_ns());
        if state.handle(f.data(), now) {
            ours += 1;
            bytes += (f.len() + FCS_LEN) as u64;
        }
        Verdict::Drop
    })?;
    if got > 0 {
        ports.flush()?;
        live.add_received(ours, bytes);
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::clock::SimClock;
    use crate::pktgen::frame::{FrameFactory, FrameSpec, Proto};
    use braid_dataplane::io::MemPorts;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn factory(proto: Proto) -> FrameFactory {
        let spec = FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: Ipv4Addr::new(198, 18, 1, 2),
            dst_ip: Ipv4Addr::new(203, 0, 113, 130),
            src_port: 1000,
            dst_port: 9,
            proto,
            flows: 4,
            ttl: 64,
        };
        FrameFactory::new(&spec, &[80, 100, 1518]).unwrap()
    }

    fn frame(stream: u16, seq: u64, tx_ns: u64) -> Vec<u8> {
        factory(Proto::Udp)
            .frame(1, 0, &Stamp { stream, seq, tx_ns })
            .to_vec()
    }

    #[test]
    fn reads_stamps_of_udp_and_tcp_frames() {
        let s = Stamp {
            stream: 3,
            seq: 99,
            tx_ns: 7,
        };
        for proto in [Proto::Udp, Proto::TcpSyn] {
            let mut fac = factory(proto);
            assert_eq!(frame_stamp(fac.frame(2, 1, &s)), Some(s), "{proto:?}");
        }
    }

    #[test]
    fn kernel_pktgen_frames_count_by_source_port() {
        let mut f = frame(0, 0, 0);
        // Source port 7000, payload: pktgen magic, sequence 5, 2 s and 3 µs.
        f[34..36].copy_from_slice(&7000u16.to_be_bytes());
        f[42..58].copy_from_slice(&[0xbe, 0x9b, 0xe9, 0x55, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 3]);
        assert_eq!(
            frame_stamp(&f),
            Some(Stamp {
                stream: 7000,
                seq: 5,
                tx_ns: 2_000_003_000
            })
        );
    }

    #[test]
    fn foreign_and_malformed_frames_are_not_ours() {
        let good = frame(1, 1, 1);
        let mut arp = good.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        let mut later_fragment = good.clone();
        later_fragment[21] = 1;
        let mut icmp = good.clone();
        icmp[23] = 1;
        let mut short_total = good.clone();
        short_total[16..18].copy_from_slice(&30u16.to_be_bytes());
        let mut long_total = good.clone();
        long_total[16..18].copy_from_slice(&1500u16.to_be_bytes());
        let mut bad_ihl = good.clone();
        bad_ihl[14] = 0x44;
        for f in [arp, later_fragment, icmp, short_total, long_total, bad_ihl] {
            assert_eq!(frame_stamp(&f), None);
        }
        for cut in 0..good.len() {
            assert_eq!(frame_stamp(&good[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn accounting_is_exact_on_crafted_sequences() {
        let mut st = SinkState::new();
        st.begin(&[(1, 10), (2, 0), (3, 5)]);
        // Stream 1: 10..20 sent; 12 and 15 lost; 14 before 13; 17 twice; a stale 9.
        for seq in [10, 11, 14, 13, 16, 17, 17, 18, 19, 9] {
            assert_eq!(st.handle(&frame(1, seq, 1_000), 1_500), seq != 9);
        }
        // Stream 2: 0..5 in order, then 0 again.
        for seq in [0, 1, 2, 3, 4, 0] {
            st.handle(&frame(2, seq, 1_000), 3_000);
        }
        // Stream 3: nothing arrives. A foreign frame.
        assert!(!st.handle(&[0u8; 60], 0));
        let r = st.tally().report();
        assert_eq!(r.foreign, 1);
        assert_eq!(r.packets, 15, "stale packets are received, not accounted");
        let by_id = |id: u16| r.streams.iter().find(|s| s.stream == id).copied().unwrap();
        let s1 = by_id(1).counts;
        assert_eq!(
            (
                s1.received,
                s1.unique,
                s1.duplicates,
                s1.reordered,
                s1.stale
            ),
            (9, 8, 1, 1, 1)
        );
        assert_eq!(s1.lost(10, Some(10)), 2);
        let s2 = by_id(2).counts;
        assert_eq!((s2.unique, s2.duplicates, s2.reordered), (5, 1, 0));
        assert_eq!(s2.lost(0, Some(5)), 0);
        let s3 = by_id(3);
        assert_eq!((s3.start, s3.counts.unique), (5, 0));
        assert_eq!(s3.counts.lost(5, Some(7)), 7);
        assert_eq!(r.latency.count, 15);
        assert_eq!(r.latency.min_ns, 500);
        assert!((1995..=2005).contains(&r.latency.max_ns));
        assert_eq!(r.bytes, 15 * 100);
        // Kernel drops count from the trial's start.
        let k = |n| KernelDrops {
            rx_ring_full: n,
            fill_ring_empty: 2 * n,
            rx_dropped: 3 * n,
        };
        st.note_kernel(k(5));
        assert_eq!(st.tally().report().kernel, k(5));
        st.begin(&[]);
        st.note_kernel(k(7));
        assert_eq!(st.tally().report().kernel, k(2));
        // A new trial starts from nothing.
        st.begin(&[]);
        assert_eq!(st.tally().report(), SinkReport::default());
    }

    #[test]
    fn workers_merge_into_one_report() {
        let (mut a, mut b) = (SinkState::new(), SinkState::new());
        a.handle(&frame(1, 0, 0), 10);
        a.handle(&frame(2, 0, 0), 10);
        b.handle(&frame(2, 1, 0), 30);
        let mut t = a.tally();
        t.merge(&b.tally());
        let r = t.report();
        assert_eq!(r.packets, 3);
        assert_eq!(r.streams.len(), 2);
        assert_eq!(r.streams[1].counts.unique, 2);
        assert_eq!(r.streams[1].counts.next, 2);
        assert_eq!(r.latency.count, 3);
    }

    #[test]
    fn sink_round_takes_a_batch_from_its_port() {
        let mut ports = MemPorts::new(1, 2048);
        for seq in 0..10 {
            assert!(ports.inject(0, &frame(0, seq, 5)));
        }
        assert!(ports.inject(0, &[1, 2, 3]));
        let (mut st, live) = (SinkState::new(), Live::default());
        let clock = SimClock::new(100, 0);
        assert_eq!(
            sink_round(&mut ports, 0, 8, &mut st, &clock, &live).unwrap(),
            8
        );
        assert_eq!(
            sink_round(&mut ports, 0, 8, &mut st, &clock, &live).unwrap(),
            3
        );
        assert_eq!(live.totals().received, 10);
        assert_eq!(live.totals().received_bytes, 1000);
        let r = st.tally().report();
        assert_eq!((r.packets, r.foreign), (10, 1));
        assert_eq!(r.latency.min_ns, 95);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut st = SinkState::new();
            let _ = st.handle(&bytes, 0);
        }

        #[test]
        fn stamped_frames_with_random_tails_are_read(mut tail in prop::collection::vec(any::<u8>(), 14..100), seq in 0u64..1000) {
            // Any frame claiming IPv4/UDP with a stamp where the payload starts counts.
            let mut f = frame(9, seq, 0);
            f.append(&mut tail);
            prop_assert_eq!(frame_stamp(&f).map(|s| s.seq), Some(seq));
        }
    }
}
