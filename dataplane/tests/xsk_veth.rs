//! AF_XDP through real veth pairs, in network namespaces this test creates.
//! Needs root (network namespaces); skipped otherwise, or failed if `CI` or `BRAID_LAB=1` is set
//! (`braid_testkit::lab`).
//!
//! ```text
//!  ns A: a0 198.18.1.1/24 ── veth ── a1 ┐
//!                                       ├─ ns X: XskPorts on queue 0 and on queue 1 of [a1, b1]
//!  ns B: b0 198.18.2.2/24 ── veth ── b1 ┘
//! ```
//! Kernel UDP datagrams from A to B (A routes 198.18.2.0/24 via 198.18.1.2, a
//! static neighbour with a1's MAC) are received on a1, get their MACs rewritten
//! and leave on b1; B's kernel must accept every one of them with its payload
//! intact, plus frames built and sent with `tx_copy`. The test binary re-runs
//! itself inside each namespace (`ip netns exec`), the role named in
//! `BRAID_XSK_ROLE`; children report on stdout in lines starting with `@@`. The
//! sender keeps at most `WINDOW` datagrams unacknowledged (the receiver publishes
//! its count in a file), and the forwarder sends its copies once the receiver has
//! all of those, so a loaded machine slows the test down instead of overflowing the
//! receiving socket: every loss is the forwarder's (the receiver reports its
//! kernel's `RcvbufErrors` to tell).

use braid_dataplane::frame::Frame;
use braid_dataplane::io::xsk::FRAME_CAPACITY;
use braid_dataplane::io::{Ports, Verdict, XdpMode, XskOptions, XskPorts};
use braid_testkit::lab::{can_run, Need};
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const ROLE_ENV: &str = "BRAID_XSK_ROLE";
/// File through which the receiver tells the sender how many datagrams arrived.
const PROGRESS_ENV: &str = "BRAID_XSK_PROGRESS";
/// Datagrams the sender lets be on their way at once: few enough for the
/// receiver's socket buffer even when the receiver is not scheduled for a while.
const WINDOW: u32 = 64;
/// Datagrams the kernel in A sends, spread over `FLOWS` source ports.
const DATAGRAMS: u32 = 1000;
const FLOWS: u16 = 32;
/// Frames the forwarder builds and sends itself with `tx_copy`, in one flush:
/// more than the 32 a copy-mode `sendto()` sends, so `flush` must kick again.
const COPIES: u32 = 100;
/// Bound on every child's work.
const ROLE_TIME: Duration = Duration::from_secs(15);

const A1_MAC: [u8; 6] = [0x02, 0xb0, 0, 0, 0x0a, 0x01];
const B0_MAC: [u8; 6] = [0x02, 0xb0, 0, 0, 0x0b, 0x00];
const B1_MAC: [u8; 6] = [0x02, 0xb0, 0, 0, 0x0b, 0x01];
const A0_IP: [u8; 4] = [198, 18, 1, 1];
const B0_IP: [u8; 4] = [198, 18, 2, 2];
/// B's gateway: the address B's static neighbour entry gives b1's MAC.
const B_GW_IP: [u8; 4] = [198, 18, 2, 1];
const DST_PORT: u16 = 5000;
const SRC_PORT_BASE: u16 = 6000;
const COPY_SRC_PORT: u16 = 5001;
const KIND_FORWARDED: u8 = 0;
const KIND_COPY: u8 = 1;

