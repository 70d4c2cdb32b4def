//! Parsing a received frame: the Ethernet header, the IPv4 header and its checksum, as
//! `pipeline::process` does first for every frame. Batches of 64; criterion's throughput in
//! Melem/s is millions of packets per second on one core.

use braid_benches::{lan_frame, BATCH};
use braid_dataplane::wire::{ethernet, ipv4};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(BATCH as u64));
    for size in [64, 1518] {
        let frames: Vec<Vec<u8>> = (0..BATCH as u32).map(|n| lan_frame(size - 4, n)).collect();
        g.bench_function(format!("ethernet+ipv4+checksum/{size}B"), |b| {
            b.iter(|| {
                let mut ok = 0u32;
                for f in black_box(&frames) {
                    let Ok(eth) = ethernet::Header::parse(f) else {
                        continue;
                    };
                    if eth.ethertype != ethernet::ETHERTYPE_IPV4 {
                        continue;
                    }
                    if let Ok(ip) = ipv4::Ipv4::parse(&f[ethernet::HEADER_LEN..]) {
                        ok += u32::from(ip.checksum_ok() && ip.ttl() > 1);
                    }
                }
                ok
            })
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
    targets = parse
}
criterion_main!(benches);
