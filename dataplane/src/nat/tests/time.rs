//! Simulated time: timeouts per protocol and TCP state, reuse after expiry,
//! limits, and a million sessions.

use super::*;

/// Inside endpoint `i` of many: hosts 198.18.x.y, ports from 10000.
fn inside(i: u32) -> Addr {
    let host = i / 1000;
    (
        Ipv4Addr::new(198, 18, (host >> 8) as u8, host as u8),
        10000 + (i % 1000) as u16,
    )
}

/// The state and remaining time of the only session at `now`, if live.
fn only(t: &NatTable, now: u64) -> Option<(SessionState, u64)> {
    let all: Vec<SessionInfo> = t.sessions(now).collect();
    assert!(all.len() <= 1);
    all.first().map(|s| (s.state, s.remaining_ns))
}

/// Asserts the only session, last refreshed at `last`, lives exactly `secs`.
fn lives(t: &NatTable, last: u64, secs: u64, state: SessionState) {
    assert_eq!(only(t, last), Some((state, secs * S)));
    assert_eq!(only(t, last + secs * S - 1), Some((state, 1)));
    assert_eq!(only(t, last + secs * S), None);
}

#[test]
fn udp_and_icmp_time_out_and_are_dropped_lazily() {
    let mut t = table(&config(1024));
    t.translate_out(&mut udp((HOST_A, 5000), (REMOTE, 53), b""), 0)
        .unwrap();
    lives(&t, 0, 300, SessionState::Udp);
    // A reply refreshes the session (inbound refresh).
    t.translate_in(&mut udp((REMOTE, 53), (PUBLIC, 5000), b""), 299 * S)
        .unwrap();
    lives(&t, 299 * S, 300, SessionState::Udp);
    let late = udp((REMOTE, 53), (PUBLIC, 5000), b"");
    assert_eq!(
        t.translate_in(&mut late.clone(), 599 * S),
        Err(NatError::NoSession)
    );
    assert_eq!(t.counters().expired, 1);
    assert!(t.is_empty());

    let mut t = table(&config(1024));
    t.translate_out(&mut echo(HOST_A, REMOTE, true, 2000, b""), 10 * S)
        .unwrap();
    lives(&t, 10 * S, 60, SessionState::Icmp);
    let mut r = echo(REMOTE, PUBLIC, false, 2000, b"");
    assert_eq!(t.translate_in(&mut r, 70 * S), Err(NatError::NoSession));
}

#[test]
fn tcp_timeouts_follow_the_state() {
    let out = |t: &mut NatTable, flags, now| {
        t.translate_out(&mut tcp((HOST_A, 40000), (REMOTE, 443), flags, b""), now)
            .unwrap();
    };
    let back = |t: &mut NatTable, flags, now| {
        t.translate_in(&mut tcp((REMOTE, 443), (PUBLIC, 40000), flags, b""), now)
            .unwrap();
    };
    let mut t = table(&config(1024));
    out(&mut t, SYN, 0);
    lives(&t, 0, 240, SessionState::TcpOpening);
    back(&mut t, SYN | ACK, S);
    lives(&t, S, 7440, SessionState::TcpEstablished);
    out(&mut t, ACK, 2 * S);
    out(&mut t, FIN | ACK, 3 * S);
    lives(&t, 3 * S, 7440, SessionState::TcpClosing);
    back(&mut t, FIN | ACK, 4 * S);
    lives(&t, 4 * S, 240, SessionState::TcpClosed);
    out(&mut t, ACK, 5 * S);
    lives(&t, 5 * S, 240, SessionState::TcpClosed);
    // The port is reused by a new connection before the old state ran out.
    out(&mut t, SYN, 6 * S);
    lives(&t, 6 * S, 240, SessionState::TcpOpening);
    back(&mut t, SYN | ACK, 7 * S);
    back(&mut t, RST, 8 * S);
    lives(&t, 8 * S, 240, SessionState::TcpClosed);
    // Past the transitory timeout the mapping is gone.
    let mut late = tcp((REMOTE, 443), (PUBLIC, 40000), ACK, b"");
    assert_eq!(t.translate_in(&mut late, 248 * S), Err(NatError::NoSession));
}

#[test]
fn configured_timeouts_are_used() {
    let mut cfg = config(1024);
    cfg.timeouts.udp = std::time::Duration::from_millis(1500);
    cfg.timeouts.tcp_transitory = std::time::Duration::from_secs(4);
    let mut t = table(&cfg);
    t.translate_out(&mut udp((HOST_A, 5000), (REMOTE, 53), b""), 0)
        .unwrap();
    t.translate_out(&mut tcp((HOST_A, 5000), (REMOTE, 53), SYN, b""), 0)
        .unwrap();
    let remaining: Vec<u64> = t.sessions(0).map(|s| s.remaining_ns).collect();
    assert_eq!(remaining, vec![1_500_000_000, 4 * S]);
    assert_eq!(t.expire(1_500_000_000, 10), 1);
    assert_eq!(t.expire(4 * S, 10), 1);
    assert_eq!(t.counters().expired, 2);
}

