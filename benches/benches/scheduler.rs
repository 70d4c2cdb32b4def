//! Choosing a link: the scheduler's pick in packet mode (by packets and by bytes) and flow mode,
//! and the flow hash flow mode and the outer source port use. 64 per iteration.

use braid_benches::{lan_frame, BATCH};
use braid_control::config::{Balance, BondMode};
use braid_dataplane::bond::{flow_hash, Scheduler};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

fn scheduler(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduler");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, mode, balance) in [
        (
            "pick packet mode, packets 1:2",
            BondMode::Packet,
            Balance::Packets,
        ),
        (
            "pick packet mode, bytes 1:2",
            BondMode::Packet,
            Balance::Bytes,
        ),
        ("pick flow mode 1:2", BondMode::Flow, Balance::Packets),
    ] {
        let mut s = Scheduler::new(&[1, 2], mode, balance);
        g.bench_function(name, |b| {
            b.iter(|| {
                (0..BATCH as u32)
                    .map(|i| {
                        s.pick(black_box(i.wrapping_mul(0x9e37_79b9)), 512)
                            .unwrap_or(0)
                    })
                    .sum::<usize>()
            })
        });
    }
    let packets: Vec<Vec<u8>> = (0..BATCH as u32)
        .map(|n| lan_frame(60, n)[14..].to_vec())
        .collect();
    g.bench_function("flow hash", |b| {
        b.iter(|| {
            packets
                .iter()
                .map(|p| flow_hash(black_box(p)))
                .fold(0u32, u32::wrapping_add)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = scheduler
}
criterion_main!(benches);
