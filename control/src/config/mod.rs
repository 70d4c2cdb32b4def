//! The TOML configuration of `braidd`: its schema, loading and validation.
//! Field-by-field documentation: `docs/CONFIG.md`.

mod address;
mod error;
mod rate;
mod redundant;
mod spans;
mod validate;

pub use address::{InterfaceAddress, KERNEL};
pub use error::{ConfigError, Problem};
pub use rate::Rate;
pub use redundant::{Ports, Protocol, RedundantRule};

use crate::key::PublicKey;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use spans::{line_at, SpanIndex};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

/// Where `braidd` serves its control socket when `control_socket` is not set.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/braid/braidd.sock";
/// Most `[[interface]]` entries a configuration may have (the workers count per interface).
pub const MAX_INTERFACES: usize = 32;
/// Most `[[peer.link]]` entries over all peers (each link has its own counters).
pub const MAX_LINKS: usize = 64;

/// Which end of the bond this daemon is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Home router: LAN on one side, uplinks on the other.
    Edge,
    /// Concentrator: terminates the tunnels of one or more edges.
    Hub,
}

/// How packets are spread over a peer's links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BondMode {
    /// Each packet to the next link by smooth weighted round robin.
    #[default]
    Packet,
    /// Each inner flow (5-tuple hash) pinned to one link; flows split by weight.
    Flow,
}

/// What the weights of `packet` mode divide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// Packet counts follow the weights.
    #[default]
    Packets,
    /// Byte counts follow the weights.
    Bytes,
}

/// Whether braid has an interface to itself or shares it with the host (docs/CONFIG.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceMode {
    /// Every frame the interface receives goes to braid, which answers ARP and ping itself.
    #[default]
    Owned,
    /// braid gets only what it handles (frames to be routed, its tunnel's and NAT's ports);
    /// the rest, ARP and ping of the host's addresses included, goes to the kernel.
    Shared,
}

/// Administrative state of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// The link carries traffic in proportion to its weight.
    #[default]
    Up,
    /// The link carries nothing, as with weight 0; its weight is kept for when it comes up.
    Down,
}

/// Where a peer's link weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightMode {
    /// The configured `weight` of each link.
    #[default]
    Manual,
    /// Learned from each link's measured capacity (what the peer reports receiving, loss,
    /// delay growing under load); the configured weights are the start and the fallback.
    Auto,
}

/// The whole daemon configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which end of the bond this daemon is.
    pub role: Role,
    /// File holding this daemon's private key (`braidctl genkey`); relative to the config
    /// file's directory.
    pub private_key_file: PathBuf,
    /// Worker threads; worker i serves queue i of every interface.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// First CPU core to pin workers to (worker i on core `first_core + i`).
    #[serde(default)]
    pub first_core: Option<usize>,
    /// UDP port of the tunnel, on every WAN address (worker i uses `tunnel_port + i`).
    #[serde(default = "default_tunnel_port")]
    pub tunnel_port: u16,
    /// Seconds between an edge's keepalives on each link while probes are off, so NAT
    /// bindings on the way stay (0: none).
    #[serde(default = "default_keepalive")]
    pub keepalive: u64,
    /// Microseconds a worker naps between rounds while traffic is light, instead of a
    /// wake-up per frame (0: wake for every frame).
    #[serde(default = "default_nap_us")]
    pub nap_us: u64,
    /// How traffic is spread over each peer's links (`[bond]`).
    #[serde(default)]
    pub bond: BondConfig,
    /// Link probes and failover (`[health]`).
    #[serde(default)]
    pub health: HealthConfig,
    /// The dataplane NICs (`[[interface]]`), in file order.
    #[serde(rename = "interface", default)]
    pub interfaces: Vec<InterfaceConfig>,
    /// The tunnel peers (`[[peer]]`).
    #[serde(rename = "peer", default)]
    pub peers: Vec<PeerConfig>,
    /// Static routes (`[[route]]`).
    #[serde(rename = "route", default)]
    pub routes: Vec<RouteConfig>,
    /// Policy rules (`[[rule]]`), tried in file order.
    #[serde(rename = "rule", default)]
    pub rules: Vec<RuleConfig>,
    /// Path of the control socket `braidctl` talks to (None: [`DEFAULT_CONTROL_SOCKET`]).
    #[serde(default)]
    pub control_socket: Option<PathBuf>,
    /// TCP address serving Prometheus metrics at `/metrics` (None: not served).
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Source translation (masquerade) of traffic leaving by an interface.
    #[serde(rename = "masquerade", default)]
    pub masquerades: Vec<MasqueradeConfig>,
}

