//! Errors found by validating a decoded configuration. Each names its field and line, and
//! all of a file's problems are reported together.

mod common;

use std::os::unix::fs::PermissionsExt;

use braid_control::config::InterfaceAddress;
use braid_testkit::{EDGE_PUBLIC, HUB_PUBLIC};
use common::{
    assert_problem, edit, edit_nth, line_of, only_problem, refuse, write_key, Scratch, EDGE,
    EDGE2_PUBLIC, EDGE_KEY_FILE, HUB,
};

/// `text` without the part from `start` (inclusive) up to `end` (exclusive; or to the end).
fn cut(text: &str, start: &str, end: Option<&str>) -> String {
    let from = text.find(start).expect("start marker");
    let to = end.map_or(text.len(), |e| {
        from + text[from..].find(e).expect("end marker")
    });
    format!("{}{}", &text[..from], &text[to..])
}

/// A second edge for the hub fixture, with public key `key`.
fn second_edge(name: &str, key: &str) -> String {
    format!(
        r#"
[[peer]]
name = "{name}"
public_key = "{key}"
allowed = ["198.18.2.0/24"]

[[peer.link]]
name = "isp1"
interface = "wan0"
gateway = "203.0.113.1"
remote = "198.18.21.2:7420"
"#
    )
}

#[test]
fn workers_out_of_range() {
    for workers in [0, 65, 1000] {
        let text = edit(EDGE, "workers = 2", &format!("workers = {workers}"));
        let p = only_problem(&refuse(&text), "workers", "1..=64");
        assert_eq!(p.line, Some(4));
        assert!(p.message.contains(&format!("got {workers}")));
    }
}

#[test]
fn tunnel_port_zero() {
    let text = edit(EDGE, "workers = 2", "tunnel_port = 0");
    let p = only_problem(&refuse(&text), "tunnel_port", "must not be 0");
    assert_eq!(p.line, Some(4));
}

#[test]
fn tunnel_port_with_no_room_for_a_port_per_worker() {
    // Two workers listen on 65535 and 65536: refused; on 65534 and 65535: fine.
    let text = edit(EDGE, "workers = 2", "workers = 2\ntunnel_port = 65535");
    let p = only_problem(&refuse(&text), "tunnel_port", "a port per worker");
    assert!(p.message.contains("up to 65536"), "{}", p.message);
    let fits = edit(EDGE, "workers = 2", "workers = 2\ntunnel_port = 65534");
    assert!(Scratch::new().load(&fits).is_ok());
}

#[test]
fn keepalive_out_of_range() {
    let text = edit(EDGE, "workers = 2", "workers = 2\nkeepalive = 3601");
    only_problem(
        &refuse(&text),
        "keepalive",
        "0..=3600 seconds (0: none), got 3601",
    );
    let off = edit(EDGE, "workers = 2", "workers = 2\nkeepalive = 0");
    assert_eq!(Scratch::new().load(&off).unwrap().keepalive, 0);
}

#[test]
fn nap_out_of_range() {
    let text = edit(EDGE, "workers = 2", "workers = 2\nnap_us = 1001");
    only_problem(
        &refuse(&text),
        "nap_us",
        "0..=1000 microseconds (0: no nap), got 1001",
    );
    assert_eq!(Scratch::new().load(EDGE).unwrap().nap_us, 200);
    let off = edit(EDGE, "workers = 2", "workers = 2\nnap_us = 0");
    assert_eq!(Scratch::new().load(&off).unwrap().nap_us, 0);
}

#[test]
fn interface_name_empty() {
    let text = edit(EDGE, "\"lan0\"", "\"\"");
    let p = only_problem(&refuse(&text), "interface[0].name", "must not be empty");
    assert_eq!(p.line, Some(8));
}

#[test]
fn interface_name_too_long() {
    let text = edit(EDGE, "\"lan0\"", "\"lan4567890123456\"");
    let p = only_problem(&refuse(&text), "interface[0].name", "is 16 bytes long");
    assert_eq!(p.line, Some(8));
}

#[test]
fn interface_name_with_characters_the_kernel_refuses() {
    for name in ["lan/0", "lan:0", "lan 0", ".."] {
        let text = edit(EDGE, "\"lan0\"", &format!("{name:?}"));
        only_problem(&refuse(&text), "interface[0].name", "kernel");
    }
}

#[test]
fn interface_name_duplicate() {
    let text = edit(EDGE, "name = \"wan2\"", "name = \"wan1\"");
    let err = refuse(&text);
    assert_problem(
        &err,
        "interface[2].name",
        Some(14),
        "interface wan1 is defined twice (first as interface[1])",
    );
}

