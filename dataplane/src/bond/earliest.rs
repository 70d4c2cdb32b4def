//! Earliest delivery (`[bond] scheduler = "earliest"`): each packet goes on the link where it
//! is expected to arrive first, given the link's one-way delay (above the fastest link's, from
//! the probes), its rate and what this end has queued on it. Pure: the pipeline hands it the
//! delays and the time.
//!
//! Each link is modelled as a queue served at the link's share of the bond's rate: the links'
//! configured rates summed, split as the weights say, so that under full load the links carry
//! the weights' shares as with round robin. A packet sent at `now` on link `l` leaves when what
//! was queued before it has left and it has been serialized, and arrives one delay later:
//! `max(now, busy_until[l]) + bytes / rate[l] + delay[l]`. The earliest wins and its link's
//! queue grows. So at light load every packet takes the fastest link (the receiver has nothing
//! to wait for); as load grows the fast link's queue builds up until going by the slower link is
//! as quick, and from then on both carry packets that arrive in the order they were sent. With
//! packets of one size the expected arrivals never go backwards (the property tests check it),
//! which is what keeps the receiver's reorder window from waiting.
//!
//! The model's queues are this end's estimate, not measured: a rate set too high makes the
//! scheduler trust a fast link that is in fact backed up, and the receiver waits again (the
//! reorder buffer still puts packets in order). The delays are the links' base delays (their
//! lowest in the last seconds), so the queues the probes see are not counted twice.

/// Picoseconds per second times bits per byte: `PS_BITS / bps` is a byte's time in ps.
const PS_BITS: u128 = 8_000_000_000_000;

/// One link as the scheduler models it.
#[derive(Debug, Clone, Copy, Default)]
struct Model {
    /// Time to serialize one byte at the link's modelled rate, in picoseconds (0: unused).
    ps_per_byte: u64,
    /// One-way delay above the fastest link's.
    delay_ns: u64,
    /// When what this end queued on the link has left it (ns, the worker's clock).
    busy_until_ns: u64,
}

/// The earliest-delivery choice over one peer's links.
#[derive(Debug, Clone, Default)]
pub struct Earliest {
    links: Vec<Model>,
}

impl Earliest {
    /// Links with these rates (bits per second) and weights (index = link index); a link of
    /// weight 0 is not used. The modelled rate of link `i` is `weights[i] / sum(weights)` of the
    /// summed rates of the links in use.
    pub fn new(rates_bps: &[u64], weights: &[u32]) -> Earliest {
        let in_use = || rates_bps.iter().zip(weights).filter(|(_, &w)| w > 0);
        let total_bps: u128 = in_use().map(|(&r, _)| u128::from(r)).sum();
        let total_w: u128 = in_use().map(|(_, &w)| u128::from(w)).sum();
        let links = weights
            .iter()
            .map(|&w| {
                let bps = (total_bps * u128::from(w))
                    .checked_div(total_w)
                    .unwrap_or(0);
                Model {
                    ps_per_byte: PS_BITS
                        .checked_div(bps)
                        .map_or(0, |ps| u64::try_from(ps.max(1)).unwrap_or(u64::MAX)),
                    ..Model::default()
                }
            })
            .collect();
        Earliest { links }
    }

    /// The links' one-way delays above the fastest link's (index = link index).
    pub fn set_delays(&mut self, delays_ns: &[u64]) {
        for (m, &d) in self.links.iter_mut().zip(delays_ns) {
            m.delay_ns = d;
        }
    }

    /// When a packet of `bytes` sent at `now` on link `i` is expected to arrive (ns, on the
    /// worker's clock plus the fastest link's delay); None for a link not in use.
    pub fn arrival(&self, i: usize, now: u64, bytes: usize) -> Option<u64> {
        let m = self.links.get(i).filter(|m| m.ps_per_byte > 0)?;
        Some(finish(m, now, bytes).saturating_add(m.delay_ns))
    }

    /// The link for a packet of `bytes` (on the wire) sent at `now`, whose queue then holds it;
    /// None when no link is in use.
    pub fn pick(&mut self, now: u64, bytes: usize) -> Option<usize> {
        let best = (0..self.links.len())
            .filter_map(|i| self.arrival(i, now, bytes).map(|a| (a, i)))
            .min()?
            .1;
        let m = self.links.get_mut(best)?;
        m.busy_until_ns = finish(m, now, bytes);
        Some(best)
    }
}

