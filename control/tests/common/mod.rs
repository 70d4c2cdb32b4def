//! Fixtures for the configuration tests: lab-like configs and a temporary directory holding
//! them next to their private key files.

#![allow(dead_code)] // each test crate uses a different part of these fixtures

use braid_control::config::{Config, ConfigError, Problem};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The lab edge with two workers: LAN lan0, uplinks wan1 and wan2 to the hub at 203.0.113.2,
/// weights 1:2.
pub const EDGE: &str = braid_testkit::EDGE_WORKERS2;

/// The lab hub: one NIC wan0 on 203.0.113.2/28, the edge's two uplinks as links.
pub const HUB: &str = braid_testkit::HUB;

/// The private key file [`EDGE`] names (relative: next to the config).
pub const EDGE_KEY_FILE: &str = "edge.key";
/// The private key file [`HUB`] names.
pub const HUB_KEY_FILE: &str = "hub.key";
/// A public key for a second edge on the hub (the base64 of 32 bytes 3).
pub const EDGE2_PUBLIC: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";

/// Writes the key file text of `bytes` to `path` with `mode`.
pub fn write_key(path: &Path, bytes: &[u8; 32], mode: u32) {
    braid_testkit::write_key_file(path, bytes).expect("write key file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod key");
}

/// A directory under the system temp dir, removed on drop, holding the fixtures' private key
/// files (mode 0600).
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("braid-config-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        write_key(
            &dir.join(EDGE_KEY_FILE),
            &braid_testkit::EDGE_PRIVATE,
            0o600,
        );
        write_key(&dir.join(HUB_KEY_FILE), &braid_testkit::HUB_PRIVATE, 0o600);
        Scratch { dir }
    }

    /// Writes `text` as `braidd.toml` here and loads it.
    pub fn load(&self, text: &str) -> Result<Config, ConfigError> {
        let path = self.config_path();
        std::fs::write(&path, text).expect("write config");
        Config::load(&path)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("braidd.toml")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `text` with the single occurrence of `from` replaced by `to`.
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur exactly once"
    );
    text.replacen(from, to, 1)
}

/// `text` with its `n`-th (0-based) occurrence of `from` replaced by `to`.
pub fn edit_nth(text: &str, from: &str, n: usize, to: &str) -> String {
    let (at, _) = text.match_indices(from).nth(n).expect("occurrence exists");
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

/// 1-based line of the single line containing `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "{needle:?} must be on exactly one line");
    lines[0]
}

/// Loads `text`, which must be refused, and returns the error.
pub fn refuse(text: &str) -> ConfigError {
    let scratch = Scratch::new();
    match scratch.load(text) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts that `err` reports, for `field` (and on `line` when given), a message containing
/// `what`, and that its Display prints that problem as `<file>:<line>: <field>: ...`.
pub fn assert_problem(err: &ConfigError, field: &str, line: Option<usize>, what: &str) -> Problem {
    let found = err
        .problems()
        .iter()
        .find(|p| p.field.as_deref() == Some(field) && p.message.contains(what));
    let Some(problem) = found else {
        panic!("no problem for {field} containing {what:?} in:\n{err}");
    };
    if let Some(line) = line {
        assert_eq!(problem.line, Some(line), "line of {field} in:\n{err}");
    }
    let prefix = match problem.line {
        Some(l) => format!("{}:{l}: {field}: ", err.file().display()),
        None => format!("{}: {field}: ", err.file().display()),
    };
    assert!(
        err.to_string()
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(what)),
        "Display lacks {prefix:?}…{what:?}:\n{err}"
    );
    problem.clone()
}

/// Asserts the config has exactly one problem, about `field`, and returns it.
pub fn only_problem(err: &ConfigError, field: &str, what: &str) -> Problem {
    assert_eq!(err.problems().len(), 1, "expected one problem:\n{err}");
    assert_problem(err, field, None, what)
}
