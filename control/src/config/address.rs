//! braid's address on an interface: written in the file, or the kernel's (`address =
//! "kernel"`, for an uplink whose address DHCP gives).

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::str::FromStr;

/// The word that asks for the kernel's address.
pub const KERNEL: &str = "kernel";

/// braid's address and prefix on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceAddress {
    /// Written in the file.
    Static(Ipv4Net),
    /// The kernel's address on the interface, followed while braid runs (only on a shared
    /// interface). A file says `Kernel(None)`; the daemon fills in what the kernel has, and
    /// `None` stays while the kernel has no address there (the links on it carry nothing).
    Kernel(Option<Ipv4Net>),
}

impl InterfaceAddress {
    /// The address in effect, if there is one.
    pub fn net(self) -> Option<Ipv4Net> {
        match self {
            InterfaceAddress::Static(n) => Some(n),
            InterfaceAddress::Kernel(n) => n,
        }
    }

    /// Whether the kernel gives this address.
    pub fn is_kernel(self) -> bool {
        matches!(self, InterfaceAddress::Kernel(_))
    }
}

impl fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterfaceAddress::Static(n) => write!(f, "{n}"),
            InterfaceAddress::Kernel(Some(n)) => write!(f, "{n} ({KERNEL})"),
            InterfaceAddress::Kernel(None) => write!(f, "none yet ({KERNEL})"),
        }
    }
}

impl FromStr for InterfaceAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == KERNEL {
            return Ok(InterfaceAddress::Kernel(None));
        }
        text.parse().map(InterfaceAddress::Static).map_err(|e| {
            format!(
                "{text:?}: {e}; give an address/prefix (e.g. \"198.18.11.2/24\") or \"{KERNEL}\""
            )
        })
    }
}

impl<'de> Deserialize<'de> for InterfaceAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
