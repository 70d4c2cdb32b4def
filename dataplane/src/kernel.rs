//! What the kernel says of braid's interfaces (their addresses, default routes and
//! neighbours), and the
//! configuration resolved with it: an interface with `address = "kernel"` takes the kernel's
//! address there, and each link on it without a `gateway` takes the kernel's default route out
//! of that interface. So an uplink whose address DHCP gives is followed: the daemon reads the
//! kernel again when it reports a change (`io::netlink`) and installs the result.

use crate::io::host::{self, HostAddress};
use crate::wire::Mac;
use braid_control::config::{Config, InterfaceAddress, LinkConfig, LinkState};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// A default route of the kernel's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    pub interface: String,
    pub via: Ipv4Addr,
    pub metric: u32,
}

/// A neighbour whose link-layer address the kernel has resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelNeighbour {
    pub interface: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
}

/// The kernel's addresses, default routes and resolved neighbours, as read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelView {
    pub addresses: Vec<HostAddress>,
    pub routes: Vec<DefaultRoute>,
    pub neighbours: Vec<KernelNeighbour>,
}

/// `ATF_COM` in /proc/net/arp's flags: the entry is resolved.
const RESOLVED: u32 = 0x2;

/// The resolved neighbours in the text of /proc/net/arp:
/// `IP address  HW type  Flags  HW address  Mask  Device`. Lines that do not parse are skipped.
pub fn neighbours(text: &str) -> Vec<KernelNeighbour> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(2)?.trim_start_matches("0x"), 16).ok()?;
            let mut mac = [0u8; 6];
            let mut parts = f.get(3)?.split(':');
            for b in &mut mac {
                *b = u8::from_str_radix(parts.next()?, 16).ok()?;
            }
            let (interface, ip) = ((*f.get(5)?).to_owned(), f.first()?.parse().ok()?);
            (flags & RESOLVED != 0 && mac != [0; 6]).then_some(KernelNeighbour {
                interface,
                ip,
                mac,
            })
        })
        .collect()
}

/// `RTF_UP | RTF_GATEWAY` in /proc/net/route's flags.
const UP_GATEWAY: u32 = 0x1 | 0x2;

/// The default routes with a gateway in the text of /proc/net/route (the main table):
/// `Iface Destination Gateway Flags RefCnt Use Metric Mask ...`, addresses in hexadecimal as
/// the kernel holds them in memory (network order). Lines that do not parse are skipped.
pub fn default_routes(text: &str) -> Vec<DefaultRoute> {
    let hex = |f: &str| u32::from_str_radix(f, 16).ok();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, via, flags, metric, mask) = (
                f.first()?,
                hex(f.get(1)?)?,
                hex(f.get(2)?)?,
                hex(f.get(3)?)?,
                f.get(6)?,
                hex(f.get(7)?)?,
            );
            (dest == 0 && mask == 0 && flags & UP_GATEWAY == UP_GATEWAY).then(|| DefaultRoute {
                interface: (*iface).to_owned(),
                via: Ipv4Addr::from(via.to_ne_bytes()),
                metric: metric.parse().unwrap_or(u32::MAX),
            })
        })
        .collect()
}

impl KernelView {
    /// The address braid takes on `interface`: the kernel's first IPv4 address there.
    fn address_of(&self, interface: &str) -> Option<Ipv4Net> {
        self.addresses
            .iter()
            .find(|a| a.interface == interface)
            .map(|a| a.net)
    }

    /// The gateway of the default route out of `interface` with the lowest metric.
    fn gateway_of(&self, interface: &str) -> Option<Ipv4Addr> {
        self.routes
            .iter()
            .filter(|r| r.interface == interface)
            .min_by_key(|r| r.metric)
            .map(|r| r.via)
    }
}

/// What the kernel gave a configuration: each interface's address in effect and each link's
/// gateway and state (compared to tell whether a new view changes anything).
pub type Facts = Vec<String>;

