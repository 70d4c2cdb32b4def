//! `braidctl save`: the running state merged into the config file keeps the file's comments and
//! layout, reads back as exactly the running state, and replaces the file atomically.

use braid_control::config::{
    Balance, BondMode, Config, LinkState, RouteConfig, RuleConfig, WeightMode,
};
use braid_control::proto::Running;
use braid_control::save::{merge, write_atomic};
use proptest::prelude::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const EDGE: &str = include_str!("../../deploy/edge.example.toml");

fn decode(text: &str) -> Config {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The running state of a daemon that loaded `text` and changed nothing.
fn running_of(text: &str) -> Running {
    Running::of(&decode(text), PathBuf::from("/etc/braid/braidd.toml"))
}

/// Every comment line of `text`.
fn comments(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('#'))
        .collect()
}

/// Lines of `after` that are not in `before`, and lines of `before` not in `after`.
fn diff<'a>(before: &'a str, after: &'a str) -> (Vec<&'a str>, Vec<&'a str>) {
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    let added = a.iter().filter(|l| !b.contains(l)).copied().collect();
    let removed = b.iter().filter(|l| !a.contains(l)).copied().collect();
    (added, removed)
}

#[test]
fn an_unchanged_state_leaves_the_file_byte_for_byte() {
    assert_eq!(merge(EDGE, &running_of(EDGE)).unwrap(), EDGE);
}

#[test]
fn weights_states_and_mode_change_only_their_values() {
    let mut running = running_of(EDGE);
    running.links[0].weight = 1;
    running.links[1].weight = 3;
    running.links[0].state = LinkState::Down;
    running.mode = BondMode::Flow;
    let out = merge(EDGE, &running).unwrap();
    let (added, removed) = diff(EDGE, &out);
    assert_eq!(
        added,
        [
            "mode = \"flow\"       # \"packet\": spread each packet by weight; \"flow\": pin each flow to a link",
            "state = \"down\"",
            "weight = 3            # 1:2, as the recipe splits every three packets",
        ]
    );
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert_eq!(comments(&out), comments(EDGE));
    let c = decode(&out);
    assert_eq!(c.bond.mode, BondMode::Flow);
    assert_eq!(c.bond.balance, Balance::Packets);
    let links: Vec<_> = c.peers[0]
        .links
        .iter()
        .map(|l| (l.weight, l.state))
        .collect();
    assert_eq!(links, [(1, LinkState::Down), (3, LinkState::Up)]);
    // The new key sits in isp1's table, before isp2's.
    let state_at = out.find("state = \"down\"").unwrap();
    assert!(out.find("name = \"isp1\"").unwrap() < state_at);
    assert!(state_at < out.find("name = \"isp2\"").unwrap());

    // Back up again: the key says so (its absence would too).
    running.links[0].state = LinkState::Up;
    let again = merge(&out, &running).unwrap();
    assert!(again.contains("state = \"up\""));
    assert_eq!(decode(&again).peers[0].links[0].state, LinkState::Up);
}

#[test]
fn learned_weights_are_saved_in_the_peers_table_and_manual_again_is_too() {
    let mut running = running_of(EDGE);
    assert_eq!(running.peers[0].weights, WeightMode::Manual);
    running.peers[0].weights = WeightMode::Auto;
    let out = merge(EDGE, &running).unwrap();
    let (added, removed) = diff(EDGE, &out);
    assert_eq!(added, ["weights = \"auto\""]);
    assert!(removed.is_empty(), "{removed:?}");
    let c = decode(&out);
    assert_eq!(c.peers[0].weights, WeightMode::Auto);
    // The configured weights stay as they were: the start and the fallback.
    let w: Vec<u32> = c.peers[0].links.iter().map(|l| l.weight).collect();
    assert_eq!(w, [1, 2]);
    // In the peer's own table, before its links.
    let at = out.find("weights = \"auto\"").unwrap();
    assert!(at < out.find("[[peer.link]]").unwrap(), "{out}");

    running.peers[0].weights = WeightMode::Manual;
    let again = merge(&out, &running).unwrap();
    assert!(again.contains("weights = \"manual\""), "{again}");
    assert_eq!(decode(&again).peers[0].weights, WeightMode::Manual);
}

#[test]
fn a_missing_bond_table_is_added_when_needed() {
    let text = EDGE.replace(
        "[bond]\nmode = \"packet\"       # \"packet\": spread each packet by weight; \"flow\": pin each flow to a link\nbalance = \"packets\"   # in packet mode the weights divide \"packets\" or \"bytes\"\n",
        "",
    );
    assert!(!text.contains("[bond]"));
    assert_eq!(merge(&text, &running_of(&text)).unwrap(), text);
    let mut running = running_of(&text);
    running.balance = Balance::Bytes;
    let out = merge(&text, &running).unwrap();
    let c = decode(&out);
    assert_eq!(
        (c.bond.mode, c.bond.balance),
        (BondMode::Packet, Balance::Bytes)
    );
    assert!(out.contains("[bond]\nbalance = \"bytes\"\n"), "{out}");
}

