//! Tunnel keys (docs/PROTOCOL.md, "Keys"): X25519 private and public
//! keys and optional pre-shared keys. Like `wg`, a key is written as the base64 (standard
//! alphabet, padded: 44 characters) of its 32 bytes; a key file holds that and a newline and
//! is readable by its owner only (mode 0600).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

/// Length of every key, in bytes.
pub const KEY_LEN: usize = 32;

/// Key files are tiny; anything much bigger is not a key file.
const MAX_FILE_LEN: u64 = 256;

/// This daemon's static X25519 private key; zeroed on drop, never shown by Debug.
pub struct PrivateKey(StaticSecret);

/// A peer's static X25519 public key; Display, Debug and serde use its base64 text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

/// An optional pre-shared key mixed into a peer's handshakes; zeroed on drop, never shown.
pub struct PresharedKey(Zeroizing<[u8; KEY_LEN]>);

/// Why a key could not be made, read or written.
#[derive(Debug)]
pub enum KeyError {
    /// The file could not be opened, read or written (empty path: the OS random source).
    Io(PathBuf, io::Error),
    /// The contents are not the base64 of 32 bytes.
    Format(PathBuf, String),
    /// The file is accessible by group or others; the mode bits are attached.
    Permissions(PathBuf, u32),
}

/// Why a text is not a key: not base64, or not 32 bytes. It never quotes the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseKeyError(String);

impl fmt::Display for ParseKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseKeyError {}

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

/// The 32 bytes whose base64 `text` is (surrounding whitespace ignored).
fn decode(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, ParseKeyError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ParseKeyError("empty".into()));
    }
    if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ParseKeyError(
            "64 hex digits: a tunnel v1 key; make a key pair with `braidctl genkey`".into(),
        ));
    }
    let decoded = Zeroizing::new(STANDARD.decode(text).map_err(|_| {
        ParseKeyError(
            "not base64 (a key is 44 characters of base64, as `braidctl genkey` writes)".into(),
        )
    })?);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if decoded.len() != KEY_LEN {
        return Err(ParseKeyError(format!(
            "base64 of {} bytes, not of {KEY_LEN}",
            decoded.len()
        )));
    }
    key.copy_from_slice(&decoded);
    Ok(key)
}

/// `bytes` as key text: base64 and no newline.
fn encode(bytes: &[u8; KEY_LEN]) -> Zeroizing<String> {
    Zeroizing::new(STANDARD.encode(bytes))
}

/// 32 bytes from the operating system's random source.
fn random() -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::getrandom(&mut bytes[..])
        .map_err(|e| KeyError::Io(PathBuf::new(), io::Error::other(e.to_string())))?;
    Ok(bytes)
}

/// The key in the file at `path`, refusing a file that group or others may access.
fn read_file(path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    let io_err = |e| KeyError::Io(path.to_path_buf(), e);
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(KeyError::Format(
            path.to_path_buf(),
            "not a regular file".into(),
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions(path.to_path_buf(), mode));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_FILE_LEN)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => {
                KeyError::Format(path.to_path_buf(), "not text".to_string())
            }
            _ => io_err(e),
        })?;
    decode(&text).map_err(|e| KeyError::Format(path.to_path_buf(), e.0))
}

/// Writes `bytes` as key text and a newline to a new file at `path` with mode 0600; never
/// overwrites an existing file, and leaves no half-written one behind.
fn write_new(path: &Path, bytes: &[u8; KEY_LEN]) -> Result<(), KeyError> {
    let io_err = |e| KeyError::Io(path.to_path_buf(), e);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err)?;
    let mut text = encode(bytes);
    text.push('\n');
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = fs::remove_file(path);
        return Err(io_err(e));
    }
    Ok(())
}

impl PrivateKey {
    /// Reads a private key file, refusing one that group or others may access.
    pub fn load(path: &Path) -> Result<PrivateKey, KeyError> {
        read_file(path).map(|bytes| PrivateKey(StaticSecret::from(*bytes)))
    }

    /// Writes a new random private key to a new file `path` (mode 0600, never overwriting):
    /// what `braidctl genkey` does.
    pub fn create_file(path: &Path) -> Result<PrivateKey, KeyError> {
        let bytes = random()?;
        write_new(path, &bytes)?;
        Ok(PrivateKey(StaticSecret::from(*bytes)))
    }

