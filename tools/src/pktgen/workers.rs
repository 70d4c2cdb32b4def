//! Generator, sink and reflector threads on AF_XDP: one per queue, each with its own sockets and
//! UMEM (`XskPorts`). Generator and sink sockets stay open across runs, so a throughput search
//! does not rebind between trials.

use super::clock::HostClock;
use super::frame::FrameSpec;
use super::gen::{split_flows, GenParams, GenReport, Generator};
use super::live::Live;
use super::rate::Rate;
use super::reflect::{reflect_round, Reflection};
use super::sink::{sink_round, KernelDrops, SinkState, SinkTally};
use super::size::SizeMix;
use braid_dataplane::io::{Ports, Steering, XdpMode, XdpProgram, XskOptions, XskPorts};
use braid_dataplane::wire::Mac;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Empty rounds before an idle sink or reflector sleeps in `poll()`.
const SINK_SPIN_ROUNDS: u32 = 64;
/// Longest such sleep.
const SINK_IDLE_WAIT: Duration = Duration::from_millis(1);
/// Busy rounds between two readings of a sink socket's kernel counters (idle ones read them too).
const KERNEL_COUNTERS_EVERY: u32 = 256;

/// The kernel's drop counters of the one socket of `ports`.
fn kernel_drops(ports: &XskPorts) -> io::Result<KernelDrops> {
    let k = ports.kernel_counters(0)?;
    Ok(KernelDrops {
        rx_ring_full: k.rx_ring_full,
        fill_ring_empty: k.fill_ring_empty,
        rx_dropped: k.rx_dropped,
    })
}

/// Where workers attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XskTarget {
    /// Interface name.
    pub iface: String,
    /// Queues to bind, one worker each.
    pub queues: Vec<u32>,
    /// XDP attach mode.
    pub mode: XdpMode,
    /// Frames batched per flush or receive.
    pub batch: usize,
    /// Frames of each socket's UMEM, a power of two; rings get half as many slots.
    pub frames: u32,
}

/// UMEM frames of a generator's socket: its TX ring and the completion ring hold half.
pub const GEN_FRAMES: u32 = 4096;
/// UMEM frames of a sink's socket: its fill ring holds half, which buys time when the sink is
/// not scheduled (8192 frames are 27 ms at 300 kpps).
pub const SINK_FRAMES: u32 = 16384;

fn xsk_options(t: &XskTarget, queue: u32) -> XskOptions {
    XskOptions {
        queue,
        mode: t.mode,
        frame_count: t.frames,
        ring_size: (t.frames / 2).max(1),
        busy_poll: false,
    }
}

