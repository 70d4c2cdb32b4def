//! Golden packets: each translation is compared byte for byte with the packet
//! etherparse builds with the expected addresses and ports, and every checksum
//! is recomputed.

use super::*;
use etherparse::icmpv4::DestUnreachableHeader;

fn ep(proto: Proto, (addr, port): Addr) -> Endpoint {
    Endpoint { proto, addr, port }
}

/// Translates `p` out at `now`, checks it equals `want` and verifies.
fn out_ok(t: &mut NatTable, mut p: Vec<u8>, want: &[u8], now: u64) -> Translated {
    let tr = t.translate_out(&mut p, now).expect("translated out");
    assert_eq!(p, want, "translated out");
    verify(&p).unwrap();
    tr
}

/// Translates `p` in at `now`, checks it equals `want` and verifies.
fn in_ok(t: &mut NatTable, mut p: Vec<u8>, want: &[u8], now: u64) -> Translated {
    let tr = t.translate_in(&mut p, now).expect("translated in");
    assert_eq!(p, want, "translated in");
    verify(&p).unwrap();
    tr
}

/// Checks that `f` refuses `p` with `err` and leaves it unchanged.
fn refused(
    t: &mut NatTable,
    f: fn(&mut NatTable, &mut [u8], u64) -> Result<Translated, NatError>,
    p: &[u8],
    err: NatError,
) {
    let mut copy = p.to_vec();
    assert_eq!(f(t, &mut copy, 0), Err(err));
    assert_eq!(copy, p, "a refused packet is unchanged");
}

#[test]
fn tcp_handshake_out_and_back() {
    let mut t = table(&config(1024));
    let tr = out_ok(
        &mut t,
        tcp((HOST_A, 40000), (REMOTE, 443), SYN, b""),
        &tcp((PUBLIC, 40000), (REMOTE, 443), SYN, b""),
        0,
    );
    assert!(tr.created && !tr.icmp_error);
    assert_eq!(tr.inside, ep(Proto::Tcp, (HOST_A, 40000)));
    assert_eq!(tr.outside, ep(Proto::Tcp, (PUBLIC, 40000)));
    assert_eq!(
        t.sessions(S).next().map(|s| s.state),
        Some(SessionState::TcpOpening)
    );
    in_ok(
        &mut t,
        tcp((REMOTE, 443), (PUBLIC, 40000), SYN | ACK, b""),
        &tcp((REMOTE, 443), (HOST_A, 40000), SYN | ACK, b""),
        S,
    );
    let tr = out_ok(
        &mut t,
        tcp(
            (HOST_A, 40000),
            (REMOTE, 443),
            ACK,
            b"GET / HTTP/1.1\r\n\r\n",
        ),
        &tcp(
            (PUBLIC, 40000),
            (REMOTE, 443),
            ACK,
            b"GET / HTTP/1.1\r\n\r\n",
        ),
        2 * S,
    );
    assert!(!tr.created);
    let s = t.sessions(2 * S).next().unwrap();
    assert_eq!(s.state, SessionState::TcpEstablished);
    assert_eq!(s.remaining_ns, 7440 * S);
    assert_eq!(s.age_ns, 2 * S);
    assert_eq!(t.counters().translated_out, 2);
    assert_eq!(t.counters().translated_in, 1);
    assert_eq!(
        ends(&tcp((PUBLIC, 40000), (REMOTE, 443), SYN, b"")).0,
        (PUBLIC, 40000)
    );
}

#[test]
fn udp_keeps_free_ports_and_takes_the_next_on_collision() {
    let mut t = table(&config(1024));
    out_ok(
        &mut t,
        udp((HOST_A, 5353), (REMOTE, 53), b"query a"),
        &udp((PUBLIC, 5353), (REMOTE, 53), b"query a"),
        0,
    );
    let tr = out_ok(
        &mut t,
        udp((HOST_B, 5353), (REMOTE, 53), b"query b"),
        &udp((PUBLIC, 5354), (REMOTE, 53), b"query b"),
        0,
    );
    assert_eq!(tr.outside.port, 5354);
    // Endpoint-independent: A keeps its mapping towards another host.
    out_ok(
        &mut t,
        udp((HOST_A, 5353), (ROUTER, 123), b"x"),
        &udp((PUBLIC, 5353), (ROUTER, 123), b"x"),
        0,
    );
    // And any outside host may answer on it.
    in_ok(
        &mut t,
        udp((ROUTER, 9), (PUBLIC, 5353), b"answer"),
        &udp((ROUTER, 9), (HOST_A, 5353), b"answer"),
        0,
    );
    in_ok(
        &mut t,
        udp((REMOTE, 53), (PUBLIC, 5354), b"answer b"),
        &udp((REMOTE, 53), (HOST_B, 5353), b"answer b"),
        0,
    );
    assert_eq!(t.len(), 2);
}

