//! Semantic checks of a decoded configuration: everything the TOML types cannot express.
//! Each problem names the field (as a TOML path) it is about.

use super::{
    BondMode, Config, InterfaceConfig, InterfaceMode, LinkConfig, LinkState, PeerConfig, Problem,
    Role, Scheduling, KERNEL, MAX_INTERFACES, MAX_LINKS,
};
use crate::key::{PresharedKey, PrivateKey, PublicKey};
use ipnet::Ipv4Net;
use std::collections::hash_map::{Entry, HashMap};
use std::collections::HashSet;
use std::hash::Hash;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

const WORKERS: RangeInclusive<usize> = 1..=64;
const MTU: RangeInclusive<u16> = 576..=9000;
const WEIGHT: RangeInclusive<u32> = 0..=1000;
/// Longest interface name the kernel accepts (IFNAMSIZ less the terminating NUL).
const MAX_IFNAME: usize = 15;
/// Longest Unix socket path (`sun_path` less the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Every problem of `config`; key files are opened only when `check_key_files`.
pub(crate) fn validate(config: &Config, check_key_files: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    let own_key = check_key_files
        .then(|| check_private_key(config, &mut out))
        .flatten();
    check_globals(config, &mut out);
    check_health(config, &mut out);
    check_redundant(config, &mut out);
    check_scheduler(config, &mut out);
    check_interfaces(config, &mut out);
    for (p, peer) in config.peers.iter().enumerate() {
        check_peer(config, p, peer, check_key_files, &mut out);
    }
    check_peer_uniqueness(config, own_key, &mut out);
    check_link_count(config, &mut out);
    check_routes(config, &mut out);
    check_rules(config, &mut out);
    check_role(config, &mut out);
    check_masquerades(config, &mut out);
    out
}

/// Whether interface `name` is shared with the host.
fn is_shared(config: &Config, name: &str) -> bool {
    config
        .interfaces
        .iter()
        .any(|i| i.name == name && i.mode == InterfaceMode::Shared)
}

/// A masquerade on a shared interface: its return traffic is told from the host's by port,
/// so its ports leave the host's services and the tunnel theirs.
fn check_shared_masquerade(
    config: &Config,
    i: usize,
    m: &super::MasqueradeConfig,
    out: &mut Vec<Problem>,
) {
    let at = |field: &str| format!("masquerade[{i}].{field}");
    if m.port_min < FIRST_UNPRIVILEGED_PORT {
        out.push(Problem::at(
            at("port_min"),
            format!(
                "{} is shared with the host: port_min must be at least \
                 {FIRST_UNPRIVILEGED_PORT} (the host's services), got {}",
                m.interface, m.port_min
            ),
        ));
    }
    let tunnel_first = usize::from(config.tunnel_port);
    let tunnel_last = tunnel_first + config.workers.max(1) - 1;
    if usize::from(m.port_min) <= tunnel_last && tunnel_first <= usize::from(m.port_max) {
        out.push(Problem::at(
            at("port_min"),
            format!(
                "{} is shared with the host: ports {}..={} overlap the tunnel's \
                 {tunnel_first}..={tunnel_last}",
                m.interface, m.port_min, m.port_max
            ),
        ));
    }
    if m.addresses.len() > MAX_SHARED_NAT_POOL {
        out.push(Problem::at(
            at("addresses"),
            format!(
                "{} is shared with the host: at most {MAX_SHARED_NAT_POOL} addresses, got {}",
                m.interface,
                m.addresses.len()
            ),
        ));
    }
}

/// Limits of the masquerade's numbers (sessions: about 100 bytes each).
const MAX_NAT_SESSIONS: usize = 1 << 24;
const MAX_NAT_POOL: usize = 256;
/// Most outside addresses of a masquerade on a shared interface: braid's XDP program holds a
/// claim per address the host also has, and one for the tunnel (dataplane/src/io/prog.rs).
const MAX_SHARED_NAT_POOL: usize = 15;
/// Ports below this are the host's services on a shared interface, never the NAT's.
const FIRST_UNPRIVILEGED_PORT: u16 = 1024;

