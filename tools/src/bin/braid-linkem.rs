//! `braid-linkem`: a link emulator on AF_XDP. `run` joins pairs of interfaces and impairs what
//! crosses them; `show`, `set`, `cut` and `restore` talk to a running one over its control
//! socket. See docs/LINKEM.md.

use braid_tools::linkem::control::{self, Reply, Request};
use braid_tools::linkem::engine::{DirStatus, Links, PathSpec, PathStatus};
use braid_tools::linkem::host;
use braid_tools::linkem::scope::{Dir, Scope};
use braid_tools::linkem::settings::{
    parse_buffer, parse_burst_loss, parse_delay, parse_jitter, parse_loss, parse_rate_limit, Change,
};
use braid_tools::pktgen::iface::rx_queues;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Parser)]
#[command(
    name = "braid-linkem",
    version,
    about = "Link emulator on AF_XDP: delay, jitter, loss, bursty loss, rate limit, blackhole",
    after_help = "SCOPE limits a value to a path and/or a direction: isp1, up, down, isp1:up. \
                  Without it the value applies to every direction of every path; later values \
                  override earlier ones where their scopes meet. `up` is A to B of a path NAME=A,B."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Join the paths' interfaces and impair their traffic until SIGINT or SIGTERM.
    Run {
        /// A path NAME=A,B: frames received on A leave by B (up) and the other way (down).
        #[arg(long = "path", value_name = "NAME=A,B", required = true, value_parser = PathSpec::parse)]
        paths: Vec<PathSpec>,
        /// Serve `show`, `set`, `cut` and `restore` on this Unix socket.
        #[arg(long, value_name = "PATH")]
        control: Option<PathBuf>,
        /// Queues to serve, a thread each; a frame leaves on the queue it came in on (default: the
        /// interfaces' fewest receive queues).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
        queues: Option<u32>,
        /// Seed of the losses and jitter (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        impair: Impairments,
    },
    /// Print every path's settings and counters.
    Show {
        #[command(flatten)]
        to: Control,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change parameters of a running emulator (all or none).
    Set {
        #[command(flatten)]
        to: Control,
        #[command(flatten)]
        impair: Impairments,
    },
    /// Blackhole the directions in SCOPE (default: all): every frame is dropped, those in
    /// flight too. The interfaces stay up.
    Cut {
        #[command(flatten)]
        to: Control,
        /// isp1, up, isp1:down...
        #[arg(value_parser = Scope::parse, default_value = "")]
        scope: Scope,
    },
    /// End the blackhole of the directions in SCOPE (default: all).
    Restore {
        #[command(flatten)]
        to: Control,
        /// isp1, up, isp1:down...
        #[arg(value_parser = Scope::parse, default_value = "")]
        scope: Scope,
    },
}

/// The running emulator to talk to.
#[derive(Args)]
struct Control {
    /// Its control socket.
    #[arg(long, value_name = "PATH")]
    control: PathBuf,
}

/// Impairments; each flag may be given several times, as `[SCOPE=]VALUE`.
#[derive(Args)]
struct Impairments {
    /// Added one-way delay: 5ms, 250us, 1.5s.
    #[arg(long, value_name = "[SCOPE=]TIME", value_parser = parse_delay)]
    delay: Vec<Change>,
    /// Each frame's delay is drawn evenly from delay ± jitter; frames keep their order.
    #[arg(long, value_name = "[SCOPE=]TIME", value_parser = parse_jitter)]
    jitter: Vec<Change>,
    /// Random loss: 1%, 0.25%.
    #[arg(long, value_name = "[SCOPE=]PERCENT", value_parser = parse_loss)]
    loss: Vec<Change>,
    /// Bursty loss (Gilbert–Elliott): good->bad P, bad->good R, loss when bad (100%) and when
    /// good (0), e.g. 1%,25%; or off.
    #[arg(long, value_name = "[SCOPE=]P,R[,BAD[,GOOD]]", value_parser = parse_burst_loss)]
    burst_loss: Vec<Change>,
    /// Rate limit: 100mbit, 1.5gbit, 500kbit; or off.
    #[arg(long, value_name = "[SCOPE=]RATE", value_parser = parse_rate_limit)]
    rate: Vec<Change>,
    /// Longest wait behind the rate limit before a frame is dropped (default 50ms).
    #[arg(long, value_name = "[SCOPE=]TIME", value_parser = parse_buffer)]
    buffer: Vec<Change>,
}

