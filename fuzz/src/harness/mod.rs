//! What the fuzz targets run, as plain functions of the input bytes: the fuzzers
//! call them, and so do the tests that replay the checked-in corpus
//! (`dataplane/tests/hostile_corpus.rs`). Each function panics on a broken
//! property and returns what the input reached. See `docs/SECURITY.md`.

pub mod config;
pub mod control;
pub mod frames;
pub mod pipeline;
pub mod scratch;
pub mod seeds;
pub mod tunnel;
pub mod wire;

/// The tunnel key of every harness peer (the second edge's aside).
pub const KEY: [u8; 32] = [7; 32];
/// The second edge's key.
pub const KEY2: [u8; 32] = [9; 32];
/// The edge's MACs: lan0, wan1, wan2.
pub const EDGE_MACS: [[u8; 6]; 3] = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2]];
/// The hub's MAC (wan0).
pub const HUB_MAC: [u8; 6] = [2, 0, 0, 0, 2, 0];

/// The fuzz targets, by name (the names of `fuzz_targets/*.rs` and `corpus/*`).
pub const TARGETS: [&str; 6] = ["wire", "edge", "hub", "tunnel", "control", "config"];

/// Runs `data` through target `name`; false for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "wire" => {
            wire::wire(data);
        }
        "edge" => {
            pipeline::edge(data);
        }
        "hub" => {
            pipeline::hub(data);
        }
        "tunnel" => {
            tunnel::tunnel(data);
        }
        "control" => {
            control::control(data);
        }
        "config" => {
            config::config(data);
        }
        _ => return false,
    }
    true
}
