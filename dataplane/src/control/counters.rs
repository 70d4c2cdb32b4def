//! The workers' counters summed, and rates from two samples a second apart.

use crate::stats::{WorkerStats, MAX_LINKS};
use braid_control::proto::Traffic;
use std::sync::Arc;
use std::time::Instant;

/// Packets and bytes one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Flow {
    fn add(&mut self, packets: u64, bytes: u64) {
        self.packets = self.packets.wrapping_add(packets);
        self.bytes = self.bytes.wrapping_add(bytes);
    }
}

/// A port's traffic over all workers' queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortTotals {
    /// Received.
    pub rx: Flow,
    /// Sent.
    pub tx: Flow,
    /// Frames that could not be sent.
    pub tx_dropped: u64,
}

/// A link's tunnel traffic over all workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkTotals {
    /// Sent over the link.
    pub tx: Flow,
    /// Received over the link.
    pub rx: Flow,
}

/// Every worker's counters added up at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Per port, in config interface order.
    pub ports: Vec<PortTotals>,
    /// Per link counter slot.
    pub links: Vec<LinkTotals>,
}

impl Totals {
    /// Sums the counters of `stats` over `ports` ports and every link slot.
    pub fn sum(stats: &[Arc<WorkerStats>], ports: usize) -> Totals {
        let mut out = Totals {
            ports: vec![PortTotals::default(); ports],
            links: vec![LinkTotals::default(); MAX_LINKS],
        };
        for w in stats {
            for (p, total) in w.ports.iter().zip(out.ports.iter_mut()) {
                let c = p.get();
                total.rx.add(c.rx_packets, c.rx_bytes);
                total.tx.add(c.tx_packets, c.tx_bytes);
                total.tx_dropped = total.tx_dropped.wrapping_add(c.tx_dropped);
            }
            for (l, total) in w.links.iter().zip(out.links.iter_mut()) {
                total.tx.add(l.tx_packets.get(), l.tx_bytes.get());
                total.rx.add(l.rx_packets.get(), l.rx_bytes.get());
            }
        }
        out
    }
}

/// Packets and bits per second of `last` since `before`, over `ms` milliseconds.
fn rate(last: Flow, before: Flow, ms: u64) -> (u64, u64) {
    if ms == 0 {
        return (0, 0);
    }
    let per_sec = |n: u64| (u128::from(n) * 1000 / u128::from(ms)).min(u128::from(u64::MAX)) as u64;
    let packets = last.packets.saturating_sub(before.packets);
    let bytes = last.bytes.saturating_sub(before.bytes);
    (per_sec(packets), per_sec(bytes.saturating_mul(8)))
}

/// The counters `now`, with the rates between the samples `last` and `before`.
fn traffic(now: Flow, last: Flow, before: Flow, ms: u64) -> Traffic {
    let (pps, bps) = rate(last, before, ms);
    Traffic {
        packets: now.packets,
        bytes: now.bytes,
        pps,
        bps,
    }
}

/// Traffic both ways, with rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Both {
    /// Received.
    pub rx: Traffic,
    /// Sent.
    pub tx: Traffic,
}

/// The counters with the rates of the last sampling interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rates {
    /// Per port, in config interface order.
    pub ports: Vec<Both>,
    /// Per link counter slot.
    pub links: Vec<Both>,
}

/// The last two samples of the totals; rates are the difference over their interval.
#[derive(Debug, Default)]
pub struct Sampler {
    last: Option<(Instant, Totals)>,
    before: Option<(Instant, Totals)>,
    count: u64,
}

impl Sampler {
    /// Takes a sample.
    pub fn sample(&mut self, at: Instant, totals: Totals) {
        self.before = self.last.take();
        self.last = Some((at, totals));
        self.count += 1;
    }

    /// Number of samples taken so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Milliseconds between the last two samples (0 before there are two).
    pub fn interval_ms(&self) -> u64 {
        match (&self.last, &self.before) {
            (Some((a, _)), Some((b, _))) => a.duration_since(*b).as_millis() as u64,
            _ => 0,
        }
    }

    /// The counters `now` with the rates of the last interval.
    pub fn rates(&self, now: &Totals) -> Rates {
        let ms = self.interval_ms();
        let (last, before) = match (&self.last, &self.before) {
            (Some((_, l)), Some((_, b))) => (l, b),
            _ => (now, now),
        };
        let ports = now
            .ports
            .iter()
            .enumerate()
            .map(|(i, cur)| {
                let l = last.ports.get(i).unwrap_or(cur);
                let b = before.ports.get(i).unwrap_or(l);
                Both {
                    rx: traffic(cur.rx, l.rx, b.rx, ms),
                    tx: traffic(cur.tx, l.tx, b.tx, ms),
                }
            })
            .collect();
        let links = now
            .links
            .iter()
            .enumerate()
            .map(|(i, cur)| {
                let l = last.links.get(i).unwrap_or(cur);
                let b = before.links.get(i).unwrap_or(l);
                Both {
                    rx: traffic(cur.rx, l.rx, b.rx, ms),
                    tx: traffic(cur.tx, l.tx, b.tx, ms),
                }
            })
            .collect();
        Rates { ports, links }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::PortCounters;
    use std::time::Duration;

    #[test]
    fn totals_add_up_workers_and_rates_follow_the_last_interval() {
        let workers: Vec<Arc<WorkerStats>> =
            (0..2).map(|_| Arc::new(WorkerStats::default())).collect();
        let port = |rx: u64, tx: u64| PortCounters {
            rx_packets: rx,
            rx_bytes: rx * 100,
            tx_packets: tx,
            tx_bytes: tx * 1000,
            tx_dropped: 1,
        };
        workers[0].publish_port(1, port(10, 20));
        workers[1].publish_port(1, port(5, 2));
        workers[1].links[3].tx_packets.add(7);
        let t0 = Instant::now();
        let mut s = Sampler::default();
        s.sample(t0, Totals::sum(&workers, 2));
        assert_eq!(s.interval_ms(), 0);
        let first = s.rates(&Totals::sum(&workers, 2));
        assert_eq!(first.ports[1].rx.packets, 15);
        assert_eq!(first.ports[1].rx.pps, 0, "no rate from one sample");

        workers[0].publish_port(1, port(510, 20));
        workers[1].links[3].tx_packets.add(250);
        workers[1].links[3].tx_bytes.add(250_000);
        s.sample(t0 + Duration::from_millis(500), Totals::sum(&workers, 2));
        // Counted after the sample: shows in the totals, not in the rates.
        workers[0].publish_port(1, port(9000, 20));
        let r = s.rates(&Totals::sum(&workers, 2));
        assert_eq!(s.interval_ms(), 500);
        assert_eq!(s.count(), 2);
        assert_eq!(r.ports.len(), 2);
        assert_eq!(r.ports[1].rx.packets, 9005);
        assert_eq!(r.ports[1].rx.pps, 1000, "500 packets in 500 ms");
        assert_eq!(r.ports[1].rx.bps, 1000 * 100 * 8);
        assert_eq!(r.ports[1].tx.pps, 0);
        assert_eq!(r.ports[0], Both::default());
        let link = r.links[3];
        assert_eq!((link.tx.packets, link.tx.pps), (257, 500));
        assert_eq!(link.tx.bps, 250_000 * 8 * 2);
        assert_eq!(Totals::sum(&workers, 2).ports[1].tx_dropped, 2);
    }
}