impl Config {
    /// Reads and validates `path`, opening the key files it names. Relative key file paths
    /// resolve against the config file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let problem = Problem {
                line: None,
                field: None,
                message: format!("cannot read the configuration: {e}"),
            };
            ConfigError::new(path, vec![problem])
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates `text`, opening the key files it names; `origin` names the file
    /// in errors, and relative key file paths resolve against its directory.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        parse_checked(text, origin, true)
    }

    /// Index of the interface named `name`.
    pub fn interface_index(&self, name: &str) -> Option<usize> {
        self.interfaces.iter().position(|i| i.name == name)
    }

    /// Checks a configuration changed at run time as [`Config::parse`] checks a file, except
    /// that key files are not opened. Problems name their fields but carry no lines.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let problems = validate::validate(self, false);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The control socket's path: `control_socket`, or [`DEFAULT_CONTROL_SOCKET`].
    pub fn control_socket_path(&self) -> &Path {
        self.control_socket
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_CONTROL_SOCKET))
    }
}

/// [`Config::parse`], opening the key files only when `check_key_files`.
fn parse_checked(text: &str, origin: &Path, check_key_files: bool) -> Result<Config, ConfigError> {
    let index = SpanIndex::new(text)
        .map_err(|e| ConfigError::new(origin, vec![syntax_problem(text, &e)]))?;
    let v1 = v1_problems(text, &index);
    if !v1.is_empty() {
        return Err(ConfigError::new(origin, v1));
    }
    let mut config: Config = toml::from_str(text)
        .map_err(|e| ConfigError::new(origin, vec![decode_problem(text, &index, &e)]))?;
    if let Some(dir) = origin.parent() {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        };
        resolve(&mut config.private_key_file);
        for peer in &mut config.peers {
            if let Some(path) = peer.preshared_key_file.as_mut() {
                resolve(path);
            }
        }
        if let Some(socket) = config.control_socket.as_mut().filter(|s| s.is_relative()) {
            *socket = dir.join(&*socket);
        }
    }
    let mut problems = validate::validate(&config, check_key_files);
    if problems.is_empty() {
        return Ok(config);
    }
    for problem in &mut problems {
        let offset = problem.field.as_deref().and_then(|f| index.offset_of(f));
        problem.line = offset.map(|o| line_at(text, o));
    }
    Err(ConfigError::new(origin, problems))
}

/// The tunnel v1 fields `text` still has (`id` or `key_file`, at the top level or in a peer),
/// each with its line and what replaced it.
fn v1_problems(text: &str, index: &SpanIndex) -> Vec<Problem> {
    const HINT: &str = "braid now uses private_key_file (top level) and each peer's \
                        public_key; see docs/CONFIG.md";
    index
        .fields()
        .filter(|field| {
            let (table, name) = field.rsplit_once('.').unwrap_or(("", field));
            let is_peer = table.strip_prefix("peer[").is_some_and(|rest| {
                rest.strip_suffix(']')
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            });
            matches!(name, "id" | "key_file") && (table.is_empty() || is_peer)
        })
        .map(|field| {
            let name = field.rsplit('.').next().unwrap_or(field);
            Problem {
                line: index.offset_of(field).map(|o| line_at(text, o)),
                field: Some(field.to_owned()),
                message: format!("`{name}` is from tunnel v1: {HINT}"),
            }
        })
        .collect()
}

