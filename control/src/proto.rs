//! The control protocol between `braidd` and `braidctl`: one JSON object per line over a Unix
//! socket, each request answered by one response line. Documented in `docs/CONTROL.md`.
//!
//! A request line is `{"version":1,"request":{"type":"<name>",...}}`; a response line is
//! `{"version":1,"ok":{"type":"<name>",...}}` or `{"version":1,"error":{...}}`. Requests are
//! decoded strictly (unknown fields are errors); responses leniently, so a newer daemon may add
//! fields.

use crate::config::{
    Balance, BondMode, Config, LinkState, Role, RouteConfig, RuleConfig, WeightMode,
};
use crate::key::PublicKey;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// Longest request line accepted, newline excluded.
pub const MAX_LINE: usize = 1 << 20;
/// Longest response line a client accepts (a long session list), newline excluded.
pub const MAX_RESPONSE: usize = 64 << 20;
/// Sessions a `nat` request lists when it gives no limit.
pub const NAT_LIST_DEFAULT: usize = 1000;

/// What a client asks the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Role, uptime, workers, interfaces, peers.
    Status,
    /// Every link with its state, weight and traffic.
    Links,
    /// Sets the weights of some links of one peer, all at once.
    SetWeights {
        /// The peer (None: the only one).
        #[serde(default)]
        peer: Option<String>,
        /// New weights by link name.
        weights: Vec<LinkWeight>,
    },
    /// Lets one peer's weights follow its links' measured capacity (`weights = "auto"`);
    /// `set_weights` goes back to manual weights.
    AutoWeights {
        /// The peer (None: the only one).
        #[serde(default)]
        peer: Option<String>,
    },
    /// Sets the bond mode (and optionally what packet mode balances).
    SetMode {
        /// Per packet or per flow.
        mode: BondMode,
        /// Packets or bytes (None: unchanged).
        #[serde(default)]
        balance: Option<Balance>,
    },
    /// Takes a link administratively up or down.
    SetLinkState {
        /// The peer (None: the only one).
        #[serde(default)]
        peer: Option<String>,
        /// The link's name.
        link: String,
        /// The new state.
        state: LinkState,
    },
    /// The static routes.
    Routes,
    /// Adds a static route.
    AddRoute {
        /// The route, as in `[[route]]`.
        route: RouteConfig,
    },
    /// Deletes the route to `to` in `table`.
    DelRoute {
        /// Table name.
        #[serde(default = "main_table")]
        table: String,
        /// Destination prefix.
        to: Ipv4Net,
    },
    /// The policy rules, in order.
    Rules,
    /// Adds a policy rule.
    AddRule {
        /// The rule, as in `[[rule]]`.
        rule: RuleConfig,
        /// Position among the rules (None: last).
        #[serde(default)]
        index: Option<usize>,
    },
    /// Deletes the rule matching `from`.
    DelRule {
        /// Source prefix of the rule.
        from: Ipv4Net,
    },
    /// Per-worker counters and drops by reason.
    Stats,
    /// Per-interface traffic and rates.
    Interfaces,
    /// Masquerade sessions, optionally only those of one address.
    Nat {
        /// Inside or outside address to filter on.
        #[serde(default)]
        address: Option<Ipv4Addr>,
        /// Most sessions to list (None: [`NAT_LIST_DEFAULT`]).
        #[serde(default)]
        limit: Option<usize>,
    },
    /// Re-reads the configuration file; applied whole or refused whole.
    Reload,
    /// The running state that `braidctl save` writes back to the file.
    Running,
    /// The counters in Prometheus text format.
    Metrics,
}

fn main_table() -> String {
    "main".into()
}

/// One link's new weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkWeight {
    /// Link name.
    pub link: String,
    /// New weight.
    pub weight: u32,
}

/// A request as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLine {
    /// Protocol version of the client.
    pub version: u32,
    /// What is asked.
    pub request: Request,
}

