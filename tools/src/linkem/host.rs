//! The emulator on this host: one worker thread per queue, each with AF_XDP sockets on that queue
//! of every interface, and the loop that runs its rounds and sleeps in between.
//!
//! XDP is attached in native (driver) mode: on veth a frame sent on the peer's TX queue *q*
//! arrives on receive queue *q*, and the emulator sends it on on queue *q* of the far interface,
//! so the receiver sees flows spread over its queues as if the emulator were not there. (Generic
//! mode moves frames between queues.) Held frames are copies, so a long delay holds no UMEM frame.

use super::alarm::Alarm;
use super::engine::{Links, Worker};
use super::pace::{plan, Lead, Pause, EARLY};
use braid_dataplane::io::wake::{self, Waker};
use braid_dataplane::io::{Ports, XdpMode, XskOptions, XskPorts};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// UMEM frames of each queue's sockets: half fill their receive rings, half are for transmits.
const FRAMES: u32 = 8192;
/// Slots of every ring.
const RING_SIZE: u32 = 2048;

/// Opens queues `0..queues` of every interface (in port order), one `XskPorts` per queue, one
/// after another (binds racing each other fail in libxdp).
pub fn open(interfaces: &[String], queues: u32) -> io::Result<Vec<XskPorts>> {
    (0..queues.max(1))
        .map(|queue| {
            let opts = XskOptions {
                queue,
                frame_count: FRAMES,
                ring_size: RING_SIZE,
                mode: XdpMode::Native,
                busy_poll: false,
            };
            XskPorts::open(interfaces, &opts)
                .map_err(|e| io::Error::new(e.kind(), format!("queue {queue}: {e}")))
        })
        .collect()
}

/// Runs a worker on each queue's ports until `stop` is set (or a worker fails, which sets it);
/// returns the first error.
pub fn run(links: &Arc<Links>, sockets: Vec<XskPorts>, stop: &Arc<AtomicBool>) -> io::Result<()> {
    let mut handles = Vec::new();
    for mut ports in sockets {
        let (waker, fd) = wake::pair()?;
        ports.set_wake_fd(fd);
        let (links, stop) = (Arc::clone(links), Arc::clone(stop));
        handles.push(thread::spawn(move || {
            let mut worker = Worker::new(links);
            let r = work(&mut worker, &mut ports, &Arc::new(waker), &stop);
            if r.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            r
        }));
    }
    let mut first = Ok(());
    for h in handles {
        let r = h
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("a worker panicked")));
        if first.is_ok() {
            first = r;
        }
    }
    first
}

/// One worker's loop: rounds on `ports` until `stop` is set, pausing as [`plan`] says when there
/// is nothing to do at once. `waker` must ring the wake fd of `ports`: the alarm wakes the loop
/// with it.
pub fn work<P: Ports>(
    worker: &mut Worker,
    ports: &mut P,
    waker: &Arc<Waker>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let start = Instant::now();
    let now = || start.elapsed().as_nanos() as u64;
    let alarm = Alarm::start(Arc::clone(waker));
    let mut lead = Lead::default();
    while !stop.load(Ordering::Relaxed) {
        if worker.round(ports, now, EARLY)?.more {
            continue;
        }
        let (timeout, wake_at) = match plan(now(), worker.next_due(), lead.get()) {
            Pause::Again => continue,
            Pause::Idle(t) => (t, None),
            Pause::Until { wake_at, timeout } => (timeout, Some(wake_at)),
        };
        // Asleep before the alarm is set: a ring from then on, even at once, ends the poll.
        waker.going_to_sleep();
        alarm.set(wake_at.map(|w| start + Duration::from_nanos(w)));
        ports.wait(timeout)?;
        // Woken past the alarm's instant: most likely by the alarm, and this late.
        if let Some(late) = wake_at.and_then(|w| now().checked_sub(w)) {
            lead.observe(late);
        }
        waker.awake();
    }
    Ok(())
}
