//! The counters in the Prometheus text format (0.0.4), served on `metrics_listen` at
//! `/metrics` and through the control socket.

use super::counters::Totals;
use super::counters::{LinkTotals, PortTotals};
use crate::health::Figures;
use crate::snapshot::Link;
use crate::snapshot::Snapshot;
use crate::stats::{DropReason, WorkerStats};
use braid_control::config::{LinkState, Role};
use braid_control::held;
use std::fmt::{Display, Write as _};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// Longest HTTP request head read.
const MAX_HEAD: usize = 8192;
/// How long a metrics client may take to send its request.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// A label value with `\`, `"` and newlines escaped.
fn esc(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A counter summed per link.
type LinkField = fn(&LinkTotals) -> u64;
/// A counter summed per port.
type PortField = fn(&PortTotals) -> u64;
/// A counter of one worker.
type WorkerField = fn(&WorkerStats) -> u64;

/// Tunnel traffic per link: name, help, value.
const LINK_COUNTERS: [(&str, &str, LinkField); 4] = [
    (
        "braid_link_tx_packets_total",
        "Tunnel packets sent over a link.",
        |t| t.tx.packets,
    ),
    (
        "braid_link_tx_bytes_total",
        "Bytes of tunnel packets sent over a link.",
        |t| t.tx.bytes,
    ),
    (
        "braid_link_rx_packets_total",
        "Tunnel packets received over a link.",
        |t| t.rx.packets,
    ),
    (
        "braid_link_rx_bytes_total",
        "Bytes of tunnel packets received over a link.",
        |t| t.rx.bytes,
    ),
];

/// Frames per interface: name, help, value.
const PORT_COUNTERS: [(&str, &str, PortField); 5] = [
    (
        "braid_interface_rx_packets_total",
        "Frames received on an interface.",
        |t| t.rx.packets,
    ),
    (
        "braid_interface_rx_bytes_total",
        "Bytes of frames received on an interface.",
        |t| t.rx.bytes,
    ),
    (
        "braid_interface_tx_packets_total",
        "Frames sent on an interface.",
        |t| t.tx.packets,
    ),
    (
        "braid_interface_tx_bytes_total",
        "Bytes of frames sent on an interface.",
        |t| t.tx.bytes,
    ),
    (
        "braid_interface_tx_dropped_total",
        "Frames an interface could not send.",
        |t| t.tx_dropped,
    ),
];

/// What each worker did with frames: name, help, value.
const WORKER_COUNTERS: [(&str, &str, WorkerField); 3] = [
    (
        "braid_worker_forwarded_packets_total",
        "Frames a worker forwarded.",
        |w| w.forwarded.get(),
    ),
    (
        "braid_worker_local_packets_total",
        "Frames a worker answered or consumed itself.",
        |w| w.local.get(),
    ),
    (
        "braid_worker_icmp_errors_total",
        "ICMP errors a worker sent.",
        |w| w.icmp_errors.get(),
    ),
];

/// Each worker's masquerade work: name, help, value.
const NAT_COUNTERS: [(&str, &str, WorkerField); 5] = [
    (
        "braid_nat_sessions_created_total",
        "Masquerade sessions a worker created.",
        |w| w.nat.created.get(),
    ),
    (
        "braid_nat_sessions_expired_total",
        "Masquerade sessions of a worker that expired.",
        |w| w.nat.expired.get(),
    ),
    (
        "braid_nat_translated_out_packets_total",
        "Packets a worker translated inside to outside.",
        |w| w.nat.translated_out.get(),
    ),
    (
        "braid_nat_translated_in_packets_total",
        "Packets a worker translated outside to inside.",
        |w| w.nat.translated_in.get(),
    ),
    (
        "braid_worker_handed_off_packets_total",
        "Packets a worker handed to the worker owning their masquerade session or reorder window.",
        |w| w.handed_off.get(),
    ),
];

/// Each worker's reorder windows: name, help, value.
const REORDER_COUNTERS: [(&str, &str, WorkerField); 4] = [
    (
        "braid_reorder_in_order_packets_total",
        "Packets out of the tunnel that came in their turn.",
        |w| w.reorder.in_order.get(),
    ),
    (
        "braid_reorder_repaired_packets_total",
        "Packets out of the tunnel held until the ones in front of them came.",
        |w| w.reorder.repaired.get(),
    ),
    (
        "braid_reorder_late_packets_total",
        "Packets out of the tunnel that came after their gap was given up.",
        |w| w.reorder.late.get(),
    ),
    (
        "braid_reorder_given_up_total",
        "Bond sequence numbers given up (lost, or later than the wait).",
        |w| w.reorder.given_up.get(),
    ),
];

/// Writes a metric family: its `# HELP` and `# TYPE` lines, then one sample line per
/// `(labels, value)`, `name value` when the labels are empty.
fn family<L: AsRef<str>, V: Display>(
    out: &mut String,
    kind: &str,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = match labels.as_ref() {
            "" => writeln!(out, "{name} {value}"),
            labels => writeln!(out, "{name}{{{labels}}} {value}"),
        };
    }
}

