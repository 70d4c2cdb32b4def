//! The immutable configuration the workers run with. The control side builds a
//! whole new snapshot and swaps it in (arc-swap); a worker loads it once per batch,
//! so it sees the old one or the new one, never half of a change.

mod addrs;

use crate::bond::redundant::Redundant;
use crate::bond::Scheduler;
use crate::frame::PortId;
use crate::health::{LinkHealth, Timing};
use crate::ids::{LinkSlot, MasqIdx, PeerIdx};
use crate::nat::{AddressPool, NatConfig, NatTable, NatTimeouts, PortRange};
use crate::route::{NextHop, Routes};
use crate::session::{Endpoint, PeerKeys};
use crate::stats::MAX_LINKS;
use crate::tunnel::handshake::{Responder, StaticKeys, KEY_LEN};
use crate::tunnel::{CipherSet, HEADER_LEN, SEQ_LEN, TAG_LEN};
use crate::wire::Mac;
pub use addrs::AddrUse;
use addrs::OwnAddrs;
use braid_control::config::{
    Balance, BondMode, Config, Hairpin, InterfaceMode, LinkState, MasqueradeConfig, NatRefusal,
    OtherProtocols, Role, Scheduling, WeightMode,
};
use braid_control::key::{PresharedKey, PrivateKey};
use ipnet::Ipv4Net;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes the tunnel adds in front of and behind the inner IPv4 packet inside the
/// outer IPv4 packet: outer IPv4 and UDP headers, braid header, bond sequence, tag.
pub const TUNNEL_IP_OVERHEAD: usize = 20 + 8 + HEADER_LEN + SEQ_LEN + TAG_LEN;
pub use crate::session::MAX_LANES;

/// The secrets a snapshot is built with, read from the files the config names.
#[derive(Clone)]
pub struct Secrets {
    /// This end's static private key.
    pub private: [u8; KEY_LEN],
    /// Each peer's pre-shared key (config order; all zero when it has none).
    pub psks: Vec<[u8; KEY_LEN]>,
}

impl Secrets {
    /// Reads the key files `cfg` names (each refused when group or others can read it);
    /// errors name the file.
    pub fn load(cfg: &Config) -> Result<Secrets, String> {
        let private = PrivateKey::load(&cfg.private_key_file)
            .map_err(|e| format!("private_key_file: {e}"))?;
        let psks = cfg
            .peers
            .iter()
            .map(|p| match &p.preshared_key_file {
                Some(path) => PresharedKey::load(path)
                    .map(|k| *k.bytes())
                    .map_err(|e| format!("peer {}: preshared_key_file: {e}", p.name)),
                None => Ok([0; KEY_LEN]),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Secrets {
            private: *private.bytes(),
            psks,
        })
    }
}

impl Secrets {
    /// The lab's test keys for `cfg` (the edge's or the hub's private key by its role, no
    /// pre-shared keys), as the configs in `tests/data` expect them.
    #[cfg(test)]
    pub(crate) fn of_lab(cfg: &Config) -> Secrets {
        Secrets {
            private: match cfg.role {
                Role::Edge => braid_testkit::EDGE_PRIVATE,
                Role::Hub => braid_testkit::HUB_PRIVATE,
            },
            psks: vec![[0; KEY_LEN]; cfg.peers.len()],
        }
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// A dataplane interface as the pipeline uses it.
#[derive(Debug, Clone)]
pub struct PortInfo {
    pub name: String,
    pub mac: Mac,
    pub addr: Ipv4Addr,
    pub net: Ipv4Net,
    pub mtu: u16,
    /// Shared with the host: braid's ARP requests carry sender address 0.0.0.0, so their
    /// answers, and no others, come to braid (dataplane/bpf/braid_xdp.c).
    pub shared: bool,
}

/// One link of a peer's bond.
#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    /// Position among the peer's links: the link id on the wire.
    pub id: u8,
    pub port: PortId,
    /// Next hop towards the peer's endpoint (None: on-link).
    pub gateway: Option<Ipv4Addr>,
    /// The peer's endpoint as configured (a hub may leave it to be learned).
    pub remote: Option<SocketAddrV4>,
    /// The peer's endpoint as last seen on an authenticated message (hub only);
    /// carried over like `health`.
    pub endpoint: Arc<Endpoint>,
    /// Configured weight, kept while the link is down.
    pub weight: u32,
    /// The link's rate towards the peer, bits per second (`rate`; the earliest-delivery
    /// scheduler's model).
    pub rate_bps: Option<u64>,
    /// The peer's weights are learned (`weights = "auto"`).
    pub auto: bool,
    /// The weight learned from the link's measured capacity (0: none yet); written by the
    /// control thread's learner, carried over like `health` while the peer stays in auto.
    pub learned: Arc<AtomicU32>,
    /// Administrative state: a link that is down is scheduled as if its weight were 0.
    pub state: LinkState,
    /// Slot of this link in the workers' counters.
    pub slot: LinkSlot,
    /// What its probes measured and whether its health lets it carry data; carried
    /// over to the next snapshot while the peer (by key) and the link (by name) stay.
    pub health: Arc<LinkHealth>,
}

impl Link {
    /// The weight the scheduler uses: the configured one while the link is up both
    /// administratively and by its health, else 0.
    pub fn effective_weight(&self) -> u32 {
        if self.health.is_up() {
            self.admin_weight()
        } else {
            0
        }
    }

