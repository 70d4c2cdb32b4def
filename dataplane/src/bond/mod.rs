//! Link scheduling: which of a peer's links carries the next packet.
