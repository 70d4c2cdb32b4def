//! Masquerade (NAT44, source translation) as a pure session table: no I/O, no
//! threads, no clock (every call takes `now` in nanoseconds from any monotonic
//! clock). Behaviour and numbers: `docs/NAT.md`.
//!
//! # Use
//!
//! Each worker owns one [`NatTable`], built from the shared [`NatConfig`] and
//! its [`PortSlice`] (worker `w` of `n`):
//!
//! ```
//! use braid_dataplane::nat::{NatConfig, NatTable, PortSlice};
//! let config = NatConfig::new(vec!["203.0.113.1".parse().unwrap()]);
//! let table = NatTable::new(&config, PortSlice { worker: 0, workers: 2 }, 0x5eed);
//! assert!(table.is_ok());
//! ```
//!
//! - Inside→outside: [`NatTable::translate_out`] rewrites the source, creating
//!   the session if needed.
//! - Outside→inside: [`NatTable::translate_in`] rewrites the destination of
//!   packets for a live session.
//! - [`NatTable::translate_out_batch`] and [`NatTable::translate_in_batch`] do
//!   the same for many packets, faster on a large table (their lookups' memory
//!   reads overlap).
//! - A caller that gathers its own batch (the pipeline) starts each lookup's
//!   reads itself: [`NatTable::prefetch_out`] or [`NatTable::prefetch_in`] for
//!   the index entry as it learns the packet's endpoint, then, a while later,
//!   [`NatTable::prefetch_session_out`] or [`NatTable::prefetch_session_in`] for the
//!   session slot, then translates.
//! - Both translate ICMP errors (destination unreachable, time exceeded,
//!   parameter problem) for the session of the packet they quote.
//! - Any [`NatError`] means: drop the packet and count the reason; the packet is
//!   left unchanged. Nothing panics on any input.
//! - Call [`NatTable::expire`] regularly with a small budget (e.g. 64 per batch)
//!   so timed-out sessions return their ports; lookups also drop them lazily.
//! - [`NatTable::counters`] and [`NatTable::sessions`] are for statistics and
//!   the control plane.
//!
//! # Which worker translates a packet (the handoff rule)
//!
//! A session lives in exactly one table, so the pipeline must hand each packet
//! to its owner (over a bounded queue when it arrived on another worker):
//!
//! - inside→outside: `owner_of_inside(ep.proto, ep.addr, ep.port, config.ports,
//!   workers)` with `ep = outbound_endpoint(packet)?`;
//! - outside→inside: `owner_of_port(ep.port, config.ports, workers)` with
//!   `ep = inbound_endpoint(packet)?`.
//!
//! Ports are owned in interleaved chunks of 64, and an inside port in the range
//! goes to the worker owning the same outside port, so a free source port is
//! kept whatever the worker count.
//!
//! # Hairpinning
//!
//! [`NatConfig::is_hairpin`] tells when an inside→outside packet targets one of
//! the pool's mappings. To translate it, run `translate_out` (on the inside
//! owner) and then `translate_in` (on the owner of its destination port), and
//! send the result back inside; otherwise drop it.
//!
//! # Panics
//!
//! None on any packet: packet bytes are only read through checked accesses
//! (`packet.rs` refuses unchecked indexing). The table's own structures (slots,
//! index entries, port bitmap words: `table.rs`, `index.rs`, `ports.rs`) are
//! indexed by numbers the table computed itself and keeps in range, never by a
//! packet byte; there an out-of-range index would be a bug in the table, and
//! stopping the worker (reported by the daemon) beats forwarding with a corrupt
//! session table.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod batch;
mod config;
mod hash;
mod index;
mod packet;
mod pool;
mod ports;
mod session;
mod table;
mod translate;

#[cfg(test)]
mod tests;

pub use batch::{Lookup, AHEAD};
pub use config::{ConfigError, NatConfig, NatTimeouts, MAX_POOL, MAX_SESSIONS};
pub(crate) use hash::mix;
pub use packet::{inbound_endpoint, outbound_endpoint, owner_of_inside, Endpoint};
pub use pool::AddressPool;
pub use ports::{owner_of_port, PortRange, PortSlice};
pub use session::{Proto, SessionState};
pub use table::{NatCounters, NatTable, SessionInfo, SlotHint};
pub use translate::Translated;

/// Why a packet was not translated. The caller drops the packet and counts the
/// reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatError {
    /// Not an IPv4 packet with complete TCP (20 bytes), UDP or ICMP (8 bytes)
    /// headers, or an ICMP error whose quote lacks an IPv4 header and 8 bytes.
    Malformed,
    /// An IP protocol other than TCP, UDP and ICMP, an ICMP type other than echo
    /// (request out, reply in) and errors, or an error quoting such a packet.
    Unsupported,
    /// An IP fragment: fragments are not tracked, so none is translated.
    Fragment,
    /// Outside→inside (or an ICMP error going out) with no live session.
    NoSession,
    /// A new session was refused: this worker's share of `max_sessions` is live.
    TableFull,
    /// A new session was refused: the inside host has its share of `max_per_host`.
    HostLimit,
    /// A new session was refused: no free outside port for the protocol.
    PortsExhausted,
}
