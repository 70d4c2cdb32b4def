//! braid tools: the deterministic byte streams, transfers and echoes behind `braid-xfer`, used by the
//! lab tests and the demo to prove that traffic crosses braid byte-exact; `pktgen`, the packet
//! generator and sink behind `braid-pktgen`; and `linkem`, the link emulator behind `braid-linkem`.

pub mod deadline;
pub mod linkem;
pub mod pktgen;
pub mod stream;
pub mod tcp;
pub mod udp;