/// The payload of datagram `seq` of a kind: kind, sequence, then a pattern.
/// Forwarded ones are 5 to 1304 bytes long; copies, sent in one burst, stay under
/// 69 so the receiver's socket buffer holds them all.
fn payload(kind: u8, seq: u32) -> Vec<u8> {
    let spread = if kind == KIND_COPY { 64 } else { 1300 };
    let len = 5 + (seq as usize * 37) % spread;
    let mut p = vec![kind];
    p.extend_from_slice(&seq.to_be_bytes());
    while p.len() < len {
        p.push((seq as usize * 7 + p.len()) as u8);
    }
    p
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn run(cmd: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Three namespaces and two veth pairs; deleted on drop.
struct Lab {
    a: String,
    b: String,
    x: String,
    progress: PathBuf,
}

impl Lab {
    fn create() -> Result<Lab, String> {
        let prefix = format!("bxio{}", std::process::id());
        let lab = Lab {
            a: format!("{prefix}-a"),
            b: format!("{prefix}-b"),
            x: format!("{prefix}-x"),
            progress: std::env::temp_dir().join(format!("{prefix}-progress")),
        };
        for ns in [&lab.a, &lab.b, &lab.x] {
            run(&["ip", "netns", "add", ns])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        let (a, b, x) = (lab.a.as_str(), lab.b.as_str(), lab.x.as_str());
        for (kernel, ours, kmac, omac, ns) in [
            ("a0", "a1", [0x02, 0xb0, 0, 0, 0x0a, 0x00], A1_MAC, a),
            ("b0", "b1", B0_MAC, B1_MAC, b),
        ] {
            #[rustfmt::skip]
            run(&[
                "ip", "-n", x, "link", "add", kernel, "address", &mac(kmac),
                "numrxqueues", "2", "numtxqueues", "2", "type", "veth", "peer", "name", ours,
                "address", &mac(omac), "numrxqueues", "2", "numtxqueues", "2",
            ])?;
            run(&["ip", "-n", x, "link", "set", kernel, "netns", ns])?;
            run(&["ip", "-n", x, "link", "set", ours, "up"])?;
            run(&["ip", "-n", ns, "link", "set", kernel, "up"])?;
            #[rustfmt::skip]
            run(&[
                "ip", "netns", "exec", ns, "ethtool", "-K", kernel, "tx", "off", "tso", "off",
                "gso", "off",
            ])?;
        }
        run(&["ip", "-n", a, "addr", "add", "198.18.1.1/24", "dev", "a0"])?;
        #[rustfmt::skip]
        run(&[
            "ip", "-n", a, "neigh", "add", "198.18.1.2", "lladdr", &mac(A1_MAC), "dev", "a0",
            "nud", "permanent",
        ])?;
        run(&[
            "ip",
            "-n",
            a,
            "route",
            "add",
            "198.18.2.0/24",
            "via",
            "198.18.1.2",
        ])?;
        run(&["ip", "-n", b, "addr", "add", "198.18.2.2/24", "dev", "b0"])?;
        #[rustfmt::skip]
        run(&[
            "ip", "-n", b, "neigh", "add", "198.18.2.1", "lladdr", &mac(B1_MAC), "dev", "b0",
            "nud", "permanent",
        ])?;
        run(&[
            "ip",
            "-n",
            b,
            "route",
            "add",
            "198.18.1.0/24",
            "via",
            "198.18.2.1",
        ])?;
        Ok(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b, &self.x] {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let _ = std::fs::remove_file(&self.progress);
        let _ = std::fs::remove_file(self.progress.with_extension("tmp"));
    }
}

/// A child running one role inside a namespace; killed on drop if still running.
struct Proc {
    role: &'static str,
    child: Child,
    reports: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(lab: &Lab, ns: &str, role: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Proc {
        let exe = std::env::current_exe().expect("test binary path");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(exe)
            .args(["xsk_role", "--exact", "--ignored", "--nocapture"])
            .env(ROLE_ENV, role)
            .env(PROGRESS_ENV, &lab.progress)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn role");
        let (tx, reports) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        Self::pump(out, role, log.clone(), Some(tx));
        Self::pump(err, role, log.clone(), None);
        Proc {
            role,
            child,
            reports,
            log: log.clone(),
        }
    }

    /// Copies a child's output into the log, sending `@@` lines to `reports`.
    fn pump(
        stream: impl Read + Send + 'static,
        role: &'static str,
        log: Arc<Mutex<Vec<String>>>,
        reports: Option<mpsc::Sender<String>>,
    ) {
        thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                log.lock().unwrap().push(format!("[{role}] {line}"));
                if let (Some(tx), Some(report)) = (&reports, line.strip_prefix("@@")) {
                    let _ = tx.send(report.to_string());
                }
            }
        });
    }

    /// The next report, which must start with `prefix`.
    fn report(&mut self, prefix: &str, timeout: Duration) -> String {
        match self.reports.recv_timeout(timeout) {
            Ok(line) if line.starts_with(prefix) => line,
            other => panic!(
                "{}: wanted a report `{prefix}`, got {other:?}\n{}",
                self.role,
                self.log.lock().unwrap().join("\n")
            ),
        }
    }

    fn expect_success(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "{} failed: {status}\n{}",
                    self.role,
                    self.log.lock().unwrap().join("\n")
                );
                return;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.role);
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `key=value` fields of a report.
fn field(report: &str, key: &str) -> u64 {
    report
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {report:?}"))
}

#[test]
fn xsk_forwards_kernel_datagrams_between_veths() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let lab = Lab::create().expect("namespaces and veths");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut recv = Proc::spawn(&lab, &lab.b, "recv", &log);
    recv.report("ready", ROLE_TIME);
    let mut fwd = Proc::spawn(&lab, &lab.x, "fwd", &log);
    let bad_queue = fwd.report("badqueue", ROLE_TIME);
    assert!(
        bad_queue.contains("a1"),
        "error should name a1: {bad_queue}"
    );
    let attached = fwd.report("attached", ROLE_TIME);
    assert_eq!(
        attached, "attached xdp",
        "driver-mode XDP program on a1 while open"
    );
    fwd.report("ready", ROLE_TIME);
    let mut send = Proc::spawn(&lab, &lab.a, "send", &log);
    send.report("sent", ROLE_TIME);
    send.expect_success(ROLE_TIME);

    let q0 = fwd.report("fwd q0", ROLE_TIME * 2);
    let q1 = fwd.report("fwd q1", ROLE_TIME);
    let copied = fwd.report("copied", ROLE_TIME);
    let generic = fwd.report("generic", ROLE_TIME);
    assert_eq!(generic, "generic xdpgeneric", "skb-mode XDP program on a1");
    fwd.report("done", ROLE_TIME);
    fwd.expect_success(ROLE_TIME);
    let got = recv.report("recv", ROLE_TIME * 2);
    recv.expect_success(ROLE_TIME);
    let all = log.lock().unwrap().join("\n");
    println!("{all}");

    assert_eq!(field(&got, "bad"), 0, "{all}");
    assert_eq!(field(&got, "forwarded"), DATAGRAMS as u64, "{all}");
    assert_eq!(field(&got, "copies"), COPIES as u64, "{all}");
    let forwarded = field(&q0, "forwarded") + field(&q1, "forwarded");
    assert_eq!(forwarded, DATAGRAMS as u64, "{all}");
    for q in [&q0, &q1] {
        assert_eq!(field(q, "short_room"), 0, "{all}");
        assert_eq!(field(q, "b1_tx_dropped"), 0, "{all}");
    }
    assert_eq!(
        field(&q0, "b1_tx") + field(&q1, "b1_tx"),
        DATAGRAMS as u64,
        "{all}"
    );
    assert_eq!(field(&copied, "tx"), COPIES as u64, "{all}");
    // Native XDP on veth spreads flows over queues by their hash: 32 flows all
    // landing on one queue has odds of 1 in 2^31.
    assert!(
        field(&q0, "forwarded") > 0 && field(&q1, "forwarded") > 0,
        "both queues should carry flows:\n{q0}\n{q1}"
    );
    for dev in ["a1", "b1"] {
        let link = run(&["ip", "-n", &lab.x, "link", "show", "dev", dev]).expect("ip link");
        assert!(
            !link.contains("xdp"),
            "XDP program left on {dev} after the sockets closed:\n{link}"
        );
    }
}

/// Entry point of the children spawned by the test above; does nothing when run
/// without a role.
#[test]
#[ignore = "run by xsk_forwards_kernel_datagrams_between_veths inside its namespaces"]
fn xsk_role() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("recv") => role_recv(),
        Ok("send") => role_send(),
        Ok("fwd") => role_fwd(),
        _ => eprintln!("no {ROLE_ENV}: nothing to do"),
    }
}

