//! Following the kernel, on the control thread: when the kernel reports that its addresses,
//! routes or links changed (`io::netlink`), its view is read again, the runtime resolves the
//! configuration with it (an uplink's address from DHCP re-points its links) and braid's XDP
//! programs claim what the resolved configuration claims, passing the host's new addresses to
//! the kernel.

use super::runtime::Runtime;
use crate::io::netlink::KernelEvents;
use crate::io::{Steering, XdpProgram};
use crate::kernel::KernelView;
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
}

impl Follow {
    /// Follows the kernel into `programs` (one per interface, told `current` at start; none:
    /// libxdp's program, which claims everything and has nothing to follow).
    pub fn new(programs: Vec<Arc<XdpProgram>>, current: Vec<Steering>) -> Follow {
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
}
