//! `braidctl`: looks at and changes a running `braidd` through its control socket.

use braid_control::client::{Client, ClientError};
use braid_control::config::{
    Balance, BondMode, Config, LinkState, RouteConfig, RuleConfig, DEFAULT_CONTROL_SOCKET,
};
use braid_control::key::{PresharedKey, PrivateKey};
use braid_control::proto::{LinkWeight, Reply, Request, NAT_LIST_DEFAULT};
use braid_control::{save, show};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use ipnet::Ipv4Net;
use std::io::{IsTerminal, Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "braidctl",
    version,
    about = "Look at and change a running braidd",
    after_help = "Changes apply at once and atomically, and last until braidd restarts or \
                  reloads its file; `braidctl save` writes them into the file."
)]
struct Cli {
    /// braidd's control socket.
    #[arg(long, global = true, default_value = DEFAULT_CONTROL_SOCKET)]
    socket: PathBuf,
    /// Print replies as JSON (one object per line) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Role, uptime, workers, interfaces and peers.
    Status,
    /// Every link: state, weight, packets and bytes each way, rates, drops.
    Links,
    /// Show the link weights (configured and learned), set some at once (`braidctl weights
    /// isp1=1 isp2=3`, manual weights), or learn them from the links' capacity (`braidctl
    /// weights auto`).
    Weights {
        /// LINK=WEIGHT pairs, applied together or not at all; or `auto` alone.
        #[arg(value_parser = parse_weight)]
        set: Vec<WeightArg>,
        /// The peer whose links these are (needed when there are several).
        #[arg(long)]
        peer: Option<String>,
    },
    /// Show the bond mode, or set it.
    Mode {
        /// per packet or per flow.
        mode: Option<ModeArg>,
        /// What packet mode balances.
        #[arg(long)]
        balance: Option<BalanceArg>,
    },
    /// Take a link administratively down (it carries nothing; its weight is kept) or up.
    Link {
        /// The link's name.
        name: String,
        /// up or down.
        state: StateArg,
        /// The peer whose link it is (needed when there are several).
        #[arg(long)]
        peer: Option<String>,
    },
    /// List the static routes, or add or delete one.
    Routes {
        #[command(subcommand)]
        action: Option<RouteAction>,
    },
    /// List the policy rules, or add or delete one.
    Rules {
        #[command(subcommand)]
        action: Option<RuleAction>,
    },
    /// Per-worker counters and drops by reason.
    Stats,
    /// A live per-interface table (input and output kbps and pk/s), refreshed every second.
    Watch {
        /// Stop after this many refreshes (default: until interrupted).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Re-read braidd's configuration file: applied whole, or refused whole if invalid.
    Reload,
    /// Write the running weights, link states, mode, routes and rules into the config file.
    Save {
        /// Write to this file instead of the one braidd read (it must exist).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Write a new private key file (mode 0600) and print its public key; never overwrites.
    Genkey {
        /// Path of the key file to create.
        file: PathBuf,
    },
    /// Print the public key of a private key file, or of a private key read from stdin.
    Pubkey {
        /// The private key file (stdin when left out).
        file: Option<PathBuf>,
    },
    /// Write a new pre-shared key file (mode 0600); never overwrites.
    Genpsk {
        /// Path of the key file to create.
        file: PathBuf,
    },
    /// Masquerade sessions and counters.
    Nat {
        /// Only sessions with this address inside or outside.
        #[arg(long)]
        address: Option<Ipv4Addr>,
        /// List at most this many sessions.
        #[arg(long, default_value_t = NAT_LIST_DEFAULT)]
        limit: usize,
    },
    /// The counters in Prometheus text format.
    Metrics,
}

#[derive(Subcommand)]
enum RouteAction {
    /// List the routes (the default).
    List,
    /// Add a route: through a peer's bond, or out of an interface.
    Add {
        /// Destination prefix.
        to: Ipv4Net,
        /// Routing table.
        #[arg(long, default_value = "main")]
        table: String,
        /// Through this peer's bond.
        #[arg(long, conflicts_with_all = ["dev", "via"], required_unless_present = "dev")]
        peer: Option<String>,
        /// Out of this interface.
        #[arg(long)]
        dev: Option<String>,
        /// Next hop on `--dev`.
        #[arg(long, requires = "dev")]
        via: Option<Ipv4Addr>,
    },
    /// Delete the route to a prefix.
    Del {
        /// Destination prefix.
        to: Ipv4Net,
        /// Routing table.
        #[arg(long, default_value = "main")]
        table: String,
    },
}

#[derive(Subcommand)]
enum RuleAction {
    /// List the rules in the order they are tried (the default).
    List,
    /// Add a rule: traffic from FROM is looked up in TABLE.
    Add {
        /// Source prefix.
        from: Ipv4Net,
        /// Routing table.
        table: String,
        /// Position among the rules, from 0 (default: last).
        #[arg(long)]
        index: Option<usize>,
    },
    /// Delete the rule for a source prefix.
    Del {
        /// Source prefix.
        from: Ipv4Net,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Packet,
    Flow,
}

#[derive(Clone, Copy, ValueEnum)]
enum BalanceArg {
    Packets,
    Bytes,
}

#[derive(Clone, Copy, ValueEnum)]
enum StateArg {
    Up,
    Down,
}

/// One argument of `braidctl weights`.
#[derive(Clone, Debug, PartialEq)]
enum WeightArg {
    /// Learned weights.
    Auto,
    /// A link's manual weight.
    Link(LinkWeight),
}

fn parse_weight(s: &str) -> Result<WeightArg, String> {
    if s == "auto" {
        return Ok(WeightArg::Auto);
    }
    let (link, weight) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not LINK=WEIGHT"))?;
    let weight = weight
        .parse()
        .map_err(|_| format!("{s:?}: weight {weight:?} is not a whole number"))?;
    if link.is_empty() {
        return Err(format!("{s:?}: no link name"));
    }
    Ok(WeightArg::Link(LinkWeight {
        link: link.to_string(),
        weight,
    }))
}

/// The request of `braidctl weights SET.. [--peer P]`: `auto` alone, or LINK=WEIGHT pairs
/// (manual weights).
fn weights_request(set: &[WeightArg], peer: Option<&String>) -> Result<Request, String> {
    let peer = peer.cloned();
    if set.contains(&WeightArg::Auto) {
        if set.len() > 1 {
            return Err("weights: `auto` goes alone, without LINK=WEIGHT pairs".into());
        }
        return Ok(Request::AutoWeights { peer });
    }
    let weights = set
        .iter()
        .filter_map(|a| match a {
            WeightArg::Link(w) => Some(w.clone()),
            WeightArg::Auto => None,
        })
        .collect();
    Ok(Request::SetWeights { peer, weights })
}

/// How often `watch` asks for a new sample (the daemon takes one a second).
const WATCH_POLL: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let request = match request_of(&cli.command) {
        Ok(request) => request,
        Err(e) => Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, e)
            .exit(),
    };
    match run(&cli, request) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("braidctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli, request: Option<Request>) -> Result<(), String> {
    let Some(request) = request else {
        return local(cli);
    };
    let mut client = Client::connect(&cli.socket).map_err(|e| e.to_string())?;
    let reply = call(&mut client, &request)?;
    print_reply(cli, &request, &reply);
    Ok(())
}

/// The commands that are not one request and one reply.
fn local(cli: &Cli) -> Result<(), String> {
    match &cli.command {
        Command::Genkey { file } => {
            let key = PrivateKey::create_file(file).map_err(|e| e.to_string())?;
            println!("wrote private key {}", file.display());
            println!("{}", key.public());
            Ok(())
        }
        Command::Pubkey { file } => {
            let key = match file {
                Some(file) => PrivateKey::load(file),
                None => {
                    let mut text = String::new();
                    std::io::stdin()
                        .take(1024)
                        .read_to_string(&mut text)
                        .map_err(|e| format!("cannot read a private key from stdin: {e}"))?;
                    PrivateKey::from_base64(&text, Path::new("stdin"))
                }
            }
            .map_err(|e| e.to_string())?;
            println!("{}", key.public());
            Ok(())
        }
        Command::Genpsk { file } => {
            PresharedKey::create_file(file).map_err(|e| e.to_string())?;
            println!("wrote pre-shared key {}", file.display());
            Ok(())
        }
        Command::Watch { count } => watch(cli, *count),
        Command::Save { file } => save(cli, file.as_deref()),
        _ => Err("internal: not a local command".into()),
    }
}

/// The request a command sends; None for the commands [`local`] runs; an error for
/// arguments that do not go together.
fn request_of(command: &Command) -> Result<Option<Request>, String> {
    Ok(Some(match command {
        Command::Status => Request::Status,
        Command::Links => Request::Links,
        Command::Weights { set, .. } if set.is_empty() => Request::Links,
        Command::Weights { set, peer } => return weights_request(set, peer.as_ref()).map(Some),
        Command::Mode { mode: None, .. } => Request::Status,
        Command::Mode {
            mode: Some(mode),
            balance,
        } => Request::SetMode {
            mode: match mode {
                ModeArg::Packet => BondMode::Packet,
                ModeArg::Flow => BondMode::Flow,
            },
            balance: balance.map(|b| match b {
                BalanceArg::Packets => Balance::Packets,
                BalanceArg::Bytes => Balance::Bytes,
            }),
        },
        Command::Link { name, state, peer } => Request::SetLinkState {
            peer: peer.clone(),
            link: name.clone(),
            state: match state {
                StateArg::Up => LinkState::Up,
                StateArg::Down => LinkState::Down,
            },
        },
        Command::Routes { action } => match action {
            None | Some(RouteAction::List) => Request::Routes,
            Some(RouteAction::Add {
                to,
                table,
                peer,
                dev,
                via,
            }) => Request::AddRoute {
                route: RouteConfig {
                    table: table.clone(),
                    to: *to,
                    via: *via,
                    dev: dev.clone(),
                    peer: peer.clone(),
                },
            },
            Some(RouteAction::Del { to, table }) => Request::DelRoute {
                table: table.clone(),
                to: *to,
            },
        },
        Command::Rules { action } => match action {
            None | Some(RuleAction::List) => Request::Rules,
            Some(RuleAction::Add { from, table, index }) => Request::AddRule {
                rule: RuleConfig {
                    from: *from,
                    table: table.clone(),
                },
                index: *index,
            },
            Some(RuleAction::Del { from }) => Request::DelRule { from: *from },
        },
        Command::Stats => Request::Stats,
        Command::Reload => Request::Reload,
        Command::Nat { address, limit } => Request::Nat {
            address: *address,
            limit: Some(*limit),
        },
        Command::Metrics => Request::Metrics,
        Command::Genkey { .. }
        | Command::Pubkey { .. }
        | Command::Genpsk { .. }
        | Command::Watch { .. }
        | Command::Save { .. } => return Ok(None),
    }))
}

fn call(client: &mut Client, request: &Request) -> Result<Reply, String> {
    client.call(request).map_err(|e| match e {
        ClientError::Refused(e) => e.to_string(),
        other => other.to_string(),
    })
}

fn json(reply: &Reply) -> String {
    serde_json::to_string(reply).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn print_reply(cli: &Cli, request: &Request, reply: &Reply) {
    if cli.json {
        println!("{}", json(reply));
        return;
    }
    let text = match (&cli.command, reply) {
        (Command::Weights { .. }, Reply::Links(l)) => show::weights(l),
        (Command::Mode { .. }, Reply::Status(s)) => show::mode(s),
        (_, Reply::Status(s)) => show::status(s),
        (_, Reply::Links(l)) => show::links(l),
        (_, Reply::Routes(r)) => show::routes(r),
        (_, Reply::Rules(r)) => show::rules(r),
        (_, Reply::Stats(s)) => show::stats(s),
        (_, Reply::Interfaces(i)) => show::watch(i),
        (_, Reply::Nat(n)) => show::nat(n),
        (_, Reply::Metrics(m)) => m.text.clone(),
        (_, Reply::Running(_)) => format!("{}\n", json(reply)),
        (_, Reply::Changed(c)) => format!("{} (generation {})\n", done(request), c.generation),
    };
    print!("{text}");
}

/// What a change request did, in words.
fn done(request: &Request) -> String {
    match request {
        Request::SetWeights { weights, .. } => {
            let set: Vec<String> = weights
                .iter()
                .map(|w| format!("{}={}", w.link, w.weight))
                .collect();
            format!("weights set: {}", set.join(" "))
        }
        Request::AutoWeights { .. } => "weights: auto (learned from the links' capacity)".into(),
        Request::SetMode { .. } => "mode set".into(),
        Request::SetLinkState { link, state, .. } => {
            let state = serde_json::to_value(state).unwrap_or_default();
            format!("link {link} {}", state.as_str().unwrap_or(""))
        }
        Request::AddRoute { route } => format!("route to {} added", route.to),
        Request::DelRoute { to, .. } => format!("route to {to} deleted"),
        Request::AddRule { rule, .. } => format!("rule from {} added", rule.from),
        Request::DelRule { from } => format!("rule from {from} deleted"),
        Request::Reload => "configuration reloaded".into(),
        _ => "done".into(),
    }
}

/// Prints a table per new rate sample of the daemon (one a second).
fn watch(cli: &Cli, count: Option<u64>) -> Result<(), String> {
    let mut client = Client::connect(&cli.socket).map_err(|e| e.to_string())?;
    let terminal = std::io::stdout().is_terminal() && !cli.json;
    let mut last = None;
    let mut shown = 0;
    while count.is_none_or(|c| shown < c) {
        let Reply::Interfaces(i) = call(&mut client, &Request::Interfaces)? else {
            return Err("braidd answered with something else than interfaces".into());
        };
        if last != Some(i.sample) && i.interval_ms > 0 {
            last = Some(i.sample);
            shown += 1;
            let mut out = std::io::stdout().lock();
            let text = if cli.json {
                format!("{}\n", json(&Reply::Interfaces(i)))
            } else if terminal {
                format!("\x1b[H\x1b[2J{}", show::watch(&i))
            } else {
                format!("{}\n", show::watch(&i))
            };
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| format!("stdout: {e}"))?;
        }
        if count.is_none_or(|c| shown < c) {
            thread::sleep(WATCH_POLL);
        }
    }
    Ok(())
}

/// Writes the running state into the config file (or `file`), validating the result first.
fn save(cli: &Cli, file: Option<&Path>) -> Result<(), String> {
    let mut client = Client::connect(&cli.socket).map_err(|e| e.to_string())?;
    let Reply::Running(running) = call(&mut client, &Request::Running)? else {
        return Err("braidd answered with something else than its running state".into());
    };
    let path = file.unwrap_or(&running.config);
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let merged = save::merge(&text, &running).map_err(|e| format!("{}: {e}", path.display()))?;
    Config::parse(&merged, path)
        .map_err(|e| format!("not saved: the result would be refused:\n{e}"))?;
    if merged == text {
        println!("{} already holds the running state", path.display());
        return Ok(());
    }
    save::write_atomic(path, &merged).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("saved the running state to {}", path.display());
    Ok(())
}
