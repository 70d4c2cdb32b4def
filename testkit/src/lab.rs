//! The rule for tests that need root or network namespaces: they run where they can; where
//! they cannot, they fail if `CI` (any non-empty value) or `BRAID_LAB=1` is set, and are
//! otherwise skipped with a `SKIPPED` line on stderr.
//!
//! The line is written to the process's stderr directly: libtest captures only `print!` and
//! `eprint!`, so plain `cargo test` shows it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Effective uid 0, e.g. to run a child as another user.
    Root,
    /// Effective uid 0 and `ip netns add` working.
    Namespaces,
}

/// Whether the calling test can run. When it cannot: panics if the environment asks for
/// the lab tests (`CI` or `BRAID_LAB=1`), else prints `SKIPPED <file>::<test>: ...` to
/// stderr and returns false.
#[track_caller]
pub fn can_run(need: Need) -> bool {
    let Err(why) = check(need) else {
        return true;
    };
    let file = std::panic::Location::caller().file();
    let stem = Path::new(file).file_stem().and_then(|s| s.to_str());
    let thread = std::thread::current();
    let test = format!(
        "{}::{}",
        stem.unwrap_or(file),
        thread.name().unwrap_or("main")
    );
    let what = match need {
        Need::Root => "root",
        Need::Namespaces => "root (network namespaces)",
    };
    if let Some(var) = required_by() {
        panic!("{test} needs {what}, but {why}; it must run because {var} is set");
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: needs {what}, but {why}; set BRAID_LAB=1 or CI to make this a failure"
    );
    false
}

/// The variable that makes an unrunnable lab test a failure, if set.
fn required_by() -> Option<&'static str> {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        Some("CI")
    } else if std::env::var_os("BRAID_LAB").is_some_and(|v| v == "1") {
        Some("BRAID_LAB=1")
    } else {
        None
    }
}

/// Why `need` is not met, if it is not.
fn check(need: Need) -> Result<(), String> {
    let euid = effective_uid()?;
    if euid != 0 {
        return Err(format!("the effective uid is {euid}"));
    }
    match need {
        Need::Root => Ok(()),
        Need::Namespaces => {
            static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
            PROBE.get_or_init(probe_namespaces).clone()
        }
    }
}

/// The effective uid, from `/proc/self/status`.
fn effective_uid() -> Result<u32, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status is unreadable: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .ok_or_else(|| "/proc/self/status shows no effective uid".into())
}

/// Adds and deletes a namespace of this process's own name: what every lab test does first.
fn probe_namespaces() -> Result<(), String> {
    let name = format!("braid-probe-{}", std::process::id());
    ip(&["netns", "add", &name])?;
    ip(&["netns", "delete", &name])
}

/// Runs `ip args`; the command and its stderr when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let line = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("`{line}` did not start: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!("`{line}` failed: {}", err.trim()))
}
