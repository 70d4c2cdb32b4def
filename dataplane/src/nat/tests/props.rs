//! Properties over random packets and operation sequences.

use super::*;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

const PUBLIC2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

/// A random inside→outside packet: TCP (any flags), UDP (maybe without
/// checksum) or an ICMP echo request, with up to 3 words of IP options.
#[derive(Debug, Clone)]
struct Flow {
    proto: Proto,
    inside: Addr,
    remote: Addr,
    flags: u8,
    no_udp_checksum: bool,
    option_words: usize,
    payload: Vec<u8>,
}

fn flow() -> impl Strategy<Value = Flow> {
    (
        prop_oneof![Just(Proto::Tcp), Just(Proto::Udp), Just(Proto::Icmp)],
        (any::<u8>(), any::<u8>(), any::<u16>()),
        (any::<u8>(), any::<u16>()),
        0u8..0x40,
        any::<bool>(),
        0usize..4,
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(
            |(proto, (x, y, port), (z, rport), flags, no_sum, words, payload)| Flow {
                proto,
                inside: (Ipv4Addr::new(198, 18, x, y), port),
                remote: (Ipv4Addr::new(203, 0, 113, z), rport),
                flags,
                no_udp_checksum: no_sum,
                option_words: words,
                payload,
            },
        )
}

impl Flow {
    fn packet(&self) -> Vec<u8> {
        let p = match self.proto {
            Proto::Tcp => tcp(self.inside, self.remote, self.flags, &self.payload),
            Proto::Udp => {
                let mut p = udp(self.inside, self.remote, &self.payload);
                if self.no_udp_checksum {
                    zero_udp_checksum(&mut p);
                }
                p
            }
            Proto::Icmp => echo(
                self.inside.0,
                self.remote.0,
                true,
                self.inside.1,
                &self.payload,
            ),
        };
        with_options(&p, self.option_words)
    }

    /// The remote port as `ends` reports it on an untranslated packet.
    fn remote_port(&self) -> u16 {
        match self.proto {
            Proto::Icmp => self.inside.1,
            _ => self.remote.1,
        }
    }
}

/// The reply to translated packet `p`: addresses and ports swapped (an echo
/// request becomes the reply). Swapping keeps every checksum valid.
fn reply(p: &[u8]) -> Vec<u8> {
    let mut r = p.to_vec();
    let hl = usize::from(r[0] & 0xf) * 4;
    let (src, dst) = (r[12..16].to_vec(), r[16..20].to_vec());
    r[12..16].copy_from_slice(&dst);
    r[16..20].copy_from_slice(&src);
    if r[9] == 1 {
        r[hl] = 0;
        r[hl + 2] = 0;
        r[hl + 3] = 0;
        let c = checksum::checksum(&r[hl..]);
        r[hl + 2..hl + 4].copy_from_slice(&c.to_be_bytes());
    } else {
        let (sp, dp) = (r[hl..hl + 2].to_vec(), r[hl + 2..hl + 4].to_vec());
        r[hl..hl + 2].copy_from_slice(&dp);
        r[hl + 2..hl + 4].copy_from_slice(&sp);
    }
    r
}

fn two_address_table() -> NatTable {
    table(&NatConfig {
        max_sessions: 4096,
        ..NatConfig::new(vec![PUBLIC, PUBLIC2])
    })
}

proptest! {
    /// Out, then the swapped reply in: the reply reaches the original inside
    /// endpoint, nothing but addresses, ports and checksums changed, and every
    /// checksum verifies at each step.
    #[test]
    fn translated_out_and_reply_in_restores_the_inside_endpoint(f in flow()) {
        let mut t = two_address_table();
        let orig = f.packet();
        let mut p = orig.clone();
        let tr = t.translate_out(&mut p, 0).unwrap();
        prop_assert!(verify(&p).is_ok(), "{:?}", verify(&p));
        let (src, dst) = ends(&p);
        prop_assert_eq!(src, (tr.outside.addr, tr.outside.port));
        prop_assert!([PUBLIC, PUBLIC2].contains(&src.0));
        // ICMP: `ends` reports the (translated) identifier on both sides.
        let dst_port = if f.proto == Proto::Icmp { src.1 } else { f.remote.1 };
        prop_assert_eq!(dst, (f.remote.0, dst_port));
        // A fresh table keeps the inside port when it lies in the range.
        let expect = if f.inside.1 >= 1024 { f.inside.1 } else { src.1 };
        prop_assert_eq!(src.1, expect);
        prop_assert!(src.1 >= 1024);
        let hl = 20 + 4 * f.option_words;
        let l4 = match f.proto { Proto::Tcp => 20, _ => 8 };
        prop_assert_eq!(&p[hl + l4..], &orig[hl + l4..], "payload untouched");
        if f.proto == Proto::Udp && f.no_udp_checksum {
            prop_assert_eq!(&p[hl + 6..hl + 8], &[0, 0]);
        }
        let mut r = reply(&p);
        let back = t.translate_in(&mut r, S).unwrap();
        prop_assert_eq!(back.inside, tr.inside);
        prop_assert!(verify(&r).is_ok(), "{:?}", verify(&r));
        prop_assert_eq!(ends(&r), ((f.remote.0, f.remote_port()), f.inside));
        prop_assert_eq!(r, reply(&orig));
    }

    /// An ICMP error quoting any prefix (at least 8 transport bytes) of the
    /// translated packet comes back quoting the same prefix of the original.
    #[test]
    fn errors_quoting_any_prefix_come_back(f in flow(), cut in any::<prop::sample::Index>(), mtu in any::<bool>()) {
        let mut t = two_address_table();
        let orig = f.packet();
        let mut p = orig.clone();
        let tr = t.translate_out(&mut p, 0).unwrap();
        let hl = 20 + 4 * f.option_words;
        let len = hl + 8 + cut.index(p.len() - hl - 7);
        let kind = if mtu {
            unreachable(etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1280 })
        } else {
            time_exceeded()
        };
        let mut e = icmp_error(ROUTER, tr.outside.addr, kind.clone(), &p[..len]);
        t.translate_in(&mut e, 0).unwrap();
        let mut want = orig[..len].to_vec();
        if f.proto == Proto::Tcp && len == hl + 17 {
            // Half a TCP checksum quoted: it cannot be fixed and is left as it was.
            want[len - 1] = p[len - 1];
        }
        prop_assert_eq!(&e, &icmp_error(ROUTER, f.inside.0, kind, &want));
        prop_assert!(verify(&e).is_ok(), "{:?}", verify(&e));
    }

    /// Endpoint-independent mapping: one inside endpoint talking to many
    /// destinations (among other hosts' traffic) keeps one outside endpoint.
    #[test]
    fn one_inside_endpoint_one_outside_endpoint(
        port in any::<u16>(),
        dsts in proptest::collection::vec((any::<u8>(), any::<u16>(), any::<bool>()), 1..40),
    ) {
        let mut t = two_address_table();
        let mut seen = HashSet::new();
        for (i, (z, dport, other_first)) in dsts.into_iter().enumerate() {
            let remote = (Ipv4Addr::new(203, 0, 113, z), dport);
            if other_first {
                let other = (Ipv4Addr::new(198, 19, (i >> 8) as u8, i as u8), port);
                t.translate_out(&mut udp(other, remote, b""), 0).unwrap();
            }
            let mut p = udp((HOST_A, port), remote, b"x");
            let tr = t.translate_out(&mut p, 0).unwrap();
            seen.insert(tr.outside);
        }
        prop_assert_eq!(seen.len(), 1);
    }

    /// Over random creations, refreshes and expiry in a 128-port range: live
    /// outside endpoints never repeat, each inside endpoint has one, and ports
    /// run out only when every port is live.
    #[test]
    fn live_mappings_never_share_an_outside_port(
        ops in proptest::collection::vec((0u8..6, 0u16..8, 0u8..3, 0u64..40), 1..400),
    ) {
        let mut cfg = NatConfig::new(vec![PUBLIC]);
        cfg.ports = PortRange { lo: 2000, hi: 2127 };
        cfg.max_sessions = 1000;
        let mut t = table(&cfg);
        let mut now = 0;
        for (host, port, proto, dt) in ops {
            now += dt * S;
            let inside = (Ipv4Addr::new(198, 18, 0, host), 2000 + port);
            let mut p = match proto {
                0 => udp(inside, (REMOTE, 53), b""),
                1 => tcp(inside, (REMOTE, 80), SYN, b""),
                _ => echo(inside.0, REMOTE, true, inside.1, b""),
            };
            let result = t.translate_out(&mut p, now);
            let live: Vec<SessionInfo> = t.sessions(now).collect();
            let outs: HashSet<Endpoint> = live.iter().map(|s| s.outside).collect();
            let ins: HashSet<Endpoint> = live.iter().map(|s| s.inside).collect();
            prop_assert_eq!(outs.len(), live.len());
            prop_assert_eq!(ins.len(), live.len());
            match result {
                Ok(tr) => prop_assert!(live.iter().any(|s| s.outside == tr.outside && s.inside == tr.inside)),
                Err(e) => {
                    prop_assert_eq!(e, NatError::PortsExhausted);
                    let same = live.iter().filter(|s| s.outside.proto == tr_proto(proto)).count();
                    prop_assert_eq!(same, 128);
                }
            }
        }
    }

    /// With several workers and packets handed to their owners, each inside
    /// endpoint gets one mapping, outside endpoints are unique over all
    /// workers, and every reply reaches the owner holding its session.
    #[test]
    fn handoff_by_owner_keeps_mappings_consistent(
        workers in 1usize..5,
        flows in proptest::collection::vec((any::<u8>(), 1000u16..1400, any::<u16>()), 1..120),
    ) {
        let cfg = NatConfig { max_sessions: 8192, ..NatConfig::new(vec![PUBLIC, PUBLIC2]) };
        let mut tables: Vec<NatTable> = (0..workers)
            .map(|w| NatTable::new(&cfg, PortSlice { worker: w, workers }, w as u64).unwrap())
            .collect();
        let mut mapping: HashMap<Addr, Endpoint> = HashMap::new();
        for (host, port, rport) in flows {
            let inside = (Ipv4Addr::new(198, 18, 2, host % 16), port);
            let mut p = udp(inside, (REMOTE, rport), b"d");
            let ep = outbound_endpoint(&p).unwrap();
            let w = owner_of_inside(ep.proto, ep.addr, ep.port, cfg.ports, workers);
            let tr = tables[w].translate_out(&mut p, 0).unwrap();
            prop_assert_eq!(owner_of_port(tr.outside.port, cfg.ports, workers), w);
            if inside.1 >= 1024 && tr.created {
                // Ports in the range are free unless another host took them.
                let taken = mapping.values().any(|o| o.port == inside.1 && o.addr == tr.outside.addr);
                prop_assert!(tr.outside.port == inside.1 || taken);
            }
            prop_assert_eq!(*mapping.entry(inside).or_insert(tr.outside), tr.outside);
            let mut r = reply(&p);
            let ep = inbound_endpoint(&r).unwrap();
            let owner = owner_of_port(ep.port, cfg.ports, workers);
            let back = tables[owner].translate_in(&mut r, 0).unwrap();
            prop_assert_eq!((back.inside.addr, back.inside.port), inside);
        }
        let outs: HashSet<Endpoint> = mapping.values().copied().collect();
        prop_assert_eq!(outs.len(), mapping.len());
    }

    /// Garbage and damaged packets never panic, and a refused packet is unchanged.
    #[test]
    fn damaged_packets_never_panic(
        f in flow(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        as_error in any::<bool>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut t = two_address_table();
        let mut p = f.packet();
        let tr = t.translate_out(&mut p, 0).unwrap();
        let mut e = if as_error { icmp_error(ROUTER, tr.outside.addr, time_exceeded(), &p) } else { reply(&p) };
        for (at, v) in flips {
            let i = at.index(e.len());
            e[i] ^= v;
        }
        e.truncate(1 + cut.index(e.len()));
        for dir in [NatTable::translate_in, NatTable::translate_out] {
            let mut copy = e.clone();
            if dir(&mut t, &mut copy, 0).is_err() {
                prop_assert_eq!(&copy, &e);
            }
        }
    }
}

fn tr_proto(p: u8) -> Proto {
    match p {
        0 => Proto::Udp,
        1 => Proto::Tcp,
        _ => Proto::Icmp,
    }
}

/// A table of `sessions` for tests of the index: ports 2000..=2127 on one
/// address, UDP, TCP and ICMP timing out after 30, 60, 20 and 10 s.
fn small_table(sessions: usize) -> NatTable {
    let mut cfg = NatConfig::new(vec![PUBLIC]);
    cfg.ports = PortRange { lo: 2000, hi: 2127 };
    cfg.max_sessions = sessions;
    cfg.max_per_host = 1000;
    cfg.timeouts = NatTimeouts {
        udp: std::time::Duration::from_secs(30),
        tcp_established: std::time::Duration::from_secs(60),
        tcp_transitory: std::time::Duration::from_secs(20),
        icmp: std::time::Duration::from_secs(10),
    };
    table(&cfg)
}

/// A batch finds a session's slot ahead of its translation; an earlier packet of the
/// same batch may free that slot and give it to a new session. The later packet must
/// not be translated as that new session (a slot is taken only when it holds the
/// packet's own endpoint), and gets what one call per packet gives it: a full table.
#[test]
fn a_slot_an_earlier_packet_of_the_batch_reused_is_not_taken_for_its_old_session() {
    let x = udp((HOST_A, 4000), (REMOTE, 53), b"");
    let y = udp((HOST_B, 4000), (REMOTE, 53), b"");
    let (mut one, mut many) = (small_table(1), small_table(1));
    for t in [&mut one, &mut many] {
        t.translate_out(&mut x.clone(), 0).expect("x's session");
    }
    // x's session timed out: y's packet reclaims its slot, then x's finds the table full.
    let now = 31 * S;
    let mut expected = Vec::new();
    for p in [&y, &x] {
        let mut p = p.clone();
        expected.push((one.translate_out(&mut p, now), p));
    }
    assert_eq!(expected[1].0, Err(NatError::TableFull));
    let mut packets = vec![y.clone(), x.clone()];
    let mut got = Vec::new();
    many.translate_out_batch(&mut packets, now, |_, r| got.push(r));
    for ((r, p), (want_r, want_p)) in got.iter().zip(&packets).zip(&expected) {
        assert_eq!(r, want_r);
        assert_eq!(p, want_p);
    }
    assert_eq!(
        one.sessions(now).collect::<Vec<_>>(),
        many.sessions(now).collect::<Vec<_>>()
    );
}

/// A parked frame's translation tries first the slot its lookup found (a hint); a hint
/// naming another session's slot (the slot was reused, or the index named another key
/// first) is passed over, both ways, and the packet gets what a call without a hint gives.
#[test]
fn a_hint_to_another_sessions_slot_is_passed_over() {
    let x = udp((HOST_A, 4000), (REMOTE, 53), b"");
    let y = udp((HOST_B, 4000), (REMOTE, 53), b"");
    let mut t = small_table(4);
    let x_out = t
        .translate_out(&mut x.clone(), 0)
        .expect("x's session")
        .outside;
    let y_out = t
        .translate_out(&mut y.clone(), 0)
        .expect("y's session")
        .outside;
    let hint_out = |t: &NatTable, p: &[u8]| {
        t.prefetch_session_out(t.prefetch_out(outbound_endpoint(p).unwrap()))
    };
    let (hx, hy) = (hint_out(&t, &x), hint_out(&t, &y));
    assert!(hx.is_some() && hy.is_some() && hx != hy);
    for hint in [hx, hy, None] {
        let mut p = x.clone();
        let r = t.translate_out_at(&mut p, hint, S).expect("x translated");
        assert_eq!(r.outside, x_out, "{hint:?}");
        let mut plain = x.clone();
        t.translate_out(&mut plain, S).unwrap();
        assert_eq!(p, plain, "{hint:?}");
    }
    // Back in: the answer to y, with x's slot as its hint, reaches y.
    let mut back = udp((REMOTE, 53), (y_out.addr, y_out.port), b"");
    let hint_in = t.prefetch_session_in(t.prefetch_in(inbound_endpoint(&back).unwrap()));
    assert_eq!(hint_in, hy, "a session's slot is the same both ways");
    let r = t
        .translate_in_at(&mut back, hx, S)
        .expect("y's answer translated");
    assert_eq!(r.inside.addr, HOST_B);
}

/// One packet of a batch: outbound or not, host, port and protocol numbers.
type BatchOp = (bool, u8, u16, u8);

/// Random packets both ways among 8 hosts × 8 ports (the inbound ones to the
/// outside ports those are likely to get), in batches, with time advancing.
fn batches() -> impl Strategy<Value = Vec<(Vec<BatchOp>, u64)>> {
    proptest::collection::vec(
        (
            proptest::collection::vec((any::<bool>(), 0u8..8, 0u16..8, 0u8..3), 0..40),
            0u64..25,
        ),
        1..12,
    )
}

/// The packet of one random operation of [`batches`].
fn batch_packet(out: bool, host: u8, port: u16, proto: u8) -> Vec<u8> {
    let inside = (Ipv4Addr::new(198, 18, 0, host), 2000 + port);
    let outside = (PUBLIC, 2000 + port + u16::from(host));
    match (out, proto) {
        (true, 0) => udp(inside, (REMOTE, 53), b""),
        (true, 1) => tcp(inside, (REMOTE, 80), SYN, b""),
        (true, _) => echo(inside.0, REMOTE, true, inside.1, b""),
        (false, 0) => udp((REMOTE, 53), outside, b""),
        (false, 1) => tcp((REMOTE, 80), outside, SYN | ACK, b""),
        (false, _) => echo(REMOTE, outside.0, false, outside.1, b""),
    }
}

proptest! {
    /// The batch calls give every packet the same result and bytes as one call
    /// per packet, and leave the same sessions and counters, through creation,
    /// expiry, refusals of a full table and lookups that fail.
    #[test]
    fn a_batch_translates_like_one_call_per_packet(ops in batches(), sessions in 1usize..30) {
        let (mut one, mut many) = (small_table(sessions), small_table(sessions));
        let mut now = 0;
        for (batch, dt) in ops {
            now += dt * S;
            for out in [true, false] {
                let mut packets: Vec<Vec<u8>> = batch
                    .iter()
                    .filter(|op| op.0 == out)
                    .map(|&(o, h, p, pr)| batch_packet(o, h, p, pr))
                    .collect();
                let mut expected = Vec::new();
                for p in &packets {
                    let mut p = p.clone();
                    let r = if out { one.translate_out(&mut p, now) } else { one.translate_in(&mut p, now) };
                    expected.push((r, p));
                }
                let mut got = Vec::new();
                let each = |i: usize, r| got.push((i, r));
                if out {
                    many.translate_out_batch(&mut packets, now, each);
                } else {
                    many.translate_in_batch(&mut packets, now, each);
                }
                prop_assert_eq!(got.len(), packets.len());
                for (((i, r), p), (want_r, want_p)) in got.into_iter().zip(&packets).zip(&expected) {
                    prop_assert_eq!(&r, want_r, "packet {}", i);
                    prop_assert_eq!(p, want_p, "packet {}", i);
                }
            }
            prop_assert_eq!(one.counters(), many.counters());
            let (a, b): (Vec<_>, Vec<_>) = (one.sessions(now).collect(), many.sessions(now).collect());
            prop_assert_eq!(a, b);
        }
    }

    /// Against a model of the sessions (a HashMap from inside to outside
    /// endpoint and last packet): lookups both ways find exactly the live
    /// sessions, a session times out exactly at its timeout and its entries
    /// leave both indexes (removals from the middle of probe runs), a full
    /// table refuses only while every session is live, and sweeps of any
    /// budget change nothing visible. Time moves in steps of the table's
    /// 4-second expiry-list tick (when a sweep reclaims a session between ticks:
    /// `sweeps_reclaim_a_session_within_a_tick_of_its_timeout`).
    /// Sessions made and refreshed at any times: a sweep with room to finish
    /// leaves every session that has not timed out, and none that timed out a
    /// tick (4 s) or more ago.
    #[test]
    fn sweeps_reclaim_a_session_within_a_tick_of_its_timeout(
        ops in proptest::collection::vec((0u8..16, 0u64..6_000, any::<bool>()), 1..400),
    ) {
        const TIMEOUT: u64 = 30 * S;
        const MS: u64 = S / 1000;
        let mut t = small_table(64);
        let mut last: HashMap<u8, u64> = HashMap::new();
        let mut now = 0;
        for (host, dt, sweep) in ops {
            now += dt * MS;
            let inside = (Ipv4Addr::new(198, 18, 0, host), 2000);
            t.translate_out(&mut udp(inside, (REMOTE, 53), b""), now).expect("room");
            last.insert(host, now);
            if sweep {
                t.expire(now, usize::MAX);
                let live = last.values().filter(|&&l| now < l + TIMEOUT).count();
                let kept = last
                    .values()
                    .filter(|&&l| now < l + TIMEOUT + crate::nat::table::RELINK_NS)
                    .count();
                prop_assert!(
                    (live..=kept).contains(&t.len()),
                    "{} sessions kept at {} ns: live {}, within a tick {}", t.len(), now, live, kept
                );
                last.retain(|_, l| now < *l + TIMEOUT + crate::nat::table::RELINK_NS);
            }
        }
    }

    #[test]
    fn sessions_follow_a_model_through_expiry_and_a_full_table(
        ops in proptest::collection::vec((0u8..4, 0u8..8, 0u16..8, 0u64..4, 0usize..4), 1..300),
        sessions in 1usize..24,
    ) {
        const TIMEOUT: u64 = 30 * S;
        let mut t = small_table(sessions);
        let mut model: HashMap<Addr, (u16, u64)> = HashMap::new();
        let mut now = 0;
        for (op, host, port, dt, budget) in ops {
            now += dt * 4 * S;
            let inside = (Ipv4Addr::new(198, 18, 0, host), 2000 + port);
            model.retain(|_, &mut (_, last)| now < last + TIMEOUT);
            match op {
                // Out: found, created or refused.
                0 | 1 => {
                    let mut p = udp(inside, (REMOTE, 53), b"");
                    let r = t.translate_out(&mut p, now);
                    let held = model.len();
                    match model.get_mut(&inside) {
                        Some((out_port, last)) => {
                            let tr = r.expect("live session");
                            prop_assert!(!tr.created);
                            prop_assert_eq!(tr.outside.port, *out_port);
                            *last = now;
                        }
                        None if held >= sessions => {
                            prop_assert_eq!(r, Err(NatError::TableFull));
                        }
                        None => {
                            let tr = r.expect("created");
                            prop_assert!(tr.created);
                            prop_assert!(model.values().all(|&(o, _)| o != tr.outside.port), "port in use");
                            model.insert(inside, (tr.outside.port, now));
                        }
                    }
                }
                // In: to an outside port, live or not.
                2 => {
                    let out_port = 2000 + port * 8 + u16::from(host);
                    let mut p = udp((REMOTE, 53), (PUBLIC, out_port), b"");
                    let r = t.translate_in(&mut p, now);
                    match model.iter_mut().find(|(_, (o, _))| *o == out_port) {
                        Some((&ins, (_, last))) => {
                            let tr = r.expect("live session");
                            prop_assert_eq!((tr.inside.addr, tr.inside.port), ins);
                            *last = now;
                        }
                        None => prop_assert_eq!(r, Err(NatError::NoSession)),
                    }
                }
                // A sweep.
                _ => {
                    t.expire(now, budget);
                }
            }
            let live: HashMap<Addr, u16> = t
                .sessions(now)
                .map(|s| ((s.inside.addr, s.inside.port), s.outside.port))
                .collect();
            let want: HashMap<Addr, u16> = model.iter().map(|(&k, &(o, _))| (k, o)).collect();
            prop_assert_eq!(live, want);
        }
    }
}
