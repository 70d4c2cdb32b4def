//! A private directory with a config file and the key files configs name,
//! removed when dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Key file names the harness configs use (64 hex digits, mode 0600).
pub const KEY_FILES: [&str; 3] = ["peer.key", "unused", "k"];

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
        let hex: String = super::KEY.iter().map(|b| format!("{b:02x}")).collect();
        for name in KEY_FILES {
            let key = dir.join(name);
            std::fs::write(&key, format!("{hex}\n")).expect("key file");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .expect("key file mode");
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