/// A gauge family (see [`family`]).
fn gauge<L: AsRef<str>, V: Display>(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) {
    family(out, "gauge", name, help, samples);
}

/// A counter family (see [`family`]).
fn counter<L: AsRef<str>, V: Display>(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) {
    family(out, "counter", name, help, samples);
}

/// `field` of each worker, labelled with the worker's index.
fn per_worker(
    stats: &[Arc<WorkerStats>],
    field: WorkerField,
) -> impl Iterator<Item = (String, u64)> + '_ {
    stats
        .iter()
        .enumerate()
        .map(move |(i, w)| (format!("worker=\"{i}\""), field(w)))
}

/// All metrics of the daemon running `snap` with workers counting into `stats`.
pub fn render(snap: &Snapshot, stats: &[Arc<WorkerStats>], uptime: Duration) -> String {
    let totals = Totals::sum(stats, snap.ports.len());
    let mut out = String::new();
    daemon(&mut out, snap, uptime);
    links(&mut out, snap, &totals);
    ports(&mut out, snap, &totals);
    workers(&mut out, stats);
    nat(&mut out, stats);
    for (name, help, field) in REORDER_COUNTERS {
        counter(&mut out, name, help, per_worker(stats, field));
    }
    reorder_held(&mut out, stats);
    drops(&mut out, stats);
    out
}

/// The daemon itself: role and version, uptime, configuration generation.
fn daemon(out: &mut String, snap: &Snapshot, uptime: Duration) {
    let role = match snap.role {
        Role::Edge => "edge",
        Role::Hub => "hub",
    };
    let info = format!("role=\"{role}\",version=\"{}\"", env!("CARGO_PKG_VERSION"));
    gauge(
        out,
        "braid_info",
        "The daemon's role and version.",
        [(info, 1)],
    );
    let seconds = format!("{:.3}", uptime.as_secs_f64());
    gauge(
        out,
        "braid_uptime_seconds",
        "Seconds since braidd started.",
        [("", seconds)],
    );
    gauge(
        out,
        "braid_config_generation",
        "Generation of the running configuration (1 at start, +1 per change).",
        [("", snap.generation)],
    );
}

/// Every link of every peer with its labels.
fn labelled_links(snap: &Snapshot) -> Vec<(String, &Link)> {
    snap.peers
        .iter()
        .flat_map(|p| {
            p.links.iter().map(move |l| {
                (
                    format!("peer=\"{}\",link=\"{}\"", esc(&p.name), esc(&l.name)),
                    l,
                )
            })
        })
        .collect()
}

