//! The daemon's control plane: the Unix socket `braidctl` talks to (JSON lines, see
//! `docs/CONTROL.md`), the optional Prometheus port, and the runtime state behind them.
//!
//! Every change is made to a copy of the running config, validated whole, built into a new
//! snapshot (generation + 1, replay windows carried over) and swapped in: the workers see the
//! old snapshot or the new one, never half of a change.

mod counters;
mod follow;
mod learn;
mod metrics;
mod nat;
mod report;
mod runtime;
mod server;

pub use follow::Follow;
pub use runtime::Runtime;
pub use server::{Control, Listeners};

use std::path::PathBuf;

/// How the daemon was told to run its control plane.
#[derive(Debug, Clone)]
pub struct ControlOptions {
    /// The configuration file, for `reload` and `save`.
    pub config_path: PathBuf,
    /// Control socket path overriding the config's `control_socket`.
    pub socket: Option<PathBuf>,
}

#[cfg(test)]
mod tests;
