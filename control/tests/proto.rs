//! The control protocol: every request and reply survives encoding and decoding unchanged,
//! requests are decoded strictly, and no input makes the decoder panic.

use braid_control::config::{
    Balance, BondMode, LinkState, Role, RouteConfig, RuleConfig, WeightMode,
};
use braid_control::proto::*;
use proptest::prelude::*;

fn route() -> RouteConfig {
    RouteConfig {
        table: "isp1".into(),
        to: "0.0.0.0/0".parse().unwrap(),
        via: Some("198.18.11.1".parse().unwrap()),
        dev: Some("wan1".into()),
        peer: None,
    }
}

fn rule() -> RuleConfig {
    RuleConfig {
        from: "198.18.1.0/24".parse().unwrap(),
        table: "bond".into(),
    }
}

/// One request of every kind.
fn every_request() -> Vec<Request> {
    vec![
        Request::Status,
        Request::Links,
        Request::SetWeights {
            peer: Some("hub".into()),
            weights: vec![
                LinkWeight {
                    link: "isp1".into(),
                    weight: 1,
                },
                LinkWeight {
                    link: "isp2".into(),
                    weight: 3,
                },
            ],
        },
        Request::AutoWeights {
            peer: Some("hub".into()),
        },
        Request::SetMode {
            mode: BondMode::Flow,
            balance: Some(Balance::Bytes),
        },
        Request::SetLinkState {
            peer: None,
            link: "isp1".into(),
            state: LinkState::Down,
        },
        Request::Routes,
        Request::AddRoute { route: route() },
        Request::DelRoute {
            table: "main".into(),
            to: "198.18.50.0/24".parse().unwrap(),
        },
        Request::Rules,
        Request::AddRule {
            rule: rule(),
            index: Some(0),
        },
        Request::DelRule {
            from: "198.18.1.0/24".parse().unwrap(),
        },
        Request::Stats,
        Request::Interfaces,
        Request::Nat {
            address: Some("198.18.1.2".parse().unwrap()),
            limit: Some(10),
        },
        Request::Reload,
        Request::Running,
        Request::Metrics,
    ]
}

fn traffic(n: u64) -> Traffic {
    Traffic {
        packets: n,
        bytes: n * 1000,
        pps: n / 2,
        bps: n * 8,
    }
}

/// One reply of every kind.
fn every_reply() -> Vec<Reply> {
    vec![
        Reply::Status(Status {
            version: "0.1.0".into(),
            role: Role::Hub,
            public_key: braid_testkit::HUB_PUBLIC.parse().unwrap(),
            uptime_ms: 123_456,
            workers: 2,
            generation: 7,
            config: "/etc/braid/braidd.toml".into(),
            mode: BondMode::Packet,
            balance: Balance::Packets,
            interfaces: vec![
                InterfaceInfo {
                    name: "wan0".into(),
                    address: Some("203.0.113.2/28".parse().unwrap()),
                    kernel: false,
                    mac: "02:00:00:00:02:00".into(),
                    mtu: 1500,
                },
                InterfaceInfo {
                    name: "wan1".into(),
                    address: None,
                    kernel: true,
                    mac: "02:00:00:00:02:01".into(),
                    mtu: 1500,
                },
            ],
            peers: vec![PeerInfo {
                name: "edge1".into(),
                public_key: braid_testkit::EDGE_PUBLIC.parse().unwrap(),
                session: Some(SessionInfo {
                    cipher: "aes-256-gcm".into(),
                    age_ms: 61_500,
                }),
                allowed: vec!["198.18.1.0/24".parse().unwrap()],
                links: 2,
                links_active: 1,
            }],
        }),
        Reply::Links(Links {
            interval_ms: 1000,
            links: vec![LinkInfo {
                peer: "edge1".into(),
                name: "isp2".into(),
                interface: "wan0".into(),
                gateway: None,
                remote: None,
                state: LinkState::Up,
                weight: 2,
                weights: WeightMode::Auto,
                learned_weight: Some(667),
                effective_weight: 667,
                tx: traffic(10),
                rx: traffic(20),
                interface_tx_dropped: 3,
                health: HealthInfo {
                    up: true,
                    reason: Some("answered".into()),
                    rtt_us: Some(20_500),
                    rttvar_us: 300,
                    jitter_us: 150,
                    loss_permille: 50,
                    delay_diff_us: Some(-2),
                    peer_rx_bps: 150_000_000,
                    probes_sent: 1000,
                    probes_answered: 995,
                    probes_lost: 5,
                },
            }],
        }),
        Reply::Changed(Changed { generation: 9 }),
        Reply::Routes(Routes {
            routes: vec![route()],
        }),
        Reply::Rules(Rules {
            rules: vec![rule()],
        }),
        Reply::Stats(Stats {
            workers: vec![WorkerCounters {
                worker: 0,
                forwarded: 1,
                local: 2,
                icmp_errors: 3,
                drops: vec![DropCount {
                    reason: "no_route".into(),
                    count: 4,
                }],
                interfaces: vec![QueueCounters {
                    interface: "wan0".into(),
                    rx_packets: 5,
                    tx_packets: 6,
                    tx_dropped: 7,
                }],
                reorder: ReorderCounters {
                    in_order: 8,
                    repaired: 9,
                    late: 10,
                    given_up: 11,
                    held_us: vec![[1250, 9], [u64::MAX, 1]],
                },
            }],
            drops: vec![DropCount {
                reason: "no_route".into(),
                count: 4,
            }],
        }),
        Reply::Interfaces(Interfaces {
            sample: 3,
            interval_ms: 1001,
            interfaces: vec![InterfaceTraffic {
                name: "lan0".into(),
                rx: traffic(1),
                tx: traffic(2),
                tx_dropped: 0,
            }],
            links: vec![],
        }),
        Reply::Nat(Nat {
            enabled: true,
            masquerades: vec![MasqueradeInfo {
                interface: "wan0".into(),
                addresses: vec!["203.0.113.2".parse().unwrap()],
            }],
            counters: NatCounters {
                sessions: 1,
                created: 2,
                expired: 1,
                translated_out: 10,
                translated_in: 9,
            },
            sessions: vec![NatSession {
                interface: "wan0".into(),
                protocol: "tcp".into(),
                inside: "198.18.1.2:40000".parse().unwrap(),
                outside: "203.0.113.2:61000".parse().unwrap(),
                state: "tcp_established".into(),
                age_ms: 1200,
                remaining_ms: 7_198_800,
            }],
            truncated: false,
        }),
        Reply::Running(Running {
            config: "/etc/braid/braidd.toml".into(),
            mode: BondMode::Flow,
            balance: Balance::Bytes,
            links: vec![RunningLink {
                peer: "hub".into(),
                link: "isp1".into(),
                weight: 4,
                state: LinkState::Down,
            }],
            peers: vec![RunningPeer {
                peer: "hub".into(),
                weights: WeightMode::Auto,
            }],
            routes: vec![route()],
            rules: vec![rule()],
        }),
        Reply::Metrics(Metrics {
            text: "braid_config_generation 1\n".into(),
        }),
    ]
}