    /// The weight while the link is administratively up, else 0: what the schedulers are
    /// laid out by. That is the learned weight when the peer's weights are learned and
    /// one was learned, else the configured one.
    pub fn admin_weight(&self) -> u32 {
        match self.state {
            LinkState::Up => self.learned_weight().unwrap_or(self.weight),
            LinkState::Down => 0,
        }
    }

    /// The weight learned for this link, when its peer's weights are learned and one was.
    /// A link configured with weight 0 stays unused.
    pub fn learned_weight(&self) -> Option<u32> {
        if !self.auto || self.weight == 0 {
            return None;
        }
        Some(self.learned.load(Ordering::Relaxed)).filter(|&w| w > 0)
    }

    /// Where the link's messages go: the endpoint learned from the peer, else the one
    /// configured.
    #[inline]
    pub fn destination(&self) -> Option<SocketAddrV4> {
        self.endpoint.get().or(self.remote)
    }
}

/// A tunnel peer.
pub struct Peer {
    pub name: String,
    /// The peer's static public key: who it is.
    pub public_key: [u8; KEY_LEN],
    /// The pre-shared key mixed into its handshakes (all zero: none).
    psk: [u8; KEY_LEN],
    /// Its sessions; carried over to the next snapshot while the peer stays.
    pub keys: Arc<PeerKeys>,
    pub allowed: Vec<Ipv4Net>,
    /// `allowed` as (network, mask) numbers: a source is checked in one AND and compare
    /// per prefix.
    allowed_masks: Vec<(u32, u32)>,
    pub links: Vec<Link>,
    /// Largest inner IPv4 packet every link of this peer carries.
    pub inner_mtu: u16,
    /// A new scheduler for the snapshot's bond mode and balance, made once:
    /// every worker takes a copy (a flow-mode table is 1024 scheduling steps).
    /// Never picks.
    scheduler: Scheduler,
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.name)
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// True when `src` is in one of the peer's allowed prefixes.
    #[inline]
    pub fn allows(&self, src: Ipv4Addr) -> bool {
        let src = u32::from(src);
        self.allowed_masks
            .iter()
            .any(|&(net, mask)| src & mask == net)
    }

    /// The pre-shared key of the peer's handshakes.
    pub fn psk(&self) -> &[u8; KEY_LEN] {
        &self.psk
    }

