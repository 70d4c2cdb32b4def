//! The immutable configuration the workers run with. The control side builds a
//! whole new snapshot and swaps it in (arc-swap); a worker loads it once per batch,
//! so it sees the old one or the new one, never half of a change.

use crate::bond::Scheduler;
use crate::frame::PortId;
use crate::health::{LinkHealth, Timing};
use crate::ids::{LinkSlot, MasqIdx, PeerIdx};
use crate::nat::{NatConfig, NatTable, NatTimeouts, PortRange};
use crate::route::{NextHop, Routes};
use crate::stats::MAX_LINKS;
use crate::tunnel::{ReplayWindow, Sealer, HEADER_LEN, TAG_LEN};
use crate::wire::Mac;
use braid_control::config::{
    Balance, BondMode, Config, Hairpin, LinkState, MasqueradeConfig, NatRefusal, OtherProtocols,
    Role,
};
use ipnet::Ipv4Net;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bytes the tunnel adds in front of and behind the inner IPv4 packet inside the
/// outer IPv4 packet: outer IPv4 and UDP headers, braid header, tag.
pub const TUNNEL_IP_OVERHEAD: usize = 20 + 8 + HEADER_LEN + TAG_LEN;
/// Most sender lanes (workers) a peer may use; each has its own replay window.
pub const MAX_LANES: usize = 64;

/// A dataplane interface as the pipeline uses it.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub name: String,
    pub mac: Mac,
    pub addr: Ipv4Addr,
    pub net: Ipv4Net,
    pub mtu: u16,
}

/// One link of a peer's bond.
#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    /// Position among the peer's links: the link id on the wire.
    pub id: u8,
    pub port: PortId,
    /// Next hop towards `remote` (None: on-link).
    pub gateway: Option<Ipv4Addr>,
    pub remote: SocketAddrV4,
    /// Configured weight, kept while the link is down.
    pub weight: u32,
    /// Administrative state: a link that is down is scheduled as if its weight were 0.
    pub state: LinkState,
    /// Slot of this link in the workers' counters.
    pub slot: LinkSlot,
    /// What its probes measured and whether its health lets it carry data; carried
    /// over to the next snapshot while the peer (by id) and the link (by name) stay.
    pub health: Arc<LinkHealth>,
}

impl Link {
    /// The weight the scheduler uses: the configured one while the link is up both
    /// administratively and by its health, else 0.
    pub fn effective_weight(&self) -> u32 {
        match self.state {
            LinkState::Up if self.health.is_up() => self.weight,
            LinkState::Up | LinkState::Down => 0,
        }
    }
}

/// A tunnel peer.
#[derive(Debug)]
pub struct Peer {
    pub name: String,
    pub id: u32,
    pub sealer: Sealer,
    pub allowed: Vec<Ipv4Net>,
    pub links: Vec<Link>,
    /// Largest inner IPv4 packet every link of this peer carries.
    pub inner_mtu: u16,
    /// Replay windows, one per sender lane; shared by all workers and carried
    /// over to the next snapshot so a reload does not reopen them.
    pub replay: Arc<[Mutex<ReplayWindow>]>,
    /// A new scheduler for the snapshot's bond mode and balance, made once:
    /// every worker takes a copy (a flow-mode table is 1024 scheduling steps).
    /// Never picks.
    scheduler: Scheduler,
}

impl Peer {
    /// A new scheduler over this peer's link weights.
    pub fn scheduler(&self, mode: BondMode, balance: Balance) -> Scheduler {
        let w: Vec<u32> = self.links.iter().map(Link::effective_weight).collect();
        if self.scheduler.made_from(&w, mode, balance) {
            return self.scheduler.clone();
        }
        Scheduler::new(&w, mode, balance)
    }
}

/// Masquerade on one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masquerade {
    /// The outside port.
    pub port: PortId,
    /// Pool, ports, timeouts and limits of the session tables.
    pub nat: NatConfig,
    /// Inside sources translated (empty: all forwarded traffic).
    pub sources: Vec<Ipv4Net>,
    pub when_full: NatRefusal,
    pub hairpin: Hairpin,
    pub other_protocols: OtherProtocols,
}

