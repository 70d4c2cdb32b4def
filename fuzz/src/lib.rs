//! braid's fuzz harness: the functions the fuzz targets (`fuzz_targets/`) run.

pub mod harness;