/// A response as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version of the daemon.
    pub version: u32,
    /// The answer.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A request's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done; what was asked for.
    Ok(Reply),
    /// Refused; nothing was changed.
    Error(ErrorReply),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The kind of refusal.
    pub kind: ErrorKind,
    /// What is wrong, in words.
    pub message: String,
    /// Each problem found, for refused changes (`<field>: <what is wrong>`).
    #[serde(default)]
    pub problems: Vec<String>,
}

impl ErrorReply {
    /// A refusal without a list of problems.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            kind,
            message: message.into(),
            problems: Vec::new(),
        }
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// The kinds of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line is not a well-formed request.
    Malformed,
    /// The client speaks another protocol version.
    Version,
    /// The change is invalid or does not apply; nothing was changed.
    Refused,
    /// The daemon serves too many clients at once.
    Busy,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Answers [`Request::Status`].
    Status(Status),
    /// Answers [`Request::Links`].
    Links(Links),
    /// Answers a change: it is running now.
    Changed(Changed),
    /// Answers [`Request::Routes`].
    Routes(Routes),
    /// Answers [`Request::Rules`].
    Rules(Rules),
    /// Answers [`Request::Stats`].
    Stats(Stats),
    /// Answers [`Request::Interfaces`].
    Interfaces(Interfaces),
    /// Answers [`Request::Nat`].
    Nat(Nat),
    /// Answers [`Request::Running`].
    Running(Running),
    /// Answers [`Request::Metrics`].
    Metrics(Metrics),
}

/// The daemon at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// braidd's version.
    pub version: String,
    /// Edge or hub.
    pub role: Role,
    /// This daemon's public key (of its `private_key_file`).
    pub public_key: PublicKey,
    /// Milliseconds since the daemon started.
    pub uptime_ms: u64,
    /// Worker threads.
    pub workers: usize,
    /// Generation of the running snapshot (1 at start, +1 per change).
    pub generation: u64,
    /// The configuration file.
    pub config: PathBuf,
    /// Bond mode.
    pub mode: BondMode,
    /// What packet mode balances.
    pub balance: Balance,
    /// The dataplane NICs.
    pub interfaces: Vec<InterfaceInfo>,
    /// The tunnel peers.
    pub peers: Vec<PeerInfo>,
}

/// A dataplane NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceInfo {
    /// Kernel name.
    pub name: String,
    /// braid's address and prefix on it (none: the kernel has not given one yet).
    pub address: Option<Ipv4Net>,
    /// Whether the address is the kernel's (`address = "kernel"`).
    #[serde(default)]
    pub kernel: bool,
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// IP MTU.
    pub mtu: u16,
}

/// A tunnel peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Name.
    pub name: String,
    /// Its public key.
    pub public_key: PublicKey,
    /// The session sent with, if there is one.
    pub session: Option<SessionInfo>,
    /// Inner source prefixes accepted from it.
    pub allowed: Vec<Ipv4Net>,
    /// Its links.
    pub links: usize,
    /// Links that are up with a weight above 0.
    pub links_active: usize,
}

/// A tunnel session with a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The cipher the handshake chose.
    pub cipher: String,
    /// Milliseconds since its handshake.
    pub age_ms: u64,
}

/// Packets and bytes one way, with rates over the last sampling interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Packets since start.
    pub packets: u64,
    /// Bytes since start.
    pub bytes: u64,
    /// Packets per second.
    pub pps: u64,
    /// Bits per second.
    pub bps: u64,
}

/// Every link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// Length of the interval the rates are averaged over, in milliseconds (0: none yet).
    pub interval_ms: u64,
    /// The links, peer by peer.
    pub links: Vec<LinkInfo>,
}