#[test]
fn interface_mtu_out_of_range() {
    for mtu in [0, 575, 9001] {
        let text = edit(
            EDGE,
            "name = \"wan1\"\n",
            &format!("name = \"wan1\"\nmtu = {mtu}\n"),
        );
        let p = only_problem(&refuse(&text), "interface[1].mtu", "576..=9000");
        assert_eq!(p.line, Some(line_of(&text, "mtu = ")));
        assert!(p.message.starts_with("interface wan1: "), "{}", p.message);
    }
}

#[test]
fn interface_address_slash_32_is_refused() {
    let text = edit(EDGE, "198.18.1.1/24", "198.18.1.1/32");
    let p = only_problem(&refuse(&text), "interface[0].address", "/32");
    assert_eq!(p.line, Some(9));
}

#[test]
fn interface_address_must_be_a_host() {
    for (address, why) in [
        ("198.18.1.0/24", "network address of 198.18.1.0/24"),
        ("198.18.1.255/24", "broadcast address of 198.18.1.0/24"),
        ("127.0.0.1/8", "not a unicast host address"),
        ("224.0.0.1/24", "not a unicast host address"),
        ("0.0.0.0/8", "not a unicast host address"),
    ] {
        let text = edit(EDGE, "198.18.1.1/24", address);
        let p = only_problem(&refuse(&text), "interface[0].address", why);
        assert_eq!(p.line, Some(9));
    }
}

#[test]
fn a_kernel_address_needs_a_shared_interface() {
    let text = edit(EDGE, "address = \"198.18.11.2/24\"", "address = \"kernel\"");
    let p = only_problem(
        &refuse(&text),
        "interface[1].address",
        "needs mode = \"shared\"",
    );
    assert_eq!(p.line, Some(line_of(&text, "\"kernel\"")));
    // Shared, it is taken, and what depends on the address waits for it: the gateway of isp1
    // lies in no known prefix yet, and is checked once the kernel gives one.
    let text = edit(
        EDGE,
        "address = \"198.18.11.2/24\"",
        "address = \"kernel\"\nmode = \"shared\"",
    );
    let c: braid_control::config::Config = toml::from_str(&text).unwrap();
    c.validate().expect("valid");
    assert_eq!(c.interfaces[1].address, InterfaceAddress::Kernel(None));
}

#[test]
fn the_earliest_scheduler_needs_packet_mode_and_each_links_rate() {
    let text = edit(EDGE, "[bond]\n", "[bond]\nscheduler = \"earliest\"\n");
    let err = refuse(&text);
    assert_problem(&err, "peer[0].link[0].rate", None, "needs each link's rate");
    assert_problem(&err, "peer[0].link[1].rate", None, "needs each link's rate");
    let text = edit(&text, "weight = 1\n", "weight = 1\nrate = \"100mbit\"\n");
    let text = edit(&text, "weight = 2\n", "weight = 2\nrate = \"200mbit\"\n");
    let c: braid_control::config::Config = toml::from_str(&text).unwrap();
    c.validate().expect("valid with both rates");
    assert_eq!(c.peers[0].links[1].rate.map(|r| r.bps()), Some(200_000_000));
    let flow = edit(&text, "mode = \"packet\"", "mode = \"flow\"");
    only_problem(&refuse(&flow), "bond.scheduler", "needs mode = \"packet\"");
    let bad = edit(&text, "\"100mbit\"", "\"100mbps\"");
    only_problem(&refuse(&bad), "peer[0].link[0].rate", "unit");
}

#[test]
fn no_interface_at_all() {
    let text = format!(
        "role = \"hub\"\nprivate_key_file = \"hub.key\"\n{}",
        second_edge("edge2", EDGE2_PUBLIC)
    );
    let err = refuse(&text);
    assert_problem(&err, "interface", None, "no [[interface]]");
    assert_problem(
        &err,
        "peer[0].link[0].interface",
        Some(11),
        "wan0 is not defined",
    );
}

#[test]
fn peer_name_duplicate() {
    let text = format!("{HUB}{}", second_edge("edge1", EDGE2_PUBLIC));
    let err = refuse(&text);
    let p = only_problem(
        &err,
        "peer[1].name",
        "peer edge1 is defined twice (first as peer[0])",
    );
    assert_eq!(p.line, Some(line_of(&text, EDGE2_PUBLIC) - 1));
}