/// A configuration resolved with the kernel's view.
pub struct Resolved {
    /// The configuration with every kernel address the kernel has (and validates) filled in.
    pub config: Config,
    /// Why an interface with a kernel address has none, one line each.
    pub waiting: Vec<String>,
}

impl Resolved {
    /// What the kernel gave: to compare with the previous resolution.
    pub fn facts(&self) -> Facts {
        let c = &self.config;
        let addresses = c
            .interfaces
            .iter()
            .map(|i| format!("{} {}", i.name, i.address));
        let links = c
            .peers
            .iter()
            .flat_map(|p| &p.links)
            .map(|l| format!("{} {:?} {:?}", l.name, l.gateway, l.state));
        addresses.chain(links).collect()
    }
}

/// `cfg` (valid, as written) with the kernel's addresses and gateways: an interface with
/// `address = "kernel"` whose kernel address and default route make a valid configuration takes
/// them; one without (no address yet, or one that braid cannot use) keeps none, and the links on
/// it are down until it has.
pub fn resolve(cfg: &Config, view: &KernelView) -> Resolved {
    let mut config = cfg.clone();
    let kernel: Vec<usize> = (0..cfg.interfaces.len())
        .filter(|&i| cfg.interfaces[i].address.is_kernel())
        .collect();
    for &i in &kernel {
        set_down(&mut config, i);
    }
    let mut waiting = Vec::new();
    for &i in &kernel {
        let name = cfg.interfaces[i].name.clone();
        let Some(net) = view.address_of(&name) else {
            waiting.push(format!("{name}: the kernel has no IPv4 address on it yet"));
            continue;
        };
        let gateway = view.gateway_of(&name);
        // A DHCP client sets the address before the route: wait for the route quietly.
        let off_link = |l: &LinkConfig| l.remote.is_some_and(|r| !net.contains(r.ip()));
        if gateway.is_none()
            && (cfg.peers.iter().flat_map(|p| &p.links))
                .any(|l| l.interface == name && l.gateway.is_none() && off_link(l))
        {
            waiting.push(format!(
                "{name}: {net}, but the kernel has no default route out of it yet"
            ));
            continue;
        }
        let mut next = config.clone();
        fill(&mut next, cfg, i, net, gateway);
        match next.validate() {
            Ok(()) => config = next,
            Err(problems) => {
                let why: Vec<String> = problems.iter().map(ToString::to_string).collect();
                waiting.push(format!(
                    "{name}: the kernel's address {net} cannot be used: {}",
                    why.join("; ")
                ));
            }
        }
    }
    Resolved { config, waiting }
}

/// Interface `i` of `config` without an address, its links down.
fn set_down(config: &mut Config, i: usize) {
    config.interfaces[i].address = InterfaceAddress::Kernel(None);
    let name = config.interfaces[i].name.clone();
    for l in config.peers.iter_mut().flat_map(|p| &mut p.links) {
        if l.interface == name {
            l.state = LinkState::Down;
        }
    }
}

/// Interface `i` of `config` with the kernel's address `net`, its links as written in
/// `written`, with the kernel's gateway `gateway` where none is written.
fn fill(config: &mut Config, written: &Config, i: usize, net: Ipv4Net, gateway: Option<Ipv4Addr>) {
    config.interfaces[i].address = InterfaceAddress::Kernel(Some(net));
    let name = &written.interfaces[i].name;
    let links = config.peers.iter_mut().flat_map(|p| &mut p.links);
    for (l, w) in links.zip(written.peers.iter().flat_map(|p| &p.links)) {
        if &l.interface == name {
            l.state = w.state;
            l.gateway = w.gateway.or(gateway);
        }
    }
}

