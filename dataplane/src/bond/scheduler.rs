//! Weighted link choice: smooth weighted round robin per packet (by packets or by
//! bytes), or a weight-proportional table indexed by the flow hash.

use braid_control::config::{Balance, BondMode};

/// Slots of the flow-mode table; a power of two, indexed by the hash's low bits.
const FLOW_SLOTS: usize = 1024;

/// Longest round kept as a cycle (packets by packets): weights summing to more are
/// stepped through the credits at each pick. Learned weights sum to about 1000.
const MAX_CYCLE: usize = 4096;

/// Chooses a link for each packet according to the links' weights.
#[derive(Clone)]
pub struct Scheduler {
    weights: Vec<u32>,
    mode: BondMode,
    balance: Balance,
    /// Sum of the weights.
    total: i128,
    /// Smooth weighted round robin state: each link's credit, scaled by `total`.
    current: Vec<i128>,
    /// Flow mode: link index per slot, in proportion to the weights, interleaved.
    table: Vec<u32>,
    /// Packet mode by packets: the links of one whole round of the smooth weighted round
    /// robin (it repeats after `total` picks, every credit back at 0), when it has at most
    /// [`MAX_CYCLE`] picks; empty otherwise. A pick is then a load, not a step over every
    /// link's credit: a tenth of an edge's work a packet besides the AEAD
    /// (benches/RESULTS.md, "Issue #14's goals on the Xeon, and a packet's link from a
    /// precomputed round").
    cycle: Vec<u8>,
    /// The next pick's place in `cycle`.
    at: usize,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("weights", &self.weights)
            .field("mode", &self.mode)
            .field("balance", &self.balance)
            .field("credits", &self.current)
            .finish_non_exhaustive()
    }
}

/// One smooth weighted round robin step charging `cost` to the chosen link: every link
/// earns `weight * cost`, the richest (first on ties) pays `total * cost`.
/// With `cost` = 1 this is nginx's scheme; with `cost` = bytes it is a deficit
/// round robin on bytes. Needs `total > 0`.
#[inline(always)]
fn swrr_step(weights: &[u32], current: &mut [i128], total: i128, cost: i128) -> usize {
    let mut best = 0;
    let mut best_credit = i128::MIN;
    for (i, (c, &w)) in current.iter_mut().zip(weights).enumerate() {
        *c += i128::from(w) * cost;
        if *c > best_credit {
            best = i;
            best_credit = *c;
        }
    }
    // Credits sum to 0 before the step and to `total * cost` > 0 after earning, so the
    // richest link has positive credit: a weight-0 link (credit always 0) never wins.
    if let Some(c) = current.get_mut(best) {
        *c -= total * cost;
    }
    best
}

/// One whole round of packet-mode picks by packets for `weights` (summing to `total`), from
/// all credits at 0, when it has at most [`MAX_CYCLE`] picks and every link index fits a
/// byte; empty otherwise (and for the other modes).
fn cycle(weights: &[u32], mode: BondMode, balance: Balance, total: i128) -> Vec<u8> {
    let fits = weights.len() <= usize::from(u8::MAX) + 1;
    match (mode, balance, usize::try_from(total)) {
        (BondMode::Packet, Balance::Packets, Ok(n)) if fits && n > 0 && n <= MAX_CYCLE => {
            let mut credit = vec![0; weights.len()];
            (0..n)
                .map(|_| swrr_step(weights, &mut credit, total, 1) as u8)
                .collect()
        }
        _ => Vec::new(),
    }
}

impl Scheduler {
    /// A scheduler over links with these weights (index = link index).
    pub fn new(weights: &[u32], mode: BondMode, balance: Balance) -> Scheduler {
        let total = weights.iter().map(|&w| i128::from(w)).sum();
        let mut current = vec![0; weights.len()];
        let table = match mode {
            BondMode::Flow if total > 0 => (0..FLOW_SLOTS)
                .map(|_| swrr_step(weights, &mut current, total, 1) as u32)
                .collect(),
            _ => Vec::new(),
        };
        current.iter_mut().for_each(|c| *c = 0);
        let cycle = cycle(weights, mode, balance, total);
        Scheduler {
            weights: weights.to_vec(),
            mode,
            balance,
            total,
            current,
            table,
            cycle,
            at: 0,
        }
    }

