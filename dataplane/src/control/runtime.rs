//! The running configuration and its changes. A change is made to a copy of the config, the
//! copy is validated whole as a file would be, a new snapshot is built from it and swapped in:
//! workers see the old one or the new one, and a refused change leaves everything as it was.
//! The snapshot is built from the config resolved with the kernel's view (`kernel::resolve`:
//! the addresses and gateways of interfaces with `address = "kernel"`), which the daemon
//! updates when the kernel reports a change (`Runtime::follow`).

use crate::kernel::{self, Facts, KernelView};
use crate::pipeline::Shared;
use crate::snapshot::{Secrets, Snapshot};
use crate::wire::Mac;
use braid_control::config::{Config, LinkConfig, PeerConfig, Problem, RuleConfig, WeightMode};
use braid_control::proto::{Changed, ErrorKind, ErrorReply, LinkWeight, Request, Running};
use ipnet::Ipv4Net;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The loaded config with the runtime changes made since, and what a snapshot is built from.
pub struct Runtime {
    config: Config,
    /// The kernel's view the snapshot was built with, and `config` resolved with it.
    kernel: KernelView,
    resolved: Config,
    facts: Facts,
    config_path: PathBuf,
    macs: Vec<Mac>,
    secrets: Secrets,
    shared: Arc<Shared>,
}

/// A refusal that changed nothing.
fn refused(message: impl Into<String>) -> ErrorReply {
    ErrorReply::new(ErrorKind::Refused, message)
}

/// A refusal listing each problem as `<field>: <what is wrong>`.
fn invalid(problems: &[Problem]) -> ErrorReply {
    ErrorReply {
        kind: ErrorKind::Refused,
        message: "the change would make the configuration invalid; nothing was changed".into(),
        problems: problems.iter().map(ToString::to_string).collect(),
    }
}

impl Runtime {
    /// The runtime of a daemon that started with `config` (read from `config_path`), the MACs
    /// of its interfaces and the secrets of its key files, running `shared`.
    pub fn new(
        config: Config,
        config_path: &Path,
        macs: Vec<Mac>,
        secrets: Secrets,
        shared: Arc<Shared>,
    ) -> Runtime {
        let kernel = KernelView::default();
        let resolved = kernel::resolve(&config, &kernel);
        Runtime {
            config,
            kernel,
            facts: resolved.facts(),
            resolved: resolved.config,
            config_path: std::fs::canonicalize(config_path)
                .unwrap_or_else(|_| config_path.to_path_buf()),
            macs,
            secrets,
            shared,
        }
    }

    /// The same runtime, its snapshot built with the kernel's view `kernel` (the daemon reads it
    /// before the first snapshot).
    pub fn with_kernel(mut self, kernel: KernelView) -> Runtime {
        let resolved = kernel::resolve(&self.config, &kernel);
        self.facts = resolved.facts();
        self.resolved = resolved.config;
        self.kernel = kernel;
        self
    }

    /// The running configuration, as written (kernel addresses not filled in).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The running configuration with the kernel's addresses and gateways: what runs.
    pub fn resolved(&self) -> &Config {
        &self.resolved
    }

