//! What braid's XDP program sends to braid on each interface ([`Steering`]), from the
//! configuration and the kernel's addresses, and the start-up check that the host's own
//! ephemeral ports stay apart from the ports braid claims on a shared interface.

use crate::io::host::HostAddress;
use crate::io::prog::{protos, AddrClass, Claim, Steering};
use braid_control::config::{Config, InterfaceAddress, InterfaceMode, KERNEL};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

/// The tunnel's ports: one per worker from `tunnel_port`.
fn tunnel_ports(cfg: &Config) -> RangeInclusive<u16> {
    let last = usize::from(cfg.tunnel_port) + cfg.workers.max(1) - 1;
    cfg.tunnel_port..=u16::try_from(last).unwrap_or(u16::MAX)
}

/// The masquerade's outside addresses on interface `i`, with its index and ports.
fn masquerade_on(cfg: &Config, i: usize) -> Option<(usize, Vec<Ipv4Addr>, RangeInclusive<u16>)> {
    let iface = cfg.interfaces.get(i)?;
    let (m, masq) = cfg
        .masquerades
        .iter()
        .enumerate()
        .find(|(_, m)| m.interface == iface.name)?;
    let pool = if masq.addresses.is_empty() {
        iface.address.net().map(|n| n.addr()).into_iter().collect()
    } else {
        masq.addresses.clone()
    };
    Some((m, pool, masq.port_min..=masq.port_max))
}

/// The steering of interface `i` given the kernel's addresses `host` (all interfaces').
pub fn steering(cfg: &Config, i: usize, host: &[HostAddress]) -> Result<Steering, String> {
    let Some(iface) = cfg.interfaces.get(i) else {
        return Err(format!("no interface[{i}]"));
    };
    if iface.mode == InterfaceMode::Owned {
        return Ok(Steering {
            owned: true,
            ..Steering::default()
        });
    }
    let mut addrs: HashMap<Ipv4Addr, AddrClass> = HashMap::new();
    for h in host {
        if h.net.prefix_len() < 31 {
            addrs
                .entry(h.net.broadcast())
                .or_insert(AddrClass::Broadcast);
        }
    }
    for h in host {
        addrs.insert(h.net.addr(), AddrClass::Host);
    }
    let is_host = |a: &Ipv4Addr| addrs.get(a) == Some(&AddrClass::Host);
    let mut claims = Vec::new();
    let mut braid_only = Vec::new();
    let tunnel = cfg
        .peers
        .iter()
        .flat_map(|p| &p.links)
        .any(|l| l.interface == iface.name);
    // None while the kernel has not given the interface its address: nothing to claim.
    if let Some(own) = iface.address.net().map(|n| n.addr()) {
        if !is_host(&own) {
            braid_only.push(own);
        } else if tunnel {
            claims.push(Claim {
                addr: own,
                protos: protos::UDP,
                ports: tunnel_ports(cfg),
            });
        }
    }
    if let Some((_, pool, ports)) = masquerade_on(cfg, i) {
        for a in pool {
            if is_host(&a) {
                claims.push(Claim {
                    addr: a,
                    protos: protos::ICMP | protos::TCP | protos::UDP,
                    ports: ports.clone(),
                });
            } else {
                braid_only.push(a);
            }
        }
    }
    for a in braid_only {
        addrs.insert(a, AddrClass::Braid);
    }
    let mut addrs: Vec<_> = addrs.into_iter().collect();
    addrs.sort_by_key(|(a, _)| *a);
    Ok(Steering {
        owned: false,
        addrs,
        claims,
    })
}

