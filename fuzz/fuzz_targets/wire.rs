//! The packet parsers and in-place rewrites. See `braid_fuzz::harness::wire`.
#![no_main]

use braid_fuzz::harness::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::wire(data);
});
