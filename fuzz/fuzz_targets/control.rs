//! The control protocol decoder and the changes it lets through. See `braid_fuzz::harness::control`.
#![no_main]

use braid_fuzz::harness::control;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = control::control(data);
});
