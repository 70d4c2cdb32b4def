//! Valid configurations load into the values they spell out.

mod common;

use base64::Engine;
use braid_control::config::{Balance, BondMode, Config, Role, WeightMode};
use braid_control::key::{PrivateKey, PublicKey};
use braid_testkit::{EDGE_PRIVATE, EDGE_PUBLIC, HUB_PRIVATE, HUB_PUBLIC};
use common::{edit, Scratch, EDGE, EDGE2_PUBLIC, EDGE_KEY_FILE, HUB};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

#[test]
fn lab_edge_loads() {
    let scratch = Scratch::new();
    let config = scratch.load(EDGE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.role, Role::Edge);
    assert_eq!(config.private_key_file, scratch.dir.join(EDGE_KEY_FILE));
    assert_eq!(config.workers, 2);
    assert_eq!(config.first_core, None);
    assert_eq!(config.tunnel_port, 7420);
    assert_eq!(config.bond.mode, BondMode::Packet);
    assert_eq!(config.bond.balance, Balance::Packets);

    let names: Vec<&str> = config.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["lan0", "wan1", "wan2"]);
    assert_eq!(
        config.interfaces[1].address,
        "198.18.11.2/24".parse().unwrap()
    );
    assert!(config.interfaces.iter().all(|i| i.mtu == 1500));

    let hub = &config.peers[0];
    assert_eq!(hub.name, "hub");
    assert_eq!(hub.public_key, HUB_PUBLIC.parse::<PublicKey>().unwrap());
    assert_eq!(hub.preshared_key_file, None);
    assert_eq!(hub.allowed, ["0.0.0.0/0".parse().unwrap()]);
    assert_eq!(hub.weights, WeightMode::Manual);
    let isp2 = &hub.links[1];
    assert_eq!(isp2.name, "isp2");
    assert_eq!(isp2.interface, "wan2");
    assert_eq!(isp2.gateway, Some(Ipv4Addr::new(198, 18, 12, 1)));
    assert_eq!(
        isp2.remote,
        Some(SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 2), 7420))
    );
    assert_eq!(isp2.weight, 2);

    assert_eq!(config.rules[0].from, "198.18.1.0/24".parse().unwrap());
    assert_eq!(config.rules[0].table, "bond");
    let route = &config.routes[0];
    assert_eq!(
        (route.table.as_str(), route.peer.as_deref()),
        ("bond", Some("hub"))
    );
    assert_eq!((route.via, route.dev.as_deref()), (None, None));
}

#[test]
fn learned_weights_are_asked_for_per_peer() {
    let scratch = Scratch::new();
    let text = EDGE.replacen(
        "allowed = [\"0.0.0.0/0\"]",
        "allowed = [\"0.0.0.0/0\"]\nweights = \"auto\"",
        1,
    );
    let config = scratch.load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.peers[0].weights, WeightMode::Auto);
    // The configured weights stay: the start and the fallback.
    let w: Vec<u32> = config.peers[0].links.iter().map(|l| l.weight).collect();
    assert_eq!(w, [1, 2]);
}

#[test]
fn lab_hub_loads() {
    let scratch = Scratch::new();
    let config = scratch.load(HUB).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.role, Role::Hub);
    assert_eq!(config.workers, 1);
    assert_eq!(config.bond.mode, BondMode::Packet);
    assert_eq!(config.interfaces[0].mtu, 1500);
    assert_eq!(config.peers[0].links.len(), 2);
    let default = &config.routes[1];
    assert_eq!(default.table, "main");
    assert_eq!(default.dev.as_deref(), Some("wan0"));
    assert_eq!(default.via, Some(Ipv4Addr::new(203, 0, 113, 1)));
}

