//! `braidctl save`: the running weights (and whether they are learned), link states, bond mode,
//! routes and rules written back
//! into the configuration file, keeping its comments and layout, and replacing it atomically.

use crate::config::{Balance, BondMode, Config, LinkState, RouteConfig, RuleConfig, WeightMode};
use crate::proto::Running;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, TableLike, Value};

/// `text` (a configuration file) with the running state of `running` written into it.
///
/// Only what differs is touched: a key keeps its comments when its value changes, an absent
/// key that already has the wanted default stays absent, routes and rules that stay keep their
/// tables (and the comments before them), new ones are added after them. The result is read
/// back and compared with `running`; a file that would not reproduce it is an error.
pub fn merge(text: &str, running: &Running) -> Result<String, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("cannot parse the file: {e}"))?;
    merge_bond(&mut doc, running);
    for link in &running.links {
        merge_link(&mut doc, link)?;
    }
    for peer in &running.peers {
        merge_peer(&mut doc, peer)?;
    }
    merge_routes(&mut doc, &running.routes);
    merge_rules(&mut doc, &running.rules);
    let out = doc.to_string();
    check_round_trip(&out, running)?;
    Ok(out)
}

/// Replaces the file at `path` with `text`: written to a temporary file in the same directory
/// with the old file's mode and owner, synced, then renamed over it. A symlink is followed,
/// so its target is replaced.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let path = fs::canonicalize(path)?;
    let meta = fs::metadata(&path)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.save-{}", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))?;
        file.set_permissions(meta.permissions())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn merge_bond(doc: &mut DocumentMut, running: &Running) {
    let bond = doc.get("bond").and_then(Item::as_table_like);
    let text_of = |key: &str| bond.and_then(|b| b.get(key)).and_then(Item::as_str);
    let mode = match text_of("mode") {
        Some("flow") => BondMode::Flow,
        _ => BondMode::Packet,
    };
    let balance = match text_of("balance") {
        Some("bytes") => Balance::Bytes,
        _ => Balance::Packets,
    };
    if mode == running.mode && balance == running.balance {
        return;
    }
    if doc.get("bond").and_then(Item::as_table_like).is_none() {
        doc.insert("bond", Item::Table(Table::new()));
    }
    let Some(bond) = doc.get_mut("bond").and_then(Item::as_table_like_mut) else {
        return;
    };
    if mode != running.mode {
        set(bond, "mode", name_of(running.mode));
    }
    if balance != running.balance {
        set(bond, "balance", name_of(running.balance));
    }
}

fn merge_link(doc: &mut DocumentMut, link: &crate::proto::RunningLink) -> Result<(), String> {
    let missing = || {
        format!(
            "peer {} link {} is not in the file (was it edited since braidd read it?)",
            link.peer, link.link
        )
    };
    let peer = doc
        .get_mut("peer")
        .map(tables_mut)
        .unwrap_or_default()
        .into_iter()
        .find(|t| t.get("name").and_then(Item::as_str) == Some(&link.peer))
        .ok_or_else(missing)?;
    let table = peer
        .get_mut("link")
        .map(tables_mut)
        .unwrap_or_default()
        .into_iter()
        .find(|t| t.get("name").and_then(Item::as_str) == Some(&link.link))
        .ok_or_else(missing)?;
    let weight = table.get("weight").and_then(Item::as_integer).unwrap_or(1);
    if weight != i64::from(link.weight) {
        set(table, "weight", i64::from(link.weight));
    }
    let state = match table.get("state").and_then(Item::as_str) {
        Some("down") => LinkState::Down,
        _ => LinkState::Up,
    };
    if state != link.state {
        set(table, "state", name_of(link.state));
    }
    Ok(())
}

/// A peer's weight mode: `weights = "auto"`, or absent for manual weights (the default) unless
/// the file says `"manual"` already.
fn merge_peer(doc: &mut DocumentMut, peer: &crate::proto::RunningPeer) -> Result<(), String> {
    let table = doc
        .get_mut("peer")
        .map(tables_mut)
        .unwrap_or_default()
        .into_iter()
        .find(|t| t.get("name").and_then(Item::as_str) == Some(&peer.peer))
        .ok_or_else(|| {
            format!(
                "peer {} is not in the file (was it edited since braidd read it?)",
                peer.peer
            )
        })?;
    let mode = match table.get("weights").and_then(Item::as_str) {
        Some("auto") => WeightMode::Auto,
        _ => WeightMode::Manual,
    };
    if mode != peer.weights {
        set(table, "weights", name_of(peer.weights));
    }
    Ok(())
}

/// The value of `key` in `table` as a string, for comparing with a running value.
fn str_of(table: &Table, key: &str) -> Option<String> {
    table.get(key).and_then(Item::as_str).map(str::to_owned)
}

/// Sets or removes the optional string field `key` of `table` so that it reads `want`.
fn set_opt(table: &mut Table, key: &str, want: Option<String>) {
    if str_of(table, key) == want {
        return;
    }
    match want {
        Some(v) => set(table, key, v),
        None => {
            table.remove(key);
        }
    }
}

fn route_key(table: &Table) -> Option<(String, String)> {
    let name = str_of(table, "table").unwrap_or_else(|| "main".into());
    Some((name, str_of(table, "to")?))
}