/// Refuses ports braid claims on a host address of a shared interface that the host's own
/// connections may take as their source port (`ephemeral`, the kernel's
/// `ip_local_port_range`): their answers would go to braid.
pub fn check_ephemeral(
    cfg: &Config,
    host: &[HostAddress],
    ephemeral: RangeInclusive<u16>,
) -> Result<(), String> {
    let overlaps =
        |r: &RangeInclusive<u16>| r.start() <= ephemeral.end() && ephemeral.start() <= r.end();
    let (lo, hi) = (ephemeral.start(), ephemeral.end());
    for (i, iface) in cfg.interfaces.iter().enumerate() {
        if iface.mode != InterfaceMode::Shared {
            continue;
        }
        let is_host = |a: Ipv4Addr| host.iter().any(|h| h.net.addr() == a);
        if let Some((m, pool, ports)) = masquerade_on(cfg, i) {
            if pool.into_iter().any(is_host) && overlaps(&ports) {
                return Err(format!(
                    "masquerade[{m}].port_min: {} is shared with the host, whose own \
                     connections take source ports {lo}..={hi} (net.ipv4.ip_local_port_range); \
                     the NAT's ports {}..={} must stay apart from them",
                    iface.name,
                    ports.start(),
                    ports.end()
                ));
            }
        }
        let tunnel = tunnel_ports(cfg);
        if iface.address.net().is_some_and(|n| is_host(n.addr())) && overlaps(&tunnel) {
            return Err(format!(
                "tunnel_port: {} is shared with the host, whose own connections take source \
                 ports {lo}..={hi} (net.ipv4.ip_local_port_range); the tunnel's ports {}..={} \
                 must stay apart from them",
                iface.name,
                tunnel.start(),
                tunnel.end()
            ));
        }
    }
    Ok(())
}

/// What braid's XDP program was given from the configuration of each shared interface, as
/// written: its address (or `kernel`), whether a link uses it, its masquerade's outside
/// addresses and ports, the tunnel's ports. Owned interfaces contribute their mode alone.
fn steered(cfg: &Config) -> Vec<String> {
    cfg.interfaces
        .iter()
        .map(|iface| {
            if iface.mode == InterfaceMode::Owned {
                return "owned".to_owned();
            }
            let tunnel = cfg
                .peers
                .iter()
                .flat_map(|p| &p.links)
                .any(|l| l.interface == iface.name);
            let address = match iface.address {
                InterfaceAddress::Static(n) => n.addr().to_string(),
                InterfaceAddress::Kernel(_) => KERNEL.to_owned(),
            };
            // As written: no addresses means the interface's, whatever the kernel gave it.
            let masquerade = (cfg.masquerades.iter())
                .find(|m| m.interface == iface.name)
                .map(|m| (&m.addresses, m.port_min..=m.port_max));
            format!(
                "shared {address} {tunnel} {masquerade:?} {:?}",
                tunnel_ports(cfg)
            )
        })
        .collect()
}

/// The problem of a configuration change that would need another XDP steering than the
/// running one, which is set at start: only a restart can apply it.
pub fn restart_problem(old: &Config, next: &Config) -> Option<String> {
    (steered(old) != steered(next)).then(|| {
        "interface: the interfaces' modes, or what braid claims on a shared interface \
         (its address, links, masquerade addresses and ports, the tunnel's ports) differ"
            .to_owned()
    })
}

