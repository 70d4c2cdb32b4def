//! The control plane against a real Unix socket and real pipelines (in-memory frames): every
//! request answered, changes applied whole or not at all and seen by the workers at once,
//! malformed requests refused without harm, reloads, metrics over HTTP.

use super::{Control, Follow, Listeners, Runtime};
use crate::frame::{Frame, Verdict};
use crate::ids::Lane;
use crate::pipeline::{Pipeline, Shared};
use crate::snapshot::{Secrets, Snapshot};
use crate::stats::{DropReason, WorkerStats};
use crate::tunnel::Header;
use crate::wire::{ethernet, ipv4, Mac};
use crate::worker::Mailboxes;
use braid_control::client::{Client, ClientError};
use braid_control::config::{BondMode, Config, LinkState, RouteConfig, RuleConfig, WeightMode};
use braid_control::proto::{
    self, ErrorKind, LinkWeight, Outcome, Reply, Request, Response, MAX_LINE,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const EDGE: &str = braid_testkit::EDGE;
const HUB: &str = braid_testkit::HUB;
const EDGE_MACS: [Mac; 3] = braid_testkit::EDGE_MACS;
const HUB_MAC: Mac = braid_testkit::HUB_MAC;
const GW_MAC: Mac = [2, 0, 0, 0, 9, 9];
const S: u64 = 1_000_000_000;

/// The public key of a second edge (private key 32 bytes 3).
fn edge2_public() -> String {
    let keys = crate::tunnel::handshake::StaticKeys::from_private([3; 32]);
    braid_control::key::PublicKey::from_bytes(keys.public()).to_string()
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("braid-ctl-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A control plane serving a config from a file, with two workers' counters, as braidd
/// runs it (without NICs).
struct Daemon {
    dir: TempDir,
    shared: Arc<Shared>,
    mail: Arc<Mailboxes>,
    stats: Vec<Arc<WorkerStats>>,
    stop: Arc<AtomicBool>,
    control: Option<Control>,
    metrics: std::net::SocketAddr,
}

/// Writes `text` (a lab config) and the lab's key files to a new directory and loads it.
fn lab_config(text: &str) -> (TempDir, PathBuf, Config) {
    let dir = TempDir::new();
    braid_testkit::write_lab_keys(&dir.0).unwrap();
    let path = dir.0.join("braidd.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    (dir, path, cfg)
}

impl Daemon {
    /// Serves `text` (a lab config; its key file is written next to it).
    fn start(text: &str, macs: &[Mac]) -> Daemon {
        let (dir, path, cfg) = lab_config(text);
        let secrets = Secrets::load(&cfg).unwrap();
        let snap = Snapshot::build(&cfg, macs, &secrets, 1).unwrap();
        let shared = Arc::new(Shared::new(snap, 7));
        let stats: Vec<_> = (0..2).map(|_| Arc::new(WorkerStats::default())).collect();
        let mail = Arc::new(Mailboxes::new(2).unwrap().0);
        let stop = Arc::new(AtomicBool::new(false));
        let listeners = Listeners::bind(
            &dir.0.join("ctl.sock"),
            Some("127.0.0.1:0".parse().unwrap()),
        )
        .unwrap();
        let metrics = listeners.metrics_addr().unwrap();
        let runtime = Runtime::new(cfg, &path, macs.to_vec(), secrets, Arc::clone(&shared));
        let control = listeners
            .serve(
                runtime,
                stats.clone(),
                Arc::clone(&mail),
                Arc::clone(&stop),
                Follow::new(Vec::new(), Vec::new(), std::time::Instant::now()),
            )
            .unwrap();
        Daemon {
            dir,
            shared,
            mail,
            stats,
            stop,
            control: Some(control),
            metrics,
        }
    }

    fn edge() -> Daemon {
        Daemon::start(EDGE, &EDGE_MACS)
    }

    fn socket(&self) -> PathBuf {
        self.dir.0.join("ctl.sock")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.0.join("braidd.toml")
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket()).unwrap()
    }

    fn call(&self, request: Request) -> Result<Reply, ClientError> {
        self.client().call(&request)
    }

    fn generation(&self) -> u64 {
        self.shared.snapshot.load().generation
    }

    /// The weight mode of the only peer, as `braidctl save` would write it.
    fn runtime_weights(&self) -> WeightMode {
        match self.call(Request::Running) {
            Ok(Reply::Running(r)) => r.peers[0].weights,
            other => panic!("{other:?}"),
        }
    }

    fn weights(&self) -> Vec<u32> {
        let snap = self.shared.snapshot.load();
        snap.peers[0]
            .scheduler(snap.mode, snap.balance)
            .weights()
            .to_vec()
    }

    /// Stops the control thread and waits for it.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(c) = self.control.take() {
            c.join();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_weights(w1: u32, w2: u32) -> Request {
    Request::SetWeights {
        peer: None,
        weights: vec![
            LinkWeight {
                link: "isp1".into(),
                weight: w1,
            },
            LinkWeight {
                link: "isp2".into(),
                weight: w2,
            },
        ],
    }
}

fn link_state(link: &str, state: LinkState) -> Request {
    Request::SetLinkState {
        peer: None,
        link: link.into(),
        state,
    }
}

/// The refusal of a request that must be refused.
fn refusal(result: Result<Reply, ClientError>) -> proto::ErrorReply {
    match result {
        Err(ClientError::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn changed(result: Result<Reply, ClientError>) -> u64 {
    match result {
        Ok(Reply::Changed(c)) => c.generation,
        other => panic!("expected a change, got {other:?}"),
    }
}

// ---- the socket ----------------------------------------------------------------------------

#[test]
fn the_socket_is_private_and_a_second_daemon_is_refused() {
    let mut d = Daemon::edge();
    let meta = std::fs::symlink_metadata(d.socket()).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let mine = std::fs::metadata(&d.dir.0).unwrap().uid();
    assert_eq!(meta.uid(), mine, "owned by the daemon's user");
    let leftovers: Vec<_> = std::fs::read_dir(&d.dir.0)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");

    let Err(second) = Listeners::bind(&d.socket(), None) else {
        panic!("a second daemon bound the same socket");
    };
    assert!(second.contains("another braidd serves it"), "{second}");
    assert!(matches!(d.call(Request::Status), Ok(Reply::Status(_))));

    d.stop();
    assert!(!d.socket().exists(), "the socket is removed at shutdown");
    assert!(matches!(
        Client::connect(&d.socket()),
        Err(ClientError::NotRunning(_))
    ));
}

#[test]
fn a_stale_socket_is_replaced_and_other_files_are_not() {
    let dir = TempDir::new();
    let path = dir.0.join("sub").join("ctl.sock");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    drop(UnixListener::bind(&path).unwrap());
    assert!(matches!(
        Client::connect(&path),
        Err(ClientError::NotRunning(_))
    ));
    let bound = Listeners::bind(&path, None).unwrap();
    assert!(UnixStream::connect(&path).is_ok());
    drop(bound);
    assert!(!path.exists());

    std::fs::write(&path, "not a socket").unwrap();
    let Err(e) = Listeners::bind(&path, None) else {
        panic!("replaced a regular file");
    };
    assert!(e.contains("is not a socket"), "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");

    let fresh = dir.0.join("new").join("dir").join("ctl.sock");
    let bound = Listeners::bind(&fresh, None).unwrap();
    let mode = std::fs::metadata(fresh.parent().unwrap()).unwrap().mode();
    assert_eq!(mode & 0o777, 0o750, "a missing directory is made 0750");
    drop(bound);
}

// ---- requests ------------------------------------------------------------------------------

#[test]
fn every_request_is_answered() {
    let d = Daemon::edge();
    d.stats[1].forwarded.add(5);
    d.stats[0].count_drop(DropReason::NoRoute);
    d.stats[1].count_drop(DropReason::NoRoute);
    d.stats[1].links[1].tx_packets.add(42);
    let mut c = d.client();

    let Reply::Status(s) = c.call(&Request::Status).unwrap() else {
        panic!()
    };
    assert_eq!(s.role, braid_control::config::Role::Edge);
    assert_eq!((s.workers, s.generation), (1, 1));
    assert_eq!(s.public_key.to_string(), braid_testkit::EDGE_PUBLIC);
    assert_eq!(s.peers[0].public_key.to_string(), braid_testkit::HUB_PUBLIC);
    assert_eq!(s.peers[0].session, None, "no handshake without a hub");
    assert_eq!(s.config, std::fs::canonicalize(d.config_path()).unwrap());
    let names: Vec<&str> = s.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["lan0", "wan1", "wan2"]);
    assert_eq!(s.interfaces[2].mac, "02:00:00:00:01:02");
    assert_eq!(
        s.interfaces[1].address,
        Some("198.18.11.2/24".parse().unwrap())
    );
    assert_eq!((s.peers[0].name.as_str(), s.peers[0].links), ("hub", 2));
    assert_eq!(s.peers[0].links_active, 2);

    let Reply::Links(l) = c.call(&Request::Links).unwrap() else {
        panic!()
    };
    let links: Vec<_> = l
        .links
        .iter()
        .map(|k| {
            (
                k.name.as_str(),
                k.interface.as_str(),
                k.weight,
                k.tx.packets,
            )
        })
        .collect();
    assert_eq!(links, [("isp1", "wan1", 1, 0), ("isp2", "wan2", 2, 42)]);
    assert_eq!(l.links[1].remote.unwrap().to_string(), "203.0.113.2:7420");

    let Reply::Routes(r) = c.call(&Request::Routes).unwrap() else {
        panic!()
    };
    assert_eq!(r.routes.len(), 1);
    assert_eq!(r.routes[0].peer.as_deref(), Some("hub"));
    let Reply::Rules(r) = c.call(&Request::Rules).unwrap() else {
        panic!()
    };
    assert_eq!(r.rules[0].table, "bond");

    let Reply::Stats(s) = c.call(&Request::Stats).unwrap() else {
        panic!()
    };
    assert_eq!(s.workers.len(), 2);
    assert_eq!(s.workers[1].forwarded, 5);
    assert_eq!(s.workers[0].drops.len(), DropReason::ALL.len());
    let no_route = s.drops.iter().find(|x| x.reason == "no_route").unwrap();
    assert_eq!(no_route.count, 2);
    assert_eq!(s.workers[0].interfaces.len(), 3);

    let Reply::Interfaces(i) = c.call(&Request::Interfaces).unwrap() else {
        panic!()
    };
    assert_eq!(i.interfaces.len(), 3);
    assert!(i.sample >= 1);

    let Reply::Nat(n) = c
        .call(&Request::Nat {
            address: Some(Ipv4Addr::new(198, 18, 1, 2)),
            limit: None,
        })
        .unwrap()
    else {
        panic!()
    };
    assert!(!n.enabled);

    let Reply::Running(r) = c.call(&Request::Running).unwrap() else {
        panic!()
    };
    assert_eq!(r.links.len(), 2);
    assert_eq!((r.links[1].link.as_str(), r.links[1].weight), ("isp2", 2));
    assert_eq!(r.mode, BondMode::Packet);

    let Reply::Metrics(m) = c.call(&Request::Metrics).unwrap() else {
        panic!()
    };
    assert!(m
        .text
        .contains("braid_link_weight{peer=\"hub\",link=\"isp2\"} 2\n"));
    assert!(m
        .text
        .contains("braid_link_tx_packets_total{peer=\"hub\",link=\"isp2\"} 42\n"));
    assert!(m
        .text
        .contains("braid_drops_total{worker=\"1\",reason=\"no_route\"} 1\n"));
    assert!(m.text.contains("braid_config_generation 1\n"));
}

#[test]
fn weights_change_whole_or_not_at_all() {
    let d = Daemon::edge();
    let sessions = Arc::clone(&d.shared.snapshot.load().peers[0].keys);
    assert_eq!(d.weights(), [1, 2]);

    assert_eq!(changed(d.call(set_weights(1, 3))), 2);
    assert_eq!((d.generation(), d.weights()), (2, vec![1, 3]));
    let snap = d.shared.snapshot.load();
    assert!(
        Arc::ptr_eq(&sessions, &snap.peers[0].keys),
        "the sessions (with their counters and replay windows) are carried over"
    );

    let e = refusal(d.call(set_weights(2000, 5)));
    assert_eq!(e.kind, ErrorKind::Refused);
    assert_eq!(
        e.problems,
        ["peer[0].link[0].weight: link isp1: weight 2000 is out of range 0..=1000"]
    );
    assert_eq!(
        (d.generation(), d.weights()),
        (2, vec![1, 3]),
        "isp2's valid part was not applied either"
    );

    let e = refusal(d.call(set_weights(0, 0)));
    assert!(e.problems[0].contains("every link has weight 0"), "{e}");
    let e = refusal(d.call(Request::SetWeights {
        peer: None,
        weights: vec![LinkWeight {
            link: "isp9".into(),
            weight: 1,
        }],
    }));
    assert_eq!(e.message, "peer hub has no link isp9 (links: isp1, isp2)");
    let e = refusal(d.call(Request::SetWeights {
        peer: Some("nobody".into()),
        weights: vec![],
    }));
    assert_eq!(e.message, "no weights given");
    let e = refusal(d.call(Request::SetWeights {
        peer: Some("nobody".into()),
        weights: vec![LinkWeight {
            link: "isp1".into(),
            weight: 1,
        }],
    }));
    assert_eq!(e.message, "there is no peer nobody (peers: hub)");
    let mut twice = set_weights(1, 1);
    if let Request::SetWeights { weights, .. } = &mut twice {
        weights[1].link = "isp1".into();
    }
    assert_eq!(refusal(d.call(twice)).message, "link isp1 is given twice");
    assert_eq!((d.generation(), d.weights()), (2, vec![1, 3]));

    assert_eq!(
        changed(d.call(Request::SetMode {
            mode: BondMode::Flow,
            balance: None
        })),
        3
    );
    assert_eq!(d.shared.snapshot.load().mode, BondMode::Flow);
}

#[test]
fn a_link_that_is_down_is_weight_zero_and_keeps_its_weight() {
    let d = Daemon::edge();
    changed(d.call(link_state("isp1", LinkState::Down)));
    assert_eq!(d.weights(), [0, 2]);
    let Ok(Reply::Links(l)) = d.call(Request::Links) else {
        panic!()
    };
    let isp1 = &l.links[0];
    assert_eq!(
        (isp1.state, isp1.weight, isp1.effective_weight),
        (LinkState::Down, 1, 0)
    );
    let e = refusal(d.call(link_state("isp2", LinkState::Down)));
    assert!(
        e.problems[0].contains("every link with a weight above 0 is down"),
        "{e}"
    );
    assert_eq!(d.weights(), [0, 2]);
    // Weights of a link that is down can change; it stays down.
    changed(d.call(set_weights(4, 2)));
    assert_eq!(d.weights(), [0, 2]);
    changed(d.call(link_state("isp1", LinkState::Up)));
    assert_eq!((d.generation(), d.weights()), (4, vec![4, 2]));
}

#[test]
fn routes_and_rules_are_added_and_deleted_whole() {
    let d = Daemon::edge();
    let route = RouteConfig {
        table: "main".into(),
        to: "198.18.50.0/24".parse().unwrap(),
        via: Some("198.18.11.1".parse().unwrap()),
        dev: Some("wan1".into()),
        peer: None,
    };
    changed(d.call(Request::AddRoute {
        route: route.clone(),
    }));
    let snap = d.shared.snapshot.load();
    let hop = snap
        .routes
        .lookup(Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(198, 18, 50, 7));
    assert!(
        matches!(hop, Some(crate::route::NextHop::Port { port: 1, gateway: Some(g) }) if g == Ipv4Addr::new(198, 18, 11, 1)),
        "{hop:?}"
    );
    let e = refusal(d.call(Request::AddRoute {
        route: route.clone(),
    }));
    assert!(
        e.problems[0]
            .starts_with("route[2].to: route to 198.18.50.0/24 in table main is already defined"),
        "{e}"
    );
    let mut bad = route.clone();
    bad.to = "198.18.60.0/24".parse().unwrap();
    bad.via = Some("198.18.12.1".parse().unwrap());
    let e = refusal(d.call(Request::AddRoute { route: bad }));
    assert_eq!(
        e.problems,
        ["route[2].via: route to 198.18.60.0/24: via 198.18.12.1 is not inside wan1's prefix 198.18.11.0/24"]
    );
    let e = refusal(d.call(Request::DelRoute {
        table: "bond".into(),
        to: "0.0.0.0/0".parse().unwrap(),
    }));
    assert!(
        e.problems
            .iter()
            .any(|p| p.contains("an edge needs a [[route]] with peer = \"hub\"")),
        "{e}"
    );
    changed(d.call(Request::DelRoute {
        table: "main".into(),
        to: route.to,
    }));
    let e = refusal(d.call(Request::DelRoute {
        table: "main".into(),
        to: route.to,
    }));
    assert_eq!(
        e.message,
        "there is no route to 198.18.50.0/24 in table main"
    );

    let rule = RuleConfig {
        from: "198.18.2.0/24".parse().unwrap(),
        table: "bond".into(),
    };
    changed(d.call(Request::AddRule {
        rule: rule.clone(),
        index: Some(0),
    }));
    let Ok(Reply::Rules(r)) = d.call(Request::Rules) else {
        panic!()
    };
    let froms: Vec<String> = r.rules.iter().map(|r| r.from.to_string()).collect();
    assert_eq!(froms, ["198.18.2.0/24", "198.18.1.0/24"]);
    let e = refusal(d.call(Request::AddRule {
        rule: RuleConfig {
            from: "198.18.3.0/24".parse().unwrap(),
            table: "nowhere".into(),
        },
        index: None,
    }));
    assert!(e.problems[0].starts_with("rule[2].table: "), "{e}");
    let e = refusal(d.call(Request::AddRule {
        rule: rule.clone(),
        index: Some(7),
    }));
    assert_eq!(e.message, "rule index 7 is past the end (2 rules)");
    changed(d.call(Request::DelRule { from: rule.from }));
    assert_eq!(
        refusal(d.call(Request::DelRule { from: rule.from })).message,
        "there is no rule from 198.18.2.0/24"
    );
    assert_eq!(d.generation(), 5);
}

// ---- the workers see each change at once ---------------------------------------------------

/// A UDP datagram from the LAN host to the internet host (no UDP checksum).
fn lan_datagram(n: u32) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 28 + 4];
    ethernet::write(
        &mut f,
        EDGE_MACS[0],
        [2, 0, 0, 0, 0, 0x10],
        ethernet::ETHERTYPE_IPV4,
    );
    ipv4::Repr {
        src: "198.18.1.2".parse().unwrap(),
        dst: "203.0.113.130".parse().unwrap(),
        protocol: ipv4::PROTO_UDP,
        ttl: 64,
        ident: 1,
        dont_fragment: true,
        payload_len: 12,
    }
    .emit((&mut f[14..34]).try_into().unwrap());
    f[34..36].copy_from_slice(&(4000 + n as u16).to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&12u16.to_be_bytes());
    f[42..].copy_from_slice(&n.to_be_bytes());
    f
}

/// Runs `frame` through `p` at `now` in a UMEM-sized buffer; the transmitted frame, if any.
fn run(p: &mut Pipeline, port: usize, frame: &[u8], now: u64) -> Option<(usize, Vec<u8>)> {
    p.begin_batch(now);
    let mut buf = vec![0u8; 2048];
    buf[..frame.len()].copy_from_slice(frame);
    let mut f = Frame::new(&mut buf, frame.len());
    match p.process(port, &mut f) {
        Verdict::Tx(out) => Some((out, f.data().to_vec())),
        Verdict::Drop => None,
    }
}

/// Sends `n` LAN datagrams through the edge; returns (port, tunnel frame) of each.
fn send(p: &mut Pipeline, n: u32) -> Vec<(usize, Vec<u8>)> {
    (0..n)
        .map(|i| run(p, 0, &lan_datagram(i), S).expect("sent into the tunnel"))
        .collect()
}

fn counter_of(frame: &[u8]) -> u64 {
    Header::parse(&frame[14 + 20 + 8..]).unwrap().counter
}

fn per_port(frames: &[(usize, Vec<u8>)]) -> [usize; 3] {
    let mut n = [0; 3];
    for (port, _) in frames {
        n[*port] += 1;
    }
    n
}

/// An edge daemon in session with a hub daemon, and worker 0's pipeline of the edge, its
/// gateways resolved.
fn paired_edge() -> (Daemon, Daemon, Pipeline) {
    let d = Daemon::edge();
    let hub_d = Daemon::start(HUB, &[HUB_MAC]);
    d.shared.pair_with(&hub_d.shared, S).unwrap();
    let edge = Pipeline::new(Arc::clone(&d.shared), Lane(0), 7, Arc::clone(&d.stats[0]));
    let n = &d.shared.neighbors;
    n.learn(1, "198.18.11.1".parse().unwrap(), GW_MAC, S);
    n.learn(2, "198.18.12.1".parse().unwrap(), GW_MAC, S);
    (d, hub_d, edge)
}

#[test]
fn workers_follow_weights_and_link_state_and_counters_never_repeat() {
    let (d, _hub_d, mut edge) = paired_edge();

    let mut all = send(&mut edge, 300);
    assert_eq!(per_port(&all), [0, 100, 200]);

    changed(d.call(set_weights(1, 3)));
    let after = send(&mut edge, 400);
    assert_eq!(
        per_port(&after),
        [0, 100, 300],
        "1:3 from the next packet on"
    );
    all.extend(after);

    changed(d.call(link_state("isp1", LinkState::Down)));
    let after = send(&mut edge, 300);
    assert_eq!(per_port(&after), [0, 0, 300], "everything on isp2");
    all.extend(after);

    let refused = refusal(d.call(set_weights(1001, 1)));
    assert_eq!(refused.kind, ErrorKind::Refused);
    let after = send(&mut edge, 30);
    assert_eq!(
        per_port(&after),
        [0, 0, 30],
        "a refused change changes nothing"
    );
    all.extend(after);

    let counters: Vec<u64> = all.iter().map(|(_, f)| counter_of(f)).collect();
    assert!(
        counters.windows(2).all(|w| w[1] == w[0] + 1),
        "one lane's counters run on across changes: the session stays"
    );
    assert_eq!(counters[0], 0);
}

#[test]
fn learned_weights_drive_the_workers_until_weights_are_set_by_hand() {
    let (d, _hub_d, mut edge) = paired_edge();
    let links = |d: &Daemon| match d.call(Request::Links) {
        Ok(Reply::Links(l)) => l.links,
        other => panic!("{other:?}"),
    };

    let e = refusal(d.call(Request::AutoWeights {
        peer: Some("nobody".into()),
    }));
    assert_eq!(e.message, "there is no peer nobody (peers: hub)");
    assert_eq!(d.generation(), 1);
    assert_eq!(changed(d.call(Request::AutoWeights { peer: None })), 2);
    assert_eq!(d.runtime_weights(), WeightMode::Auto);
    // Nothing learned yet: the configured weights, shown as such.
    for l in links(&d) {
        assert_eq!((l.weights, l.learned_weight), (WeightMode::Auto, None));
        assert_eq!(l.effective_weight, l.weight);
    }
    assert_eq!(per_port(&send(&mut edge, 300)), [0, 100, 200]);

    // What the learner does when it learns 3:1: store, then announce.
    let learn = |d: &Daemon, w: [u32; 2]| {
        let snap = d.shared.snapshot.load();
        for (l, w) in snap.peers[0].links.iter().zip(w) {
            l.learned.store(w, Ordering::Relaxed);
        }
        d.shared.board.weights_learned();
    };
    learn(&d, [750, 250]);
    assert_eq!(
        per_port(&send(&mut edge, 400)),
        [0, 300, 100],
        "the next batch follows the learned weights"
    );
    let l = links(&d);
    assert_eq!(
        (l[0].weight, l[0].learned_weight, l[0].effective_weight),
        (1, Some(750), 750)
    );
    let body = http(d.metrics, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        body.contains("braid_link_learned_weight{peer=\"hub\",link=\"isp2\"} 250\n"),
        "{body}"
    );
    // Another change keeps what was learned.
    changed(d.call(Request::SetMode {
        mode: BondMode::Packet,
        balance: Some(braid_control::config::Balance::Bytes),
    }));
    assert_eq!(links(&d)[1].learned_weight, Some(250));

    // Weights by hand: manual again, the learned ones gone.
    changed(d.call(set_weights(1, 2)));
    assert_eq!(d.runtime_weights(), WeightMode::Manual);
    for l in links(&d) {
        assert_eq!((l.weights, l.learned_weight), (WeightMode::Manual, None));
    }
    changed(d.call(Request::SetMode {
        mode: BondMode::Packet,
        balance: Some(braid_control::config::Balance::Packets),
    }));
    assert_eq!(per_port(&send(&mut edge, 300)), [0, 100, 200]);
    // Auto again starts from the configured weights, not from what was learned before.
    changed(d.call(Request::AutoWeights { peer: None }));
    assert!(links(&d).iter().all(|l| l.learned_weight.is_none()));
    assert_eq!(per_port(&send(&mut edge, 300)), [0, 100, 200]);
}

#[test]
fn a_hub_keeps_its_replay_windows_across_changes() {
    let edge_d = Daemon::edge();
    let hub_d = Daemon::start(HUB, &[HUB_MAC]);
    edge_d.shared.pair_with(&hub_d.shared, S).unwrap();
    let mut edge = Pipeline::new(
        Arc::clone(&edge_d.shared),
        Lane(0),
        7,
        Arc::clone(&edge_d.stats[0]),
    );
    let mut hub = Pipeline::new(
        Arc::clone(&hub_d.shared),
        Lane(0),
        7,
        Arc::clone(&hub_d.stats[0]),
    );
    for (d, port, gw) in [
        (&edge_d, 1, "198.18.11.1"),
        (&edge_d, 2, "198.18.12.1"),
        (&hub_d, 0, "203.0.113.1"),
    ] {
        d.shared
            .neighbors
            .learn(port, gw.parse().unwrap(), GW_MAC, S);
    }
    let through = |hub: &mut Pipeline, frames: &[(usize, Vec<u8>)]| {
        frames
            .iter()
            .filter(|(_, f)| {
                let mut f = f.clone();
                f[..6].copy_from_slice(&HUB_MAC);
                run(hub, 0, &f, S).is_some()
            })
            .count()
    };
    let first = send(&mut edge, 20);
    assert_eq!(through(&mut hub, &first), 20);

    // Both ends change; the edge's sequences continue, the hub's windows stay.
    changed(edge_d.call(set_weights(1, 3)));
    changed(hub_d.call(set_weights(5, 1)));
    let second = send(&mut edge, 20);
    assert_eq!(through(&mut hub, &second), 20, "nothing taken for a replay");
    assert_eq!(hub_d.stats[0].drops_of(DropReason::Replayed), 0);
    assert_eq!(
        through(&mut hub, &first),
        0,
        "old packets stay refused after the change"
    );
    assert_eq!(hub_d.stats[0].drops_of(DropReason::Replayed), 20);
}

// ---- malformed requests --------------------------------------------------------------------

fn exchange(reader: &mut BufReader<UnixStream>, line: &[u8]) -> Response {
    let stream = reader.get_mut();
    stream.write_all(line).unwrap();
    stream.write_all(b"\n").unwrap();
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    assert!(answer.ends_with('\n'), "{answer:?}");
    proto::decode_response(answer.trim_end().as_bytes())
        .unwrap_or_else(|e| panic!("{answer:?}: {e}"))
}

fn error_kind(r: &Response) -> Option<ErrorKind> {
    match &r.outcome {
        Outcome::Error(e) => Some(e.kind),
        Outcome::Ok(_) => None,
    }
}

#[test]
fn malformed_requests_are_refused_and_the_daemon_serves_on() {
    let d = Daemon::edge();
    let mut conn = BufReader::new(UnixStream::connect(d.socket()).unwrap());
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&[u8], ErrorKind)> = vec![
        (b"hello", ErrorKind::Malformed),
        (b"{}", ErrorKind::Malformed),
        (b"[1,2]", ErrorKind::Malformed),
        (b"\xff\xfe\x00", ErrorKind::Malformed),
        (b"{\"version\":1}", ErrorKind::Malformed),
        (b"{\"version\":1,\"request\":{}}", ErrorKind::Malformed),
        (
            b"{\"version\":1,\"request\":{\"type\":\"reboot\"}}",
            ErrorKind::Malformed,
        ),
        (
            b"{\"version\":1,\"request\":{\"type\":\"status\",\"x\":1}}",
            ErrorKind::Malformed,
        ),
        (
            b"{\"version\":1,\"request\":{\"type\":\"status\"},\"y\":2}",
            ErrorKind::Malformed,
        ),
        (
            br#"{"version":1,"request":{"type":"set_weights","weights":[{"link":"isp1","weight":-1}]}}"#,
            ErrorKind::Malformed,
        ),
        (
            br#"{"version":1,"request":{"type":"set_weights","weights":[{"link":"isp1","weight":99999999999}]}}"#,
            ErrorKind::Malformed,
        ),
        (
            br#"{"version":1,"request":{"type":"add_route","route":{"to":"1.2.3.4/33","peer":"hub"}}}"#,
            ErrorKind::Malformed,
        ),
        (
            b"{\"version\":2,\"request\":{\"type\":\"status\"}}",
            ErrorKind::Version,
        ),
        (
            b"{\"version\":\"1\",\"request\":{\"type\":\"status\"}}",
            ErrorKind::Version,
        ),
        (nested.as_bytes(), ErrorKind::Malformed),
    ];
    for (line, kind) in cases {
        let r = exchange(&mut conn, line);
        assert_eq!(
            error_kind(&r),
            Some(kind),
            "{}",
            String::from_utf8_lossy(&line[..line.len().min(80)])
        );
        assert_eq!(r.version, proto::VERSION);
    }
    // The same connection still works, and so does the daemon.
    let ok = exchange(
        &mut conn,
        proto::encode_request(&Request::Status)
            .trim_end()
            .as_bytes(),
    );
    assert!(
        matches!(ok.outcome, Outcome::Ok(Reply::Status(_))),
        "{ok:?}"
    );
    assert_eq!(d.generation(), 1, "nothing was changed");

    // A line longer than the limit is answered, then the connection is closed.
    let mut long = UnixStream::connect(d.socket()).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent <= MAX_LINE {
        if long.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    long.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    long.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("longer than"), "{answer}");
    assert!(matches!(d.call(Request::Status), Ok(Reply::Status(_))));
}

#[test]
fn many_clients_at_once_are_told_the_daemon_is_busy() {
    let d = Daemon::edge();
    let held: Vec<UnixStream> = (0..16)
        .map(|_| {
            let s = UnixStream::connect(d.socket()).unwrap();
            // Each is served once answered: then its thread surely holds a slot.
            let mut r = BufReader::new(s.try_clone().unwrap());
            (&s).write_all(proto::encode_request(&Request::Status).as_bytes())
                .unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            s
        })
        .collect();
    let e = refusal(d.call(Request::Status));
    assert_eq!(e.kind, ErrorKind::Busy);
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match d.call(Request::Status) {
            Ok(Reply::Status(_)) => break,
            _ if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            other => panic!("still busy: {other:?}"),
        }
    }
}

// ---- reload --------------------------------------------------------------------------------

#[test]
fn reload_applies_the_file_whole_or_refuses_it_whole() {
    let d = Daemon::edge();
    let file = d.config_path();
    let text = std::fs::read_to_string(&file).unwrap();
    changed(d.call(set_weights(1, 3)));
    assert_eq!(changed(d.call(Request::Reload)), 3);
    assert_eq!(d.weights(), [1, 2], "unsaved runtime changes are gone");

    std::fs::write(&file, text.replace("weight = 2", "weight = 2000")).unwrap();
    let e = refusal(d.call(Request::Reload));
    assert!(
        e.message
            .ends_with("is refused; the running configuration stays"),
        "{e}"
    );
    let want = format!(
        "{}:30: peer[0].link[1].weight: link isp2: weight 2000 is out of range",
        file.display()
    );
    assert!(e.problems[0].starts_with(&want), "{e}\nwanted {want}");
    assert_eq!((d.generation(), d.weights()), (3, vec![1, 2]));

    std::fs::write(&file, text.replace("wan2", "wan3")).unwrap();
    let e = refusal(d.call(Request::Reload));
    assert_eq!(
        e.problems,
        ["interface: the interfaces (names and order) differ"]
    );

    std::fs::write(&file, text.replace("edge.key", "missing.key")).unwrap();
    let e = refusal(d.call(Request::Reload));
    assert!(e.problems[0].contains("private_key_file"), "{e}");

    std::fs::write(
        &file,
        text.replace("mode = \"packet\"", "mode = \"flow\"")
            .replace("weight = 1", "weight = 5"),
    )
    .unwrap();
    assert_eq!(changed(d.call(Request::Reload)), 4);
    assert_eq!(d.weights(), [5, 2]);
    assert_eq!(d.shared.snapshot.load().mode, BondMode::Flow);
}

// ---- metrics -------------------------------------------------------------------------------

fn http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn metrics_are_served_over_http() {
    let d = Daemon::edge();
    d.stats[0].links[0].rx_bytes.add(1234);
    changed(d.call(link_state("isp1", LinkState::Down)));
    let r = http(d.metrics, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    for want in [
        "braid_link_rx_bytes_total{peer=\"hub\",link=\"isp1\"} 1234\n",
        "braid_link_up{peer=\"hub\",link=\"isp1\"} 0\n",
        "braid_link_weight{peer=\"hub\",link=\"isp1\"} 1\n",
        "braid_interface_tx_dropped_total{interface=\"wan2\"} 0\n",
        "braid_config_generation 2\n",
        "# TYPE braid_drops_total counter\n",
        "braid_info{role=\"edge\",version=\"",
    ] {
        assert!(body.contains(want), "{want:?} missing from\n{body}");
    }
    // Every sample line is `name{labels} value` or `name value`, every counter ends in _total.
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(name.starts_with("braid_"), "{line}");
    }
    for line in body.lines().filter(|l| l.starts_with("# TYPE")) {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(
            parts[3] == "counter",
            parts[2].ends_with("_total"),
            "{line}"
        );
    }
    assert!(http(d.metrics, "GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(http(d.metrics, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    assert!(http(d.metrics, "\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
}

/// Two workers whose every counter holds its own value (worker `w`, field `n`: `w * 1000 + n`).
fn counted_workers() -> Vec<Arc<WorkerStats>> {
    (1..=2u64)
        .map(|w| {
            let s = WorkerStats::default();
            let base = w * 1000;
            for (n, l) in (0u64..).step_by(4).zip(&s.links) {
                l.tx_packets.add(base + n);
                l.tx_bytes.add(base + n + 1);
                l.rx_packets.add(base + n + 2);
                l.rx_bytes.add(base + n + 3);
            }
            for (n, p) in (0u64..).step_by(5).zip(&s.ports) {
                p.rx_packets.set(base + n);
                p.rx_bytes.set(base + n + 1);
                p.tx_packets.set(base + n + 2);
                p.tx_bytes.set(base + n + 3);
                p.tx_dropped.set(base + n + 4);
            }
            s.forwarded.add(base + 500);
            s.local.add(base + 501);
            s.icmp_errors.add(base + 502);
            s.nat.sessions.set(base + 510);
            s.nat.created.add(base + 511);
            s.nat.expired.add(base + 512);
            s.nat.translated_out.add(base + 513);
            s.nat.translated_in.add(base + 514);
            s.handed_off.add(base + 515);
            s.reorder.in_order.add(base + 516);
            s.reorder.repaired.add(base + 517);
            s.reorder.late.add(base + 518);
            s.reorder.given_up.add(base + 519);
            // Held 0.1, 1.5, 30 and 300 ms.
            for ms10 in [1, 15, 300, 3000] {
                s.reorder.held_for(ms10 * 100_000);
            }
            for (n, d) in (600u64..).zip(&s.drops) {
                d.add(base + n);
            }
            Arc::new(s)
        })
        .collect()
}

/// The metrics of `text` at `generation` and 12.3456 s of uptime, the version replaced by `VERSION`.
fn rendered(text: &str, macs: &[Mac], generation: u64) -> String {
    let (_dir, _, cfg) = lab_config(text);
    let snap = Snapshot::build(&cfg, macs, &Secrets::load(&cfg).unwrap(), generation).unwrap();
    // The first link has had probes: three answered after 12.5, 14.5 and 12.5 ms, one
    // lost, and a report from the peer.
    let t = crate::health::Timing::default();
    let mut m = snap.peers[0].links[0].health.lock();
    let ms = 1_000_000;
    for (i, rtt) in [Some(12_500_000), Some(14_500_000), Some(12_500_000), None]
        .into_iter()
        .enumerate()
    {
        let now = 1000 * ms + i as u64 * 50 * ms;
        let (seq, tx) = m.probe_due(now, &t).unwrap();
        if let Some(rtt) = rtt {
            m.on_reply(tx + rtt, seq, tx, tx + 6 * ms, &t);
        }
    }
    m.on_peer_clock(2000 * ms, 500 * ms, 0);
    m.on_peer_clock(3000 * ms, 1500 * ms, 25_000_000);
    m.tick(1400 * ms, &t);
    drop(m);
    let uptime = std::time::Duration::from_micros(12_345_600);
    super::metrics::render(&snap, &counted_workers(), uptime).replace(
        &format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
        "version=\"VERSION\"",
    )
}

#[test]
fn metrics_text_is_unchanged() {
    let edge = EDGE.replacen("weight = 1\n", "weight = 1\nstate = \"down\"\n", 1);
    assert_eq!(
        rendered(&edge, &EDGE_MACS, 7),
        include_str!("testdata/metrics_edge.prom")
    );
    let second = "[[peer]]\nname = \"e\\\"dge\\\\2\"\npublic_key = \"EDGE2\"\n\
                  allowed = [\"198.18.2.0/24\"]\n[[peer.link]]\nname = \"isp1\"\n\
                  interface = \"wan0\"\ngateway = \"203.0.113.1\"\nremote = \"198.18.21.2:7420\"\n"
        .replace("EDGE2", &edge2_public());
    let hub = HUB.replacen("[[route]]", &format!("{second}[[route]]"), 1);
    assert_eq!(
        rendered(&hub, &[HUB_MAC], 1),
        include_str!("testdata/metrics_hub.prom")
    );
}

/// A runtime (no socket) over the edge daemon `d`'s file and state.
fn runtime_of(d: &Daemon) -> Runtime {
    let cfg = Config::load(&d.config_path()).unwrap();
    let secrets = Secrets::load(&cfg).unwrap();
    Runtime::new(
        cfg,
        Path::new(&d.config_path()),
        EDGE_MACS.to_vec(),
        secrets,
        Arc::clone(&d.shared),
    )
}

#[test]
fn a_runtime_without_a_socket_refuses_reads_as_changes() {
    let d = Daemon::edge();
    let mut rt = runtime_of(&d);
    let e = rt.apply(&Request::Status).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert_eq!(rt.apply(&set_weights(3, 3)).unwrap().generation, 2);
}

#[test]
fn a_hub_with_several_edges_needs_the_peer_named() {
    let second = "[[peer]]\nname = \"edge2\"\npublic_key = \"EDGE2\"\n\
                  allowed = [\"198.18.2.0/24\"]\n[[peer.link]]\nname = \"isp1\"\n\
                  interface = \"wan0\"\ngateway = \"203.0.113.1\"\nremote = \"198.18.21.2:7420\"\n"
        .replace("EDGE2", &edge2_public());
    let text = HUB.replacen("[[route]]", &format!("{second}[[route]]"), 1);
    let d = Daemon::start(&text, &[HUB_MAC]);
    let e = refusal(d.call(link_state("isp1", LinkState::Down)));
    assert_eq!(
        e.message,
        "there are several peers (edge1, edge2); say which with --peer"
    );
    let edge2_down = Request::SetLinkState {
        peer: Some("edge2".into()),
        link: "isp1".into(),
        state: LinkState::Down,
    };
    let e = refusal(d.call(edge2_down));
    assert!(
        e.problems[0].starts_with("peer[1].link: peer edge2: every link"),
        "{e}"
    );
    let edge1_weights = Request::SetWeights {
        peer: Some("edge1".into()),
        weights: vec![LinkWeight {
            link: "isp1".into(),
            weight: 7,
        }],
    };
    assert_eq!(changed(d.call(edge1_weights)), 2);
    let snap = d.shared.snapshot.load();
    let weights: Vec<Vec<u32>> = snap
        .peers
        .iter()
        .map(|p| p.links.iter().map(|l| l.weight).collect())
        .collect();
    assert_eq!(weights, [vec![7, 2], vec![1]]);
}

#[test]
fn nat_lists_the_sessions_the_workers_hold() {
    let edge_d = Daemon::edge();
    let hub_d = Daemon::start(braid_testkit::HUB_MASQUERADE, &[HUB_MAC]);
    let Ok(Reply::Nat(n)) = edge_d.call(Request::Nat {
        address: None,
        limit: None,
    }) else {
        panic!()
    };
    assert!(!n.enabled && n.masquerades.is_empty() && n.sessions.is_empty());

    edge_d.shared.pair_with(&hub_d.shared, S).unwrap();
    let mut edge = Pipeline::new(
        Arc::clone(&edge_d.shared),
        Lane(0),
        7,
        Arc::clone(&edge_d.stats[0]),
    );
    let mut hub = Pipeline::new(
        Arc::clone(&hub_d.shared),
        Lane(0),
        7,
        Arc::clone(&hub_d.stats[0]),
    );
    for (d, port, gw) in [
        (&edge_d, 1, "198.18.11.1"),
        (&edge_d, 2, "198.18.12.1"),
        (&hub_d, 0, "203.0.113.1"),
    ] {
        d.shared
            .neighbors
            .learn(port, gw.parse().unwrap(), GW_MAC, S);
    }
    for (_, mut f) in send(&mut edge, 3) {
        f[..6].copy_from_slice(&HUB_MAC);
        let (port, out) = run(&mut hub, 0, &f, S).expect("forwarded to the internet");
        assert_eq!(port, 0);
        assert_eq!(&out[26..30], &[203, 0, 113, 2], "masqueraded");
    }
    // The worker answers queries between batches.
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = Arc::clone(&stop);
        let mail = Arc::clone(&hub_d.mail);
        std::thread::spawn(move || {
            let mut now = S;
            while !stop.load(Ordering::Relaxed) {
                now += 1_000_000;
                hub.begin_batch(now);
                mail.serve(&mut hub);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let nat = |address: &str, limit| match hub_d.call(Request::Nat {
        address: Some(address.parse().unwrap()),
        limit,
    }) {
        Ok(Reply::Nat(n)) => n,
        other => panic!("{other:?}"),
    };
    let n = nat("198.18.1.2", Some(2));
    assert!(n.enabled);
    assert_eq!(n.masquerades.len(), 1);
    assert_eq!(n.masquerades[0].interface, "wan0");
    assert_eq!(n.masquerades[0].addresses, [Ipv4Addr::new(203, 0, 113, 2)]);
    assert_eq!(n.counters.created, 3);
    assert_eq!(n.counters.translated_out, 3);
    assert_eq!(n.sessions.len(), 2);
    assert!(n.truncated, "three sessions, two listed");
    let s = &n.sessions[0];
    assert_eq!(
        (s.interface.as_str(), s.protocol.as_str(), s.state.as_str()),
        ("wan0", "udp", "udp")
    );
    assert_eq!(s.inside.to_string(), "198.18.1.2:4000");
    assert_eq!(*s.outside.ip(), Ipv4Addr::new(203, 0, 113, 2));
    assert!(s.remaining_ms > 0);
    assert_eq!(n.sessions[1].inside.port(), 4001);
    let all = nat(&s.outside.ip().to_string(), None);
    assert_eq!((all.sessions.len(), all.truncated), (3, false));
    let none = nat("198.19.0.1", None);
    assert!(none.sessions.is_empty() && !none.truncated);
    let Ok(Reply::Metrics(m)) = hub_d.call(Request::Metrics) else {
        panic!()
    };
    assert!(
        m.text.contains("braid_nat_sessions{worker=\"0\"} 3\n"),
        "{}",
        m.text
    );
    assert!(m
        .text
        .contains("braid_nat_sessions_created_total{worker=\"0\"} 3\n"));
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();
}

#[test]
fn the_runtime_follows_the_kernels_address_of_an_uplink() {
    use crate::io::host::HostAddress;
    use crate::kernel::{DefaultRoute, KernelView};
    let text = EDGE
        .replacen(
            "address = \"198.18.11.2/24\"",
            "address = \"kernel\"\nmode = \"shared\"",
            1,
        )
        .replacen("gateway = \"198.18.11.1\"\n", "", 1);
    let d = Daemon::start(&text, &EDGE_MACS);
    let mut rt = runtime_of(&d);
    let lease = |addr: &str| KernelView {
        addresses: vec![HostAddress {
            interface: "wan1".into(),
            net: addr.parse().unwrap(),
        }],
        routes: vec![DefaultRoute {
            interface: "wan1".into(),
            via: Ipv4Addr::new(198, 18, 11, 1),
            metric: 0,
        }],
        neighbours: Vec::new(),
    };
    let isp1 = |s: &Snapshot| {
        let l = &s.peers[0].links[0];
        (s.ports[1].addr, l.gateway, l.state)
    };
    let generation = d.shared.snapshot.load().generation;
    let log = rt.follow(lease("198.18.11.7/24"));
    assert!(log[0].contains("wan1 198.18.11.7/24 (kernel)"), "{log:?}");
    let snap = d.shared.snapshot.load();
    assert_eq!(snap.generation, generation + 1);
    let gateway = Some(Ipv4Addr::new(198, 18, 11, 1));
    assert_eq!(
        isp1(&snap),
        (Ipv4Addr::new(198, 18, 11, 7), gateway, LinkState::Up)
    );
    // The same view again changes nothing; a new lease is a new snapshot.
    assert!(rt.follow(lease("198.18.11.7/24")).is_empty());
    assert_eq!(d.shared.snapshot.load().generation, generation + 1);
    rt.follow(lease("198.18.11.9/24"));
    assert_eq!(
        isp1(&d.shared.snapshot.load()).0,
        Ipv4Addr::new(198, 18, 11, 9)
    );
    // The lease gone: no address, isp1 down; runtime changes keep what the kernel gave.
    let log = rt.follow(KernelView::default());
    assert!(log.iter().any(|l| l.contains("no IPv4 address")), "{log:?}");
    assert_eq!(
        isp1(&d.shared.snapshot.load()),
        (Ipv4Addr::UNSPECIFIED, None, LinkState::Down)
    );
    rt.follow(lease("198.18.11.9/24"));
    rt.apply(&set_weights(3, 3)).unwrap();
    let snap = d.shared.snapshot.load();
    assert_eq!(
        isp1(&snap),
        (Ipv4Addr::new(198, 18, 11, 9), gateway, LinkState::Up)
    );
    assert_eq!(snap.peers[0].links[0].weight, 3);
    assert_eq!(rt.config().interfaces[1].address.net(), None, "as written");
}
