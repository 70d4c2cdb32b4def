//! `braid-pktgen`: a packet generator and sink on AF_XDP, with an RFC 2544 throughput search.
//!
//! The parts, from the wire up: [`stamp`] (what each payload carries), [`size`] and [`frame`]
//! (building frames), [`rate`] (token bucket), [`clock`], [`gen`] (one generator worker),
//! [`seq`] and [`latency`] (accounting), [`sink`] (one sink worker), [`live`] (progress counters).
//! Generator and sink run on any `braid_dataplane::io::Ports`, so they are tested in memory.

pub mod clock;
pub mod frame;
pub mod gen;
pub mod latency;
pub mod live;
pub mod rate;
pub mod seq;
pub mod sink;
pub mod size;
pub mod stamp;
