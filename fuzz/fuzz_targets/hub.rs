//! The hub pipeline with masquerade on, frames on every port with a simulated clock. See `braid_fuzz::harness::pipeline`.
#![no_main]

use braid_fuzz::harness::pipeline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pipeline::hub(data);
});
