//! The bond, end to end, in the namespace lab (`tools/braid-lab`): a LAN host behind the edge braidd,
//! two uplinks through a kernel "internet", the hub braidd, and an internet host.
//!
//! Every test builds its own lab under its own prefix and tears it down when it ends, failed or not.
//! They need root (network namespaces); without it they are skipped, or fail if `CI` or `BRAID_LAB=1`
//! is set (`braid_testkit::lab`). `braidd` and `braid-xfer` are taken from the directory of the test
//! binary's profile (target/<profile>/).

mod common;

use braid_testkit::lab::{can_run, Need};
use common::{args, braid_lab, exec, idle_link_packets, sh, text, xfer, Lab, INET_HOST};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::Duration;

/// Allowed relative deviation of the per-link packet ratio from the weights' ratio.
const RATIO_TOLERANCE: f64 = 0.02;

// ---- harness -------------------------------------------------------------------------------------

/// The options of `braid-lab up` a test varies.
#[derive(Debug, Clone)]
struct LabOpts {
    /// braidd workers; the veths get as many queues, so that every queue is served.
    workers: usize,
    /// Bond mode: "packet" or "flow".
    mode: &'static str,
    /// Weights of isp1 and isp2.
    weights: (u32, u32),
    /// The hub masquerades the LAN; the internet has no route back to it.
    nat: bool,
}

impl Default for LabOpts {
    fn default() -> Self {
        LabOpts {
            workers: 1,
            mode: "packet",
            weights: (1, 2),
            nat: false,
        }
    }
}

impl Lab {
    /// Builds the lab with `opts` under `prefix`.
    fn new(prefix: &str, opts: &LabOpts) -> Lab {
        let (w, (w1, w2)) = (opts.workers, opts.weights);
        let nat = if opts.nat { " --nat" } else { "" };
        Lab::up(
            prefix.to_string(),
            &format!(
                "--queues {w} --workers {w} --mode {} --weights {w1},{w2}{nat}",
                opts.mode
            ),
        )
    }

    /// Counters of the two uplinks as `net` sees them: (isp1 = e1, isp2 = e2).
    fn uplink_counters(&self) -> (Counters, Counters) {
        let net = self.ns("net");
        (link_counters(&net, "e1"), link_counters(&net, "e2"))
    }

    /// A byte-exact TCP transfer of `bytes` each way from the LAN host to a server on the internet
    /// host; returns the client's and the server's reports after checking both say ok.
    fn transfer(&self, bytes: u64) -> (Value, Value) {
        self.transfer_on(5001, bytes)
    }

    /// [`Lab::transfer`] to a server on `port`.
    fn transfer_on(&self, port: u16, bytes: u64) -> (Value, Value) {
        let server = Server::start(self, port);
        let send = format!(
            "{} send --to {INET_HOST}:{port} --bytes {bytes} --timeout 120",
            xfer()
        );
        let out = exec(&self.ns("lan"), &args(&send));
        let client: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            self.fail(&format!("client report unreadable ({e}):\n{}", text(&out)))
        });
        if client["ok"] != true {
            self.fail(&format!("transfer failed: client {client}"));
        }
        let served = server.finish();
        if served["ok"] != true {
            self.fail(&format!(
                "transfer failed: client {client}\nserver {served}"
            ));
        }
        (client, served)
    }
}