#[test]
fn routes_added_and_deleted_keep_the_others_and_their_comments() {
    let mut running = running_of(EDGE);
    // Delete the main default route, add one to a new prefix, change isp2's next hop.
    running
        .routes
        .retain(|r| !(r.table == "main" && r.dev.is_some()));
    running.routes.push(RouteConfig {
        table: "main".into(),
        to: "198.19.128.0/17".parse().unwrap(),
        via: None,
        dev: None,
        peer: Some("hub".into()),
    });
    let isp2 = running
        .routes
        .iter_mut()
        .find(|r| r.table == "isp2")
        .unwrap();
    isp2.via = Some("172.16.3.9".parse().unwrap());
    let out = merge(EDGE, &running).unwrap();
    let c = decode(&out);
    let routes: Vec<String> = c
        .routes
        .iter()
        .map(|r| format!("{} {} {:?} {:?} {:?}", r.table, r.to, r.via, r.dev, r.peer))
        .collect();
    assert_eq!(
        routes,
        [
            r#"bond 0.0.0.0/0 None None Some("hub")"#,
            r#"isp1 0.0.0.0/0 Some(172.16.0.1) Some("eth1") None"#,
            r#"isp2 0.0.0.0/0 Some(172.16.3.9) Some("eth2") None"#,
            r#"main 198.19.128.0/17 None None Some("hub")"#,
        ]
    );
    // The deleted route's own comment goes with it; every other comment stays.
    let gone = "# Everything else follows the plain tables: the recipe's default via ISP 1 ...";
    let mut want = comments(EDGE);
    want.retain(|l| *l != gone);
    assert_eq!(comments(&out), want);
    assert_eq!(c.rules, running.rules);
}

#[test]
fn rules_keep_their_order_whatever_the_layout() {
    let mut running = running_of(EDGE);
    let new = RuleConfig {
        from: "198.18.7.0/24".parse().unwrap(),
        table: "isp2".into(),
    };
    // Appended: the existing rules stay where they are written.
    running.rules.push(new.clone());
    let out = merge(EDGE, &running).unwrap();
    assert_eq!(decode(&out).rules, running.rules);
    let (_, removed) = diff(EDGE, &out);
    assert!(removed.is_empty(), "{removed:?}");
    // First: rules are tried in file order, so the file's order changes.
    running.rules.pop();
    running.rules.insert(0, new);
    running.rules.swap(1, 2);
    let out = merge(EDGE, &running).unwrap();
    assert_eq!(decode(&out).rules, running.rules);
    assert_eq!(comments(&out).len(), comments(EDGE).len());
    // Deleting every rule removes the key.
    running.rules.clear();
    let out = merge(EDGE, &running).unwrap();
    assert!(!out.contains("[[rule]]"));
    assert!(decode(&out).rules.is_empty());
}

#[test]
fn inline_tables_are_merged_too() {
    let text = r#"role = "hub"
private_key_file = "hub.key"
interface = [{ name = "wan0", address = "203.0.113.2/28" }]
peer = [{ name = "e", public_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", allowed = ["198.18.1.0/24"], link = [
  { name = "isp1", interface = "wan0", remote = "198.18.11.2:7420", gateway = "203.0.113.1" },
] }]
route = [{ to = "198.18.1.0/24", peer = "e" }]
"#;
    let mut running = running_of(text);
    running.links[0].weight = 7;
    let out = merge(text, &running).unwrap();
    assert!(out.contains("weight = 7"), "{out}");
    assert_eq!(decode(&out).peers[0].links[0].weight, 7);
    assert_eq!(decode(&out).routes, running.routes);
}

#[test]
fn a_link_the_file_lacks_is_an_error() {
    let mut running = running_of(EDGE);
    running.links[1].link = "isp3".into();
    let e = merge(EDGE, &running).unwrap_err();
    assert_eq!(
        e,
        "peer hub link isp3 is not in the file (was it edited since braidd read it?)"
    );
    assert!(merge("role = ", &running)
        .unwrap_err()
        .starts_with("cannot parse the file"));
}

#[test]
fn the_file_is_replaced_atomically_keeping_its_mode() {
    let dir = std::env::temp_dir().join(format!("braid-save-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let real = dir.join("braidd.toml");
    std::fs::write(&real, "old\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.join("link.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();

    write_atomic(&link, "new\n").unwrap();
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let mode = std::fs::metadata(&real).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    assert!(write_atomic(&dir.join("missing.toml"), "x").is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #[test]
    fn any_running_state_reads_back_exactly(
        weights in proptest::collection::vec(0u32..=1000, 2),
        downs in proptest::collection::vec(any::<bool>(), 2),
        flow in any::<bool>(),
        bytes in any::<bool>(),
        drop_route in 0usize..5,
        rule_order in Just(vec![0usize, 1, 2]).prop_shuffle(),
    ) {
        let mut running = running_of(EDGE);
        for (l, (w, down)) in running.links.iter_mut().zip(weights.iter().zip(&downs)) {
            l.weight = *w;
            l.state = if *down { LinkState::Down } else { LinkState::Up };
        }
        running.mode = if flow { BondMode::Flow } else { BondMode::Packet };
        running.balance = if bytes { Balance::Bytes } else { Balance::Packets };
        if drop_route < running.routes.len() {
            running.routes.remove(drop_route);
        }
        let rules = running.rules.clone();
        running.rules = rule_order.iter().map(|&i| rules[i].clone()).collect();
        let out = merge(EDGE, &running).unwrap();
        let c = decode(&out);
        let back = running_of(&out);
        prop_assert_eq!(&back.links, &running.links);
        prop_assert_eq!((back.mode, back.balance), (running.mode, running.balance));
        prop_assert_eq!(&c.rules, &running.rules);
        let mut a = c.routes.clone();
        let mut b = running.routes.clone();
        a.sort_by_key(|r| format!("{r:?}"));
        b.sort_by_key(|r| format!("{r:?}"));
        prop_assert_eq!(a, b);
        // Merging again changes nothing.
        prop_assert_eq!(merge(&out, &running).unwrap(), out.clone());
    }
}
