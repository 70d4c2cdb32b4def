//! What a NAT table is built from: the outside pool, port range, timeouts and limits.

use super::pool::AddressPool;
use super::ports::PortRange;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Most outside addresses a pool may hold (each costs a port bitmap per
/// protocol in every worker).
pub const MAX_POOL: usize = 256;

/// Most sessions `max_sessions` may allow (about 1.7 GB of tables).
pub const MAX_SESSIONS: usize = 1 << 24;

/// Idle timeouts per protocol and TCP state (RFC 4787 REQ-5, RFC 5382 REQ-5,
/// the values VPP's NAT44-ED uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatTimeouts {
    /// UDP (default 300 s).
    pub udp: Duration,
    /// TCP seen both ways and not closed (default 7440 s).
    pub tcp_established: Duration,
    /// TCP opening (seen one way) or closed by FINs both ways or a RST (default 240 s).
    pub tcp_transitory: Duration,
    /// ICMP echo (default 60 s).
    pub icmp: Duration,
}

impl Default for NatTimeouts {
    fn default() -> Self {
        NatTimeouts {
            udp: Duration::from_secs(300),
            tcp_established: Duration::from_secs(7440),
            tcp_transitory: Duration::from_secs(240),
            icmp: Duration::from_secs(60),
        }
    }
}

/// The NAT's configuration, the same for every worker's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// Outside addresses (1 to [`MAX_POOL`]).
    pub pool: AddressPool,
    /// Outside ports (and ICMP identifiers) handed out.
    pub ports: PortRange,
    /// Idle timeouts.
    pub timeouts: NatTimeouts,
    /// Sessions over all workers (default 1,048,576, at most [`MAX_SESSIONS`]);
    /// each worker gets an equal share.
    pub max_sessions: usize,
    /// Sessions per inside address over all workers (default 4096); each worker
    /// enforces an equal share.
    pub max_per_host: usize,
}

impl NatConfig {
    /// A configuration with pool `pool` and every other field at its default.
    pub fn new(pool: Vec<Ipv4Addr>) -> NatConfig {
        NatConfig {
            pool: AddressPool::new(pool),
            ports: PortRange::default(),
            timeouts: NatTimeouts::default(),
            max_sessions: 1 << 20,
            max_per_host: 4096,
        }
    }

    /// True when a packet to `dst`:`port` (from inside) targets a mapping of
    /// this NAT: `dst` is a pool address and `port` is in the port range. The
    /// pipeline then drops it or translates it out and back in (hairpinning).
    pub fn is_hairpin(&self, dst: Ipv4Addr, port: u16) -> bool {
        self.ports.contains(port) && self.pool.contains(dst)
    }

    /// Checks the fields that do not depend on the worker count.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.pool.is_empty() || self.pool.len() > MAX_POOL {
            return Err(ConfigError::PoolSize);
        }
        if self.ports.lo > self.ports.hi {
            return Err(ConfigError::PortRange);
        }
        let limit = 1..=MAX_SESSIONS;
        if !limit.contains(&self.max_sessions) || !limit.contains(&self.max_per_host) {
            return Err(ConfigError::Limits);
        }
        Ok(())
    }
}

/// Why a table could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The pool is empty or holds more than [`MAX_POOL`] addresses.
    PoolSize,
    /// The port range is empty (`lo > hi`).
    PortRange,
    /// A session limit is zero or above [`MAX_SESSIONS`].
    Limits,
    /// The worker index is not below the worker count, or the range has fewer
    /// 64-port chunks than there are workers, so this worker would own no port.
    Slice,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::PoolSize => "the NAT pool must hold 1 to 256 addresses",
            ConfigError::PortRange => "the NAT port range is empty",
            ConfigError::Limits => "NAT session limits must be 1 to 16777216",
            ConfigError::Slice => "every worker needs a 64-port chunk of the NAT port range",
        })
    }
}

impl std::error::Error for ConfigError {}
