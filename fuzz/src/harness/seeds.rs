//! The seed corpus: valid inputs of every kind for every target, written to
//! `fuzz/corpus/<target>/seed-<name>` (the corpus test checks they are current).

use super::frames::{self as f, ACK, ARP, BROADCAST, FIN, IPV4, RST, SYN};
use super::pipeline::encode;
use super::{EDGE_MACS, GW1_MAC, GW2_MAC, HOST_MAC, HUB_GW_MAC, HUB_MAC, HUB_PUBLIC};
use braid_dataplane::tunnel::VERSION;
use std::net::Ipv4Addr;

/// One seed: target, name, bytes.
pub type Seed = (&'static str, &'static str, Vec<u8>);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
}

/// Record control bytes (see `pipeline`): port, repair, seal, clock step, lane.
const fn ctl(port: u8, repair: bool, seal: bool, step: u8, lane: u8) -> u8 {
    port | (repair as u8) << 2 | (seal as u8) << 3 | step << 4 | lane << 7
}
/// A plain frame on `port` in the current batch.
const fn on(port: u8) -> u8 {
    ctl(port, false, false, 0, 0)
}
/// A frame the harness seals, on `port`.
const fn sealed(port: u8) -> u8 {
    ctl(port, true, true, 0, 0)
}

/// A braid header: `kind`, `link`, lane 0, receiver index `receiver` (to the pipeline
/// harness, which peer's session seals it), `counter`; for data (`kind` 1), then the bond
/// sequence 0 (not sequenced) that starts the plaintext.
fn header(kind: u8, link: u8, receiver: u32, counter: u64) -> Vec<u8> {
    let mut h = vec![VERSION, kind, link, 0];
    h.extend_from_slice(&receiver.to_be_bytes());
    h.extend_from_slice(&counter.to_be_bytes());
    if kind == 1 {
        h.extend_from_slice(&0u32.to_be_bytes());
    }
    h
}

/// An unsealed tunnel datagram frame (header | inner | tag room) for the harness to seal.
fn tunnel_frame(
    macs: ([u8; 6], [u8; 6]),
    (src, dst): (&str, &str),
    head: Vec<u8>,
    inner: &[u8],
) -> Vec<u8> {
    let mut msg = head;
    msg.extend_from_slice(inner);
    msg.extend_from_slice(&[0; 16]);
    let udp = f::udp(0xc042, 7420, &msg);
    f::eth(
        macs.0,
        macs.1,
        IPV4,
        &f::ipv4(ip(src), ip(dst), 17, 63, &udp),
    )
}

fn udp_packet(src: &str, dst: &str, sport: u16, dport: u16, ttl: u8, payload: &[u8]) -> Vec<u8> {
    f::ipv4(ip(src), ip(dst), 17, ttl, &f::udp(sport, dport, payload))
}

fn tcp_packet(src: &str, dst: &str, ports: (u16, u16), flags: u8, mss: Option<u16>) -> Vec<u8> {
    f::ipv4(
        ip(src),
        ip(dst),
        6,
        64,
        &f::tcp(ports.0, ports.1, flags, mss, b""),
    )
}

fn echo_packet(src: &str, dst: &str, kind: u8, id: u16) -> Vec<u8> {
    f::ipv4(
        ip(src),
        ip(dst),
        1,
        64,
        &f::echo(kind, id, 1, b"braid-ping"),
    )
}

/// Every seed.
pub fn all() -> Vec<Seed> {
    let mut s = Vec::new();
    s.extend(wire());
    s.extend(edge());
    s.extend(hub());
    s.extend(tunnel());
    s.extend(handshake());
    s.extend(control());
    s.extend(config());
    s
}