fn check_masquerades(config: &Config, out: &mut Vec<Problem>) {
    let mut seen = HashMap::new();
    for (i, m) in config.masquerades.iter().enumerate() {
        let at = |field: &str| format!("masquerade[{i}].{field}");
        if config.interface_index(&m.interface).is_none() {
            out.push(Problem::at(
                at("interface"),
                format!(
                    "masquerade on {}: the interface is not defined in [[interface]]",
                    m.interface
                ),
            ));
        } else if let Some(first) = first_seen(&mut seen, m.interface.as_str(), i) {
            out.push(Problem::at(
                at("interface"),
                format!("{} already masquerades in masquerade[{first}]", m.interface),
            ));
        }
        if m.addresses.len() > MAX_NAT_POOL {
            out.push(Problem::at(
                at("addresses"),
                format!(
                    "at most {MAX_NAT_POOL} addresses, got {}",
                    m.addresses.len()
                ),
            ));
        }
        for (j, a) in m.addresses.iter().enumerate() {
            if !is_unicast(*a) {
                out.push(Problem::at(
                    format!("masquerade[{i}].addresses[{j}]"),
                    format!("{a} is not a unicast address"),
                ));
            }
        }
        for (j, s) in m.sources.iter().enumerate() {
            if let Err(why) = check_prefix(*s) {
                out.push(Problem::at(format!("masquerade[{i}].sources[{j}]"), why));
            }
        }
        if m.port_min == 0 || m.port_min > m.port_max {
            out.push(Problem::at(
                at("port_min"),
                format!(
                    "ports {}..={} are not a range of non-zero ports",
                    m.port_min, m.port_max
                ),
            ));
        } else if is_shared(config, &m.interface) {
            check_shared_masquerade(config, i, m, out);
        }
        for (field, secs) in [
            ("udp_timeout", m.udp_timeout),
            ("tcp_established_timeout", m.tcp_established_timeout),
            ("tcp_transitory_timeout", m.tcp_transitory_timeout),
            ("icmp_timeout", m.icmp_timeout),
        ] {
            if !(1..=86_400).contains(&secs) {
                out.push(Problem::at(
                    at(field),
                    format!("{field} must be 1..=86400 seconds, got {secs}"),
                ));
            }
        }
        if !(1..=MAX_NAT_SESSIONS).contains(&m.max_sessions) {
            out.push(Problem::at(
                at("max_sessions"),
                format!(
                    "max_sessions must be 1..={MAX_NAT_SESSIONS}, got {}",
                    m.max_sessions
                ),
            ));
        } else if m.max_per_host == 0 || m.max_per_host > m.max_sessions {
            out.push(Problem::at(
                at("max_per_host"),
                format!(
                    "max_per_host must be 1..=max_sessions ({}), got {}",
                    m.max_sessions, m.max_per_host
                ),
            ));
        }
    }
}

/// Longest keepalive interval: NAT bindings for UDP last 30 s to a few minutes.
const MAX_KEEPALIVE: u64 = 3600;
/// Longest light-traffic nap: a millisecond more per hop is the most a router should add.
const MAX_NAP_US: u64 = 1000;