    /// A new scheduler over this peer's links: laid out by the administrative weights,
    /// without the links whose health took them down (in flow mode only their flows move).
    pub fn scheduler(&self, mode: BondMode, balance: Balance) -> Scheduler {
        let w: Vec<u32> = self.links.iter().map(Link::admin_weight).collect();
        let down: Vec<bool> = self.links.iter().map(|l| !l.health.is_up()).collect();
        let base = if self.scheduler.made_from(&w, mode, balance) {
            self.scheduler.clone()
        } else {
            Scheduler::new(&w, mode, balance)
        };
        base.without(&down)
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
                pool: AddressPool::new(pool),
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
    /// This end's static keys.
    pub statics: StaticKeys,
    /// Answers the initiations of the peers (used on a hub).
    pub responder: Responder,
    /// The ciphers this end runs fast, offered in its handshakes.
    pub offer: CipherSet,
    pub tunnel_port: u16,
    /// An edge's keepalive interval while probes are off (0: none).
    pub keepalive_ns: u64,
    pub mode: BondMode,
    pub balance: Balance,
    /// How `packet` mode picks each packet's link.
    pub scheduling: Scheduling,
    /// The packets sent on every link that is up.
    pub redundant: Vec<Redundant>,
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

/// Lookups every packet makes, built once per snapshot: braid's own addresses, the
/// peers by key (sorted, searched by bisection), and the masquerade of each port.
#[derive(Debug, Default)]
struct Index {
    addrs: OwnAddrs,
    /// By public key.
    peer_keys: Vec<([u8; KEY_LEN], PeerIdx)>,
    masq_on: Vec<Option<MasqIdx>>,
    /// The directed broadcast of each connected prefix shorter than /31, as numbers.
    broadcasts: Vec<u32>,
    /// The low bits every one of them has set (at least two: a prefix of /30 or shorter): an
    /// address without them all is no directed broadcast, known without looking at the list.
    broadcast_tail: u32,
}

impl Index {
    fn build(
        ports: &[PortInfo],
        peers: &[Peer],
        masquerades: &[Masquerade],
    ) -> Result<Index, String> {
        let port_addrs: Vec<Ipv4Addr> = ports.iter().map(|p| p.addr).collect();
        let addrs = OwnAddrs::build(&port_addrs, masquerades.iter().map(|m| m.nat.pool.addrs()))?;
        // A stable sort keeps the first peer of a key first; dedup keeps it.
        let mut peer_keys: Vec<([u8; KEY_LEN], PeerIdx)> = peers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.public_key, PeerIdx(i)))
            .collect();
        peer_keys.sort_by_key(|(k, _)| *k);
        peer_keys.dedup_by_key(|(k, _)| *k);
        let masq_on = (0..ports.len())
            .map(|port| masquerades.iter().position(|m| m.port == port).map(MasqIdx))
            .collect();
        let mut broadcasts: Vec<u32> = ports
            .iter()
            .filter(|p| p.net.prefix_len() < 31)
            .map(|p| u32::from(p.net.broadcast()))
            .collect();
        broadcasts.sort_unstable();
        broadcasts.dedup();
        let ones = broadcasts
            .iter()
            .map(|b| b.trailing_ones())
            .min()
            .unwrap_or(32);
        let broadcast_tail = u32::MAX.checked_shr(32 - ones).unwrap_or(0);
        Ok(Index {
            addrs,
            peer_keys,
            masq_on,
            broadcasts,
            broadcast_tail,
        })
    }

    #[inline]
    fn addr(&self, ip: Ipv4Addr) -> AddrUse {
        self.addrs.get(ip)
    }
}

impl Snapshot {
    /// Builds a snapshot from a validated config, the MAC of each interface (in
    /// config order) and the secrets its files hold.
    pub fn build(
        cfg: &Config,
        macs: &[Mac],
        secrets: &Secrets,
        generation: u64,
    ) -> Result<Snapshot, String> {
        Snapshot::make(cfg, macs, secrets, generation, None)
    }

    /// The snapshot that follows `previous` for a changed config: generation + 1, and each
    /// peer that stays (same public key) keeps its sessions, with their counters and
    /// replay windows, so a change costs no handshake and lets no old packet in again.
    pub fn rebuild(
        cfg: &Config,
        macs: &[Mac],
        secrets: &Secrets,
        previous: &Snapshot,
    ) -> Result<Snapshot, String> {
        Snapshot::make(cfg, macs, secrets, previous.generation + 1, Some(previous))
    }