#[test]
fn peer_name_empty() {
    let text = format!("{HUB}{}", second_edge("", EDGE2_PUBLIC));
    only_problem(&refuse(&text), "peer[1].name", "must not be empty");
}

#[test]
fn peer_public_key_duplicate() {
    let text = format!("{HUB}{}", second_edge("edge2", EDGE_PUBLIC));
    let err = refuse(&text);
    let p = only_problem(
        &err,
        "peer[1].public_key",
        "peer edge2: public_key is already that of peer edge1 (peer[0])",
    );
    assert_eq!(p.line, Some(line_of(&text, "name = \"edge2\"") + 1));
}

#[test]
fn peer_public_key_is_own_public_key() {
    let text = edit(EDGE, HUB_PUBLIC, EDGE_PUBLIC);
    let p = only_problem(&refuse(&text), "peer[0].public_key", "this daemon's own");
    assert_eq!(p.line, Some(line_of(&text, "public_key")));
}

#[test]
fn private_key_file_missing() {
    let text = edit(EDGE, &format!("{EDGE_KEY_FILE:?}"), "\"absent.key\"");
    let scratch = Scratch::new();
    let err = scratch.load(&text).unwrap_err();
    let p = only_problem(&err, "private_key_file", "No such file");
    assert_eq!(p.line, Some(3));
    // The message names the file as resolved against the config's directory.
    let resolved = scratch.dir.join("absent.key");
    assert!(
        p.message.starts_with(&format!("{}: ", resolved.display())),
        "{}",
        p.message
    );
}

#[test]
fn private_key_file_is_a_directory() {
    let text = edit(EDGE, &format!("{EDGE_KEY_FILE:?}"), "\".\"");
    only_problem(&refuse(&text), "private_key_file", "not a regular file");
}