fn merge_routes(doc: &mut DocumentMut, routes: &[RouteConfig]) {
    let mut old = take_tables(doc, "route");
    let mut out = ArrayOfTables::new();
    for r in routes {
        let key = (r.table.clone(), r.to.to_string());
        let found = old.iter().position(|t| route_key(t).as_ref() == Some(&key));
        let mut table = found.map(|i| old.remove(i)).unwrap_or_default();
        if str_of(&table, "table").is_some() || r.table != "main" {
            set_opt(&mut table, "table", Some(r.table.clone()));
        }
        set_opt(&mut table, "to", Some(r.to.to_string()));
        set_opt(&mut table, "via", r.via.map(|v| v.to_string()));
        set_opt(&mut table, "dev", r.dev.clone());
        set_opt(&mut table, "peer", r.peer.clone());
        out.push(table);
    }
    put_tables(doc, "route", out);
}

fn merge_rules(doc: &mut DocumentMut, rules: &[RuleConfig]) {
    let mut old = take_tables(doc, "rule");
    let mut kept = Vec::new();
    for r in rules {
        let from = r.from.to_string();
        let found = old
            .iter()
            .position(|t| str_of(t, "from").as_deref() == Some(&from));
        let mut table = found.map(|i| old.remove(i)).unwrap_or_default();
        set_opt(&mut table, "from", Some(from));
        set_opt(&mut table, "table", Some(r.table.clone()));
        kept.push(table);
    }
    // Tables print in the order of their place in the file, not of the array. Rules are
    // tried in order, so when the kept ones changed order, or a new one comes before a kept
    // one, all are written afresh (with their comments) in array order.
    let places: Vec<Option<usize>> = kept.iter().map(Table::position).collect();
    let in_order = places.windows(2).all(|w| match (w[0], w[1]) {
        (Some(a), Some(b)) => a < b,
        (_, None) => true,
        (None, Some(_)) => false,
    });
    let mut out = ArrayOfTables::new();
    for table in kept {
        out.push(if in_order { table } else { unplaced(&table) });
    }
    put_tables(doc, "rule", out);
}

/// A copy of `table` (keys, values, comments) with no place in the file.
fn unplaced(table: &Table) -> Table {
    let mut fresh = Table::new();
    *fresh.decor_mut() = table.decor().clone();
    for (key, item) in table.iter() {
        fresh.insert(key, item.clone());
    }
    fresh
}

/// Removes the array of tables `key` from `doc` and returns its tables (inline tables of an
/// inline array become tables).
fn take_tables(doc: &mut DocumentMut, key: &str) -> Vec<Table> {
    match doc.get(key) {
        Some(Item::ArrayOfTables(a)) => a.iter().cloned().collect(),
        Some(Item::Value(Value::Array(a))) => a
            .iter()
            .filter_map(Value::as_inline_table)
            .map(|t| t.clone().into_table())
            .collect(),
        _ => Vec::new(),
    }
}

/// Puts `tables` back at `key`, in the key's old place; removes the key when there are none.
fn put_tables(doc: &mut DocumentMut, key: &str, tables: ArrayOfTables) {
    if tables.is_empty() {
        doc.remove(key);
    } else {
        doc.insert(key, Item::ArrayOfTables(tables));
    }
}

/// The tables of an array of tables, or of an inline array of inline tables.
fn tables_mut(item: &mut Item) -> Vec<&mut dyn TableLike> {
    match item {
        Item::ArrayOfTables(a) => a.iter_mut().map(|t| t as &mut dyn TableLike).collect(),
        Item::Value(Value::Array(a)) => a
            .iter_mut()
            .filter_map(|v| v.as_inline_table_mut())
            .map(|t| t as &mut dyn TableLike)
            .collect(),
        _ => Vec::new(),
    }
}

/// Sets `key` to `value`, keeping the comments around the old value.
fn set(table: &mut dyn TableLike, key: &str, value: impl Into<Value>) {
    let mut value = value.into();
    if let Some(old) = table.get(key).and_then(Item::as_value) {
        *value.decor_mut() = old.decor().clone();
    }
    table.insert(key, Item::Value(value));
}

/// The TOML spelling of a mode, balance or link state.
fn name_of<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Reads `text` back and checks it says what `running` says.
fn check_round_trip(text: &str, running: &Running) -> Result<(), String> {
    let config: Config =
        toml::from_str(text).map_err(|e| format!("the merged file does not decode: {e}"))?;
    let links: Vec<(&str, &str, u32, LinkState)> = config
        .peers
        .iter()
        .flat_map(|p| {
            p.links
                .iter()
                .map(move |l| (p.name.as_str(), l.name.as_str(), l.weight, l.state))
        })
        .collect();
    let wrong = |what: &str| {
        Err(format!(
            "the merged file does not reproduce the running {what}"
        ))
    };
    if config.bond.mode != running.mode || config.bond.balance != running.balance {
        return wrong("bond mode");
    }
    for l in &running.links {
        if !links.contains(&(l.peer.as_str(), l.link.as_str(), l.weight, l.state)) {
            return wrong(&format!("link {}/{}", l.peer, l.link));
        }
    }
    for p in &running.peers {
        if !config
            .peers
            .iter()
            .any(|c| c.name == p.peer && c.weights == p.weights)
        {
            return wrong(&format!("weights of peer {}", p.peer));
        }
    }
    // Routes are looked up by prefix, so only their set matters; rules are tried in order.
    let sorted = |routes: &[RouteConfig]| {
        let mut v: Vec<String> = routes.iter().map(|r| format!("{r:?}")).collect();
        v.sort();
        v
    };
    if sorted(&config.routes) != sorted(&running.routes) {
        return wrong("routes");
    }
    if config.rules != running.rules {
        return wrong("rules");
    }
    Ok(())
}
