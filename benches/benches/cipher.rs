//! The tunnel's data cipher alone: sealing and opening a message in place under a session key,
//! ChaCha20-Poly1305 against AES-256-GCM, around the bond sequence and the inner packet of a 64,
//! 512 or 1518-byte frame padded as the pipeline sends them (`tunnel::padded_len`), and
//! AES-256-GCM without the padding (`aes256gcm-unpadded/`), to show what it saves. 64 per
//! iteration.

use braid_benches::{seal_and_open, BATCH};
use braid_dataplane::tunnel::{
    padded_len, Cipher, SessionKey, HEADER_LEN, SEQ_LEN, TAG_LEN, VERSION,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

/// Any key: the cost does not depend on it.
const KEY: [u8; 32] = [7; 32];

/// The inner MTU of a bond of 1500-byte links (docs/PROTOCOL.md).
const INNER_MTU: usize = 1436;

/// A data message of lane 0 with `counter` around `body` bytes, not sealed.
fn message(counter: u64, body: usize) -> Vec<u8> {
    let mut m = vec![0x5a; HEADER_LEN + body + TAG_LEN];
    if let Some(h) = m.first_chunk_mut::<HEADER_LEN>() {
        *h = [VERSION, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        if let Some(c) = h.last_chunk_mut::<8>() {
            *c = counter.to_be_bytes();
        }
    }
    m
}

fn cipher(c: &mut Criterion) {
    let mut g = c.benchmark_group("cipher");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, cipher, padded) in [
        ("chacha20poly1305", Cipher::ChaCha20Poly1305, true),
        ("aes256gcm", Cipher::Aes256Gcm, true),
        ("aes256gcm-unpadded", Cipher::Aes256Gcm, false),
    ] {
        let key = SessionKey::new(cipher, &KEY);
        let body = |inner| match padded {
            true => padded_len(SEQ_LEN + inner, SEQ_LEN + INNER_MTU),
            false => SEQ_LEN + inner,
        };
        seal_and_open(
            &mut g,
            &format!("{name}/"),
            |n, inner| message(n, body(inner)),
            |m| key.seal(m).is_ok(),
            |m| key.open(m).is_ok(),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = cipher
}
criterion_main!(benches);
