//! The hub's translated path at 1 k, 100 k and 1 M live sessions: tunnel frames from random
//! existing inside endpoints through open, decap, masquerade (session lookup, rewrite) and route,
//! in batches of 64 through `process_batch`, as the worker hands them over (the lookups of a
//! batch parked and loaded together), with the copy of each frame into its buffer (the NIC's)
//! and without it (`, in place`); and the session table's `translate_out` alone on the same
//! mix, one call per packet and `translate_out_batch` per 64. The cost should stay nearly flat
//! as the table grows; where it does not, cache and TLB misses of a table larger than the
//! caches are the reason (docs/NAT.md).

use braid_benches::{
    buffers, edge_with, flow_frame, hub_masquerading, nat_pool, run_batch, time_in_place,
    tunnel_frames, BATCH, NOW,
};
use braid_dataplane::nat::{NatConfig, NatTable, PortSlice};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::time::Duration;

const SIZES: [u32; 3] = [1_000, 100_000, 1_000_000];

/// A cheap, repeatable stream of endpoint numbers below `n`.
struct Pick(u64);

impl Pick {
    fn next(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n)) as u32
    }
}

fn hub_translated(c: &mut Criterion) {
    let mut g = c.benchmark_group("hub from the tunnel, masqueraded");
    g.throughput(Throughput::Elements(BATCH as u64));
    for n in SIZES {
        let mut h = hub_masquerading(n as usize);
        let mut e = edge_with(&h);
        let mut bufs = buffers();
        // Create the sessions, a batch at a time, through the real path.
        let all: Vec<u32> = (0..n).collect();
        for chunk in all.chunks(BATCH) {
            let lan: Vec<Vec<u8>> = chunk.iter().map(|&i| flow_frame(i)).collect();
            let wire = tunnel_frames(&mut e, &lan);
            let sent = run_batch(&mut h, 0, &wire, &mut bufs);
            if sent != chunk.len() {
                let drops: Vec<_> = braid_dataplane::stats::DropReason::ALL
                    .iter()
                    .map(|r| (r.name(), h.stats().drops_of(*r)))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                panic!(
                    "at {}: {sent} of {} sent; drops {drops:?}",
                    chunk[0],
                    chunk.len()
                );
            }
        }
        h.begin_batch(NOW);
        assert_eq!(h.stats().nat.sessions.get(), u64::from(n), "live sessions");
        let mut pick = Pick(0x9e37_79b9_7f4a_7c15);
        g.bench_function(format!("{n} sessions"), |b| {
            b.iter_batched(
                || {
                    let lan: Vec<Vec<u8>> = (0..BATCH).map(|_| flow_frame(pick.next(n))).collect();
                    tunnel_frames(&mut e, &lan)
                },
                |wire| run_batch(&mut h, 0, &wire, &mut bufs),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("{n} sessions, in place"), |b| {
            let frames = || {
                let lan: Vec<Vec<u8>> = (0..BATCH).map(|_| flow_frame(pick.next(n))).collect();
                tunnel_frames(&mut e, &lan)
            };
            time_in_place(b, &mut h, frames, &mut bufs)
        });
    }
    g.finish();
}

/// A table with room for `2 n` sessions holding `n`, from [`flow_frame`]s `0..n`.
fn filled_table(n: u32) -> NatTable {
    let mut config = NatConfig::new(nat_pool());
    config.max_sessions = n as usize * 2;
    config.max_per_host = n as usize * 2;
    let slice = PortSlice {
        worker: 0,
        workers: 1,
    };
    let mut t = NatTable::new(&config, slice, 7).expect("table");
    for i in 0..n {
        let mut p = flow_frame(i)[14..].to_vec();
        t.translate_out(&mut p, NOW).expect("created");
    }
    assert_eq!(t.len(), n as usize);
    t
}

/// A batch of IPv4 packets (no Ethernet header) of flows picked among the first `n`.
fn packets(pick: &mut Pick, n: u32) -> Vec<Vec<u8>> {
    (0..BATCH)
        .map(|_| flow_frame(pick.next(n))[14..].to_vec())
        .collect()
}

fn table_only(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat translate_out alone");
    g.throughput(Throughput::Elements(BATCH as u64));
    for n in SIZES {
        let mut t = filled_table(n);
        let mut pick = Pick(0x2545_f491_4f6c_dd1d);
        g.bench_function(format!("{n} sessions"), |b| {
            b.iter_batched(
                || packets(&mut pick, n),
                |mut packets| {
                    for p in &mut packets {
                        let _ = t.translate_out(p, NOW);
                    }
                    packets
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// The same packets as `table_only`, translated by `translate_out_batch`: the
/// lookups' memory reads of up to 16 packets overlap.
fn table_batched(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat translate_out_batch");
    g.throughput(Throughput::Elements(BATCH as u64));
    for n in SIZES {
        let mut t = filled_table(n);
        let mut pick = Pick(0x2545_f491_4f6c_dd1d);
        g.bench_function(format!("{n} sessions"), |b| {
            b.iter_batched(
                || packets(&mut pick, n),
                |mut packets| {
                    t.translate_out_batch(&mut packets, NOW, |_, r| {
                        let _ = std::hint::black_box(r);
                    });
                    packets
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = hub_translated, table_only, table_batched
}
criterion_main!(benches);
