//! A longest-prefix-match table.
//!
//! Entries are kept sorted by prefix length, longest first, and scanned in order:
//! a router of this class holds a handful of routes, for which a scan of a small
//! contiguous array beats a trie. A full-table deployment would swap in a
//! DIR-24-8 style table behind the same interface.

use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Prefixes mapped to values, looked up by longest match.
#[derive(Debug, Clone)]
pub struct PrefixTable<T> {
    /// (network as u32, mask as u32, prefix, value), longest prefix first.
    entries: Vec<(u32, u32, Ipv4Net, T)>,
}

impl<T> Default for PrefixTable<T> {
    fn default() -> Self {
        PrefixTable {
            entries: Vec::new(),
        }
    }
}

impl<T> PrefixTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts `value` for `prefix` (normalised to its network), replacing any
    /// value the same prefix had.
    pub fn insert(&mut self, prefix: Ipv4Net, value: T) {
        let prefix = prefix.trunc();
        let net = u32::from(prefix.network());
        let mask = u32::from(prefix.netmask());
        if let Some(e) = self.entries.iter_mut().find(|e| e.2 == prefix) {
            e.3 = value;
            return;
        }
        let at = self
            .entries
            .iter()
            .position(|e| e.2.prefix_len() < prefix.prefix_len())
            .unwrap_or(self.entries.len());
        self.entries.insert(at, (net, mask, prefix, value));
    }

    /// Removes `prefix`; returns its value if it was present.
    pub fn remove(&mut self, prefix: Ipv4Net) -> Option<T> {
        let prefix = prefix.trunc();
        let i = self.entries.iter().position(|e| e.2 == prefix)?;
        Some(self.entries.remove(i).3)
    }

    /// The value of the longest prefix containing `addr`.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<&T> {
        let a = u32::from(addr);
        self.entries
            .iter()
            .find(|(net, mask, _, _)| a & mask == *net)
            .map(|e| &e.3)
    }

    /// Entries, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Net, &T)> {
        self.entries.iter().map(|e| (e.2, &e.3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn longest_match_agrees_with_a_naive_search(
            routes in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..40),
            probes in proptest::collection::vec(any::<u32>(), 1..50),
        ) {
            let mut t = PrefixTable::new();
            let mut naive: Vec<(Ipv4Net, usize)> = Vec::new();
            for (i, (a, len)) in routes.iter().enumerate() {
                let p = Ipv4Net::new(Ipv4Addr::from(*a), *len).unwrap().trunc();
                t.insert(p, i);
                naive.retain(|(q, _)| *q != p);
                naive.push((p, i));
            }
            for probe in probes {
                let addr = Ipv4Addr::from(probe);
                let want = naive
                    .iter()
                    .filter(|(p, _)| p.contains(&addr))
                    .max_by_key(|(p, _)| p.prefix_len())
                    .map(|(_, v)| *v);
                prop_assert_eq!(t.lookup(addr).copied(), want);
            }
        }
    }

    #[test]
    fn remove_deletes_only_that_prefix() {
        let mut t = PrefixTable::new();
        t.insert("198.18.0.0/15".parse().unwrap(), 1);
        t.insert("198.18.1.0/24".parse().unwrap(), 2);
        assert_eq!(t.lookup("198.18.1.9".parse().unwrap()), Some(&2));
        assert_eq!(t.remove("198.18.1.0/24".parse().unwrap()), Some(2));
        assert_eq!(t.lookup("198.18.1.9".parse().unwrap()), Some(&1));
    }
}
