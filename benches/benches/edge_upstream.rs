//! The edge's upstream work per packet: route (policy rules), pick a link (smooth weighted round
//! robin, 1:2), encapsulate (outer IPv4/UDP, braid header, bond sequence, padding) and seal (the
//! session's AES-256-GCM where the CPU has AES instructions), on batches of 64 LAN frames as a
//! worker runs them (`begin_batch`, then `process_batch`). `route+pick+encap+seal/` first
//! copies each frame into its buffer, as the NIC would have written it, and times the copy too;
//! `in place/` times the pipeline alone, on frames copied in beforehand.

use braid_benches::{buffers, edge, lan_frame, run_batch, time_in_place, BATCH};
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
        g.bench_function(format!("in place/{size}B"), |b| {
            time_in_place(b, &mut e, || frames.clone(), &mut bufs)
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