#[test]
fn hub_with_two_edges_loads() {
    let second = format!(
        r#"
[[peer]]
name = "edge2"
public_key = "{EDGE2_PUBLIC}"
allowed = ["198.18.2.0/24", "198.18.3.0/24"]

[[peer.link]]
name = "isp1"
interface = "wan0"
gateway = "203.0.113.1"
remote = "198.18.21.2:7420"
weight = 0

[[peer.link]]
name = "isp2"
interface = "wan0"
gateway = "203.0.113.1"
remote = "198.18.22.2:7420"
"#
    );
    let scratch = Scratch::new();
    let config = scratch
        .load(&format!("{HUB}{second}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.peers.len(), 2);
    // Link names are per peer; weight defaults to 1.
    assert_eq!(config.peers[1].links[1].name, "isp2");
    assert_eq!(config.peers[1].links[1].weight, 1);
}

#[test]
fn relative_key_files_resolve_against_the_config_directory() {
    let scratch = Scratch::new();
    let text = edit(
        HUB,
        "allowed = [",
        "preshared_key_file = \"psk/edge1\"\nallowed = [",
    );
    std::fs::create_dir(scratch.dir.join("psk")).unwrap();
    common::write_key(&scratch.dir.join("psk/edge1"), &[9; 32], 0o600);
    let config = scratch.load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.private_key_file, scratch.dir.join("hub.key"));
    assert_eq!(
        config.peers[0].preshared_key_file,
        Some(scratch.dir.join("psk/edge1"))
    );

    let absolute = scratch.dir.join(EDGE_KEY_FILE);
    let text = edit(
        EDGE,
        &format!("private_key_file = {EDGE_KEY_FILE:?}"),
        &format!("private_key_file = {:?}", absolute.display().to_string()),
    );
    let config = Config::parse(&text, Path::new("/nonexistent/braidd.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.private_key_file, absolute);
}

#[test]
fn parse_reads_key_files_next_to_its_origin() {
    let scratch = Scratch::new();
    let config = Config::parse(EDGE, &scratch.config_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.private_key_file, scratch.dir.join(EDGE_KEY_FILE));
    // The same text named as a file elsewhere finds no key file.
    let err = Config::parse(EDGE, Path::new("/nonexistent/braidd.toml")).unwrap_err();
    assert_eq!(err.problems()[0].field.as_deref(), Some("private_key_file"));
}

#[test]
fn the_lab_key_pairs_match() {
    for (private, public) in [(EDGE_PRIVATE, EDGE_PUBLIC), (HUB_PRIVATE, HUB_PUBLIC)] {
        let text = base64::engine::general_purpose::STANDARD.encode(private);
        let key = PrivateKey::from_base64(&text, Path::new("lab")).unwrap();
        assert_eq!(key.public().to_string(), public);
    }
}

#[test]
fn interface_index_finds_interfaces_by_name() {
    let scratch = Scratch::new();
    let config = scratch.load(EDGE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.interface_index("lan0"), Some(0));
    assert_eq!(config.interface_index("wan2"), Some(2));
    assert_eq!(config.interface_index("wan3"), None);
    assert_eq!(config.interface_index(""), None);
}

#[test]
fn limits_are_inclusive() {
    let scratch = Scratch::new();
    let texts = [
        edit(EDGE, "workers = 2", "workers = 64"),
        edit(EDGE, "name = \"lan0\"\n", "name = \"lan0\"\nmtu = 576\n"),
        edit(EDGE, "name = \"lan0\"\n", "name = \"lan0\"\nmtu = 9000\n"),
        edit(EDGE, "weight = 2", "weight = 1000"),
        edit(EDGE, "weight = 2", "weight = 0"),
        edit(EDGE, "\"lan0\"", "\"lan456789012345\""),
        // A point-to-point /31 uplink: both addresses are hosts.
        edit(EDGE, "198.18.11.2/24", "198.18.11.2/31").replace("198.18.11.1", "198.18.11.3"),
    ];
    for text in &texts {
        assert_ne!(text, EDGE);
        scratch.load(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

#[test]
fn redundancy_rules_load() {
    use braid_control::config::{Ports, Protocol};
    let text = EDGE.to_string()
        + "\n[[bond.redundant]]\nprotocol = \"udp\"\nports = \"3478-3481\"\n\
           \n[[bond.redundant]]\ndscp = 46\n\n[[bond.redundant]]\nprotocol = \"tcp\"\nports = 22\n";
    let config = Scratch::new().load(&text).unwrap_or_else(|e| panic!("{e}"));
    let r = &config.bond.redundant;
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].protocol, Some(Protocol::Udp));
    assert_eq!(
        r[0].ports.as_ref().map(Ports::bounds),
        Some(Ok((3478, 3481)))
    );
    assert_eq!((r[1].protocol, r[1].dscp), (None, Some(46)));
    assert_eq!(r[2].ports.as_ref().map(Ports::bounds), Some(Ok((22, 22))));
    assert!(Scratch::new().load(EDGE).unwrap().bond.redundant.is_empty());
}
