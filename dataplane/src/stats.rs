//! Per-worker counters. Each worker is the only writer of its own block (plain
//! load + store, no locked instruction); the control thread reads and sums them.

use crate::bond::reorder::Tally;
use braid_control::held;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Most links (over all peers) that have their own counters (the config allows no more).
pub const MAX_LINKS: usize = braid_control::config::MAX_LINKS;
/// Most ports whose I/O counters a worker publishes (the config allows no more interfaces).
pub const MAX_PORTS: usize = braid_control::config::MAX_INTERFACES;

/// A counter written by one thread and read by others.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (single writer).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    /// Sets the value (single writer): for totals kept elsewhere.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

macro_rules! drop_reasons {
    ($($name:ident => $text:literal,)*) => {
        /// Why the dataplane dropped a frame.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum DropReason { $($name,)* }
        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// Short snake_case name, as shown by tools and metrics.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$name => $text,)* }
            }
        }
    };
}

drop_reasons! {
    Truncated => "truncated",
    Malformed => "malformed",
    BadChecksum => "bad_checksum",
    NotForUs => "not_for_us",
    UnsupportedEthertype => "unsupported_ethertype",
    LocalUnsupported => "local_unsupported",
    NoRoute => "no_route",
    TtlExceeded => "ttl_exceeded",
    TooBig => "too_big",
    NoLink => "no_link",
    NeighborQueueFull => "neighbor_queue_full",
    NeighborUnresolved => "neighbor_unresolved",
    BadTunnelHeader => "bad_tunnel_header",
    OldVersion => "old_version",
    UnknownSession => "unknown_session",
    BadHandshake => "bad_handshake",
    // An initiation not processed under load: answered with a cookie reply instead.
    CookieReplied => "cookie_replied",
    HandshakeRateLimited => "handshake_rate_limited",
    NoSession => "no_session",
    NoEndpoint => "no_endpoint",
    UnknownLink => "unknown_link",
    BadTag => "bad_tag",
    Replayed => "replayed",
    Spoofed => "spoofed",
    MalformedInner => "malformed_inner",
    TxFull => "tx_full",
    NatUnsupported => "nat_unsupported",
    NatFragment => "nat_fragment",
    NatNoSession => "nat_no_session",
    NatTableFull => "nat_table_full",
    NatHostLimit => "nat_host_limit",
    NatPortsExhausted => "nat_ports_exhausted",
    NatHairpin => "nat_hairpin",
    HandoffFull => "handoff_full",
    Loop => "loop",
    // Never forwarded (RFC 1812 §5.3.7, §4.2.2.11): see pipeline/hygiene.rs.
    MartianSource => "martian_source",
    MartianDestination => "martian_destination",
    Broadcast => "broadcast",
    Multicast => "multicast",
    BondLoop => "bond_loop",
    // A second copy of a packet the reorder window already had (redundant traffic).
    Duplicate => "duplicate",
}

/// Traffic of one link as seen by one worker.
#[derive(Debug, Default)]
pub struct LinkCounters {
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
}

/// Per-port I/O counters kept by the I/O backend.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames that could not be queued for TX (ring full, no free buffer).
    pub tx_dropped: u64,
}

/// A port's I/O counters as its worker last published them (see [`WorkerStats::publish_port`]).
#[derive(Debug, Default)]
pub struct PortStats {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    pub tx_dropped: Counter,
}

impl PortStats {
    /// The published values.
    pub fn get(&self) -> PortCounters {
        PortCounters {
            rx_packets: self.rx_packets.get(),
            rx_bytes: self.rx_bytes.get(),
            tx_packets: self.tx_packets.get(),
            tx_bytes: self.tx_bytes.get(),
            tx_dropped: self.tx_dropped.get(),
        }
    }
}

/// The counters of one worker, on their own cache lines.
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerStats {
    /// Drops, indexed by `DropReason as usize`.
    pub drops: [Counter; DropReason::ALL.len()],
    /// Per link, indexed by the snapshot's link counter slot.
    pub links: [LinkCounters; MAX_LINKS],
    /// Frames forwarded (plain or through the tunnel).
    pub forwarded: Counter,
    /// Frames answered or consumed by braid itself (ARP, ICMP echo, probes).
    pub local: Counter,
    /// ICMP errors sent.
    pub icmp_errors: Counter,
    /// Per port (config interface order): the I/O counters of this worker's queue.
    pub ports: [PortStats; MAX_PORTS],
    /// Masquerade totals of this worker's session tables.
    pub nat: NatStats,
    /// Frames handed to another worker (NAT session or reorder window owner).
    pub handed_off: Counter,
    /// The reorder windows this worker owns.
    pub reorder: ReorderStats,
}