/// A `braid-xfer serve --once` on the internet host, killed on drop if still running.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts the server and waits for its "listening" line.
    fn start(lab: &Lab, port: u16) -> Server {
        let listen = format!("{INET_HOST}:{port}");
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.ns("inet"),
                xfer(),
                "serve",
                "--listen",
                &listen,
            ])
            .args(["--once", "--timeout", "120"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn braid-xfer serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Server {
            child,
            stdout: BufReader::new(stdout),
        };
        let first = server.line();
        assert_eq!(first["event"], "listening", "server did not start: {first}");
        server
    }

    fn line(&mut self) -> Value {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read server output");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("server said {line:?}: {e}"))
    }

    /// The server's report of its one connection.
    fn finish(mut self) -> Value {
        let done = self.line();
        assert_eq!(done["event"], "done", "{done}");
        done
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The kernel's packet and byte counters of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counters {
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
    tx_bytes: u64,
}

impl Counters {
    /// What was counted since `before`.
    fn since(self, before: Counters) -> Counters {
        Counters {
            rx_packets: self.rx_packets - before.rx_packets,
            rx_bytes: self.rx_bytes - before.rx_bytes,
            tx_packets: self.tx_packets - before.tx_packets,
            tx_bytes: self.tx_bytes - before.tx_bytes,
        }
    }
}

/// Reads `dev`'s counters in namespace `ns` from /sys/class/net/<dev>/statistics.
fn link_counters(ns: &str, dev: &str) -> Counters {
    let files = ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes"]
        .map(|f| format!("/sys/class/net/{dev}/statistics/{f}"));
    let mut args = vec!["cat"];
    args.extend(files.iter().map(String::as_str));
    let out = exec(ns, &args);
    assert!(
        out.status.success(),
        "counters of {ns}/{dev}: {}",
        text(&out)
    );
    let n: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|w| w.parse().expect("a counter is a number"))
        .collect();
    assert_eq!(n.len(), 4, "counters of {ns}/{dev}: {}", text(&out));
    Counters {
        rx_packets: n[0],
        rx_bytes: n[1],
        tx_packets: n[2],
        tx_bytes: n[3],
    }
}

/// A lab prefix unique to this test run and test.
fn prefix(test: &str) -> String {
    format!("bl{}-{test}", std::process::id())
}

/// Checks that the packets of two links split as `w1:w2` (relative deviation of the ratio within
/// [`RATIO_TOLERANCE`]) over at least 10,000 packets.
fn assert_split(what: &str, isp1: u64, isp2: u64, (w1, w2): (u32, u32)) {
    assert!(
        isp1 + isp2 >= 10_000,
        "{what}: only {} packets",
        isp1 + isp2
    );
    let want = f64::from(w2) / f64::from(w1);
    let got = isp2 as f64 / isp1.max(1) as f64;
    assert!(
        (got - want).abs() / want <= RATIO_TOLERANCE,
        "{what}: isp1 {isp1} isp2 {isp2} packets: ratio {got:.4}, weights want {want:.4}"
    );
}

/// A stand-in for braidd: tells where it runs, says ready, exits on SIGTERM.
const FAKE_BRAIDD: &str = r#"#!/bin/sh
echo "$1 $2 in $(ip netns identify)"
echo ready
trap 'echo stopping on SIGTERM; exit 0' TERM
while :; do sleep 0.1; done
"#;

// ---- the lab alone -------------------------------------------------------------------------------

