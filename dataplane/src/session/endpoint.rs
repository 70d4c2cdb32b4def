//! A link's remote endpoint as learned from the peer's authenticated messages.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};

/// The address and port the peer's latest authenticated message on a link came from,
/// packed in one atomic (bit 48 set: known), so workers read and update it without a lock.
#[derive(Debug, Default)]
pub struct Endpoint(AtomicU64);

const KNOWN: u64 = 1 << 48;

fn pack(a: SocketAddrV4) -> u64 {
    KNOWN | u64::from(u32::from(*a.ip())) << 16 | u64::from(a.port())
}

impl Endpoint {
    /// The endpoint, once one was learned.
    #[inline]
    pub fn get(&self) -> Option<SocketAddrV4> {
        let v = self.0.load(Ordering::Relaxed);
        (v & KNOWN != 0).then(|| SocketAddrV4::new(Ipv4Addr::from((v >> 16) as u32), v as u16))
    }

    /// Follows the peer to `a`; true when that is a change. Written only when it is, so
    /// that a busy link does not bounce the line between workers.
    #[inline]
    pub fn learn(&self, a: SocketAddrV4) -> bool {
        let v = pack(a);
        if self.0.load(Ordering::Relaxed) == v {
            return false;
        }
        self.0.store(v, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_and_follows_address_and_port() {
        let e = Endpoint::default();
        assert_eq!(e.get(), None);
        let a = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 40000);
        assert!(e.learn(a));
        assert!(!e.learn(a));
        assert_eq!(e.get(), Some(a));
        let b = SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 9), 40001);
        assert!(e.learn(b));
        assert_eq!(e.get(), Some(b));
        let zero = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        assert!(e.learn(zero));
        assert_eq!(e.get(), Some(zero));
    }
}
