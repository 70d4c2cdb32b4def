//! `braidctl`'s tables for people: each reply rendered as aligned text.

use crate::config::{InterfaceAddress, LinkState, RouteConfig, WeightMode};
use crate::proto::{
    HealthInfo, InterfaceInfo, Interfaces, Links, Nat, Routes, Rules, Stats, Status, Traffic,
};
use std::fmt::Write;

/// Columns of a table: a header, rows, and whether each column is right-aligned.
struct Table {
    header: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first `left` columns are left-aligned and the rest right-aligned.
    fn new(header: &[&'static str], left: usize) -> Table {
        Table {
            header: header.to_vec(),
            right: (0..header.len()).map(|i| i >= left).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        let all: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                all.iter()
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in all {
            let mut line = String::new();
            for (c, width) in widths.iter().enumerate() {
                let cell = row.get(c).map_or("", String::as_str);
                if c > 0 {
                    line.push_str("  ");
                }
                if self.right[c] {
                    let _ = write!(line, "{cell:>width$}");
                } else {
                    let _ = write!(line, "{cell:<width$}");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Kilobits per second with two decimals.
fn kbps(bps: u64) -> String {
    format!("{:.2}", bps as f64 / 1000.0)
}

fn state(s: LinkState) -> &'static str {
    match s {
        LinkState::Up => "up",
        LinkState::Down => "down",
    }
}

/// `1d 2h 3m 4s`, leaving out leading zero units.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

/// An interface's address as `braidctl status` shows it.
fn address_text(i: &InterfaceInfo) -> String {
    match (i.address, i.kernel) {
        (Some(a), false) => InterfaceAddress::Static(a).to_string(),
        (a, _) => InterfaceAddress::Kernel(a).to_string(),
    }
}

fn lower<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `braidctl status`.
pub fn status(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "braidd {} ({})", s.version, lower(s.role));
    let _ = writeln!(out, "public key  {}", s.public_key);
    let _ = writeln!(out, "uptime      {}", duration(s.uptime_ms));
    let _ = writeln!(out, "workers     {}", s.workers);
    let _ = writeln!(
        out,
        "bond        {} (balance {})",
        lower(s.mode),
        lower(s.balance)
    );
    let _ = writeln!(out, "config      {}", s.config.display());
    let _ = writeln!(out, "generation  {}", s.generation);
    let mut t = Table::new(&["INTERFACE", "ADDRESS", "MAC", "MTU"], 3);
    for i in &s.interfaces {
        t.row(vec![
            i.name.clone(),
            address_text(i),
            i.mac.clone(),
            i.mtu.to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    let mut t = Table::new(
        &[
            "PEER",
            "PUBLIC KEY",
            "LINKS",
            "ACTIVE",
            "SESSION",
            "ALLOWED",
        ],
        2,
    );
    t.right[4] = false;
    t.right[5] = false;
    for p in &s.peers {
        let allowed: Vec<String> = p.allowed.iter().map(ToString::to_string).collect();
        let session = match &p.session {
            Some(x) => format!("{}, {} old", x.cipher, duration(x.age_ms)),
            None => "none yet".into(),
        };
        t.row(vec![
            p.name.clone(),
            p.public_key.to_string(),
            p.links.to_string(),
            p.links_active.to_string(),
            session,
            allowed.join(","),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    out
}

/// `braidctl mode` without arguments.
pub fn mode(s: &Status) -> String {
    format!("{} (balance {})\n", lower(s.mode), lower(s.balance))
}

/// `braidctl links`.
pub fn links(l: &Links) -> String {
    let mut t = Table::new(
        &[
            "PEER",
            "LINK",
            "IFACE",
            "STATE",
            "HEALTH",
            "RTT MS",
            "JITTER",
            "LOSS",
            "WEIGHT",
            "TX PKTS",
            "TX BYTES",
            "TX KBPS",
            "TX PK/S",
            "RX PKTS",
            "RX BYTES",
            "RX KBPS",
            "RX PK/S",
            "IF TX DROPS",
        ],
        5,
    );
    for k in &l.links {
        let weight = if k.weight == k.effective_weight {
            k.weight.to_string()
        } else {
            format!("{} ({})", k.effective_weight, k.weight)
        };
        let [health, rtt, jitter, loss] = health_cells(&k.health);
        t.row(vec![
            k.peer.clone(),
            k.name.clone(),
            k.interface.clone(),
            state(k.state).into(),
            health,
            rtt,
            jitter,
            loss,
            weight,
            k.tx.packets.to_string(),
            k.tx.bytes.to_string(),
            kbps(k.tx.bps),
            k.tx.pps.to_string(),
            k.rx.packets.to_string(),
            k.rx.bytes.to_string(),
            kbps(k.rx.bps),
            k.rx.pps.to_string(),
            k.interface_tx_dropped.to_string(),
        ]);
    }
    let mut out = t.render();
    let _ = writeln!(out, "(rates averaged over the last {} msec)", l.interval_ms);
    out
}

/// A link's health as table cells: state (with the reason it went down), RTT and
/// jitter in milliseconds, loss in percent.
fn health_cells(h: &HealthInfo) -> [String; 4] {
    let ms = |us: u64| format!("{:.1}", us as f64 / 1000.0);
    let state = match (&h.reason, h.up) {
        (_, true) => "up".to_string(),
        (Some(why), false) => format!("down ({why})"),
        (None, false) => "down".to_string(),
    };
    [
        state,
        h.rtt_us.map_or_else(|| "-".into(), ms),
        ms(h.jitter_us),
        format!("{:.1}%", f64::from(h.loss_permille) / 10.0),
    ]
}

/// `braidctl weights` without arguments: per link, where its peer's weights come from
/// (`manual` or `auto`), the configured weight, the learned one (`-`: none), the state and
/// the share of the peer's traffic the scheduler gives it.
pub fn weights(l: &Links) -> String {
    let mut t = Table::new(
        &[
            "PEER", "LINK", "MODE", "WEIGHT", "LEARNED", "STATE", "SHARE",
        ],
        3,
    );
    t.right[5] = false;
    for k in &l.links {
        let total: u32 = l
            .links
            .iter()
            .filter(|o| o.peer == k.peer)
            .map(|o| o.effective_weight)
            .sum();
        let share = if total == 0 {
            0.0
        } else {
            100.0 * f64::from(k.effective_weight) / f64::from(total)
        };
        let mode = match k.weights {
            WeightMode::Manual => "manual",
            WeightMode::Auto => "auto",
        };
        t.row(vec![
            k.peer.clone(),
            k.name.clone(),
            mode.into(),
            k.weight.to_string(),
            k.learned_weight
                .map_or_else(|| "-".into(), |w| w.to_string()),
            state(k.state).into(),
            format!("{share:.1}%"),
        ]);
    }
    t.render()
}

fn route_row(r: &RouteConfig) -> Vec<String> {
    let via = match (&r.peer, &r.dev, r.via) {
        (Some(peer), _, _) => format!("bond {peer}"),
        (None, Some(dev), Some(via)) => format!("via {via} dev {dev}"),
        (None, Some(dev), None) => format!("dev {dev}"),
        (None, None, _) => "-".into(),
    };
    vec![r.table.clone(), r.to.to_string(), via]
}

/// `braidctl routes`.
pub fn routes(r: &Routes) -> String {
    let mut t = Table::new(&["TABLE", "TO", "NEXT HOP"], 3);
    for route in &r.routes {
        t.row(route_row(route));
    }
    t.render()
}

/// `braidctl rules`.
pub fn rules(r: &Rules) -> String {
    let mut t = Table::new(&["#", "FROM", "TABLE"], 0);
    t.right[0] = true;
    for (i, rule) in r.rules.iter().enumerate() {
        t.row(vec![
            i.to_string(),
            rule.from.to_string(),
            rule.table.clone(),
        ]);
    }
    let mut out = t.render();
    out.push_str("(then: main)\n");
    out
}

/// `braidctl stats`.
pub fn stats(s: &Stats) -> String {
    let mut t = Table::new(&["WORKER", "FORWARDED", "LOCAL", "ICMP ERRORS", "DROPS"], 0);
    t.right = vec![true; 5];
    for w in &s.workers {
        let drops: u64 = w.drops.iter().map(|d| d.count).sum();
        t.row(vec![
            w.worker.to_string(),
            w.forwarded.to_string(),
            w.local.to_string(),
            w.icmp_errors.to_string(),
            drops.to_string(),
        ]);
    }
    let mut out = t.render();
    let mut q = Table::new(
        &["WORKER", "INTERFACE", "RX PKTS", "TX PKTS", "TX DROPS"],
        2,
    );
    q.right[0] = true;
    for w in &s.workers {
        for i in &w.interfaces {
            q.row(vec![
                w.worker.to_string(),
                i.interface.clone(),
                i.rx_packets.to_string(),
                i.tx_packets.to_string(),
                i.tx_dropped.to_string(),
            ]);
        }
    }
    out.push('\n');
    out.push_str(&q.render());
    let mut r = Table::new(
        &[
            "WORKER",
            "IN ORDER",
            "REPAIRED",
            "LATE",
            "GIVEN UP",
            "HELD P50",
            "HELD P99",
            "ADDED P99",
        ],
        0,
    );
    r.right = vec![true; 8];
    for w in &s.workers {
        let c = &w.reorder;
        let held = !c.held_us.is_empty();
        r.row(vec![
            w.worker.to_string(),
            c.in_order.to_string(),
            c.repaired.to_string(),
            c.late.to_string(),
            c.given_up.to_string(),
            held_ms(held, c.held_quantile_us(0.5)),
            held_ms(held, c.held_quantile_us(0.99)),
            held_ms(held, c.added_us(0.99)),
        ]);
    }
    out.push_str(
        "\nReorder (packets out of the tunnel, by how they left; HELD: how long held packets \
         waited, ADDED: the wait over every packet):\n",
    );
    out.push_str(&r.render());
    let mut d = Table::new(&["DROP REASON", "PACKETS"], 1);
    for drop in s.drops.iter().filter(|d| d.count > 0) {
        d.row(vec![drop.reason.clone(), drop.count.to_string()]);
    }
    out.push('\n');
    if d.rows.is_empty() {
        out.push_str("no drops\n");
    } else {
        out.push_str(&d.render());
    }
    out
}

/// A time a reorder window held packets, from [`crate::held`]'s bucket edges:
/// "≤ 1.25 ms"; "-" when nothing was held.
fn held_ms(any: bool, us: u64) -> String {
    match (any, us) {
        (false, _) => "-".into(),
        (true, u64::MAX) => "> 250 ms".into(),
        (true, 0) => "0".into(),
        (true, us) => format!("≤ {:.2} ms", us as f64 / 1000.0),
    }
}

/// One refresh of `braidctl watch`: the per-interface rates, with a total row.
pub fn watch(i: &Interfaces) -> String {
    let mut out = format!("Averages for the last {} msec\n", i.interval_ms);
    let mut t = Table::new(
        &[
            "interface",
            "input kbps",
            "input pk/s",
            "output kbps",
            "output pk/s",
        ],
        1,
    );
    let (mut rx, mut tx) = (Traffic::default(), Traffic::default());
    for n in &i.interfaces {
        t.row(vec![
            n.name.clone(),
            kbps(n.rx.bps),
            n.rx.pps.to_string(),
            kbps(n.tx.bps),
            n.tx.pps.to_string(),
        ]);
        (rx.bps, rx.pps) = (rx.bps + n.rx.bps, rx.pps + n.rx.pps);
        (tx.bps, tx.pps) = (tx.bps + n.tx.bps, tx.pps + n.tx.pps);
    }
    t.row(vec![
        "total".into(),
        kbps(rx.bps),
        rx.pps.to_string(),
        kbps(tx.bps),
        tx.pps.to_string(),
    ]);
    out.push_str(&t.render());
    if !i.links.is_empty() {
        out.push('\n');
        let mut t = Table::new(
            &[
                "peer", "link", "state", "health", "rtt ms", "jitter", "loss",
            ],
            4,
        );
        for k in &i.links {
            let [health, rtt, jitter, loss] = health_cells(&k.health);
            t.row(vec![
                k.peer.clone(),
                k.name.clone(),
                state(k.state).into(),
                health,
                rtt,
                jitter,
                loss,
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

/// `braidctl nat`.
pub fn nat(n: &Nat) -> String {
    if !n.enabled {
        return "masquerade not enabled\n".into();
    }
    let mut out = String::new();
    for m in &n.masquerades {
        let addresses: Vec<String> = m.addresses.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "masquerade on {} as {}",
            m.interface,
            addresses.join(", ")
        );
    }
    let c = &n.counters;
    let _ = writeln!(
        out,
        "sessions {} (created {}, expired {}); packets translated out {}, in {}",
        c.sessions, c.created, c.expired, c.translated_out, c.translated_in
    );
    if n.sessions.is_empty() {
        out.push_str("no sessions to list\n");
        return out;
    }
    let mut t = Table::new(
        &[
            "IFACE",
            "PROTO",
            "INSIDE",
            "OUTSIDE",
            "STATE",
            "AGE",
            "EXPIRES IN",
        ],
        5,
    );
    for s in &n.sessions {
        t.row(vec![
            s.interface.clone(),
            s.protocol.clone(),
            s.inside.to_string(),
            s.outside.to_string(),
            s.state.clone(),
            duration(s.age_ms),
            duration(s.remaining_ms),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    if n.truncated {
        let _ = writeln!(out, "(more sessions than listed; see --limit, --address)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{InterfaceTraffic, LinkInfo, ReorderCounters, WorkerCounters};

    fn traffic(packets: u64, bytes: u64, pps: u64, bps: u64) -> Traffic {
        Traffic {
            packets,
            bytes,
            pps,
            bps,
        }
    }

    #[test]
    fn reorder_table_shows_how_long_packets_were_held() {
        let worker = |worker, held_us: Vec<[u64; 2]>| WorkerCounters {
            worker,
            forwarded: 0,
            local: 0,
            icmp_errors: 0,
            drops: vec![],
            interfaces: vec![],
            reorder: ReorderCounters {
                in_order: 90,
                repaired: held_us.iter().map(|b| b[1]).sum(),
                late: 0,
                given_up: 0,
                held_us,
            },
        };
        let s = Stats {
            // Worker 0: 90 in order, 9 held up to 1.25 ms, 1 up to 10.25 ms.
            workers: vec![worker(0, vec![[1250, 9], [10_250, 1]]), worker(1, vec![])],
            drops: vec![],
        };
        let text = stats(&s);
        assert!(
            text.contains(
                "WORKER  IN ORDER  REPAIRED  LATE  GIVEN UP   HELD P50    HELD P99  ADDED P99\n\
                 \x20    0        90        10     0         0  ≤ 1.25 ms  ≤ 10.25 ms  ≤ 1.25 ms\n\
                 \x20    1        90         0     0         0          -           -          -\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn watch_table_aligns_rates_and_sums_them() {
        let reply = Interfaces {
            sample: 7,
            interval_ms: 1003,
            interfaces: vec![
                InterfaceTraffic {
                    name: "lan0".into(),
                    rx: traffic(10, 1000, 1500, 12_345_678),
                    tx: traffic(5, 500, 20, 9_990),
                    tx_dropped: 0,
                },
                InterfaceTraffic {
                    name: "wan1".into(),
                    rx: traffic(1, 100, 3, 2_010),
                    tx: traffic(1, 100, 500, 4_000_000),
                    tx_dropped: 0,
                },
            ],
            links: vec![],
        };
        assert_eq!(
            watch(&reply),
            "Averages for the last 1003 msec\n\
             interface  input kbps  input pk/s  output kbps  output pk/s\n\
             lan0         12345.68        1500         9.99           20\n\
             wan1             2.01           3      4000.00          500\n\
             total        12347.69        1503      4009.99          520\n"
        );
    }

    #[test]
    fn weights_show_shares_and_the_kept_weight_of_a_link_that_is_down() {
        let link = |name: &str, weight, state| LinkInfo {
            peer: "hub".into(),
            name: name.into(),
            interface: "wan1".into(),
            gateway: None,
            remote: Some("203.0.113.2:7420".parse().unwrap()),
            state,
            weight,
            weights: WeightMode::Manual,
            learned_weight: None,
            effective_weight: if state == LinkState::Up { weight } else { 0 },
            tx: Traffic::default(),
            rx: Traffic::default(),
            interface_tx_dropped: 0,
            health: HealthInfo {
                up: true,
                ..HealthInfo::default()
            },
        };
        let reply = Links {
            interval_ms: 1000,
            links: vec![
                link("isp1", 1, LinkState::Down),
                link("isp2", 3, LinkState::Up),
                link("isp3", 1, LinkState::Up),
            ],
        };
        assert_eq!(
            weights(&reply),
            "PEER  LINK  MODE    WEIGHT  LEARNED  STATE  SHARE\n\
             hub   isp1  manual       1        -  down    0.0%\n\
             hub   isp2  manual       3        -  up     75.0%\n\
             hub   isp3  manual       1        -  up     25.0%\n"
        );
        // Learned weights: the scheduler's share follows them, the configured ones stay shown.
        let mut auto = reply.clone();
        for (k, learned) in auto.links.iter_mut().zip([None, Some(300), Some(700)]) {
            k.weights = WeightMode::Auto;
            k.learned_weight = learned;
            if let Some(w) = learned {
                k.effective_weight = w;
            }
        }
        assert_eq!(
            weights(&auto),
            "PEER  LINK  MODE  WEIGHT  LEARNED  STATE  SHARE\n\
             hub   isp1  auto       1        -  down    0.0%\n\
             hub   isp2  auto       3      300  up     30.0%\n\
             hub   isp3  auto       1      700  up     70.0%\n"
        );
        let table = links(&reply);
        let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(
            row[..10],
            ["hub", "isp1", "wan1", "down", "up", "-", "0.0", "0.0%", "0", "(1)"],
            "{table}"
        );
        // Health down: the reason, RTT, jitter and loss; watch shows them too.
        let mut reply = reply;
        reply.links[1].health = HealthInfo {
            up: false,
            reason: Some("no answer".into()),
            rtt_us: Some(20_460),
            jitter_us: 1_049,
            loss_permille: 455,
            ..HealthInfo::default()
        };
        let table = links(&reply);
        let row = table.lines().nth(2).unwrap();
        assert!(
            row.starts_with("hub   isp2  wan1   up     down (no answer)    20.5     1.0  45.5%"),
            "{table}"
        );
        let w = watch(&Interfaces {
            sample: 1,
            interval_ms: 1000,
            interfaces: vec![],
            links: reply.links,
        });
        assert!(
            w.ends_with(
                "peer  link  state  health            rtt ms  jitter   loss\n\
                 hub   isp1  down   up                     -     0.0   0.0%\n\
                 hub   isp2  up     down (no answer)    20.5     1.0  45.5%\n\
                 hub   isp3  up     up                     -     0.0   0.0%\n"
            ),
            "{w}"
        );
    }

    #[test]
    fn nat_lists_sessions_or_says_it_is_off() {
        use crate::proto::{MasqueradeInfo, NatCounters, NatSession};
        let mut n = Nat {
            enabled: false,
            masquerades: vec![],
            counters: NatCounters::default(),
            sessions: vec![],
            truncated: false,
        };
        assert_eq!(nat(&n), "masquerade not enabled\n");
        n.enabled = true;
        n.masquerades.push(MasqueradeInfo {
            interface: "wan0".into(),
            addresses: vec!["203.0.113.2".parse().unwrap()],
        });
        n.counters.sessions = 1;
        n.sessions.push(NatSession {
            interface: "wan0".into(),
            protocol: "tcp".into(),
            inside: "198.18.1.2:40000".parse().unwrap(),
            outside: "203.0.113.2:61000".parse().unwrap(),
            state: "tcp_established".into(),
            age_ms: 75_000,
            remaining_ms: 7_140_000,
        });
        n.truncated = true;
        assert_eq!(
            nat(&n),
            "masquerade on wan0 as 203.0.113.2\n\
             sessions 1 (created 0, expired 0); packets translated out 0, in 0\n\n\
             IFACE  PROTO  INSIDE            OUTSIDE            STATE               AGE  EXPIRES IN\n\
             wan0   tcp    198.18.1.2:40000  203.0.113.2:61000  tcp_established  1m 15s   1h 59m 0s\n\
             (more sessions than listed; see --limit, --address)\n"
        );
    }

    #[test]
    fn durations_leave_out_leading_zero_units() {
        assert_eq!(duration(999), "0s");
        assert_eq!(duration(61_000), "1m 1s");
        assert_eq!(duration(3_600_000), "1h 0m 0s");
        assert_eq!(duration(90_061_000), "1d 1h 1m 1s");
    }
}
