//! The tunnel's cryptography alone: sealing and opening a message (ChaCha20-Poly1305 in place,
//! the braid header as associated data) carrying an inner packet of a 64, 512 or 1518-byte
//! frame. 64 per iteration; shows how much of the edge's and the hub's per-packet cost it is.

use braid_benches::{seal_and_open, BATCH, KEY};
use braid_dataplane::tunnel::{Header, MsgType, Sealer, HEADER_LEN, TAG_LEN};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

/// A message with sequence `seq` around an inner packet of `inner` bytes, not yet sealed.
fn message(seq: u64, inner: usize) -> Vec<u8> {
    let mut m = vec![0x5a; HEADER_LEN + inner + TAG_LEN];
    if let Some(h) = m.first_chunk_mut() {
        Header {
            msg_type: MsgType::Data,
            link: 1,
            lane: 0,
            sender: 1,
            seq,
        }
        .emit(h);
    }
    m
}

fn tunnel(c: &mut Criterion) {
    let mut g = c.benchmark_group("tunnel");
    g.throughput(Throughput::Elements(BATCH as u64));
    let sealer = Sealer::new(&KEY);
    seal_and_open(
        &mut g,
        "",
        message,
        |m| sealer.seal(m).is_ok(),
        |m| sealer.open(m).is_ok(),
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = tunnel
}
criterion_main!(benches);
