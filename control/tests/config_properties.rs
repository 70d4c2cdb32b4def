//! Properties of loading over many generated inputs: no input panics, every problem
//! points inside the file, and limits are enforced exactly and all together.

mod common;

use common::{edit, Scratch, EDGE};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// The field path of a key written on the line after line `after` (0 = before line 1) of
/// EDGE, computed from the table headers above it.
fn table_path_after(after: usize) -> String {
    let (mut interfaces, mut peers, mut links, mut rules, mut routes) = (0, 0, 0, 0, 0);
    let mut path = String::new();
    for line in EDGE.lines().take(after) {
        path = match line.trim() {
            "[bond]" => "bond.".into(),
            "[health]" => "health.".into(),
            "[[interface]]" => {
                interfaces += 1;
                format!("interface[{}].", interfaces - 1)
            }
            "[[peer]]" => {
                peers += 1;
                links = 0;
                format!("peer[{}].", peers - 1)
            }
            "[[peer.link]]" => {
                links += 1;
                format!("peer[{}].link[{}].", peers - 1, links - 1)
            }
            "[[rule]]" => {
                rules += 1;
                format!("rule[{}].", rules - 1)
            }
            "[[route]]" => {
                routes += 1;
                format!("route[{}].", routes - 1)
            }
            _ => continue,
        };
    }
    path
}

fn insert_line_after(text: &str, after: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(after, line);
    lines.join("\n") + "\n"
}

proptest! {
    #[test]
    fn an_unknown_key_anywhere_is_reported_at_its_line_and_path(
        after in 0..=EDGE.lines().count(),
        key in "[a-z][a-z_]{0,11}",
    ) {
        let known = ["role", "id", "workers", "first_core", "tunnel_port", "bond", "mode",
            "balance", "name", "address", "mtu", "key_file", "private_key_file", "public_key",
            "preshared_key_file", "allowed", "link", "interface",
            "gateway", "remote", "weight", "from", "table", "to", "via", "dev", "peer", "rule",
            "route"];
        prop_assume!(!known.contains(&key.as_str()));
        let text = insert_line_after(EDGE, after, &format!("{key} = 1"));
        let err = Scratch::new().load(&text).unwrap_err();
        prop_assert_eq!(err.problems().len(), 1, "{}", err);
        let problem = &err.problems()[0];
        let expected = format!("{}{key}", table_path_after(after));
        prop_assert_eq!(problem.field.as_deref(), Some(expected.as_str()));
        prop_assert_eq!(problem.line, Some(after + 1));
        let shown = format!("{}:{}: {expected}: unknown field", err.file().display(), after + 1);
        prop_assert!(err.to_string().starts_with(&shown), "{}", err);
    }

    #[test]
    fn corrupted_text_never_panics_and_problems_point_inside_the_file(
        start in 0..EDGE.len(),
        len in 0usize..12,
        patch in "[a-z0-9 =\\[\\]{}\".,:/\\n#'_-]{0,12}",
    ) {
        let end = (start + len).min(EDGE.len());
        let text = format!("{}{patch}{}", &EDGE[..start], &EDGE[end..]);
        let scratch = Scratch::new();
        if let Err(err) = scratch.load(&text) {
            prop_assert!(!err.problems().is_empty());
            let lines = text.lines().count().max(1);
            for problem in err.problems() {
                if let Some(line) = problem.line {
                    prop_assert!((1..=lines + 1).contains(&line), "line {} of {}: {}", line, lines, err);
                }
                prop_assert!(!problem.message.is_empty());
            }
            prop_assert_eq!(err.to_string().lines().count(), err.problems().len(), "{}", err);
        }
    }

    #[test]
    fn limits_are_enforced_exactly_and_reported_together(
        workers in 0usize..80,
        mtu in 500u16..9100,
        weight1 in 0u32..1100,
        weight2 in 0u32..1100,
    ) {
        let text = edit(EDGE, "workers = 2", &format!("workers = {workers}"));
        let text = edit(&text, "name = \"lan0\"\n", &format!("name = \"lan0\"\nmtu = {mtu}\n"));
        // Through placeholders: weight1 may be 2, and then "weight = 2" would occur twice.
        let text = edit(&text, "weight = 1\n", "weight = W1\n");
        let text = edit(&text, "weight = 2\n", "weight = W2\n");
        let text = edit(&text, "weight = W1\n", &format!("weight = {weight1}\n"));
        let text = edit(&text, "weight = W2\n", &format!("weight = {weight2}\n"));

        let mut expected = BTreeSet::new();
        if !(1..=64).contains(&workers) {
            expected.insert("workers");
        }
        if !(576..=9000).contains(&mtu) {
            expected.insert("interface[0].mtu");
        }
        if weight1 > 1000 {
            expected.insert("peer[0].link[0].weight");
        }
        if weight2 > 1000 {
            expected.insert("peer[0].link[1].weight");
        }
        if weight1 == 0 && weight2 == 0 {
            expected.insert("peer[0].link");
        }

        let scratch = Scratch::new();
        match scratch.load(&text) {
            Ok(config) => {
                prop_assert!(expected.is_empty(), "accepted despite {:?}", expected);
                prop_assert_eq!(config.workers, workers);
                prop_assert_eq!(config.interfaces[0].mtu, mtu);
            }
            Err(err) => {
                let found: BTreeSet<&str> =
                    err.problems().iter().filter_map(|p| p.field.as_deref()).collect();
                prop_assert_eq!(found, expected, "{}", err);
            }
        }
    }
}
