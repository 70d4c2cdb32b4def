//! braid tools: the deterministic byte streams, transfers and echoes behind `braid-xfer`, used by the
//! lab tests and the demo to prove that traffic crosses braid byte-exact; `pktgen`, the packet
//! generator and sink behind `braid-pktgen`; `linkem`, the link emulator behind `braid-linkem`; and
//! `goodput`, a TCP flow's goodput over time and the failover bench's report, behind
//! `braid-goodput`.

pub mod deadline;
pub mod goodput;
pub mod linkem;
pub mod pktgen;
pub mod stream;
pub mod tcp;
pub mod udp;
