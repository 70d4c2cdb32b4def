//! `nat`: the masquerades, their counters, and their sessions as the workers list them.

use crate::ids::MasqIdx;
use crate::nat::{Proto, SessionInfo, SessionState};
use crate::pipeline::Shared;
use crate::stats::WorkerStats;
use crate::worker::Mailboxes;
use braid_control::proto::{MasqueradeInfo, Nat, NatCounters, NatSession};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

/// How long a worker may take to list its sessions (it answers at its next batch).
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
/// Sessions asked of each worker when filtering by address; a match beyond them is missed
/// (and the answer says it is truncated).
const SCAN_LIMIT: usize = 1 << 16;
/// Most sessions one answer lists.
const MAX_LIST: usize = 100_000;

fn protocol(p: Proto) -> &'static str {
    match p {
        Proto::Icmp => "icmp",
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

fn state(s: SessionState) -> &'static str {
    match s {
        SessionState::Udp => "udp",
        SessionState::Icmp => "icmp",
        SessionState::TcpOpening => "tcp_opening",
        SessionState::TcpEstablished => "tcp_established",
        SessionState::TcpClosing => "tcp_closing",
        SessionState::TcpClosed => "tcp_closed",
    }
}

/// Answers `nat`: every masquerade, the workers' counters, and up to `limit` sessions (those
/// with `address` inside or outside, when given).
pub fn nat(
    shared: &Shared,
    mail: &Mailboxes,
    stats: &[Arc<WorkerStats>],
    address: Option<Ipv4Addr>,
    limit: usize,
) -> Nat {
    let snap = shared.snapshot.load();
    let interface = |port: usize| {
        snap.ports
            .get(port)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };
    let masquerades: Vec<MasqueradeInfo> = snap
        .masquerades
        .iter()
        .map(|m| MasqueradeInfo {
            interface: interface(m.port),
            addresses: m.nat.pool.addrs().to_vec(),
        })
        .collect();
    let sum = |f: fn(&WorkerStats) -> u64| stats.iter().map(|w| f(w)).sum();
    let counters = NatCounters {
        sessions: sum(|w| w.nat.sessions.get()),
        created: sum(|w| w.nat.created.get()),
        expired: sum(|w| w.nat.expired.get()),
        translated_out: sum(|w| w.nat.translated_out.get()),
        translated_in: sum(|w| w.nat.translated_in.get()),
    };
    let limit = limit.min(MAX_LIST);
    let mut nat = Nat {
        enabled: !masquerades.is_empty(),
        masquerades,
        counters,
        sessions: Vec::new(),
        truncated: false,
    };
    if !nat.enabled {
        return nat;
    }
    let asked = if address.is_some() {
        SCAN_LIMIT
    } else {
        limit.saturating_add(1)
    };
    let listed = mail.nat_sessions(asked, QUERY_TIMEOUT);
    let endpoint = |addr, port| SocketAddrV4::new(addr, port);
    let mut sessions: Vec<NatSession> = listed
        .iter()
        .filter(|(_, s): &&(MasqIdx, SessionInfo)| {
            address.is_none_or(|a| s.inside.addr == a || s.outside.addr == a)
        })
        .map(|(m, s)| NatSession {
            interface: snap
                .masquerades
                .get(m.0)
                .map(|m| interface(m.port))
                .unwrap_or_default(),
            protocol: protocol(s.inside.proto).into(),
            inside: endpoint(s.inside.addr, s.inside.port),
            outside: endpoint(s.outside.addr, s.outside.port),
            state: state(s.state).into(),
            age_ms: s.age_ns / 1_000_000,
            remaining_ms: s.remaining_ns / 1_000_000,
        })
        .collect();
    sessions.sort_by(|a, b| {
        (a.inside, a.outside, &a.protocol).cmp(&(b.inside, b.outside, &b.protocol))
    });
    nat.truncated = sessions.len() > limit || (address.is_some() && listed.len() >= asked);
    sessions.truncate(limit);
    nat.sessions = sessions;
    nat
}
