//! The daemon around the workers: reads keys and interface addresses, builds the
//! first snapshot, starts one pinned worker per queue, runs the timers and stops
//! everything cleanly on SIGINT/SIGTERM (closing the sockets detaches XDP).

use crate::control::{Control, ControlOptions, Follow, Listeners, Runtime};
use crate::ids::Lane;
use crate::io::wake::WakeFd;
use crate::io::{Steering, XdpMode, XdpProgram, XskOptions, XskPorts};
use crate::kernel::{self, KernelView};
use crate::pipeline::{Pipeline, Shared};
use crate::session::SessionLog;
use crate::snapshot::{Secrets, Snapshot};
use crate::stats::{DropReason, WorkerStats};
use crate::steer;
use crate::wire::Mac;
use crate::worker::{self, Mailboxes};
use braid_control::config::{Config, InterfaceMode};
use braid_control::key::PublicKey;
use core_affinity::CoreId;
use crossbeam_channel::Receiver;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// UMEM frames per worker (2 KiB each: 16 MiB). Half go to the fill rings: with three
/// NICs each ring then holds about 1365 frames, 14 ms at 100 kpps, so a worker
/// descheduled that long on a busy box loses nothing.
const UMEM_FRAMES: u32 = 8192;

/// What the daemon reads from the system before it starts: each interface's
/// MAC, the key files, the kernel's addresses and default routes (and the configuration
/// resolved with them), and what braid's XDP program sends it on each interface.
pub struct Setup {
    macs: Vec<Mac>,
    secrets: Secrets,
    steering: Vec<Steering>,
    kernel: KernelView,
    resolved: Config,
}

/// How braid's sockets get their frames.
#[derive(Debug, Clone, Copy, Default)]
pub struct XdpChoice {
    /// Generic (skb) XDP instead of native mode.
    pub generic: bool,
    /// libxdp's default program (every frame to braid) instead of braid's own: only for
    /// `owned` interfaces, to compare their costs (benches/lab.sh).
    pub libxdp_default: bool,
}

impl Setup {
    /// Reads MAC addresses, keys and the kernel's addresses; errors name the interface, file
    /// or field.
    pub fn prepare(cfg: &Config) -> Result<Setup, String> {
        let macs = cfg
            .interfaces
            .iter()
            .map(|i| read_mac(&i.name))
            .collect::<Result<Vec<_>, _>>()?;
        for i in &cfg.interfaces {
            let queues = rx_queues(&i.name);
            if queues > cfg.workers {
                return Err(format!(
                    "interface {}: {queues} receive queues but workers = {}: traffic on the \
                     other queues would bypass braid; set workers = {queues} or reduce the \
                     queues (ethtool -L {} combined {})",
                    i.name, cfg.workers, i.name, cfg.workers
                ));
            }
        }
        let secrets = Secrets::load(cfg)?;
        let kernel = KernelView::read()?;
        let resolved = kernel::resolve(cfg, &kernel);
        for line in &resolved.waiting {
            eprintln!("braidd: {line}");
        }
        let resolved = resolved.config;
        if cfg
            .interfaces
            .iter()
            .any(|i| i.mode == InterfaceMode::Shared)
        {
            steer::check_ephemeral(&resolved, &kernel.addresses, steer::ephemeral_ports()?)?;
        }
        let steering = (0..cfg.interfaces.len())
            .map(|i| steer::steering(&resolved, i, &kernel.addresses))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Setup {
            macs,
            secrets,
            steering,
            kernel,
            resolved,
        })
    }
}

