//! Following the kernel, on the control thread: when the kernel reports that its addresses,
//! routes or links changed (`io::netlink`), its view is read again, the runtime resolves the
//! configuration with it (an uplink's address from DHCP re-points its links), braid's XDP
//! programs claim what the resolved configuration claims, passing the host's new addresses to
//! the kernel, and on shared interfaces the neighbours the kernel has resolved and braid has not
//! go into braid's neighbour cache (a new gateway needs no ARP of braid's own).

use super::runtime::Runtime;
use crate::io::netlink::KernelEvents;
use crate::io::{Steering, XdpProgram};
use crate::kernel::KernelView;
use crate::pipeline::Shared;
use crate::route::neighbor::Lookup;
use crate::steer;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Without the kernel's notifications, how often its view is read.
const POLL: Duration = Duration::from_secs(1);
/// With them, how often it is read all the same: a notification braid missed costs at most
/// this long (the kernel says when it drops some, so this is only a safety net).
const REREAD: Duration = Duration::from_secs(10);

/// braid's XDP programs, what they were last told, and the kernel's notifications.
pub struct Follow {
    programs: Vec<Arc<XdpProgram>>,
    current: Vec<Steering>,
    events: Option<KernelEvents>,
    next_read: Instant,
    /// Time zero of the workers' clocks (the neighbour cache's times).
    epoch: Instant,
}

impl Follow {
    /// Follows the kernel into `programs` (one per interface, told `current` at start; none:
    /// libxdp's program, which claims everything and has nothing to follow); `epoch` is time
    /// zero of the workers' clocks.
    pub fn new(programs: Vec<Arc<XdpProgram>>, current: Vec<Steering>, epoch: Instant) -> Follow {
        let events = if programs.is_empty() {
            None
        } else {
            KernelEvents::open()
                .inspect_err(|e| {
                    eprintln!(
                        "braidd: cannot subscribe to the kernel's changes ({e}); its addresses \
                         are read every {POLL:?} instead"
                    );
                })
                .ok()
        };
        Follow {
            programs,
            current,
            events,
            // The first look reads the kernel: what changed since the daemon read it.
            next_read: Instant::now(),
            epoch,
        }
    }

    /// Reads the kernel again if it changed (or the poll is due) and applies its view.
    pub fn look(&mut self, runtime: &Mutex<Runtime>) {
        if self.programs.is_empty() {
            return;
        }
        let now = Instant::now();
        let told = self.events.as_ref().is_some_and(KernelEvents::changed);
        if !told && now < self.next_read {
            return;
        }
        self.next_read = now + if self.events.is_some() { REREAD } else { POLL };
        let view = match KernelView::read() {
            Ok(v) => v,
            Err(e) => return eprintln!("braidd: {e}"),
        };
        let mut rt = runtime.lock().unwrap_or_else(PoisonError::into_inner);
        for line in rt.follow(view.clone()) {
            eprintln!("braidd: {line}");
        }
        self.learn_neighbours(rt.shared(), &view);
        let cfg = rt.resolved();
        for (i, (program, current)) in self.programs.iter().zip(&mut self.current).enumerate() {
            let next = match steer::steering(cfg, i, &view.addresses) {
                Ok(s) => s,
                Err(e) => return eprintln!("braidd: {e}"),
            };
            if next == *current {
                continue;
            }
            match program.steer(&next, current) {
                Ok(()) => {
                    eprintln!(
                        "braidd: {}: the kernel's addresses changed; braid's XDP program follows",
                        program.interface()
                    );
                    *current = next;
                }
                Err(e) => eprintln!("braidd: {e}"),
            }
        }
    }

    /// The kernel's resolved neighbours on shared interfaces that braid's cache lacks. Only
    /// those: braid's own confirmed entries are fresher than a kernel entry that may be stale.
    fn learn_neighbours(&self, shared: &Shared, view: &KernelView) {
        let snap = shared.snapshot.load();
        let now = self.epoch.elapsed().as_nanos() as u64;
        let cache = shared.neighbors.load();
        for n in &view.neighbours {
            let Some(port) = (snap.ports.iter()).position(|p| p.shared && p.name == n.interface)
            else {
                continue;
            };
            if cache.lookup(port, n.ip, now) == Lookup::Missing {
                shared.neighbors.learn(port, n.ip, n.mac, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::KernelNeighbour;
    use crate::snapshot::{Secrets, Snapshot};
    use braid_control::config::Config;
    use std::net::Ipv4Addr;

    #[test]
    fn the_kernels_neighbours_fill_what_braid_lacks_on_shared_interfaces() {
        // wan1 shared, wan2 owned.
        let text = braid_testkit::EDGE.replacen(
            "address = \"198.18.11.2/24\"",
            "address = \"198.18.11.2/24\"\nmode = \"shared\"",
            1,
        );
        let cfg: Config = toml::from_str(&text).unwrap();
        let snap = Snapshot::build(&cfg, &braid_testkit::EDGE_MACS, &Secrets::of_lab(&cfg), 1);
        let shared = Shared::new(snap.unwrap(), 7);
        let follow = Follow::new(Vec::new(), Vec::new(), Instant::now());
        let gateway = Ipv4Addr::new(198, 18, 11, 1);
        let n = |interface: &str, ip: Ipv4Addr, last: u8| KernelNeighbour {
            interface: interface.into(),
            ip,
            mac: [2, 0, 0, 0, 0, last],
        };
        // braid's own entry for the gateway stays: it was confirmed by braid itself.
        shared.neighbors.learn(1, gateway, [2, 0, 0, 0, 0, 9], 0);
        let view = KernelView {
            neighbours: vec![
                n("wan1", gateway, 1),
                n("wan1", Ipv4Addr::new(198, 18, 11, 7), 7),
                n("wan2", Ipv4Addr::new(198, 18, 12, 1), 3),
            ],
            ..KernelView::default()
        };
        follow.learn_neighbours(&shared, &view);
        let now = follow.epoch.elapsed().as_nanos() as u64;
        let cache = shared.neighbors.load();
        assert_eq!(
            cache.lookup(1, gateway, now),
            Lookup::Fresh([2, 0, 0, 0, 0, 9])
        );
        assert_eq!(
            cache.lookup(1, Ipv4Addr::new(198, 18, 11, 7), now),
            Lookup::Fresh([2, 0, 0, 0, 0, 7])
        );
        // wan2 is owned: its neighbours are braid's alone.
        assert_eq!(
            cache.lookup(2, Ipv4Addr::new(198, 18, 12, 1), now),
            Lookup::Missing
        );
    }
}