    /// Index of the link for the next packet; None when every weight is 0.
    ///
    /// Packet mode ignores `flow_hash`; flow mode ignores `bytes` and always gives the
    /// same link for the same hash.
    #[inline]
    pub fn pick(&mut self, flow_hash: u32, bytes: usize) -> Option<usize> {
        if self.total == 0 {
            return None;
        }
        match self.mode {
            BondMode::Flow => self
                .table
                .get(flow_hash as usize % FLOW_SLOTS)
                .map(|&l| l as usize),
            // Each balance its own call: with a constant cost of 1 the multiplications by
            // it fold away.
            BondMode::Packet => Some(match self.balance {
                Balance::Packets => match self.cycle.get(self.at) {
                    Some(&l) => {
                        self.at += 1;
                        if self.at == self.cycle.len() {
                            self.at = 0;
                        }
                        usize::from(l)
                    }
                    None => swrr_step(&self.weights, &mut self.current, self.total, 1),
                },
                Balance::Bytes => swrr_step(
                    &self.weights,
                    &mut self.current,
                    self.total,
                    bytes.max(1) as i128,
                ),
            }),
        }
    }

    /// The links' weights.
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// Per-packet or per-flow.
    pub fn mode(&self) -> BondMode {
        self.mode
    }

    /// This scheduler without the links marked in `down` (index = link index), which
    /// carry nothing. In flow mode only the flows of those links move: their slots go to
    /// the other links in proportion to their weights, every other slot stays, so a link
    /// that fails disturbs no flow but its own (and when it is back, [`Scheduler::new`]'s
    /// table gives every flow its place again).
    pub fn without(mut self, down: &[bool]) -> Scheduler {
        let is_down = |i: usize| down.get(i).copied().unwrap_or(false);
        if !self
            .weights
            .iter()
            .enumerate()
            .any(|(i, &w)| w > 0 && is_down(i))
        {
            return self;
        }
        for (i, w) in self.weights.iter_mut().enumerate() {
            if is_down(i) {
                *w = 0;
            }
        }
        self.total = self.weights.iter().map(|&w| i128::from(w)).sum();
        self.current.iter_mut().for_each(|c| *c = 0);
        self.cycle = cycle(&self.weights, self.mode, self.balance, self.total);
        self.at = 0;
        if self.mode == BondMode::Flow {
            if self.total == 0 {
                self.table.clear();
            } else {
                let mut credit = vec![0; self.weights.len()];
                for slot in self.table.iter_mut() {
                    if is_down(*slot as usize) {
                        *slot = swrr_step(&self.weights, &mut credit, self.total, 1) as u32;
                    }
                }
            }
        }
        self
    }

    /// True when this scheduler was made by [`Scheduler::new`] from these arguments
    /// (a scheduler that has picked since is not as new, but still says so).
    pub fn made_from(&self, weights: &[u32], mode: BondMode, balance: Balance) -> bool {
        self.weights == weights && self.mode == mode && self.balance == balance
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Deterministic test randomness (splitmix64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn size(&mut self) -> usize {
            64 + (self.next() % (1500 - 64 + 1)) as usize
        }
    }

    fn weight_sets() -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::vec(0u32..=10, 1..=8)
            .prop_filter("one non-zero weight", |w| w.iter().any(|&x| x > 0))
    }

    /// Window starts checked in a run of 4,000 packets.
    const OFFSETS: [usize; 6] = [0, 1, 333, 999, 1777, 3000];

    /// Asserts that each link's share of `amounts` in every window matches its weight.
    fn assert_windows(
        weights: &[u32],
        picks: &[usize],
        amounts: &[u64],
        tolerance: f64,
    ) -> Result<(), TestCaseError> {
        let total_w: u32 = weights.iter().sum();
        for start in OFFSETS {
            let mut per_link = vec![0u64; weights.len()];
            for (&l, &a) in picks[start..start + 1000]
                .iter()
                .zip(&amounts[start..start + 1000])
            {
                per_link[l] += a;
            }
            let sum: u64 = per_link.iter().sum();
            for (i, (&got, &w)) in per_link.iter().zip(weights).enumerate() {
                let share = got as f64 / sum as f64;
                let want = f64::from(w) / f64::from(total_w);
                prop_assert!(
                    (share - want).abs() <= tolerance,
                    "link {} weight {} share {:.4} want {:.4} window at {}",
                    i,
                    w,
                    share,
                    want,
                    start
                );
            }
        }
        Ok(())
    }

