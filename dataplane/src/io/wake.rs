//! Waking a worker that sleeps in `Ports::wait`, from another thread: a Unix
//! datagram socket pair whose receiving end sits in the sleeper's poll set.
//!
//! A waker only writes when the sleeper said it sleeps (see [`Sleeper`]), so
//! busy workers hand frames to each other without a system call.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

/// The sending end, shared by everyone who may wake one worker.
#[derive(Debug)]
pub struct Waker {
    tx: UnixDatagram,
    sleeping: AtomicBool,
}

/// The receiving end, owned by the worker's ports.
#[derive(Debug)]
pub struct WakeFd {
    rx: UnixDatagram,
}

/// A waker and the receiving end it writes to.
pub fn pair() -> io::Result<(Waker, WakeFd)> {
    let (tx, rx) = UnixDatagram::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    Ok((
        Waker {
            tx,
            sleeping: AtomicBool::new(false),
        },
        WakeFd { rx },
    ))
}

impl Waker {
    /// Wakes the worker if it sleeps (or is about to); call after handing it work.
    pub fn wake(&self) {
        if self.sleeping.swap(false, SeqCst) {
            // A full socket buffer means a wake-up is already pending.
            let _ = self.tx.send(&[1]);
        }
    }

    /// The worker announces it is going to sleep; it must then look for work
    /// once more before it blocks, so no hand-over is missed.
    pub fn going_to_sleep(&self) {
        self.sleeping.store(true, SeqCst);
    }

    /// The worker is awake again.
    pub fn awake(&self) {
        self.sleeping.store(false, SeqCst);
    }
}

impl WakeFd {
    /// Consumes pending wake-ups.
    pub fn drain(&self) {
        let mut b = [0u8; 64];
        while self.rx.recv(&mut b).is_ok() {}
    }
}

impl AsFd for WakeFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_only_a_sleeper() {
        let (w, fd) = pair().unwrap();
        let mut b = [0u8; 4];
        w.wake();
        assert!(fd.rx.recv(&mut b).is_err(), "not sleeping: no write");
        w.going_to_sleep();
        w.wake();
        assert_eq!(fd.rx.recv(&mut b).unwrap(), 1);
        w.wake();
        assert!(fd.rx.recv(&mut b).is_err(), "one wake-up per sleep");
        w.going_to_sleep();
        w.wake();
        fd.drain();
        assert!(fd.rx.recv(&mut b).is_err());
    }
}
