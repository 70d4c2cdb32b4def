//! Which packets go on every link that is up (`[[bond.redundant]]`, docs/CONFIG.md): the
//! rules compiled for the data path.

use braid_control::config::RedundantRule;

/// One compiled rule: a packet matches when every field given matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redundant {
    protocol: Option<u8>,
    /// First and last port, matched against the source or the destination port.
    ports: Option<(u16, u16)>,
    dscp: Option<u8>,
}

impl Redundant {
    /// The rule `r` (validated: a bad port range matches nothing).
    pub fn of(r: &RedundantRule) -> Redundant {
        Redundant {
            protocol: r.protocol.map(|p| p.number()),
            ports: r.ports.as_ref().map(|p| p.bounds().unwrap_or((1, 0))),
            dscp: r.dscp,
        }
    }

    /// True for a packet of `protocol`, with transport `ports` (source, destination; none
    /// for other protocols and later fragments) and `dscp`.
    pub fn matches(&self, protocol: u8, ports: Option<(u16, u16)>, dscp: u8) -> bool {
        self.protocol.is_none_or(|p| p == protocol)
            && self.dscp.is_none_or(|d| d == dscp)
            && self.ports.is_none_or(|(lo, hi)| {
                ports.is_some_and(|(s, d)| (lo..=hi).contains(&s) || (lo..=hi).contains(&d))
            })
    }
}

/// True when a rule of `rules` matches (see [`Redundant::matches`]).
pub fn any_matches(rules: &[Redundant], protocol: u8, ports: Option<(u16, u16)>, dscp: u8) -> bool {
    rules.iter().any(|r| r.matches(protocol, ports, dscp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_control::config::{Ports, Protocol};

    fn rule(protocol: Option<Protocol>, ports: Option<Ports>, dscp: Option<u8>) -> Redundant {
        Redundant::of(&RedundantRule {
            protocol,
            ports,
            dscp,
        })
    }

    #[test]
    fn every_field_given_must_match() {
        let voice = rule(
            Some(Protocol::Udp),
            Some(Ports::Range("3478-3481".into())),
            None,
        );
        assert!(voice.matches(17, Some((50000, 3478)), 0));
        assert!(
            voice.matches(17, Some((3481, 50000)), 0),
            "the source port counts too"
        );
        assert!(!voice.matches(17, Some((50000, 3482)), 0));
        assert!(!voice.matches(6, Some((50000, 3478)), 0), "not TCP");
        assert!(!voice.matches(17, None, 0), "a later fragment has no ports");
        let ef = rule(None, None, Some(46));
        assert!(ef.matches(6, Some((1, 2)), 46));
        assert!(ef.matches(1, None, 46));
        assert!(!ef.matches(17, Some((1, 2)), 0));
        let ssh = rule(Some(Protocol::Tcp), Some(Ports::One(22)), Some(0));
        assert!(ssh.matches(6, Some((22, 40000)), 0));
        assert!(!ssh.matches(6, Some((22, 40000)), 8));
        assert!(any_matches(&[ssh, ef], 17, None, 46));
        assert!(!any_matches(&[], 17, None, 46));
    }
}
