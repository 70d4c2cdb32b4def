//! braid's control side: the configuration schema shared by `braidd` and the tools,
//! its validation, and tunnel key files.

pub mod config;
pub mod key;
