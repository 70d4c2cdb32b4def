//! The config parser: TOML text to a validated `Config`, and every valid config
//! built into a snapshot and a running pipeline.
//!
//! Key files are opened only when they lie in the harness's scratch directory:
//! a config naming an absolute path or one with `..` is checked without its key
//! files, so the fuzzer never opens arbitrary files (devices, FIFOs).

use super::scratch::Scratch;
use braid_control::config::{Config, Role};
use braid_dataplane::ids::Lane;
use braid_dataplane::pipeline::{Pipeline, Shared};
use braid_dataplane::snapshot::{Secrets, Snapshot};
use braid_dataplane::stats::WorkerStats;
use std::path::Component;
use std::sync::Arc;

/// Sessions above which a valid config's NAT tables are not built (memory).
const BUILD_SESSIONS: usize = 1 << 16;

/// How far an input got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Not UTF-8.
    NotText,
    /// Refused with problems.
    Refused,
    /// Valid, and built into a running pipeline.
    Running,
}

/// Runs one input.
pub fn config(data: &[u8]) -> Parsed {
    let Ok(text) = std::str::from_utf8(data) else {
        return Parsed::NotText;
    };
    let scratch = Scratch::new("config", "");
    let origin = scratch.config.clone();
    let outside = toml::from_str::<Config>(text).is_ok_and(|c| {
        let key_files = c
            .peers
            .iter()
            .filter_map(|p| p.preshared_key_file.as_deref());
        std::iter::once(c.private_key_file.as_path())
            .chain(key_files)
            .any(|path| {
                path.components().any(|c| {
                    matches!(
                        c,
                        Component::RootDir | Component::ParentDir | Component::Prefix(_)
                    )
                })
            })
    });
    let cfg = if outside {
        let Ok(cfg) = toml::from_str::<Config>(text) else {
            return Parsed::Refused;
        };
        if cfg.validate().is_err() {
            return Parsed::Refused;
        }
        cfg
    } else {
        match Config::parse(text, &origin) {
            Ok(cfg) => cfg,
            Err(e) => {
                assert!(!e.problems().is_empty(), "a refusal names its problems");
                let _ = e.to_string();
                return Parsed::Refused;
            }
        }
    };
    // A config that validates must run.
    let macs: Vec<[u8; 6]> = (0..cfg.interfaces.len())
        .map(|i| [2, 0, 0, 0, 0, i as u8])
        .collect();
    // Key files outside the scratch directory are not read: the lab's keys stand in.
    let secrets = if outside {
        Secrets {
            private: match cfg.role {
                Role::Edge => braid_testkit::EDGE_PRIVATE,
                Role::Hub => braid_testkit::HUB_PRIVATE,
            },
            psks: vec![[0; 32]; cfg.peers.len()],
        }
    } else {
        Secrets::load(&cfg).unwrap_or_else(|e| panic!("validated key files do not load: {e}"))
    };
    let snap = Snapshot::build(&cfg, &macs, &secrets, 1)
        .unwrap_or_else(|e| panic!("a valid config does not build: {e}"));
    if cfg
        .masquerades
        .iter()
        .any(|m| m.max_sessions > BUILD_SESSIONS)
    {
        return Parsed::Running;
    }
    let shared = Arc::new(Shared::new(snap, 7));
    let mut p = Pipeline::new(shared, Lane(0), 7, Arc::new(WorkerStats::default()));
    p.begin_batch(1);
    let _ = p.take_out().count();
    Parsed::Running
}