fn check_globals(config: &Config, out: &mut Vec<Problem>) {
    if !WORKERS.contains(&config.workers) {
        out.push(Problem::at(
            "workers",
            format!("workers must be in 1..=64, got {}", config.workers),
        ));
    }
    if config.tunnel_port == 0 {
        out.push(Problem::at("tunnel_port", "tunnel_port must not be 0"));
    } else if usize::from(config.tunnel_port) + config.workers > 65536 {
        // Worker i sends from and listens on tunnel_port + i.
        out.push(Problem::at(
            "tunnel_port",
            format!(
                "tunnel_port {} leaves no room for a port per worker ({} workers use {} up to {})",
                config.tunnel_port,
                config.workers,
                config.tunnel_port,
                usize::from(config.tunnel_port) + config.workers - 1
            ),
        ));
    }
    at_most(
        out,
        "keepalive",
        config.keepalive,
        MAX_KEEPALIVE,
        "seconds (0: none)",
    );
    at_most(
        out,
        "nap_us",
        config.nap_us,
        MAX_NAP_US,
        "microseconds (0: no nap)",
    );
    if let Some(path) = &config.control_socket {
        let len = path.as_os_str().len();
        if path.file_name().is_none() {
            out.push(Problem::at(
                "control_socket",
                format!("{} names no file for the socket", path.display()),
            ));
        } else if len > MAX_SOCKET_PATH {
            out.push(Problem::at(
                "control_socket",
                format!(
                    "{} is {len} bytes long; a Unix socket path holds at most {MAX_SOCKET_PATH}",
                    path.display()
                ),
            ));
        }
    }
    if config.metrics_listen.is_some_and(|a| a.port() == 0) {
        out.push(Problem::at("metrics_listen", "metrics port must not be 0"));
    }
}

/// Bounds of the `[health]` numbers: (field, lowest, highest).
const HEALTH_LIMITS: [(&str, u32, u32); 4] = [
    ("interval_ms", 10, 1000),
    ("down_after", 2, 100),
    ("up_after", 1, 1000),
    ("loss_down_percent", 1, 100),
];

/// Refuses `field` when `value` is above `max`; `unit` ends the message (with what 0 means).
fn at_most(out: &mut Vec<Problem>, field: &'static str, value: u64, max: u64, unit: &str) {
    if value > max {
        out.push(Problem::at(
            field,
            format!("{field} must be in 0..={max} {unit}, got {value}"),
        ));
    }
}

fn check_health(config: &Config, out: &mut Vec<Problem>) {
    let h = &config.health;
    let values = [h.interval_ms, h.down_after, h.up_after, h.loss_down_percent];
    for ((field, lo, hi), v) in HEALTH_LIMITS.into_iter().zip(values) {
        if !(lo..=hi).contains(&v) {
            out.push(Problem::at(
                format!("health.{field}"),
                format!("health.{field} must be in {lo}..={hi}, got {v}"),
            ));
        }
    }
}

/// Most `[[bond.redundant]]` rules (each packet into the bond is matched against them).
const MAX_REDUNDANT_RULES: usize = 16;

fn check_redundant(config: &Config, out: &mut Vec<Problem>) {
    let rules = &config.bond.redundant;
    if rules.len() > MAX_REDUNDANT_RULES {
        out.push(Problem::at(
            "bond.redundant",
            format!(
                "at most {MAX_REDUNDANT_RULES} redundancy rules, got {}",
                rules.len()
            ),
        ));
    }
    for (i, r) in rules.iter().enumerate() {
        for (field, message) in r.problems() {
            out.push(Problem::at(format!("bond.redundant[{i}].{field}"), message));
        }
    }
}

/// The earliest-delivery scheduler picks per packet, and models each link's queue at its rate.
fn check_scheduler(config: &Config, out: &mut Vec<Problem>) {
    if config.bond.scheduler != Scheduling::Earliest {
        return;
    }
    if config.bond.mode != BondMode::Packet {
        out.push(Problem::at(
            "bond.scheduler",
            "\"earliest\" picks a link per packet: it needs mode = \"packet\"",
        ));
    }
    for (p, peer) in config.peers.iter().enumerate() {
        for (l, link) in peer.links.iter().enumerate() {
            if link.rate.is_none() {
                out.push(Problem::at(
                    format!("peer[{p}].link[{l}].rate"),
                    format!(
                        "link {}: scheduler = \"earliest\" needs each link's rate (e.g. \
                         rate = \"100mbit\") to know what is queued on it",
                        link.name
                    ),
                ));
            }
        }
    }
}