impl Impairments {
    /// All changes, flag by flag, each flag's in the order given.
    fn changes(self) -> Vec<Change> {
        [
            self.delay,
            self.jitter,
            self.loss,
            self.burst_loss,
            self.rate,
            self.buffer,
        ]
        .concat()
    }
}

fn main() -> ExitCode {
    let result = match Cli::parse().cmd {
        Cmd::Run {
            paths,
            control,
            queues,
            seed,
            impair,
        } => run(paths, control.as_deref(), queues, seed, impair.changes()),
        Cmd::Show { to, json } => show(&to.control, json),
        Cmd::Set { to, impair } => {
            let changes = impair.changes();
            if changes.is_empty() {
                Err("set: give at least one of --delay, --jitter, --loss, --burst-loss, --rate, --buffer".into())
            } else {
                call(&to.control, &Request::Set { changes })
            }
        }
        Cmd::Cut { to, scope } => call(&to.control, &Request::Cut { scope }),
        Cmd::Restore { to, scope } => call(&to.control, &Request::Restore { scope }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("braid-linkem: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    paths: Vec<PathSpec>,
    control: Option<&Path>,
    queues: Option<u32>,
    seed: Option<u64>,
    changes: Vec<Change>,
) -> Result<(), String> {
    let seed = seed.unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ (u64::from(std::process::id()) << 32)
    });
    let links = Arc::new(Links::new(paths, &changes, seed)?);
    let interfaces = links.interfaces();
    let counts: Vec<u32> = interfaces.iter().map(|i| rx_queues(i)).collect();
    let queues = queues.unwrap_or_else(|| counts.iter().copied().min().unwrap_or(1));
    if counts.iter().any(|&c| c > queues) {
        eprintln!(
            "braid-linkem: warning: frames on queues past the first {queues} of {} go to the \
             kernel, not through the emulator",
            interfaces.join(", ")
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    let sockets = host::open(&interfaces, queues).map_err(|e| e.to_string())?;
    let server = control
        .map(|path| control::serve(path, Arc::clone(&links)))
        .transpose()
        .map_err(|e| e.to_string())?;
    eprintln!("braid-linkem: ready: {queues} queue(s), seed {seed}");
    for p in links.status() {
        eprint!("{}", status_text(&p));
    }
    let r = host::run(&links, sockets, &stop).map_err(|e| e.to_string());
    drop(server);
    eprintln!("braid-linkem: stopped");
    r
}

fn call(socket: &Path, req: &Request) -> Result<(), String> {
    control::call(socket, req).map(|_| ())
}

fn show(socket: &Path, json: bool) -> Result<(), String> {
    let Reply::Status(paths) = control::call(socket, &Request::Show)? else {
        return Err("the emulator answered `show` without a status".into());
    };
    if json {
        let text = serde_json::to_string_pretty(&paths).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        paths.iter().for_each(|p| print!("{}", status_text(p)));
    }
    Ok(())
}

/// Two lines per direction: what it does, and what it did.
fn status_text(p: &PathStatus) -> String {
    let line = |dir: Dir, d: &DirStatus, from: &str, to: &str| {
        let c = &d.counters;
        format!(
            "{} {:<4} {from} -> {to}: {}\n    rx {} tx {} held {} | dropped: cut {} lost {} burst-lost {} \
             rate {} overflow {} tx-failed {}\n",
            p.path.name,
            dir.name(),
            d.settings,
            c.rx_packets,
            c.tx_packets,
            c.held,
            c.cut,
            c.lost,
            c.burst_lost,
            c.rate_dropped,
            c.overflow,
            c.tx_failed
        )
    };
    line(Dir::Up, &p.up, &p.path.a, &p.path.b) + &line(Dir::Down, &p.down, &p.path.b, &p.path.a)
}
