//! The host's own IPv4 addresses, as the kernel has them (`getifaddrs`): what braid's XDP
//! program passes to the kernel on a shared interface.

// getifaddrs hands back a C list; reading it needs unsafe, each block says why it holds.
#![allow(unsafe_code)]

use ipnet::Ipv4Net;
use std::ffi::CStr;
use std::io;
use std::net::Ipv4Addr;

/// One IPv4 address of the kernel, with its prefix and the interface that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddress {
    pub interface: String,
    pub net: Ipv4Net,
}

/// Every IPv4 address of every interface in this network namespace.
pub fn kernel_addresses() -> io::Result<Vec<HostAddress>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid place for the list's pointer; on success the list is ours
    // until freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a non-null ifa_addr points to a sockaddr of at least its family's size.
        if i32::from(unsafe { (*ifa.ifa_addr).sa_family }) != libc::AF_INET {
            continue;
        }
        // SAFETY: both are AF_INET sockaddrs (the netmask has the address's family), so they
        // hold a sockaddr_in; read unaligned as the list gives no alignment promise.
        let (addr, mask) = unsafe {
            (
                std::ptr::read_unaligned(ifa.ifa_addr.cast::<libc::sockaddr_in>()),
                std::ptr::read_unaligned(ifa.ifa_netmask.cast::<libc::sockaddr_in>()),
            )
        };
        let addr = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
        let prefix = u32::from_be(mask.sin_addr.s_addr).leading_ones() as u8;
        // SAFETY: ifa_name is a NUL-terminated string of the live list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
        if let Ok(net) = Ipv4Net::new(addr, prefix) {
            out.push(HostAddress {
                interface: name.to_string_lossy().into_owned(),
                net,
            });
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once; nothing read from it is kept
    // (names and addresses were copied).
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_among_the_kernel_addresses() {
        let all = kernel_addresses().unwrap();
        assert!(
            all.iter().any(|a| a.interface == "lo"
                && a.net.addr() == Ipv4Addr::LOCALHOST
                && a.net.prefix_len() == 8),
            "{all:?}"
        );
    }
}