impl Masquerade {
    fn build(m: &MasqueradeConfig, port: PortId, own: Ipv4Addr) -> Masquerade {
        let pool = if m.addresses.is_empty() {
            vec![own]
        } else {
            m.addresses.clone()
        };
        Masquerade {
            port,
            nat: NatConfig {
                pool,
                ports: PortRange {
                    lo: m.port_min,
                    hi: m.port_max,
                },
                timeouts: NatTimeouts {
                    udp: Duration::from_secs(m.udp_timeout),
                    tcp_established: Duration::from_secs(m.tcp_established_timeout),
                    tcp_transitory: Duration::from_secs(m.tcp_transitory_timeout),
                    icmp: Duration::from_secs(m.icmp_timeout),
                },
                max_sessions: m.max_sessions,
                max_per_host: m.max_per_host,
            },
            sources: m.sources.clone(),
            when_full: m.when_full,
            hairpin: m.hairpin,
            other_protocols: m.other_protocols,
        }
    }

    /// True when traffic from `src` is translated.
    pub fn covers(&self, src: Ipv4Addr) -> bool {
        self.sources.is_empty() || self.sources.iter().any(|n| n.contains(&src))
    }
}

/// Everything a worker needs to process packets.
#[derive(Debug)]
pub struct Snapshot {
    pub role: Role,
    pub id: u32,
    pub tunnel_port: u16,
    pub mode: BondMode,
    pub balance: Balance,
    /// The link probes' timers.
    pub health: Timing,
    pub ports: Vec<PortInfo>,
    pub peers: Vec<Peer>,
    pub routes: Routes,
    /// Masquerading ports.
    pub masquerades: Vec<Masquerade>,
    /// Number of workers (sender lanes; NAT session owners).
    pub workers: usize,
    /// Bumped on every change; workers rebuild their schedulers when it moves.
    pub generation: u64,
    /// The per-packet lookups, precomputed.
    index: Index,
}

/// What an address of braid's is used for (both `None` for any other address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddrUse {
    /// The port whose own address it is.
    pub port: Option<PortId>,
    /// The masquerade whose outside pool holds it.
    pub masq: Option<MasqIdx>,
}

/// Lookups every packet makes, built once per snapshot: sorted tables searched by
/// bisection, and the masquerade of each port.
#[derive(Debug, Default)]
struct Index {
    /// By address as a number: compared in one instruction.
    addrs: Vec<(u32, AddrUse)>,
    peer_ids: Vec<(u32, PeerIdx)>,
    masq_on: Vec<Option<MasqIdx>>,
}

/// The use of `ip` in `addrs`, added (unused) if new.
fn addr_entry(addrs: &mut Vec<(u32, AddrUse)>, ip: Ipv4Addr) -> &mut AddrUse {
    let ip = u32::from(ip);
    let at = match addrs.iter().position(|(a, _)| *a == ip) {
        Some(at) => at,
        None => {
            addrs.push((ip, AddrUse::default()));
            addrs.len() - 1
        }
    };
    &mut addrs[at].1
}

impl Index {
    fn build(ports: &[PortInfo], peers: &[Peer], masquerades: &[Masquerade]) -> Index {
        // The first port or masquerade of an address wins, as a scan in config order
        // would find it.
        let mut addrs: Vec<(u32, AddrUse)> = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            addr_entry(&mut addrs, p.addr).port.get_or_insert(i);
        }
        for (m, masq) in masquerades.iter().enumerate() {
            for ip in &masq.nat.pool {
                addr_entry(&mut addrs, *ip).masq.get_or_insert(MasqIdx(m));
            }
        }
        addrs.sort_unstable_by_key(|(a, _)| *a);
        // A stable sort keeps the first peer of an id first; dedup keeps it.
        let mut peer_ids: Vec<(u32, PeerIdx)> = peers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, PeerIdx(i)))
            .collect();
        peer_ids.sort_by_key(|(id, _)| *id);
        peer_ids.dedup_by_key(|(id, _)| *id);
        let masq_on = (0..ports.len())
            .map(|port| masquerades.iter().position(|m| m.port == port).map(MasqIdx))
            .collect();
        Index {
            addrs,
            peer_ids,
            masq_on,
        }
    }

    fn addr(&self, ip: Ipv4Addr) -> AddrUse {
        self.addrs
            .binary_search_by_key(&u32::from(ip), |(a, _)| *a)
            .ok()
            .and_then(|i| self.addrs.get(i))
            .map_or_else(AddrUse::default, |(_, u)| *u)
    }
}

