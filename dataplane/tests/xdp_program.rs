//! braid's XDP program on a shared interface, with real frames through a veth pair in a network
//! namespace this test creates: which frames reach braid's AF_XDP socket and which the kernel.
//!
//! ```text
//!  ns P:  y0 (no address; XskPorts with libxdp's program: sends the test frames, sees the
//!          kernel's answers) ── veth ── x0 198.18.5.1/24 (kernel) + braid's program, shared:
//!          XskPorts::open_with gets what it claims
//! ```
//! The steering is the one a hub with one shared NIC gets: 198.18.5.1 is the host's, with the
//! tunnel's UDP ports 7420-7421 and a masquerade's 20000-29999 claimed on it; 198.18.5.3 is
//! braid's alone; 198.18.5.255 is the prefix's broadcast. Each test frame carries its case
//! number (the IPv4 identification, or the last byte of an ARP sender's MAC), and braid's socket
//! must receive exactly the cases meant for it. The kernel's part is seen from its answers: a
//! UDP socket gets its datagram, its ARP reply and echo reply come back to y0.
//!
//! The test binary re-runs itself inside the namespace (`ip netns exec`) with `BRAID_XDP_ROLE`
//! set. Needs root; skipped otherwise, or failed if `CI` or `BRAID_LAB=1` is set.

use braid_dataplane::io::prog::{protos, AddrClass, Claim, Steering, XdpProgram};
use braid_dataplane::io::{Ports, Verdict, XdpMode, XskOptions, XskPorts};
use braid_testkit::lab::{can_run, Need};
use etherparse::PacketBuilder;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

const ROLE_ENV: &str = "BRAID_XDP_ROLE";
const X_MAC: [u8; 6] = [0x02, 0xb1, 0, 0, 0, 0x01];
const Y_MAC: [u8; 6] = [0x02, 0xb1, 0, 0, 0, 0x02];
const HOST: [u8; 4] = [198, 18, 5, 1];
const PEER: [u8; 4] = [198, 18, 5, 2];
const BRAID_ONLY: [u8; 4] = [198, 18, 5, 3];
const BROADCAST: [u8; 4] = [198, 18, 5, 255];
const ROUTED: [u8; 4] = [203, 0, 113, 9];
/// The host's own UDP service.
const HOST_UDP: u16 = 5353;

fn run(cmd: &str) {
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("run a command");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace with the veth pair; deleted on drop.
struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[test]
fn a_shared_interface_gives_braid_only_what_it_claims() {
    if !can_run(Need::Namespaces) {
        return;
    }
    let ns = Ns(format!("bxdp{}", std::process::id()));
    run(&format!("ip netns add {}", ns.0));
    let n = &ns.0;
    run(&format!(
        "ip -n {n} link add x0 address 02:b1:00:00:00:01 numrxqueues 1 numtxqueues 1 type veth \
         peer name y0 address 02:b1:00:00:00:02 numrxqueues 1 numtxqueues 1"
    ));
    run(&format!(
        "ip netns exec {n} sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
    ));
    run(&format!("ip -n {n} addr add 198.18.5.1/24 dev x0"));
    for dev in ["lo", "x0", "y0"] {
        run(&format!("ip -n {n} link set {dev} up"));
    }
    let exe = std::env::current_exe().expect("test executable");
    let out = Command::new("ip")
        .args(["netns", "exec", n])
        .arg(exe)
        .args(["--exact", "xdp_role", "--ignored", "--nocapture"])
        .env(ROLE_ENV, "run")
        .output()
        .expect("run the role");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "the role failed:\n{text}");
    assert!(text.contains("@@ all cases as expected"), "{text}");
    let link = Command::new("ip")
        .args(["-n", n, "-d", "link", "show", "dev", "x0"])
        .output()
        .expect("ip link");
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(!link.contains("prog/xdp"), "program left on x0:\n{link}");
}

/// Entry point of the child the test above runs in its namespace.
#[test]
#[ignore = "run by a_shared_interface_gives_braid_only_what_it_claims inside its namespace"]
fn xdp_role() {
    if std::env::var(ROLE_ENV).as_deref() == Ok("run") {
        role();
    }
}

