//! What braid's tests share: the lab-shaped configs (the files in `dataplane/tests/data/`),
//! the MACs and key pairs the tests give the lab's machines, and [`lab`], the rule for tests that
//! need root or network namespaces. This crate depends on no braid crate, so that
//! `braid-dataplane`'s own unit tests can use it.
//!
//! The configs are shaped like the lab `tools/braid-lab` builds. An edge config names
//! `private_key_file = "edge.key"` and the hub's public key [`HUB_PUBLIC`]; a hub config names
//! `"hub.key"` and the edge's [`EDGE_PUBLIC`]. Tests that load one from a file write that key
//! file next to it with [`write_key_file`].

pub mod lab;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The lab edge: LAN lan0 198.18.1.1/24, uplinks wan1 and wan2 (gateways 198.18.11.1 and
/// 198.18.12.1) to the hub at 203.0.113.2:7420, weights 1:2, packet mode, the LAN into the bond.
pub const EDGE: &str = include_str!("../../dataplane/tests/data/edge.toml");
/// [`EDGE`] with two workers.
pub const EDGE_WORKERS2: &str = include_str!("../../dataplane/tests/data/edge-workers2.toml");
/// [`EDGE`] with MTU 1600 on its uplinks, so that full-size LAN frames fit in the tunnel.
pub const EDGE_MTU1600: &str = include_str!("../../dataplane/tests/data/edge-mtu1600.toml");
/// The lab hub: wan0 203.0.113.2/28 (gateway 203.0.113.1), the edge's LAN 198.18.1.0/24
/// behind the bond, the rest to the internet.
pub const HUB: &str = include_str!("../../dataplane/tests/data/hub.toml");
/// [`HUB`] with MTU 1600 on wan0.
pub const HUB_MTU1600: &str = include_str!("../../dataplane/tests/data/hub-mtu1600.toml");
/// [`HUB`] masquerading the edge's LAN on wan0.
pub const HUB_MASQUERADE: &str = include_str!("../../dataplane/tests/data/hub-masquerade.toml");
/// [`HUB`] on the loopback interface, for `braidd --check` on any machine.
pub const HUB_LOOPBACK: &str = include_str!("../../dataplane/tests/data/hub-loopback.toml");

/// The lab edge's static private key (in the configs' `edge.key`).
pub const EDGE_PRIVATE: [u8; 32] = [1; 32];
/// The public key of [`EDGE_PRIVATE`], in base64 as the configs write it.
pub const EDGE_PUBLIC: &str = "pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk=";
/// The lab hub's static private key (in the configs' `hub.key`).
pub const HUB_PRIVATE: [u8; 32] = [2; 32];
/// The public key of [`HUB_PRIVATE`], in base64 as the configs write it.
pub const HUB_PUBLIC: &str = "zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk=";
/// The edge's MACs, in the order of its interfaces: lan0, wan1, wan2.
pub const EDGE_MACS: [[u8; 6]; 3] = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2]];
/// The hub's wan0 MAC.
pub const HUB_MAC: [u8; 6] = [2, 0, 0, 0, 2, 0];
/// The LAN host's MAC.
pub const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
/// The edge's gateway on wan1 (198.18.11.1).
pub const GW1_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
/// The edge's gateway on wan2 (198.18.12.1).
pub const GW2_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x12];
/// The hub's gateway (203.0.113.1).
pub const HUB_GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];

/// Writes `key` as a key file at `path` (base64 and a newline, mode 0600), replacing any file
/// there: e.g. [`EDGE_PRIVATE`] as the `edge.key` an edge config names.
pub fn write_key_file(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
    std::fs::write(path, format!("{}\n", STANDARD.encode(key)))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Writes the lab's private key files into `dir`: `edge.key` ([`EDGE_PRIVATE`]) and `hub.key`
/// ([`HUB_PRIVATE`]), as the lab configs name them.
pub fn write_lab_keys(dir: &Path) -> std::io::Result<()> {
    write_key_file(&dir.join("edge.key"), &EDGE_PRIVATE)?;
    write_key_file(&dir.join("hub.key"), &HUB_PRIVATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_hold_base64_readable_by_the_owner_only() {
        let path = std::env::temp_dir().join(format!("braid-testkit-{}.key", std::process::id()));
        write_key_file(&path, &EDGE_PRIVATE).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(text, "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n");
        assert_eq!(mode & 0o777, 0o600);
    }
}
