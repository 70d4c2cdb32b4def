//! The hub's work on what comes out of the tunnel: open (replay window, the session's AEAD),
//! decapsulate, check the inner source against the peer, route to the internet. Batches of 64
//! sealed frames made by an edge pipeline (not timed), with ever-increasing counters so the
//! replay window lets every one through. `open+decap+route/` times the copy of each frame into
//! its buffer (the NIC's) too, `in place/` the pipeline alone.

use braid_benches::{
    buffers, edge_with, hub, lan_frame, run_batch, time_in_place, tunnel_frames, BATCH,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::time::Duration;

fn hub_downstream(c: &mut Criterion) {
    let mut g = c.benchmark_group("hub from the tunnel");
    g.throughput(Throughput::Elements(BATCH as u64));
    for size in [64, 512, 1518] {
        let lan: Vec<Vec<u8>> = (0..BATCH as u32).map(|n| lan_frame(size - 4, n)).collect();
        let mut h = hub();
        let mut e = edge_with(&h);
        let mut bufs = buffers();
        let first = tunnel_frames(&mut e, &lan);
        assert_eq!(run_batch(&mut h, 0, &first, &mut bufs), BATCH, "all go out");
        g.bench_function(format!("open+decap+route/{size}B"), |b| {
            b.iter_batched(
                || tunnel_frames(&mut e, &lan),
                |wire| run_batch(&mut h, 0, &wire, &mut bufs),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("in place/{size}B"), |b| {
            time_in_place(b, &mut h, || tunnel_frames(&mut e, &lan), &mut bufs)
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
    targets = hub_downstream
}
criterion_main!(benches);