fn wire() -> Vec<Seed> {
    let with = |sel: u8, arg: u16, p: Vec<u8>| {
        let mut v = vec![sel];
        v.extend_from_slice(&arg.to_be_bytes());
        v.extend(p);
        v
    };
    let arp_req = f::eth(
        BROADCAST,
        HOST_MAC,
        ARP,
        &f::arp(1, (HOST_MAC, ip("198.18.1.2")), ([0; 6], ip("198.18.1.1"))),
    );
    let udp = udp_packet("198.18.1.2", "203.0.113.130", 5555, 9, 64, b"query");
    let syn = tcp_packet("198.18.1.2", "203.0.113.130", (40000, 80), SYN, Some(1460));
    // MSS at an odd offset (after one NOP), the case the incremental update handles apart.
    let mut odd = f::tcp(40001, 80, SYN, None, b"");
    odd[12] = 8 << 4;
    odd.extend_from_slice(&[1, 2, 4, 0x05, 0xb4, 0, 0, 0]);
    let odd = f::ipv4(ip("198.18.1.2"), ip("203.0.113.130"), 6, 64, &odd);
    let ping = echo_packet("198.18.1.2", "198.18.1.1", 8, 7);
    let quote = udp_packet("203.0.113.2", "203.0.113.130", 5555, 9, 63, b"q");
    let err = f::ipv4(
        ip("203.0.113.1"),
        ip("198.18.1.2"),
        1,
        64,
        &f::icmp_error(11, 0, 0, &quote),
    );
    vec![
        ("wire", "arp-request", with(0, 0, arp_req)),
        ("wire", "ipv4-udp", with(1, 0, udp.clone())),
        ("wire", "echo-request", with(2, 0x4000, ping.clone())),
        ("wire", "mss-syn", with(3, 1400, syn.clone())),
        ("wire", "mss-syn-odd-offset", with(3, 1400, odd)),
        ("wire", "ttl", with(4, 0, udp.clone())),
        ("wire", "checksum-updates", with(5, 0xbeef, udp.clone())),
        (
            "wire",
            "tunnel-header",
            with(6, 0, header(1, 1, 1, 1 << 40)),
        ),
        ("wire", "nat-udp", with(7, 0, udp)),
        ("wire", "nat-tcp", with(7, 0, syn)),
        ("wire", "nat-echo", with(7, 0x0100, ping)),
        ("wire", "nat-icmp-error", with(7, 0, err)),
    ]
}

