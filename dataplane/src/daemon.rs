//! The daemon around the workers: reads keys and interface addresses, builds the
//! first snapshot, starts one pinned worker per queue, runs the timers and stops
//! everything cleanly on SIGINT/SIGTERM (closing the sockets detaches XDP).

use crate::control::{ControlOptions, Listeners, Runtime};
use crate::ids::Lane;
use crate::io::{XdpMode, XskOptions, XskPorts};
use crate::pipeline::{Pipeline, Shared};
use crate::snapshot::Snapshot;
use crate::stats::{DropReason, WorkerStats};
use crate::wire::Mac;
use crate::worker::{self, Mailboxes};
use braid_control::config::Config;
use braid_control::key::Key;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// UMEM frames per worker (2 KiB each: 16 MiB). Half go to the fill rings: with three
/// NICs each ring then holds about 1365 frames, 14 ms at 100 kpps, so a worker
/// descheduled that long on a busy box loses nothing.
const UMEM_FRAMES: u32 = 8192;

/// What the daemon reads from the system before it starts: each interface's
/// MAC and each peer's key.
pub struct Setup {
    macs: Vec<Mac>,
    keys: Vec<[u8; 32]>,
}

impl Setup {
    /// Reads MAC addresses and keys; errors name the interface or file.
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
        let keys = cfg
            .peers
            .iter()
            .map(|p| {
                Key::load(&p.key_file)
                    .map(|k| *k.bytes())
                    .map_err(|e| format!("peer {}: {e}", p.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Setup { macs, keys })
    }
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
    generic_xdp: bool,
    control: &ControlOptions,
) -> Result<(), String> {
    let snapshot = Snapshot::build(cfg, &setup.macs, &setup.keys, 1)?;
    // Bound before the NICs are taken, so a second daemon on the same socket stops here.
    let socket = control
        .socket
        .as_deref()
        .unwrap_or(cfg.control_socket_path());
    let listeners = Listeners::bind(socket, cfg.metrics_listen)?;
    let shared = Arc::new(Shared::new(snapshot));
    let (mail, wake_fds) =
        Mailboxes::new(cfg.workers).map_err(|e| format!("cannot create wake-up sockets: {e}"))?;
    let mail = Arc::new(mail);
    let mut wake_fds = wake_fds.into_iter();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    let epoch = Instant::now();
    // Sequences start at Unix seconds × 2^24 (docs/PROTOCOL.md): a lane would have
    // to send over 16 million packets a second on average to catch up with the
    // clock, so after a restart sequences are still larger than anything sent
    // before — nonces never repeat under a key and the peer's replay window accepts them.
    let seq_start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("clock before 1970: {e}"))?
        .as_secs()
        << 24;
    let names: Vec<String> = cfg.interfaces.iter().map(|i| i.name.clone()).collect();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (ready_tx, ready_rx) = mpsc::channel();
    // Workers start forwarding only once every queue is bound: until then, frames
    // (ARP replies to the first requests among them) on an unbound queue would
    // go to the kernel and be lost.
    let (go_tx, go_rx) = crossbeam_channel::unbounded::<()>();
    let mut workers = Vec::new();
    let mut stats = Vec::new();
    let mut failure = None;
    for i in 0..cfg.workers {
        let worker_stats = Arc::new(WorkerStats::default());
        stats.push(Arc::clone(&worker_stats));
        let core = cores
            .get((cfg.first_core.unwrap_or(0) + i) % cores.len().max(1))
            .copied();
        let opts = XskOptions {
            queue: i as u32,
            mode: if generic_xdp {
                XdpMode::Generic
            } else {
                XdpMode::Native
            },
            frame_count: UMEM_FRAMES,
            ..XskOptions::default()
        };
        let (names, shared, mail, stop, ready, go) = (
            names.clone(),
            Arc::clone(&shared),
            Arc::clone(&mail),
            Arc::clone(&stop),
            ready_tx.clone(),
            go_rx.clone(),
        );
        let wake = wake_fds.next();
        let seed = random_seed()?;
        let handle = thread::Builder::new()
            .name(format!("braid-w{i}"))
            .spawn(move || -> Result<(), String> {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                let mut ports = match XskPorts::open(&names, &opts) {
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
                let lane = Lane(i as u8);
                let mut pipeline = Pipeline::new(shared, lane, seq_start, seed, worker_stats);
                worker::run(&mut ports, &mut pipeline, &mail, wake, &stop, epoch)
                    .map_err(|e| format!("worker {i}: {e}"))
            })
            .map_err(|e| format!("cannot start worker {i}: {e}"))?;
        workers.push(handle);
        // Workers bind one after the other: libxdp attaches its program when the
        // first socket of an interface binds, and concurrent binds race (EBUSY).
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some(format!("worker {i} died while starting")),
        }
        if failure.is_some() {
            break;
        }
    }
    let runtime = Runtime::new(
        cfg.clone(),
        &control.config_path,
        setup.macs,
        setup.keys,
        Arc::clone(&shared),
    );
    let mut control = None;
    if failure.is_none() {
        match listeners.serve(runtime, stats.clone(), Arc::clone(&mail), Arc::clone(&stop)) {
            Ok(c) => control = Some(c),
            Err(e) => failure = Some(e),
        }
    }
    if failure.is_none() {
        for _ in &workers {
            let _ = go_tx.send(());
        }
    }
    drop(go_tx);
    if failure.is_none() {
        eprintln!(
            "braidd: ready: {:?} id {} with {} worker(s) on {}",
            cfg.role,
            cfg.id,
            cfg.workers,
            names.join(", ")
        );
    } else {
        stop.store(true, Ordering::Relaxed);
    }
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(200));
        shared.neighbors.expire(epoch.elapsed().as_nanos() as u64);
        if workers.iter().any(|w| w.is_finished()) {
            // A worker that stopped on its own is reported and stops the daemon:
            // never run on with a silently dead queue.
            stop.store(true, Ordering::Relaxed);
        }
        if control.as_ref().is_some_and(|c| c.is_finished()) {
            // Nor without the control socket (the thread stops only on the flag).
            failure = failure.or(Some("the control thread stopped".into()));
            stop.store(true, Ordering::Relaxed);
        }
    }
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
    report(&shared.snapshot.load(), &stats);
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
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
