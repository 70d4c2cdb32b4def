//! `braid-goodput`: a TCP flow's goodput over time. `sink` counts received bytes per interval and
//! prints them as JSON lines; `send` sends as fast as it can for a bounded time; `report` sums up
//! failover runs (benches/failover.sh) as a table, JSON and an SVG chart; `steady` prints flows'
//! steady goodput; `bonding` sums up the bonding bench (benches/bonding.sh) as a markdown table
//! and an SVG chart.

use braid_tools::goodput::{self, bonding, flow, series, Events, Run};
use clap::{Parser, Subcommand};
use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "braid-goodput",
    version,
    about = "A TCP flow's goodput over time"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Accept one connection and print the bytes it brings per interval, one JSON object a line:
    /// {"t": start, Unix seconds, "secs": length, "bytes": n}. Ends at the sender's close or after
    /// --duration; its report goes to stderr.
    Sink {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Interval length in milliseconds.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
        interval_ms: u64,
        /// Seconds to wait for the connection.
        #[arg(long, default_value = "30", value_parser = parse_secs)]
        accept_timeout: Duration,
        /// Seconds to count for at most, from the connection on.
        #[arg(long, value_parser = parse_secs)]
        duration: Duration,
    },
    /// Send to a sink as fast as the connection takes for --secs, then close; prints a JSON report.
    Send {
        /// The sink.
        #[arg(long)]
        to: SocketAddr,
        /// Seconds to send for.
        #[arg(long, value_parser = parse_secs)]
        secs: Duration,
        /// Seconds to keep trying to connect while the sink does not listen yet.
        #[arg(long, default_value = "10", value_parser = parse_secs)]
        connect_timeout: Duration,
    },
    /// Sum up failover runs: a table on stdout, optionally JSON and an SVG chart.
    Report {
        /// A run's flow across the cut: NAME=FILE (a sink's output). Repeat for each variant.
        #[arg(long = "run", value_name = "NAME=FILE", value_parser = named, required = true)]
        runs: Vec<(String, PathBuf)>,
        /// The run's instants: NAME=FILE with lines `cut T`, `restore T`, `stop T` (Unix seconds).
        #[arg(long = "events", value_name = "NAME=FILE", value_parser = named)]
        events: Vec<(String, PathBuf)>,
        /// A flow over the surviving link alone, for its rate: NAME=FILE (a sink's output).
        #[arg(long = "reference", value_name = "NAME=FILE", value_parser = named)]
        references: Vec<(String, PathBuf)>,
        /// Percentage of the surviving link's goodput that counts as recovered.
        #[arg(long, default_value_t = 90.0)]
        share: f64,
        /// Intervals in a row the goodput must hold it.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        hold: u64,
        /// The chart's title.
        #[arg(long, default_value = "TCP goodput across a link cut")]
        title: String,
        /// Write the chart here.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Write the summaries here, one JSON object a line.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Print the steady goodput of flows (sinks' outputs) added up, in Mbit/s: each flow's mean
    /// after its first second, its last (short) interval left out; "null" if none has one.
    Steady {
        /// A sink's output per flow.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Sum up a bonding bench: its points (one JSON object a line) as a markdown table on stdout,
    /// optionally one TCP flow's goodput against the RTT difference as an SVG chart.
    Bonding {
        /// The points, as benches/bonding.sh writes them.
        #[arg(long)]
        points: PathBuf,
        /// The chart's title.
        #[arg(
            long,
            default_value = "One TCP flow over two bonded links of unequal delay"
        )]
        title: String,
        /// Write the chart here.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s}: {e}"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("{s}: seconds from 0 to 86400"));
    }
    Ok(Duration::from_secs_f64(v))
}

fn named(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("{s}: want NAME=FILE")),
    }
}

fn json_line<T: serde::Serialize>(out: &mut impl Write, value: &T) -> io::Result<()> {
    let line = serde_json::to_string(value).map_err(io::Error::other)?;
    writeln!(out, "{line}")
}