/// Attaches braid's XDP program to every interface (none with `libxdp_default`, which only
/// `owned` interfaces may use).
fn attach_programs(
    cfg: &Config,
    steering: &[Steering],
    xdp: XdpChoice,
) -> Result<Vec<Arc<XdpProgram>>, String> {
    let mode = if xdp.generic {
        XdpMode::Generic
    } else {
        XdpMode::Native
    };
    if xdp.libxdp_default {
        return match cfg
            .interfaces
            .iter()
            .find(|i| i.mode == InterfaceMode::Shared)
        {
            Some(i) => Err(format!(
                "interface {}: a shared interface needs braid's own XDP program, not libxdp's",
                i.name
            )),
            None => Ok(Vec::new()),
        };
    }
    cfg.interfaces
        .iter()
        .zip(steering)
        .map(|(i, s)| {
            XdpProgram::attach(&i.name, mode, s)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Number of receive queues of interface `name` (1 when sysfs does not say).
fn rx_queues(name: &str) -> usize {
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

/// The MAC address of interface `name`, from sysfs.
fn read_mac(name: &str) -> Result<Mac, String> {
    let path = format!("/sys/class/net/{name}/address");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("interface {name}: not found ({path}: {e})"))?;
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut mac {
        *b = parts
            .next()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
            .ok_or_else(|| format!("interface {name}: unreadable MAC {:?}", text.trim()))?;
    }
    Ok(mac)
}

/// Runs the daemon until SIGINT or SIGTERM.
pub fn run(
    cfg: &Config,
    setup: Setup,
    xdp: XdpChoice,
    control: &ControlOptions,
) -> Result<(), String> {
    let snapshot = Snapshot::build(&setup.resolved, &setup.macs, &setup.secrets, 1)?;
    // Bound before the NICs are taken, so a second daemon on the same socket stops here.
    let socket = control
        .socket
        .as_deref()
        .unwrap_or(cfg.control_socket_path());
    let listeners = Listeners::bind(socket, cfg.metrics_listen)?;
    let (common, wake_fds) = Common::new(snapshot, cfg.workers)?;
    // Attached before the workers bind, detached (when dropped at the end) after their
    // sockets are closed.
    let programs = attach_programs(cfg, &setup.steering, xdp)?;
    // Workers start forwarding only once every queue is bound: until then, frames
    // (ARP replies to the first requests among them) on an unbound queue would
    // go to the kernel and be lost.
    let (go, go_rx) = crossbeam_channel::unbounded::<()>();
    let (workers, started) = start_workers(cfg, xdp.generic, &programs, &common, wake_fds, go_rx)?;
    let runtime = Runtime::new(
        cfg.clone(),
        &control.config_path,
        setup.macs,
        setup.secrets,
        Arc::clone(&common.shared),
    )
    .with_kernel(setup.kernel);
    let serving = match started {
        Ok(()) => {
            let (mail, stop) = (Arc::clone(&common.mail), Arc::clone(&common.stop));
            let follow = Follow::new(programs.clone(), setup.steering.clone(), common.epoch);
            listeners.serve(runtime, workers.stats.clone(), mail, stop, follow)
        }
        Err(e) => Err(e),
    };
    let (control, failure) = match serving {
        Ok(control) => {
            for _ in &workers.threads {
                let _ = go.send(());
            }
            drop(go);
            announce(cfg, common.shared.snapshot.load().statics.public());
            let failure = supervise(&common, &workers, &control);
            (Some(control), failure)
        }
        Err(e) => {
            drop(go);
            common.stop.store(true, Ordering::Relaxed);
            (None, Some(e))
        }
    };
    let failure = shut_down(control, workers.threads, failure);
    report(&common.shared.snapshot.load(), &workers.stats);
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What the daemon shares with its workers.
#[derive(Clone)]
struct Common {
    shared: Arc<Shared>,
    mail: Arc<Mailboxes>,
    /// Set on SIGINT and SIGTERM, or to stop the daemon from within.
    stop: Arc<AtomicBool>,
    /// Time zero of the workers' clocks.
    epoch: Instant,
}

impl Common {
    /// The state shared with `workers` workers, with their wake-up sockets; SIGINT and SIGTERM
    /// set the stop flag from here on.
    fn new(snapshot: Snapshot, workers: usize) -> Result<(Common, Vec<WakeFd>), String> {
        let mut shared = Shared::new(snapshot, random_seed()?);
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| format!("no random cookie key: {e}"))?;
        shared.sessions.set_cookie_key(&key);
        let shared = Arc::new(shared);
        let (mail, wake_fds) =
            Mailboxes::new(workers).map_err(|e| format!("cannot create wake-up sockets: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&stop))
                .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
        }
        // Nothing here depends on the wall clock: session counters start at 0 under keys
        // fresh from each handshake (docs/PROTOCOL.md).
        let epoch = Instant::now();
        let common = Common {
            shared,
            mail: Arc::new(mail),
            stop,
            epoch,
        };
        Ok((common, wake_fds))
    }
}

/// A worker thread, ending with the worker's error if it has one.
type Worker = JoinHandle<Result<(), String>>;

/// The workers started and their counters.
struct Workers {
    threads: Vec<Worker>,
    stats: Vec<Arc<WorkerStats>>,
}

/// Starts the workers one after the other, each waiting on `go` to forward once its queue
/// is bound. The second result is the error of the first worker that could not bind (the
/// ones after it are not started); the whole fails when a worker cannot be made at all.
fn start_workers(
    cfg: &Config,
    generic_xdp: bool,
    programs: &[Arc<XdpProgram>],
    common: &Common,
    wake_fds: Vec<WakeFd>,
    go: Receiver<()>,
) -> Result<(Workers, Result<(), String>), String> {
    let names: Vec<String> = cfg.interfaces.iter().map(|i| i.name.clone()).collect();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut wake_fds = wake_fds.into_iter();
    let mut workers = Workers {
        threads: Vec::new(),
        stats: Vec::new(),
    };
    for i in 0..cfg.workers {
        let stats = Arc::new(WorkerStats::default());
        workers.stats.push(Arc::clone(&stats));
        let start = WorkerStart {
            index: i,
            core: cores
                .get((cfg.first_core.unwrap_or(0) + i) % cores.len().max(1))
                .copied(),
            opts: queue_options(i, generic_xdp),
            names: names.clone(),
            programs: programs.to_vec(),
            common: common.clone(),
            stats,
            wake: wake_fds.next(),
            seed: random_seed()?,
            nap: Duration::from_micros(cfg.nap_us),
        };
        // A channel per worker: if the worker dies before it reports, its sender is
        // dropped and the wait below ends with an error instead of blocking.
        let (ready, ready_rx) = mpsc::channel();
        let go = go.clone();
        let handle = thread::Builder::new()
            .name(format!("braid-w{i}"))
            .spawn(move || start.run(ready, go))
            .map_err(|e| format!("cannot start worker {i}: {e}"))?;
        workers.threads.push(handle);
        // Workers bind one after the other: libxdp attaches its program when the
        // first socket of an interface binds, and concurrent binds race (EBUSY).
        let bound = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(format!("worker {i} died while starting")));
        if bound.is_err() {
            return Ok((workers, bound));
        }
    }
    Ok((workers, Ok(())))
}

/// The AF_XDP options of the sockets on `queue`.
fn queue_options(queue: usize, generic_xdp: bool) -> XskOptions {
    XskOptions {
        queue: queue as u32,
        mode: if generic_xdp {
            XdpMode::Generic
        } else {
            XdpMode::Native
        },
        frame_count: UMEM_FRAMES,
        ..XskOptions::default()
    }
}

/// One worker about to start: its queue, core and share of the daemon.
struct WorkerStart {
    index: usize,
    core: Option<CoreId>,
    opts: XskOptions,
    /// The interfaces whose queue `opts.queue` the worker binds.
    names: Vec<String>,
    /// braid's XDP program on each of them (none: libxdp's default).
    programs: Vec<Arc<XdpProgram>>,
    common: Common,
    stats: Arc<WorkerStats>,
    wake: Option<WakeFd>,
    /// For the NAT table hashes.
    seed: u64,
    /// How long the worker naps between rounds while traffic is light.
    nap: Duration,
}

impl WorkerStart {
    /// The worker thread: binds its queue on every interface, says so on `ready`, waits for
    /// `go` (and ends if it never comes), then forwards until the stop flag is set.
    fn run(self, ready: mpsc::Sender<Result<(), String>>, go: Receiver<()>) -> Result<(), String> {
        let i = self.index;
        if let Some(core) = self.core {
            core_affinity::set_for_current(core);
        }
        let opened = if self.programs.is_empty() {
            XskPorts::open(&self.names, &self.opts)
        } else {
            let programs: Vec<&XdpProgram> = self.programs.iter().map(Arc::as_ref).collect();
            XskPorts::open_with(&self.names, &self.opts, &programs)
        };
        let mut ports = match opened {
            Ok(p) => p,
            Err(e) => {
                let msg = format!("worker {i}: {e}");
                let _ = ready.send(Err(msg.clone()));
                return Err(msg);
            }
        };
        let _ = ready.send(Ok(()));
        if go.recv().is_err() {
            return Ok(());
        }
        let Common {
            shared,
            mail,
            stop,
            epoch,
        } = self.common;
        let lane = Lane(i as u8);
        let mut pipeline = Pipeline::new(shared, lane, self.seed, self.stats);
        let timing = worker::Timing {
            epoch,
            nap: self.nap,
        };
        worker::run(&mut ports, &mut pipeline, &mail, self.wake, &stop, timing)
            .map_err(|e| format!("worker {i}: {e}"))
    }
}

/// Says the daemon is up and forwarding, and with which public key.
fn announce(cfg: &Config, public: [u8; 32]) {
    let names: Vec<&str> = cfg.interfaces.iter().map(|i| i.name.as_str()).collect();
    eprintln!(
        "braidd: ready: {:?} with public key {} and {} worker(s) on {}",
        cfg.role,
        PublicKey::from_bytes(public),
        cfg.workers,
        names.join(", ")
    );
}

/// How often the daemon looks at its workers, the links' interfaces' carrier and the
/// link events: a lost carrier takes its links down within this time, half of what
/// the probes need. (Each look reads a sysfs file per link interface, about 0.1 % of
/// a core at this pace on a small VM.)
const SUPERVISE: Duration = Duration::from_millis(100);
/// How often the data bytes each link received are published while data arrives. The
/// probes carry the last published count to the peer, which turns two of them 500 ms apart
/// into the link's received rate (what learned weights follow): a count up to this old
/// makes that rate off by up to twice this over 500 ms, 4 % (at the supervision pace it
/// was 40 %).
const PUBLISH_RX: Duration = Duration::from_millis(10);
/// Neighbour expiry runs every this many supervision rounds.
const EXPIRE_ROUNDS: u32 = 2;
/// Runs the timers until the stop flag is set; the reason to stop, when it is a failure.
fn supervise(common: &Common, workers: &Workers, control: &Control) -> Option<String> {
    let mut failure = None;
    let mut round = 0u32;
    let mut sessions = SessionLog::default();
    while !common.stop.load(Ordering::Relaxed) {
        let round_end = Instant::now() + SUPERVISE;
        loop {
            let busy = publish_rx(&common.shared, &workers.stats);
            let left = round_end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            thread::sleep(if busy { left.min(PUBLISH_RX) } else { left });
        }
        let now = common.epoch.elapsed().as_nanos() as u64;
        round = round.wrapping_add(1);
        if round.is_multiple_of(EXPIRE_ROUNDS) {
            common.shared.neighbors.expire(now);
        }
        watch_links(&common.shared, now);
        let drops = |why| workers.stats.iter().map(|s| s.drops_of(why)).sum::<u64>();
        let refused = (
            drops(DropReason::OldVersion),
            drops(DropReason::BadHandshake),
        );
        let snap = common.shared.snapshot.load();
        let peers = snap
            .peers
            .iter()
            .map(|p| (p.name.as_str(), p.keys.sending()));
        for line in sessions.lines(peers, refused, now) {
            eprintln!("braidd: {line}");
        }
        if workers.threads.iter().any(|w| w.is_finished()) {
            // A worker that stopped on its own is reported and stops the daemon:
            // never run on with a silently dead queue.
            common.stop.store(true, Ordering::Relaxed);
        }
        if control.is_finished() {
            // Nor without the control socket (the thread stops only on the flag).
            failure = failure.or(Some("the control thread stopped".into()));
            common.stop.store(true, Ordering::Relaxed);
        }
    }
    failure
}

/// Publishes the data bytes received per link over all workers (the probes report them);
/// true when a link received since the last call.
fn publish_rx(shared: &Shared, stats: &[Arc<WorkerStats>]) -> bool {
    let snap = shared.snapshot.load();
    let mut busy = false;
    for l in snap.peers.iter().flat_map(|p| &p.links) {
        let rx = stats
            .iter()
            .filter_map(|s| s.links.get(l.slot.0))
            .map(|c| c.rx_bytes.get())
            .fold(0u64, u64::wrapping_add);
        busy |= rx != l.health.rx_bytes();
        l.health.set_rx_bytes(rx);
    }
    busy
}

/// What the workers cannot see of the links: each interface's carrier (a lost one
/// takes its links down at once). Logs the link events.
fn watch_links(shared: &Shared, now: u64) {
    let snap = shared.snapshot.load();
    let mut carrier: Vec<Option<bool>> = vec![None; snap.ports.len()];
    for peer in &snap.peers {
        for l in &peer.links {
            let up = match carrier.get_mut(l.port) {
                Some(Some(known)) => *known,
                Some(unknown) => {
                    *unknown.insert(snap.ports.get(l.port).is_none_or(|p| has_carrier(&p.name)))
                }
                None => true,
            };
            let mut m = l.health.lock();
            let change = m.set_carrier(up, now, &snap.health);
            let figures = m.figures();
            drop(m);
            if let Some(c) = change {
                shared
                    .board
                    .record(&l.health, (&peer.name, &l.name), c, figures);
            }
        }
    }
    for event in shared.board.take_events() {
        eprintln!("braidd: {event}");
    }
}

/// True when the kernel says interface `name` has carrier; an interface that is
/// down or gone has none.
fn has_carrier(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/carrier")).is_ok_and(|s| s.trim() == "1")
}

/// Waits for the control thread and the workers to end; `failure`, or else the first
/// error among them.
fn shut_down(
    control: Option<Control>,
    workers: Vec<Worker>,
    mut failure: Option<String>,
) -> Option<String> {
    if let Some(control) = control {
        if !control.join() {
            failure = failure.or(Some("the control thread panicked".into()));
        }
    }
    for (i, w) in workers.into_iter().enumerate() {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some(format!("worker {i} panicked"))),
        }
    }
    failure
}

/// A seed for a worker's NAT table hashes, from the system's random source.
fn random_seed() -> Result<u64, String> {
    let mut seed = [0u8; 8];
    getrandom::getrandom(&mut seed).map_err(|e| format!("no random seed: {e}"))?;
    Ok(u64::from_ne_bytes(seed))
}

/// Prints per-link and drop counters summed over workers.
fn report(snap: &Snapshot, stats: &[Arc<WorkerStats>]) {
    for peer in &snap.peers {
        for l in &peer.links {
            let sum = |f: fn(&WorkerStats, usize) -> u64| {
                stats.iter().map(|s| f(s, l.slot.0)).sum::<u64>()
            };
            eprintln!(
                "braidd: link {}/{}: tx {} packets {} bytes, rx {} packets {} bytes",
                peer.name,
                l.name,
                sum(|s, i| s.links[i].tx_packets.get()),
                sum(|s, i| s.links[i].tx_bytes.get()),
                sum(|s, i| s.links[i].rx_packets.get()),
                sum(|s, i| s.links[i].rx_bytes.get()),
            );
        }
    }
    for why in DropReason::ALL {
        let n: u64 = stats.iter().map(|s| s.drops_of(*why)).sum();
        if n > 0 {
            eprintln!("braidd: dropped {}: {n}", why.name());
        }
    }
}