fn check_interfaces(config: &Config, out: &mut Vec<Problem>) {
    if config.interfaces.is_empty() {
        out.push(Problem::at(
            "interface",
            "no [[interface]] is defined; braid needs at least one NIC",
        ));
    }
    if config.interfaces.len() > MAX_INTERFACES {
        out.push(Problem::at(
            format!("interface[{MAX_INTERFACES}]"),
            format!(
                "{} interfaces are defined; braid drives at most {MAX_INTERFACES}",
                config.interfaces.len()
            ),
        ));
    }
    let mut names = HashMap::new();
    for (i, iface) in config.interfaces.iter().enumerate() {
        let at = |field: &str| format!("interface[{i}].{field}");
        if let Err(why) = check_ifname(&iface.name) {
            out.push(Problem::at(at("name"), why));
        } else if let Some(first) = first_seen(&mut names, iface.name.as_str(), i) {
            out.push(Problem::at(
                at("name"),
                format!(
                    "interface {} is defined twice (first as interface[{first}])",
                    iface.name
                ),
            ));
        }
        if !MTU.contains(&iface.mtu) {
            out.push(Problem::at(
                at("mtu"),
                format!(
                    "interface {}: mtu {} is out of range 576..=9000",
                    iface.name, iface.mtu
                ),
            ));
        }
        if iface.address.is_kernel() && iface.mode != InterfaceMode::Shared {
            out.push(Problem::at(
                at("address"),
                format!(
                    "interface {}: \"{KERNEL}\" needs mode = \"shared\": the kernel of an \
                     owned interface never sees its frames, so it has no address to give",
                    iface.name
                ),
            ));
        }
        // A kernel address is checked once the daemon has it (`net` is then set).
        if let Some(Err(why)) = iface.address.net().map(check_host_address) {
            out.push(Problem::at(
                at("address"),
                format!("interface {}: {why}", iface.name),
            ));
        }
    }
}

