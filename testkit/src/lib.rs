//! What braid's tests share. [`lab`] decides whether a test that needs root or network
//! namespaces runs, is skipped, or fails. This crate depends on no braid crate, so that
//! `braid-dataplane`'s own unit tests can use it.

pub mod lab;