fn steering() -> Steering {
    let host = Ipv4Addr::from(HOST);
    Steering {
        owned: false,
        addrs: vec![
            (host, AddrClass::Host),
            (Ipv4Addr::LOCALHOST, AddrClass::Host),
            (Ipv4Addr::from(BROADCAST), AddrClass::Broadcast),
            (Ipv4Addr::from(BRAID_ONLY), AddrClass::Braid),
        ],
        claims: vec![
            Claim {
                addr: host,
                protos: protos::UDP,
                ports: 7420..=7421,
            },
            Claim {
                addr: host,
                protos: protos::ICMP | protos::TCP | protos::UDP,
                ports: 20000..=29999,
            },
        ],
    }
}

/// Sets the IPv4 identification (and fragment field) of `frame` and its header checksum.
fn mark(mut frame: Vec<u8>, id: u16, frag: u16) -> Vec<u8> {
    frame[18..20].copy_from_slice(&id.to_be_bytes());
    frame[20..22].copy_from_slice(&frag.to_be_bytes());
    frame[24..26].copy_from_slice(&[0, 0]);
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let mut sum: u32 = frame[14..14 + ihl]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    frame[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    frame
}

fn udp(dst: [u8; 4], sport: u16, dport: u16, case: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(Y_MAC, X_MAC)
        .ipv4(PEER, dst, 64)
        .udp(sport, dport)
        .write(&mut v, &case.to_be_bytes())
        .expect("build");
    mark(v, case, 0)
}

fn tcp_syn(dport: u16, case: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(Y_MAC, X_MAC)
        .ipv4(PEER, HOST, 64)
        .tcp(40000, dport, 1, 1000)
        .syn()
        .write(&mut v, &[])
        .expect("build");
    mark(v, case, 0)
}

fn echo(dst: [u8; 4], reply: bool, ident: u16, case: u16) -> Vec<u8> {
    let mut v = Vec::new();
    let b = PacketBuilder::ethernet2(Y_MAC, X_MAC).ipv4(PEER, dst, 64);
    let b = if reply {
        b.icmpv4_echo_reply(ident, 1)
    } else {
        b.icmpv4_echo_request(ident, 1)
    };
    b.write(&mut v, b"braid").expect("build");
    mark(v, case, 0)
}

/// A port unreachable about a UDP datagram the host sent from `sport`.
fn unreachable_about(sport: u16, case: u16) -> Vec<u8> {
    let mut quoted = Vec::new();
    PacketBuilder::ipv4(HOST, ROUTED, 64)
        .udp(sport, 7420)
        .write(&mut quoted, &[0; 4])
        .expect("build");
    let mut v = Vec::new();
    PacketBuilder::ethernet2(Y_MAC, X_MAC)
        .ipv4(PEER, HOST, 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut v, &quoted)
        .expect("build");
    mark(v, case, 0)
}

/// An ARP packet from y0 (its MAC's last byte is `case`).
fn arp(op: u16, dst_mac: [u8; 6], target: [u8; 4], case: u16) -> Vec<u8> {
    let mut sha = Y_MAC;
    sha[5] = case as u8;
    let mut v = Vec::new();
    v.extend_from_slice(&dst_mac);
    v.extend_from_slice(&sha);
    v.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&sha);
    v.extend_from_slice(&PEER);
    v.extend_from_slice(&[0; 6]);
    v.extend_from_slice(&target);
    v.resize(60, 0);
    v
}

/// The case a frame carries: its IPv4 identification, or its ARP sender MAC's last byte.
fn case_of(frame: &[u8]) -> Option<u16> {
    match frame.get(12..14)? {
        [0x08, 0x00] => Some(u16::from_be_bytes([*frame.get(18)?, *frame.get(19)?])),
        [0x08, 0x06] => Some(u16::from(*frame.get(27)?)),
        _ => None,
    }
}

