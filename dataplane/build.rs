//! Compiles braid's XDP program (`bpf/braid_xdp.c`) with clang into `$OUT_DIR/braid_xdp.o`,
//! which `io::prog` embeds. clang comes from scripts/deps, as for libxdp's own programs.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/braid_xdp.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=BRAID_BPF_CLANG");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join("braid_xdp.o");
    let clang = std::env::var("BRAID_BPF_CLANG").unwrap_or_else(|_| "clang".to_owned());
    let status = Command::new(&clang)
        .args([
            "-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-c", src, "-o",
        ])
        .arg(&obj)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {clang} to build {src} (scripts/deps installs it): {e}")
        });
    assert!(status.success(), "{clang} failed to build {src}");
}
