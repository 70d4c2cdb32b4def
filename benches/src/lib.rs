//! braid benchmarks (criterion benches live in benches/).
