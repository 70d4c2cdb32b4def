//! Errors found while decoding the TOML: syntax, unknown keys, wrong types, malformed
//! addresses, missing fields. Each names its line and, where there is one, its field.

mod common;

use braid_control::config::Config;
use braid_testkit::HUB_PUBLIC;
use common::{
    assert_problem, edit, edit_nth, line_of, only_problem, refuse, Scratch, EDGE, EDGE_KEY_FILE,
    HUB,
};

#[test]
fn syntax_error_names_its_line() {
    let text = edit(EDGE, "name = \"hub\"\n", "name = = \"hub\"\n");
    let err = refuse(&text);
    assert_eq!(err.problems().len(), 1);
    let problem = &err.problems()[0];
    assert_eq!(problem.line, Some(line_of(&text, "name = = ")));
    assert_eq!(problem.field, None);
    assert!(problem.message.starts_with("TOML syntax: "), "{err}");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}:17: TOML syntax: ", err.file().display())),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 1, "one problem, one line: {shown}");
}

#[test]
fn duplicate_table_key_is_a_syntax_error_on_its_line() {
    let text = edit(EDGE, "workers = 2", "workers = 2\nworkers = 3");
    let err = refuse(&text);
    assert_eq!(err.problems()[0].line, Some(line_of(&text, "workers = 3")));
    assert!(err.problems()[0].message.contains("duplicate key"), "{err}");
}

#[test]
fn unknown_key_names_field_and_line() {
    let text = edit(EDGE, "weight = 2", "wieght = 2");
    let err = refuse(&text);
    let p = only_problem(&err, "peer[0].link[1].wieght", "unknown field `wieght`");
    assert_eq!(p.line, Some(line_of(&text, "wieght")));
    assert!(
        p.message.contains("`weight`"),
        "lists the known fields: {err}"
    );
}

#[test]
fn unknown_top_level_key_names_field_and_line() {
    let text = edit(EDGE, "workers = 2", "worker = 2");
    let err = refuse(&text);
    let p = only_problem(&err, "worker", "unknown field `worker`");
    assert_eq!(p.line, Some(4));
}

#[test]
fn unknown_key_in_dotted_and_inline_tables() {
    let text = edit(EDGE, "[bond]\nmode = \"packet\"", "bond.mood = \"flow\"");
    let err = refuse(&text);
    assert_problem(&err, "bond.mood", Some(5), "unknown field `mood`");

    let text = edit(
        EDGE,
        "[bond]\nmode = \"packet\"",
        "bond = { mode = \"flow\", balanse = \"bytes\" }",
    );
    let err = refuse(&text);
    assert_problem(&err, "bond.balanse", Some(5), "unknown field `balanse`");
}

#[test]
fn wrong_type_names_field_and_line() {
    let text = edit(EDGE, "weight = 2", "weight = \"two\"");
    let err = refuse(&text);
    let line = line_of(&text, "\"two\"");
    assert_problem(
        &err,
        "peer[0].link[1].weight",
        Some(line),
        "invalid type: string",
    );
}

#[test]
fn out_of_type_range_integers_name_their_field() {
    let text = edit(EDGE, "workers = 2", "tunnel_port = 70000");
    assert_problem(&refuse(&text), "tunnel_port", Some(4), "70000");
    let text = edit(EDGE, "workers = 2", "workers = -1");
    assert_problem(&refuse(&text), "workers", Some(4), "-1");
}

#[test]
fn bad_prefix_names_field_and_line() {
    let text = edit(EDGE, "198.18.11.2/24", "198.18.11.300/24");
    let err = refuse(&text);
    let p = only_problem(&err, "interface[1].address", "invalid IP address syntax");
    assert_eq!(p.line, Some(line_of(&text, "198.18.11.300/24")));
    assert!(
        p.message.contains("198.18.11.300/24"),
        "quotes the value: {err}"
    );

    let text = edit(EDGE, "198.18.11.2/24", "kernl");
    let p = only_problem(&refuse(&text), "interface[1].address", "or \"kernel\"");
    assert!(
        p.message.contains("\"kernl\""),
        "quotes the value: {}",
        p.message
    );

    let text = edit(EDGE, "198.18.11.2/24", "198.18.11.2/33");
    assert_problem(
        &refuse(&text),
        "interface[1].address",
        Some(line_of(&text, "198.18.11.2/33")),
        "198.18.11.2/33",
    );
}

#[test]
fn bad_prefix_in_a_list_names_the_element() {
    let text = edit(EDGE, "[\"0.0.0.0/0\"]", "[\"198.18.0.0/15\",\n  \"bogus\"]");
    let err = refuse(&text);
    assert_problem(
        &err,
        "peer[0].allowed[1]",
        Some(line_of(&text, "\"bogus\"")),
        "bogus",
    );
}

#[test]
fn bad_address_names_field_and_line() {
    let text = edit(EDGE, "\"198.18.12.1\"", "\"198.18.12\"");
    let err = refuse(&text);
    let line = line_of(&text, "\"198.18.12\"");
    assert_problem(
        &err,
        "peer[0].link[1].gateway",
        Some(line),
        "invalid IPv4 address",
    );
}

#[test]
fn bad_socket_address_names_field_and_line() {
    let text = edit_nth(EDGE, "\"203.0.113.2:7420\"", 1, "\"203.0.113.2\"");
    let err = refuse(&text);
    let line = line_of(&text, "\"203.0.113.2\"");
    assert_problem(&err, "peer[0].link[1].remote", Some(line), "socket address");
}

