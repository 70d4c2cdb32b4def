//! A wake-up at a set instant, for a loop that sleeps in `poll()`: `poll()` counts its timeout in
//! whole milliseconds, so a thread of its own sleeps until the instant (with the timer's
//! sub-millisecond precision) and then rings the loop's [`Waker`]. Only the latest instant set
//! counts; setting one earlier than the one waited for interrupts the wait.

use braid_dataplane::io::wake::Waker;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

#[derive(Debug, Default)]
struct State {
    at: Option<Instant>,
    quit: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The alarm thread; dropping it stops the thread.
#[derive(Debug)]
pub struct Alarm {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

impl Alarm {
    /// Starts the thread, which rings `waker` at each instant set.
    pub fn start(waker: Arc<Waker>) -> Alarm {
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let handle = thread::spawn(move || {
            let mut st = s.lock();
            while !st.quit {
                st = match st.at {
                    None => s.changed.wait(st).unwrap_or_else(PoisonError::into_inner),
                    Some(at) => {
                        let now = Instant::now();
                        if now >= at {
                            st.at = None;
                            waker.wake();
                            st
                        } else {
                            s.changed
                                .wait_timeout(st, at - now)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0
                        }
                    }
                };
            }
        });
        Alarm {
            shared,
            handle: Some(handle),
        }
    }

    /// Rings at `at` (or not at all for None) instead of the instant set before.
    pub fn set(&self, at: Option<Instant>) {
        let mut st = self.shared.lock();
        if st.at == at {
            return;
        }
        // A later instant needs no interruption: the thread waits on when it wakes.
        let sooner = match (at, st.at) {
            (Some(new), Some(old)) => new < old,
            (Some(_), None) => true,
            (None, _) => false,
        };
        st.at = at;
        if sooner {
            self.shared.changed.notify_one();
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        self.shared.lock().quit = true;
        self.shared.changed.notify_one();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_dataplane::io::wake;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    /// Whether a wake-up came through `fd` within `limit`.
    fn rang(fd: &wake::WakeFd, limit: Duration) -> bool {
        let sock = UnixDatagram::from(fd.as_fd().try_clone_to_owned().unwrap());
        sock.set_nonblocking(false).unwrap();
        sock.set_read_timeout(Some(limit)).unwrap();
        let r = sock.recv(&mut [0u8; 8]).is_ok();
        sock.set_nonblocking(true).unwrap();
        r
    }

    #[test]
    fn rings_a_sleeper_at_the_instant_and_only_then() {
        let (waker, fd) = wake::pair().unwrap();
        let waker = Arc::new(waker);
        let alarm = Alarm::start(Arc::clone(&waker));
        waker.going_to_sleep();
        let start = Instant::now();
        alarm.set(Some(start + Duration::from_millis(30)));
        // A later instant replaces it; an earlier one interrupts the wait.
        alarm.set(Some(start + Duration::from_secs(60)));
        alarm.set(Some(start + Duration::from_millis(20)));
        assert!(rang(&fd, Duration::from_secs(5)));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(20), "{took:?}");
        waker.going_to_sleep();
        alarm.set(Some(Instant::now() + Duration::from_millis(10)));
        alarm.set(None);
        assert!(!rang(&fd, Duration::from_millis(100)), "cancelled");
        drop(alarm);
    }
}
