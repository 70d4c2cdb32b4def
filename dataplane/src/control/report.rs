//! Replies that describe the daemon: status, links, interfaces, per-worker stats.

use super::counters::{Sampler, Totals};
use super::runtime::Runtime;
use crate::health::Figures;
use crate::snapshot::{Peer, Snapshot};
use crate::stats::{DropReason, WorkerStats};
use braid_control::config::WeightMode;
use braid_control::key::PublicKey;
use braid_control::proto::{
    DropCount, HealthInfo, InterfaceInfo, InterfaceTraffic, Interfaces, LinkInfo, Links, PeerInfo,
    QueueCounters, ReorderCounters, SessionInfo, Stats, Status, WorkerCounters,
};
use std::sync::Arc;
use std::time::Duration;

/// `aa:bb:cc:dd:ee:ff`.
fn mac_text(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// Answers `status`.
pub fn status(rt: &Runtime, uptime: Duration) -> Status {
    let c = rt.config();
    let snap = rt.shared().snapshot.load();
    // The workers' clock started with the daemon, within a millisecond of `uptime`'s.
    let now = uptime.as_nanos() as u64;
    Status {
        version: env!("CARGO_PKG_VERSION").into(),
        role: c.role,
        public_key: PublicKey::from_bytes(snap.statics.public()),
        uptime_ms: uptime.as_millis() as u64,
        workers: c.workers,
        generation: snap.generation,
        config: rt.config_path().to_path_buf(),
        mode: snap.mode,
        balance: snap.balance,
        interfaces: rt
            .resolved()
            .interfaces
            .iter()
            .zip(rt.macs())
            .map(|(i, mac)| InterfaceInfo {
                name: i.name.clone(),
                address: i.address.net(),
                kernel: i.address.is_kernel(),
                mac: mac_text(mac),
                mtu: i.mtu,
            })
            .collect(),
        peers: snap
            .peers
            .iter()
            .map(|p| PeerInfo {
                name: p.name.clone(),
                public_key: PublicKey::from_bytes(p.public_key),
                session: p.keys.sending().map(|l| SessionInfo {
                    cipher: l.send.cipher().name().into(),
                    age_ms: now.saturating_sub(l.born) / 1_000_000,
                }),
                allowed: p.allowed.clone(),
                links: p.links.len(),
                links_active: p.links.iter().filter(|l| l.effective_weight() > 0).count(),
            })
            .collect(),
    }
}

/// Answers `links`.
pub fn links(snap: &Snapshot, totals: &Totals, sampler: &Sampler) -> Links {
    Links {
        interval_ms: sampler.interval_ms(),
        links: link_infos(snap, totals, sampler),
    }
}

/// What the probes of `peer`'s links measured, link by link.
fn health_of(peer: &Peer) -> Vec<HealthInfo> {
    let figures: Vec<Figures> = peer.links.iter().map(|l| l.health.figures()).collect();
    let fastest = figures.iter().filter_map(|g| g.fwd_offset_ns).min();
    figures
        .iter()
        .map(|g| HealthInfo {
            up: g.up,
            reason: g.why.map(|w| w.as_str().to_owned()),
            rtt_us: (g.answered > 0).then_some(g.srtt_ns / 1000),
            rttvar_us: g.rttvar_ns / 1000,
            jitter_us: g.jitter_ns / 1000,
            loss_permille: g.loss_permille,
            delay_diff_us: g
                .fwd_offset_ns
                .zip(fastest)
                .map(|(o, f)| o.saturating_sub(f) / 1000),
            peer_rx_bps: g.peer_rx_bps,
            probes_sent: g.sent,
            probes_answered: g.answered,
            probes_lost: g.lost,
        })
        .collect()
}

/// Every link of every peer: configuration, traffic and health.
fn link_infos(snap: &Snapshot, totals: &Totals, sampler: &Sampler) -> Vec<LinkInfo> {
    let rates = sampler.rates(totals);
    snap.peers
        .iter()
        .flat_map(|p| p.links.iter().zip(health_of(p)).map(move |l| (p, l)))
        .map(|(p, (l, health))| {
            let traffic = rates.links.get(l.slot.0).copied().unwrap_or_default();
            LinkInfo {
                peer: p.name.clone(),
                name: l.name.clone(),
                interface: snap
                    .ports
                    .get(l.port)
                    .map(|i| i.name.clone())
                    .unwrap_or_default(),
                gateway: l.gateway,
                remote: l.destination(),
                state: l.state,
                weight: l.weight,
                weights: if l.auto {
                    WeightMode::Auto
                } else {
                    WeightMode::Manual
                },
                learned_weight: l.learned_weight(),
                effective_weight: l.effective_weight(),
                tx: traffic.tx,
                rx: traffic.rx,
                interface_tx_dropped: totals.ports.get(l.port).map_or(0, |t| t.tx_dropped),
                health,
            }
        })
        .collect()
}

/// Answers `interfaces` (what `braidctl watch` shows).
pub fn interfaces(snap: &Snapshot, totals: &Totals, sampler: &Sampler) -> Interfaces {
    let rates = sampler.rates(totals);
    Interfaces {
        sample: sampler.count(),
        interval_ms: sampler.interval_ms(),
        interfaces: snap
            .ports
            .iter()
            .zip(rates.ports)
            .zip(&totals.ports)
            .map(|((p, traffic), t)| InterfaceTraffic {
                name: p.name.clone(),
                rx: traffic.rx,
                tx: traffic.tx,
                tx_dropped: t.tx_dropped,
            })
            .collect(),
        links: link_infos(snap, totals, sampler),
    }
}

/// Every drop reason with its count.
fn drops(count: impl Fn(DropReason) -> u64) -> Vec<DropCount> {
    DropReason::ALL
        .iter()
        .map(|&why| DropCount {
            reason: why.name().into(),
            count: count(why),
        })
        .collect()
}

/// Answers `stats`.
pub fn stats(snap: &Snapshot, stats: &[Arc<WorkerStats>]) -> Stats {
    Stats {
        workers: stats
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerCounters {
                worker: i,
                forwarded: w.forwarded.get(),
                local: w.local.get(),
                icmp_errors: w.icmp_errors.get(),
                drops: drops(|why| w.drops_of(why)),
                interfaces: snap
                    .ports
                    .iter()
                    .zip(&w.ports)
                    .map(|(p, c)| QueueCounters {
                        interface: p.name.clone(),
                        rx_packets: c.rx_packets.get(),
                        tx_packets: c.tx_packets.get(),
                        tx_dropped: c.tx_dropped.get(),
                    })
                    .collect(),
                reorder: ReorderCounters {
                    in_order: w.reorder.in_order.get(),
                    repaired: w.reorder.repaired.get(),
                    late: w.reorder.late.get(),
                    given_up: w.reorder.given_up.get(),
                    held_us: w.reorder.held_us(),
                },
            })
            .collect(),
        drops: drops(|why| stats.iter().map(|w| w.drops_of(why)).sum()),
    }
}
