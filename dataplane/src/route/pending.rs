//! Packets waiting for a neighbour to be resolved, and the pacing of ARP requests.
//! Per worker; bounded in total and per address, and each packet waits at most
//! [`WAIT_NS`].

use super::neighbor::{Lookup, NeighborMap};
use crate::frame::PortId;
use std::collections::VecDeque;
use std::net::Ipv4Addr;

/// How long a packet may wait for resolution.
pub const WAIT_NS: u64 = 3_000_000_000;
/// Minimum gap between two ARP requests for one address.
pub const REQUEST_GAP_NS: u64 = 1_000_000_000;
/// Most packets waiting in all.
pub const MAX_WAITING: usize = 256;
/// Most packets waiting for one address.
pub const MAX_PER_ADDRESS: usize = 16;

#[derive(Debug)]
struct Waiting {
    port: PortId,
    ip: Ipv4Addr,
    /// The finished frame but for its destination MAC.
    frame: Vec<u8>,
    since_ns: u64,
}

/// Outcome of releasing waiting packets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub sent: u64,
    pub expired: u64,
}

/// The resolution queue of one worker.
#[derive(Debug, Default)]
pub struct Pending {
    waiting: VecDeque<Waiting>,
    requests: Vec<(PortId, Ipv4Addr, u64)>,
}

impl Pending {
    /// An empty queue.
    pub fn new() -> Pending {
        Pending::default()
    }

    /// Number of packets waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Queues a copy of `frame` until `ip` on `port` resolves; false when the
    /// queue (in all or for this address) is full.
    pub fn push(&mut self, port: PortId, ip: Ipv4Addr, frame: &[u8], now: u64) -> bool {
        if self.waiting.len() >= MAX_WAITING
            || self
                .waiting
                .iter()
                .filter(|w| w.port == port && w.ip == ip)
                .count()
                >= MAX_PER_ADDRESS
        {
            return false;
        }
        self.waiting.push_back(Waiting {
            port,
            ip,
            frame: frame.to_vec(),
            since_ns: now,
        });
        true
    }

    /// True if an ARP request for `ip` on `port` is due (at most one per
    /// [`REQUEST_GAP_NS`], and at most [`MAX_WAITING`] addresses asked per gap, so a
    /// flood of new destinations cannot turn into a flood of broadcasts); records it
    /// as sent.
    pub fn request_due(&mut self, port: PortId, ip: Ipv4Addr, now: u64) -> bool {
        self.requests
            .retain(|&(_, _, t)| now.saturating_sub(t) < REQUEST_GAP_NS);
        if self.requests.len() >= MAX_WAITING
            || self.requests.iter().any(|&(p, a, _)| p == port && a == ip)
        {
            return false;
        }
        self.requests.push((port, ip, now));
        true
    }

    /// Addresses still waiting whose ARP request is due again (recorded as sent).
    pub fn retry_due(&mut self, now: u64) -> Vec<(PortId, Ipv4Addr)> {
        let mut due: Vec<(PortId, Ipv4Addr)> =
            self.waiting.iter().map(|w| (w.port, w.ip)).collect();
        due.sort_unstable();
        due.dedup();
        self.requests
            .retain(|&(_, _, t)| now.saturating_sub(t) < REQUEST_GAP_NS);
        let mut asked: Vec<(PortId, Ipv4Addr)> =
            self.requests.iter().map(|&(p, a, _)| (p, a)).collect();
        asked.sort_unstable();
        due.retain(|k| asked.binary_search(k).is_err());
        due.truncate(MAX_WAITING.saturating_sub(self.requests.len()));
        self.requests.extend(due.iter().map(|&(p, a)| (p, a, now)));
        due
    }

    /// Sends (through `send`, with the destination MAC filled in) every packet
    /// whose neighbour is now known, and drops those that waited too long.
    pub fn release(
        &mut self,
        neighbors: &NeighborMap,
        now: u64,
        mut send: impl FnMut(PortId, &[u8]),
    ) -> Released {
        let mut out = Released::default();
        if self.waiting.is_empty() {
            return out;
        }
        self.waiting.retain_mut(|w| {
            match neighbors.lookup(w.port, w.ip, now) {
                Lookup::Fresh(mac) | Lookup::Stale(mac) => {
                    if let Some(dst) = w.frame.get_mut(..6) {
                        dst.copy_from_slice(&mac);
                    }
                    send(w.port, &w.frame);
                    out.sent += 1;
                    return false;
                }
                Lookup::Missing => {}
            }
            if now.saturating_sub(w.since_ns) >= WAIT_NS {
                out.expired += 1;
                return false;
            }
            true
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Neighbors;

    const S: u64 = 1_000_000_000;

    #[test]
    fn waits_then_sends_with_the_learned_mac() {
        let mut p = Pending::new();
        let ip = Ipv4Addr::new(198, 18, 11, 1);
        assert!(p.request_due(1, ip, 0));
        assert!(!p.request_due(1, ip, S / 2));
        assert!(p.push(1, ip, &[0u8; 20], 0));
        let n = Neighbors::new(8);
        let mut sent = Vec::new();
        assert_eq!(
            p.release(&n.load(), 1, |port, f| sent.push((port, f.to_vec())))
                .sent,
            0
        );
        n.learn(1, ip, [7; 6], S);
        let r = p.release(&n.load(), S, |port, f| sent.push((port, f.to_vec())));
        assert_eq!(
            r,
            Released {
                sent: 1,
                expired: 0
            }
        );
        assert_eq!(sent[0].0, 1);
        assert_eq!(&sent[0].1[..6], &[7; 6]);
        assert!(p.is_empty());
    }

    #[test]
    fn arp_requests_are_capped_per_gap() {
        let mut p = Pending::new();
        for i in 0..MAX_WAITING as u32 {
            assert!(p.request_due(0, Ipv4Addr::from(0xc612_0000 + i), 0));
        }
        // A flood of destinations gets no more broadcasts until a gap has passed.
        let late = Ipv4Addr::new(198, 18, 200, 1);
        assert!(!p.request_due(0, late, S / 2));
        assert!(p.request_due(0, late, REQUEST_GAP_NS));
    }

    #[test]
    fn bounded_and_expiring() {
        let mut p = Pending::new();
        let ip = Ipv4Addr::new(198, 18, 11, 1);
        for _ in 0..MAX_PER_ADDRESS {
            assert!(p.push(0, ip, &[0; 64], 0));
        }
        assert!(!p.push(0, ip, &[0; 64], 0));
        assert!(p.push(0, Ipv4Addr::new(198, 18, 11, 9), &[0; 64], 0));
        assert_eq!(p.retry_due(2 * S).len(), 2);
        let n = Neighbors::new(8);
        let r = p.release(&n.load(), WAIT_NS, |_, _| panic!("nothing resolves"));
        assert_eq!(r.expired, MAX_PER_ADDRESS as u64 + 1);
        assert!(p.is_empty());
    }
}
