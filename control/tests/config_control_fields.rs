//! The fields the control plane adds to the configuration: `control_socket`, `metrics_listen`
//! and a link's administrative `state`, and validation of configs changed at run time.

mod common;

use braid_control::config::{LinkState, DEFAULT_CONTROL_SOCKET, MAX_INTERFACES};
use common::{edit, only_problem, refuse, Scratch, EDGE};
use std::path::Path;

#[test]
fn control_fields_default_to_the_standard_socket_and_no_metrics() {
    let scratch = Scratch::new();
    let c = scratch.load(EDGE).unwrap();
    assert_eq!(c.control_socket, None);
    assert_eq!(c.control_socket_path(), Path::new(DEFAULT_CONTROL_SOCKET));
    assert_eq!(c.metrics_listen, None);
    assert!(c.peers[0].links.iter().all(|l| l.state == LinkState::Up));
}

#[test]
fn a_relative_control_socket_is_next_to_the_file() {
    let scratch = Scratch::new();
    let text =
        format!("control_socket = \"run/ctl.sock\"\nmetrics_listen = \"127.0.0.1:9477\"\n{EDGE}");
    let c = scratch.load(&text).unwrap();
    assert_eq!(c.control_socket_path(), scratch.dir.join("run/ctl.sock"));
    assert_eq!(c.metrics_listen, Some("127.0.0.1:9477".parse().unwrap()));
    let text = format!("control_socket = \"/run/b/x.sock\"\n{EDGE}");
    let c = scratch.load(&text).unwrap();
    assert_eq!(c.control_socket_path(), Path::new("/run/b/x.sock"));
}

#[test]
fn a_control_socket_path_too_long_for_a_unix_socket() {
    let long = format!("/run/{}/s", "d".repeat(101));
    let err = refuse(&format!("control_socket = \"{long}\"\n{EDGE}"));
    let p = only_problem(
        &err,
        "control_socket",
        "a Unix socket path holds at most 107",
    );
    assert_eq!(p.line, Some(1));
    let err = refuse(&format!("control_socket = \"/\"\n{EDGE}"));
    only_problem(&err, "control_socket", "names no file");
}

#[test]
fn metrics_on_port_zero() {
    let err = refuse(&format!("metrics_listen = \"127.0.0.1:0\"\n{EDGE}"));
    let p = only_problem(&err, "metrics_listen", "port must not be 0");
    assert_eq!(p.line, Some(1));
    let err = refuse(&format!("metrics_listen = \"localhost\"\n{EDGE}"));
    assert_eq!(err.problems()[0].field.as_deref(), Some("metrics_listen"));
}

#[test]
fn a_link_can_be_down_but_not_every_link_that_counts() {
    let scratch = Scratch::new();
    let text = edit(EDGE, "weight = 1\n", "weight = 1\nstate = \"down\"\n");
    let c = scratch.load(&text).unwrap();
    assert_eq!(c.peers[0].links[0].state, LinkState::Down);
    assert_eq!(c.peers[0].links[0].weight, 1);

    let text = text.replace("weight = 2\n", "weight = 2\nstate = \"down\"\n");
    let p = only_problem(
        &refuse(&text),
        "peer[0].link",
        "peer hub: every link with a weight above 0 is down; at least one must be up",
    );
    assert_eq!(p.line, Some(20));
    // Up with weight 0 counts no more than down.
    let text = edit(EDGE, "weight = 1\n", "weight = 1\nstate = \"down\"\n")
        .replace("weight = 2", "weight = 0");
    only_problem(
        &refuse(&text),
        "peer[0].link",
        "every link with a weight above 0",
    );
    let text = edit(EDGE, "weight = 1\n", "weight = 1\nstate = \"off\"\n");
    let err = refuse(&text);
    assert_eq!(
        err.problems()[0].field.as_deref(),
        Some("peer[0].link[0].state")
    );
}

#[test]
fn too_many_interfaces() {
    let extra: String = (0..MAX_INTERFACES)
        .map(|i| format!("\n[[interface]]\nname = \"x{i}\"\naddress = \"10.{i}.0.1/24\"\n"))
        .collect();
    let err = refuse(&format!("{EDGE}{extra}"));
    only_problem(
        &err,
        &format!("interface[{MAX_INTERFACES}]"),
        &format!("braid drives at most {MAX_INTERFACES}"),
    );
}

#[test]
fn a_config_changed_at_run_time_is_validated_like_a_file() {
    let scratch = Scratch::new();
    let mut c = scratch.load(EDGE).unwrap();
    assert_eq!(c.validate(), Ok(()));
    c.peers[0].links[1].weight = 1001;
    c.routes[0].peer = Some("nobody".into());
    let problems = c.validate().unwrap_err();
    let fields: Vec<_> = problems.iter().map(|p| p.field.as_deref()).collect();
    assert_eq!(
        fields,
        [
            Some("peer[0].link[1].weight"),
            Some("route[0].peer"),
            Some("route")
        ]
    );
    assert!(problems.iter().all(|p| p.line.is_none()));
    // Key files are not opened: they were read when the daemon started.
    let mut c = scratch.load(EDGE).unwrap();
    c.private_key_file = "/nonexistent/edge.key".into();
    c.peers[0].preshared_key_file = Some("/nonexistent/hub.psk".into());
    assert_eq!(c.validate(), Ok(()));
}