    #[test]
    fn smooth_without_bursts() {
        let mut s = Scheduler::new(&[5, 1, 1], BondMode::Packet, Balance::Packets);
        let picks: Vec<usize> = (0..7).map(|_| s.pick(0, 100).unwrap()).collect();
        // nginx's example: a a b a c a a, not a a a a a b c.
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        let again: Vec<usize> = (0..7).map(|_| s.pick(0, 100).unwrap()).collect();
        assert_eq!(again, picks);
    }

    #[test]
    fn flow_table_is_interleaved() {
        let mut s = Scheduler::new(&[1, 1], BondMode::Flow, Balance::Packets);
        // Consecutive slots alternate, so hashes differing in the lowest bit split.
        let picks: Vec<usize> = (0..8).map(|h| s.pick(h, 0).unwrap()).collect();
        assert_eq!(picks, [0, 1, 0, 1, 0, 1, 0, 1]);
        let mut s = Scheduler::new(&[3, 1], BondMode::Flow, Balance::Packets);
        let ones = (0..1024).filter(|&h| s.pick(h, 0) == Some(1)).count();
        assert_eq!(ones, 256);
        // The table wraps: the slot is the hash's low 10 bits.
        assert_eq!(s.pick(5, 0), s.pick(5 + 1024 * 77, 0));
    }

    #[test]
    fn a_link_down_in_flow_mode_moves_its_flows_only_and_they_come_back() {
        for weights in [vec![1, 1, 1], vec![1, 2], vec![3, 1, 2, 0]] {
            let full = Scheduler::new(&weights, BondMode::Flow, Balance::Packets);
            let mut down = vec![false; weights.len()];
            down[0] = true;
            let without = full.clone().without(&down);
            let mut moved = vec![0usize; weights.len()];
            for slot in 0..FLOW_SLOTS {
                let (before, after) = (full.table[slot], without.table[slot]);
                if before == 0 {
                    assert_ne!(after, 0, "{weights:?}: a flow left on the dead link");
                    moved[after as usize] += 1;
                } else {
                    assert_eq!(before, after, "{weights:?}: a flow of a live link moved");
                }
            }
            // The dead link's flows are spread by the others' weights.
            let rest: u32 = weights[1..].iter().sum();
            let total: usize = moved.iter().sum();
            for (i, &w) in weights.iter().enumerate().skip(1) {
                let share = moved[i] as f64 / total as f64;
                let want = f64::from(w) / f64::from(rest);
                assert!(
                    (share - want).abs() < 0.01,
                    "{weights:?}: link {i} {share} vs {want}"
                );
            }
            // Nothing down: the same table.
            assert_eq!(
                full.clone().without(&vec![false; weights.len()]).table,
                full.table
            );
        }
        // Every link down: nothing is picked.
        let mut none =
            Scheduler::new(&[1, 1], BondMode::Flow, Balance::Packets).without(&[true, true]);
        assert_eq!(none.pick(7, 64), None);
        // Packet mode: the link's share goes to the others.
        let mut p =
            Scheduler::new(&[1, 2], BondMode::Packet, Balance::Packets).without(&[false, true]);
        assert!((0..30).all(|n| p.pick(n, 64) == Some(0)));
    }

    #[test]
    fn debug_is_short() {
        let s = Scheduler::new(&[2, 1], BondMode::Flow, Balance::Packets);
        assert_eq!(
            format!("{s:?}"),
            "Scheduler { weights: [2, 1], mode: Flow, balance: Packets, credits: [0, 0], .. }"
        );
    }

    #[test]
    fn all_zero_or_empty_gives_none() {
        for mode in [BondMode::Packet, BondMode::Flow] {
            for balance in [Balance::Packets, Balance::Bytes] {
                for weights in [&[][..], &[0], &[0, 0, 0]] {
                    let mut s = Scheduler::new(weights, mode, balance);
                    assert_eq!(s.pick(7, 100), None);
                    assert_eq!(s.weights(), weights);
                    assert_eq!(s.mode(), mode);
                }
            }
        }
    }

    #[test]
    fn bytes_balance_follows_bytes_not_packets() {
        // Link 0 gets the big packets' worth of bytes, not half the packets.
        let mut s = Scheduler::new(&[1, 1], BondMode::Packet, Balance::Bytes);
        let mut bytes = [0usize; 2];
        let mut packets = [0usize; 2];
        for i in 0..1000 {
            let size = if i % 2 == 0 { 1500 } else { 100 };
            let l = s.pick(0, size).unwrap();
            bytes[l] += size;
            packets[l] += 1;
        }
        assert!(bytes[0].abs_diff(bytes[1]) <= 1500, "{bytes:?}");
        let mut p = Scheduler::new(&[1, 1], BondMode::Packet, Balance::Packets);
        let split: usize = (0..1000).filter(|_| p.pick(0, 1500) == Some(0)).count();
        assert_eq!(split, 500);
    }

