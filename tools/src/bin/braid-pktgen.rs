//! `braid-pktgen`: a packet generator and sink on AF_XDP. `gen` sends, `sink` counts, `run` does
//! both for one trial, `rfc2544` searches the zero-loss and 0.5%-loss rates per frame size, and
//! `reflect` bounces frames between two interfaces (the lab bench's ceiling). See docs/PKTGEN.md.

use braid_dataplane::io::XdpMode;
use braid_tools::pktgen::control::{self, RemoteSink, SinkControl};
use braid_tools::pktgen::frame::{FrameSpec, Proto};
use braid_tools::pktgen::gen::DEFAULT_BATCH;
use braid_tools::pktgen::iface::{mac_of, parse_mac, rx_queues};
use braid_tools::pktgen::live::Live;
use braid_tools::pktgen::rate::{si, Rate};
use braid_tools::pktgen::report;
use braid_tools::pktgen::rfc2544::{search_size, SearchParams, SizeResult};
use braid_tools::pktgen::session::{self, TrialSpec};
use braid_tools::pktgen::size::{self, SizeMix};
use braid_tools::pktgen::workers::{self, GenPool, SinkPool, XskTarget, GEN_FRAMES, SINK_FRAMES};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Longest run any command accepts, in seconds.
const MAX_SECONDS: f64 = 86_400.0;
/// How long `run` and `rfc2544` wait for a remote sink's control socket.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "braid-pktgen",
    version,
    about = "AF_XDP packet generator and sink: pps, loss and latency"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send stamped frames on an interface.
    Gen {
        /// The interface to send on.
        #[arg(long)]
        iface: String,
        #[command(flatten)]
        frames: FrameArgs,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        xdp: XdpArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Count stamped frames received on an interface: loss, duplicates, reordering, latency.
    Sink {
        /// The interface to receive on.
        #[arg(long)]
        iface: String,
        /// Seconds to run at most.
        #[arg(long, default_value_t = 10.0, value_parser = seconds)]
        duration: f64,
        /// Stop after this many generated packets.
        #[arg(long)]
        count: Option<u64>,
        /// Stop this many seconds after the last packet (once one arrived).
        #[arg(long, value_parser = seconds)]
        idle: Option<f64>,
        /// Serve trials to `run`/`rfc2544 --sink-control PATH` on this Unix socket instead.
        #[arg(long)]
        control: Option<PathBuf>,
        #[command(flatten)]
        xdp: XdpArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// One trial: send on --tx, count on --rx (or a sink in another process), side by side.
    Run {
        #[command(flatten)]
        ends: EndArgs,
        #[command(flatten)]
        frames: FrameArgs,
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        xdp: XdpArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// RFC 2544 throughput: the highest rate without loss (NDR) and with loss under 0.5% (PDR)
    /// per frame size, by binary search.
    Rfc2544 {
        #[command(flatten)]
        ends: EndArgs,
        #[command(flatten)]
        frames: FrameArgs,
        /// Frame sizes (FCS included) or imix, comma-separated.
        #[arg(long, default_value = "64,128,256,512,1024,1280,1518")]
        sizes: String,
        /// Seconds per trial.
        #[arg(long, default_value_t = 2.0, value_parser = seconds)]
        trial: f64,
        /// Stop a search once its interval is narrower than this fraction of the rate.
        #[arg(long, default_value_t = 0.02)]
        precision: f64,
        /// Trials per frame size at most.
        #[arg(long, default_value_t = 12)]
        max_trials: u32,
        /// The loss ratio PDR allows.
        #[arg(long, default_value_t = braid_tools::pktgen::rfc2544::PDR_LOSS)]
        pdr_loss: f64,
        #[command(flatten)]
        xdp: XdpArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// One table of several `rfc2544 --json` results, with the subject's NDR ratios to the others.
    Compare {
        /// A variant as NAME=FILE (the JSON of `rfc2544 --json`); repeat, in table order.
        #[arg(long = "variant", required = true, value_parser = variant)]
        variants: Vec<(String, PathBuf)>,
        /// The variant whose rows get ratios.
        #[arg(long, default_value = "braid")]
        subject: String,
        /// Variants the subject is compared with (default: all the others).
        #[arg(long, value_delimiter = ',')]
        against: Vec<String>,
    },
    /// Bounce frames received on --in out of --out with new MACs (AF_XDP forwarding, no routing).
    Reflect {
        /// Receive on this interface.
        #[arg(long = "in")]
        input: String,
        /// Send on this one (may be the same).
        #[arg(long = "out")]
        output: String,
        /// Destination MAC of reflected frames.
        #[arg(long)]
        dst_mac: String,
        /// Source MAC of reflected frames (default: --out's).
        #[arg(long)]
        src_mac: Option<String>,
        /// Seconds to run at most.
        #[arg(long, default_value_t = 60.0, value_parser = seconds)]
        duration: f64,
        /// Feed the sockets with braid's own XDP program (every frame, as on an owned
        /// interface) instead of libxdp's default program.
        #[arg(long)]
        braid_program: bool,
        #[command(flatten)]
        xdp: XdpArgs,
    },
}

/// Where the frames are sent and counted.
#[derive(Args)]
struct EndArgs {
    /// Send on this interface.
    #[arg(long)]
    tx: String,
    /// Count on this interface, in this process.
    #[arg(
        long,
        conflicts_with = "sink_control",
        required_unless_present = "sink_control"
    )]
    rx: Option<String>,
    /// Or: count with `braid-pktgen sink --control PATH`, running elsewhere (another namespace).
    #[arg(long)]
    sink_control: Option<PathBuf>,
    /// Receive queues of --rx to count on (default: all of them).
    #[arg(long)]
    rx_queues: Option<u32>,
}

/// What the frames look like.
#[derive(Args)]
struct FrameArgs {
    /// Ethernet destination: the next hop's MAC.
    #[arg(long)]
    dst_mac: String,
    /// Ethernet source (default: the sending interface's MAC).
    #[arg(long)]
    src_mac: Option<String>,
    /// IPv4 source.
    #[arg(long)]
    src_ip: Ipv4Addr,
    /// IPv4 destination.
    #[arg(long)]
    dst_ip: Ipv4Addr,
    /// Source port of the first flow; flow i uses this + i.
    #[arg(long, default_value_t = 10_000)]
    src_port: u16,
    /// Destination port.
    #[arg(long, default_value_t = 9)]
    dst_port: u16,
    /// Transport.
    #[arg(long, value_enum, default_value_t = ProtoArg::Udp)]
    proto: ProtoArg,
    /// Flows (source ports); each is a stream with its own sequence.
    #[arg(long, default_value_t = 1)]
    flows: u32,
    /// IPv4 time to live.
    #[arg(long, default_value_t = 64)]
    ttl: u8,
    /// Stream id of flow 0 (to tell generators apart at one sink).
    #[arg(long, default_value_t = 0)]
    stream_base: u16,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProtoArg {
    Udp,
    TcpSyn,
}

/// How much to send.
#[derive(Args)]
struct LoadArgs {
    /// Frame size, FCS included (64-1518), or imix (7:4:1 of 64/570/1518).
    #[arg(long, default_value = "64")]
    size: SizeMix,
    /// max, packets per second (250k, 1.5M) or bits per second (100mbit).
    #[arg(long, default_value = "max")]
    rate: Rate,
    /// Seconds to send at most.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    duration: f64,
    /// Frames to send at most.
    #[arg(long)]
    count: Option<u64>,
}

/// AF_XDP options.
#[derive(Args)]
struct XdpArgs {
    /// Use queues 0..N of the interface, a thread each (default: 1 to send, all to receive).
    #[arg(long)]
    queues: Option<u32>,
    /// Attach XDP in generic (skb) mode instead of native.
    #[arg(long)]
    generic: bool,
    /// Frames per batch.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: usize,
}

/// Output options.
#[derive(Args)]
struct OutputArgs {
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

/// `NAME=FILE`.
fn variant(s: &str) -> Result<(String, PathBuf), String> {
    let (name, file) = s
        .split_once('=')
        .filter(|(n, f)| !n.is_empty() && !f.is_empty())
        .ok_or_else(|| format!("{s:?}: NAME=FILE"))?;
    Ok((name.to_string(), PathBuf::from(file)))
}

/// A number of seconds in (0, MAX_SECONDS].
fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?}: seconds"))?;
    if !(v > 0.0 && v <= MAX_SECONDS) {
        return Err(format!("{v}: between 0 and {MAX_SECONDS} seconds"));
    }
    Ok(v)
}

impl XdpArgs {
    fn target(&self, iface: &str, default_queues: u32, frames: u32) -> Result<XskTarget, String> {
        let n = self.queues.unwrap_or(default_queues);
        if n == 0 {
            return Err("--queues: at least 1".into());
        }
        Ok(XskTarget {
            iface: iface.to_string(),
            queues: (0..n).collect(),
            mode: if self.generic {
                XdpMode::Generic
            } else {
                XdpMode::Native
            },
            batch: self.batch.max(1),
            frames,
        })
    }
}

impl FrameArgs {
    fn spec(&self, iface: &str) -> Result<FrameSpec, String> {
        let src_mac = match &self.src_mac {
            Some(m) => parse_mac(m)?,
            None => mac_of(iface)?,
        };
        Ok(FrameSpec {
            src_mac,
            dst_mac: parse_mac(&self.dst_mac)?,
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            src_port: self.src_port,
            dst_port: self.dst_port,
            proto: match self.proto {
                ProtoArg::Udp => Proto::Udp,
                ProtoArg::TcpSyn => Proto::TcpSyn,
            },
            flows: self.flows,
            ttl: self.ttl,
        })
    }
}

impl OutputArgs {
    /// Where progress goes: stderr unless quiet.
    fn progress(&self) -> Option<io::Stderr> {
        (!self.quiet).then(io::stderr)
    }

    /// Prints `value` as JSON, or `text`.
    fn print<T: Serialize>(&self, value: &T, text: &str) -> Result<(), String> {
        let mut out = io::stdout().lock();
        let r = if self.json {
            serde_json::to_writer_pretty(&mut out, value)
                .map_err(io::Error::other)
                .and_then(|()| writeln!(out))
        } else {
            write!(out, "{text}")
        };
        r.map_err(|e| format!("stdout: {e}"))
    }
}

/// A flag that SIGINT and SIGTERM set.
fn stop_flag() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    Ok(stop)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Gen {
            iface,
            frames,
            load,
            xdp,
            out,
        } => gen(&iface, &frames, &load, &xdp, &out),
        Cmd::Sink {
            iface,
            duration,
            count,
            idle,
            control,
            xdp,
            out,
        } => sink(&iface, duration, count, idle, control, &xdp, &out),
        Cmd::Run {
            ends,
            frames,
            load,
            xdp,
            out,
        } => run(&ends, &frames, &load, &xdp, &out),
        Cmd::Rfc2544 {
            ends,
            frames,
            sizes,
            trial,
            precision,
            max_trials,
            pdr_loss,
            xdp,
            out,
        } => {
            let params = SearchParams {
                precision,
                max_trials: max_trials.max(1),
                pdr_loss,
                ..SearchParams::default()
            };
            rfc2544(&ends, &frames, &sizes, trial, params, &xdp, &out)
        }
        Cmd::Compare {
            variants,
            subject,
            against,
        } => compare(&variants, &subject, &against),
        Cmd::Reflect {
            input,
            output,
            dst_mac,
            src_mac,
            duration,
            braid_program,
            xdp,
        } => reflect(
            &input,
            &output,
            (&dst_mac, src_mac.as_deref()),
            duration,
            braid_program,
            &xdp,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("braid-pktgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn gen(
    iface: &str,
    frames: &FrameArgs,
    load: &LoadArgs,
    xdp: &XdpArgs,
    out: &OutputArgs,
) -> Result<(), String> {
    let stop = stop_flag()?;
    let live = Arc::new(Live::default());
    let spec = frames.spec(iface)?;
    let target = xdp.target(iface, 1, GEN_FRAMES)?;
    let mut gens = GenPool::open(&target, &spec, load.size, frames.stream_base, &live, &stop)?;
    let trial = trial_spec(load);
    let mut progress = out.progress();
    let r = session::send(
        &mut gens,
        None,
        &live,
        &trial,
        progress.as_mut().map(|p| p as &mut dyn Write),
    )
    .map_err(|e| format!("{iface}: {e}"))?;
    out.print(&r, &report::gen_summary(&r))
}

fn trial_spec(load: &LoadArgs) -> TrialSpec {
    TrialSpec {
        rate: load.rate,
        duration: Duration::from_secs_f64(load.duration),
        count: load.count,
    }
}

fn sink(
    iface: &str,
    duration: f64,
    count: Option<u64>,
    idle: Option<f64>,
    control: Option<PathBuf>,
    xdp: &XdpArgs,
    out: &OutputArgs,
) -> Result<(), String> {
    let stop = stop_flag()?;
    let live = Arc::new(Live::default());
    let target = xdp.target(iface, rx_queues(iface), SINK_FRAMES)?;
    let mut pool = SinkPool::open(&target, &live)?;
    let deadline = Instant::now() + Duration::from_secs_f64(duration);
    if !out.quiet {
        eprintln!(
            "braid-pktgen: sink on {iface}, queues {:?}{}",
            target.queues,
            control
                .as_ref()
                .map(|p| format!(", control {}", p.display()))
                .unwrap_or_default()
        );
    }
    if let Some(path) = control {
        control::serve(&mut pool, &path, &stop, deadline).map_err(|e| e.to_string())?;
    } else {
        watch_sink(&pool, &live, &stop, deadline, count, idle, out.progress())?;
    }
    let r = pool.tally().report();
    pool.close().map_err(|e| format!("{iface}: {e}"))?;
    out.print(&r, &report::sink_summary(&r))
}

/// Waits until the deadline, `count` packets, `idle` seconds without one, a signal or a failed
/// worker; prints a progress line once a second.
fn watch_sink(
    pool: &SinkPool,
    live: &Live,
    stop: &AtomicBool,
    deadline: Instant,
    count: Option<u64>,
    idle: Option<f64>,
    mut progress: Option<io::Stderr>,
) -> Result<(), String> {
    let start = Instant::now();
    let (mut seen, mut changed) = (0u64, Instant::now());
    let (mut printed, mut next) = (0u64, start + Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && !pool.failed() {
        thread::sleep(Duration::from_millis(20));
        let got = live.totals().received;
        if count.is_some_and(|c| got >= c) {
            break;
        }
        if got != seen {
            (seen, changed) = (got, Instant::now());
        }
        if got > 0 && idle.is_some_and(|s| changed.elapsed().as_secs_f64() >= s) {
            break;
        }
        if Instant::now() >= next {
            next += Duration::from_secs(1);
            if let Some(p) = progress.as_mut() {
                let _ = writeln!(
                    p,
                    "[{:>4}s] rx {} pps | received {}",
                    start.elapsed().as_secs(),
                    si((got - printed) as f64),
                    report::thousands(got)
                );
            }
            printed = got;
        }
    }
    Ok(())
}

/// The sink of `run` and `rfc2544`: in this process or behind a control socket.
fn open_sink(
    ends: &EndArgs,
    xdp: &XdpArgs,
    live: &Arc<Live>,
) -> Result<Box<dyn SinkControl>, String> {
    match (&ends.rx, &ends.sink_control) {
        (Some(rx), _) => {
            let queues = ends.rx_queues.unwrap_or_else(|| rx_queues(rx));
            let target = XdpArgs {
                queues: Some(queues),
                generic: xdp.generic,
                batch: xdp.batch,
            }
            .target(rx, queues, SINK_FRAMES)?;
            Ok(Box::new(SinkPool::open(&target, live)?))
        }
        (None, Some(path)) => Ok(Box::new(
            RemoteSink::connect(path, CONNECT_WAIT).map_err(|e| e.to_string())?,
        )),
        (None, None) => Err("give --rx or --sink-control".into()),
    }
}

fn run(
    ends: &EndArgs,
    frames: &FrameArgs,
    load: &LoadArgs,
    xdp: &XdpArgs,
    out: &OutputArgs,
) -> Result<(), String> {
    let stop = stop_flag()?;
    let live = Arc::new(Live::default());
    let mut sink = open_sink(ends, xdp, &live)?;
    let spec = frames.spec(&ends.tx)?;
    let target = xdp.target(&ends.tx, 1, GEN_FRAMES)?;
    let mut gens = GenPool::open(&target, &spec, load.size, frames.stream_base, &live, &stop)?;
    let mut progress = out.progress();
    let r = session::trial(
        &mut gens,
        sink.as_mut(),
        &live,
        &trial_spec(load),
        progress.as_mut().map(|p| p as &mut dyn Write),
    )
    .map_err(|e| e.to_string())?;
    out.print(&r, &report::trial_summary(&r))
}

/// The JSON document of `rfc2544`.
#[derive(Serialize, Deserialize)]
struct SearchReport {
    trial_seconds: f64,
    precision: f64,
    pdr_loss: f64,
    results: Vec<SizeResult>,
}

fn rfc2544(
    ends: &EndArgs,
    frames: &FrameArgs,
    sizes: &str,
    trial: f64,
    params: SearchParams,
    xdp: &XdpArgs,
    out: &OutputArgs,
) -> Result<(), String> {
    let sizes = size::parse_list(sizes)?;
    let stop = stop_flag()?;
    let live = Arc::new(Live::default());
    let mut sink = open_sink(ends, xdp, &live)?;
    let spec = frames.spec(&ends.tx)?;
    spec.check(&sizes.iter().map(SizeMix::largest).collect::<Vec<_>>())?;
    let target = xdp.target(&ends.tx, 1, GEN_FRAMES)?;
    let mut results = Vec::new();
    for mix in sizes {
        let mut gens = GenPool::open(&target, &spec, mix, frames.stream_base, &live, &stop)?;
        let mut progress = out.progress();
        let label = mix.to_string();
        let result = search_size(&label, params, |rate| {
            if stop.load(Ordering::Relaxed) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
            let spec = TrialSpec {
                rate,
                duration: Duration::from_secs_f64(trial),
                count: None,
            };
            let t = session::trial(
                &mut gens,
                sink.as_mut(),
                &live,
                &spec,
                progress.as_mut().map(|p| p as &mut dyn Write),
            )?;
            if let Some(p) = progress.as_mut() {
                let _ = writeln!(
                    p,
                    "size {label}: asked {rate}: sent {} pps, received {} pps, lost {} ({:.4}%), p99 {}",
                    si(t.tx_pps),
                    si(t.rx_pps),
                    t.lost,
                    t.loss_ratio * 100.0,
                    report::duration_ns(t.latency.p99_ns)
                );
            }
            Ok(t)
        })
        .map_err(|e| format!("size {label}: {e}"))?;
        results.push(result);
    }
    let doc = SearchReport {
        trial_seconds: trial,
        precision: params.precision,
        pdr_loss: params.pdr_loss,
        results,
    };
    out.print(&doc, &report::rfc2544_table(&doc.results))
}

fn reflect(
    input: &str,
    output: &str,
    (dst_mac, src_mac): (&str, Option<&str>),
    duration: f64,
    braid_program: bool,
    xdp: &XdpArgs,
) -> Result<(), String> {
    let stop = stop_flag()?;
    let dst = parse_mac(dst_mac)?;
    let src = match src_mac {
        Some(m) => parse_mac(m)?,
        None => mac_of(output)?,
    };
    let target = xdp.target(input, rx_queues(input), GEN_FRAMES)?;
    eprintln!(
        "braid-pktgen: reflecting {input} -> {output} on queues {:?} for at most {duration} s",
        target.queues
    );
    let n = workers::reflect(
        &target,
        output,
        (dst, src),
        Duration::from_secs_f64(duration),
        &stop,
        braid_program,
    )?;
    println!("reflected {} frames", report::thousands(n));
    Ok(())
}

fn compare(
    variants: &[(String, PathBuf)],
    subject: &str,
    against: &[String],
) -> Result<(), String> {
    let mut loaded = Vec::new();
    for (name, file) in variants {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let doc: SearchReport =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        loaded.push((name.clone(), doc.results));
    }
    let others: Vec<&str> = if against.is_empty() {
        variants
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| *n != subject)
            .collect()
    } else {
        against.iter().map(String::as_str).collect()
    };
    print!("{}", report::compare_table(&loaded, subject, &others));
    Ok(())
}