/// One link of a peer's bond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    /// The peer.
    pub peer: String,
    /// The link.
    pub name: String,
    /// Local interface.
    pub interface: String,
    /// Next hop (None: on-link).
    pub gateway: Option<Ipv4Addr>,
    /// The peer's endpoint: the configured one, or on a hub the one learnt from the edge's
    /// latest authenticated message on the link (None: nothing heard on it yet).
    pub remote: Option<SocketAddrV4>,
    /// Administrative state.
    pub state: LinkState,
    /// Configured weight (kept while the link is down).
    pub weight: u32,
    /// Where the peer's weights come from.
    #[serde(default)]
    pub weights: WeightMode,
    /// The weight learned from the link's measured capacity (auto weights only; None:
    /// nothing learned yet, the configured weight is used).
    #[serde(default)]
    pub learned_weight: Option<u32>,
    /// Weight the scheduler uses: the learned one (auto) or the configured one, 0 while down.
    pub effective_weight: u32,
    /// Tunnel packets sent over the link.
    pub tx: Traffic,
    /// Tunnel packets received over the link.
    pub rx: Traffic,
    /// Frames the link's interface could not transmit (ring full), all traffic of that
    /// interface.
    pub interface_tx_dropped: u64,
    /// What the link's probes measured.
    pub health: HealthInfo,
}

/// What a link's probes measured (docs/PROTOCOL.md, "Link health").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthInfo {
    /// The probes say the link works (the administrative state aside).
    pub up: bool,
    /// Why the health state last changed (None: it never did).
    pub reason: Option<String>,
    /// Smoothed round-trip time in microseconds (None: no answer yet).
    pub rtt_us: Option<u64>,
    /// Mean deviation of the round-trip time, in microseconds.
    pub rttvar_us: u64,
    /// Mean difference of consecutive round-trip times, in microseconds.
    pub jitter_us: u64,
    /// Lost share of the last 20 probes, in per mille.
    pub loss_permille: u32,
    /// One-way delay towards the peer, in microseconds more than on the peer's
    /// fastest link (None: not measured yet).
    pub delay_diff_us: Option<i64>,
    /// Bits per second of data the peer reports receiving on this link.
    pub peer_rx_bps: u64,
    /// Probes sent, answered, and lost.
    pub probes_sent: u64,
    pub probes_answered: u64,
    pub probes_lost: u64,
}

/// A change is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    /// Generation of the new snapshot.
    pub generation: u64,
}

/// The static routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    /// As in `[[route]]`.
    pub routes: Vec<RouteConfig>,
}

/// The policy rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// As in `[[rule]]`, in the order they are tried.
    pub rules: Vec<RuleConfig>,
}

/// Counters per worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// One entry per worker.
    pub workers: Vec<WorkerCounters>,
    /// Drops by reason, summed over workers (every reason, zeros included).
    pub drops: Vec<DropCount>,
}

/// One worker's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerCounters {
    /// Worker index (= queue).
    pub worker: usize,
    /// Frames forwarded.
    pub forwarded: u64,
    /// Frames braid answered or consumed itself.
    pub local: u64,
    /// ICMP errors sent.
    pub icmp_errors: u64,
    /// Drops by reason (every reason, zeros included).
    pub drops: Vec<DropCount>,
    /// Frames received and sent per interface on this worker's queue.
    pub interfaces: Vec<QueueCounters>,
    /// What the reorder windows this worker owns did.
    #[serde(default)]
    pub reorder: ReorderCounters,
}

/// The reorder windows of one worker: packets out of the tunnel by how they left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReorderCounters {
    /// Came in their turn.
    pub in_order: u64,
    /// Held until the packets in front of them came (the order repaired).
    pub repaired: u64,
    /// Came after their gap was given up: sent out of order.
    pub late: u64,
    /// Sequence numbers given up: lost, or later than the wait.
    pub given_up: u64,
    /// How long the repaired and given-up-for packets were held: `[upper edge µs,
    /// packets]` per non-empty bucket of [`crate::held`], in order (`u64::MAX`: longer
    /// than 250 ms).
    #[serde(default)]
    pub held_us: Vec<[u64; 2]>,
}

impl ReorderCounters {
    /// The `q` quantile of the time the window added to every packet that passed it (0
    /// for those that came in their turn or late), in µs.
    pub fn added_us(&self, q: f64) -> u64 {
        let held: u64 = self.held_us.iter().map(|b| b[1]).sum();
        let passed = self.in_order + self.late + self.repaired;
        crate::held::quantile_us(&self.held_us, passed.saturating_sub(held), q)
    }

