//! The fuzz targets' inputs replayed with plain `cargo test`: the checked-in corpus
//! (`fuzz/corpus/<target>/`) and the inputs that once broke something
//! (`fuzz/regressions/<target>/`) run through the same harness the fuzzers run,
//! with its checks; the seeds are current and reach what each was made for.
//!
//! `BRAID_WRITE_SEEDS=1 cargo test -p braid-dataplane --test hostile_corpus` rewrites the seeds.

#[path = "../../fuzz/src/harness/mod.rs"]
mod harness;

use braid_dataplane::stats::DropReason;
use harness::{config, control, handshake, pipeline, seeds, tunnel, TARGETS};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn seed(name: &str) -> Vec<u8> {
    seeds::all()
        .into_iter()
        .find(|(_, n, _)| *n == name)
        .map(|(_, _, b)| b)
        .unwrap_or_else(|| panic!("no seed {name}"))
}

/// Files of a directory, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn seeds_are_checked_in_and_current() {
    let all = seeds::all();
    let write = std::env::var_os("BRAID_WRITE_SEEDS").is_some();
    let mut stale = Vec::new();
    for (target, name, bytes) in &all {
        let path = fuzz_dir()
            .join("corpus")
            .join(target)
            .join(format!("seed-{name}"));
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
        } else if std::fs::read(&path).ok().as_ref() != Some(bytes) {
            stale.push(path.display().to_string());
        }
    }
    for target in TARGETS {
        for f in files(&fuzz_dir().join("corpus").join(target)) {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(seed) = name.strip_prefix("seed-") {
                if !all.iter().any(|(t, n, _)| *t == target && *n == seed) {
                    stale.push(format!("{} (no longer generated)", f.display()));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "seeds differ from fuzz/src/harness/seeds.rs; rewrite them with \
         BRAID_WRITE_SEEDS=1 cargo test -p braid-dataplane --test hostile_corpus:\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_corpus_and_past_crashes_replay_cleanly() {
    let mut failed = Vec::new();
    let mut ran = 0;
    for target in TARGETS {
        let dirs = [
            fuzz_dir().join("corpus").join(target),
            fuzz_dir().join("regressions").join(target),
        ];
        for file in dirs.iter().flat_map(|d| files(d)) {
            let data = std::fs::read(&file).unwrap();
            ran += 1;
            if catch_unwind(AssertUnwindSafe(|| harness::run(target, &data))).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(ran >= seeds::all().len(), "only {ran} inputs replayed");
    assert!(
        failed.is_empty(),
        "inputs that fail:\n{}",
        failed.join("\n")
    );
}

/// The pipeline targets lend each input a snapshot earlier inputs ran on (its sessions
/// made anew from the same keys): every input must still run as on a daemon just started,
/// or the fuzzer's findings would not reproduce alone.
#[test]
fn a_pipeline_input_runs_after_others_as_on_a_fresh_daemon() {
    type Run = fn(&[u8]) -> pipeline::Report;
    for (target, run) in [("edge", pipeline::edge as Run), ("hub", pipeline::hub)] {
        let inputs: Vec<Vec<u8>> = ["corpus", "regressions"]
            .iter()
            .flat_map(|d| files(&fuzz_dir().join(d).join(target)))
            .map(|f| std::fs::read(f).unwrap())
            .collect();
        assert!(inputs.len() >= 5, "{target}: {} inputs", inputs.len());
        let fresh: Vec<pipeline::Report> = inputs
            .iter()
            .map(|d| {
                pipeline::forget_snapshots();
                run(d)
            })
            .collect();
        // Twice over, backwards: each input runs after all the others.
        for round in 0..2 {
            for (i, (d, want)) in inputs.iter().zip(&fresh).enumerate().rev() {
                assert_eq!(&run(d), want, "{target} input {i}, round {round}");
            }
        }
    }
}

#[test]
fn edge_seeds_reach_what_they_were_made_for() {
    let r = pipeline::edge(&seed("lan-udp-into-the-bond"));
    assert_eq!((r.link_tx, r.sent[1] + r.sent[2]), (2, 2), "{r:?}");
    let r = pipeline::edge(&seed("tunnel-down-to-the-lan-and-replayed"));
    assert_eq!(r.link_rx, 2, "{r:?}");
    assert_eq!(r.drops_of(DropReason::Replayed), 1, "{r:?}");
    assert!(r.sent[0] >= 2, "{r:?}");
    let r = pipeline::edge(&seed("tunnel-probe-and-reply"));
    // The probe is answered on isp1; the stray reply is taken and changes nothing.
    assert_eq!((r.local, r.link_rx, r.sent[1]), (2, 0, 1), "{r:?}");
    let r = pipeline::edge(&seed("unresolved-lan-host-waits-then-expires"));
    assert_eq!(r.drops_of(DropReason::NeighborUnresolved), 2, "{r:?}");
    let r = pipeline::edge(&seed("bypass-masqueraded-on-isp1-and-back"));
    assert_eq!(
        (r.nat_created, r.sent[1], r.sent[0], r.link_tx),
        (1, 1, 2, 0),
        "{r:?}"
    );
    assert_eq!(r.drops_of(DropReason::NeighborUnresolved), 0, "{r:?}");
    let r = pipeline::edge(&seed("ttl-exceeded-and-too-big"));
    assert_eq!(r.drops_of(DropReason::TtlExceeded), 1, "{r:?}");
    assert_eq!(r.drops_of(DropReason::TooBig), 1, "{r:?}");
}

#[test]
fn hub_seeds_reach_what_they_were_made_for() {
    let r = pipeline::hub(&seed("udp-masqueraded-out-and-back"));
    assert_eq!(
        (r.nat_created, r.link_rx, r.link_tx, r.sent[0]),
        (1, 1, 1, 2),
        "{r:?}"
    );
    let r = pipeline::hub(&seed("spoofed-inner-source-and-replay"));
    assert_eq!(r.drops_of(DropReason::Spoofed), 1, "{r:?}");
    assert_eq!(r.drops_of(DropReason::Replayed), 1, "{r:?}");
    let r = pipeline::hub(&seed("table-full-icmp-narrow-ports"));
    assert_eq!(r.nat_created, 16, "{r:?}");
    assert_eq!(r.drops_of(DropReason::NatHostLimit), 64, "{r:?}");
    let r = pipeline::hub(&seed("hairpin-translated"));
    assert_eq!(r.drops_of(DropReason::NatHairpin), 0, "{r:?}");
    assert_eq!(
        r.link_tx, 1,
        "the hairpinned packet returns into the bond: {r:?}"
    );
    let r = pipeline::hub(&seed("two-workers-hand-off"));
    assert_eq!((r.nat_created, r.link_tx), (1, 1), "{r:?}");
    let r = pipeline::hub(&seed("second-edge-own-key"));
    assert_eq!((r.link_rx, r.nat_created), (1, 1), "{r:?}");
    assert_eq!(
        r.drops_of(DropReason::Spoofed),
        1,
        "edge2 may not send edge1's addresses"
    );
    let r = pipeline::hub(&seed("sessions-expire"));
    assert_eq!(
        r.drops_of(DropReason::NatNoSession) + r.drops_of(DropReason::LocalUnsupported),
        1
    );
}

#[test]
fn tunnel_control_and_config_seeds_reach_what_they_were_made_for() {
    for name in [
        "hub-flip-link-id",
        "hub-flip-receiver",
        "hub-flip-tag",
        "hub-flip-counter",
    ] {
        // One flipped bit, and the message cut by one byte: both refused.
        let o = tunnel::tunnel(&seed(name));
        assert_eq!((o.opened, o.refused), (1, 2), "{name}: {o:?}");
    }
    // Refused under both ciphers.
    assert_eq!(tunnel::tunnel(&seed("arbitrary-message")).refused, 2);
    // A message sealed under the harness key with ChaCha20-Poly1305, as a fuzzer may learn
    // its tag from the comparison: it opens, and seals back to itself.
    let learned = fuzz_dir().join("regressions/tunnel/sealed-under-the-harness-key");
    let o = tunnel::tunnel(&std::fs::read(learned).unwrap());
    assert_eq!((o.opened, o.refused), (1, 1), "{o:?}");
    let a = control::control(&seed("set-weights"));
    assert_eq!((a.changed, a.refused), (1, 0));
    let a = control::control(&seed("set-weights-refused"));
    assert_eq!((a.changed, a.refused), (0, 1));
    let a = control::control(&seed("link-down-up"));
    assert_eq!(
        (a.changed, a.refused),
        (2, 1),
        "the last link may not go down"
    );
    let a = control::control(&seed("routes-and-rules"));
    assert_eq!((a.changed, a.refused), (4, 0));
    let a = control::control(&seed("malformed"));
    assert_eq!(a.decoded, 0);
    assert_eq!(control::control(&seed("reload")).changed, 1);
    assert_eq!(config::config(&seed("edge")), config::Parsed::Running);
    assert_eq!(
        config::config(&seed("hub-masquerade-two-edges")),
        config::Parsed::Running
    );
    for bad in [
        "weight-out-of-range",
        "missing-field",
        "syntax-error",
        "unknown-key-and-bad-address",
    ] {
        assert_eq!(config::config(&seed(bad)), config::Parsed::Refused, "{bad}");
    }
}

#[test]
fn handshake_seeds_reach_what_they_were_made_for() {
    for name in [
        "initiation-shaped-forgery",
        "initiation-truncated",
        "response-shaped-forgery",
    ] {
        let o = handshake::handshake(&seed(name));
        assert_eq!(o, handshake::Outcome::default(), "{name}");
    }
    // The genuine exchange: one answer, a session at each end.
    let o = handshake::handshake(&seed("exchange-genuine"));
    assert_eq!((o.answered, o.sessions, o.refused), (1, 2, 0), "{o:?}");
    // Also a forged response naming the handshake under way: refused before the Noise
    // message (mac1), the handshake waits on and the genuine response makes it.
    for name in [
        "exchange-initiation-flipped-mac1",
        "exchange-initiation-cut",
        "exchange-response-flipped-receiver",
        "exchange-response-flipped-ephemeral",
    ] {
        let o = handshake::handshake(&seed(name));
        assert_eq!(
            (o.answered, o.sessions, o.refused),
            (1, 2, 1),
            "{name}: {o:?}"
        );
    }
}
