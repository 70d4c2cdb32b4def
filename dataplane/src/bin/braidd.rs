//! `braidd`: the braid daemon.
fn main() {}