#[test]
fn ports_are_reused_after_expiry() {
    let mut cfg = config(1024);
    cfg.ports = PortRange { lo: 3000, hi: 3063 };
    let mut t = table(&cfg);
    for i in 0..64u16 {
        let mut p = udp((HOST_A, 3000 + i), (REMOTE, 53), b"");
        assert_eq!(t.translate_out(&mut p, 0).unwrap().outside.port, 3000 + i);
    }
    let mut p = udp((HOST_B, 3000), (REMOTE, 53), b"");
    assert_eq!(
        t.translate_out(&mut p.clone(), S),
        Err(NatError::PortsExhausted)
    );
    assert_eq!(t.counters().refused_ports_exhausted, 1);
    // Keep one mapping alive; the others expire and give their ports back.
    t.translate_out(&mut udp((HOST_A, 3005), (REMOTE, 53), b""), 200 * S)
        .unwrap();
    let tr = t.translate_out(&mut p, 300 * S).unwrap();
    assert!(tr.created);
    assert!((3000..=3063).contains(&tr.outside.port));
    assert!(t.counters().expired >= 1);
    // The kept mapping still works, and an expired one no longer does.
    let mut r = udp((REMOTE, 53), (PUBLIC, 3005), b"");
    assert_eq!(t.translate_in(&mut r, 300 * S).unwrap().inside.addr, HOST_A);
    let gone = (3000..3064)
        .find(|&q| q != 3005 && q != tr.outside.port)
        .unwrap();
    let mut r = udp((REMOTE, 53), (PUBLIC, gone), b"");
    assert_eq!(t.translate_in(&mut r, 300 * S), Err(NatError::NoSession));
}

#[test]
fn sweep_is_bounded_and_oldest_first() {
    let mut t = table(&config(4096));
    for i in 0..1000 {
        let mut p = udp(inside(i), (REMOTE, 53), b"");
        t.translate_out(&mut p, u64::from(i) * S / 100).unwrap();
    }
    // At 305 s the sessions made at or before 5 s (the first 501) are due.
    let now = 305 * S;
    assert_eq!(t.expire(now, 10), 10);
    assert_eq!(t.len(), 990);
    let mut removed = 10;
    while removed < 501 {
        let n = t.expire(now, 64);
        assert!(n > 0 && n <= 64);
        removed += n;
    }
    assert_eq!(t.expire(now, 64), 0);
    assert_eq!(removed, 501);
    assert_eq!(t.len(), 499);
    assert_eq!(t.counters().expired, 501);
    assert!(t.sessions(now).all(|s| s.age_ns <= 300 * S));
}

#[test]
fn a_session_refreshed_within_its_tick_keeps_its_place_and_those_behind_wait_for_it() {
    let mut t = table(&config(64));
    let a = udp((HOST_A, 5000), (REMOTE, 53), b"");
    t.translate_out(&mut a.clone(), 0).unwrap();
    t.translate_out(&mut udp((HOST_B, 5000), (REMOTE, 53), b""), 0)
        .unwrap();
    // Refreshed within the same tick: A keeps its place ahead of B, and B, due at
    // 300 s, goes with A at 300.5 s: within a tick of its timeout.
    t.translate_out(&mut a.clone(), S / 2).unwrap();
    assert_eq!(t.expire(300 * S, 64), 0);
    assert_eq!(t.next_expiry(), Some(300 * S + S / 2));
    assert_eq!(t.expire(300 * S + S / 2, 64), 2);
    assert!(t.is_empty());
    assert_eq!(t.next_expiry(), None);
}

#[test]
fn a_session_about_to_time_out_is_not_put_behind_younger_ones() {
    let mut t = table(&config(64));
    // A at 1 s (the tick that starts at 0), never refreshed; B at 200 s.
    t.translate_out(&mut udp((HOST_A, 5000), (REMOTE, 53), b""), S)
        .unwrap();
    t.translate_out(&mut udp((HOST_B, 5000), (REMOTE, 53), b""), 200 * S)
        .unwrap();
    // A sweep after A's tick timed out but before A did leaves A where it is...
    assert_eq!(t.expire(300 * S + S / 2, 64), 0);
    // ... so it goes at its own timeout, not after B's.
    assert_eq!(t.expire(301 * S, 64), 1);
    assert_eq!(
        t.sessions(301 * S)
            .map(|s| s.inside.addr)
            .collect::<Vec<_>>(),
        vec![HOST_B]
    );
}