/// The kernel's rules for a network device name (`dev_valid_name`).
fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("interface name must not be empty".into())
    } else if name.len() > MAX_IFNAME {
        Err(format!(
            "interface name {name:?} is {} bytes long; the kernel allows at most {MAX_IFNAME}",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Err(format!("interface name {name:?} is refused by the kernel"))
    } else if name.contains(['/', ':']) || name.contains(char::is_whitespace) {
        Err(format!(
            "interface name {name:?} contains '/', ':' or whitespace, which the kernel refuses"
        ))
    } else {
        Ok(())
    }
}

/// An interface address must be a unicast host inside an on-link subnet.
///
/// A /32 is refused: braid answers ARP and resolves gateways only inside the interface's
/// subnet, and a /32 has no room for a gateway. A /31 (RFC 3021) is a point-to-point subnet
/// whose two addresses are both hosts.
fn check_host_address(net: Ipv4Net) -> Result<(), String> {
    let addr = net.addr();
    if net.prefix_len() == 32 {
        return Err(format!(
            "address {net} is a /32; give the subnet of the interface (e.g. /24, or /31 \
             for a point-to-point link) so its gateway and neighbours are on-link"
        ));
    }
    if !is_unicast(addr) {
        return Err(format!("address {addr} is not a unicast host address"));
    }
    if net.prefix_len() <= 30 {
        if addr == net.network() {
            return Err(format!(
                "address {addr} is the network address of {}",
                net.trunc()
            ));
        }
        if addr == net.broadcast() {
            return Err(format!(
                "address {addr} is the broadcast address of {}",
                net.trunc()
            ));
        }
    }
    Ok(())
}

fn is_unicast(addr: Ipv4Addr) -> bool {
    !(addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || addr.is_broadcast())
}

/// A prefix given as a route destination, rule source or allowed range must have no host bits.
fn check_prefix(net: Ipv4Net) -> Result<(), String> {
    if net.addr() == net.network() {
        Ok(())
    } else {
        Err(format!(
            "{net} has host bits set; did you mean {}?",
            net.trunc()
        ))
    }
}

/// Loads `private_key_file` as braidd will; its public key when it could.
fn check_private_key(config: &Config, out: &mut Vec<Problem>) -> Option<PublicKey> {
    match PrivateKey::load(&config.private_key_file) {
        Ok(key) => Some(key.public()),
        Err(e) => {
            out.push(Problem::at("private_key_file", e.to_string()));
            None
        }
    }
}

fn check_peer(
    config: &Config,
    p: usize,
    peer: &PeerConfig,
    check_key_files: bool,
    out: &mut Vec<Problem>,
) {
    let at = |field: &str| format!("peer[{p}].{field}");
    if peer.name.is_empty() {
        out.push(Problem::at(at("name"), "peer name must not be empty"));
    }
    if let Some(path) = peer
        .preshared_key_file
        .as_deref()
        .filter(|_| check_key_files)
    {
        if let Err(e) = PresharedKey::load(path) {
            out.push(Problem::at(
                at("preshared_key_file"),
                format!("peer {}: {e}", peer.name),
            ));
        }
    }
    if peer.allowed.is_empty() {
        out.push(Problem::at(
            at("allowed"),
            format!("peer {}: allowed must list at least one prefix", peer.name),
        ));
    }
    for (j, net) in peer.allowed.iter().enumerate() {
        if let Err(why) = check_prefix(*net) {
            out.push(Problem::at(
                at(&format!("allowed[{j}]")),
                format!("peer {}: {why}", peer.name),
            ));
        }
    }
    check_links(config, p, peer, out);
}

/// Peer names and public keys are unique, and no peer has this daemon's own public key
/// (`own_key`, when the private key was read).
fn check_peer_uniqueness(config: &Config, own_key: Option<PublicKey>, out: &mut Vec<Problem>) {
    let mut names = HashMap::new();
    let mut keys = HashMap::new();
    for (p, peer) in config.peers.iter().enumerate() {
        if !peer.name.is_empty() {
            if let Some(first) = first_seen(&mut names, peer.name.as_str(), p) {
                out.push(Problem::at(
                    format!("peer[{p}].name"),
                    format!(
                        "peer {} is defined twice (first as peer[{first}])",
                        peer.name
                    ),
                ));
            }
        }
        if own_key == Some(peer.public_key) {
            out.push(Problem::at(
                format!("peer[{p}].public_key"),
                format!(
                    "peer {}: public_key is this daemon's own (that of private_key_file); \
                     give the peer's, from `braidctl pubkey` on the peer",
                    peer.name
                ),
            ));
        } else if let Some(first) = first_seen(&mut keys, peer.public_key, p) {
            out.push(Problem::at(
                format!("peer[{p}].public_key"),
                format!(
                    "peer {}: public_key is already that of peer {} (peer[{first}]); each \
                     peer has its own key pair",
                    peer.name, config.peers[first].name
                ),
            ));
        }
    }
}

/// The daemon keeps counters for [`MAX_LINKS`] links in all; a file with more would pass
/// every other check and then not start.
fn check_link_count(config: &Config, out: &mut Vec<Problem>) {
    let total: usize = config.peers.iter().map(|p| p.links.len()).sum();
    let mut seen = 0;
    for (p, peer) in config.peers.iter().enumerate() {
        if seen + peer.links.len() > MAX_LINKS {
            out.push(Problem::at(
                format!("peer[{p}].link[{}]", MAX_LINKS - seen),
                format!(
                    "{total} links are defined over all peers; braid carries at most {MAX_LINKS}"
                ),
            ));
            return;
        }
        seen += peer.links.len();
    }
}

fn check_links(config: &Config, p: usize, peer: &PeerConfig, out: &mut Vec<Problem>) {
    if peer.links.is_empty() {
        out.push(Problem::at(
            format!("peer[{p}].link"),
            format!(
                "peer {}: no [[peer.link]] is defined; a peer needs at least one link",
                peer.name
            ),
        ));
        return;
    }
    if peer.links.iter().all(|link| link.weight == 0) {
        out.push(Problem::at(
            format!("peer[{p}].link"),
            format!(
                "peer {}: every link has weight 0; at least one needs a weight above 0",
                peer.name
            ),
        ));
    } else if peer
        .links
        .iter()
        .all(|link| link.weight == 0 || link.state == LinkState::Down)
    {
        out.push(Problem::at(
            format!("peer[{p}].link"),
            format!(
                "peer {}: every link with a weight above 0 is down; at least one must be up",
                peer.name
            ),
        ));
    }
    let mut names = HashMap::new();
    for (l, link) in peer.links.iter().enumerate() {
        let at = |field: &str| format!("peer[{p}].link[{l}].{field}");
        if link.name.is_empty() {
            out.push(Problem::at(at("name"), "link name must not be empty"));
        } else if let Some(first) = first_seen(&mut names, link.name.as_str(), l) {
            out.push(Problem::at(
                at("name"),
                format!(
                    "link {} is defined twice in peer {} (first as link[{first}])",
                    link.name, peer.name
                ),
            ));
        }
        if !WEIGHT.contains(&link.weight) {
            out.push(Problem::at(
                at("weight"),
                format!(
                    "link {}: weight {} is out of range 0..=1000",
                    link.name, link.weight
                ),
            ));
        }
        match link.remote {
            None if config.role == Role::Edge => out.push(Problem::at(
                at("remote"),
                format!(
                    "link {}: an edge must name the hub's endpoint (remote = \"address:port\")",
                    link.name
                ),
            )),
            None => {}
            Some(remote) if remote.port() == 0 => out.push(Problem::at(
                at("remote"),
                format!("link {}: remote port must not be 0", link.name),
            )),
            Some(remote) if !is_unicast(*remote.ip()) => out.push(Problem::at(
                at("remote"),
                format!(
                    "link {}: remote {} is not a unicast address",
                    link.name,
                    remote.ip()
                ),
            )),
            Some(_) => {}
        }
        match config.interfaces.iter().find(|i| i.name == link.interface) {
            None => out.push(Problem::at(
                at("interface"),
                format!(
                    "link {}: interface {} is not defined in [[interface]]",
                    link.name, link.interface
                ),
            )),
            Some(iface) => check_link_next_hop(iface, link, at, out),
        }
    }
}

/// The gateway, or the remote itself when there is no gateway (and the remote is configured),
/// must be on the link's subnet.
fn check_link_next_hop(
    iface: &InterfaceConfig,
    link: &LinkConfig,
    at: impl Fn(&str) -> String,
    out: &mut Vec<Problem>,
) {
    // An address the kernel has not given yet: checked once it has.
    let Some(address) = iface.address.net() else {
        return;
    };
    let subnet = address.trunc();
    match link.gateway {
        Some(gateway) if !address.contains(&gateway) => out.push(Problem::at(
            at("gateway"),
            format!(
                "link {}: gateway {gateway} is not inside {}'s prefix {subnet}",
                link.name, iface.name
            ),
        )),
        Some(gateway) if gateway == address.addr() => out.push(Problem::at(
            at("gateway"),
            format!(
                "link {}: gateway {gateway} is {}'s own address",
                link.name, iface.name
            ),
        )),
        Some(_) => {}
        None => match link.remote {
            Some(remote) if !address.contains(remote.ip()) => out.push(Problem::at(
                at("remote"),
                format!(
                    "link {}: remote {} is not on {}'s subnet {subnet}; set `gateway` to the \
                     next hop towards it",
                    link.name,
                    remote.ip(),
                    iface.name
                ),
            )),
            _ => {}
        },
    }
}

fn check_routes(config: &Config, out: &mut Vec<Problem>) {
    let mut seen = HashMap::new();
    for (r, route) in config.routes.iter().enumerate() {
        let at = |field: &str| format!("route[{r}].{field}");
        let to = route.to;
        if route.table.is_empty() {
            out.push(Problem::at(at("table"), "table name must not be empty"));
        }
        if let Err(why) = check_prefix(to) {
            out.push(Problem::at(at("to"), why));
        }
        match (&route.peer, &route.dev) {
            (Some(_), Some(_)) => out.push(Problem::at(
                format!("route[{r}]"),
                format!("route to {to}: give exactly one of `peer` or `dev`, not both"),
            )),
            (None, None) => out.push(Problem::at(
                format!("route[{r}]"),
                format!(
                    "route to {to}: needs exactly one of `peer` (through the bond) or `dev` \
                     (out of an interface)"
                ),
            )),
            (Some(peer), None) => {
                if route.via.is_some() {
                    out.push(Problem::at(
                        at("via"),
                        format!(
                            "route to {to}: `via` is only allowed with `dev`; the bond to \
                             peer {peer} has no next hop"
                        ),
                    ));
                }
                if !config.peers.iter().any(|p| &p.name == peer) {
                    out.push(Problem::at(
                        at("peer"),
                        format!("route to {to}: peer {peer} is not defined in [[peer]]"),
                    ));
                }
            }
            (None, Some(dev)) => match config.interfaces.iter().find(|i| &i.name == dev) {
                None => out.push(Problem::at(
                    at("dev"),
                    format!("route to {to}: interface {dev} is not defined in [[interface]]"),
                )),
                Some(iface) => match (route.via, iface.address.net()) {
                    (Some(via), Some(address)) if !address.contains(&via) => out.push(Problem::at(
                        at("via"),
                        format!(
                            "route to {to}: via {via} is not inside {dev}'s prefix {}",
                            address.trunc()
                        ),
                    )),
                    (Some(via), Some(address)) if via == address.addr() => out.push(Problem::at(
                        at("via"),
                        format!("route to {to}: via {via} is {dev}'s own address"),
                    )),
                    _ => {}
                },
            },
        }
        if let Some(first) = first_seen(&mut seen, (route.table.as_str(), to.trunc()), r) {
            out.push(Problem::at(
                at("to"),
                format!(
                    "route to {to} in table {} is already defined by route[{first}]",
                    route.table
                ),
            ));
        }
    }
}

fn check_rules(config: &Config, out: &mut Vec<Problem>) {
    let tables: HashSet<&str> = config.routes.iter().map(|r| r.table.as_str()).collect();
    let mut seen = HashMap::new();
    for (i, rule) in config.rules.iter().enumerate() {
        let at = |field: &str| format!("rule[{i}].{field}");
        let from = rule.from;
        if let Err(why) = check_prefix(from) {
            out.push(Problem::at(at("from"), why));
        }
        if !tables.contains(rule.table.as_str()) {
            out.push(Problem::at(
                at("table"),
                format!(
                    "rule from {from}: table {} has no [[route]]; add a route with table = {:?}",
                    rule.table, rule.table
                ),
            ));
        }
        if let Some(first) = first_seen(&mut seen, from.trunc(), i) {
            out.push(Problem::at(
                at("from"),
                format!("rule from {from} repeats rule[{first}], so it would never match"),
            ));
        }
    }
}

fn check_role(config: &Config, out: &mut Vec<Problem>) {
    match config.role {
        Role::Edge => match config.peers.as_slice() {
            [hub] => {
                if !config
                    .routes
                    .iter()
                    .any(|r| r.peer.as_deref() == Some(hub.name.as_str()))
                {
                    out.push(Problem::at(
                        "route",
                        format!(
                            "an edge needs a [[route]] with peer = {:?}, or no traffic enters \
                             the bond",
                            hub.name
                        ),
                    ));
                }
            }
            peers => out.push(Problem::at(
                "peer",
                format!(
                    "an edge has exactly one [[peer]] (its hub); found {}",
                    peers.len()
                ),
            )),
        },
        Role::Hub => {
            if config.peers.is_empty() {
                out.push(Problem::at(
                    "peer",
                    "a hub needs at least one [[peer]] (an edge)",
                ));
            }
        }
    }
}

/// Records that `key` is at `index`; when it was seen before, returns where.
fn first_seen<K: Eq + Hash>(seen: &mut HashMap<K, usize>, key: K, index: usize) -> Option<usize> {
    match seen.entry(key) {
        Entry::Occupied(entry) => Some(*entry.get()),
        Entry::Vacant(entry) => {
            entry.insert(index);
            None
        }
    }
}