#[test]
fn lab_configs_parse_as_braidd_configs() {
    use braid_control::config::{BondMode, Config, PeerConfig, Role};
    use braid_control::key::PrivateKey;
    use std::os::unix::fs::PermissionsExt;
    struct RemoveDir(PathBuf);
    impl Drop for RemoveDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let prefix = prefix("cfg");
    let run_dir = RemoveDir(Path::new("/tmp/braid-lab").join(&prefix));
    let out = braid_lab(&args(&format!(
        "config --prefix {prefix} --mode flow --weights 3,5 --workers 2"
    )));
    assert!(out.status.success(), "{}", text(&out));

    let read = |name: &str| -> Config {
        let s = std::fs::read_to_string(run_dir.0.join(name)).expect("config written");
        toml::from_str(&s).unwrap_or_else(|e| panic!("{name} is not a braidd config: {e}\n{s}"))
    };
    let (edge, hub) = (read("edge.toml"), read("hub.toml"));

    // Each end has its own private key, and the other end names its public key.
    let keys = ["edge.key", "hub.key"].map(|name| {
        let path = run_dir.0.join(name);
        let text = std::fs::read_to_string(&path).expect("key written");
        assert!(
            text.len() == 45 && text.ends_with("=\n"),
            "{name}: {text:?}"
        );
        let mode = std::fs::metadata(&path).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
        let key = PrivateKey::load(&path).unwrap_or_else(|e| panic!("{e}"));
        (path, key.public())
    });
    let [(edge_key, edge_public), (hub_key, hub_public)] = keys;
    assert_ne!(edge_public, hub_public);
    assert_eq!(edge.private_key_file, edge_key);
    assert_eq!(hub.private_key_file, hub_key);

    let head = |c: &Config| (c.role, c.workers, c.tunnel_port, c.bond.mode);
    assert_eq!(head(&edge), (Role::Edge, 2, 7420, BondMode::Flow));
    assert_eq!(head(&hub), (Role::Hub, 2, 7420, BondMode::Flow));
    let ifaces = |c: &Config| -> Vec<String> {
        c.interfaces
            .iter()
            .map(|i| format!("{} {}", i.name, i.address))
            .collect()
    };
    assert_eq!(
        ifaces(&edge),
        [
            "lan0 198.18.1.1/24",
            "wan1 198.18.11.2/24",
            "wan2 198.18.12.2/24"
        ]
    );
    assert_eq!(ifaces(&hub), ["wan0 203.0.113.2/28"]);

    let peer = |p: &PeerConfig| -> Vec<String> {
        let allowed: Vec<String> = p.allowed.iter().map(ToString::to_string).collect();
        let mut v = vec![format!(
            "{} {} {:?} {}",
            p.name,
            p.public_key,
            p.preshared_key_file,
            allowed.join(",")
        )];
        v.extend(p.links.iter().map(|l| {
            format!(
                "{} {} {:?} {:?} {}",
                l.name, l.interface, l.gateway, l.remote, l.weight
            )
        }));
        v
    };
    assert_eq!(edge.peers.len(), 1);
    assert_eq!(
        peer(&edge.peers[0]),
        [
            format!("hub {hub_public} None 0.0.0.0/0"),
            "isp1 wan1 Some(198.18.11.1) Some(203.0.113.2:7420) 3".into(),
            "isp2 wan2 Some(198.18.12.1) Some(203.0.113.2:7420) 5".into(),
        ]
    );
    assert_eq!(hub.peers.len(), 1);
    assert_eq!(
        peer(&hub.peers[0]),
        [
            format!("edge1 {edge_public} None 198.18.1.0/24"),
            "isp1 wan0 Some(203.0.113.1) Some(198.18.11.2:7420) 3".into(),
            "isp2 wan0 Some(203.0.113.1) Some(198.18.12.2:7420) 5".into(),
        ]
    );

    let rules = |c: &Config| -> Vec<String> {
        c.rules
            .iter()
            .map(|r| format!("{} {}", r.from, r.table))
            .collect()
    };
    assert_eq!(
        rules(&edge),
        [
            "198.18.1.0/24 bond",
            "198.18.11.2/32 isp1",
            "198.18.12.2/32 isp2"
        ]
    );
    assert!(hub.rules.is_empty());
    let routes = |c: &Config| -> Vec<String> {
        c.routes
            .iter()
            .map(|r| format!("{} {} {:?} {:?} {:?}", r.table, r.to, r.via, r.dev, r.peer))
            .collect()
    };
    assert_eq!(
        routes(&edge),
        [
            r#"bond 0.0.0.0/0 None None Some("hub")"#,
            r#"isp1 0.0.0.0/0 Some(198.18.11.1) Some("wan1") None"#,
            r#"isp2 0.0.0.0/0 Some(198.18.12.1) Some("wan2") None"#,
        ]
    );
    assert_eq!(
        routes(&hub),
        [
            r#"main 198.18.1.0/24 None None Some("edge1")"#,
            r#"main 0.0.0.0/0 Some(203.0.113.1) Some("wan0") None"#,
        ]
    );
}

