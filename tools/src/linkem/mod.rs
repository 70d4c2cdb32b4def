//! `braid-linkem`: a link emulator on AF_XDP. It joins pairs of interfaces (paths) like a wire
//! and puts on each direction a delay with jitter, random and bursty loss, a rate limit, and a
//! blackhole switched by command. See docs/LINKEM.md.
//!
//! From the parameters up: [`units`] (`5ms`, `1%`, `100mbit`), [`scope`] (which path and
//! direction a value is for), [`settings`] (one direction's parameters); the pure parts [`rng`],
//! [`loss`] (random and Gilbert–Elliott), [`bucket`] (the rate's token bucket) and [`delay`] (a
//! delay line); [`direction`] (a frame's fate in one direction), [`engine`] (the shared paths,
//! and a worker's rounds over any `Ports`), [`pace`] (how to wait), [`alarm`] (sub-millisecond
//! wake-ups), [`control`] (the control socket) and [`host`] (AF_XDP sockets and the threads).

pub mod alarm;
pub mod bucket;
pub mod control;
pub mod delay;
pub mod direction;
pub mod engine;
pub mod host;
pub mod loss;
pub mod pace;
pub mod rng;
pub mod scope;
pub mod settings;
pub mod units;