fn role() {
    let opts = XskOptions {
        queue: 0,
        frame_count: 1024,
        ring_size: 256,
        mode: XdpMode::Native,
        busy_poll: false,
    };
    let program = XdpProgram::attach("x0", XdpMode::Native, &steering()).expect("attach");
    let mut braid =
        XskPorts::open_with(&["x0".to_string()], &opts, &[&program]).expect("braid's socket");
    let mut gen = XskPorts::open(&["y0".to_string()], &opts).expect("the sender's socket");
    let kernel_udp = UdpSocket::bind((Ipv4Addr::from(HOST), HOST_UDP)).expect("host's UDP");
    kernel_udp
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");

    let broadcast_mac = [0xff; 6];
    // (case, frame, to braid?)
    let cases: Vec<(u16, Vec<u8>, bool)> = vec![
        (1, udp(HOST, 7420, 7420, 1), true),         // the tunnel
        (2, udp(HOST, 7420, 7421, 2), true),         // the tunnel, worker 1's port
        (3, udp(HOST, 40000, HOST_UDP, 3), false),   // the host's UDP service
        (4, tcp_syn(25000, 4), true),                // the NAT's return traffic
        (5, tcp_syn(22, 5), false),                  // the host's SSH
        (6, echo(HOST, true, 25000, 6), true),       // echo reply to a NAT identifier
        (7, echo(HOST, false, 7, 7), false),         // ping of the host
        (8, unreachable_about(7420, 8), true),       // error about a tunnel datagram
        (9, unreachable_about(5353, 9), false),      // error about the host's datagram
        (10, udp(ROUTED, 1000, 2000, 10), true),     // to be routed
        (11, udp(BROADCAST, 1000, 2000, 11), false), // the prefix's broadcast
        (12, udp([255; 4], 1000, 2000, 12), false),  // the limited broadcast
        (13, echo(BRAID_ONLY, false, 1, 13), true),  // braid's own address
        (14, mark(udp(HOST, 7420, 7420, 14), 14, 0x00b9), false), // a later fragment
        (15, arp(2, X_MAC, [0; 4], 15), true),       // answer to braid's probe
        (16, arp(1, broadcast_mac, HOST, 16), false), // who has the host's address
        (17, arp(1, broadcast_mac, BRAID_ONLY, 17), true), // who has braid's
        (18, udp(HOST, 40000, 30000, 18), false),    // above the NAT's ports
    ];
    for (_, frame, _) in &cases {
        assert!(gen.tx_copy(0, frame), "queue a frame");
        gen.flush().expect("send");
        std::thread::sleep(Duration::from_millis(5));
    }
    let expected: BTreeSet<u16> = cases.iter().filter(|c| c.2).map(|c| c.0).collect();
    let mut got = BTreeSet::new();
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        braid
            .rx_batch(0, 64, &mut |f| {
                if let Some(c) = case_of(f.data()) {
                    got.insert(c);
                }
                Verdict::Drop
            })
            .expect("braid rx");
        gen.rx_batch(0, 64, &mut |f| {
            answers.push(f.data().to_vec());
            Verdict::Drop
        })
        .expect("sender rx");
        braid.flush().expect("braid flush");
        gen.flush().expect("sender flush");
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("@@ braid got cases {got:?}, expected {expected:?}");
    assert_eq!(got, expected, "cases braid's socket received");
    let mut buf = [0u8; 64];
    let (n, _) = kernel_udp.recv_from(&mut buf).expect("the host's datagram");
    assert_eq!(
        &buf[..n],
        &3u16.to_be_bytes(),
        "the host's UDP service got case 3"
    );
    let kernel_arp_reply = answers.iter().any(|a| {
        a.get(12..14) == Some(&[0x08, 0x06][..])
            && a.get(20..22) == Some(&[0, 2][..])
            && a.get(28..32) == Some(&HOST[..])
    });
    assert!(kernel_arp_reply, "the kernel answered ARP for its address");
    let kernel_echo_reply = answers.iter().any(|a| {
        case_of(a).is_some()
            && a.get(23) == Some(&1)
            && a.get(34) == Some(&0)
            && a.get(26..30) == Some(&HOST[..])
    });
    assert!(
        kernel_echo_reply,
        "the kernel answered the ping of its address"
    );
    println!("@@ all cases as expected");
}