fn edge() -> Vec<Seed> {
    let lan = EDGE_MACS[0];
    let up = |payload: &[u8]| {
        f::eth(
            lan,
            HOST_MAC,
            IPV4,
            &udp_packet("198.18.1.2", "203.0.113.130", 5555, 9, 64, payload),
        )
    };
    let from_hub = |port: u8, head: Vec<u8>, inner: &[u8]| {
        let (mac, gw, dst) = if port == 1 {
            (EDGE_MACS[1], GW1_MAC, "198.18.11.2")
        } else {
            (EDGE_MACS[2], GW2_MAC, "198.18.12.2")
        };
        tunnel_frame((mac, gw), ("203.0.113.2", dst), head, inner)
    };
    let down = udp_packet("203.0.113.130", "198.18.1.2", 9, 5555, 62, b"answer");
    let syn = f::eth(
        lan,
        HOST_MAC,
        IPV4,
        &tcp_packet("198.18.1.2", "203.0.113.130", (40000, 80), SYN, Some(1460)),
    );
    let arp_req = f::eth(
        BROADCAST,
        HOST_MAC,
        ARP,
        &f::arp(1, (HOST_MAC, ip("198.18.1.2")), ([0; 6], ip("198.18.1.1"))),
    );
    let gw_reply = f::eth(
        EDGE_MACS[2],
        GW2_MAC,
        ARP,
        &f::arp(
            2,
            (GW2_MAC, ip("198.18.12.1")),
            (EDGE_MACS[2], ip("198.18.12.2")),
        ),
    );
    let ping = f::eth(
        lan,
        HOST_MAC,
        IPV4,
        &echo_packet("198.18.1.2", "198.18.1.1", 8, 3),
    );
    let trace = f::eth(
        lan,
        HOST_MAC,
        IPV4,
        &udp_packet("198.18.1.2", "203.0.113.130", 5555, 33434, 1, b"trace"),
    );
    let big = f::eth(
        lan,
        HOST_MAC,
        IPV4,
        &udp_packet("198.18.1.2", "203.0.113.130", 5555, 9, 64, &[0x55; 1472]),
    );
    let to_unknown = f::eth(
        EDGE_MACS[1],
        GW1_MAC,
        IPV4,
        &udp_packet("203.0.113.130", "198.18.1.77", 9, 5555, 60, b"who?"),
    );
    let host50 = [2, 0, 0, 0, 0, 0x50];
    let host50_asks = f::eth(
        BROADCAST,
        host50,
        ARP,
        &f::arp(1, (host50, ip("198.18.1.50")), ([0; 6], ip("198.18.1.1"))),
    );
    let bypass = f::eth(
        lan,
        HOST_MAC,
        IPV4,
        &udp_packet("198.18.1.50", "203.0.113.130", 5555, 9, 64, b"direct"),
    );
    let bypass_back = f::eth(
        EDGE_MACS[1],
        GW1_MAC,
        IPV4,
        &udp_packet("203.0.113.130", "198.18.11.2", 9, 5555, 60, b"back"),
    );
    let ipv6 = f::eth(lan, HOST_MAC, 0x86dd, &[0x60; 40]);
    let probe = {
        let mut p = [0u8; braid_dataplane::tunnel::Probe::LEN];
        braid_dataplane::tunnel::Probe {
            seq: 1,
            tx_ns: 5,
            ..Default::default()
        }
        .emit(&mut p);
        p.to_vec()
    };
    let seq = 0;
    vec![
        (
            "edge",
            "lan-udp-into-the-bond",
            encode(0, &[(on(0), up(b"hello")), (on(0), up(b"again"))]),
        ),
        (
            "edge",
            "lan-udp-flow-mode",
            encode(1, &[(on(0), up(b"flow")), (on(0), up(b"flow"))]),
        ),
        ("edge", "tcp-syn-mss-clamped", encode(0, &[(on(0), syn)])),
        (
            "edge",
            "arp-request-and-gateway-reply",
            encode(0, &[(on(0), arp_req), (on(2), gw_reply)]),
        ),
        ("edge", "echo-to-the-edge", encode(0, &[(on(0), ping)])),
        (
            "edge",
            "ttl-exceeded-and-too-big",
            encode(0, &[(on(0), trace), (on(0), big)]),
        ),
        (
            "edge",
            "tunnel-down-to-the-lan-and-replayed",
            encode(
                0,
                &[
                    (sealed(1), from_hub(1, header(1, 0, 0, seq), &down)),
                    (sealed(1), from_hub(1, header(1, 0, 0, seq), &down)),
                    (sealed(2), from_hub(2, header(1, 1, 0, seq + 1), &down)),
                ],
            ),
        ),
        (
            "edge",
            "tunnel-probe-and-reply",
            encode(
                0,
                &[
                    (sealed(1), from_hub(1, header(2, 0, 0, seq), &probe)),
                    (sealed(2), from_hub(2, header(3, 1, 0, seq + 1), &probe)),
                ],
            ),
        ),
        (
            "edge",
            "unresolved-lan-host-waits-then-expires",
            encode(
                0,
                &[
                    (on(1), to_unknown.clone()),
                    (ctl(1, false, false, 3, 0), to_unknown),
                    (ctl(0, false, false, 5, 0), Vec::new()),
                ],
            ),
        ),
        (
            "edge",
            "bypass-masqueraded-on-isp1-and-back",
            encode(
                2,
                &[
                    (on(0), host50_asks),
                    (ctl(0, false, false, 1, 0), bypass),
                    (on(1), bypass_back),
                ],
            ),
        ),
        (
            "edge",
            "two-workers-and-clock-steps",
            encode(
                6,
                &[
                    (ctl(0, false, false, 1, 1), up(b"lane1")),
                    (ctl(0, false, false, 6, 0), up(b"later")),
                ],
            ),
        ),
        (
            "edge",
            "not-ipv4-and-truncated",
            encode(0, &[(on(0), ipv6), (on(0), vec![2, 0, 0])]),
        ),
    ]
}