/// Per link of every peer: weight, state and tunnel traffic.
fn links(out: &mut String, snap: &Snapshot, totals: &Totals) {
    let links = labelled_links(snap);
    let weights = links.iter().map(|(labels, l)| (labels, l.weight));
    gauge(
        out,
        "braid_link_weight",
        "Configured weight of a link.",
        weights,
    );
    let learned = links
        .iter()
        .filter_map(|(labels, l)| l.learned_weight().map(|w| (labels, w)));
    gauge(
        out,
        "braid_link_learned_weight",
        "Weight learned from a link's measured capacity (peers with auto weights).",
        learned,
    );
    let up = links
        .iter()
        .map(|(labels, l)| (labels, u8::from(l.state == LinkState::Up)));
    gauge(
        out,
        "braid_link_up",
        "1 when a link is administratively up, 0 when down.",
        up,
    );
    for (name, help, field) in LINK_COUNTERS {
        let samples = links
            .iter()
            .map(|(labels, l)| (labels, totals.links.get(l.slot.0).map_or(0, field)));
        counter(out, name, help, samples);
    }
    link_health(out, &links);
}

/// Per link: what its probes measured.
fn link_health(out: &mut String, links: &[(String, &Link)]) {
    let figures: Vec<(&String, Figures)> = links
        .iter()
        .map(|(labels, l)| (labels, l.health.figures()))
        .collect();
    let each = |f: FigureField| {
        figures
            .iter()
            .map(move |(labels, g)| (*labels, f(g)))
            .collect::<Vec<_>>()
    };
    gauge(
        out,
        "braid_link_healthy",
        "1 when a link's probes say it works, 0 when its health took it down.",
        each(|g| u8::from(g.up).to_string()),
    );
    gauge(
        out,
        "braid_link_rtt_seconds",
        "Smoothed round-trip time of a link's probes (0: no answer yet).",
        each(|g| seconds(g.srtt_ns)),
    );
    gauge(
        out,
        "braid_link_rtt_variance_seconds",
        "Mean deviation of a link's round-trip time.",
        each(|g| seconds(g.rttvar_ns)),
    );
    gauge(
        out,
        "braid_link_jitter_seconds",
        "Mean difference of consecutive round-trip times of a link's probes.",
        each(|g| seconds(g.jitter_ns)),
    );
    gauge(
        out,
        "braid_link_loss_ratio",
        "Lost share of a link's last 20 probes.",
        each(|g| format!("{:.3}", f64::from(g.loss_permille) / 1000.0)),
    );
    gauge(
        out,
        "braid_link_peer_rx_bits_per_second",
        "Data rate the peer reports receiving on a link.",
        each(|g| g.peer_rx_bps.to_string()),
    );
    for (name, help, field) in PROBE_COUNTERS {
        counter(out, name, help, each(field));
    }
}

/// Nanoseconds as seconds with microseconds.
fn seconds(ns: u64) -> String {
    format!("{:.6}", ns as f64 / 1e9)
}

/// A link's figure as a metric value.
type FigureField = fn(&Figures) -> String;

/// Probe counts per link: name, help, value.
const PROBE_COUNTERS: [(&str, &str, FigureField); 3] = [
    (
        "braid_link_probes_sent_total",
        "Probes sent on a link.",
        |g| g.sent.to_string(),
    ),
    (
        "braid_link_probes_answered_total",
        "Probes on a link that were answered.",
        |g| g.answered.to_string(),
    ),
    (
        "braid_link_probes_lost_total",
        "Probes on a link that were not answered in time.",
        |g| g.lost.to_string(),
    ),
];

/// Per interface: frames and bytes both ways, frames not sent.
fn ports(out: &mut String, snap: &Snapshot, totals: &Totals) {
    for (name, help, field) in PORT_COUNTERS {
        let samples = snap
            .ports
            .iter()
            .zip(&totals.ports)
            .map(|(port, t)| (format!("interface=\"{}\"", esc(&port.name)), field(t)));
        counter(out, name, help, samples);
    }
}

/// Per worker: frames forwarded, answered locally, ICMP errors sent.
fn workers(out: &mut String, stats: &[Arc<WorkerStats>]) {
    for (name, help, field) in WORKER_COUNTERS {
        counter(out, name, help, per_worker(stats, field));
    }
}