#[test]
fn zero_udp_checksum_stays_zero_both_ways() {
    let mut t = table(&config(1024));
    let mut p = udp((HOST_A, 7000), (REMOTE, 7001), b"no checksum");
    zero_udp_checksum(&mut p);
    let mut want = udp((PUBLIC, 7000), (REMOTE, 7001), b"no checksum");
    zero_udp_checksum(&mut want);
    out_ok(&mut t, p, &want, 0);
    let mut r = udp((REMOTE, 7001), (PUBLIC, 7000), b"reply");
    zero_udp_checksum(&mut r);
    let mut want = udp((REMOTE, 7001), (HOST_A, 7000), b"reply");
    zero_udp_checksum(&mut want);
    in_ok(&mut t, r, &want, 0);
}

#[test]
fn icmp_echo_ids_are_ports() {
    let mut t = table(&config(1024));
    out_ok(
        &mut t,
        echo(HOST_A, REMOTE, true, 0x1234, b"ping a"),
        &echo(PUBLIC, REMOTE, true, 0x1234, b"ping a"),
        0,
    );
    out_ok(
        &mut t,
        echo(HOST_B, REMOTE, true, 0x1234, b"ping b"),
        &echo(PUBLIC, REMOTE, true, 0x1235, b"ping b"),
        0,
    );
    in_ok(
        &mut t,
        echo(REMOTE, PUBLIC, false, 0x1235, b"ping b"),
        &echo(REMOTE, HOST_B, false, 0x1234, b"ping b"),
        0,
    );
    in_ok(
        &mut t,
        echo(REMOTE, PUBLIC, false, 0x1234, b"ping a"),
        &echo(REMOTE, HOST_A, false, 0x1234, b"ping a"),
        0,
    );
    // Identifiers below the port range are moved into it.
    out_ok(
        &mut t,
        echo(HOST_A, REMOTE, true, 7, b""),
        &echo(PUBLIC, REMOTE, true, 1024, b""),
        0,
    );
    // Requests from outside and replies from inside are not NAT traffic.
    let f_in = NatTable::translate_in;
    let f_out = NatTable::translate_out;
    refused(
        &mut t,
        f_in,
        &echo(REMOTE, PUBLIC, true, 0x1234, b""),
        NatError::Unsupported,
    );
    refused(
        &mut t,
        f_out,
        &echo(HOST_A, REMOTE, false, 0x1234, b""),
        NatError::Unsupported,
    );
}

#[test]
fn ip_options_are_skipped() {
    let mut t = table(&config(1024));
    out_ok(
        &mut t,
        with_options(&udp((HOST_A, 6000), (REMOTE, 53), b"opt"), 2),
        &with_options(&udp((PUBLIC, 6000), (REMOTE, 53), b"opt"), 2),
        0,
    );
}

#[test]
fn time_exceeded_quoting_udp_comes_back_to_the_host() {
    let mut t = table(&config(1024));
    let orig = udp((HOST_A, 33000), (REMOTE, 33434), b"traceroute probe");
    let mut sent = orig.clone();
    t.translate_out(&mut sent, 0).unwrap();
    let tr = in_ok(
        &mut t,
        icmp_error(ROUTER, PUBLIC, time_exceeded(), &sent),
        &icmp_error(ROUTER, HOST_A, time_exceeded(), &orig),
        S,
    );
    assert!(tr.icmp_error && !tr.created);
    assert_eq!(t.counters().translated_in, 1);
}

#[test]
fn time_exceeded_quoting_truncated_tcp_fixes_what_is_there() {
    let mut t = table(&config(1024));
    let orig = tcp(
        (HOST_A, 41000),
        (REMOTE, 80),
        SYN,
        b"payload past the quote",
    );
    let mut sent = orig.clone();
    t.translate_out(&mut sent, 0).unwrap();
    // RFC 792 quote: IP header and 8 bytes (ports and sequence, no checksum).
    in_ok(
        &mut t,
        icmp_error(ROUTER, PUBLIC, time_exceeded(), &sent[..28]),
        &icmp_error(ROUTER, HOST_A, time_exceeded(), &orig[..28]),
        0,
    );
    // A longer quote holding the TCP checksum but not the whole segment.
    in_ok(
        &mut t,
        icmp_error(ROUTER, PUBLIC, time_exceeded(), &sent[..44]),
        &icmp_error(ROUTER, HOST_A, time_exceeded(), &orig[..44]),
        0,
    );
}

