//! Internet checksums (RFC 1071) over an IPv4 header, a small and a full-size UDP segment, and
//! the incremental update (RFC 1624) a TTL decrement costs. 64 per iteration.

use braid_benches::{lan_frame, BATCH};
use braid_dataplane::wire::checksum;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

fn checksums(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    g.throughput(Throughput::Elements(BATCH as u64));
    let frames: Vec<Vec<u8>> = (0..BATCH as u32).map(|n| lan_frame(1514, n)).collect();
    for (name, range) in [
        ("ipv4 header 20B", 14..34),
        ("udp segment 30B", 34..64),
        ("udp segment 1480B", 34..1514),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                frames
                    .iter()
                    .map(|f| u32::from(checksum::checksum(black_box(&f[range.clone()]))))
                    .sum::<u32>()
            })
        });
    }
    g.bench_function("incremental update16", |b| {
        b.iter(|| {
            (0..BATCH as u16)
                .map(|i| u32::from(checksum::update16(black_box(0x1234 ^ i), 0x4011, 0x3f11)))
                .sum::<u32>()
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
    targets = checksums
}
criterion_main!(benches);