    /// The `q` quantile of the time held packets waited, in µs (0 with none held).
    pub fn held_quantile_us(&self, q: f64) -> u64 {
        crate::held::quantile_us(&self.held_us, 0, q)
    }
}

/// Drops for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCount {
    /// Reason, snake_case.
    pub reason: String,
    /// Frames dropped.
    pub count: u64,
}

/// One queue of one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCounters {
    /// Interface name.
    pub interface: String,
    /// Frames received.
    pub rx_packets: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Frames that could not be sent.
    pub tx_dropped: u64,
}

/// Traffic per interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interfaces {
    /// Number of the rate sample (one a second); a new number means new rates.
    pub sample: u64,
    /// Length of the interval the rates are averaged over, in milliseconds (0: none yet).
    pub interval_ms: u64,
    /// One entry per dataplane NIC, in config order.
    pub interfaces: Vec<InterfaceTraffic>,
    /// Every link with its state and health, peer by peer.
    pub links: Vec<LinkInfo>,
}

/// One NIC's traffic, summed over its queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceTraffic {
    /// Kernel name.
    pub name: String,
    /// Received.
    pub rx: Traffic,
    /// Sent.
    pub tx: Traffic,
    /// Frames that could not be sent.
    pub tx_dropped: u64,
}

/// Masquerade state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nat {
    /// Whether this daemon masquerades at all.
    pub enabled: bool,
    /// Each `[[masquerade]]`: where, and as which addresses.
    pub masquerades: Vec<MasqueradeInfo>,
    /// Counters summed over workers.
    pub counters: NatCounters,
    /// Live sessions (those of the address asked for), at most the limit asked for, ordered
    /// by inside endpoint.
    pub sessions: Vec<NatSession>,
    /// Whether there were more sessions than listed.
    pub truncated: bool,
}

/// One masquerading interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasqueradeInfo {
    /// The outside interface.
    pub interface: String,
    /// The addresses the inside hosts appear as.
    pub addresses: Vec<Ipv4Addr>,
}

/// Masquerade counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatCounters {
    /// Live sessions.
    pub sessions: u64,
    /// Sessions created since start.
    pub created: u64,
    /// Sessions expired since start.
    pub expired: u64,
    /// Packets translated inside to outside.
    pub translated_out: u64,
    /// Packets translated outside to inside.
    pub translated_in: u64,
}

/// One masquerade session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatSession {
    /// The outside interface.
    pub interface: String,
    /// `tcp`, `udp` or `icmp` (the port is then the echo identifier).
    pub protocol: String,
    /// The inside host's endpoint.
    pub inside: SocketAddrV4,
    /// The endpoint the outside sees.
    pub outside: SocketAddrV4,
    /// `udp`, `icmp`, `tcp_opening`, `tcp_established`, `tcp_closing` or `tcp_closed`.
    pub state: String,
    /// Milliseconds since the session was created.
    pub age_ms: u64,
    /// Milliseconds before it expires unless traffic refreshes it.
    pub remaining_ms: u64,
}

/// The running state that differs from a file only by runtime changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// The configuration file the daemon read.
    pub config: PathBuf,
    /// Bond mode.
    pub mode: BondMode,
    /// What packet mode balances.
    pub balance: Balance,
    /// Every link's weight and state.
    pub links: Vec<RunningLink>,
    /// Where each peer's weights come from.
    #[serde(default)]
    pub peers: Vec<RunningPeer>,
    /// The static routes.
    pub routes: Vec<RouteConfig>,
    /// The policy rules, in order.
    pub rules: Vec<RuleConfig>,
}