/// Per worker: live masquerade sessions, sessions made and expired, translations, handoffs.
fn nat(out: &mut String, stats: &[Arc<WorkerStats>]) {
    gauge(
        out,
        "braid_nat_sessions",
        "Live masquerade sessions of a worker.",
        per_worker(stats, |w| w.nat.sessions.get()),
    );
    for (name, help, field) in NAT_COUNTERS {
        counter(out, name, help, per_worker(stats, field));
    }
}

/// Per worker and reason: frames dropped.
/// The `le` bounds (seconds) of the held-time histogram: edges of `braid_control::held`'s
/// buckets, few enough for a dashboard.
const HELD_LE: [(u64, &str); 8] = [
    (1_000_000, "0.001"),
    (2_000_000, "0.002"),
    (5_000_000, "0.005"),
    (10_000_000, "0.01"),
    (20_000_000, "0.02"),
    (50_000_000, "0.05"),
    (100_000_000, "0.1"),
    (250_000_000, "0.25"),
];

/// How long each worker's reorder windows held packets, as a histogram.
fn reorder_held(out: &mut String, stats: &[Arc<WorkerStats>]) {
    let name = "braid_reorder_held_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} How long a worker's reorder windows held packets before they left."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (i, w) in stats.iter().enumerate() {
        let buckets = &w.reorder.held;
        let mut below = 0;
        let mut counted = 0;
        for (edge_ns, le) in HELD_LE {
            let end = held::bucket(edge_ns);
            below += buckets
                .iter()
                .take(end)
                .skip(counted)
                .map(|c| c.get())
                .sum::<u64>();
            counted = end;
            let _ = writeln!(out, "{name}_bucket{{worker=\"{i}\",le=\"{le}\"}} {below}");
        }
        let all = below + buckets.iter().skip(counted).map(|c| c.get()).sum::<u64>();
        let _ = writeln!(out, "{name}_bucket{{worker=\"{i}\",le=\"+Inf\"}} {all}");
        let sum = w.reorder.held_ns.get() as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{worker=\"{i}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{worker=\"{i}\"}} {all}");
    }
}

fn drops(out: &mut String, stats: &[Arc<WorkerStats>]) {
    let samples = stats.iter().enumerate().flat_map(|(i, w)| {
        DropReason::ALL.iter().map(move |why| {
            let labels = format!("worker=\"{i}\",reason=\"{}\"", why.name());
            (labels, w.drops_of(*why))
        })
    });
    counter(
        out,
        "braid_drops_total",
        "Frames a worker dropped, by reason.",
        samples,
    );
}

/// Answers one HTTP request on `stream`: the metrics for `GET /metrics`, 404 for other paths,
/// 405 for other methods, 400 for anything unreadable.
pub fn serve_http(mut stream: TcpStream, metrics: impl FnOnce() -> String) -> io::Result<()> {
    stream.set_read_timeout(Some(HEAD_TIMEOUT))?;
    stream.set_write_timeout(Some(HEAD_TIMEOUT))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let first = head.split(|&b| b == b'\r').next().unwrap_or(&[]);
    let parts: Vec<&[u8]> = first.split(|&b| b == b' ').collect();
    let (status, kind, body) = match parts.as_slice() {
        [b"GET", path, version] if version.starts_with(b"HTTP/1.") => {
            let path = path.split(|&b| b == b'?').next().unwrap_or(&[]);
            if path == b"/metrics" {
                (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    metrics(),
                )
            } else {
                (
                    "404 Not Found",
                    "text/plain",
                    "not found; try /metrics\n".into(),
                )
            }
        }
        [_, _, version] if version.starts_with(b"HTTP/1.") => {
            ("405 Method Not Allowed", "text/plain", "only GET\n".into())
        }
        _ => ("400 Bad Request", "text/plain", "bad request\n".into()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())
}
