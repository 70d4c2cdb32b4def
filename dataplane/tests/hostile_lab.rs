//! braid under attack in the namespace lab (`tools/braid-lab`, masquerading hub): forged,
//! spoofed and replayed tunnel datagrams sent at the hub from the WAN side are dropped and
//! counted by reason (`braidctl stats --json`) while a TCP transfer through the bond goes on
//! byte-exact; floods of spoofed datagrams and of new flows leave the daemons' memory bounded.
//!
//! Datagrams are sent from inside the lab's namespaces by this test binary itself, started
//! there with `ip netns exec` as [`in_namespace_sender`] (plain UDP sockets: the tunnel's
//! authentication does not look at outer addresses). The attacker holds no key; what it knows
//! of the session, the hub's receiver index, it reads off the wire on the internet router
//! (nftables counters per bit). Real traffic is replayed by the lab's internet router: an
//! nftables `dup` rule copies every tunnel datagram it forwards to the hub.
//! Every lab is built under a prefix unique to the test and run, and taken down when the test
//! ends, failed or not. The tests need root (network namespaces); without it they are skipped, or
//! fail if `CI` or `BRAID_LAB=1` is set (`braid_testkit::lab`). `braidd`, `braidctl` and
//! `braid-xfer` come from target/<profile>/ (scripts/test builds them first).

use braid_control::proto::{self, NatSession, Outcome, Reply};
use braid_dataplane::tunnel::{Header, MsgType, HEADER_LEN, TAG_LEN, VERSION};
use braid_testkit::lab::{can_run, Need};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The hub's tunnel endpoint.
const HUB_TUNNEL: &str = "203.0.113.2:7420";
/// The internet host, where the transfer servers listen.
const INET_HOST: &str = "203.0.113.130";
/// Drop reasons a forged or replayed tunnel datagram is counted under.
const ATTACK_REASONS: [&str; 10] = [
    "truncated",
    "bad_tunnel_header",
    "old_version",
    "unknown_session",
    "unknown_link",
    "bad_tag",
    "replayed",
    "bad_handshake",
    "spoofed",
    "malformed_inner",
];

// ---- harness -------------------------------------------------------------------------------------

/// A masquerading lab that exists while this value does (`down` on drop, also on panic).
struct Lab {
    prefix: String,
}

impl Lab {
    /// Builds and starts the lab `prefix` (one worker per daemon) and waits for its path.
    fn up(test: &str) -> Lab {
        let prefix = format!("bh{}-{test}", std::process::id());
        let _ = braid_lab(&["down", "--prefix", &prefix]);
        let lab = Lab { prefix };
        lab.cmd("up --queues 1 --workers 1 --nat");
        let braidd = bin("braidd");
        let out = braid_lab(&[
            "start",
            "--prefix",
            &lab.prefix,
            "--braidd",
            braidd.to_str().unwrap(),
        ]);
        if !out.status.success() {
            lab.fail(&format!("braid-lab start failed:\n{}", text(&out)));
        }
        lab.wait_for_path();
        lab
    }

    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    fn run_dir(&self) -> PathBuf {
        Path::new("/tmp/braid-lab").join(&self.prefix)
    }

    fn cmd(&self, line: &str) {
        let mut argv: Vec<&str> = line.split_whitespace().collect();
        argv.extend(["--prefix", &self.prefix]);
        let out = braid_lab(&argv);
        assert!(out.status.success(), "braid-lab {line}:\n{}", text(&out));
    }