/// What the reorder windows of one worker counted (bond/reorder.rs).
#[derive(Debug)]
pub struct ReorderStats {
    /// Packets out of the tunnel that came in their turn.
    pub in_order: Counter,
    /// Packets held until the ones in front of them came: the order repaired.
    pub repaired: Counter,
    /// Packets that came after their gap was given up (sent out of order).
    pub late: Counter,
    /// Sequence numbers given up (lost, or later than the wait).
    pub given_up: Counter,
    /// Held packets by how long they were held (buckets of `braid_control::held`).
    pub held: Box<[Counter; held::BUCKETS]>,
    /// The time held packets were held, added up (ns).
    pub held_ns: Counter,
}

impl Default for ReorderStats {
    fn default() -> Self {
        ReorderStats {
            in_order: Counter::default(),
            repaired: Counter::default(),
            late: Counter::default(),
            given_up: Counter::default(),
            held: Box::new(std::array::from_fn(|_| Counter::default())),
            held_ns: Counter::default(),
        }
    }
}

impl ReorderStats {
    /// Counts a packet that was held `ns` nanoseconds before it was released.
    #[inline]
    pub fn held_for(&self, ns: u64) {
        if let Some(c) = self.held.get(held::bucket(ns)) {
            c.add(1);
        }
        self.held_ns.add(ns);
    }

    /// `[upper edge µs, packets]` of every non-empty bucket of [`ReorderStats::held`].
    pub fn held_us(&self) -> Vec<[u64; 2]> {
        self.held
            .iter()
            .enumerate()
            .map(|(i, c)| [held::upper_us(i), c.get()])
            .filter(|b| b[1] > 0)
            .collect()
    }

    /// Adds what a window counted between `old` and `new`; duplicates are drops.
    pub fn add_since(&self, old: &Tally, new: &Tally) {
        self.in_order.add(new.in_order.wrapping_sub(old.in_order));
        self.repaired.add(new.repaired.wrapping_sub(old.repaired));
        self.late.add(new.late.wrapping_sub(old.late));
        self.given_up.add(new.given_up.wrapping_sub(old.given_up));
    }
}

/// Masquerade totals of one worker.
#[derive(Debug, Default)]
pub struct NatStats {
    /// Live sessions.
    pub sessions: Counter,
    pub created: Counter,
    pub expired: Counter,
    pub translated_out: Counter,
    pub translated_in: Counter,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            drops: std::array::from_fn(|_| Counter::default()),
            links: std::array::from_fn(|_| LinkCounters::default()),
            forwarded: Counter::default(),
            local: Counter::default(),
            icmp_errors: Counter::default(),
            ports: std::array::from_fn(|_| PortStats::default()),
            nat: NatStats::default(),
            handed_off: Counter::default(),
            reorder: ReorderStats::default(),
        }
    }
}

impl WorkerStats {
    /// Counts one drop.
    #[inline]
    pub fn count_drop(&self, why: DropReason) {
        self.drops[why as usize].add(1);
    }
    /// The counters of the link in `slot`.
    #[inline]
    pub fn link(&self, slot: crate::ids::LinkSlot) -> Option<&LinkCounters> {
        self.links.get(slot.0)
    }
    /// Drops counted for `why`.
    pub fn drops_of(&self, why: DropReason) -> u64 {
        self.drops[why as usize].get()
    }
    /// Publishes the I/O counters of `port` (the I/O layer keeps them unshared); ports
    /// beyond [`MAX_PORTS`] are not published.
    pub fn publish_port(&self, port: usize, c: PortCounters) {
        if let Some(p) = self.ports.get(port) {
            p.rx_packets.set(c.rx_packets);
            p.rx_bytes.set(c.rx_bytes);
            p.tx_packets.set(c.tx_packets);
            p.tx_bytes.set(c.tx_bytes);
            p.tx_dropped.set(c.tx_dropped);
        }
    }
}
