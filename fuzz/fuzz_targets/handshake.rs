//! The tunnel handshake: arbitrary initiations and responses, and altered genuine ones,
//! through the pipelines. See `braid_fuzz::harness::handshake`.
#![no_main]

use braid_fuzz::harness::handshake;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = handshake::handshake(data);
});
