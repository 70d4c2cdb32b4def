//! The tunnel open path: arbitrary and altered authentic messages. See `braid_fuzz::harness::tunnel`.
#![no_main]

use braid_fuzz::harness::tunnel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tunnel::tunnel(data);
});
