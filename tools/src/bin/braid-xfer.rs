//! `braid-xfer`: byte-exact TCP transfers and UDP echoes through braid, reported as JSON lines.

use braid_tools::{tcp, udp};
use clap::{Parser, Subcommand};
use serde::Serialize;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "braid-xfer",
    version,
    about = "Byte-exact TCP transfers and UDP echoes"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve TCP transfers: check each upload, send the answer stream back.
    Serve {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Serve one connection, then exit (non-zero if it failed or none came within --timeout).
        #[arg(long)]
        once: bool,
        /// Seconds any wait on a client may last (and, with --once, the wait for it).
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Upload --bytes to a server, download as many back, check both.
    Send {
        /// The server.
        #[arg(long)]
        to: SocketAddr,
        /// Bytes each way.
        #[arg(long)]
        bytes: u64,
        /// Stream seed (the download uses seed + 1).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seconds the whole transfer may take.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Echo UDP datagrams back to their senders.
    UdpEcho {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Exit after echoing this many.
        #[arg(long)]
        count: Option<u64>,
        /// Exit after this many seconds without a datagram.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Send numbered datagrams to an echo and count what comes back.
    UdpSend {
        /// The echo.
        #[arg(long)]
        to: SocketAddr,
        /// Datagrams to send.
        #[arg(long)]
        count: u64,
        /// Bytes per datagram.
        #[arg(long, default_value_t = 512)]
        size: usize,
        /// Payload seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Datagrams per second.
        #[arg(long, default_value_t = 10_000)]
        pps: u64,
        /// Seconds the whole run may take.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
}

/// A server's progress line.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Event<T: Serialize> {
    /// Bound and waiting; `addr` has the real port when 0 was asked for.
    Listening { addr: String },
    /// One connection or echo run is over.
    Done(T),
    /// The server could not go on.
    Failed { error: String },
}

fn print<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("braid-xfer: cannot encode a report: {e}"),
    }
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fail(error: std::io::Error) -> ExitCode {
    print(&Event::<()>::Failed {
        error: error.to_string(),
    });
    ExitCode::FAILURE
}

fn serve(listen: SocketAddr, once: bool, timeout: Duration) -> ExitCode {
    let listener = match TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let addr = listener.local_addr().map_or(listen, |a| a);
    print(&Event::<()>::Listening {
        addr: addr.to_string(),
    });
    if once {
        return match tcp::accept_within(&listener, timeout) {
            Ok(conn) => {
                let report = tcp::serve_conn(conn, timeout);
                print(&Event::Done(&report));
                exit(report.ok)
            }
            Err(e) => fail(e),
        };
    }
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                thread::spawn(move || print(&Event::Done(tcp::serve_conn(conn, timeout))));
            }
            Err(e) => eprintln!("braid-xfer: accept: {e}"),
        }
    }
    ExitCode::SUCCESS
}

fn udp_echo(listen: SocketAddr, count: Option<u64>, idle: Duration) -> ExitCode {
    let sock = match UdpSocket::bind(listen) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let addr = sock.local_addr().map_or(listen, |a| a);
    print(&Event::<()>::Listening {
        addr: addr.to_string(),
    });
    match udp::echo(&sock, idle, count) {
        Ok(report) => {
            print(&Event::Done(&report));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn main() -> ExitCode {
    let secs = Duration::from_secs;
    match Cli::parse().cmd {
        Cmd::Serve {
            listen,
            once,
            timeout,
        } => serve(listen, once, secs(timeout)),
        Cmd::Send {
            to,
            bytes,
            seed,
            timeout,
        } => {
            let report = tcp::send(to, bytes, seed, secs(timeout));
            print(&report);
            exit(report.ok)
        }
        Cmd::UdpEcho {
            listen,
            count,
            timeout,
        } => udp_echo(listen, count, secs(timeout)),
        Cmd::UdpSend {
            to,
            count,
            size,
            seed,
            pps,
            timeout,
        } => {
            let opts = udp::UdpSendOpts {
                count,
                size,
                seed,
                pps,
                timeout: secs(timeout),
            };
            let report = udp::udp_send(to, &opts);
            print(&report);
            exit(report.ok)
        }
    }
}