impl KernelView {
    /// Reads the kernel's addresses and the default routes of its main table now.
    pub fn read() -> Result<KernelView, String> {
        let addresses = host::kernel_addresses()
            .map_err(|e| format!("cannot read the kernel's addresses: {e}"))?;
        let read = |path: &str| std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"));
        Ok(KernelView {
            addresses,
            routes: default_routes(&read(ROUTES)?),
            neighbours: neighbours(&read(NEIGHBOURS)?),
        })
    }
}

/// The kernel's IPv4 routes of the main table, as text.
const ROUTES: &str = "/proc/net/route";
/// The kernel's IPv4 neighbours (ARP), as text.
const NEIGHBOURS: &str = "/proc/net/arp";

#[cfg(test)]
mod tests {
    use super::*;

    /// An edge whose uplink wan1 takes its address from the kernel (DHCP) and wan2 is written.
    const EDGE: &str = r#"
role = "edge"
private_key_file = "edge.key"
[[interface]]
name = "lan0"
address = "198.18.1.1/24"
[[interface]]
name = "wan1"
address = "kernel"
mode = "shared"
[[interface]]
name = "wan2"
address = "198.18.12.2/24"
[[peer]]
name = "hub"
public_key = "pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk="
allowed = ["0.0.0.0/0"]
[[peer.link]]
name = "isp1"
interface = "wan1"
remote = "203.0.113.2:7420"
[[peer.link]]
name = "isp2"
interface = "wan2"
gateway = "198.18.12.1"
remote = "203.0.113.2:7420"
[[route]]
to = "0.0.0.0/0"
peer = "hub"
"#;

    /// /proc/net/route with a default route out of wan1 (metric 100) and eth9 (metric 0), a
    /// connected route, and a default route without RTF_GATEWAY.
    const ROUTES_TEXT: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wan1\t00000000\t010B12C6\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth9\t00000000\t01020304\t0003\t0\t0\t0\t00000000\t0\t0\t0
wan1\t000B12C6\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
dummy\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0
";

    fn config() -> Config {
        let c: Config = toml::from_str(EDGE).expect("parses");
        c.validate().expect("valid as written");
        c
    }

    fn view(addr: Option<&str>, routes: &str) -> KernelView {
        KernelView {
            addresses: addr
                .map(|a| HostAddress {
                    interface: "wan1".into(),
                    net: a.parse().unwrap(),
                })
                .into_iter()
                .collect(),
            routes: default_routes(routes),
            neighbours: Vec::new(),
        }
    }

    fn link(c: &Config, name: &str) -> (Option<Ipv4Addr>, LinkState) {
        let l = c.peers[0].links.iter().find(|l| l.name == name).unwrap();
        (l.gateway, l.state)
    }

    #[test]
    fn default_routes_are_read_from_the_main_table_text() {
        let routes = default_routes(ROUTES_TEXT);
        let wan1 = DefaultRoute {
            interface: "wan1".into(),
            via: Ipv4Addr::new(198, 18, 11, 1),
            metric: 100,
        };
        let eth9 = DefaultRoute {
            interface: "eth9".into(),
            via: Ipv4Addr::new(4, 3, 2, 1),
            metric: 0,
        };
        assert_eq!(routes, vec![wan1, eth9]);
        assert!(default_routes("").is_empty());
        assert!(default_routes("header\nwan1 zz 00 03 0 0 0 00\n").is_empty());
    }