fn hub() -> Vec<Seed> {
    let edge = |inner: &[u8], link: u8, seq: u64| {
        let src = if link == 0 {
            "198.18.11.2"
        } else {
            "198.18.12.2"
        };
        tunnel_frame(
            (HUB_MAC, HUB_GW_MAC),
            (src, "203.0.113.2"),
            header(1, link, 0, seq),
            inner,
        )
    };
    let edge2 = |inner: &[u8], seq: u64| {
        tunnel_frame(
            (HUB_MAC, HUB_GW_MAC),
            ("198.18.21.2", "203.0.113.2"),
            header(1, 0, 1, seq),
            inner,
        )
    };
    let inet = |p: Vec<u8>| f::eth(HUB_MAC, HUB_GW_MAC, IPV4, &p);
    let seq = 0;
    let out = udp_packet("198.18.1.2", "203.0.113.130", 5555, 9, 64, b"query");
    let back = udp_packet("203.0.113.130", "203.0.113.2", 9, 5555, 60, b"answer");
    let syn = tcp_packet("198.18.1.2", "203.0.113.130", (40000, 80), SYN, Some(1460));
    let syn_ack = tcp_packet(
        "203.0.113.130",
        "203.0.113.2",
        (80, 40000),
        SYN | ACK,
        Some(1460),
    );
    let fin = tcp_packet("198.18.1.2", "203.0.113.130", (40000, 80), FIN | ACK, None);
    let fin_back = tcp_packet("203.0.113.130", "203.0.113.2", (80, 40000), FIN | ACK, None);
    let rst = tcp_packet("198.18.1.2", "203.0.113.130", (40001, 80), RST, None);
    let ping = echo_packet("198.18.1.2", "203.0.113.130", 8, 0x1234);
    let pong = echo_packet("203.0.113.130", "203.0.113.2", 0, 0x1234);
    let translated = udp_packet("203.0.113.2", "203.0.113.130", 5555, 9, 63, b"query");
    let time_exceeded = f::ipv4(
        ip("203.0.113.1"),
        ip("203.0.113.2"),
        1,
        64,
        &f::icmp_error(11, 0, 0, &translated),
    );
    let unreachable_inside = f::ipv4(
        ip("198.18.1.2"),
        ip("203.0.113.130"),
        1,
        64,
        &f::icmp_error(3, 3, 0, &back),
    );
    let spoofed = udp_packet("198.18.9.9", "203.0.113.130", 5555, 9, 64, b"spoof");
    let hairpin = udp_packet("198.18.1.3", "203.0.113.2", 6666, 5555, 64, b"hairpin");
    let gre = f::ipv4(ip("198.18.1.2"), ip("203.0.113.130"), 47, 64, &[0; 24]);
    let mut fragment = udp_packet("198.18.1.2", "203.0.113.130", 5555, 9, 64, &[1; 64]);
    fragment[6] = 0x20; // more fragments
    f::fix_ipv4(&mut fragment);
    let stray = inet(udp_packet(
        "203.0.113.130",
        "203.0.113.2",
        9,
        6000,
        60,
        b"scan",
    ));
    let echo_hub = inet(echo_packet("203.0.113.130", "203.0.113.2", 8, 99));
    let arp_req = f::eth(
        BROADCAST,
        HUB_GW_MAC,
        ARP,
        &f::arp(
            1,
            (HUB_GW_MAC, ip("203.0.113.1")),
            ([0; 6], ip("203.0.113.2")),
        ),
    );
    let mut flows = Vec::new();
    for (i, port) in (20000u16..20080).enumerate() {
        let p = udp_packet("198.18.1.2", "203.0.113.130", port, 9, 64, b"flow");
        flows.push((sealed(0), edge(&p, 0, seq + i as u64)));
    }
    vec![
        (
            "hub",
            "udp-masqueraded-out-and-back",
            encode(
                0,
                &[(sealed(0), edge(&out, 0, seq)), (on(0), inet(back.clone()))],
            ),
        ),
        (
            "hub",
            "tcp-open-and-close",
            encode(
                0,
                &[
                    (sealed(0), edge(&syn, 0, seq)),
                    (on(0), inet(syn_ack)),
                    (sealed(0), edge(&fin, 1, seq + 1)),
                    (on(0), inet(fin_back)),
                    (sealed(0), edge(&rst, 0, seq + 2)),
                ],
            ),
        ),
        (
            "hub",
            "echo-masqueraded-and-answered",
            encode(0, &[(sealed(0), edge(&ping, 0, seq)), (on(0), inet(pong))]),
        ),
        (
            "hub",
            "icmp-errors-both-ways",
            encode(
                0,
                &[
                    (sealed(0), edge(&out, 0, seq)),
                    (on(0), inet(time_exceeded)),
                    (on(0), inet(back)),
                    (sealed(0), edge(&unreachable_inside, 1, seq + 1)),
                ],
            ),
        ),
        (
            "hub",
            "spoofed-inner-source-and-replay",
            encode(
                0,
                &[
                    (sealed(0), edge(&spoofed, 0, seq)),
                    (sealed(0), edge(&out, 0, seq + 1)),
                    (sealed(0), edge(&out, 0, seq + 1)),
                ],
            ),
        ),
        (
            "hub",
            "hairpin-translated",
            encode(
                1,
                &[
                    (sealed(0), edge(&out, 0, seq)),
                    (sealed(0), edge(&hairpin, 0, seq + 1)),
                ],
            ),
        ),
        (
            "hub",
            "other-protocol-passed",
            encode(4, &[(sealed(0), edge(&gre, 0, seq))]),
        ),
        (
            "hub",
            "fragment",
            encode(0, &[(sealed(0), edge(&fragment, 0, seq))]),
        ),
        (
            "hub",
            "stray-echo-and-arp",
            encode(0, &[(on(0), stray), (on(0), echo_hub), (on(0), arp_req)]),
        ),
        (
            "hub",
            "table-full-icmp-narrow-ports",
            encode(0b1_0010, &flows),
        ),
        (
            "hub",
            "two-workers-hand-off",
            encode(
                0b1000,
                &[
                    (sealed(0), edge(&out, 0, seq)),
                    (
                        ctl(0, false, false, 1, 1),
                        inet(udp_packet(
                            "203.0.113.130",
                            "203.0.113.2",
                            9,
                            5555,
                            60,
                            b"r",
                        )),
                    ),
                    (ctl(0, false, false, 1, 0), Vec::new()),
                ],
            ),
        ),
        (
            "hub",
            "second-edge-own-key",
            encode(
                0b10_0000,
                &[
                    (
                        sealed(0),
                        edge2(
                            &udp_packet("198.18.2.7", "203.0.113.130", 7000, 9, 64, b"e2"),
                            seq,
                        ),
                    ),
                    (sealed(0), edge2(&out, seq + 1)),
                ],
            ),
        ),
        (
            "hub",
            "sessions-expire",
            encode(
                0,
                &[
                    (sealed(0), edge(&out, 0, seq)),
                    (
                        ctl(0, false, false, 7, 0),
                        inet(udp_packet(
                            "203.0.113.130",
                            "203.0.113.2",
                            9,
                            5555,
                            60,
                            b"late",
                        )),
                    ),
                ],
            ),
        ),
    ]
}