fn sink(
    listen: SocketAddr,
    interval: Duration,
    accept: Duration,
    duration: Duration,
) -> io::Result<bool> {
    let listener = TcpListener::bind(listen)?;
    eprintln!("braid-goodput: listening on {}", listener.local_addr()?);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut failed = None;
    let report = flow::sink(&listener, interval, accept, duration, |s| {
        if failed.is_none() {
            failed = json_line(&mut out, &s).and_then(|()| out.flush()).err();
        }
    })?;
    json_line(&mut io::stderr(), &report)?;
    match failed {
        Some(e) => Err(e),
        None => Ok(report.error.is_none()),
    }
}

fn read_series(path: &Path) -> io::Result<Vec<series::Sample>> {
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    series::read_series(BufReader::new(file))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// The file given for `name` in `list`, or an error naming the flag.
fn file_of<'a>(list: &'a [(String, PathBuf)], name: &str, flag: &str) -> io::Result<&'a Path> {
    list.iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.as_path())
        .ok_or_else(|| io::Error::other(format!("no --{flag} {name}=FILE")))
}

struct ReportOpts {
    share: f64,
    hold: usize,
    title: String,
    svg: Option<PathBuf>,
    json: Option<PathBuf>,
}

fn report(
    runs: &[(String, PathBuf)],
    events: &[(String, PathBuf)],
    references: &[(String, PathBuf)],
    opts: &ReportOpts,
) -> io::Result<()> {
    let mut loaded = Vec::new();
    for (name, path) in runs {
        let ev_path = file_of(events, name, "events")?;
        let ev = Events::parse(&fs::read_to_string(ev_path)?)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", ev_path.display())))?;
        loaded.push(Run {
            name: name.clone(),
            series: read_series(path)?,
            events: ev,
            reference: read_series(file_of(references, name, "reference")?)?,
        });
    }
    let share = opts.share / 100.0;
    let sums: Vec<_> = loaded
        .iter()
        .map(|r| goodput::summarize(r, share, opts.hold))
        .collect();
    print!("{}", goodput::table(&sums, share, opts.hold));
    if let Some(path) = &opts.json {
        let mut f = File::create(path)?;
        for s in &sums {
            json_line(&mut f, s)?;
        }
    }
    if let Some(path) = &opts.svg {
        let chart = goodput::chart(&opts.title, &loaded, &sums, share);
        fs::write(path, goodput::svg::render(&chart))?;
    }
    Ok(())
}

/// The steady goodputs of `files` added up (None if no flow has a steady interval).
fn steady(files: &[PathBuf]) -> io::Result<Option<f64>> {
    let mut sum = None;
    for f in files {
        if let Some(g) = series::steady_mbps(&read_series(f)?, goodput::RAMP_SECS) {
            sum = Some(sum.unwrap_or(0.0) + g);
        }
    }
    Ok(sum)
}

fn bonding_report(points: &Path, title: &str, svg: Option<&Path>) -> io::Result<()> {
    let file = File::open(points)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", points.display())))?;
    let points = bonding::read_points(BufReader::new(file))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", points.display())))?;
    print!("{}", bonding::table(&points));
    if let Some(path) = svg {
        let chart = bonding::chart(title, &points);
        fs::write(path, goodput::svg::render(&chart))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = match Cli::parse().cmd {
        Cmd::Sink {
            listen,
            interval_ms,
            accept_timeout,
            duration,
        } => sink(
            listen,
            Duration::from_millis(interval_ms),
            accept_timeout,
            duration,
        ),
        Cmd::Send {
            to,
            secs,
            connect_timeout,
        } => {
            let r = flow::send(to, secs, connect_timeout);
            json_line(&mut io::stdout(), &r).map(|()| r.ok)
        }
        Cmd::Report {
            runs,
            events,
            references,
            share,
            hold,
            title,
            svg,
            json,
        } => {
            let opts = ReportOpts {
                share,
                hold: hold as usize,
                title,
                svg,
                json,
            };
            report(&runs, &events, &references, &opts).map(|()| true)
        }
        Cmd::Steady { files } => steady(&files).map(|g| {
            match g {
                Some(g) => println!("{g:.1}"),
                None => println!("null"),
            }
            true
        }),
        Cmd::Bonding { points, title, svg } => {
            bonding_report(&points, &title, svg.as_deref()).map(|()| true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("braid-goodput: {e}");
            ExitCode::FAILURE
        }
    }
}
