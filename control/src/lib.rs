//! braid's control side: the configuration schema shared by `braidd` and the tools, its
//! validation, tunnel key files, the control protocol and its client, and what `braidctl`
//! needs besides (tables for people, saving the running state into the config file).

pub mod client;
pub mod config;
pub mod held;
pub mod key;
pub mod proto;
pub mod save;
pub mod show;