#[test]
fn frag_needed_quoting_tcp_reaches_the_host() {
    let mut t = table(&config(1024));
    let orig = tcp((HOST_A, 42000), (REMOTE, 443), ACK, &[0x42; 1400]);
    let mut sent = orig.clone();
    t.translate_out(&mut sent, 0).unwrap();
    let frag = unreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 });
    in_ok(
        &mut t,
        icmp_error(ROUTER, PUBLIC, frag.clone(), &sent[..548]),
        &icmp_error(ROUTER, HOST_A, frag.clone(), &orig[..548]),
        0,
    );
    // The whole segment quoted: its TCP checksum verifies after translation too.
    let small = tcp((HOST_A, 42000), (REMOTE, 443), ACK, b"short");
    let mut sent = small.clone();
    t.translate_out(&mut sent, 0).unwrap();
    in_ok(
        &mut t,
        icmp_error(ROUTER, PUBLIC, frag.clone(), &sent),
        &icmp_error(ROUTER, HOST_A, frag, &small),
        0,
    );
}

#[test]
fn time_exceeded_quoting_echo_request() {
    let mut t = table(&config(1024));
    out_ok(
        &mut t,
        echo(HOST_B, REMOTE, true, 7700, b"a"),
        &echo(PUBLIC, REMOTE, true, 7700, b"a"),
        0,
    );
    let orig = echo(HOST_A, REMOTE, true, 7700, b"traceroute -I");
    let mut sent = orig.clone();
    t.translate_out(&mut sent, 0).unwrap();
    assert_eq!(ends(&sent).0, (PUBLIC, 7701));
    in_ok(
        &mut t,
        icmp_error(ROUTER, PUBLIC, time_exceeded(), &sent),
        &icmp_error(ROUTER, HOST_A, time_exceeded(), &orig),
        0,
    );
}

#[test]
fn quoted_zero_udp_checksum_stays_zero() {
    let mut t = table(&config(1024));
    let mut orig = udp((HOST_A, 9000), (REMOTE, 9001), b"x");
    zero_udp_checksum(&mut orig);
    let mut sent = orig.clone();
    t.translate_out(&mut sent, 0).unwrap();
    let port = unreachable(DestUnreachableHeader::Port);
    in_ok(
        &mut t,
        icmp_error(REMOTE, PUBLIC, port.clone(), &sent),
        &icmp_error(REMOTE, HOST_A, port, &orig),
        0,
    );
}

#[test]
fn errors_from_inside_about_inbound_packets_go_out() {
    let mut t = table(&config(1024));
    t.translate_out(&mut udp((HOST_A, 5000), (REMOTE, 53), b"q"), 0)
        .unwrap();
    t.translate_out(&mut tcp((HOST_A, 40000), (REMOTE, 443), SYN, b""), 0)
        .unwrap();
    t.translate_out(&mut echo(HOST_A, REMOTE, true, 3000, b""), 0)
        .unwrap();
    // The host rejects a datagram that came in: port unreachable.
    let arrived = udp((REMOTE, 53), (HOST_A, 5000), b"late answer");
    let sent_by_remote = udp((REMOTE, 53), (PUBLIC, 5000), b"late answer");
    let port = unreachable(DestUnreachableHeader::Port);
    let tr = out_ok(
        &mut t,
        icmp_error(HOST_A, REMOTE, port.clone(), &arrived),
        &icmp_error(PUBLIC, REMOTE, port, &sent_by_remote),
        0,
    );
    assert!(tr.icmp_error);
    // A router on the LAN reports an inbound segment that ran out of TTL.
    let arrived = tcp((REMOTE, 443), (HOST_A, 40000), SYN | ACK, b"");
    let sent_by_remote = tcp((REMOTE, 443), (PUBLIC, 40000), SYN | ACK, b"");
    out_ok(
        &mut t,
        icmp_error(LAN_ROUTER, REMOTE, time_exceeded(), &arrived[..28]),
        &icmp_error(PUBLIC, REMOTE, time_exceeded(), &sent_by_remote[..28]),
        0,
    );
    // An inbound echo reply quoted.
    let arrived = echo(REMOTE, HOST_A, false, 3000, b"r");
    let sent_by_remote = echo(REMOTE, PUBLIC, false, 3000, b"r");
    let host = unreachable(DestUnreachableHeader::Host);
    out_ok(
        &mut t,
        icmp_error(HOST_A, REMOTE, host.clone(), &arrived),
        &icmp_error(PUBLIC, REMOTE, host, &sent_by_remote),
        0,
    );
    assert_eq!(t.counters().translated_out, 6);
}