    #[test]
    fn resolved_neighbours_are_read_from_the_arp_text() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device
198.18.11.1      0x1         0x2         02:fc:00:00:00:05     *        wan1
198.18.11.5      0x1         0x0         00:00:00:00:00:00     *        wan1
198.18.11.6      0x1         0x6         02:fc:00:00:00:06     *        wan1
bogus            0x1         0x2         02:fc:00:00:00:07     *        wan1
";
        let n = neighbours(text);
        let want = |ip: [u8; 4], last: u8| KernelNeighbour {
            interface: "wan1".into(),
            ip: Ipv4Addr::from(ip),
            mac: [2, 0xfc, 0, 0, 0, last],
        };
        assert_eq!(
            n,
            vec![want([198, 18, 11, 1], 5), want([198, 18, 11, 6], 6)]
        );
    }

    #[test]
    fn the_kernel_address_and_default_route_go_to_the_interface_and_its_links() {
        let r = resolve(&config(), &view(Some("198.18.11.7/24"), ROUTES_TEXT));
        assert!(r.waiting.is_empty(), "{:?}", r.waiting);
        assert_eq!(
            r.config.interfaces[1].address,
            InterfaceAddress::Kernel(Some("198.18.11.7/24".parse().unwrap()))
        );
        assert_eq!(
            link(&r.config, "isp1"),
            (Some(Ipv4Addr::new(198, 18, 11, 1)), LinkState::Up)
        );
        // The written interface and link stay as written.
        assert_eq!(
            r.config.interfaces[2].address,
            config().interfaces[2].address
        );
        assert_eq!(
            link(&r.config, "isp2"),
            (Some(Ipv4Addr::new(198, 18, 12, 1)), LinkState::Up)
        );
        r.config
            .validate()
            .expect("the resolved configuration is valid");
    }

    #[test]
    fn without_a_kernel_address_the_links_on_it_are_down() {
        let r = resolve(&config(), &view(None, ROUTES_TEXT));
        assert_eq!(
            r.config.interfaces[1].address,
            InterfaceAddress::Kernel(None)
        );
        assert_eq!(link(&r.config, "isp1").1, LinkState::Down);
        assert_eq!(link(&r.config, "isp2").1, LinkState::Up);
        assert_eq!(r.waiting.len(), 1);
        assert!(
            r.waiting[0].starts_with("wan1: the kernel has no"),
            "{:?}",
            r.waiting
        );
    }

    #[test]
    fn an_address_braid_cannot_use_is_not_taken_and_says_why() {
        // A /32 leaves no on-link gateway; without a default route the remote is not on-link.
        for (addr, routes, why) in [
            ("198.18.11.7/32", ROUTES_TEXT, "interface[1].address"),
            ("198.18.11.7/24", "", "no default route out of it yet"),
        ] {
            let r = resolve(&config(), &view(Some(addr), routes));
            assert_eq!(
                r.config.interfaces[1].address,
                InterfaceAddress::Kernel(None)
            );
            assert_eq!(link(&r.config, "isp1").1, LinkState::Down);
            assert!(
                r.waiting.len() == 1 && r.waiting[0].contains(why),
                "{addr}: {:?}",
                r.waiting
            );
        }
    }

    #[test]
    fn a_written_gateway_and_state_win_over_the_kernel() {
        let text = EDGE.replace(
            "interface = \"wan1\"\n",
            "interface = \"wan1\"\ngateway = \"198.18.11.254\"\nstate = \"down\"\n",
        );
        let c: Config = toml::from_str(&text).unwrap();
        let r = resolve(&c, &view(Some("198.18.11.7/24"), ROUTES_TEXT));
        assert_eq!(
            link(&r.config, "isp1"),
            (Some(Ipv4Addr::new(198, 18, 11, 254)), LinkState::Down)
        );
    }

    #[test]
    fn the_facts_change_with_the_address_and_the_route_only() {
        let c = config();
        let at = |addr: &str, routes: &str| resolve(&c, &view(Some(addr), routes)).facts();
        let before = at("198.18.11.7/24", ROUTES_TEXT);
        assert_eq!(before, at("198.18.11.7/24", ROUTES_TEXT));
        assert_ne!(before, at("198.18.11.8/24", ROUTES_TEXT));
        let other_gateway = ROUTES_TEXT.replace("010B12C6", "FE0B12C6");
        assert_ne!(before, at("198.18.11.7/24", &other_gateway));
        // A route of another interface changes nothing here.
        let other = ROUTES_TEXT.replace("01020304", "05060708");
        assert_eq!(before, at("198.18.11.7/24", &other));
    }
}
