//! Link scheduling: which of a peer's links carries the next packet, and the weights
//! learned from the links' measured capacity; and at the receiver, the order the packets
//! spread over the links leave in.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod earliest;
pub mod flow;
pub mod learn;
pub mod redundant;
pub mod reorder;
pub mod scheduler;

pub use earliest::Earliest;
pub use flow::flow_hash;
pub use scheduler::Scheduler;
