//! The `[[masquerade]]` table: defaults, and each refusal naming its field.

mod common;

use braid_control::config::{Hairpin, NatRefusal, OtherProtocols};
use common::{only_problem, refuse, Scratch, HUB};

fn hub_with(masq: &str) -> String {
    format!("{HUB}\n[[masquerade]]\n{masq}")
}

#[test]
fn defaults_follow_the_rfcs_and_vpp() {
    let scratch = Scratch::new();
    let cfg = scratch
        .load(&hub_with("interface = \"wan0\"\n"))
        .expect("valid");
    let m = &cfg.masquerades[0];
    assert!(m.addresses.is_empty() && m.sources.is_empty());
    assert_eq!((m.port_min, m.port_max), (1024, 65535));
    assert_eq!(
        (
            m.udp_timeout,
            m.tcp_established_timeout,
            m.tcp_transitory_timeout,
            m.icmp_timeout
        ),
        (300, 7440, 240, 60)
    );
    assert_eq!((m.max_sessions, m.max_per_host), (1_048_576, 4096));
    assert_eq!(m.when_full, NatRefusal::Drop);
    assert_eq!(m.hairpin, Hairpin::Drop);
    assert_eq!(m.other_protocols, OtherProtocols::Drop);
}

#[test]
fn unknown_interface() {
    let err = refuse(&hub_with("interface = \"wan9\"\n"));
    only_problem(&err, "masquerade[0].interface", "not defined");
}

#[test]
fn bad_port_range() {
    let err = refuse(&hub_with(
        "interface = \"wan0\"\nport_min = 5000\nport_max = 4000\n",
    ));
    only_problem(&err, "masquerade[0].port_min", "range");
}

#[test]
fn timeouts_and_limits_in_range() {
    let err = refuse(&hub_with("interface = \"wan0\"\nudp_timeout = 0\n"));
    only_problem(&err, "masquerade[0].udp_timeout", "1..=86400");
    let err = refuse(&hub_with("interface = \"wan0\"\nmax_sessions = 0\n"));
    only_problem(&err, "masquerade[0].max_sessions", "1..=");
    let err = refuse(&hub_with(
        "interface = \"wan0\"\nmax_sessions = 10\nmax_per_host = 11\n",
    ));
    only_problem(&err, "masquerade[0].max_per_host", "max_sessions");
}

#[test]
fn bad_sources_and_addresses() {
    let err = refuse(&hub_with(
        "interface = \"wan0\"\nsources = [\"198.18.1.7/24\"]\n",
    ));
    only_problem(&err, "masquerade[0].sources[0]", "198.18.1.0/24");
    let err = refuse(&hub_with(
        "interface = \"wan0\"\naddresses = [\"224.0.0.1\"]\n",
    ));
    only_problem(&err, "masquerade[0].addresses[0]", "unicast");
}

#[test]
fn unknown_key_and_bad_enum_name_the_field() {
    let err = refuse(&hub_with("interface = \"wan0\"\nwhen_ful = \"icmp\"\n"));
    assert!(err.to_string().contains("masquerade[0].when_ful"), "{err}");
    let err = refuse(&hub_with("interface = \"wan0\"\nhairpin = \"maybe\"\n"));
    assert!(err.to_string().contains("masquerade[0].hairpin"), "{err}");
}

#[test]
fn one_masquerade_per_interface() {
    let err = refuse(&format!(
        "{}\n[[masquerade]]\ninterface = \"wan0\"\n",
        hub_with("interface = \"wan0\"\n")
    ));
    only_problem(&err, "masquerade[1].interface", "already masquerades");
}

/// The lab hub with its one NIC shared with the host.
fn shared_hub_with(masq: &str) -> String {
    hub_with(masq).replacen(
        "address = \"203.0.113.2/28\"",
        "address = \"203.0.113.2/28\"\nmode = \"shared\"",
        1,
    )
}

#[test]
fn interfaces_are_owned_unless_shared() {
    use braid_control::config::InterfaceMode;
    let scratch = Scratch::new();
    let cfg = scratch
        .load(&hub_with("interface = \"wan0\"\n"))
        .expect("valid");
    assert_eq!(cfg.interfaces[0].mode, InterfaceMode::Owned);
    let text = shared_hub_with("interface = \"wan0\"\nport_min = 20000\nport_max = 29999\n");
    let cfg = scratch.load(&text).expect("valid");
    assert_eq!(cfg.interfaces[0].mode, InterfaceMode::Shared);
}

#[test]
fn an_unknown_interface_mode_is_named() {
    let text = hub_with("interface = \"wan0\"\n").replacen(
        "address = \"203.0.113.2/28\"",
        "address = \"203.0.113.2/28\"\nmode = \"borrowed\"",
        1,
    );
    let err = refuse(&text);
    only_problem(&err, "interface[0].mode", "borrowed");
}

#[test]
fn a_shared_masquerade_leaves_the_host_its_ports() {
    // The default range starts at 1024 but takes the tunnel's 7420.
    let err = refuse(&shared_hub_with("interface = \"wan0\"\n"));
    only_problem(&err, "masquerade[0].port_min", "tunnel");
    let err = refuse(&shared_hub_with(
        "interface = \"wan0\"\nport_min = 100\nport_max = 7000\n",
    ));
    only_problem(&err, "masquerade[0].port_min", "host's services");
    let pool: Vec<String> = (1..=16).map(|i| format!("\"203.0.113.{i}\"")).collect();
    let err = refuse(&shared_hub_with(&format!(
        "interface = \"wan0\"\nport_min = 20000\nport_max = 29999\naddresses = [{}]\n",
        pool.join(", ")
    )));
    only_problem(&err, "masquerade[0].addresses", "at most 15");
    // Owned, the same default range is fine (braid takes every frame of the NIC anyway).
    Scratch::new()
        .load(&hub_with("interface = \"wan0\"\n"))
        .expect("valid");
}
