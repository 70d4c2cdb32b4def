//! `braidd`: the braid daemon. One process per box; its config says whether it
//! is an edge or a hub.

use braid_control::config::Config;
use braid_dataplane::control::ControlOptions;
use braid_dataplane::daemon;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "braidd",
    version,
    about = "braid multi-WAN bonding router daemon"
)]
struct Cli {
    /// Configuration file (TOML; see docs/CONFIG.md).
    #[arg(short, long, default_value = "/etc/braid/braidd.toml")]
    config: PathBuf,
    /// Validate the configuration, key files and interfaces, then exit.
    #[arg(long)]
    check: bool,
    /// Use generic (skb) XDP instead of native mode.
    #[arg(long)]
    generic_xdp: bool,
    /// Let libxdp attach its default program (every frame to braid) instead of braid's own;
    /// `owned` interfaces only. For comparing their costs (benches/lab.sh).
    #[arg(long)]
    libxdp_program: bool,
    /// Control socket path (overrides `control_socket` in the configuration).
    #[arg(long)]
    control_socket: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let setup = match daemon::Setup::prepare(&cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("braidd: {}: {e}", cli.config.display());
            return ExitCode::from(2);
        }
    };
    if cli.check {
        eprintln!("braidd: {}: ok", cli.config.display());
        return ExitCode::SUCCESS;
    }
    let control = ControlOptions {
        config_path: cli.config.clone(),
        socket: cli.control_socket.clone(),
    };
    let xdp = daemon::XdpChoice {
        generic: cli.generic_xdp,
        libxdp_default: cli.libxdp_program,
    };
    match daemon::run(&cfg, setup, xdp, &control) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("braidd: {e}");
            ExitCode::FAILURE
        }
    }
}