    /// Takes a new view of the kernel; when it changes what the configuration resolves to
    /// (an address DHCP gave or took, a default route), installs the result. Lines to log.
    pub fn follow(&mut self, view: KernelView) -> Vec<String> {
        let next = kernel::resolve(&self.config, &view);
        self.kernel = view;
        if next.facts() == self.facts {
            return Vec::new();
        }
        let mut log = next.waiting;
        match self.install(self.config.clone(), None) {
            Ok(changed) => {
                let addresses: Vec<String> = (self.resolved.interfaces.iter())
                    .filter(|i| i.address.is_kernel())
                    .map(|i| format!("{} {}", i.name, i.address))
                    .collect();
                log.push(format!(
                    "the kernel's addresses changed: {}; now generation {}",
                    addresses.join(", "),
                    changed.generation
                ));
            }
            Err(e) => log.push(format!("the kernel's addresses changed: {}", e.message)),
        }
        log
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The MAC of each interface, in config order.
    pub fn macs(&self) -> &[Mac] {
        &self.macs
    }

    /// The state shared with the workers.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Carries out a change request; other requests are refused.
    pub fn apply(&mut self, request: &Request) -> Result<Changed, ErrorReply> {
        match request {
            Request::SetWeights { peer, weights } => self.set_weights(peer.as_deref(), weights),
            Request::AutoWeights { peer } => self.change(|c| {
                peer_mut(c, peer.as_deref())?.weights = WeightMode::Auto;
                Ok(())
            }),
            Request::SetMode { mode, balance } => self.change(|c| {
                c.bond.mode = *mode;
                if let Some(balance) = balance {
                    c.bond.balance = *balance;
                }
                Ok(())
            }),
            Request::SetLinkState { peer, link, state } => self.change(|c| {
                let peer = peer_mut(c, peer.as_deref())?;
                link_mut(peer, link)?.state = *state;
                Ok(())
            }),
            Request::AddRoute { route } => self.change(|c| {
                c.routes.push(route.clone());
                Ok(())
            }),
            Request::DelRoute { table, to } => self.change(|c| del_route(c, table, *to)),
            Request::AddRule { rule, index } => self.change(|c| add_rule(c, rule, *index)),
            Request::DelRule { from } => self.change(|c| {
                let i = c
                    .rules
                    .iter()
                    .position(|r| r.from == *from)
                    .ok_or_else(|| refused(format!("there is no rule from {from}")))?;
                c.rules.remove(i);
                Ok(())
            }),
            Request::Reload => self.reload(),
            other => Err(ErrorReply::new(
                ErrorKind::Malformed,
                format!("{other:?} is not a change"),
            )),
        }
    }

    /// The state `braidctl save` writes back.
    pub fn running(&self) -> Running {
        Running::of(&self.config, self.config_path.clone())
    }

    fn set_weights(
        &mut self,
        peer: Option<&str>,
        weights: &[LinkWeight],
    ) -> Result<Changed, ErrorReply> {
        if weights.is_empty() {
            return Err(refused("no weights given"));
        }
        self.change(|c| {
            let peer = peer_mut(c, peer)?;
            // Weights given by hand are the peer's weights again, not learned ones.
            peer.weights = WeightMode::Manual;
            for (i, w) in weights.iter().enumerate() {
                if weights[..i].iter().any(|o| o.link == w.link) {
                    return Err(refused(format!("link {} is given twice", w.link)));
                }
                link_mut(peer, &w.link)?.weight = w.weight;
            }
            Ok(())
        })
    }

    /// Re-reads the file: validated whole (key files included) and applied whole. Runtime
    /// changes that were not saved are gone afterwards.
    fn reload(&mut self) -> Result<Changed, ErrorReply> {
        let next = Config::load(&self.config_path).map_err(|e| ErrorReply {
            kind: ErrorKind::Refused,
            message: format!(
                "{} is refused; the running configuration stays",
                self.config_path.display()
            ),
            problems: e.to_string().lines().map(str::to_owned).collect(),
        })?;
        self.check_restart_fields(&next)?;
        let secrets = Secrets::load(&next).map_err(refused)?;
        self.install(next, Some(secrets))
    }

    /// Fields a running daemon cannot take over: they need a restart.
    fn check_restart_fields(&self, next: &Config) -> Result<(), ErrorReply> {
        let old = &self.config;
        let names =
            |c: &Config| -> Vec<String> { c.interfaces.iter().map(|i| i.name.clone()).collect() };
        let mut problems = Vec::new();
        if names(old) != names(next) {
            problems.push("interface: the interfaces (names and order) differ".to_string());
        }
        problems.extend(crate::steer::restart_problem(old, next));
        if old.workers != next.workers {
            problems.push(format!(
                "workers: {} instead of {}",
                next.workers, old.workers
            ));
        }
        if old.first_core != next.first_core {
            problems.push("first_core: differs".into());
        }
        if old.nap_us != next.nap_us {
            problems.push(format!("nap_us: {} instead of {}", next.nap_us, old.nap_us));
        }
        if old.control_socket != next.control_socket {
            problems.push("control_socket: differs".into());
        }
        if old.metrics_listen != next.metrics_listen {
            problems.push("metrics_listen: differs".into());
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(ErrorReply {
            kind: ErrorKind::Refused,
            message: "the file changes what only a restart can change; nothing was changed".into(),
            problems,
        })
    }

    /// Applies `edit` to a copy of the config, validates the copy and installs it.
    fn change(
        &mut self,
        edit: impl FnOnce(&mut Config) -> Result<(), ErrorReply>,
    ) -> Result<Changed, ErrorReply> {
        let mut next = self.config.clone();
        edit(&mut next)?;
        next.validate().map_err(|p| invalid(&p))?;
        self.install(next, None)
    }

    /// Builds the snapshot of `next` after the running one and swaps it in.
    fn install(&mut self, next: Config, secrets: Option<Secrets>) -> Result<Changed, ErrorReply> {
        let previous = self.shared.snapshot.load();
        let secrets = secrets.unwrap_or_else(|| self.secrets.clone());
        let resolved = kernel::resolve(&next, &self.kernel);
        let snapshot = Snapshot::rebuild(&resolved.config, &self.macs, &secrets, &previous)
            .map_err(refused)?;
        let generation = snapshot.generation;
        self.shared.snapshot.store(Arc::new(snapshot));
        self.config = next;
        self.facts = resolved.facts();
        self.resolved = resolved.config;
        self.secrets = secrets;
        Ok(Changed { generation })
    }
}

/// The peer named `name`, or the only one when no name is given.
fn peer_mut<'c>(c: &'c mut Config, name: Option<&str>) -> Result<&'c mut PeerConfig, ErrorReply> {
    let names: Vec<String> = c.peers.iter().map(|p| p.name.clone()).collect();
    match name {
        Some(name) => c.peers.iter_mut().find(|p| p.name == name).ok_or_else(|| {
            refused(format!(
                "there is no peer {name} (peers: {})",
                names.join(", ")
            ))
        }),
        None if c.peers.len() == 1 => Ok(&mut c.peers[0]),
        None => Err(refused(format!(
            "there are several peers ({}); say which with --peer",
            names.join(", ")
        ))),
    }
}

fn link_mut<'p>(peer: &'p mut PeerConfig, name: &str) -> Result<&'p mut LinkConfig, ErrorReply> {
    let names: Vec<String> = peer.links.iter().map(|l| l.name.clone()).collect();
    let peer_name = peer.name.clone();
    peer.links
        .iter_mut()
        .find(|l| l.name == name)
        .ok_or_else(|| {
            refused(format!(
                "peer {peer_name} has no link {name} (links: {})",
                names.join(", ")
            ))
        })
}

fn del_route(c: &mut Config, table: &str, to: Ipv4Net) -> Result<(), ErrorReply> {
    let i = c
        .routes
        .iter()
        .position(|r| r.table == table && r.to == to)
        .ok_or_else(|| refused(format!("there is no route to {to} in table {table}")))?;
    c.routes.remove(i);
    Ok(())
}

fn add_rule(c: &mut Config, rule: &RuleConfig, index: Option<usize>) -> Result<(), ErrorReply> {
    let at = index.unwrap_or(c.rules.len());
    if at > c.rules.len() {
        return Err(refused(format!(
            "rule index {at} is past the end ({} rules)",
            c.rules.len()
        )));
    }
    c.rules.insert(at, rule.clone());
    Ok(())
}
