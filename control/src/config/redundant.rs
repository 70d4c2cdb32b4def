//! `[[bond.redundant]]`: the packets sent on every link that is up (calls, games), so
//! that the loss of one link does not reach the application.

use serde::Deserialize;

/// A transport protocol a redundancy rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Udp,
    Tcp,
    Icmp,
}

impl Protocol {
    /// The IPv4 protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Icmp => 1,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// A port or a range of ports, as written: `3478` or `"3478-3481"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Ports {
    One(u16),
    Range(String),
}

impl Ports {
    /// The first and last port, or what is wrong with the text.
    pub fn bounds(&self) -> Result<(u16, u16), String> {
        match self {
            Ports::One(p) => Ok((*p, *p)),
            Ports::Range(s) => {
                let (a, b) = s.split_once('-').unwrap_or((s, s));
                let num = |t: &str| {
                    t.trim()
                        .parse::<u16>()
                        .map_err(|_| format!("`{s}` is not a port or a range like 3478-3481"))
                };
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("`{s}`: the range ends before it starts"));
                }
                Ok((a, b))
            }
        }
    }
}

/// One rule: a packet that matches every field given goes on every link that is up.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedundantRule {
    /// `udp`, `tcp` or `icmp`.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// Source or destination port (UDP and TCP).
    #[serde(default)]
    pub ports: Option<Ports>,
    /// The DSCP of the IPv4 header, 0 to 63 (46 is Expedited Forwarding: voice).
    #[serde(default)]
    pub dscp: Option<u8>,
}

impl RedundantRule {
    /// What is wrong with the rule, by field (relative to the rule).
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.protocol.is_none() && self.ports.is_none() && self.dscp.is_none() {
            out.push((
                "protocol",
                "a redundancy rule needs at least one of `protocol`, `ports`, `dscp`; \
                 it would send everything on every link"
                    .to_string(),
            ));
        }
        if let Some(d) = self.dscp.filter(|&d| d > 63) {
            out.push(("dscp", format!("dscp must be in 0..=63, got {d}")));
        }
        if let Some(p) = &self.ports {
            if let Err(e) = p.bounds() {
                out.push(("ports", e));
            } else if self.protocol == Some(Protocol::Icmp) {
                out.push(("ports", "ICMP has no ports".to_string()));
            }
        }
        out
    }
}