/// The lab's wiring without braid: the kernel stands in for braid on the edge's and hub's NICs, and
/// every wire carries pings; the uplinks' counters see them; `down` leaves nothing behind.
#[test]
fn lab_wiring_without_braid() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::new(
        &prefix("wire"),
        &LabOpts {
            workers: 2,
            ..LabOpts::default()
        },
    );
    let [lan, edge, net, hub, inet] = ["lan", "edge", "net", "hub", "inet"].map(|r| lab.ns(r));

    // braid's NICs: two queues, no kernel address; the ends that feed braid: no offloads.
    assert_eq!(
        sh(&edge, "ls /sys/class/net/lan0/queues")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["rx-0", "rx-1", "tx-0", "tx-1"]
    );
    for ns in [&edge, &hub] {
        let addrs = sh(ns, "ip -4 -o addr show");
        assert!(
            addrs.lines().all(|l| l.contains(" lo ")),
            "{ns} has kernel addresses:\n{addrs}"
        );
    }
    for (ns, dev) in [
        (&lan, "eth0"),
        (&net, "e1"),
        (&net, "e2"),
        (&net, "h0"),
        (&inet, "eth0"),
    ] {
        let k = sh(ns, &format!("ethtool -k {dev}"));
        for feature in [
            "tx-checksumming: off",
            "tcp-segmentation-offload: off",
            "generic-segmentation-offload: off",
        ] {
            assert!(k.contains(feature), "{ns}/{dev}: no {feature:?}");
        }
    }

    // The internet reaches its host.
    sh(&net, &format!("ping -c 2 -i 0.2 -W 2 {INET_HOST}"));

    // The kernel in braid's place: edge routes between the LAN and both uplinks, the hub answers.
    sh(&edge, "ip addr add 198.18.1.1/24 dev lan0");
    sh(&edge, "ip addr add 198.18.11.2/24 dev wan1");
    sh(&edge, "ip addr add 198.18.12.2/24 dev wan2");
    sh(&edge, "sysctl -qw net.ipv4.ip_forward=1");
    sh(&hub, "ip addr add 203.0.113.2/28 dev wan0");
    sh(&hub, "ip route add default via 203.0.113.1");
    // net reaches the LAN over each uplink in turn, chosen by the source address.
    sh(&net, "ip rule add from 198.18.11.1 table 11");
    sh(&net, "ip route add 198.18.1.0/24 via 198.18.11.2 table 11");
    sh(&net, "ip rule add from 198.18.12.1 table 12");
    sh(&net, "ip route add 198.18.1.0/24 via 198.18.12.2 table 12");

    let before = lab.uplink_counters();
    sh(&net, "ping -c 3 -i 0.2 -W 2 -I 198.18.11.1 198.18.1.2");
    let mid = lab.uplink_counters();
    sh(&net, "ping -c 4 -i 0.2 -W 2 -I 198.18.12.1 198.18.1.2");
    let after = lab.uplink_counters();
    let (e1, e2) = (mid.0.since(before.0), after.1.since(mid.1));
    // 98 bytes: an echo of 56 data bytes in IPv4 and Ethernet.
    assert!(
        e1.tx_packets >= 3 && e1.rx_packets >= 3 && e1.rx_bytes >= 3 * 98,
        "isp1 {e1:?}"
    );
    assert!(
        e2.tx_packets >= 4 && e2.rx_packets >= 4 && e2.tx_bytes >= 4 * 98,
        "isp2 {e2:?}"
    );
    sh(&net, "ping -c 2 -i 0.2 -W 2 203.0.113.2");
    sh(&hub, &format!("ping -c 2 -i 0.2 -W 2 {INET_HOST}"));

    // braid-lab's own counters agree with the kernel's.
    let raw = lab.cmd("counters --raw");
    let rows: Vec<Vec<&str>> = raw
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.len() == 2 && rows[0].len() == 5 && rows[0][0] == "isp1" && rows[1][0] == "isp2",
        "{raw}"
    );
    let rx1: u64 = rows[0][1].parse().expect("a number");
    assert!(rx1 >= after.0.rx_packets, "{raw} vs {after:?}");

    // Removal is clean, and repeatable.
    let (prefix, run_dir) = (lab.prefix.clone(), lab.run_dir());
    drop(lab);
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&list.stdout);
    let left: Vec<&str> = list
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}-")))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    assert!(!run_dir.exists(), "{} left", run_dir.display());
    let again = braid_lab(&["down", "--prefix", &prefix]);
    assert!(again.status.success(), "{}", text(&again));
}

/// `start` runs the daemon in the hub's and the edge's namespaces with their configs, refuses to run
/// it twice, and `stop` ends it with SIGTERM.
#[test]
fn lab_starts_and_stops_the_daemons() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::new(&prefix("life"), &LabOpts::default());
    let fake = lab.run_dir().join("fake-braidd");
    std::fs::write(&fake, FAKE_BRAIDD).expect("write the stand-in daemon");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let fake = fake.display();

    lab.cmd(&format!("start --braidd {fake}"));
    let status = lab.cmd("status");
    assert!(
        status.contains("braidd (hub): running") && status.contains("braidd (edge): running"),
        "{status}"
    );
    let again = braid_lab(&args(&format!(
        "start --prefix {} --braidd {fake}",
        lab.prefix
    )));
    assert!(
        !again.status.success(),
        "a second start must refuse:\n{}",
        text(&again)
    );

    lab.cmd("stop");
    for role in ["hub", "edge"] {
        let log = std::fs::read_to_string(lab.run_dir().join(format!("{role}.log"))).expect("log");
        let config = lab.run_dir().join(format!("{role}.toml"));
        let want = format!("--config {} in {}-{role}", config.display(), lab.prefix);
        assert!(log.contains(&want), "{role} log lacks {want:?}:\n{log}");
        assert!(log.contains("stopping on SIGTERM"), "{role} log:\n{log}");
    }
    let status = lab.cmd("status");
    assert!(
        status.contains("braidd (hub): not running")
            && status.contains("braidd (edge): not running"),
        "{status}"
    );
}