#[test]
fn every_request_round_trips() {
    let all = every_request();
    assert_eq!(all.len(), 18, "a new request needs a case here");
    for request in all {
        let line = encode_request(&request);
        assert!(
            line.ends_with('\n') && !line[..line.len() - 1].contains('\n'),
            "{line}"
        );
        let back =
            decode_request(line.trim_end().as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(back, request, "{line}");
    }
}

#[test]
fn every_reply_and_error_round_trips() {
    let mut outcomes: Vec<Outcome> = every_reply().into_iter().map(Outcome::Ok).collect();
    outcomes.push(Outcome::Error(ErrorReply {
        kind: ErrorKind::Refused,
        message: "the change would make the configuration invalid".into(),
        problems: vec!["peer[0].link[0].weight: out of range".into()],
    }));
    for kind in [ErrorKind::Malformed, ErrorKind::Version, ErrorKind::Busy] {
        outcomes.push(Outcome::Error(ErrorReply::new(kind, "no")));
    }
    for outcome in outcomes {
        let line = encode_response(outcome.clone());
        let back =
            decode_response(line.trim_end().as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(back.version, VERSION);
        assert_eq!(back.outcome, outcome, "{line}");
    }
}

#[test]
fn the_wire_format_is_as_documented() {
    assert_eq!(
        encode_request(&Request::SetWeights {
            peer: None,
            weights: vec![LinkWeight {
                link: "isp1".into(),
                weight: 3
            }],
        }),
        "{\"version\":1,\"request\":{\"type\":\"set_weights\",\"peer\":null,\
         \"weights\":[{\"link\":\"isp1\",\"weight\":3}]}}\n"
    );
    assert_eq!(
        encode_response(Outcome::Ok(Reply::Changed(Changed { generation: 2 }))),
        "{\"version\":1,\"ok\":{\"type\":\"changed\",\"generation\":2}}\n"
    );
    assert_eq!(
        encode_request(&Request::AutoWeights { peer: None }),
        "{\"version\":1,\"request\":{\"type\":\"auto_weights\",\"peer\":null}}\n"
    );
    // A reply of a daemon before learned weights reads as manual, nothing learned.
    let old = br#"{"version":1,"ok":{"type":"running","config":"/c","mode":"packet","balance":"packets","links":[],"routes":[],"rules":[]}}"#;
    match decode_response(old).map(|r| r.outcome) {
        Ok(Outcome::Ok(Reply::Running(r))) => assert!(r.peers.is_empty()),
        other => panic!("{other:?}"),
    }
    // Options may be left out of a request.
    let r = decode_request(
        br#"{"version":1,"request":{"type":"set_link_state","link":"isp1","state":"down"}}"#,
    );
    assert_eq!(
        r.unwrap(),
        Request::SetLinkState {
            peer: None,
            link: "isp1".into(),
            state: LinkState::Down
        }
    );
    let r = decode_request(br#"{"version":1,"request":{"type":"del_route","to":"198.19.0.0/16"}}"#);
    assert!(matches!(r, Ok(Request::DelRoute { table, .. }) if table == "main"));
    // Replies may carry fields this client does not know yet.
    let newer = br#"{"version":1,"ok":{"type":"changed","generation":2,"took_ms":1}}"#;
    assert!(decode_response(newer).is_ok());
    assert!(
        decode_response(br#"{"version":2,"ok":{"type":"changed","generation":2}}"#)
            .unwrap_err()
            .contains("version 2")
    );
}

#[test]
fn malformed_requests_are_refused_with_a_reason() {
    let cases: &[(&[u8], ErrorKind, &str)] = &[
        (b"", ErrorKind::Malformed, "not a JSON request line"),
        (b"status", ErrorKind::Malformed, "not a JSON request line"),
        (b"\"status\"", ErrorKind::Malformed, "a JSON object"),
        (
            b"{\"request\":{\"type\":\"status\"}}",
            ErrorKind::Malformed,
            "no \"version\"",
        ),
        (
            b"{\"version\":0,\"request\":{\"type\":\"status\"}}",
            ErrorKind::Version,
            "version 0 is not supported",
        ),
        (
            b"{\"version\":null,\"request\":{\"type\":\"status\"}}",
            ErrorKind::Version,
            "version null",
        ),
        (
            b"{\"version\":1}",
            ErrorKind::Malformed,
            "missing field `request`",
        ),
        (
            b"{\"version\":1,\"request\":{\"type\":\"shutdown\"}}",
            ErrorKind::Malformed,
            "unknown variant `shutdown`",
        ),
        (
            b"{\"version\":1,\"request\":{\"type\":\"links\",\"all\":true}}",
            ErrorKind::Malformed,
            "unknown field `all` for a links request",
        ),
        (
            b"{\"version\":1,\"request\":{\"type\":\"set_weights\"}}",
            ErrorKind::Malformed,
            "missing field `weights`",
        ),
        (
            b"{\"version\":1,\"request\":{\"type\":\"set_mode\",\"mode\":\"random\"}}",
            ErrorKind::Malformed,
            "unknown variant `random`",
        ),
        (
            b"{\"version\":1,\"request\":{\"type\":\"del_rule\",\"from\":\"198.18.1.0/33\"}}",
            ErrorKind::Malformed,
            "bad request",
        ),
        (
            b"{\"version\":1,\"request\":{\"type\":\"status\"},\"request\":{\"type\":\"reload\"}}",
            ErrorKind::Malformed,
            "duplicate field",
        ),
        (
            br#"{"version":1,"request":{"type":"status","type":"reload"}}"#,
            ErrorKind::Malformed,
            "duplicate field",
        ),
        (
            br#"{"version":1,"request":{"type":"set_link_state","link":"isp1","state":"up","state":"down"}}"#,
            ErrorKind::Malformed,
            "duplicate field",
        ),
    ];
    for (line, kind, what) in cases {
        let e = decode_request(line).unwrap_err();
        assert_eq!(e.kind, *kind, "{}: {e}", String::from_utf8_lossy(line));
        assert!(
            e.message.contains(what),
            "{}: {e}",
            String::from_utf8_lossy(line)
        );
    }
    let long = vec![b' '; MAX_LINE + 1];
    assert!(decode_request(&long)
        .unwrap_err()
        .message
        .contains("longer than"));
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9\"\\\\é\n -]{0,12}"
}

proptest! {
    #[test]
    fn no_input_makes_the_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
    }

    #[test]
    fn mangled_requests_never_panic(
        cut in 0usize..200,
        flip in 0usize..200,
        byte in any::<u8>(),
    ) {
        for request in every_request() {
            let mut line = encode_request(&request).into_bytes();
            line.pop();
            let at = flip % line.len().max(1);
            if let Some(b) = line.get_mut(at) {
                *b = byte;
            }
            line.truncate(cut.min(line.len()));
            if let Ok(decoded) = decode_request(&line) {
                // Whatever decodes encodes to a request that decodes to itself.
                let again = encode_request(&decoded);
                prop_assert_eq!(decode_request(again.trim_end().as_bytes()).ok(), Some(decoded));
            }
        }
    }

    #[test]
    fn weight_and_link_requests_round_trip(
        peer in proptest::option::of(name()),
        weights in proptest::collection::vec((name(), any::<u32>()), 0..5),
        link in name(),
        down in any::<bool>(),
    ) {
        let requests = [
            Request::SetWeights {
                peer: peer.clone(),
                weights: weights
                    .into_iter()
                    .map(|(link, weight)| LinkWeight { link, weight })
                    .collect(),
            },
            Request::SetLinkState {
                peer,
                link,
                state: if down { LinkState::Down } else { LinkState::Up },
            },
        ];
        for request in requests {
            let line = encode_request(&request);
            prop_assert!(line.ends_with('\n') && !line.trim_end_matches('\n').contains('\n'));
            prop_assert_eq!(decode_request(line.trim_end().as_bytes()).ok(), Some(request));
        }
    }
}
