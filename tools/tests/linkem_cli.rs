//! `braid-linkem`'s command line: bad values are refused naming the flag, before any socket is
//! opened, and the control commands say which socket they could not reach. Needs no privileges.

use std::process::{Command, Output, Stdio};

fn linkem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid-linkem"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run braid-linkem")
}

/// Runs `args`, expects a failure and returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = linkem(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} was accepted: {err}");
    err
}

#[test]
fn bad_values_are_refused_naming_the_flag_and_the_value() {
    let run = ["run", "--path", "isp1=a1,b1"];
    for (flag, value, says) in [
        ("--delay", "5xs", "`5xs` is not a time"),
        ("--jitter", "isp1:sideways=1ms", "up or down"),
        ("--loss", "150%", "`150%` is more than 100%"),
        ("--loss", "1", "`1` is not a percentage"),
        ("--burst-loss", "1%", "`1%` is not a burst loss"),
        ("--burst-loss", "1%,0", "must be above 0"),
        ("--rate", "100", "`100` is not a rate"),
        ("--rate", "1kbit", "outside 8kbit to 100gbit"),
        ("--buffer", "11s", "longer than 10s"),
        ("--path", "isp2", "`isp2` is not a path"),
    ] {
        let err = refused(&[&run[..], &[flag, value]].concat());
        assert!(
            err.contains(&format!("'{flag} ")) && err.contains(says),
            "{flag} {value}: {err}"
        );
    }
}

#[test]
fn unknown_paths_are_refused_before_any_socket_is_opened() {
    let err = refused(&[
        "run",
        "--path",
        "isp1=nosuch0,nosuch1",
        "--delay",
        "isp3=5ms",
    ]);
    assert!(
        err.contains("--delay isp3: no path `isp3` (paths: isp1)"),
        "{err}"
    );
    let err = refused(&[
        "run",
        "--path",
        "x=nosuch0,nosuch1",
        "--path",
        "x=nosuch2,nosuch3",
    ]);
    assert!(err.contains("`x` named twice"), "{err}");
}

#[test]
fn control_commands_name_the_socket_they_cannot_reach() {
    let sock = "/nonexistent/braid-linkem.sock";
    for args in [
        vec!["show", "--control", sock],
        vec!["cut", "--control", sock, "isp1"],
        vec!["restore", "--control", sock],
        vec!["set", "--control", sock, "--delay", "1ms"],
    ] {
        let err = refused(&args);
        assert!(
            err.contains(&format!("control socket {sock}")),
            "{args:?}: {err}"
        );
    }
    let err = refused(&["set", "--control", sock]);
    assert!(err.contains("give at least one of --delay"), "{err}");
    let err = refused(&["cut", "--control", sock, "isp1:left"]);
    assert!(err.contains("up or down"), "{err}");
}