#[test]
fn unknown_enum_value_names_field_and_line() {
    let text = edit(EDGE, "role = \"edge\"", "role = \"spoke\"");
    let err = refuse(&text);
    assert_problem(&err, "role", Some(2), "unknown variant `spoke`");

    let text = edit(EDGE, "mode = \"packet\"", "balance = \"bits\"");
    let err = refuse(&text);
    assert_problem(&err, "bond.balance", Some(6), "unknown variant `bits`");

    let text = edit(
        EDGE,
        "allowed = [\"0.0.0.0/0\"]",
        "allowed = [\"0.0.0.0/0\"]\nweights = \"learned\"",
    );
    let err = refuse(&text);
    let line = line_of(&text, "weights = ");
    assert_problem(
        &err,
        "peer[0].weights",
        Some(line),
        "unknown variant `learned`, expected `manual` or `auto`",
    );
}

#[test]
fn missing_field_names_the_field_in_its_table() {
    let text = edit(EDGE, "interface = \"wan1\"\n", "");
    let err = refuse(&text);
    let p = only_problem(
        &err,
        "peer[0].link[0].interface",
        "missing field `interface`",
    );
    // The line of the table that lacks it.
    assert_eq!(p.line, Some(20));
    assert_eq!(text.lines().nth(19), Some("[[peer.link]]"));
}

#[test]
fn missing_top_level_field_has_a_field_but_no_line() {
    let text = edit(EDGE, "role = \"edge\"\n", "");
    let err = refuse(&text);
    let p = only_problem(&err, "role", "missing field `role`");
    assert_eq!(p.line, None);
    assert_eq!(
        err.to_string(),
        format!("{}: role: missing field `role`", err.file().display())
    );
}

#[test]
fn unreadable_file_is_reported_with_its_path() {
    let scratch = Scratch::new();
    let missing = scratch.dir.join("absent.toml");
    let err = Config::load(&missing).unwrap_err();
    assert_eq!(err.file(), missing);
    assert_eq!(err.problems().len(), 1);
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}: ", missing.display())),
        "{shown}"
    );
    assert!(shown.contains("cannot read"), "{shown}");

    let err = Config::load(&scratch.dir).unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn non_utf8_file_is_refused() {
    let scratch = Scratch::new();
    let path = scratch.config_path();
    std::fs::write(&path, b"role = \"edge\xff\"\n").unwrap();
    let err = Config::load(&path).unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn tunnel_v1_fields_get_a_hint_on_their_lines() {
    let text = edit(
        EDGE,
        &format!("private_key_file = {EDGE_KEY_FILE:?}\n"),
        "id = 1\n",
    );
    let text = edit(
        &text,
        &format!("public_key = {HUB_PUBLIC:?}\n"),
        "id = 2\nkey_file = \"tunnel.key\"\n",
    );
    let err = refuse(&text);
    assert_eq!(err.problems().len(), 3, "{err}");
    let hint = "is from tunnel v1: braid now uses private_key_file (top level) and each \
                peer's public_key; see docs/CONFIG.md";
    assert_problem(&err, "id", Some(3), &format!("`id` {hint}"));
    assert_problem(
        &err,
        "peer[0].id",
        Some(line_of(&text, "id = 2")),
        "`id` is from",
    );
    assert_problem(
        &err,
        "peer[0].key_file",
        Some(line_of(&text, "key_file = \"tunnel")),
        &format!("`key_file` {hint}"),
    );
}

#[test]
fn a_v1_field_alone_gets_the_hint_too() {
    let text = edit(HUB, "allowed = [", "key_file = \"edge1.key\"\nallowed = [");
    let p = only_problem(
        &refuse(&text),
        "peer[0].key_file",
        "`key_file` is from tunnel v1",
    );
    assert_eq!(p.line, Some(line_of(&text, "key_file = \"edge1")));
    let text = edit(EDGE, "workers = 2", "workers = 2\nkey_file = \"k\"");
    let p = only_problem(&refuse(&text), "key_file", "`key_file` is from tunnel v1");
    assert_eq!(p.line, Some(line_of(&text, "key_file = \"k")));
    // An `id` elsewhere is just an unknown field.
    let text = edit(EDGE, "weight = 2", "weight = 2\nid = 3");
    only_problem(&refuse(&text), "peer[0].link[1].id", "unknown field `id`");
}

#[test]
fn bad_public_key_names_the_field_and_what_is_wrong() {
    let cases = [
        ("not a key!", "not a public key: not base64"),
        ("AQID", "not a public key: base64 of 3 bytes, not of 32"),
        (&HUB_PUBLIC[..43], "not a public key: not base64"),
    ];
    for (bad, what) in cases {
        let text = edit(EDGE, HUB_PUBLIC, bad);
        let p = only_problem(&refuse(&text), "peer[0].public_key", what);
        assert_eq!(p.line, Some(line_of(&text, "public_key")), "{bad}");
    }
    let text = edit(EDGE, &format!("{HUB_PUBLIC:?}"), "7");
    only_problem(
        &refuse(&text),
        "peer[0].public_key",
        "invalid type: integer",
    );
}

#[test]
fn missing_keys_are_named() {
    let text = edit(EDGE, &format!("private_key_file = {EDGE_KEY_FILE:?}\n"), "");
    let p = only_problem(
        &refuse(&text),
        "private_key_file",
        "missing field `private_key_file`",
    );
    assert_eq!(p.line, None);
    let text = edit(EDGE, &format!("public_key = {HUB_PUBLIC:?}\n"), "");
    let p = only_problem(
        &refuse(&text),
        "peer[0].public_key",
        "missing field `public_key`",
    );
    assert_eq!(p.line, Some(line_of(&text, "[[peer]]")));
}
