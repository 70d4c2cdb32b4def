//! braid's dataplane: packet views (`wire`), routing (`route`), link scheduling
//! (`bond`), the tunnel (`tunnel`), the edge and hub pipelines (`pipeline`), packet
//! I/O (`io`), masquerade (`nat`) and the worker loop (`worker`).

pub mod bond;
pub mod control;
pub mod daemon;
pub mod frame;
pub mod health;
pub mod ids;
pub mod io;
pub mod kernel;
pub mod nat;
pub mod pipeline;
pub mod route;
pub mod session;
pub mod snapshot;
pub mod stats;
pub mod steer;
pub mod tunnel;
pub mod wire;
pub mod worker;