/// In B: receive and check every datagram, then report.
fn role_recv() {
    let progress = progress_file();
    publish(&progress, 0);
    let sock = UdpSocket::bind((Ipv4Addr::from(B0_IP), DST_PORT)).expect("bind receiver");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    println!("@@ready");
    let mut forwarded = vec![false; DATAGRAMS as usize];
    let mut copies = vec![false; COPIES as usize];
    let (mut bad, mut dup, mut received) = (0, 0, 0);
    let deadline = Instant::now() + ROLE_TIME;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && !(forwarded.iter().all(|&x| x) && copies.iter().all(|&x| x))
    {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let p = &buf[..n];
        let seen = match (p.first(), p.get(1..5)) {
            (Some(&kind), Some(seq)) => {
                let seq = u32::from_be_bytes(seq.try_into().unwrap());
                let table = match kind {
                    KIND_FORWARDED => &mut forwarded,
                    KIND_COPY => &mut copies,
                    _ => {
                        bad += 1;
                        continue;
                    }
                };
                match table.get_mut(seq as usize) {
                    Some(slot) if p == payload(kind, seq) => slot,
                    _ => {
                        bad += 1;
                        continue;
                    }
                }
            }
            _ => {
                bad += 1;
                continue;
            }
        };
        if *seen {
            dup += 1;
        } else {
            *seen = true;
            received += 1;
            publish(&progress, received);
        }
    }
    let count = |v: &[bool]| v.iter().filter(|&&x| x).count();
    println!(
        "@@recv forwarded={} copies={} bad={bad} dup={dup} rcvbuf_errors={}",
        count(&forwarded),
        count(&copies),
        udp_rcvbuf_errors()
    );
}

