//! The counters in the Prometheus text format (0.0.4), served on `metrics_listen` at
//! `/metrics` and through the control socket.

use super::counters::Totals;
use super::counters::{LinkTotals, PortTotals};
use crate::snapshot::Link;
use crate::snapshot::Snapshot;
use crate::stats::{DropReason, WorkerStats};
use braid_control::config::{LinkState, Role};
use std::fmt::Write as _;
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

/// Writes the `# HELP` and `# TYPE` lines of a metric.
fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// All metrics of the daemon running `snap` with workers counting into `stats`.
pub fn render(snap: &Snapshot, stats: &[Arc<WorkerStats>], uptime: Duration) -> String {
    let totals = Totals::sum(stats, snap.ports.len());
    let mut out = String::new();
    let role = match snap.role {
        Role::Edge => "edge",
        Role::Hub => "hub",
    };
    head(
        &mut out,
        "braid_info",
        "gauge",
        "The daemon's role and version.",
    );
    let _ = writeln!(
        out,
        "braid_info{{role=\"{role}\",version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    head(
        &mut out,
        "braid_uptime_seconds",
        "gauge",
        "Seconds since braidd started.",
    );
    let _ = writeln!(out, "braid_uptime_seconds {:.3}", uptime.as_secs_f64());
    head(
        &mut out,
        "braid_config_generation",
        "gauge",
        "Generation of the running configuration (1 at start, +1 per change).",
    );
    let _ = writeln!(out, "braid_config_generation {}", snap.generation);

    let links: Vec<(String, &Link)> = snap
        .peers
        .iter()
        .flat_map(|p| {
            p.links.iter().map(move |l| {
                (
                    format!("peer=\"{}\",link=\"{}\"", esc(&p.name), esc(&l.name)),
                    l,
                )
            })
        })
        .collect();
    head(
        &mut out,
        "braid_link_weight",
        "gauge",
        "Configured weight of a link.",
    );
    for (labels, l) in &links {
        let _ = writeln!(out, "braid_link_weight{{{labels}}} {}", l.weight);
    }
    head(
        &mut out,
        "braid_link_up",
        "gauge",
        "1 when a link is administratively up, 0 when down.",
    );
    for (labels, l) in &links {
        let up = u8::from(l.state == LinkState::Up);
        let _ = writeln!(out, "braid_link_up{{{labels}}} {up}");
    }
    type LinkField = fn(&LinkTotals) -> u64;
    let link_counters: [(&str, &str, LinkField); 4] = [
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
    for (name, help, field) in link_counters {
        head(&mut out, name, "counter", help);
        for (labels, l) in &links {
            let n = totals.links.get(l.slot.0).map_or(0, field);
            let _ = writeln!(out, "{name}{{{labels}}} {n}");
        }
    }

    type PortField = fn(&PortTotals) -> u64;
    let port_counters: [(&str, &str, PortField); 5] = [
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
    for (name, help, field) in port_counters {
        head(&mut out, name, "counter", help);
        for (port, t) in snap.ports.iter().zip(&totals.ports) {
            let _ = writeln!(
                out,
                "{name}{{interface=\"{}\"}} {}",
                esc(&port.name),
                field(t)
            );
        }
    }

    type WorkerField = fn(&WorkerStats) -> u64;
    let worker_counters: [(&str, &str, WorkerField); 3] = [
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
    for (name, help, field) in worker_counters {
        head(&mut out, name, "counter", help);
        for (i, w) in stats.iter().enumerate() {
            let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", field(w));
        }
    }
    let nat_gauge = "braid_nat_sessions";
    head(
        &mut out,
        nat_gauge,
        "gauge",
        "Live masquerade sessions of a worker.",
    );
    for (i, w) in stats.iter().enumerate() {
        let _ = writeln!(
            out,
            "{nat_gauge}{{worker=\"{i}\"}} {}",
            w.nat.sessions.get()
        );
    }
    let nat_counters: [(&str, &str, WorkerField); 5] = [
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
            "Packets a worker handed to the worker owning their masquerade session.",
            |w| w.handed_off.get(),
        ),
    ];
    for (name, help, field) in nat_counters {
        head(&mut out, name, "counter", help);
        for (i, w) in stats.iter().enumerate() {
            let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", field(w));
        }
    }
    head(
        &mut out,
        "braid_drops_total",
        "counter",
        "Frames a worker dropped, by reason.",
    );
    for (i, w) in stats.iter().enumerate() {
        for why in DropReason::ALL {
            let _ = writeln!(
                out,
                "braid_drops_total{{worker=\"{i}\",reason=\"{}\"}} {}",
                why.name(),
                w.drops_of(*why)
            );
        }
    }
    out
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