    fn fail(&self, msg: &str) -> ! {
        let logs: String = ["hub", "edge"]
            .iter()
            .map(|role| {
                let log = std::fs::read_to_string(self.run_dir().join(format!("{role}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                format!(
                    "--- braidd ({role}):\n{}\n",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect();
        panic!("{msg}\n{logs}")
    }

    fn wait_for_path(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if exec(&self.ns("lan"), &["ping", "-c", "1", "-W", "1", INET_HOST])
                .status
                .success()
            {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
        self.fail("the LAN host never reached the internet host through braid");
    }

    /// `braidctl --socket <role>.sock <args> --json`, decoded.
    fn ctl(&self, role: &str, args: &[&str]) -> Reply {
        let socket = self.run_dir().join(format!("{role}.sock"));
        let out = Command::new(bin("braidctl"))
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        if !out.status.success() {
            self.fail(&format!("braidctl {args:?}:\n{}", text(&out)));
        }
        // braidctl prints the reply; the protocol's envelope makes it a response line.
        let line = format!(
            "{{\"version\":{},\"ok\":{}}}",
            proto::VERSION,
            String::from_utf8_lossy(&out.stdout).trim()
        );
        match proto::decode_response(line.as_bytes()).map(|r| r.outcome) {
            Ok(Outcome::Ok(reply)) => reply,
            other => self.fail(&format!("braidctl {args:?}: {other:?}")),
        }
    }

    /// The hub's drops by reason, summed over workers.
    fn hub_drops(&self) -> HashMap<String, u64> {
        match self.ctl("hub", &["stats"]) {
            Reply::Stats(s) => s.drops.into_iter().map(|d| (d.reason, d.count)).collect(),
            other => self.fail(&format!("stats: {other:?}")),
        }
    }

    /// The hub's live NAT sessions.
    fn hub_sessions(&self) -> Vec<NatSession> {
        match self.ctl("hub", &["nat"]) {
            Reply::Nat(n) => n.sessions,
            other => self.fail(&format!("nat: {other:?}")),
        }
    }

    /// Resident memory of a daemon, in KiB.
    fn rss_kib(&self, role: &str) -> u64 {
        let pid =
            std::fs::read_to_string(self.run_dir().join(format!("{role}.pid"))).unwrap_or_default();
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| self.fail(&format!("braidd ({role}) is not running")))
    }

    /// The hub's receiver index of the session the edge sends data with, as a router on the
    /// way sees it: the internet router counts the edge's data messages, and those with
    /// each bit of the index set (nftables raw payload matches, added in one transaction).
    fn receiver_index(&self) -> u32 {
        let net = self.ns("net");
        // Data messages: version and type, 16 bits from the start of the UDP payload.
        let data = format!(
            "ip daddr 203.0.113.2 udp dport 7420 @ih,0,16 {:#06x}",
            u16::from_be_bytes([VERSION, 1])
        );
        let mut rules = format!(
            "table ip braidindex {{\n chain bits {{\n  type filter hook forward priority 0;\n  \
             {data} counter\n"
        );
        for bit in 0..32 {
            rules.push_str(&format!("  {data} @ih,{},1 1 counter\n", 32 + bit));
        }
        rules.push_str(" }\n}\n");
        let file = self.run_dir().join("index.nft");
        std::fs::write(&file, rules).unwrap();
        let mut last = Vec::new();
        for _ in 0..5 {
            nft(&net, &format!("-f {}", file.display()));
            thread::sleep(Duration::from_secs(1));
            let out = exec(&net, &["nft", "-j", "list", "table", "ip", "braidindex"]);
            nft(&net, "delete table ip braidindex");
            // The counters, in rule order: all data messages, then bit 0 (the top) to 31.
            let json = String::from_utf8_lossy(&out.stdout);
            let counts: Vec<u64> = json
                .split("\"packets\": ")
                .skip(1)
                .filter_map(|c| {
                    c.split(|ch: char| !ch.is_ascii_digit())
                        .next()?
                        .parse()
                        .ok()
                })
                .collect();
            let Some((&all, bits)) = counts.split_first() else {
                self.fail(&format!("nft counters: {json}"));
            };
            // Every message carried the same index (no rekey while counting); the list is
            // read rule by rule while traffic flows, so a set bit may count a few more or less.
            let set = |n: u64| n * 10 >= all * 9;
            if all > 0 && bits.len() == 32 && bits.iter().all(|&n| n == 0 || set(n)) {
                return bits.iter().fold(0, |v, &n| v << 1 | u32::from(set(n)));
            }
            last = counts;
        }
        self.fail(&format!(
            "the receiver index could not be read off the wire: counters {last:?}"
        ))
    }

    /// Sends `datagrams` to the hub's tunnel port from the internet router's namespace;
    /// returns how many were sent.
    fn send_to_hub(&self, datagrams: &[Vec<u8>]) -> u64 {
        let file = self.run_dir().join("datagrams");
        let mut bytes = Vec::new();
        for d in datagrams {
            bytes.extend_from_slice(&(d.len() as u16).to_be_bytes());
            bytes.extend_from_slice(d);
        }
        std::fs::write(&file, bytes).unwrap();
        let sent = sender(
            &self.ns("net"),
            &[
                ("BRAID_SEND", "file"),
                ("BRAID_SEND_TO", HUB_TUNNEL),
                ("BRAID_SEND_FILE", file.to_str().unwrap()),
            ],
        );
        assert_eq!(sent, datagrams.len() as u64);
        sent
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = braid_lab(&["down", "--prefix", &self.prefix]);
        if !out.status.success() {
            eprintln!("braid-lab down {} failed:\n{}", self.prefix, text(&out));
        }
    }
}

/// Back-to-back byte-exact TCP transfers from the LAN host until stopped.
struct Transfers {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Vec<Result<u64, String>>>>,
}

impl Transfers {
    /// Starts transfers of `bytes` each way to a server on the internet host.
    fn start(lab: &Lab, bytes: u64) -> Transfers {
        let stop = Arc::new(AtomicBool::new(false));
        let (inet, lan, flag) = (lab.ns("inet"), lab.ns("lan"), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut done = Vec::new();
            for port in 6001.. {
                done.push(transfer(&inet, &lan, port, bytes));
                if flag.load(Ordering::Relaxed) || done.last().is_some_and(Result::is_err) {
                    break;
                }
            }
            done
        });
        Transfers {
            stop,
            thread: Some(thread),
        }
    }

    /// Lets the running transfer finish; the result of each.
    fn finish(mut self) -> Vec<Result<u64, String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Transfers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One transfer of `bytes` each way; Ok(milliseconds) when both ends report it byte-exact.
fn transfer(inet: &str, lan: &str, port: u16, bytes: u64) -> Result<u64, String> {
    let listen = format!("{INET_HOST}:{port}");
    let mut server = Command::new("ip")
        .args(["netns", "exec", inet])
        .arg(bin("braid-xfer"))
        .args(["serve", "--listen", &listen, "--once", "--timeout", "120"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    if !first.contains("listening") {
        let _ = server.kill();
        return Err(format!("server: {first}"));
    }
    let start = Instant::now();
    let client = Command::new("ip")
        .args(["netns", "exec", lan])
        .arg(bin("braid-xfer"))
        .args(["send", "--to", &listen, "--bytes", &bytes.to_string()])
        .args(["--timeout", "120"])
        .output()
        .map_err(|e| e.to_string())?;
    let ms = start.elapsed().as_millis() as u64;
    let done = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = server.kill();
    let _ = server.wait();
    let report = String::from_utf8_lossy(&client.stdout);
    if client.status.success() && report.contains("\"ok\":true") && done.contains("\"ok\":true") {
        Ok(ms)
    } else {
        Err(format!("client {report} server {done}"))
    }
}

/// Runs [`in_namespace_sender`] in namespace `ns` with `env`; what it printed.
fn run_sender(ns: &str, env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args(["--exact", "in_namespace_sender", "--ignored", "--nocapture"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "sender in {ns}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs [`in_namespace_sender`] in namespace `ns` with `env`; the datagrams it sent.
fn sender(ns: &str, env: &[(&str, &str)]) -> u64 {
    let stdout = run_sender(ns, env);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("braid-sender: sent "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("sender in {ns} said: {stdout}"))
}

/// `nft ARGS` (split at spaces) in namespace `ns`; must succeed.
fn nft(ns: &str, args: &str) {
    let argv: Vec<&str> = ["nft"].into_iter().chain(args.split(' ')).collect();
    let out = exec(ns, &argv);
    assert!(out.status.success(), "nft {args}: {}", text(&out));
}

fn exec(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn braid_lab(args: &[&str]) -> Output {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/braid-lab"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A workspace binary from target/<profile>/ (this test runs from target/<profile>/deps/).
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace's binaries first (cargo build --workspace --bins \
         --profile test; scripts/test does)",
        path.display()
    );
    path
}

/// Adds `reason`'s growth between two counter sets.
fn grew(before: &HashMap<String, u64>, after: &HashMap<String, u64>, reason: &str) -> u64 {
    after.get(reason).copied().unwrap_or(0) - before.get(reason).copied().unwrap_or(0)
}

// ---- datagrams -----------------------------------------------------------------------------------

/// A small deterministic generator for attack bytes.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A braid message: `h`, then `body`, then a tag of noise (nobody but the two ends has a key).
fn message(h: Header, body: &[u8], noise: &mut Noise) -> Vec<u8> {
    let mut head = [0u8; HEADER_LEN];
    h.emit(&mut head);
    let mut m = head.to_vec();
    m.extend_from_slice(body);
    m.extend_from_slice(&noise.bytes(TAG_LEN));
    m
}

fn header(lane: u8, link: u8, receiver: u32, counter: u64) -> Header {
    Header {
        msg_type: MsgType::Data,
        link,
        lane,
        receiver,
        counter,
    }
}

/// The attack set against the hub's session `receiver`, and how many datagrams each reason
/// must at least count.
fn attacks(receiver: u32) -> (Vec<Vec<u8>>, Vec<(&'static str, u64)>) {
    let mut noise = Noise(0x5eed_1234_abcd_0001);
    // Far ahead of the real edge's counters (which start at 0 with the session), so the
    // window check would pass and only the tag can refuse them; were a forgery to move the
    // window, the real edge's datagrams would become too old and the transfer would stall.
    let ahead = 1u64 << 50;
    let mut d = Vec::new();
    for _ in 0..100 {
        let n = (noise.next() % 90) as usize;
        d.push(noise.bytes(n));
    }
    for i in 0..100 {
        let body = noise.bytes(40);
        let h = header(0, 0, receiver, ahead + i);
        d.push(message(h, &body, &mut noise));
    }
    for i in 0..50 {
        let body = noise.bytes(40);
        // A receiver index the hub never gave out (the real one with its bits turned).
        let other = receiver.rotate_left(1 + (i % 31) as u32) ^ 0x8000_0001;
        d.push(message(header(0, 0, other, ahead + i), &body, &mut noise));
        d.push(message(
            header(0, 9, receiver, ahead + i),
            &body,
            &mut noise,
        ));
        d.push(message(
            header(200, 0, receiver, ahead + i),
            &body,
            &mut noise,
        ));
        // Version 1, as the old edges sent: version, type, link, lane, sender id 1, sequence.
        let mut v1 = vec![1, 1, 0, 0, 0, 0, 0, 1];
        v1.extend_from_slice(&ahead.to_be_bytes());
        v1.extend_from_slice(&body);
        v1.extend_from_slice(&noise.bytes(TAG_LEN));
        d.push(v1);
    }
    // Handshake-shaped garbage: an initiation nobody's key made.
    for _ in 0..20 {
        let mut init = vec![VERSION, 5, 0, 0];
        init.extend(noise.bytes(braid_dataplane::tunnel::handshake::INITIATION_LEN - 4));
        d.push(init);
    }
    let expect = vec![
        ("bad_tag", 100),
        // Lane 200: no window for it, refused from the header.
        ("bad_tunnel_header", 50),
        ("unknown_session", 50),
        ("unknown_link", 50),
        ("old_version", 50),
        ("bad_handshake", 20),
    ];
    (d, expect)
}

// ---- tests ---------------------------------------------------------------------------------------

/// Started by the lab tests inside a namespace (`ip netns exec`): sends what its environment
/// says and prints `braid-sender: sent N`. Run directly it has nothing to do.
#[test]
#[ignore = "the lab tests' sender, started by them inside a namespace"]
fn in_namespace_sender() {
    let Ok(kind) = std::env::var("BRAID_SEND") else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let secs: u64 = var("BRAID_SEND_SECS").parse().unwrap_or(3);
    let max: u64 = var("BRAID_SEND_MAX").parse().unwrap_or(1_000_000);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let to: SocketAddr = var("BRAID_SEND_TO").parse().unwrap();
    let mut sent = 0u64;
    match kind.as_str() {
        // Every datagram of a file (u16 length, bytes), once, in order.
        "file" => {
            let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
            let bytes = std::fs::read(var("BRAID_SEND_FILE")).unwrap();
            let mut rest = &bytes[..];
            while let [hi, lo, tail @ ..] = rest {
                let (d, next) = tail.split_at(usize::from(u16::from_be_bytes([*hi, *lo])));
                sock.send_to(d, to).unwrap();
                sent += 1;
                rest = next;
                // Paced so no socket buffer on the way overflows.
                if sent.is_multiple_of(64) {
                    thread::sleep(Duration::from_millis(2));
                }
            }
        }
        // Forged datagrams as fast as the socket takes them.
        "flood" => {
            let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
            let mut noise = Noise(0x0123_4567_89ab_cdef);
            let mut d = [0u8; 96];
            while sent < max && (!sent.is_multiple_of(1024) || Instant::now() < deadline) {
                for b in d.iter_mut() {
                    *b = noise.next() as u8;
                }
                // A plausible header: this version, data, a real link, lane 0 (the receiver
                // index and the rest are noise).
                d[..4].copy_from_slice(&[VERSION, 1, (sent % 2) as u8, 0]);
                let _ = sock.send_to(&d[..32 + (sent % 64) as usize], to);
                sent += 1;
            }
        }
        // A new flow per datagram: each from its own socket (a new source port).
        "flows" => {
            while sent < max && Instant::now() < deadline {
                let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
                let port = 10_000 + (sent % 50_000) as u16;
                let _ = sock.send_to(b"new flow", SocketAddr::new(to.ip(), port));
                sent += 1;
            }
        }
        other => panic!("unknown BRAID_SEND {other}"),
    }
    println!("braid-sender: sent {sent}");
    std::io::stdout().flush().unwrap();
}

/// The two floods load both cores: one at a time, so that neither starves the other's lab.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn forged_spoofed_and_replayed_tunnel_datagrams_are_dropped_while_tcp_goes_on() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::up("tun");
    let before = lab.hub_drops();
    let transfers = Transfers::start(&lab, 20_000_000);
    thread::sleep(Duration::from_millis(500));
    // The internet router replays every tunnel datagram it forwards to the hub for 2 s.
    let net = lab.ns("net");
    let (datagrams, expected) = attacks(lab.receiver_index());
    nft(&net, "add table ip braidreplay");
    nft(
        &net,
        "add chain ip braidreplay copies { type filter hook forward priority 0 ; }",
    );
    nft(&net, "add rule ip braidreplay copies ip daddr 203.0.113.2 udp dport 7420 dup to 203.0.113.2 device h0");
    lab.send_to_hub(&datagrams);
    thread::sleep(Duration::from_secs(2));
    nft(&net, "delete table ip braidreplay");
    let results = transfers.finish();
    thread::sleep(Duration::from_millis(300));
    let after = lab.hub_drops();
    let grown: Vec<(&str, u64)> = ATTACK_REASONS
        .iter()
        .map(|r| (*r, grew(&before, &after, r)))
        .collect();
    eprintln!("hostile-lab: attack drops at the hub: {grown:?}; transfers {results:?}");
    for (reason, at_least) in &expected {
        let got = grew(&before, &after, reason);
        assert!(got >= *at_least, "{reason}: {got} < {at_least} ({grown:?})");
    }
    // Without a key nothing opens: no inner packet is looked at.
    assert_eq!(grew(&before, &after, "spoofed"), 0, "{grown:?}");
    let total: u64 = grown.iter().map(|(_, n)| n).sum();
    assert!(
        total >= datagrams.len() as u64,
        "{total} counted of {} sent",
        datagrams.len()
    );
    // Every real datagram forwarded in those 2 s came twice: the copies are refused.
    assert!(
        grew(&before, &after, "replayed") > 100,
        "the router's replays were not refused: {grown:?}"
    );
    assert!(
        results.iter().all(Result::is_ok) && !results.is_empty(),
        "transfers: {results:?}"
    );
    // Nothing got in: every session is the LAN host's own (the transfers' TCP, the ping),
    // none is the injected UDP flow.
    let sessions = lab.hub_sessions();
    assert!(
        sessions
            .iter()
            .all(|s| s.inside.ip().octets() == [198, 18, 1, 2] && s.protocol != "udp"),
        "{sessions:?}"
    );
}

#[test]
fn floods_of_forged_datagrams_and_new_flows_leave_memory_bounded() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::up("flood");
    let rss0 = (lab.rss_kib("hub"), lab.rss_kib("edge"));
    let before = lab.hub_drops();
    let transfers = Transfers::start(&lab, 20_000_000);
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = {
        let (flag, hub_pid, edge_pid) = (
            Arc::clone(&sampling),
            std::fs::read_to_string(lab.run_dir().join("hub.pid")).unwrap(),
            std::fs::read_to_string(lab.run_dir().join("edge.pid")).unwrap(),
        );
        thread::spawn(move || {
            let rss = |pid: &str| {
                std::fs::read_to_string(format!("/proc/{}/status", pid.trim()))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let mut peak = (0, 0);
            while flag.load(Ordering::Relaxed) {
                peak = (peak.0.max(rss(&hub_pid)), peak.1.max(rss(&edge_pid)));
                thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let started = Instant::now();
    let forged = sender(
        &lab.ns("net"),
        &[
            ("BRAID_SEND", "flood"),
            ("BRAID_SEND_TO", HUB_TUNNEL),
            ("BRAID_SEND_SECS", "4"),
            ("BRAID_SEND_MAX", "5000000"),
        ],
    );
    let flows = sender(
        &lab.ns("lan"),
        &[
            ("BRAID_SEND", "flows"),
            ("BRAID_SEND_TO", &format!("{INET_HOST}:9")),
            ("BRAID_SEND_SECS", "4"),
            ("BRAID_SEND_MAX", "20000"),
        ],
    );
    let flood_s = started.elapsed().as_secs_f64();
    let results = transfers.finish();
    sampling.store(false, Ordering::Relaxed);
    let peak = peak.join().unwrap();
    let after = lab.hub_drops();
    let sessions = match lab.ctl("hub", &["nat"]) {
        Reply::Nat(n) => n.counters.sessions,
        other => panic!("{other:?}"),
    };
    let rss1 = (lab.rss_kib("hub"), lab.rss_kib("edge"));
    let refused: u64 = ATTACK_REASONS
        .iter()
        .map(|r| grew(&before, &after, r))
        .sum();
    eprintln!(
        "hostile-lab: flood {flood_s:.1} s: {forged} forged datagrams ({refused} refused by the \
         hub), {flows} new flows ({sessions} NAT sessions, {} refused at the host limit); \
         RSS KiB hub {} -> peak {} -> {}, edge {} -> peak {} -> {}; transfers {results:?}",
        grew(&before, &after, "nat_host_limit"),
        rss0.0,
        peak.0,
        rss1.0,
        rss0.1,
        peak.1,
        rss1.1
    );
    assert!(forged > 10_000, "the flood sent only {forged}");
    // Transfers ran back to back from before the floods until after them, each byte-exact
    // (a failed one would have ended the series).
    assert!(
        !results.is_empty() && results.iter().all(Result::is_ok),
        "transfers: {results:?}"
    );
    // One inside host: its sessions stop at max_per_host (4096), the rest are refused.
    assert!(sessions <= 4096 + 8, "{sessions} sessions");
    // Once the host holds its maximum, the flows that still came were refused (under load
    // some of the 20,000 may not reach the hub at all: then there is nothing to refuse).
    if flows > 5000 && sessions >= 4096 {
        assert!(grew(&before, &after, "nat_host_limit") > 0);
    }
    for (role, base, top) in [("hub", rss0.0, peak.0), ("edge", rss0.1, peak.1)] {
        assert!(
            top < base + 64 * 1024,
            "braidd ({role}) grew from {base} to {top} KiB"
        );
    }
}