/// A TOML syntax error: it has a line but no field.
fn syntax_problem(text: &str, err: &toml_edit::TomlError) -> Problem {
    let what: Vec<&str> = err.message().lines().map(str::trim).collect();
    Problem {
        line: err.span().map(|span| line_at(text, span.start)),
        field: None,
        message: format!("TOML syntax: {}", what.join("; ")),
    }
}

/// A type or schema error from decoding, located by where the error points. A missing
/// field is named after the table that lacks it (no line when that is the top level).
fn decode_problem(text: &str, index: &SpanIndex, err: &toml::de::Error) -> Problem {
    let message = err.message().trim_end();
    let span = err.span();
    let (field, line) = match (quoted_after(message, "missing field `"), &span) {
        (Some(missing), Some(span)) => match index.field_ending_with(span) {
            Some(table) => (
                Some(format!("{table}.{missing}")),
                Some(line_at(text, span.start)),
            ),
            None => (Some(missing.to_owned()), None),
        },
        (Some(missing), None) => (Some(missing.to_owned()), None),
        (None, Some(span)) => (
            index.field_at(span.start).map(str::to_owned),
            Some(line_at(text, span.start)),
        ),
        (None, None) => (None, None),
    };
    // Quote the offending value when the message does not already.
    let snippet = span
        .and_then(|span| text.get(span))
        .map(|s| s.trim().trim_matches('"'))
        .filter(|s| !s.is_empty() && s.len() <= 60 && !s.contains('\n') && !message.contains(*s));
    Problem {
        line,
        field,
        message: match snippet {
            Some(snippet) => format!("{message}: {snippet:?}"),
            None => message.to_owned(),
        },
    }
}

/// The text between `prefix` and the next backquote in `message`.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    rest.split('`').next()
}

/// Bond behaviour shared by all peers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BondConfig {
    /// Per-packet or per-flow spreading.
    #[serde(default)]
    pub mode: BondMode,
    /// What the weights divide in `packet` mode.
    #[serde(default)]
    pub balance: Balance,
    /// How `packet` mode picks each packet's link.
    #[serde(default)]
    pub scheduler: Scheduling,
    /// Packets sent on every link that is up (`[[bond.redundant]]`).
    #[serde(default)]
    pub redundant: Vec<RedundantRule>,
}

/// How `packet` mode picks each packet's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduling {
    /// Smooth weighted round robin: the weights' shares, packet by packet.
    #[default]
    Wrr,
    /// Earliest delivery: the link where the packet is expected to arrive first, given the
    /// links' one-way delays and what this end has queued on each (at the links' rates,
    /// shared as the weights say).
    Earliest,
}

/// Link probes and failover: how often every link is probed, and how many missed or
/// answered probes change its state (docs/PROTOCOL.md, "Link health").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Probe every link (false: links are up unless their carrier is lost).
    pub probe: bool,
    /// Time between two probes on a link, in milliseconds.
    pub interval_ms: u32,
    /// Probe intervals without any answer after which a link is down.
    pub down_after: u32,
    /// Answered probes in a row after which a down link is up again.
    pub up_after: u32,
    /// Lost share of the last 20 probes, in percent, at which a link is down.
    pub loss_down_percent: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            probe: true,
            interval_ms: 50,
            down_after: 4,
            up_after: 8,
            loss_down_percent: 30,
        }
    }
}

/// A dataplane NIC.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Kernel interface name.
    pub name: String,
    /// braid's own address and prefix on this interface, or the kernel's (`"kernel"`).
    pub address: InterfaceAddress,
    /// IP MTU of the interface.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// `owned` (braid gets every frame) or `shared` with the host's own services.
    #[serde(default)]
    pub mode: InterfaceMode,
}

