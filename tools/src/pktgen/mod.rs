//! `braid-pktgen`: a packet generator and sink on AF_XDP, with an RFC 2544 throughput search.
//!
//! The parts, from the wire up: [`stamp`] (what each payload carries), [`size`] and [`frame`]
//! (building frames), [`rate`] (token bucket), [`clock`], [`gen`] (one generator worker),
//! [`seq`] and [`latency`] (accounting), [`sink`] (one sink worker), [`live`] (progress counters);
//! then [`workers`] (threads on AF_XDP sockets), [`control`] (a sink driven from another process),
//! [`session`] (one trial), [`rfc2544`] (the throughput search), [`report`] (tables),
//! [`reflect`] (the AF_XDP reflector of the lab bench) and [`iface`] (sysfs, MACs).
//! Generator, sink and reflector run on any `braid_dataplane::io::Ports`, so they are tested in
//! memory.

pub mod clock;
pub mod control;
pub mod frame;
pub mod gen;
pub mod iface;
pub mod latency;
pub mod live;
pub mod rate;
pub mod reflect;
pub mod report;
pub mod rfc2544;
pub mod seq;
pub mod session;
pub mod sink;
pub mod size;
pub mod stamp;
pub mod workers;
