//! The config parser, and every valid config built and run. See `braid_fuzz::harness::config`.
#![no_main]

use braid_fuzz::harness::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = config::config(data);
});
