//! The TOML configuration of `braidd`. Field-by-field documentation: `docs/CONFIG.md`.

use ipnet::Ipv4Net;
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

/// Which end of the bond this daemon is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Home router: LAN on one side, uplinks on the other.
    Edge,
    /// Concentrator: terminates the tunnels of one or more edges.
    Hub,
}

/// How packets are spread over a peer's links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BondMode {
    /// Each packet to the next link by smooth weighted round robin.
    #[default]
    Packet,
    /// Each inner flow (5-tuple hash) pinned to one link; flows split by weight.
    Flow,
}

/// What the weights of `packet` mode divide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// Packet counts follow the weights.
    #[default]
    Packets,
    /// Byte counts follow the weights.
    Bytes,
}

/// The whole daemon configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub role: Role,
    /// This daemon's tunnel sender id (unique among the daemons sharing a key).
    pub id: u32,
    /// Worker threads; worker i serves queue i of every interface.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// First CPU core to pin workers to (worker i on core `first_core + i`).
    #[serde(default)]
    pub first_core: Option<usize>,
    /// UDP port of the tunnel, on every WAN address.
    #[serde(default = "default_tunnel_port")]
    pub tunnel_port: u16,
    #[serde(default)]
    pub bond: BondConfig,
    #[serde(rename = "interface", default)]
    pub interfaces: Vec<InterfaceConfig>,
    #[serde(rename = "peer", default)]
    pub peers: Vec<PeerConfig>,
    #[serde(rename = "route", default)]
    pub routes: Vec<RouteConfig>,
    #[serde(rename = "rule", default)]
    pub rules: Vec<RuleConfig>,
}

/// Bond behaviour shared by all peers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BondConfig {
    #[serde(default)]
    pub mode: BondMode,
    #[serde(default)]
    pub balance: Balance,
}

/// A dataplane NIC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Kernel interface name.
    pub name: String,
    /// braid's own address and prefix on this interface.
    pub address: Ipv4Net,
    /// IP MTU of the interface.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
}

/// The other end of a tunnel: the hub (on an edge) or one edge (on a hub).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub name: String,
    /// The peer's tunnel sender id.
    pub id: u32,
    /// File holding the pre-shared tunnel key (see `braidd genkey`).
    pub key_file: PathBuf,
    /// Inner source prefixes accepted from this peer (anti-spoofing).
    pub allowed: Vec<Ipv4Net>,
    #[serde(rename = "link")]
    pub links: Vec<LinkConfig>,
}

/// One uplink of a peer's bond.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    pub name: String,
    /// Local interface the link's tunnel packets leave by.
    pub interface: String,
    /// Next hop on that interface towards `remote` (None: `remote` is on-link).
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// The peer's tunnel endpoint for this link.
    pub remote: SocketAddrV4,
    /// Share of traffic; 0 leaves the link unused.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

/// A static route in a routing table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Table name; `main` when omitted.
    #[serde(default = "default_table")]
    pub table: String,
    /// Destination prefix.
    pub to: Ipv4Net,
    /// Next hop (for a route out of an interface).
    #[serde(default)]
    pub via: Option<Ipv4Addr>,
    /// Outgoing interface (for a route out of an interface).
    #[serde(default)]
    pub dev: Option<String>,
    /// Peer whose bond carries the traffic (instead of `via`/`dev`).
    #[serde(default)]
    pub peer: Option<String>,
}

/// A policy rule: traffic from `from` is looked up in `table`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub from: Ipv4Net,
    pub table: String,
}

fn default_workers() -> usize {
    1
}
fn default_tunnel_port() -> u16 {
    7420
}
fn default_mtu() -> u16 {
    1500
}
fn default_weight() -> u32 {
    1
}
fn default_table() -> String {
    "main".into()
}
