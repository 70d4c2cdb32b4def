//! What the fuzz targets run, as plain functions of the input bytes: the fuzzers
//! call them, and so do the tests that replay the checked-in corpus
//! (`dataplane/tests/hostile_corpus.rs`). Each function panics on a broken
//! property and returns what the input reached. See `docs/SECURITY.md`.

pub mod config;
pub mod control;
pub mod frames;
pub mod handshake;
pub mod pipeline;
pub mod scratch;
pub mod seeds;
pub mod tunnel;
pub mod wire;

/// The lab's MACs and key pairs, shared with every other test (`testkit/`).
pub use braid_testkit::{
    EDGE_MACS, EDGE_PRIVATE, GW1_MAC, GW2_MAC, HOST_MAC, HUB_GW_MAC, HUB_MAC, HUB_PRIVATE,
    HUB_PUBLIC,
};

/// A session key the tunnel harness seals and opens with directly.
pub const KEY: [u8; 32] = [7; 32];

/// The second edge's private key (its public key is [`EDGE2_PUBLIC`]); to the tunnel
/// harness, another session key.
pub const KEY2: [u8; 32] = [9; 32];

/// The second edge's public key in the hub's config (that of [`KEY2`]).
pub const EDGE2_PUBLIC: &str = "V9tLNZ8jrl4Ubk4lEgVnBHIlBjSMFQwUdT0Mkz0E1CE=";

/// The fuzz targets, by name (the names of `fuzz_targets/*.rs` and `corpus/*`).
pub const TARGETS: [&str; 7] = [
    "wire",
    "edge",
    "hub",
    "tunnel",
    "handshake",
    "control",
    "config",
];

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
        "handshake" => {
            handshake::handshake(data);
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
