//! Tunnel key files: 32 random bytes written as 64 lowercase hex digits and a newline,
//! readable by the owner only (mode 0600).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Key files are tiny; anything much bigger is not a key file.
const MAX_FILE_LEN: u64 = 256;

/// A 32-byte pre-shared tunnel key.
pub struct Key([u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Why a key could not be made, read or written.
#[derive(Debug)]
pub enum KeyError {
    /// The file could not be opened, read or written (empty path: the OS random source).
    Io(PathBuf, io::Error),
    /// The contents are not 64 hex digits.
    Format(PathBuf, String),
    /// The file is accessible by group or others; the mode bits are attached.
    Permissions(PathBuf, u32),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Io(path, e) if path.as_os_str().is_empty() => {
                write!(f, "cannot get random bytes from the system: {e}")
            }
            KeyError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            KeyError::Format(path, what) => {
                write!(f, "{}: not a braid key file: {what}", path.display())
            }
            KeyError::Permissions(path, mode) => {
                let who = if mode & 0o044 != 0 {
                    "readable"
                } else {
                    "writable or executable"
                };
                write!(
                    f,
                    "{}: {who} by group/others (mode {mode:04o}); chmod 600 it",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Key {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Key, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| KeyError::Io(PathBuf::new(), io::Error::other(e.to_string())))?;
        Ok(Key(bytes))
    }

    /// The raw key.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits (surrounding whitespace ignored); `path` names the source
    /// in errors. Error messages never quote the key material.
    pub fn from_hex(s: &str, path: &Path) -> Result<Key, KeyError> {
        let digits = s.trim().as_bytes();
        if digits.len() != 64 {
            return Err(KeyError::Format(
                path.to_path_buf(),
                format!("expected 64 hex digits, found {} characters", digits.len()),
            ));
        }
        let mut key = [0u8; 32];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            match (hex_value(pair[0]), hex_value(pair[1])) {
                (Some(hi), Some(lo)) => key[i] = hi << 4 | lo,
                _ => {
                    let at = if hex_value(pair[0]).is_none() {
                        2 * i
                    } else {
                        2 * i + 1
                    };
                    return Err(KeyError::Format(
                        path.to_path_buf(),
                        format!("character {} is not a hex digit", at + 1),
                    ));
                }
            }
        }
        Ok(Key(key))
    }

    /// Reads a key file, refusing one that group or others may access.
    pub fn load(path: &Path) -> Result<Key, KeyError> {
        let io_err = |e| KeyError::Io(path.to_path_buf(), e);
        let file = File::open(path).map_err(io_err)?;
        let mode = file.metadata().map_err(io_err)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions(path.to_path_buf(), mode));
        }
        let mut text = String::new();
        file.take(MAX_FILE_LEN)
            .read_to_string(&mut text)
            .map_err(|e| match e.kind() {
                io::ErrorKind::InvalidData => {
                    KeyError::Format(path.to_path_buf(), "not text".to_string())
                }
                _ => io_err(e),
            })?;
        Key::from_hex(&text, path)
    }

    /// Writes a new random key to a new file `path` (mode 0600, never overwriting): what
    /// `braidd genkey` and `braidctl genkey` do.
    pub fn create_file(path: &Path) -> Result<(), KeyError> {
        Key::generate()?.write_new(path)
    }

    /// Writes the key to a new file with mode 0600; never overwrites an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let io_err = |e| KeyError::Io(path.to_path_buf(), e);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err)?;
        let written = file
            .write_all(format!("{}\n", self.to_hex()).as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            // Leave no half-written key behind; the write error is what matters.
            let _ = fs::remove_file(path);
            return Err(io_err(e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A unique path in the temp directory, removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new() -> TempPath {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("braid-key-test-{}-{n}", std::process::id());
            TempPath(std::env::temp_dir().join(name))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }

    fn write_with_mode(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn round_trip_through_a_file() {
        let tmp = TempPath::new();
        let key = Key::generate().unwrap();
        key.write_new(&tmp.0).unwrap();
        let meta = fs::metadata(&tmp.0).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&tmp.0).unwrap();
        assert_eq!(text, format!("{}\n", key.to_hex()));
        assert_eq!(text.len(), 65);
        assert!(text[..64]
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        let loaded = Key::load(&tmp.0).unwrap();
        assert_eq!(loaded.bytes(), key.bytes());
    }

    #[test]
    fn generated_keys_differ() {
        let a = Key::generate().unwrap();
        let b = Key::generate().unwrap();
        assert_ne!(a.bytes(), b.bytes());
    }

    #[test]
    fn refuses_to_overwrite() {
        let tmp = TempPath::new();
        write_with_mode(&tmp.0, "keep me\n", 0o600);
        let err = Key::generate().unwrap().write_new(&tmp.0).unwrap_err();
        match &err {
            KeyError::Io(p, e) => {
                assert_eq!(p, &tmp.0);
                assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fs::read_to_string(&tmp.0).unwrap(), "keep me\n");
    }

    #[test]
    fn refuses_a_group_or_world_readable_file() {
        let tmp = TempPath::new();
        write_with_mode(&tmp.0, &format!("{HEX}\n"), 0o644);
        let err = Key::load(&tmp.0).unwrap_err();
        assert!(
            matches!(&err, KeyError::Permissions(p, 0o644) if p == &tmp.0),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{}: readable by group/others (mode 0644); chmod 600 it",
                tmp.0.display()
            )
        );
        for mode in [0o640, 0o604, 0o620, 0o602] {
            fs::set_permissions(&tmp.0, fs::Permissions::from_mode(mode)).unwrap();
            let err = Key::load(&tmp.0).unwrap_err();
            assert!(
                matches!(err, KeyError::Permissions(_, m) if m == mode),
                "{mode:o}"
            );
        }
        for mode in [0o600, 0o400] {
            fs::set_permissions(&tmp.0, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(Key::load(&tmp.0).unwrap().bytes()[31], 0x1f);
        }
    }

    #[test]
    fn parses_hex() {
        let p = Path::new("k");
        let key = Key::from_hex(&format!("  {HEX}\n\n"), p).unwrap();
        let want: [u8; 32] = core::array::from_fn(|i| i as u8);
        assert_eq!(key.bytes(), &want);
        assert_eq!(key.to_hex(), HEX);
        let upper = Key::from_hex(&HEX.to_uppercase(), p).unwrap();
        assert_eq!(upper.bytes(), &want);
    }

    #[test]
    fn bad_hex_is_refused() {
        let p = Path::new("/etc/braid/key");
        let cases = [
            (String::new(), "expected 64 hex digits, found 0 characters"),
            (HEX[..62].to_string(), "expected 64 hex digits, found 62"),
            (format!("{HEX}00"), "expected 64 hex digits, found 66"),
            (format!("g{}", &HEX[1..]), "character 1 is not a hex digit"),
            (
                format!("{}z", &HEX[..63]),
                "character 64 is not a hex digit",
            ),
            (format!("{} {}", &HEX[..31], &HEX[32..]), "character 32 is"),
            (format!("{}é", &HEX[..62]), "character 63 is not"),
        ];
        for (text, msg) in cases {
            let err = Key::from_hex(&text, p).unwrap_err();
            assert!(matches!(&err, KeyError::Format(q, _) if q == p), "{err:?}");
            let shown = err.to_string();
            assert!(
                shown.starts_with("/etc/braid/key: not a braid key file: "),
                "{shown}"
            );
            assert!(shown.contains(msg), "{shown} lacks {msg}");
        }
    }

    #[test]
    fn load_reports_missing_and_malformed_files() {
        let tmp = TempPath::new();
        let err = Key::load(&tmp.0).unwrap_err();
        assert!(
            matches!(&err, KeyError::Io(_, e) if e.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(&tmp.0.display().to_string()));
        write_with_mode(&tmp.0, "not a key\n", 0o600);
        assert!(matches!(Key::load(&tmp.0), Err(KeyError::Format(..))));
        fs::write(&tmp.0, [0xffu8, 0xfe, 0x00]).unwrap();
        assert!(matches!(Key::load(&tmp.0), Err(KeyError::Format(..))));
        fs::write(&tmp.0, vec![b'a'; 10_000]).unwrap();
        assert!(matches!(Key::load(&tmp.0), Err(KeyError::Format(..))));
    }

    #[test]
    fn debug_hides_the_key() {
        let key = Key::from_hex(HEX, Path::new("k")).unwrap();
        assert_eq!(format!("{key:?}"), "Key(..)");
    }
}
