//! Link scheduling: which of a peer's links carries the next packet.

pub mod flow;
pub mod scheduler;

pub use flow::flow_hash;
pub use scheduler::Scheduler;