#[test]
fn packets_without_a_session_or_support_are_refused_unchanged() {
    let mut t = table(&config(1024));
    let f_in = NatTable::translate_in;
    let f_out = NatTable::translate_out;
    let mut sent = udp((HOST_A, 5000), (REMOTE, 53), b"q");
    t.translate_out(&mut sent, 0).unwrap();
    // Inbound to an unmapped port, or to an address outside the pool.
    refused(
        &mut t,
        f_in,
        &udp((REMOTE, 53), (PUBLIC, 5001), b""),
        NatError::NoSession,
    );
    refused(
        &mut t,
        f_in,
        &udp((REMOTE, 53), (ROUTER, 5000), b""),
        NatError::NoSession,
    );
    refused(
        &mut t,
        f_in,
        &tcp((REMOTE, 53), (PUBLIC, 5000), SYN, b""),
        NatError::NoSession,
    );
    // An error about a packet no session sent, or not addressed to its source.
    let other = udp((PUBLIC, 5999), (REMOTE, 53), b"q");
    refused(
        &mut t,
        f_in,
        &icmp_error(ROUTER, PUBLIC, time_exceeded(), &other),
        NatError::NoSession,
    );
    refused(
        &mut t,
        f_in,
        &icmp_error(ROUTER, HOST_B, time_exceeded(), &sent),
        NatError::NoSession,
    );
    let arrived = udp((REMOTE, 53), (HOST_B, 5000), b"");
    let port = unreachable(DestUnreachableHeader::Port);
    refused(
        &mut t,
        f_out,
        &icmp_error(HOST_B, REMOTE, port.clone(), &arrived),
        NatError::NoSession,
    );
    // An error about an error.
    let inner = icmp_error(
        PUBLIC,
        REMOTE,
        port.clone(),
        &udp((REMOTE, 1), (PUBLIC, 5000), b""),
    );
    refused(
        &mut t,
        f_in,
        &icmp_error(ROUTER, PUBLIC, port.clone(), &inner),
        NatError::Unsupported,
    );
    // A quote too short for ports.
    refused(
        &mut t,
        f_in,
        &icmp_error(ROUTER, PUBLIC, port, &sent[..24]),
        NatError::Malformed,
    );
    // Another protocol (GRE), a fragment, a truncated header, not IPv4.
    let mut gre = udp((HOST_A, 1), (REMOTE, 2), b"");
    gre[9] = 47;
    refused(&mut t, f_out, &gre, NatError::Unsupported);
    let mut frag = udp((HOST_A, 5000), (REMOTE, 53), b"q");
    frag[6] |= 0x20;
    refused(&mut t, f_out, &frag, NatError::Fragment);
    let syn = tcp((HOST_A, 1), (REMOTE, 2), SYN, b"");
    refused(&mut t, f_out, &syn[..30], NatError::Malformed);
    let mut v6 = syn.clone();
    v6[0] = 0x65;
    refused(&mut t, f_out, &v6, NatError::Malformed);
    refused(&mut t, f_out, &[], NatError::Malformed);
    assert_eq!(t.counters().translated_in, 0);
}

#[test]
fn hairpin_is_out_then_in() {
    let mut t = table(&config(1024));
    // B has a mapping (a UDP "server" that talked out first).
    t.translate_out(&mut udp((HOST_B, 3478), (REMOTE, 3478), b"bind"), 0)
        .unwrap();
    let mut p = udp((HOST_A, 4000), (PUBLIC, 3478), b"to b via public");
    assert!(t.config().is_hairpin(PUBLIC, 3478));
    assert!(!t.config().is_hairpin(REMOTE, 3478));
    assert!(!t.config().is_hairpin(PUBLIC, 22));
    t.translate_out(&mut p, 0).unwrap();
    t.translate_in(&mut p, 0).unwrap();
    assert_eq!(p, udp((PUBLIC, 4000), (HOST_B, 3478), b"to b via public"));
    verify(&p).unwrap();
}

#[test]
fn trailing_link_padding_is_left_alone() {
    let mut t = table(&config(1024));
    let mut p = echo(HOST_A, REMOTE, true, 5, b"");
    p.extend_from_slice(&[0xee; 10]);
    t.translate_out(&mut p, 0).unwrap();
    assert_eq!(&p[28..], &[0xee; 10]);
    verify(&p[..28]).unwrap();
}