impl Snapshot {
    /// Builds a snapshot from a validated config, the MAC of each interface (in
    /// config order) and each peer's key (in config order).
    pub fn build(
        cfg: &Config,
        macs: &[Mac],
        keys: &[[u8; 32]],
        generation: u64,
    ) -> Result<Snapshot, String> {
        Snapshot::make(cfg, macs, keys, generation, None)
    }

    /// The snapshot that follows `previous` for a changed config: generation + 1, and each
    /// peer that stays (same id) keeps its replay windows, so a change never lets a packet
    /// that was already accepted in again.
    pub fn rebuild(
        cfg: &Config,
        macs: &[Mac],
        keys: &[[u8; 32]],
        previous: &Snapshot,
    ) -> Result<Snapshot, String> {
        Snapshot::make(cfg, macs, keys, previous.generation + 1, Some(previous))
    }

    fn make(
        cfg: &Config,
        macs: &[Mac],
        keys: &[[u8; 32]],
        generation: u64,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, String> {
        let ports = build_ports(cfg, macs)?;
        let peers = build_peers(cfg, keys, &ports, previous)?;
        let routes = build_routes(cfg, &ports, &peers)?;
        let masquerades = cfg
            .masquerades
            .iter()
            .map(|m| {
                let port = port_of(&ports, &m.interface)
                    .ok_or_else(|| format!("masquerade: no interface {}", m.interface))?;
                let own = ports.get(port).map_or(Ipv4Addr::UNSPECIFIED, |p| p.addr);
                let masq = Masquerade::build(m, port, own);
                // Every worker builds its table from this: refuse here what it could not.
                NatTable::check(&masq.nat, cfg.workers)
                    .map_err(|e| format!("masquerade on {}: {e}", m.interface))?;
                Ok(masq)
            })
            .collect::<Result<Vec<_>, String>>()?;
        let index = Index::build(&ports, &peers, &masquerades);
        Ok(Snapshot {
            role: cfg.role,
            id: cfg.id,
            tunnel_port: cfg.tunnel_port,
            mode: cfg.bond.mode,
            balance: cfg.bond.balance,
            health: Timing::of(&cfg.health),
            ports,
            peers,
            routes,
            masquerades,
            workers: cfg.workers.max(1),
            generation,
            index,
        })
    }

    /// What `ip` is to braid: a port's own address, a masquerade's, both or neither.
    #[inline]
    pub fn addr_use(&self, ip: Ipv4Addr) -> AddrUse {
        self.index.addr(ip)
    }

    /// The port whose own address is `ip`.
    #[inline]
    pub fn port_with_addr(&self, ip: Ipv4Addr) -> Option<PortId> {
        self.index.addr(ip).port
    }

    /// The masquerade of port `port`.
    #[inline]
    pub fn masquerade_on(&self, port: PortId) -> Option<MasqIdx> {
        self.index.masq_on.get(port).copied().flatten()
    }

    /// The peer with tunnel sender id `id`.
    #[inline]
    pub fn peer_by_id(&self, id: u32) -> Option<PeerIdx> {
        let i = self
            .index
            .peer_ids
            .binary_search_by_key(&id, |(id, _)| *id)
            .ok()?;
        self.index.peer_ids.get(i).map(|(_, p)| *p)
    }

    /// Peer `p`.
    #[inline]
    pub fn peer(&self, p: PeerIdx) -> Option<&Peer> {
        self.peers.get(p.0)
    }

    /// Masquerade `m`.
    #[inline]
    pub fn masquerade(&self, m: MasqIdx) -> Option<&Masquerade> {
        self.masquerades.get(m.0)
    }
}

/// The index of the interface named `name`.
fn port_of(ports: &[PortInfo], name: &str) -> Option<PortId> {
    ports.iter().position(|p| p.name == name)
}

/// The interfaces with their MACs (config order).
fn build_ports(cfg: &Config, macs: &[Mac]) -> Result<Vec<PortInfo>, String> {
    if macs.len() < cfg.interfaces.len() {
        return Err("a MAC address is missing for an interface".into());
    }
    Ok(cfg
        .interfaces
        .iter()
        .zip(macs)
        .map(|(i, mac)| PortInfo {
            name: i.name.clone(),
            mac: *mac,
            addr: i.address.addr(),
            net: i.address.trunc(),
            mtu: i.mtu,
        })
        .collect())
}

/// The peers with their links, keys and replay windows (kept from `previous` for a
/// peer that stays).
fn build_peers(
    cfg: &Config,
    keys: &[[u8; 32]],
    ports: &[PortInfo],
    previous: Option<&Snapshot>,
) -> Result<Vec<Peer>, String> {
    if keys.len() < cfg.peers.len() {
        return Err("a key is missing for a peer".into());
    }
    let mut peers = Vec::new();
    let mut slot = 0;
    for (pc, key) in cfg.peers.iter().zip(keys) {
        let before = previous.and_then(|s| s.peer_by_id(pc.id).and_then(|i| s.peer(i)));
        let mut links = Vec::new();
        for (id, lc) in pc.links.iter().enumerate() {
            let port = port_of(ports, &lc.interface)
                .ok_or_else(|| format!("link {}: no interface {}", lc.name, lc.interface))?;
            if slot >= MAX_LINKS || id > usize::from(u8::MAX) {
                return Err(format!("more than {MAX_LINKS} links in all"));
            }
            links.push(Link {
                name: lc.name.clone(),
                id: id as u8,
                port,
                gateway: lc.gateway,
                remote: lc.remote,
                weight: lc.weight,
                state: lc.state,
                slot: LinkSlot(slot),
                health: before
                    .and_then(|p| p.links.iter().find(|l| l.name == lc.name))
                    .map(|l| Arc::clone(&l.health))
                    .unwrap_or_default(),
            });
            slot += 1;
        }
        let inner_mtu = links
            .iter()
            .filter_map(|l| ports.get(l.port))
            .map(|p| usize::from(p.mtu).saturating_sub(TUNNEL_IP_OVERHEAD))
            .min()
            .unwrap_or(0) as u16;
        let replay = before.map(|p| Arc::clone(&p.replay)).unwrap_or_else(|| {
            (0..MAX_LANES)
                .map(|_| Mutex::new(ReplayWindow::new()))
                .collect()
        });
        let weights: Vec<u32> = links.iter().map(Link::effective_weight).collect();
        let scheduler = Scheduler::new(&weights, cfg.bond.mode, cfg.bond.balance);
        peers.push(Peer {
            name: pc.name.clone(),
            id: pc.id,
            sealer: Sealer::new(key),
            allowed: pc.allowed.clone(),
            links,
            inner_mtu,
            replay,
            scheduler,
        });
    }
    Ok(peers)
}

/// The connected routes of every port, then the configured routes and rules.
fn build_routes(cfg: &Config, ports: &[PortInfo], peers: &[Peer]) -> Result<Routes, String> {
    let mut routes = Routes::new();
    for (i, p) in ports.iter().enumerate() {
        routes.add_route(
            crate::route::MAIN,
            p.net,
            NextHop::Port {
                port: i,
                gateway: None,
            },
        );
    }
    for r in &cfg.routes {
        let hop = match (&r.peer, &r.dev) {
            (Some(peer), None) => NextHop::Bond(
                peers
                    .iter()
                    .position(|p| &p.name == peer)
                    .map(PeerIdx)
                    .ok_or_else(|| format!("route {}: no peer {peer}", r.to))?,
            ),
            (None, Some(dev)) => NextHop::Port {
                port: port_of(ports, dev)
                    .ok_or_else(|| format!("route {}: no interface {dev}", r.to))?,
                gateway: r.via,
            },
            _ => return Err(format!("route {}: needs exactly one of peer or dev", r.to)),
        };
        routes.add_route(&r.table, r.to, hop);
    }
    for rule in &cfg.rules {
        routes.add_rule(rule.from, &rule.table);
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDGE: &str = include_str!("../tests/data/edge.toml");

    /// Picks of a scheduler over a run of flow hashes and packet sizes.
    fn picks(mut s: Scheduler) -> Vec<Option<usize>> {
        (0..3000u32)
            .map(|i| s.pick(i.wrapping_mul(0x9e37_79b9), 64 + (i as usize * 37) % 1400))
            .collect()
    }

    #[test]
    fn a_link_carries_data_only_when_up_both_administratively_and_by_health() {
        use crate::health::{Board, Change, Figures, Why};
        let text = EDGE.replacen("weight = 1\n", "weight = 1\nstate = \"down\"\n", 1);
        let cfg: Config = toml::from_str(&text).unwrap();
        let snap = Snapshot::build(&cfg, &[[2, 0, 0, 0, 1, 0]; 3], &[[3; 32]], 1).unwrap();
        let [isp1, isp2] = [&snap.peers[0].links[0], &snap.peers[0].links[1]];
        // isp1 is down by hand though healthy: the administrative state wins.
        assert!(isp1.health.is_up());
        assert_eq!((isp1.effective_weight(), isp2.effective_weight()), (0, 2));
        let board = Board::default();
        let down = Change {
            up: false,
            why: Why::Silent,
        };
        board.record(&isp2.health, ("hub", "isp2"), down, Figures::default());
        assert_eq!(isp2.effective_weight(), 0);
        let up = Change {
            up: true,
            why: Why::Answered,
        };
        board.record(&isp2.health, ("hub", "isp2"), up, Figures::default());
        assert_eq!(isp2.effective_weight(), 2);
        assert_eq!(board.changes(), 2);
        assert_eq!(board.take_events().len(), 2);
        // A rebuilt snapshot keeps the links' health (same peer, same names).
        board.record(&isp2.health, ("hub", "isp2"), down, Figures::default());
        let next = Snapshot::rebuild(&cfg, &[[2, 0, 0, 0, 1, 0]; 3], &[[3; 32]], &snap).unwrap();
        assert!(Arc::ptr_eq(&next.peers[0].links[1].health, &isp2.health));
        assert_eq!(next.peers[0].links[1].effective_weight(), 0);
    }

    #[test]
    fn a_peers_scheduler_is_a_new_one_for_any_mode() {
        for (mode, name) in [(BondMode::Packet, "packet"), (BondMode::Flow, "flow")] {
            let text = EDGE.replace("mode = \"packet\"", &format!("mode = \"{name}\""));
            let cfg: Config = toml::from_str(&text).unwrap();
            let snap = Snapshot::build(&cfg, &[[2, 0, 0, 0, 1, 0]; 3], &[[3; 32]], 1).unwrap();
            assert_eq!(snap.mode, mode);
            let peer = &snap.peers[0];
            let w: Vec<u32> = peer.links.iter().map(Link::effective_weight).collect();
            for (m, b) in [
                (BondMode::Packet, Balance::Packets),
                (BondMode::Packet, Balance::Bytes),
                (BondMode::Flow, Balance::Packets),
            ] {
                assert_eq!(
                    picks(peer.scheduler(m, b)),
                    picks(Scheduler::new(&w, m, b)),
                    "{name}: {m:?} {b:?}"
                );
            }
        }
    }
}