#[test]
fn full_table_refuses_then_reclaims_expired_sessions() {
    let mut t = table(&config(100));
    assert_eq!(t.capacity(), 100);
    let ports: Vec<u16> = (0..100)
        .map(|i| {
            let mut p = udp(inside(i * 1000), (REMOTE, 53), b"");
            t.translate_out(&mut p, 0).unwrap().outside.port
        })
        .collect();
    let mut extra = udp((HOST_A, 1), (REMOTE, 53), b"");
    assert_eq!(
        t.translate_out(&mut extra.clone(), S),
        Err(NatError::TableFull)
    );
    assert_eq!(t.counters().refused_table_full, 1);
    // Existing sessions keep working; the first ten are kept alive.
    for &port in &ports[..10] {
        let mut r = udp((REMOTE, 53), (PUBLIC, port), b"");
        t.translate_in(&mut r, 200 * S).unwrap();
    }
    // At 300 s the others have expired: a new session reclaims one without a sweep.
    assert!(t.translate_out(&mut extra, 300 * S).unwrap().created);
    assert_eq!(t.len(), 100 - t.counters().expired as usize + 1);
    assert_eq!(t.sessions(300 * S).count(), 11);
}

#[test]
fn host_limit_is_per_worker_share() {
    let cfg = NatConfig {
        max_per_host: 10,
        max_sessions: 1000,
        ..NatConfig::new(vec![PUBLIC])
    };
    let mut t = table(&cfg);
    for port in 0..10 {
        t.translate_out(&mut udp((HOST_A, 2000 + port), (REMOTE, 53), b""), 0)
            .unwrap();
    }
    let mut p = udp((HOST_A, 3000), (REMOTE, 53), b"");
    assert_eq!(t.translate_out(&mut p.clone(), 0), Err(NatError::HostLimit));
    assert_eq!(t.counters().refused_host_limit, 1);
    t.translate_out(&mut udp((HOST_B, 3000), (REMOTE, 53), b""), 0)
        .unwrap();
    // An existing mapping of the host is not a new session.
    t.translate_out(&mut udp((HOST_A, 2000), (REMOTE, 80), b""), 0)
        .unwrap();
    assert!(t.translate_out(&mut p, 300 * S).is_ok());
    let half = NatTable::new(
        &cfg,
        PortSlice {
            worker: 1,
            workers: 2,
        },
        1,
    )
    .unwrap();
    assert_eq!(half.capacity(), 500);
}

#[test]
fn bad_configs_are_refused() {
    let slice = PortSlice {
        worker: 0,
        workers: 1,
    };
    let err = |cfg: &NatConfig, slice| NatTable::new(cfg, slice, 0).unwrap_err();
    assert_eq!(err(&NatConfig::new(vec![]), slice), ConfigError::PoolSize);
    let mut cfg = config(10);
    cfg.ports = PortRange { lo: 2, hi: 1 };
    assert_eq!(err(&cfg, slice), ConfigError::PortRange);
    cfg.ports = PortRange { lo: 1000, hi: 1100 };
    assert_eq!(
        err(
            &cfg,
            PortSlice {
                worker: 2,
                workers: 3
            }
        ),
        ConfigError::Slice
    );
    assert_eq!(
        err(
            &cfg,
            PortSlice {
                worker: 1,
                workers: 1
            }
        ),
        ConfigError::Slice
    );
    cfg.max_per_host = 0;
    assert_eq!(err(&cfg, slice), ConfigError::Limits);
    cfg.max_per_host = 1;
    cfg.max_sessions = MAX_SESSIONS + 1;
    assert_eq!(err(&cfg, slice), ConfigError::Limits);
}

#[test]
fn a_million_sessions_created_and_looked_up() {
    const N: u32 = 1_000_000;
    let pool = (1..=20).map(|i| Ipv4Addr::new(203, 0, 113, i)).collect();
    let mut t = table(&NatConfig::new(pool));
    let mut p = udp(inside(0), (REMOTE, 53), b"");
    let mut outside = Vec::with_capacity(N as usize);
    for i in 0..N {
        let (addr, port) = inside(i);
        p[12..16].copy_from_slice(&addr.octets());
        p[20..22].copy_from_slice(&port.to_be_bytes());
        let tr = t.translate_out(&mut p, u64::from(i)).unwrap();
        outside.push(tr.outside);
    }
    assert_eq!(t.len(), N as usize);
    assert_eq!(t.counters().created, u64::from(N));
    let now = u64::from(N);
    let mut r = p.clone();
    r[12..16].copy_from_slice(&REMOTE.octets());
    r[20..22].copy_from_slice(&53u16.to_be_bytes());
    for (i, o) in outside.iter().enumerate() {
        r[16..20].copy_from_slice(&o.addr.octets());
        r[22..24].copy_from_slice(&o.port.to_be_bytes());
        let tr = t.translate_in(&mut r, now).unwrap();
        assert_eq!((tr.inside.addr, tr.inside.port), inside(i as u32));
        assert_eq!(&r[16..20], &tr.inside.addr.octets());
    }
    assert_eq!(t.counters().translated_in, u64::from(N));
    // Memory per session at this capacity (documented in docs/NAT.md).
    let per_session = t.heap_bytes() / t.capacity();
    assert!(per_session < 160, "{per_session} bytes per session");
}