/// The other end of a tunnel: the hub (on an edge) or one edge (on a hub).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Name that routes refer to the peer by.
    pub name: String,
    /// The peer's static public key (`braidctl pubkey` on the peer).
    pub public_key: PublicKey,
    /// File holding a key shared with this peer only (`braidctl genpsk`), mixed into the
    /// handshake; relative to the config file's directory.
    #[serde(default)]
    pub preshared_key_file: Option<PathBuf>,
    /// `manual`: the links' `weight`s; `auto`: learned from the links' measured capacity.
    #[serde(default)]
    pub weights: WeightMode,
    /// Inner source prefixes accepted from this peer (anti-spoofing).
    pub allowed: Vec<Ipv4Net>,
    /// The peer's links (`[[peer.link]]`), one per path to it.
    #[serde(rename = "link")]
    pub links: Vec<LinkConfig>,
}

/// One uplink of a peer's bond.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// Name of the link, unique within its peer.
    pub name: String,
    /// Local interface the link's tunnel packets leave by.
    pub interface: String,
    /// Next hop on that interface towards the peer (None: the peer is on-link).
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// The peer's tunnel endpoint for this link: required on an edge; on a hub, None means
    /// learnt from the edge's authenticated packets.
    #[serde(default)]
    pub remote: Option<SocketAddrV4>,
    /// Share of traffic; 0 leaves the link unused.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// The link's rate towards the peer (what `scheduler = "earliest"` models queues with).
    #[serde(default)]
    pub rate: Option<Rate>,
    /// Administrative state; a link that is down carries nothing but keeps its weight.
    #[serde(default)]
    pub state: LinkState,
}

/// A static route in a routing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Source prefix the rule matches.
    pub from: Ipv4Net,
    /// Table that matching traffic is looked up in.
    pub table: String,
}

/// What to do with a packet a masquerade cannot or may not translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NatRefusal {
    /// Drop it silently (and count it).
    #[default]
    Drop,
    /// Drop it, count it and tell the sender with an ICMP "administratively
    /// prohibited" (destination unreachable, code 13).
    Icmp,
}

/// Traffic from inside to one of the masquerade's own mappings (hairpinning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hairpin {
    /// Dropped and counted.
    #[default]
    Drop,
    /// Translated out and back in, so one inside host reaches another through
    /// its outside address.
    Translate,
}

/// IP protocols other than TCP, UDP and ICMP leaving by a masquerading interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtherProtocols {
    /// Dropped and counted.
    #[default]
    Drop,
    /// Forwarded untranslated.
    Pass,
}

/// Masquerade (source NAT) on one interface, as `iptables -t nat -A POSTROUTING
/// -o <interface> -s <sources> -j MASQUERADE` does.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasqueradeConfig {
    /// The outside interface.
    pub interface: String,
    /// Outside addresses; the interface's own address when empty.
    #[serde(default)]
    pub addresses: Vec<Ipv4Addr>,
    /// Inside sources translated; every forwarded source when empty.
    #[serde(default)]
    pub sources: Vec<Ipv4Net>,
    /// Lowest outside port (and ICMP identifier) handed out.
    #[serde(default = "default_port_min")]
    pub port_min: u16,
    /// Highest outside port handed out.
    #[serde(default = "default_port_max")]
    pub port_max: u16,
    /// Idle timeout of UDP sessions, seconds.
    #[serde(default = "default_udp_timeout")]
    pub udp_timeout: u64,
    /// Idle timeout of established TCP sessions, seconds.
    #[serde(default = "default_tcp_established_timeout")]
    pub tcp_established_timeout: u64,
    /// Idle timeout of opening or closing TCP sessions, seconds.
    #[serde(default = "default_tcp_transitory_timeout")]
    pub tcp_transitory_timeout: u64,
    /// Idle timeout of ICMP echo sessions, seconds.
    #[serde(default = "default_icmp_timeout")]
    pub icmp_timeout: u64,
    /// Most sessions in all.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Most sessions of one inside address.
    #[serde(default = "default_max_per_host")]
    pub max_per_host: usize,
    /// New sessions refused because a limit is reached.
    #[serde(default)]
    pub when_full: NatRefusal,
    #[serde(default)]
    pub hairpin: Hairpin,
    #[serde(default)]
    pub other_protocols: OtherProtocols,
}