/// Reads the kernel's `ip_local_port_range`.
pub fn ephemeral_ports() -> Result<RangeInclusive<u16>, String> {
    let path = "/proc/sys/net/ipv4/ip_local_port_range";
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Ok(lo..=hi),
        _ => Err(format!("{path}: unreadable {:?}", text.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let v: Config = toml::from_str(text).expect("parses");
        v.validate().expect("valid");
        v
    }

    const HUB: &str = r#"
role = "hub"
private_key_file = "hub.key"
workers = 2
[[interface]]
name = "wan0"
address = "203.0.113.2/28"
mode = "shared"
[[peer]]
name = "edge1"
public_key = "pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk="
allowed = ["198.18.1.0/24"]
[[peer.link]]
name = "isp1"
interface = "wan0"
gateway = "203.0.113.1"
[[masquerade]]
interface = "wan0"
sources = ["198.18.1.0/24"]
port_min = 20000
port_max = 29999
"#;

    fn host(list: &[(&str, &str)]) -> Vec<HostAddress> {
        list.iter()
            .map(|(i, n)| HostAddress {
                interface: (*i).to_owned(),
                net: n.parse().unwrap(),
            })
            .collect()
    }

    fn class(s: &Steering, a: [u8; 4]) -> Option<AddrClass> {
        s.addrs
            .iter()
            .find(|(x, _)| *x == Ipv4Addr::from(a))
            .map(|(_, c)| *c)
    }

    #[test]
    fn a_change_of_what_is_claimed_needs_a_restart() {
        let cfg = config(HUB);
        assert_eq!(restart_problem(&cfg, &cfg.clone()), None);
        let mut next = cfg.clone();
        next.masquerades[0].port_max = 28000;
        assert!(restart_problem(&cfg, &next).is_some());
        let mut next = cfg.clone();
        next.interfaces[0].mode = InterfaceMode::Owned;
        assert!(restart_problem(&cfg, &next).is_some());
        // Owned, the masquerade's ports are not the program's business.
        let owned = config(&HUB.replace("mode = \"shared\"", "mode = \"owned\""));
        let mut next = owned.clone();
        next.masquerades[0].port_max = 28000;
        assert_eq!(restart_problem(&owned, &next), None);
    }

    #[test]
    fn owned_sends_everything() {
        let cfg = config(&HUB.replace("mode = \"shared\"", "mode = \"owned\""));
        let s = steering(&cfg, 0, &host(&[("wan0", "203.0.113.2/28")])).unwrap();
        assert!(s.owned && s.addrs.is_empty() && s.claims.is_empty());
    }

    #[test]
    fn shared_hub_claims_the_tunnel_and_the_nat_on_the_host_address() {
        let cfg = config(HUB);
        let h = host(&[("lo", "127.0.0.1/8"), ("wan0", "203.0.113.2/28")]);
        let s = steering(&cfg, 0, &h).unwrap();
        assert!(!s.owned);
        assert_eq!(class(&s, [203, 0, 113, 2]), Some(AddrClass::Host));
        assert_eq!(class(&s, [203, 0, 113, 15]), Some(AddrClass::Broadcast));
        assert_eq!(class(&s, [127, 0, 0, 1]), Some(AddrClass::Host));
        let own = Ipv4Addr::new(203, 0, 113, 2);
        assert_eq!(
            s.claims,
            vec![
                Claim {
                    addr: own,
                    protos: protos::UDP,
                    ports: 7420..=7421
                },
                Claim {
                    addr: own,
                    protos: protos::ICMP | protos::TCP | protos::UDP,
                    ports: 20000..=29999
                },
            ]
        );
    }

    #[test]
    fn an_address_the_kernel_lacks_is_braids_alone() {
        let cfg = config(HUB);
        let s = steering(&cfg, 0, &host(&[("lo", "127.0.0.1/8")])).unwrap();
        assert_eq!(class(&s, [203, 0, 113, 2]), Some(AddrClass::Braid));
        assert!(s.claims.is_empty());
    }

    #[test]
    fn a_kernel_address_is_claimed_once_the_kernel_gives_it() {
        let text = HUB.replace("address = \"203.0.113.2/28\"", "address = \"kernel\"");
        let mut cfg = config(&text);
        let h = host(&[("wan0", "203.0.113.2/28")]);
        // Not yet given: nothing claimed, neither the tunnel nor the masquerade.
        let s = steering(&cfg, 0, &h).unwrap();
        assert!(s.claims.is_empty(), "{s:?}");
        cfg.interfaces[0].address =
            InterfaceAddress::Kernel(Some("203.0.113.2/28".parse().unwrap()));
        let s = steering(&cfg, 0, &h).unwrap();
        assert_eq!(s.claims.len(), 2, "tunnel and masquerade: {s:?}");
        // What the kernel gives is no change of what the file claims.
        assert_eq!(restart_problem(&config(&text), &cfg), None);
    }

    #[test]
    fn the_nat_and_tunnel_stay_apart_from_the_host_ephemeral_ports() {
        let cfg = config(HUB);
        let h = host(&[("wan0", "203.0.113.2/28")]);
        assert!(check_ephemeral(&cfg, &h, 32768..=60999).is_ok());
        let err = check_ephemeral(&cfg, &h, 28000..=60999).unwrap_err();
        assert!(err.starts_with("masquerade[0].port_min"), "{err}");
        let err = check_ephemeral(&cfg, &h, 7000..=7420).unwrap_err();
        assert!(err.starts_with("tunnel_port"), "{err}");
        // Owned, or an address the host lacks: nothing of the host's to collide with.
        assert!(check_ephemeral(&cfg, &[], 1024..=65535).is_ok());
    }
}