/// Opens one socket per queue of `t`, one after another (concurrent binds race in libxdp).
fn open_sockets(t: &XskTarget) -> Result<Vec<XskPorts>, String> {
    if t.queues.is_empty() {
        return Err(format!("{}: no queues to bind", t.iface));
    }
    t.queues
        .iter()
        .map(|&queue| {
            XskPorts::open(std::slice::from_ref(&t.iface), &xsk_options(t, queue))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// A generator thread and its mailboxes.
struct GenWorker {
    params: Option<Sender<GenParams>>,
    reports: Receiver<io::Result<GenReport>>,
    handle: Option<JoinHandle<()>>,
}

/// Generator threads, one per queue, each owning a share of the flows.
pub struct GenPool {
    workers: Vec<GenWorker>,
    /// Next sequence of every stream.
    next: Vec<(u16, u64)>,
}

impl GenPool {
    /// Binds the sockets and starts the threads; they wait for [`GenPool::start`].
    pub fn open(
        t: &XskTarget,
        spec: &FrameSpec,
        mix: SizeMix,
        stream_base: u16,
        live: &Arc<Live>,
        stop: &Arc<AtomicBool>,
    ) -> Result<GenPool, String> {
        let parts = split_flows(spec.flows, t.queues.len()).ok_or_else(|| {
            format!(
                "{} flows cannot be shared by {} queues: give at least one flow per queue",
                spec.flows,
                t.queues.len()
            )
        })?;
        let mut gens = parts
            .into_iter()
            .map(|flows| Generator::new(spec, mix, flows, stream_base, 0, t.batch))
            .collect::<Result<Vec<_>, _>>()?;
        let next = gens.iter().flat_map(Generator::next_seqs).collect();
        let sockets = open_sockets(t)?;
        let workers = sockets
            .into_iter()
            .zip(gens.drain(..))
            .map(|(mut ports, mut gen)| {
                let (ptx, prx) = mpsc::channel::<GenParams>();
                let (rtx, rrx) = mpsc::channel();
                let (live, stop) = (Arc::clone(live), Arc::clone(stop));
                let handle = thread::spawn(move || {
                    let clock = HostClock::new();
                    while let Ok(p) = prx.recv() {
                        let r = gen.run(&mut ports, &clock, &p, &stop, &live);
                        if rtx.send(r).is_err() {
                            break;
                        }
                    }
                });
                GenWorker {
                    params: Some(ptx),
                    reports: rrx,
                    handle: Some(handle),
                }
            })
            .collect();
        Ok(GenPool { workers, next })
    }

    /// Each stream's id and the sequence its next packet will carry.
    pub fn next_seqs(&self) -> &[(u16, u64)] {
        &self.next
    }

    /// Starts a run of all workers at `rate` in total, for at most `duration` and `count` frames
    /// in total.
    pub fn start(&mut self, rate: Rate, duration: Duration, count: Option<u64>) -> io::Result<()> {
        let n = self.workers.len() as u64;
        for (i, w) in self.workers.iter().enumerate() {
            let count = count.map(|c| c / n + u64::from((i as u64) < c % n));
            let p = GenParams {
                rate: rate.split(self.workers.len()),
                duration,
                count,
            };
            w.params
                .as_ref()
                .and_then(|s| s.send(p).ok())
                .ok_or_else(|| io::Error::other("a generator thread has ended"))?;
        }
        Ok(())
    }

    /// Waits for the run started last and merges the workers' reports.
    pub fn finish(&mut self) -> io::Result<GenReport> {
        let mut total = GenReport::default();
        for w in &self.workers {
            let r = w
                .reports
                .recv()
                .map_err(|_| io::Error::other("a generator thread has ended"))??;
            total.merge(&r);
        }
        for s in &total.streams {
            if let Some(n) = self.next.iter_mut().find(|(id, _)| *id == s.stream) {
                n.1 = s.start + s.sent;
            }
        }
        Ok(total)
    }
}

impl Drop for GenPool {
    fn drop(&mut self) {
        for w in &mut self.workers {
            w.params = None;
        }
        for w in &mut self.workers {
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
    }
}

/// Sink threads, one per queue; each keeps its own state behind a lock the controller takes to
/// reset or read it.
pub struct SinkPool {
    states: Vec<Arc<Mutex<SinkState>>>,
    handles: Vec<JoinHandle<io::Result<()>>>,
    quit: Arc<AtomicBool>,
    live: Arc<Live>,
}

impl SinkPool {
    /// Binds the sockets and starts receiving.
    pub fn open(t: &XskTarget, live: &Arc<Live>) -> Result<SinkPool, String> {
        let sockets = open_sockets(t)?;
        let quit = Arc::new(AtomicBool::new(false));
        let mut states = Vec::new();
        let mut handles = Vec::new();
        for mut ports in sockets {
            let state = Arc::new(Mutex::new(SinkState::new()));
            states.push(Arc::clone(&state));
            let (quit, live, batch) = (Arc::clone(&quit), Arc::clone(live), t.batch);
            handles.push(thread::spawn(move || {
                let clock = HostClock::new();
                let mut idle = 0u32;
                let mut rounds = 0u32;
                while !quit.load(Ordering::Relaxed) {
                    rounds = rounds.wrapping_add(1);
                    let got = {
                        let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                        if rounds.is_multiple_of(KERNEL_COUNTERS_EVERY) || idle > SINK_SPIN_ROUNDS {
                            st.note_kernel(kernel_drops(&ports)?);
                        }
                        sink_round(&mut ports, 0, batch, &mut st, &clock, &live)?
                    };
                    if got == 0 {
                        idle = idle.saturating_add(1);
                        if idle > SINK_SPIN_ROUNDS {
                            ports.wait(SINK_IDLE_WAIT)?;
                        }
                    } else {
                        idle = 0;
                    }
                }
                Ok(())
            }));
        }
        Ok(SinkPool {
            states,
            handles,
            quit,
            live: Arc::clone(live),
        })
    }

    /// Starts a trial: forgets what was counted, expects streams to start at the given sequences.
    pub fn begin(&self, starts: &[(u16, u64)]) {
        for s in &self.states {
            s.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .begin(starts);
        }
    }

    /// Generated packets received since the sink started.
    pub fn received(&self) -> u64 {
        self.live.totals().received
    }

    /// What all workers counted.
    pub fn tally(&self) -> SinkTally {
        let mut t = SinkTally::default();
        for s in &self.states {
            t.merge(&s.lock().unwrap_or_else(PoisonError::into_inner).tally());
        }
        t
    }

    /// Whether a worker stopped on an error.
    pub fn failed(&self) -> bool {
        self.handles.iter().any(JoinHandle::is_finished) && !self.quit.load(Ordering::Relaxed)
    }

    /// Stops the workers; the first error any of them met.
    pub fn close(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.quit.store(true, Ordering::Relaxed);
        let mut first = Ok(());
        for h in self.handles.drain(..) {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a sink thread panicked")));
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl Drop for SinkPool {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Reflects frames received on `t`'s interface out of `to` (possibly the same interface) with
/// `macs` (destination, source), on each of `t`'s queues, one thread per queue, until `stop` is
/// set or `duration` passes. Returns the frames reflected. With `braid_program`, braid's own XDP
/// program (as on an owned interface: every frame to the socket) feeds the sockets instead of
/// libxdp's, so the ceiling can be measured with either.
pub fn reflect(
    t: &XskTarget,
    to: &str,
    macs: (Mac, Mac),
    duration: Duration,
    stop: &Arc<AtomicBool>,
    braid_program: bool,
) -> Result<u64, String> {
    let ifaces: Vec<String> = if t.iface == to {
        vec![to.to_string()]
    } else {
        vec![t.iface.clone(), to.to_string()]
    };
    let r = Reflection {
        from: 0,
        to: ifaces.len() - 1,
        dst_mac: macs.0,
        src_mac: macs.1,
    };
    let batch = t.batch;
    let owned = Steering {
        owned: true,
        ..Steering::default()
    };
    // Detached when dropped, after the sockets (closed as their threads end below).
    let programs = if braid_program {
        (ifaces.iter())
            .map(|i| XdpProgram::attach(i, t.mode, &owned).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    let program_refs: Vec<&XdpProgram> = programs.iter().collect();
    let mut sockets = Vec::new();
    for &queue in &t.queues {
        let opts = xsk_options(t, queue);
        let opened = if braid_program {
            XskPorts::open_with(&ifaces, &opts, &program_refs)
        } else {
            XskPorts::open(&ifaces, &opts)
        };
        sockets.push(opened.map_err(|e| e.to_string())?);
    }
    let deadline = Instant::now() + duration;
    let handles: Vec<JoinHandle<io::Result<u64>>> = sockets
        .into_iter()
        .map(|mut ports| {
            let stop = Arc::clone(stop);
            thread::spawn(move || {
                let mut idle = 0u32;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if reflect_round(&mut ports, &r, batch)? == 0 {
                        idle = idle.saturating_add(1);
                        if idle > SINK_SPIN_ROUNDS {
                            ports.wait(SINK_IDLE_WAIT)?;
                        }
                    } else {
                        idle = 0;
                    }
                }
                Ok(ports.counters(r.to).tx_packets)
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h
            .join()
            .map_err(|_| "a reflector thread panicked".to_string())?
            .map_err(|e| e.to_string())?;
    }
    Ok(total)
}