    fn make(
        cfg: &Config,
        macs: &[Mac],
        secrets: &Secrets,
        generation: u64,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, String> {
        let ports = build_ports(cfg, macs)?;
        let peers = build_peers(cfg, &secrets.psks, &ports, previous)?;
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
        let index = Index::build(&ports, &peers, &masquerades)?;
        let statics = StaticKeys::from_private(secrets.private);
        let offer = CipherSet::local();
        Ok(Snapshot {
            role: cfg.role,
            responder: Responder::new(statics.clone(), offer),
            statics,
            offer,
            tunnel_port: cfg.tunnel_port,
            keepalive_ns: cfg.keepalive.saturating_mul(1_000_000_000),
            mode: cfg.bond.mode,
            balance: cfg.bond.balance,
            scheduling: cfg.bond.scheduler,
            redundant: cfg.bond.redundant.iter().map(Redundant::of).collect(),
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

    /// True for a UDP port braid's tunnel listens on: worker i sends from
    /// `tunnel_port + i`, and a peer (or the NAT on the way) answers to that port.
    #[inline]
    pub fn is_tunnel_port(&self, port: u16) -> bool {
        u32::from(port).wrapping_sub(u32::from(self.tunnel_port)) < self.workers as u32
    }

    /// The UDP port worker `lane` sends tunnel messages from: a port per worker, so
    /// that the peer's receive-side scaling keeps one worker's messages (and so each
    /// flow, which stays on one worker) on one queue.
    #[inline]
    pub fn tunnel_port_of(&self, lane: crate::ids::Lane) -> u16 {
        self.tunnel_port.wrapping_add(u16::from(lane.0))
    }

    /// What `ip` is to braid: a port's own address, a masquerade's, both or neither.
    #[inline]
    pub fn addr_use(&self, ip: Ipv4Addr) -> AddrUse {
        self.index.addr(ip)
    }

    /// True when `ip` is the directed broadcast of one of the connected prefixes (those
    /// shorter than /31 have one).
    #[inline]
    pub fn is_directed_broadcast(&self, ip: Ipv4Addr) -> bool {
        let (ip, tail) = (u32::from(ip), self.index.broadcast_tail);
        ip & tail == tail && self.index.broadcasts.contains(&ip)
    }

    /// The low bits every connected prefix's directed broadcast has set: an address
    /// without them all is none of them.
    #[inline]
    pub fn broadcast_tail(&self) -> u32 {
        self.index.broadcast_tail
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

    /// The peer whose static public key is `key`.
    pub fn peer_by_key(&self, key: &[u8; KEY_LEN]) -> Option<PeerIdx> {
        let i = self
            .index
            .peer_keys
            .binary_search_by_key(key, |(k, _)| *k)
            .ok()?;
        self.index.peer_keys.get(i).map(|(_, p)| *p)
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
            // Waiting for the kernel's address: none, and an empty subnet (its links are down).
            addr: i.address.net().map_or(Ipv4Addr::UNSPECIFIED, |n| n.addr()),
            net: i
                .address
                .net()
                .map_or(Ipv4Net::from(Ipv4Addr::UNSPECIFIED), |n| n.trunc()),
            mtu: i.mtu,
            shared: i.mode == InterfaceMode::Shared,
        })
        .collect())
}

/// The peers with their links and sessions (kept from `previous` for a peer that stays).
fn build_peers(
    cfg: &Config,
    psks: &[[u8; KEY_LEN]],
    ports: &[PortInfo],
    previous: Option<&Snapshot>,
) -> Result<Vec<Peer>, String> {
    if psks.len() < cfg.peers.len() {
        return Err("a pre-shared key is missing for a peer".into());
    }
    let mut peers = Vec::new();
    let mut slot = 0;
    for (pc, psk) in cfg.peers.iter().zip(psks) {
        let public_key = *pc.public_key.bytes();
        let before = previous.and_then(|s| s.peer_by_key(&public_key).and_then(|i| s.peer(i)));
        let mut links = Vec::new();
        for (id, lc) in pc.links.iter().enumerate() {
            let port = port_of(ports, &lc.interface)
                .ok_or_else(|| format!("link {}: no interface {}", lc.name, lc.interface))?;
            if slot >= MAX_LINKS || id > usize::from(u8::MAX) {
                return Err(format!("more than {MAX_LINKS} links in all"));
            }
            let kept = before.and_then(|p| p.links.iter().find(|l| l.name == lc.name));
            let auto = pc.weights == WeightMode::Auto;
            // Learned weights stay while the peer stays in auto; a peer that goes to auto
            // starts from its configured weights.
            let learned = kept
                .filter(|l| l.auto && auto)
                .map(|l| Arc::clone(&l.learned))
                .unwrap_or_default();
            links.push(Link {
                name: lc.name.clone(),
                id: id as u8,
                port,
                gateway: lc.gateway,
                remote: lc.remote,
                endpoint: kept.map(|l| Arc::clone(&l.endpoint)).unwrap_or_default(),
                weight: lc.weight,
                rate_bps: lc.rate.map(|r| r.bps()),
                auto,
                learned,
                state: lc.state,
                slot: LinkSlot(slot),
                health: kept.map(|l| Arc::clone(&l.health)).unwrap_or_default(),
            });
            slot += 1;
        }
        let inner_mtu = links
            .iter()
            .filter_map(|l| ports.get(l.port))
            .map(|p| usize::from(p.mtu).saturating_sub(TUNNEL_IP_OVERHEAD))
            .min()
            .unwrap_or(0) as u16;
        let weights: Vec<u32> = links.iter().map(Link::admin_weight).collect();
        let scheduler = Scheduler::new(&weights, cfg.bond.mode, cfg.bond.balance);
        peers.push(Peer {
            name: pc.name.clone(),
            public_key,
            psk: *psk,
            keys: before.map(|p| Arc::clone(&p.keys)).unwrap_or_default(),
            allowed: pc.allowed.clone(),
            allowed_masks: pc
                .allowed
                .iter()
                .map(|n| (u32::from(n.network()), u32::from(n.netmask())))
                .collect(),
            links,
            inner_mtu,
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

    const EDGE: &str = include_str!("../../tests/data/edge.toml");

    /// Picks of a scheduler over a run of flow hashes and packet sizes.
    fn picks(mut s: Scheduler) -> Vec<Option<usize>> {
        (0..3000u32)
            .map(|i| s.pick(i.wrapping_mul(0x9e37_79b9), 64 + (i as usize * 37) % 1400))
            .collect()
    }

    #[test]
    fn directed_broadcasts_are_those_of_the_connected_prefixes_only() {
        // The lab edge's /24s, with wan2 made a /28 (broadcast .15: four low bits set).
        let text = EDGE.replacen("198.18.12.2/24", "198.18.12.2/28", 1);
        let cfg: Config = toml::from_str(&text).unwrap();
        let snap =
            Snapshot::build(&cfg, &[[2, 0, 0, 0, 1, 0]; 3], &Secrets::of_lab(&cfg), 1).unwrap();
        for (ip, yes) in [
            ("198.18.1.255", true),
            ("198.18.11.255", true),
            ("198.18.12.15", true),
            ("198.18.12.255", false),
            ("198.18.12.7", false),
            ("198.18.1.15", false),
            ("203.0.113.255", false),
            ("255.255.255.255", false),
        ] {
            assert_eq!(snap.is_directed_broadcast(ip.parse().unwrap()), yes, "{ip}");
        }
    }

    #[test]
    fn a_link_carries_data_only_when_up_both_administratively_and_by_health() {
        use crate::health::{Board, Change, Figures, Why};
        let text = EDGE.replacen("weight = 1\n", "weight = 1\nstate = \"down\"\n", 1);
        let cfg: Config = toml::from_str(&text).unwrap();
        let snap =
            Snapshot::build(&cfg, &[[2, 0, 0, 0, 1, 0]; 3], &Secrets::of_lab(&cfg), 1).unwrap();
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
        let next = Snapshot::rebuild(
            &cfg,
            &[[2, 0, 0, 0, 1, 0]; 3],
            &Secrets::of_lab(&cfg),
            &snap,
        )
        .unwrap();
        assert!(Arc::ptr_eq(&next.peers[0].links[1].health, &isp2.health));
        assert!(Arc::ptr_eq(&next.peers[0].keys, &snap.peers[0].keys));
        assert_eq!(next.peers[0].links[1].effective_weight(), 0);
    }

    #[test]
    fn a_peers_scheduler_is_a_new_one_for_any_mode() {
        for (mode, name) in [(BondMode::Packet, "packet"), (BondMode::Flow, "flow")] {
            let text = EDGE.replace("mode = \"packet\"", &format!("mode = \"{name}\""));
            let cfg: Config = toml::from_str(&text).unwrap();
            let snap =
                Snapshot::build(&cfg, &[[2, 0, 0, 0, 1, 0]; 3], &Secrets::of_lab(&cfg), 1).unwrap();
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