fn tunnel() -> Vec<Seed> {
    // The plaintext of a data message: the bond sequence (0), then the packet.
    let mut plain = 0u32.to_be_bytes().to_vec();
    plain.extend(udp_packet(
        "198.18.1.2",
        "203.0.113.130",
        5555,
        9,
        64,
        b"inner",
    ));
    // A data header alone (its sequence is in `plain`).
    let head = |link: u8, counter: u64| header(1, link, 0, counter)[..16].to_vec();
    let flips = |mode: u8, positions: &[u16]| {
        let mut v = vec![mode];
        v.extend(head(0, 1 << 40));
        v.push(positions.len() as u8);
        for p in positions {
            v.extend_from_slice(&p.to_be_bytes());
        }
        v.extend_from_slice(&plain);
        v
    };
    let mut garbage = vec![0];
    garbage.extend(head(1, 5));
    garbage.extend_from_slice(&plain);
    garbage.extend_from_slice(&[0xaa; 16]);
    let mut replay = vec![3];
    for step in [1i16, 1, -1, 5, -3, 0, -2900, 2800, i16::MAX, i16::MIN, 1] {
        replay.extend_from_slice(&step.to_be_bytes());
    }
    // Bit positions: link id (byte 2), lane (3), receiver (4..8), counter (8..16),
    // ciphertext (16..: the bond sequence, then the packet), tag (last 16 bytes).
    vec![
        ("tunnel", "arbitrary-message", garbage),
        ("tunnel", "flip-link-id", flips(1, &[2 * 8])),
        (
            "tunnel",
            "flip-ciphertext-and-tag",
            flips(1, &[20 * 8 + 3, 60 * 8]),
        ),
        ("tunnel", "hub-flip-link-id", flips(2, &[2 * 8])),
        ("tunnel", "hub-flip-lane", flips(2, &[3 * 8 + 1])),
        ("tunnel", "hub-flip-receiver", flips(2, &[7 * 8])),
        ("tunnel", "hub-flip-counter", flips(2, &[15 * 8 + 7])),
        ("tunnel", "hub-flip-ciphertext", flips(2, &[30 * 8])),
        ("tunnel", "hub-flip-tag", flips(2, &[(16 + 33 + 15) * 8])),
        ("tunnel", "hub-flip-version-and-type", flips(2, &[0, 8])),
        ("tunnel", "replay-window", replay),
    ]
}