#[test]
fn private_key_file_readable_by_group_is_refused_naming_it() {
    let scratch = Scratch::new();
    let key = scratch.dir.join(EDGE_KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = scratch.load(EDGE).unwrap_err();
    let p = only_problem(&err, "private_key_file", "readable by group/others");
    assert_eq!(
        p.message,
        format!(
            "{}: readable by group/others (mode 0640); chmod 600 it",
            key.display()
        )
    );
    assert_eq!(p.line, Some(3));
}

#[test]
fn private_key_file_not_a_key() {
    let scratch = Scratch::new();
    let key = scratch.dir.join(EDGE_KEY_FILE);
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let err = scratch.load(EDGE).unwrap_err();
    only_problem(
        &err,
        "private_key_file",
        "not a braid key file: 64 hex digits: a tunnel v1 key",
    );
}

#[test]
fn preshared_key_files_are_read_and_checked() {
    let scratch = Scratch::new();
    let text = edit(
        HUB,
        "allowed = [",
        "preshared_key_file = \"edge1.psk\"\nallowed = [",
    );
    let err = scratch.load(&text).unwrap_err();
    let p = only_problem(&err, "peer[0].preshared_key_file", "peer edge1: ");
    assert!(
        p.message.contains("edge1.psk: No such file"),
        "{}",
        p.message
    );
    assert_eq!(p.line, Some(line_of(&text, "edge1.psk")));

    let psk = scratch.dir.join("edge1.psk");
    write_key(&psk, &[9; 32], 0o604);
    let err = scratch.load(&text).unwrap_err();
    let p = only_problem(&err, "peer[0].preshared_key_file", "(mode 0604)");
    assert!(
        p.message.contains(&psk.display().to_string()),
        "{}",
        p.message
    );

    std::fs::set_permissions(&psk, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = scratch.load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.peers[0].preshared_key_file.as_deref(),
        Some(psk.as_path())
    );
}

#[test]
fn remote_is_required_on_an_edge() {
    let text = edit_nth(EDGE, "remote = \"203.0.113.2:7420\"\n", 1, "");
    let p = only_problem(
        &refuse(&text),
        "peer[0].link[1].remote",
        "link isp2: an edge must name the hub's endpoint",
    );
    assert_eq!(p.line, Some(line_of(&text, "name = \"isp2\"") - 1));
}

#[test]
fn remote_is_optional_on_a_hub() {
    let text = HUB
        .replace("remote = \"198.18.11.2:7420\"\n", "")
        .replace("remote = \"198.18.12.2:7420\"\n", "");
    assert!(!text.contains("remote"));
    let scratch = Scratch::new();
    let config = scratch.load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.peers[0].links.iter().all(|l| l.remote.is_none()));
    // Without a gateway too: the hub answers where the edge's packets come from.
    let text = text.replace("gateway = \"203.0.113.1\"\n", "");
    scratch.load(&text).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn allowed_empty() {
    let text = edit(EDGE, "[\"0.0.0.0/0\"]", "[]");
    let p = only_problem(&refuse(&text), "peer[0].allowed", "at least one prefix");
    assert_eq!(p.line, Some(19));
}

#[test]
fn allowed_prefix_with_host_bits() {
    let text = edit_nth(HUB, "198.18.1.0/24", 0, "198.18.1.1/24");
    let err = refuse(&text);
    only_problem(&err, "peer[0].allowed[0]", "did you mean 198.18.1.0/24?");
}

#[test]
fn peer_without_links() {
    let text = cut(EDGE, "[[peer.link]]", Some("[[rule]]"));
    let p = only_problem(&refuse(&text), "peer[0].link", "missing field `link`");
    assert_eq!(p.line, Some(16), "the line of the [[peer]] lacking it");

    let text = edit(&text, "allowed = [", "link = []\nallowed = [");
    let p = only_problem(&refuse(&text), "peer[0].link", "at least one link");
    assert_eq!(p.line, Some(19));
}

#[test]
fn link_name_duplicate() {
    let text = edit(EDGE, "name = \"isp2\"", "name = \"isp1\"");
    let p = only_problem(
        &refuse(&text),
        "peer[0].link[1].name",
        "link isp1 is defined twice in peer hub (first as link[0])",
    );
    assert_eq!(p.line, Some(27));
}

#[test]
fn link_name_empty() {
    let text = edit(EDGE, "name = \"isp2\"", "name = \"\"");
    only_problem(&refuse(&text), "peer[0].link[1].name", "must not be empty");
}

#[test]
fn link_interface_undefined() {
    let text = edit(EDGE, "interface = \"wan2\"", "interface = \"wan3\"");
    let err = refuse(&text);
    let p = only_problem(
        &err,
        "peer[0].link[1].interface",
        "link isp2: interface wan3 is not defined in [[interface]]",
    );
    assert_eq!(p.line, Some(28));
}

#[test]
fn link_weight_out_of_range() {
    let text = edit(EDGE, "weight = 2", "weight = 1001");
    let p = only_problem(&refuse(&text), "peer[0].link[1].weight", "0..=1000");
    assert_eq!(p.line, Some(31));
}

#[test]
fn all_link_weights_zero() {
    let text = edit(EDGE, "weight = 2", "weight = 0").replace("weight = 1", "weight = 0");
    let p = only_problem(&refuse(&text), "peer[0].link", "every link has weight 0");
    assert_eq!(p.line, Some(20));
}

#[test]
fn link_gateway_outside_the_interface_prefix() {
    let text = edit(EDGE, "\"198.18.12.1\"", "\"198.18.13.1\"");
    let p = only_problem(
        &refuse(&text),
        "peer[0].link[1].gateway",
        "gateway 198.18.13.1 is not inside wan2's prefix 198.18.12.0/24",
    );
    assert_eq!(p.line, Some(29));
}

#[test]
fn link_gateway_is_own_address() {
    let text = edit(EDGE, "\"198.18.12.1\"", "\"198.18.12.2\"");
    only_problem(
        &refuse(&text),
        "peer[0].link[1].gateway",
        "wan2's own address",
    );
}

#[test]
fn link_without_gateway_needs_an_on_link_remote() {
    let text = edit(EDGE, "gateway = \"198.18.12.1\"\n", "");
    let p = only_problem(
        &refuse(&text),
        "peer[0].link[1].remote",
        "not on wan2's subnet",
    );
    assert_eq!(p.line, Some(29));

    let on_link = edit_nth(&text, "203.0.113.2:7420", 1, "198.18.12.7:7420");
    Scratch::new()
        .load(&on_link)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn link_remote_must_be_a_unicast_endpoint() {
    let text = edit_nth(EDGE, "203.0.113.2:7420", 1, "203.0.113.2:0");
    only_problem(
        &refuse(&text),
        "peer[0].link[1].remote",
        "port must not be 0",
    );
    let text = edit_nth(EDGE, "203.0.113.2:7420", 1, "255.255.255.255:7420");
    only_problem(
        &refuse(&text),
        "peer[0].link[1].remote",
        "not a unicast address",
    );
}

#[test]
fn route_with_both_peer_and_dev() {
    let text = edit(EDGE, "peer = \"hub\"", "peer = \"hub\"\ndev = \"wan1\"");
    let p = only_problem(&refuse(&text), "route[0]", "exactly one of `peer` or `dev`");
    assert_eq!(p.line, Some(35));
}

#[test]
fn route_with_neither_peer_nor_dev() {
    let text = format!("{HUB}[[route]]\nto = \"198.18.9.0/24\"\n");
    let p = only_problem(&refuse(&text), "route[2]", "needs exactly one of `peer`");
    assert_eq!(p.line, Some(line_of(&text, "198.18.9.0/24") - 1));
}

#[test]
fn route_via_with_peer() {
    let text = edit(
        EDGE,
        "peer = \"hub\"",
        "peer = \"hub\"\nvia = \"198.18.11.1\"",
    );
    let p = only_problem(&refuse(&text), "route[0].via", "only allowed with `dev`");
    assert_eq!(p.line, Some(39));
}

#[test]
fn route_dev_undefined() {
    let text = edit(HUB, "dev = \"wan0\"", "dev = \"wan9\"");
    only_problem(
        &refuse(&text),
        "route[1].dev",
        "interface wan9 is not defined in [[interface]]",
    );
}

#[test]
fn route_peer_undefined() {
    let text = edit(EDGE, "peer = \"hub\"", "peer = \"hubb\"");
    let err = refuse(&text);
    let p = assert_problem(
        &err,
        "route[0].peer",
        Some(38),
        "peer hubb is not defined in [[peer]]",
    );
    assert!(
        p.message.starts_with("route to 0.0.0.0/0: "),
        "{}",
        p.message
    );
}

#[test]
fn route_via_outside_the_dev_prefix() {
    let text = edit(HUB, "via = \"203.0.113.1\"", "via = \"203.0.113.17\"");
    let p = only_problem(
        &refuse(&text),
        "route[1].via",
        "via 203.0.113.17 is not inside wan0's prefix 203.0.113.0/28",
    );
    assert_eq!(p.line, Some(line_of(&text, "203.0.113.17")));
}

#[test]
fn route_duplicate() {
    let extra = "[[route]]\nto = \"0.0.0.0/0\"\ndev = \"wan0\"\nvia = \"203.0.113.3\"\n";
    let text = format!("{HUB}{extra}");
    let p = only_problem(
        &refuse(&text),
        "route[2].to",
        "route to 0.0.0.0/0 in table main is already defined by route[1]",
    );
    assert_eq!(p.line, Some(text.lines().count() - 2));

    // The same prefix in another table is a different route.
    let other_table = format!(
        "{HUB}{}",
        edit(extra, "[[route]]\n", "[[route]]\ntable = \"isp1\"\n")
    );
    Scratch::new()
        .load(&other_table)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn route_prefix_with_host_bits() {
    let text = edit_nth(HUB, "198.18.1.0/24", 1, "198.18.1.1/24");
    only_problem(&refuse(&text), "route[0].to", "host bits");
}

#[test]
fn route_table_name_empty() {
    let text = edit_nth(EDGE, "table = \"bond\"", 1, "table = \"\"");
    let err = refuse(&text);
    assert_problem(&err, "route[0].table", Some(36), "must not be empty");
}

#[test]
fn rule_table_without_routes() {
    let text = edit_nth(EDGE, "table = \"bond\"", 0, "table = \"bonded\"");
    let p = only_problem(
        &refuse(&text),
        "rule[0].table",
        "table bonded has no [[route]]",
    );
    assert_eq!(p.line, Some(34));
}

#[test]
fn rule_duplicate_source() {
    let text = format!("{EDGE}\n[[rule]]\nfrom = \"198.18.1.0/24\"\ntable = \"main\"\n[[route]]\nto = \"198.18.9.0/24\"\ndev = \"wan1\"\n");
    let err = refuse(&text);
    let p = only_problem(&err, "rule[1].from", "repeats rule[0]");
    assert_eq!(p.line, Some(line_of(&text, "table = \"main\"") - 1));
}

#[test]
fn rule_prefix_with_host_bits() {
    let text = edit(EDGE, "198.18.1.0/24", "198.18.1.1/24");
    let p = only_problem(
        &refuse(&text),
        "rule[0].from",
        "did you mean 198.18.1.0/24?",
    );
    assert_eq!(p.line, Some(33));
}

#[test]
fn edge_with_two_peers() {
    let text = format!(
        "{EDGE}{}",
        second_edge("hub2", EDGE2_PUBLIC)
            .replace("wan0", "wan1")
            .replace("203.0.113.1", "198.18.11.1")
    );
    let p = only_problem(
        &refuse(&text),
        "peer",
        "exactly one [[peer]] (its hub); found 2",
    );
    assert_eq!(p.line, Some(16));
}

#[test]
fn edge_without_peer() {
    let text = cut(EDGE, "[[peer]]", Some("[[rule]]"));
    let text = cut(&text, "[[route]]", None);
    let text = edit(&text, "table = \"bond\"", "table = \"main\"");
    let text =
        format!("{text}[[route]]\nto = \"0.0.0.0/0\"\ndev = \"wan1\"\nvia = \"198.18.11.1\"\n");
    let p = only_problem(&refuse(&text), "peer", "found 0");
    assert_eq!(p.line, None);
}

#[test]
fn edge_without_a_route_into_the_bond() {
    let text = edit(
        EDGE,
        "peer = \"hub\"",
        "dev = \"wan1\"\nvia = \"198.18.11.1\"",
    );
    let p = only_problem(&refuse(&text), "route", "peer = \"hub\"");
    assert_eq!(p.line, Some(35));
}

#[test]
fn hub_without_peers() {
    let text = cut(HUB, "[[peer]]", Some("[[route]]"));
    let text = cut(&text, "[[route]]\nto = \"198.18.1.0/24\"", None);
    let p = only_problem(&refuse(&text), "peer", "a hub needs at least one [[peer]]");
    assert_eq!(p.line, None);
}

#[test]
fn every_problem_is_reported_one_per_line_in_file_order() {
    let text = edit(EDGE, "workers = 2", "workers = 0");
    let text = edit(&text, "198.18.1.1/24", "198.18.1.1/32");
    let text = edit(&text, "interface = \"wan2\"", "interface = \"wan3\"");
    let text = edit(&text, "weight = 1\n", "weight = 5000\n");
    let text = edit(&text, "peer = \"hub\"", "peer = \"hub\"\ndev = \"lan0\"");
    let err = refuse(&text);
    let shown = err.to_string();
    let file = err.file().display().to_string();
    let expected = [
        format!("{file}:4: workers: "),
        format!("{file}:9: interface[0].address: "),
        format!("{file}:25: peer[0].link[0].weight: "),
        format!("{file}:28: peer[0].link[1].interface: "),
        format!("{file}:35: route[0]: "),
    ];
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{shown}");
    for (line, prefix) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(prefix.as_str()),
            "{line:?} should start with {prefix:?}"
        );
    }
}

/// A hub with `n` links in all: edge1's two and those of a second edge.
fn hub_with_links(n: usize) -> String {
    let mut text = HUB.to_string() + &second_edge("edge2", EDGE2_PUBLIC);
    for l in 1..n - 2 {
        text += &format!(
            "\n[[peer.link]]\nname = \"l{l}\"\ninterface = \"wan0\"\ngateway = \"203.0.113.1\"\n\
             remote = \"198.18.21.{}:7420\"\n",
            l + 2
        );
    }
    text
}

#[test]
fn more_links_than_the_daemon_carries() {
    // 64 links in all are fine; the 65th has no counters (the daemon would not start).
    let s = common::Scratch::new();
    assert!(s.load(&hub_with_links(64)).is_ok());
    let p = only_problem(
        &refuse(&hub_with_links(65)),
        "peer[1].link[62]",
        "65 links are defined over all peers; braid carries at most 64",
    );
    assert!(p.line.is_some());
}

#[test]
fn redundancy_rules_are_checked_field_by_field() {
    // The rule goes at the end: an array of tables ends the section it is in.
    let base = EDGE.to_string() + "\n[[bond.redundant]]\n";
    let rule = |body: &str| format!("{base}{body}");
    let p = only_problem(
        &refuse(&rule("")),
        "bond.redundant[0].protocol",
        "at least one",
    );
    assert!(p.line.is_some());
    only_problem(
        &refuse(&rule("dscp = 64\n")),
        "bond.redundant[0].dscp",
        "0..=63",
    );
    only_problem(
        &refuse(&rule("ports = \"5000-4000\"\n")),
        "bond.redundant[0].ports",
        "ends before it starts",
    );
    only_problem(
        &refuse(&rule("ports = \"voice\"\n")),
        "bond.redundant[0].ports",
        "not a port",
    );
    only_problem(
        &refuse(&rule("protocol = \"icmp\"\nports = 7\n")),
        "bond.redundant[0].ports",
        "no ports",
    );
}
