//! The edge's upstream work per packet: route (policy rules), pick a link (smooth weighted round
//! robin, 1:2), encapsulate (outer IPv4/UDP, braid header) and seal (ChaCha20-Poly1305), on
//! batches of 64 LAN frames as a worker runs them (`begin_batch`, then `process` per frame).
//! Each frame is first copied into its buffer, as the NIC would have written it.

use braid_benches::{buffers, edge, lan_frame, run_batch, BATCH};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

fn edge_upstream(c: &mut Criterion) {
    let mut g = c.benchmark_group("edge upstream");
    g.throughput(Throughput::Elements(BATCH as u64));
    for size in [64, 512, 1518] {
        let frames: Vec<Vec<u8>> = (0..BATCH as u32).map(|n| lan_frame(size - 4, n)).collect();
        let mut e = edge();
        let mut bufs = buffers();
        assert_eq!(
            run_batch(&mut e, 0, &frames, &mut bufs),
            BATCH,
            "all go out"
        );
        g.bench_function(format!("route+pick+encap+seal/{size}B"), |b| {
            b.iter(|| run_batch(&mut e, 0, &frames, &mut bufs))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = edge_upstream
}
criterion_main!(benches);