fn handshake() -> Vec<Seed> {
    use braid_dataplane::tunnel::handshake::{INITIATION_LEN, RESPONSE_LEN};
    // Shaped as the real messages (version, type, link 0, indices), but nothing in them
    // authenticates: the genuine ones are made anew by every run of mode 2.
    let shaped = |mode: u8, kind: u8, len: usize| {
        let mut v = vec![mode, VERSION, kind, 0, 0, 0, 0, 0, 7];
        v.resize(1 + len, 0x5a);
        v
    };
    let mut truncated = shaped(0, 5, INITIATION_LEN);
    truncated.truncate(60);
    // Mode 2: which message, bytes cut, xor mask from its start.
    let exchange = |which: u8, cut: u8, flip_at: Option<usize>| {
        let mut v = vec![2, which, cut];
        if let Some(at) = flip_at {
            v.resize(3 + at, 0);
            v.push(1);
        }
        v
    };
    vec![
        (
            "handshake",
            "initiation-shaped-forgery",
            shaped(0, 5, INITIATION_LEN),
        ),
        ("handshake", "initiation-truncated", truncated),
        (
            "handshake",
            "response-shaped-forgery",
            shaped(1, 6, RESPONSE_LEN),
        ),
        ("handshake", "exchange-genuine", exchange(0, 0, None)),
        (
            "handshake",
            "exchange-initiation-flipped-mac1",
            exchange(0, 0, Some(INITIATION_LEN - 20)),
        ),
        ("handshake", "exchange-initiation-cut", exchange(0, 1, None)),
        (
            "handshake",
            "exchange-response-flipped-ephemeral",
            exchange(1, 0, Some(20)),
        ),
        (
            "handshake",
            "exchange-response-flipped-receiver",
            exchange(1, 0, Some(11)),
        ),
    ]
}