    /// Parses key text (surrounding whitespace ignored); `origin` names its source in errors,
    /// which never quote the key.
    pub fn from_base64(text: &str, origin: &Path) -> Result<PrivateKey, KeyError> {
        decode(text)
            .map(|bytes| PrivateKey(StaticSecret::from(*bytes)))
            .map_err(|e| KeyError::Format(origin.to_path_buf(), e.0))
    }

    /// The raw key.
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        self.0.as_bytes()
    }

    /// The public key that goes with this private key.
    pub fn public(&self) -> PublicKey {
        PublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

impl PublicKey {
    /// The public key with these bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The raw key.
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl FromStr for PublicKey {
    type Err = ParseKeyError;

    /// Parses base64 key text (surrounding whitespace ignored).
    fn from_str(text: &str) -> Result<PublicKey, ParseKeyError> {
        decode(text).map(|bytes| PublicKey(*bytes))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|e| serde::de::Error::custom(format!("not a public key: {e}")))
    }
}

impl PresharedKey {
    /// Reads a pre-shared key file, refusing one that group or others may access.
    pub fn load(path: &Path) -> Result<PresharedKey, KeyError> {
        read_file(path).map(PresharedKey)
    }

    /// Writes a new random pre-shared key to a new file `path` (mode 0600, never
    /// overwriting): what `braidctl genpsk` does.
    pub fn create_file(path: &Path) -> Result<PresharedKey, KeyError> {
        let bytes = random()?;
        write_new(path, &bytes)?;
        Ok(PresharedKey(bytes))
    }

    /// The raw key.
    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(..)")
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

    fn unhex(hex: &str) -> [u8; KEY_LEN] {
        core::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
    }

    /// Bytes 0, 1, …, 31.
    const COUNTING: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn public_key_of_the_rfc_7748_test_vector() {
        // RFC 7748 section 6.1: Alice's private and public keys.
        let private = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let public = unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let key = PrivateKey::from_base64(&STANDARD.encode(private), Path::new("k")).unwrap();
        assert_eq!(key.bytes(), &private);
        assert_eq!(key.public(), PublicKey::from_bytes(public));
        assert_eq!(
            key.public().to_string(),
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
        );
    }

    #[test]
    fn private_key_round_trips_through_a_file() {
        let tmp = TempPath::new();
        let key = PrivateKey::create_file(&tmp.0).unwrap();
        let meta = fs::metadata(&tmp.0).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&tmp.0).unwrap();
        assert_eq!(text.len(), 45);
        assert_eq!(text, format!("{}\n", STANDARD.encode(key.bytes())));
        let loaded = PrivateKey::load(&tmp.0).unwrap();
        assert_eq!(loaded.bytes(), key.bytes());
        assert_eq!(loaded.public(), key.public());
    }

    #[test]
    fn preshared_key_round_trips_through_a_file() {
        let tmp = TempPath::new();
        let key = PresharedKey::create_file(&tmp.0).unwrap();
        let meta = fs::metadata(&tmp.0).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(PresharedKey::load(&tmp.0).unwrap().bytes(), key.bytes());
        let other = TempPath::new();
        assert_ne!(
            PresharedKey::create_file(&other.0).unwrap().bytes(),
            key.bytes()
        );
    }

    #[test]
    fn refuses_to_overwrite() {
        let tmp = TempPath::new();
        write_with_mode(&tmp.0, "keep me\n", 0o600);
        for err in [
            PrivateKey::create_file(&tmp.0).unwrap_err(),
            PresharedKey::create_file(&tmp.0).unwrap_err(),
        ] {
            match &err {
                KeyError::Io(p, e) => {
                    assert_eq!(p, &tmp.0);
                    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(fs::read_to_string(&tmp.0).unwrap(), "keep me\n");
    }

    #[test]
    fn refuses_a_group_or_world_readable_file() {
        let tmp = TempPath::new();
        write_with_mode(&tmp.0, &format!("{COUNTING}\n"), 0o644);
        let err = PrivateKey::load(&tmp.0).unwrap_err();
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
            let err = PresharedKey::load(&tmp.0).unwrap_err();
            assert!(
                matches!(err, KeyError::Permissions(_, m) if m == mode),
                "{mode:o}"
            );
        }
        for mode in [0o600, 0o400] {
            fs::set_permissions(&tmp.0, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(PrivateKey::load(&tmp.0).unwrap().bytes()[31], 31);
            assert_eq!(PresharedKey::load(&tmp.0).unwrap().bytes()[31], 31);
        }
    }

    #[test]
    fn parses_base64_with_surrounding_whitespace() {
        let want: [u8; KEY_LEN] = core::array::from_fn(|i| i as u8);
        let key = PrivateKey::from_base64(&format!("  {COUNTING}\n\n"), Path::new("k")).unwrap();
        assert_eq!(key.bytes(), &want);
        let public: PublicKey = format!("{COUNTING}\n").parse().unwrap();
        assert_eq!(public.bytes(), &want);
        assert_eq!(public.to_string(), COUNTING);
        assert_eq!(format!("{public:?}"), format!("PublicKey({COUNTING})"));
    }

    #[test]
    fn bad_key_text_is_refused_without_quoting_it() {
        let cases = [
            (" \n".to_string(), "empty"),
            (COUNTING[..40].to_string() + "AA==", "base64 of 31 bytes"),
            (STANDARD.encode([1u8; 33]), "base64 of 33 bytes"),
            (COUNTING.trim_end_matches('=').to_string(), "not base64"),
            (format!("*{}", &COUNTING[1..]), "not base64"),
            (hex_of_counting(), "64 hex digits: a tunnel v1 key"),
        ];
        let p = Path::new("/etc/braid/private.key");
        for (text, msg) in cases {
            let err = text.parse::<PublicKey>().unwrap_err().to_string();
            assert!(err.contains(msg), "{err} lacks {msg}");
            let err = PrivateKey::from_base64(&text, p).unwrap_err();
            assert!(matches!(&err, KeyError::Format(q, _) if q == p), "{err:?}");
            let shown = err.to_string();
            assert!(
                shown.starts_with("/etc/braid/private.key: not a braid key file: "),
                "{shown}"
            );
            assert!(shown.contains(msg), "{shown} lacks {msg}");
            if text.len() > 8 {
                assert!(!shown.contains(&text[..8]), "{shown} quotes the key");
            }
        }
    }

    /// A v1 key file's text: 64 hex digits.
    fn hex_of_counting() -> String {
        (0..32u8).map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn load_reports_missing_and_malformed_files() {
        let tmp = TempPath::new();
        let err = PrivateKey::load(&tmp.0).unwrap_err();
        assert!(
            matches!(&err, KeyError::Io(_, e) if e.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(&tmp.0.display().to_string()));
        write_with_mode(&tmp.0, "not a key\n", 0o600);
        assert!(matches!(
            PrivateKey::load(&tmp.0),
            Err(KeyError::Format(..))
        ));
        fs::write(&tmp.0, [0xffu8, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            PrivateKey::load(&tmp.0),
            Err(KeyError::Format(..))
        ));
        fs::write(&tmp.0, vec![b'A'; 10_000]).unwrap();
        assert!(matches!(
            PrivateKey::load(&tmp.0),
            Err(KeyError::Format(..))
        ));
    }

    #[test]
    fn debug_hides_secret_keys() {
        let key = PrivateKey::from_base64(COUNTING, Path::new("k")).unwrap();
        assert_eq!(format!("{key:?}"), "PrivateKey(..)");
        let tmp = TempPath::new();
        let psk = PresharedKey::create_file(&tmp.0).unwrap();
        assert_eq!(format!("{psk:?}"), "PresharedKey(..)");
    }

    #[test]
    fn public_keys_go_through_serde_as_text() {
        let public: PublicKey = COUNTING.parse().unwrap();
        let json = serde_json::to_string(&public).unwrap();
        assert_eq!(json, format!("\"{COUNTING}\""));
        assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), public);
        let err = serde_json::from_str::<PublicKey>("\"abc\"").unwrap_err();
        assert!(
            err.to_string().contains("not a public key: not base64"),
            "{err}"
        );
    }
}
