//! A private directory with a config file and the key files configs name,
//! removed when dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Key files the harness configs name (base64, mode 0600): the lab edge's and hub's private
/// keys, and a pre-shared key.
pub const KEY_FILES: [(&str, [u8; 32]); 3] = [
    ("edge.key", braid_testkit::EDGE_PRIVATE),
    ("hub.key", braid_testkit::HUB_PRIVATE),
    ("peer.psk", [5; 32]),
];

/// A directory under the temp dir with `braidd.toml` and the key files.
#[derive(Debug)]
pub struct Scratch {
    /// The directory.
    pub dir: PathBuf,
    /// Its `braidd.toml`.
    pub config: PathBuf,
}

impl Scratch {
    /// Creates `<tmp>/braid-fuzz-<what>-<pid>-<n>` with `config` as `braidd.toml`.
    pub fn new(what: &str, config: &str) -> Scratch {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("braid-fuzz-{what}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        for (name, key) in KEY_FILES {
            braid_testkit::write_key_file(&dir.join(name), &key).expect("key file");
        }
        let path = dir.join("braidd.toml");
        std::fs::write(&path, config).expect("config file");
        Scratch { dir, config: path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