fn default_port_min() -> u16 {
    1024
}
fn default_port_max() -> u16 {
    65535
}
fn default_udp_timeout() -> u64 {
    300
}
fn default_tcp_established_timeout() -> u64 {
    7440
}
fn default_tcp_transitory_timeout() -> u64 {
    240
}
fn default_icmp_timeout() -> u64 {
    60
}
fn default_max_sessions() -> usize {
    1 << 20
}
fn default_max_per_host() -> usize {
    4096
}

fn default_workers() -> usize {
    1
}
fn default_tunnel_port() -> u16 {
    7420
}
fn default_keepalive() -> u64 {
    25
}
fn default_nap_us() -> u64 {
    200
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The deploy examples name key files under /etc/braid, which tests cannot rely on:
    /// everything but the key files' existence is checked.
    fn parse_example(text: &str, name: &str) -> Config {
        match parse_checked(text, Path::new(name), false) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn edge_example_parses_and_validates() {
        let config = parse_example(
            include_str!("../../../deploy/edge.example.toml"),
            "deploy/edge.example.toml",
        );
        assert_eq!(config.role, Role::Edge);
        assert_eq!(config.interfaces.len(), 3);
        let hub = &config.peers[0];
        assert_eq!(config.private_key_file, Path::new("/etc/braid/private.key"));
        assert!(hub.links.iter().all(|l| l.remote.is_some()));
        let weights: Vec<u32> = hub.links.iter().map(|l| l.weight).collect();
        assert_eq!(weights, [1, 2]);
        assert_eq!(config.interface_index(&hub.links[1].interface), Some(2));
    }

    #[test]
    fn dhcp_edge_example_parses_and_validates() {
        let config = parse_example(
            include_str!("../../../deploy/edge-dhcp.example.toml"),
            "deploy/edge-dhcp.example.toml",
        );
        let eth1 = &config.interfaces[1];
        assert_eq!(eth1.address, InterfaceAddress::Kernel(None));
        assert_eq!(eth1.mode, InterfaceMode::Shared);
        assert_eq!(config.peers[0].links[0].gateway, None);
    }

    #[test]
    fn hub_example_parses_and_validates() {
        let config = parse_example(
            include_str!("../../../deploy/hub.example.toml"),
            "deploy/hub.example.toml",
        );
        assert_eq!(config.role, Role::Hub);
        assert_eq!(config.peers[0].allowed, ["192.168.0.0/24".parse().unwrap()]);
        assert_eq!(config.routes.len(), 2);
        assert!(config.peers[0].links.iter().all(|l| l.remote.is_none()));
    }

    #[test]
    fn examples_in_the_config_doc_parse_and_validate() {
        let doc = include_str!("../../../docs/CONFIG.md");
        let blocks: Vec<&str> = doc
            .split("```toml\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .collect();
        // Whole files name their role; the other blocks are parts, checked in the edge's.
        let (whole, parts): (Vec<&str>, Vec<&str>) = blocks
            .iter()
            .partition(|b| b.lines().any(|l| l.starts_with("role = ")));
        assert_eq!(whole.len(), 2, "an edge and a hub example");
        let roles: Vec<Role> = whole
            .iter()
            .map(|text| parse_example(text, "docs/CONFIG.md").role)
            .collect();
        assert_eq!(roles, [Role::Edge, Role::Hub]);
        for part in parts {
            parse_example(&format!("{}\n{part}", whole[0]), "docs/CONFIG.md");
        }
    }

    #[test]
    fn unchecked_parsing_still_checks_everything_else() {
        let text =
            include_str!("../../../deploy/hub.example.toml").replace("weight = 2", "weight = 2000");
        let err = parse_checked(&text, Path::new("hub.toml"), false).unwrap_err();
        let fields: Vec<_> = err.problems().iter().map(|p| p.field.as_deref()).collect();
        assert_eq!(fields, [Some("peer[0].link[1].weight")]);
    }
}
