//! The kernel's word that its addresses, routes or links changed: a route netlink socket
//! subscribed to those groups. braid does not parse the messages; any one of them makes the
//! daemon read the kernel's state again (`kernel::KernelView::read`), which is simpler and
//! cannot drift from what the kernel has.

// A netlink socket has no safe wrapper in std; each block says why it holds.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The multicast groups listened to: IPv4 addresses, IPv4 routes, links.
const GROUPS: u32 = (libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV4_ROUTE | libc::RTMGRP_LINK) as u32;

/// A subscription to the kernel's address, route and link changes.
#[derive(Debug)]
pub struct KernelEvents {
    fd: OwnedFd,
}

impl KernelEvents {
    /// Subscribes (non-blocking) in this network namespace.
    pub fn open() -> io::Result<KernelEvents> {
        // SAFETY: plain system call with constant arguments; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we just opened and own alone.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value of it.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = GROUPS;
        // SAFETY: `addr` is a sockaddr_nl that lives across the call, its size given.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(KernelEvents { fd })
    }

    /// Reads every message waiting; true when there was one (or when the kernel dropped some
    /// because too many waited: something changed either way).
    pub fn changed(&self) -> bool {
        let mut buf = [0u8; 8192];
        let mut any = false;
        loop {
            // SAFETY: `buf` is writable for its length during the call.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                any = true;
                continue;
            }
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOBUFS) {
                any = true;
                continue;
            }
            return any;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_subscription_reports_nothing() {
        let events = KernelEvents::open().expect("a route netlink socket");
        // Whatever came between open and now is drained; then nothing is waiting.
        events.changed();
        assert!(!events.changed());
    }
}