// ---- through braid -------------------------------------------------------------------------------

#[test]
fn ping_from_lan_host_to_internet_host() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::new(&prefix("ping"), &LabOpts::default());
    lab.start_braid();
    lab.wait_for_path();
    let out = exec(
        &lab.ns("lan"),
        &["ping", "-c", "5", "-i", "0.2", "-W", "2", INET_HOST],
    );
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    if !said.contains("5 packets transmitted, 5 received") {
        lab.fail(&format!("not all pings answered:\n{said}"));
    }
}

fn tcp_both_ways(workers: usize) {
    let lab = Lab::new(
        &prefix(&format!("tcp{workers}")),
        &LabOpts {
            workers,
            ..LabOpts::default()
        },
    );
    lab.start_braid();
    lab.wait_for_path();
    let bytes = 10_000_000;
    let (client, served) = lab.transfer(bytes);
    assert_eq!(client["bytes_up"], bytes, "{client}");
    assert_eq!(client["bytes_down"], bytes, "{client}");
    assert_eq!(served["bytes"], bytes, "{served}");
    // The server saw the LAN host, or the hub's public address once the hub masquerades.
    let peer: std::net::SocketAddr = served["peer"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .expect("server peer");
    let seen = peer.ip();
    assert!(
        seen == "198.18.1.2".parse::<IpAddr>().expect("ip")
            || seen == "203.0.113.2".parse::<IpAddr>().expect("ip"),
        "server saw {seen}"
    );
}

#[test]
fn tcp_10mb_both_ways_one_worker() {
    if can_run(Need::Namespaces) {
        tcp_both_ways(1);
    }
}

#[test]
fn tcp_10mb_both_ways_two_workers() {
    if can_run(Need::Namespaces) {
        tcp_both_ways(2);
    }
}

fn packet_mode_split(workers: usize) {
    let weights = (1, 2);
    let lab = Lab::new(
        &prefix(&format!("pkt{workers}")),
        &LabOpts {
            workers,
            mode: "packet",
            weights,
            nat: false,
        },
    );
    lab.start_braid();
    lab.wait_for_path();
    let before = lab.uplink_counters();
    lab.transfer(20_000_000);
    let after = lab.uplink_counters();
    let (isp1, isp2) = (after.0.since(before.0), after.1.since(before.1));
    // Upstream is the edge's choice (net's rx); downstream the hub's (net's tx towards the edge).
    assert_split("edge -> net", isp1.rx_packets, isp2.rx_packets, weights);
    assert_split("net -> edge", isp1.tx_packets, isp2.tx_packets, weights);
}

#[test]
fn packet_mode_splits_by_weight_one_worker() {
    if can_run(Need::Namespaces) {
        packet_mode_split(1);
    }
}

#[test]
fn packet_mode_splits_by_weight_two_workers() {
    if can_run(Need::Namespaces) {
        packet_mode_split(2);
    }
}

#[test]
fn flow_mode_keeps_one_tcp_flow_on_one_link() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::new(
        &prefix("flow"),
        &LabOpts {
            mode: "flow",
            ..LabOpts::default()
        },
    );
    lab.start_braid();
    lab.wait_for_path();
    let before = lab.uplink_counters();
    let started = std::time::Instant::now();
    lab.transfer(10_000_000);
    let after = lab.uplink_counters();
    let allowed = idle_link_packets(started.elapsed().as_secs_f64());
    let (isp1, isp2) = (after.0.since(before.0), after.1.since(before.1));
    for (what, a, b) in [
        ("edge -> net", isp1.rx_packets, isp2.rx_packets),
        ("net -> edge", isp1.tx_packets, isp2.tx_packets),
    ] {
        let (busy, idle) = (a.max(b), a.min(b));
        assert!(
            busy >= 5_000,
            "{what}: the flow's link carried only {busy} packets (isp1 {a}, isp2 {b})"
        );
        assert!(
            idle <= allowed,
            "{what}: one flow spread over both links: isp1 {a}, isp2 {b}"
        );
    }
}

