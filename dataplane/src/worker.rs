//! The worker loop: run to completion over the ports of one queue — receive a
//! batch on every port, run each frame through the pipeline, transmit, repeat.
//! An idle worker sleeps in `poll()` instead of spinning (DESIGN.md §3): on small
//! router boxes an idle core should cost nothing.

use crate::io::Ports;
use crate::pipeline::Pipeline;
use crate::stats::DropReason;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most frames taken from one port per round.
pub const BATCH: usize = 64;
/// Empty rounds before a worker sleeps.
const SPIN_ROUNDS: u32 = 128;
/// Longest sleep, so timers (ARP retries, expiry) still run when idle.
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// One round: a batch from every port through the pipeline at time `now`
/// (monotonic ns), then transmit. Returns the number of frames received.
pub fn poll_once<P: Ports>(ports: &mut P, pipeline: &mut Pipeline, now: u64) -> io::Result<usize> {
    pipeline.begin_batch(now);
    let mut received = 0;
    for port in 0..ports.len() {
        received += ports.rx_batch(port, BATCH, &mut |frame| pipeline.process(port, frame))?;
    }
    let stats = std::sync::Arc::clone(pipeline.stats());
    for (port, frame) in pipeline.take_out() {
        if !ports.tx_copy(port, &frame) {
            stats.count_drop(DropReason::TxFull);
        }
    }
    ports.flush()?;
    Ok(received)
}

/// Runs rounds until `stop` is set; time is measured from `epoch`.
pub fn run<P: Ports>(
    ports: &mut P,
    pipeline: &mut Pipeline,
    stop: &AtomicBool,
    epoch: Instant,
) -> io::Result<()> {
    let mut idle = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let now = epoch.elapsed().as_nanos() as u64;
        if poll_once(ports, pipeline, now)? == 0 {
            idle = idle.saturating_add(1);
            if idle > SPIN_ROUNDS {
                ports.wait(IDLE_WAIT)?;
            }
        } else {
            idle = 0;
        }
    }
    Ok(())
}