impl Running {
    /// The running state of a daemon whose configuration, read from `path`, is now `config`.
    pub fn of(config: &Config, path: PathBuf) -> Running {
        Running {
            config: path,
            mode: config.bond.mode,
            balance: config.bond.balance,
            links: config
                .peers
                .iter()
                .flat_map(|p| {
                    p.links.iter().map(|l| RunningLink {
                        peer: p.name.clone(),
                        link: l.name.clone(),
                        weight: l.weight,
                        state: l.state,
                    })
                })
                .collect(),
            peers: config
                .peers
                .iter()
                .map(|p| RunningPeer {
                    peer: p.name.clone(),
                    weights: p.weights,
                })
                .collect(),
            routes: config.routes.clone(),
            rules: config.rules.clone(),
        }
    }
}

/// One peer's runtime settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningPeer {
    /// The peer.
    pub peer: String,
    /// Manual or learned weights.
    pub weights: WeightMode,
}

/// One link's runtime settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningLink {
    /// The peer.
    pub peer: String,
    /// The link.
    pub link: String,
    /// Weight.
    pub weight: u32,
    /// Administrative state.
    pub state: LinkState,
}

/// Prometheus text exposition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// The metrics, in text format 0.0.4.
    pub text: String,
}

/// Encodes `request` as one line (newline included).
pub fn encode_request(request: &Request) -> String {
    line(&RequestLine {
        version: VERSION,
        request: request.clone(),
    })
}

/// Encodes a response line (newline included).
pub fn encode_response(outcome: Outcome) -> String {
    line(&Response {
        version: VERSION,
        outcome,
    })
}

fn line<T: Serialize>(value: &T) -> String {
    // The protocol types hold only strings, numbers, addresses and maps with string keys:
    // serialising them cannot fail. Should it ever, the peer gets an error line, not nothing.
    let mut text = serde_json::to_string(value).unwrap_or_else(|e| {
        format!(
            r#"{{"version":{VERSION},"error":{{"kind":"malformed","message":"cannot encode: {}"}}}}"#,
            e.to_string().replace(['"', '\\'], "'")
        )
    });
    text.push('\n');
    text
}

/// Decodes one request line (without its newline), refusing anything but a well-formed
/// request of this protocol version.
pub fn decode_request(line: &[u8]) -> Result<Request, ErrorReply> {
    let malformed = |what: String| ErrorReply::new(ErrorKind::Malformed, what);
    if line.len() > MAX_LINE {
        return Err(malformed(format!(
            "request of {} bytes is longer than {MAX_LINE}",
            line.len()
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| malformed(format!("not a JSON request line: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(malformed("a request line is a JSON object".into()));
    };
    match object.get("version") {
        None => return Err(malformed("the request has no \"version\"".into())),
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => {
            return Err(ErrorReply::new(
                ErrorKind::Version,
                format!("protocol version {v} is not supported; this daemon speaks {VERSION}"),
            ));
        }
    }
    let given: Vec<String> = object
        .get("request")
        .and_then(serde_json::Value::as_object)
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    // Decoded again from the text, not the value: a map keeps only the last of duplicate
    // keys, and a request saying two things is refused, not guessed at.
    let request = serde_json::from_slice::<RequestLine>(line)
        .map(|r| r.request)
        .map_err(|e| malformed(format!("bad request: {e}")))?;
    // serde lets unknown fields through for requests without fields; every field a request
    // has is encoded (absent options as null), so a given key it does not encode is unknown.
    let known = serde_json::to_value(&request).unwrap_or_default();
    if let Some(unknown) = given.iter().find(|k| known.get(k.as_str()).is_none()) {
        return Err(malformed(format!(
            "bad request: unknown field `{unknown}` for a {} request",
            known["type"].as_str().unwrap_or("")
        )));
    }
    Ok(request)
}

/// Decodes one response line (without its newline).
pub fn decode_response(line: &[u8]) -> Result<Response, String> {
    let response: Response =
        serde_json::from_slice(line).map_err(|e| format!("unreadable response: {e}"))?;
    if response.version != VERSION {
        return Err(format!(
            "the daemon speaks protocol version {}, this braidctl {VERSION}",
            response.version
        ));
    }
    Ok(response)
}