/// In A: send the datagrams from the kernel, at most `WINDOW` ahead of the
/// receiver.
fn role_send() {
    let progress = progress_file();
    let socks: Vec<UdpSocket> = (0..FLOWS)
        .map(|i| UdpSocket::bind((Ipv4Addr::from(A0_IP), SRC_PORT_BASE + i)).expect("bind"))
        .collect();
    let deadline = Instant::now() + ROLE_TIME;
    for seq in 0..DATAGRAMS {
        while seq >= received(&progress) + WINDOW {
            assert!(Instant::now() < deadline, "receiver stuck below {seq}");
            thread::sleep(Duration::from_millis(1));
        }
        socks[seq as usize % socks.len()]
            .send_to(
                &payload(KIND_FORWARDED, seq),
                (Ipv4Addr::from(B0_IP), DST_PORT),
            )
            .expect("send");
    }
    println!("@@sent {DATAGRAMS}");
}

fn progress_file() -> PathBuf {
    std::env::var_os(PROGRESS_ENV)
        .map(PathBuf::from)
        .expect("progress file")
}

/// Replaces the progress file's content with `count` (atomically, by rename).
fn publish(path: &Path, count: u32) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, count.to_string()).expect("write progress");
    std::fs::rename(&tmp, path).expect("publish progress");
}

/// UDP datagrams this namespace's kernel dropped for a full socket buffer
/// (`/proc/net/snmp`), to tell such a loss from the forwarder's.
fn udp_rcvbuf_errors() -> String {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return "unknown".into();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .map_or("unknown".into(), |(_, v)| v.to_string())
}

/// The receiver's count of good datagrams so far.
fn received(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The XDP attach mode `ip link show` reports for a device: `xdp` (driver),
/// `xdpgeneric` or `none`.
fn xdp_mode(link: &str) -> &'static str {
    if link.contains("xdpgeneric") {
        "xdpgeneric"
    } else if link.contains("xdp") {
        "xdp"
    } else {
        "none"
    }
}

/// True for the test's datagrams towards B.
fn is_test_datagram(frame: &[u8]) -> bool {
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        return false;
    };
    matches!(
        (&p.net, &p.transport),
        (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(udp)))
            if ip.header().destination() == B0_IP && udp.destination_port() == DST_PORT
    )
}

/// A frame from b1 to B carrying copy `seq`.
fn copy_frame(seq: u32) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(B1_MAC, B0_MAC)
        .ipv4(B_GW_IP, B0_IP, 64)
        .udp(COPY_SRC_PORT, DST_PORT);
    let body = payload(KIND_COPY, seq);
    let mut frame = Vec::with_capacity(builder.size(body.len()));
    builder.write(&mut frame, &body).expect("build frame");
    frame
}

