//! Routing: prefix tables, policy rules that pick a table by source, and the
//! neighbour (ARP) cache with its resolution queue.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod neighbor;
pub mod pending;
pub mod table;

pub use neighbor::Neighbors;
pub use pending::Pending;
pub use table::PrefixTable;

use crate::frame::PortId;
use crate::ids::PeerIdx;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Where a route sends a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// Into the bond towards this peer.
    Bond(PeerIdx),
    /// Out of a port, to `gateway` or (when None) straight to the destination.
    Port {
        port: PortId,
        gateway: Option<Ipv4Addr>,
    },
}

/// Routing tables and the policy rules choosing among them, as Linux does:
/// rules are tried in order, a rule whose table has no match falls through, and
/// the `main` table is consulted last.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    tables: Vec<(String, PrefixTable<NextHop>)>,
    /// (network as u32, mask as u32, table): a source matches in one AND and compare.
    rules: Vec<(u32, u32, usize)>,
}

/// Name of the table used when no rule matches.
pub const MAIN: &str = "main";

impl Routes {
    /// Empty routes (an empty `main` table).
    pub fn new() -> Routes {
        Routes {
            tables: vec![(MAIN.into(), PrefixTable::new())],
            rules: Vec::new(),
        }
    }

    /// Index of table `name`, created if new.
    fn table_index(&mut self, name: &str) -> usize {
        match self.tables.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.tables.push((name.into(), PrefixTable::new()));
                self.tables.len() - 1
            }
        }
    }

    /// Adds (or replaces) a route in table `table`.
    pub fn add_route(&mut self, table: &str, to: Ipv4Net, hop: NextHop) {
        let i = self.table_index(table);
        if let Some((_, t)) = self.tables.get_mut(i) {
            t.insert(to, hop);
        }
    }

    /// Appends a rule: sources in `from` use table `table`.
    pub fn add_rule(&mut self, from: Ipv4Net, table: &str) {
        let i = self.table_index(table);
        let from = from.trunc();
        self.rules
            .push((u32::from(from.network()), u32::from(from.netmask()), i));
    }

    /// Every (port, gateway) some route sends to.
    pub fn gateways(&self) -> impl Iterator<Item = (PortId, Ipv4Addr)> + '_ {
        self.tables.iter().flat_map(|(_, t)| {
            t.iter().filter_map(|(_, hop)| match hop {
                NextHop::Port {
                    port,
                    gateway: Some(gw),
                } => Some((*port, *gw)),
                _ => None,
            })
        })
    }

    /// The next hop for a packet from `src` to `dst`.
    pub fn lookup(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Option<NextHop> {
        let src = u32::from(src);
        for &(net, mask, t) in &self.rules {
            if src & mask == net {
                if let Some(hop) = self.tables.get(t).and_then(|(_, t)| t.lookup(dst)) {
                    return Some(*hop);
                }
            }
        }
        self.tables
            .first()
            .and_then(|(_, t)| t.lookup(dst))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn rules_pick_tables_and_fall_through_to_main() {
        let mut r = Routes::new();
        r.add_route(
            MAIN,
            net("198.18.1.0/24"),
            NextHop::Port {
                port: 0,
                gateway: None,
            },
        );
        r.add_route(
            MAIN,
            net("0.0.0.0/0"),
            NextHop::Port {
                port: 1,
                gateway: Some("198.18.11.1".parse().unwrap()),
            },
        );
        r.add_route("bond", net("0.0.0.0/0"), NextHop::Bond(PeerIdx(0)));
        r.add_route(
            "isp2",
            net("203.0.113.0/24"),
            NextHop::Port {
                port: 2,
                gateway: None,
            },
        );
        r.add_rule(net("198.18.1.50/32"), "isp2");
        r.add_rule(net("198.18.1.0/24"), "bond");
        let lan = "198.18.1.7".parse().unwrap();
        let host50 = "198.18.1.50".parse().unwrap();
        let inet = "203.0.113.130".parse().unwrap();
        assert_eq!(r.lookup(lan, inet), Some(NextHop::Bond(PeerIdx(0))));
        assert_eq!(
            r.lookup(host50, inet),
            Some(NextHop::Port {
                port: 2,
                gateway: None
            })
        );
        // No match in isp2 for this destination: falls through to the bond rule.
        assert_eq!(
            r.lookup(host50, "198.18.200.1".parse().unwrap()),
            Some(NextHop::Bond(PeerIdx(0)))
        );
        // Traffic from elsewhere uses main.
        assert_eq!(
            r.lookup(inet, lan),
            Some(NextHop::Port {
                port: 0,
                gateway: None
            })
        );
    }
}