    #[test]
    fn a_round_longer_than_a_cycle_is_stepped_and_keeps_the_weights() {
        let (kept, stepped) = (
            Scheduler::new(&[4095, 1], BondMode::Packet, Balance::Packets),
            Scheduler::new(&[4095, 2], BondMode::Packet, Balance::Packets),
        );
        assert_eq!(kept.cycle.len(), MAX_CYCLE);
        assert!(stepped.cycle.is_empty());
        let mut s = stepped;
        let ones = (0..4097 * 3).filter(|_| s.pick(0, 64) == Some(1)).count();
        assert_eq!(ones, 6);
        for (mode, balance) in [
            (BondMode::Flow, Balance::Packets),
            (BondMode::Packet, Balance::Bytes),
        ] {
            assert!(Scheduler::new(&[1, 2], mode, balance).cycle.is_empty());
        }
    }

    proptest! {
        #[test]
        fn a_round_kept_as_a_cycle_picks_as_stepping_the_credits_does(
            weights in weight_sets(),
            down in proptest::collection::vec(any::<bool>(), 8),
        ) {
            let mut s = Scheduler::new(&weights, BondMode::Packet, Balance::Packets).without(&down);
            let (w, total) = (s.weights.clone(), s.total);
            prop_assert_eq!(s.cycle.len() as i128, total);
            let mut credit = vec![0; w.len()];
            for _ in 0..3 * total + 5 {
                let want = (total > 0).then(|| swrr_step(&w, &mut credit, total, 1));
                prop_assert_eq!(s.pick(0, 64), want);
            }
        }

        #[test]
        fn packet_split_follows_weights(weights in weight_sets()) {
            let mut s = Scheduler::new(&weights, BondMode::Packet, Balance::Packets);
            let picks: Vec<usize> = (0..4000).map(|i| s.pick(i, 1500).unwrap()).collect();
            for (l, &w) in weights.iter().enumerate() {
                if w == 0 {
                    prop_assert!(!picks.contains(&l));
                }
            }
            assert_windows(&weights, &picks, &[1; 4000], 0.01)?;
        }

        #[test]
        fn byte_split_follows_weights(weights in weight_sets(), seed: u64) {
            let mut rng = Rng(seed);
            let mut s = Scheduler::new(&weights, BondMode::Packet, Balance::Bytes);
            let sizes: Vec<u64> = (0..4000).map(|_| rng.size() as u64).collect();
            let picks: Vec<usize> =
                sizes.iter().map(|&b| s.pick(0, b as usize).unwrap()).collect();
            for (l, &w) in weights.iter().enumerate() {
                if w == 0 {
                    prop_assert!(!picks.contains(&l));
                }
            }
            assert_windows(&weights, &picks, &sizes, 0.01)?;
        }

        #[test]
        fn flow_spread_follows_weights_and_flows_stay(weights in weight_sets(), seed: u64) {
            let mut rng = Rng(seed);
            let mut s = Scheduler::new(&weights, BondMode::Flow, Balance::Packets);
            let total_w: u32 = weights.iter().sum();
            let mut counts = vec![0u32; weights.len()];
            let tracked: Vec<(u32, usize)> = (0..32)
                .map(|_| {
                    let h = rng.next() as u32;
                    (h, s.pick(h, 64).unwrap())
                })
                .collect();
            for i in 0..100_000 {
                let h = rng.next() as u32;
                counts[s.pick(h, rng.size()).unwrap()] += 1;
                let (th, tl) = tracked[i % tracked.len()];
                prop_assert_eq!(s.pick(th, rng.size()), Some(tl));
            }
            for (l, (&n, &w)) in counts.iter().zip(&weights).enumerate() {
                if w == 0 {
                    prop_assert_eq!(n, 0);
                }
                let share = f64::from(n) / 100_000.0;
                let want = f64::from(w) / f64::from(total_w);
                prop_assert!((share - want).abs() <= 0.02, "link {} {} vs {}", l, share, want);
            }
            // A copy made with the same weights sends every flow the same way.
            let mut same = Scheduler::new(&weights, BondMode::Flow, Balance::Bytes);
            for (th, tl) in tracked {
                prop_assert_eq!(same.pick(th, 1), Some(tl));
            }
        }
    }
}