/// Forwards test datagrams from port 0 (a1) to port 1 (b1) until `total` reaches
/// `DATAGRAMS` or time runs out; returns its report and the ports.
fn forward(mut ports: XskPorts, queue: u32, total: &AtomicU32) -> (String, XskPorts) {
    let deadline = Instant::now() + ROLE_TIME;
    let (mut mine, mut short_room) = (0u64, 0u64);
    loop {
        let mut handle = |f: &mut Frame<'_>| {
            // Outer headers must fit in front of the packet, in place, as in the tunnel.
            let at = f.start();
            if f.capacity() != FRAME_CAPACITY
                || !f.push_front(100)
                || f.start() + 100 != at
                || !f.pull_front(100)
            {
                short_room += 1;
                return Verdict::Drop;
            }
            if !is_test_datagram(f.data()) {
                return Verdict::Drop;
            }
            let eth = f.data_mut();
            eth[..6].copy_from_slice(&B0_MAC);
            eth[6..12].copy_from_slice(&B1_MAC);
            if mine % 2 == 1 {
                // Every other datagram leaves from 40 bytes earlier in its chunk (moved
                // there here): the TX descriptor must follow the frame's start.
                let len = f.len();
                if !f.push_front(40) {
                    short_room += 1;
                    return Verdict::Drop;
                }
                f.data_mut().copy_within(40.., 0);
                f.set_len(len);
            }
            mine += 1;
            total.fetch_add(1, Ordering::Relaxed);
            Verdict::Tx(1)
        };
        let n = ports.rx_batch(0, 64, &mut handle).expect("rx a1");
        let m = ports
            .rx_batch(1, 64, &mut |_| Verdict::Drop)
            .expect("rx b1");
        ports.flush().expect("flush");
        if total.load(Ordering::Relaxed) >= DATAGRAMS || Instant::now() > deadline {
            break;
        }
        if n + m == 0 {
            ports.wait(Duration::from_millis(10)).expect("wait");
        }
    }
    let (a1, b1) = (ports.counters(0), ports.counters(1));
    let report = format!(
        "@@fwd q{queue} forwarded={mine} short_room={short_room} a1_rx={} b1_tx={} \
         b1_tx_dropped={} kernel_a1={:?} kernel_b1={:?}",
        a1.rx_packets,
        b1.tx_packets,
        b1.tx_dropped,
        ports.kernel_counters(0),
        ports.kernel_counters(1),
    );
    (report, ports)
}

/// In X: open the ports (twice on queue 0, to rebind right after a close),
/// forward with one thread per queue, then send the copies with a single flush
/// and close at once: whatever that flush did not hand to the kernel is lost.
fn role_fwd() {
    let names = vec!["a1".to_string(), "b1".to_string()];
    let opts = |queue| XskOptions {
        queue,
        ..XskOptions::default()
    };
    let err = XskPorts::open(&["a1".to_string()], &opts(7)).expect_err("veth has 2 queues");
    println!("@@badqueue {err}");
    let busy = XskOptions {
        busy_poll: true,
        ..opts(0)
    };
    drop(XskPorts::open(&names, &busy).expect("open queue 0, busy polling"));
    let q0 = XskPorts::open(&names, &opts(0)).expect("reopen queue 0");
    let q1 = XskPorts::open(&names, &opts(1)).expect("open queue 1");
    let link = run(&["ip", "link", "show", "dev", "a1"]).expect("ip link");
    println!("@@attached {}", xdp_mode(&link));
    println!("@@ready");
    let total = Arc::new(AtomicU32::new(0));
    let workers: Vec<_> = [(q0, 0), (q1, 1)]
        .into_iter()
        .map(|(ports, queue)| {
            let total = total.clone();
            thread::spawn(move || forward(ports, queue, &total))
        })
        .collect();
    let mut opened = Vec::new();
    for w in workers {
        let (report, ports) = w.join().expect("forwarder thread");
        println!("{report}");
        opened.push(ports);
    }
    // The copies go in one burst: wait until the receiver has the forwarded datagrams, so
    // that its socket's buffer has room for the whole burst.
    let progress = progress_file();
    let deadline = Instant::now() + ROLE_TIME;
    while received(&progress) < DATAGRAMS && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    let q0 = &mut opened[0];
    let before = q0.counters(1).tx_packets;
    for seq in 0..COPIES {
        assert!(q0.tx_copy(1, &copy_frame(seq)), "tx_copy {seq}");
    }
    q0.flush().expect("flush copies");
    println!("@@copied tx={}", q0.counters(1).tx_packets - before);
    assert!(!q0.tx_copy(1, &[0; FRAME_CAPACITY + 1]), "oversize tx_copy");
    assert_eq!(q0.counters(1).tx_dropped, 1);
    assert!(q0.rx_batch(2, 1, &mut |_| Verdict::Drop).is_err());
    drop(opened);
    let generic = XskOptions {
        mode: XdpMode::Generic,
        ..opts(0)
    };
    let skb = XskPorts::open(&names, &generic).expect("open in generic mode");
    let link = run(&["ip", "link", "show", "dev", "a1"]).expect("ip link");
    println!("@@generic {}", xdp_mode(&link));
    drop(skb);
    println!("@@done");
}
