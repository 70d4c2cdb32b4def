//! `braidctl` as people and scripts run it: help everywhere, clear messages when the daemon is
//! not running or the caller may not use its socket, JSON for machines, the key commands.
//!
//! The daemon here is a stub that answers from canned replies; the real one is tested in the
//! dataplane crate and in the lab (tools/tests/lab_control.rs).

use braid_control::config::{Balance, BondMode, LinkState, Role, WeightMode};
use braid_control::key::{PresharedKey, PrivateKey};
use braid_control::proto::{
    self, Changed, HealthInfo, InterfaceTraffic, Interfaces, LinkInfo, Links, Outcome, Reply,
    Request, Status, Traffic,
};
use braid_testkit::lab::{can_run, Need};
use braid_testkit::EDGE_PUBLIC;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

const BRAIDCTL: &str = env!("CARGO_BIN_EXE_braidctl");
/// The unprivileged user of the permission test.
const NOBODY: u32 = 65534;

/// A directory under /tmp, open to everyone (so another user reaches what is inside), removed
/// on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("braidctl-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A stand-in daemon on a 0600 socket: records each request and answers with `answer`.
struct Stub {
    path: PathBuf,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Stub {
    fn start(dir: &Path, answer: fn(&Request) -> Outcome) -> Stub {
        let path = dir.join("ctl.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let outcome = match proto::decode_request(line.trim_end().as_bytes()) {
                        Ok(r) => {
                            seen.lock().unwrap().push(r.clone());
                            answer(&r)
                        }
                        Err(e) => Outcome::Error(e),
                    };
                    if writer
                        .write_all(proto::encode_response(outcome).as_bytes())
                        .is_err()
                    {
                        break;
                    }
                    line.clear();
                }
            }
        });
        Stub { path, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn braidctl(args: &[&str]) -> Output {
    Command::new(BRAIDCTL).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn traffic(pps: u64) -> Traffic {
    Traffic {
        packets: pps * 10,
        bytes: pps * 10_000,
        pps,
        bps: pps * 8000,
    }
}

fn status() -> Status {
    Status {
        version: "0.1.0".into(),
        role: Role::Edge,
        public_key: EDGE_PUBLIC.parse().unwrap(),
        uptime_ms: 3_723_000,
        workers: 2,
        generation: 4,
        config: "/etc/braid/braidd.toml".into(),
        mode: BondMode::Packet,
        balance: Balance::Packets,
        interfaces: vec![],
        peers: vec![],
    }
}

/// isp1, taken down by its probes.
fn link() -> LinkInfo {
    LinkInfo {
        peer: "hub".into(),
        name: "isp1".into(),
        interface: "wan1".into(),
        gateway: None,
        remote: Some("203.0.113.2:7420".parse().unwrap()),
        state: LinkState::Up,
        weight: 1,
        weights: WeightMode::Manual,
        learned_weight: None,
        effective_weight: 0,
        tx: traffic(100),
        rx: traffic(50),
        interface_tx_dropped: 0,
        health: HealthInfo {
            up: false,
            reason: Some("no answer".into()),
            rtt_us: Some(12_345),
            rttvar_us: 800,
            jitter_us: 1_250,
            loss_permille: 450,
            delay_diff_us: Some(5_000),
            peer_rx_bps: 0,
            probes_sent: 120,
            probes_answered: 66,
            probes_lost: 54,
        },
    }
}

fn answer(r: &Request) -> Outcome {
    Outcome::Ok(match r {
        Request::Status => Reply::Status(status()),
        Request::Links => Reply::Links(Links {
            interval_ms: 1000,
            links: vec![link()],
        }),
        Request::Interfaces => Reply::Interfaces(Interfaces {
            // A new sample on every request, as if each came a second later.
            sample: SAMPLES.fetch_add(1, Ordering::Relaxed),
            interval_ms: 1000,
            interfaces: vec![InterfaceTraffic {
                name: "lan0".into(),
                rx: traffic(1500),
                tx: traffic(20),
                tx_dropped: 0,
            }],
            links: vec![link()],
        }),
        Request::SetWeights { .. } | Request::AutoWeights { .. } => {
            Reply::Changed(Changed { generation: 5 })
        }
        _ => {
            return Outcome::Error(proto::ErrorReply::new(
                proto::ErrorKind::Refused,
                "the stub does not do that",
            ))
        }
    })
}

static SAMPLES: AtomicU64 = AtomicU64::new(1);

#[test]
fn every_subcommand_has_help() {
    let top = braidctl(&["--help"]);
    assert!(top.status.success());
    let subcommands = [
        "status", "links", "weights", "mode", "link", "routes", "rules", "stats", "watch",
        "reload", "save", "genkey", "nat", "metrics",
    ];
    for sub in subcommands {
        assert!(
            stdout(&top).contains(&format!("  {sub} ")),
            "{sub} not listed"
        );
        let out = braidctl(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help: {}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("Usage: braidctl {sub}")),
            "{sub}: {}",
            stdout(&out)
        );
    }
    for sub in [
        ["routes", "add"],
        ["routes", "del"],
        ["rules", "add"],
        ["rules", "del"],
    ] {
        let out = braidctl(&[sub[0], sub[1], "--help"]);
        assert!(out.status.success(), "{sub:?}");
    }
}

#[test]
fn usage_errors_are_caught_before_the_daemon_is_asked() {
    for args in [
        &["weights", "isp1"][..],
        &["weights", "isp1=x"],
        &["weights", "=3"],
        &["weights", "auto", "isp1=2"],
        &["link", "isp1", "sideways"],
        &["mode", "random"],
        &["routes", "add", "198.19.0.0/16"],
        &[
            "routes",
            "add",
            "198.19.0.0/16",
            "--peer",
            "hub",
            "--dev",
            "wan1",
        ],
        &["routes", "add", "198.19.0.0/33", "--peer", "hub"],
        &["rules", "add", "198.19.0.0/16"],
    ] {
        let out = braidctl(&[&["--socket", "/nonexistent/s"], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("error: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_daemon_that_is_not_running_is_named_so() {
    let dir = TempDir::new("down");
    let missing = dir.0.join("none.sock");
    let stale = dir.0.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    for socket in [&missing, &stale] {
        let out = braidctl(&["--socket", socket.to_str().unwrap(), "status"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out),
            format!(
                "braidctl: braidd is not running (nothing serves {}); start it, or give its \
                 socket with --socket\n",
                socket.display()
            )
        );
    }
}

/// The braidctl binary, copied where any user may run it (the build directory may be private).
fn public_braidctl(dir: &TempDir) -> PathBuf {
    let copy = dir.0.join("braidctl");
    std::fs::copy(BRAIDCTL, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Runs `cmd`, retrying while the fresh copy of the binary is still open for writing in a
/// child that another test thread forked meanwhile ("text file busy").
fn run_retrying(cmd: &mut Command) -> Output {
    for _ in 0..50 {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other.unwrap(),
        }
    }
    panic!("{cmd:?} stayed busy")
}

#[test]
fn a_caller_without_permission_is_refused_clearly() {
    if !can_run(Need::Root) {
        return;
    }
    let dir = TempDir::new("perm");
    let stub = Stub::start(&dir.0, answer);
    let exe = public_braidctl(&dir);
    let socket = stub.path.to_str().unwrap();

    let out = run_retrying(
        Command::new(&exe)
            .args(["--socket", socket, "status"])
            .uid(NOBODY)
            .gid(NOBODY),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "braidctl: permission denied on {socket}: the control socket is for root only; run \
             braidctl as root\n"
        )
    );
    assert!(stub.requests().is_empty(), "nothing reached the daemon");

    // The same binary, as root, gets through: the refusal was the socket's mode.
    let out = run_retrying(Command::new(&exe).args(["--socket", socket, "status"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stub.requests(), [Request::Status]);
}

#[test]
fn tables_for_people_json_for_machines() {
    let dir = TempDir::new("json");
    let stub = Stub::start(&dir.0, answer);
    let socket = stub.path.to_str().unwrap();

    let out = braidctl(&["--socket", socket, "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!(
        "braidd 0.1.0 (edge)\npublic key  {EDGE_PUBLIC}\nuptime      1h 2m 3s\n"
    )));

    let out = braidctl(&["status", "--json", "--socket", socket]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "status");
    assert_eq!(v["generation"], 4);

    let out = braidctl(&["--socket", socket, "links"]);
    let table = stdout(&out);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..13],
        [
            "hub", "isp1", "wan1", "up", "down", "(no", "answer)", "12.3", "1.2", "45.0%", "0",
            "(1)", "1000"
        ]
    );
    let out = braidctl(&["--socket", socket, "links", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["links"][0]["health"]["rtt_us"], 12_345);
    assert_eq!(v["links"][0]["health"]["reason"], "no answer");

    let out = braidctl(&["--socket", socket, "mode"]);
    assert_eq!(stdout(&out), "packet (balance packets)\n");

    let out = braidctl(&["--socket", socket, "weights", "isp1=1", "isp2=3"]);
    assert_eq!(stdout(&out), "weights set: isp1=1 isp2=3 (generation 5)\n");
    let out = braidctl(&["--socket", socket, "--json", "weights", "isp1=2"]);
    assert_eq!(stdout(&out), "{\"type\":\"changed\",\"generation\":5}\n");

    let out = braidctl(&["--socket", socket, "weights", "auto", "--peer", "hub"]);
    assert_eq!(
        stdout(&out),
        "weights: auto (learned from the links' capacity) (generation 5)\n"
    );

    let out = braidctl(&["--socket", socket, "reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "braidctl: the stub does not do that\n");

    let requests = stub.requests();
    assert_eq!(requests.len(), 9);
    assert_eq!(
        requests[7],
        Request::AutoWeights {
            peer: Some("hub".into())
        }
    );
    assert_eq!(
        requests[5],
        Request::SetWeights {
            peer: None,
            weights: vec![
                proto::LinkWeight {
                    link: "isp1".into(),
                    weight: 1
                },
                proto::LinkWeight {
                    link: "isp2".into(),
                    weight: 3
                },
            ]
        }
    );
}

#[test]
fn watch_prints_one_table_per_sample() {
    let dir = TempDir::new("watch");
    let stub = Stub::start(&dir.0, answer);
    let out = braidctl(&[
        "--socket",
        stub.path.to_str().unwrap(),
        "watch",
        "--count",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.matches("Averages for the last 1000 msec").count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("lan0         12000.00        1500       160.00           20"),
        "{text}"
    );
    let out = braidctl(&[
        "--socket",
        stub.path.to_str().unwrap(),
        "--json",
        "watch",
        "--count",
        "3",
    ]);
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 3);
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["interfaces"][0]["rx"]["pps"], 1500);
    }
}

/// Runs braidctl with `input` on its stdin.
fn braidctl_with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(BRAIDCTL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// RFC 7748 section 6.1: Alice's private key and its public key, in base64.
const ALICE_PRIVATE: &str = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
const ALICE_PUBLIC: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

#[test]
fn genkey_writes_a_private_key_once_and_prints_its_public_key() {
    let dir = TempDir::new("key");
    let key = dir.0.join("new.key");
    let out = braidctl(&["genkey", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.len() == 45 && text.ends_with("=\n"), "{text:?}");
    let private = PrivateKey::load(&key).unwrap();
    let public = private.public().to_string();
    assert_eq!(
        stdout(&out),
        format!("wrote private key {}\n{public}\n", key.display())
    );
    let again = braidctl(&["genkey", key.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("File exists"), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text);
    // pubkey prints the same public key from the file.
    let out = braidctl(&["pubkey", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{public}\n"));
}

#[test]
fn pubkey_reads_a_private_key_from_stdin_or_a_file() {
    let out = braidctl_with_stdin(&["pubkey"], &format!("{ALICE_PRIVATE}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{ALICE_PUBLIC}\n"));

    let dir = TempDir::new("pubkey");
    let key = dir.0.join("alice.key");
    std::fs::write(&key, format!("{ALICE_PRIVATE}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = braidctl(&["pubkey", key.to_str().unwrap()]);
    assert_eq!(
        stdout(&out),
        format!("{ALICE_PUBLIC}\n"),
        "{}",
        stderr(&out)
    );

    // A file others can read is refused, naming it; stdin has no such rule.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = braidctl(&["pubkey", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "braidctl: {}: readable by group/others (mode 0644); chmod 600 it\n",
            key.display()
        )
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn pubkey_refuses_what_is_not_a_private_key() {
    for (input, what) in [
        ("", "empty"),
        ("hello world\n", "not base64"),
        (&ALICE_PRIVATE[..43], "not base64"),
        ("AQID\n", "base64 of 3 bytes, not of 32"),
    ] {
        let out = braidctl_with_stdin(&["pubkey"], input);
        assert_eq!(out.status.code(), Some(1), "{input:?}");
        assert!(stdout(&out).is_empty());
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("braidctl: stdin: not a braid key file: {what}")),
            "{input:?}: {err}"
        );
    }
    let out = braidctl(&["pubkey", "/nonexistent/braid.key"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("braidctl: /nonexistent/braid.key: No such file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn genpsk_writes_a_preshared_key_once() {
    let dir = TempDir::new("psk");
    let psk = dir.0.join("hub.psk");
    let out = braidctl(&["genpsk", psk.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("wrote pre-shared key {}\n", psk.display())
    );
    let mode = std::fs::metadata(&psk).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&psk).unwrap();
    PresharedKey::load(&psk).unwrap();
    let again = braidctl(&["genpsk", psk.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&psk).unwrap(), text);
}