/// SIGTERM stops braidd cleanly: it exits 0 with its counter report, and no XDP program stays
/// attached to its NICs.
#[test]
fn shutdown_detaches_xdp() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::new(&prefix("stop"), &LabOpts::default());
    lab.start_braid();
    lab.wait_for_path();
    let attached = |ns: &str| sh(ns, "ip -o link show").matches("xdp").count();
    assert!(
        attached(&lab.ns("edge")) >= 3,
        "{}",
        sh(&lab.ns("edge"), "ip -o link show")
    );
    assert!(attached(&lab.ns("hub")) >= 1);
    lab.cmd("stop");
    assert_eq!(
        attached(&lab.ns("edge")),
        0,
        "{}",
        sh(&lab.ns("edge"), "ip -o link show")
    );
    assert_eq!(
        attached(&lab.ns("hub")),
        0,
        "{}",
        sh(&lab.ns("hub"), "ip -o link show")
    );
    let log = lab.logs();
    assert!(
        log.contains("link hub/isp2: tx"),
        "no shutdown report:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

// ---- masquerade ----------------------------------------------------------------------------------

/// The hub masquerades: the internet has no route to the LAN, yet parallel TCP transfers and a UDP
/// exchange from the LAN host work, and the internet host sees only the hub's public address.
fn masquerade(workers: usize) {
    let lab = Lab::new(
        &prefix(&format!("nat{workers}")),
        &LabOpts {
            workers,
            nat: true,
            ..LabOpts::default()
        },
    );
    let routes = sh(&lab.ns("net"), "ip route");
    assert!(
        !routes.contains("198.18.1.0"),
        "the internet must not know the LAN:\n{routes}"
    );
    lab.start_braid();
    lab.wait_for_path();
    let hub: IpAddr = "203.0.113.2".parse().expect("ip");
    let lab_ref = &lab;
    let served: Vec<Value> = thread::scope(|s| {
        let flows: Vec<_> = (0..4u16)
            .map(|i| s.spawn(move || lab_ref.transfer_on(5101 + i, 4_000_000).1))
            .collect();
        flows.into_iter().map(|f| f.join().expect("flow")).collect()
    });
    for report in &served {
        let peer: std::net::SocketAddr = report["peer"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .expect("server peer");
        assert_eq!(peer.ip(), hub, "the internet host saw {peer}");
    }
    // UDP: every datagram echoed, and the echo saw the hub's address.
    let echo = Command::new("ip")
        .args(["netns", "exec", &lab.ns("inet"), xfer(), "udp-echo"])
        .args([
            "--listen",
            &format!("{INET_HOST}:6001"),
            "--count",
            "500",
            "--timeout",
            "20",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn udp-echo");
    let mut echo = KillOnDrop(echo);
    thread::sleep(Duration::from_millis(300));
    let send = format!(
        "{} udp-send --to {INET_HOST}:6001 --count 500 --pps 2000",
        xfer()
    );
    let out = exec(&lab.ns("lan"), &args(&send));
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| lab.fail(&format!("udp-send report ({e}):\n{}", text(&out))));
    assert_eq!(report["received"], 500, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    // The echo exits after its 500th datagram: read everything it said.
    let mut said = String::new();
    if let Some(stdout) = echo.0.stdout.as_mut() {
        std::io::Read::read_to_string(stdout, &mut said).expect("read udp-echo output");
    }
    assert!(said.contains("203.0.113.2:"), "the echo saw: {said}");
    assert!(!said.contains("198.18.1.2"), "a LAN address leaked: {said}");
}

/// Kills a child process when dropped (also on panic).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn masquerade_one_worker() {
    if can_run(Need::Namespaces) {
        masquerade(1);
    }
}

#[test]
fn masquerade_two_workers() {
    if can_run(Need::Namespaces) {
        masquerade(2);
    }
}