fn control() -> Vec<Seed> {
    let lines: &[(&str, &str)] = &[
        ("status", r#"{"version":1,"request":{"type":"status"}}"#),
        (
            "set-weights",
            r#"{"version":1,"request":{"type":"set_weights","peer":null,"weights":[{"link":"isp1","weight":1},{"link":"isp2","weight":3}]}}"#,
        ),
        (
            "set-weights-refused",
            r#"{"version":1,"request":{"type":"set_weights","weights":[{"link":"isp1","weight":2},{"link":"isp2","weight":5000}]}}"#,
        ),
        (
            "set-mode",
            r#"{"version":1,"request":{"type":"set_mode","mode":"flow","balance":"bytes"}}"#,
        ),
        (
            "link-down-up",
            "{\"version\":1,\"request\":{\"type\":\"set_link_state\",\"link\":\"isp1\",\"state\":\"down\"}}\n{\"version\":1,\"request\":{\"type\":\"set_link_state\",\"link\":\"isp2\",\"state\":\"down\"}}\n{\"version\":1,\"request\":{\"type\":\"set_link_state\",\"peer\":\"hub\",\"link\":\"isp1\",\"state\":\"up\"}}",
        ),
        (
            "routes-and-rules",
            "{\"version\":1,\"request\":{\"type\":\"add_route\",\"route\":{\"table\":\"isp1\",\"to\":\"0.0.0.0/0\",\"via\":\"198.18.11.1\",\"dev\":\"wan1\"}}}\n{\"version\":1,\"request\":{\"type\":\"add_rule\",\"rule\":{\"from\":\"198.18.1.50/32\",\"table\":\"isp1\"},\"index\":0}}\n{\"version\":1,\"request\":{\"type\":\"del_rule\",\"from\":\"198.18.1.50/32\"}}\n{\"version\":1,\"request\":{\"type\":\"del_route\",\"table\":\"isp1\",\"to\":\"0.0.0.0/0\"}}",
        ),
        (
            "route-to-a-missing-peer",
            r#"{"version":1,"request":{"type":"add_route","route":{"to":"198.18.0.0/15","peer":"nobody"}}}"#,
        ),
        ("reload", r#"{"version":1,"request":{"type":"reload"}}"#),
        ("nat", r#"{"version":1,"request":{"type":"nat","address":"198.18.1.2","limit":5}}"#),
        (
            "malformed",
            "{\"version\":1,\"request\":{\"type\":\"status\",\"extra\":1}}\n{\"version\":2,\"request\":{\"type\":\"links\"}}\n{\"version\":1,\"request\":{\"type\":\"set_mode\",\"mode\":\"flow\",\"mode\":\"packet\"}}\n[1,2\nnull",
        ),
        (
            "response",
            r#"{"version":1,"error":{"kind":"refused","message":"no","problems":["a: b"]}}"#,
        ),
    ];
    lines
        .iter()
        .map(|(name, text)| ("control", *name, text.as_bytes().to_vec()))
        .collect()
}

fn config() -> Vec<Seed> {
    let edge = super::pipeline::config_text(false, 0b011);
    let hub = super::pipeline::config_text(true, 0b10_1111);
    vec![
        ("config", "edge", edge.clone().into_bytes()),
        ("config", "hub-masquerade-two-edges", hub.into_bytes()),
        (
            "config",
            "weight-out-of-range",
            edge.replace("weight = 2", "weight = 2000").into_bytes(),
        ),
        (
            "config",
            "missing-field",
            edge.replace(&format!("public_key = \"{HUB_PUBLIC}\"\n"), "")
                .into_bytes(),
        ),
        (
            "config",
            "syntax-error",
            edge.replace("]]", "]").into_bytes(),
        ),
        (
            "config",
            "unknown-key-and-bad-address",
            edge.replace("198.18.1.1/24", "198.18.1.300/24")
                .replace("[bond]", "[bond]\nspeed = 9")
                .into_bytes(),
        ),
    ]
}