/// When a packet of `bytes` sent at `now` has left link `m`.
fn finish(m: &Model, now: u64, bytes: usize) -> u64 {
    let serialize = (bytes as u64).saturating_mul(m.ps_per_byte) / 1000;
    m.busy_until_ns.max(now).saturating_add(serialize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;
    /// A full-size tunnel frame.
    const FRAME: usize = 1514;

    /// Picks for `count` packets of `FRAME` bytes, one every `gap_ns` from `start`; how many
    /// went on each link.
    fn run(e: &mut Earliest, start: u64, count: u64, gap_ns: u64) -> Vec<u64> {
        let mut n = vec![0; e.links.len()];
        for k in 0..count {
            let i = e.pick(start + k * gap_ns, FRAME).unwrap();
            n[i] += 1;
        }
        n
    }

    /// The gap between frames at `bps` bits per second.
    fn gap_at(bps: u64) -> u64 {
        FRAME as u64 * 8 * 1_000_000_000 / bps
    }

    #[test]
    fn light_load_takes_the_fastest_link_only() {
        // 100 and 200 Mbit/s, isp2 10 ms slower; 20 Mbit/s offered.
        let mut e = Earliest::new(&[100_000_000, 200_000_000], &[1, 2]);
        e.set_delays(&[0, 10 * MS]);
        assert_eq!(run(&mut e, 0, 2000, gap_at(20_000_000)), [2000, 0]);
        // The other way round, isp1 slower: isp2 takes it all.
        let mut e = Earliest::new(&[100_000_000, 200_000_000], &[1, 2]);
        e.set_delays(&[10 * MS, 0]);
        assert_eq!(run(&mut e, 0, 2000, gap_at(20_000_000)), [0, 2000]);
    }

    #[test]
    fn full_load_is_split_as_the_weights_say() {
        // 300 Mbit/s offered to 100 + 200: the shares of 1:2 within a few percent, delays or not.
        for delays in [[0, 0], [0, 10 * MS], [20 * MS, 0]] {
            let mut e = Earliest::new(&[100_000_000, 200_000_000], &[1, 2]);
            e.set_delays(&delays);
            let n = run(&mut e, 0, 30_000, gap_at(300_000_000));
            let share = n[1] as f64 / (n[0] + n[1]) as f64;
            assert!((share - 2.0 / 3.0).abs() < 0.04, "{delays:?}: {n:?}");
        }
    }

    #[test]
    fn the_slower_link_takes_packets_once_the_fast_queue_is_as_long_as_its_delay() {
        // 250 Mbit/s offered: more than isp2 alone (200) carries.
        let mut e = Earliest::new(&[100_000_000, 200_000_000], &[1, 2]);
        e.set_delays(&[10 * MS, 0]);
        let gap = gap_at(250_000_000);
        let mut first_slow = None;
        for k in 0..20_000u64 {
            let now = k * gap;
            if e.pick(now, FRAME) == Some(0) && first_slow.is_none() {
                first_slow = Some(now);
                // isp2's queue then holds about isp1's extra 10 ms.
                let queued = e.links[1].busy_until_ns - now;
                assert!((9 * MS..=11 * MS).contains(&queued), "{queued}");
            }
        }
        assert!(first_slow.is_some(), "isp1 never used at 250 Mbit/s");
    }

    #[test]
    fn unused_links_carry_nothing() {
        let mut e = Earliest::new(&[100_000_000, 200_000_000, 50_000_000], &[1, 0, 1]);
        let n = run(&mut e, 0, 3000, gap_at(300_000_000));
        assert_eq!(n[1], 0);
        assert!(n[0] > 0 && n[2] > 0);
        assert_eq!(Earliest::new(&[100], &[0]).pick(0, 100), None);
        assert_eq!(Earliest::new(&[], &[]).pick(0, 100), None);
    }

    proptest! {
        /// With packets of one size the expected arrivals of successive packets never go
        /// backwards, whatever the rates, weights, delays and sending times.
        #[test]
        fn expected_arrivals_keep_the_sending_order(
            links in proptest::collection::vec((1_000_000u64..1_000_000_000, 1u32..5, 0u64..50 * MS), 1..5),
            gaps in proptest::collection::vec(0u64..200_000, 1..400),
            bytes in 64usize..1600,
        ) {
            let rates: Vec<u64> = links.iter().map(|l| l.0).collect();
            let weights: Vec<u32> = links.iter().map(|l| l.1).collect();
            let delays: Vec<u64> = links.iter().map(|l| l.2).collect();
            let mut e = Earliest::new(&rates, &weights);
            e.set_delays(&delays);
            let (mut now, mut last) = (0u64, 0u64);
            for g in gaps {
                now += g;
                let i = e.pick(now, bytes).unwrap();
                let arrived = e.links[i].busy_until_ns + e.links[i].delay_ns;
                prop_assert!(arrived >= last, "{arrived} < {last}");
                last = arrived;
            }
        }
    }
}
