//! The UDP check: numbered datagrams whose payload is the stream of (seed, number), sent at a paced
//! rate to an echo, and counted back as received, lost, corrupt or duplicated.

use crate::deadline::Deadline;
use crate::stream::Stream;
use serde::Serialize;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const MAGIC: [u8; 4] = *b"BRXU";
/// Bytes before the payload: magic, seed, sequence number.
pub const HEADER: usize = 20;
/// Largest datagram `udp_send` sends (the IPv4 UDP payload limit).
pub const MAX_SIZE: usize = 65_507;
/// Most datagrams one `udp_send` run may send.
pub const MAX_COUNT: u64 = 10_000_000;
/// How long `udp_send` waits for stragglers after its last datagram.
const LINGER: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(20);

/// Datagram number `seq` of run `seed`, `size` bytes long (at least [`HEADER`]).
pub fn datagram(seed: u64, seq: u64, size: usize) -> Vec<u8> {
    let mut d = vec![0; size.max(HEADER)];
    d[..4].copy_from_slice(&MAGIC);
    d[4..12].copy_from_slice(&seed.to_be_bytes());
    d[12..20].copy_from_slice(&seq.to_be_bytes());
    Stream::new(seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)).fill(&mut d[HEADER..]);
    d
}

/// The sequence number of `d` if it is exactly datagram `seq < count` of run `seed` at `size` bytes.
pub fn check(d: &[u8], seed: u64, count: u64, size: usize) -> Option<u64> {
    if d.len() != size || d.len() < HEADER || d[..4] != MAGIC || d[4..12] != seed.to_be_bytes() {
        return None;
    }
    let mut s = [0; 8];
    s.copy_from_slice(&d[12..20]);
    let seq = u64::from_be_bytes(s);
    (seq < count && d == datagram(seed, seq, size)).then_some(seq)
}

/// What an echo did.
#[derive(Debug, Clone, Serialize)]
pub struct EchoReport {
    /// Datagrams echoed.
    pub echoed: u64,
    /// Distinct senders (the first 16).
    pub peers: Vec<String>,
    /// Wall time.
    pub secs: f64,
}

/// Echoes every datagram on `sock` to its sender until none came for `idle`, or `max` were echoed.
pub fn echo(sock: &UdpSocket, idle: Duration, max: Option<u64>) -> io::Result<EchoReport> {
    let start = Instant::now();
    let mut buf = vec![0; 65_536];
    let mut report = EchoReport {
        echoed: 0,
        peers: Vec::new(),
        secs: 0.0,
    };
    sock.set_read_timeout(Some(idle))?;
    while max.is_none_or(|m| report.echoed < m) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sock.send_to(&buf[..n], from)?;
        report.echoed += 1;
        let from = from.to_string();
        if report.peers.len() < 16 && !report.peers.contains(&from) {
            report.peers.push(from);
        }
    }
    report.secs = start.elapsed().as_secs_f64();
    Ok(report)
}

/// A `udp_send` run.
#[derive(Debug, Clone)]
pub struct UdpSendOpts {
    /// Datagrams to send (at most [`MAX_COUNT`]).
    pub count: u64,
    /// Size of each, [`HEADER`]..=[`MAX_SIZE`] bytes.
    pub size: usize,
    /// Run seed: the payloads' stream.
    pub seed: u64,
    /// Send rate in datagrams per second.
    pub pps: u64,
    /// Limit of the whole run.
    pub timeout: Duration,
}

/// What a `udp_send` run saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UdpSendReport {
    /// Datagrams sent.
    pub sent: u64,
    /// Distinct datagrams echoed back intact.
    pub received: u64,
    /// Sent but never back: `sent - received`.
    pub lost: u64,
    /// Datagrams back that were not one we sent, byte for byte.
    pub corrupt: u64,
    /// Datagrams back more than once.
    pub duplicates: u64,
    /// Distinct datagrams back after one sent later than them (out of order).
    pub reordered: u64,
    /// All back, none corrupt.
    pub ok: bool,
    /// Wall time.
    pub secs: f64,
    /// The echo's address.
    pub peer: String,
    /// Why the run failed, beyond loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Sends `opts.count` datagrams to the echo at `to` and counts what comes back.
pub fn udp_send(to: SocketAddr, opts: &UdpSendOpts) -> UdpSendReport {
    let start = Instant::now();
    let mut report = UdpSendReport {
        peer: to.to_string(),
        ..Default::default()
    };
    if let Err(e) = run_udp(to, opts, &mut report) {
        report.error = Some(e.to_string());
    }
    report.lost = report.sent - report.received;
    report.ok = report.error.is_none() && report.lost == 0 && report.corrupt == 0;
    report.secs = start.elapsed().as_secs_f64();
    report
}

fn run_udp(to: SocketAddr, opts: &UdpSendOpts, report: &mut UdpSendReport) -> io::Result<()> {
    if opts.count > MAX_COUNT || !(HEADER..=MAX_SIZE).contains(&opts.size) || opts.pps == 0 {
        let msg =
            format!("count <= {MAX_COUNT}, size in {HEADER}..={MAX_SIZE} and pps > 0, please");
        return Err(io::Error::new(ErrorKind::InvalidInput, msg));
    }
    let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .map_err(|_| io::Error::from(ErrorKind::InvalidInput))?;
    let sock = UdpSocket::bind(bind)?;
    sock.connect(to)?;
    let rx = sock.try_clone()?;
    rx.set_read_timeout(Some(POLL))?;
    let deadline = Deadline::after(opts.timeout);
    let done_sending = AtomicBool::new(false);

    thread::scope(|s| {
        let receiver = s.spawn(|| receive(&rx, opts, deadline, &done_sending));
        let sent = transmit(&sock, opts, deadline);
        done_sending.store(true, Ordering::Release);
        let counts = receiver.join();
        report.sent = *sent.as_ref().unwrap_or(&0);
        let c = counts.map_err(|_| io::Error::other("receiver thread panicked"))??;
        report.received = c.received;
        report.corrupt = c.corrupt;
        report.duplicates = c.duplicates;
        report.reordered = c.reordered;
        sent.map(|_| ())
    })
}

/// Sends at the paced rate until all are sent or the deadline passes; returns how many went out.
fn transmit(sock: &UdpSocket, opts: &UdpSendOpts, deadline: Deadline) -> io::Result<u64> {
    let start = Instant::now();
    let gap = Duration::from_secs(1).as_secs_f64() / opts.pps as f64;
    for seq in 0..opts.count {
        if deadline.remaining().is_err() {
            return Ok(seq);
        }
        let due = start + Duration::from_secs_f64(gap * seq as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        match sock.send(&datagram(opts.seed, seq, opts.size)) {
            // An ICMP error from an earlier datagram: this one still counts as sent (and lost).
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    Ok(opts.count)
}

/// What came back, by kind.
#[derive(Debug, Default)]
struct Counts {
    received: u64,
    corrupt: u64,
    duplicates: u64,
    reordered: u64,
}

/// Receives until all came back, the deadline passes, or [`LINGER`] after sending ended.
fn receive(
    sock: &UdpSocket,
    opts: &UdpSendOpts,
    deadline: Deadline,
    done_sending: &AtomicBool,
) -> io::Result<Counts> {
    let mut back = vec![false; opts.count as usize];
    let mut c = Counts::default();
    let mut highest: Option<u64> = None;
    let mut buf = vec![0; 65_536];
    let mut linger: Option<Deadline> = None;
    while c.received < opts.count && deadline.remaining().is_ok() {
        if linger.is_none() && done_sending.load(Ordering::Acquire) {
            linger = Some(Deadline::after(LINGER));
        }
        if linger.is_some_and(|l| l.remaining().is_err()) {
            break;
        }
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock
                        | ErrorKind::TimedOut
                        | ErrorKind::Interrupted
                        | ErrorKind::ConnectionRefused
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        match check(&buf[..n], opts.seed, opts.count, opts.size) {
            None => c.corrupt += 1,
            Some(seq) if back[seq as usize] => c.duplicates += 1,
            Some(seq) => {
                back[seq as usize] = true;
                c.received += 1;
                if highest.is_some_and(|h| seq < h) {
                    c.reordered += 1;
                } else {
                    highest = Some(seq);
                }
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(count: u64) -> UdpSendOpts {
        UdpSendOpts {
            count,
            size: 300,
            seed: 77,
            pps: 50_000,
            timeout: Duration::from_secs(10),
        }
    }

    proptest! {
        #[test]
        fn datagrams_check_and_any_change_is_caught(seed: u64, seq in 0u64..1000, size in HEADER..2000,
                                                    pos: prop::sample::Index, flip in 1u8..=255) {
            let d = datagram(seed, seq, size);
            prop_assert_eq!(d.len(), size);
            prop_assert_eq!(check(&d, seed, 1000, size), Some(seq));
            let mut bad = d.clone();
            bad[pos.index(size)] ^= flip;
            prop_assert_eq!(check(&bad, seed, 1000, size), None);
            prop_assert_eq!(check(&d[..size - 1], seed, 1000, size), None);
            prop_assert_eq!(check(&d, seed, seq, size), None);
        }
    }

    #[test]
    fn loopback_echo_returns_every_datagram() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let echoer =
            thread::spawn(move || echo(&server, Duration::from_secs(2), Some(2000)).unwrap());
        // Paced so that a busy machine descheduling the echo for tens of milliseconds does
        // not overflow the sockets' default buffers (the loss this test must not see).
        let r = udp_send(
            to,
            &UdpSendOpts {
                pps: 5_000,
                ..opts(2000)
            },
        );
        assert!(r.ok, "{r:?}");
        assert_eq!((r.sent, r.received, r.lost, r.corrupt), (2000, 2000, 0, 0));
        let e = echoer.join().unwrap();
        assert_eq!(e.echoed, 2000);
        assert_eq!(e.peers.len(), 1);
    }

    #[test]
    fn silence_counts_as_loss_within_the_linger() {
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let t = Instant::now();
        let r = udp_send(sink.local_addr().unwrap(), &opts(50));
        assert!(!r.ok);
        assert_eq!((r.sent, r.received, r.lost), (50, 0, 50));
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[test]
    fn foreign_datagrams_count_as_corrupt() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        // An echo that flips one payload byte of every third datagram.
        let echoer = thread::spawn(move || {
            let mut buf = [0; 2048];
            server
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            for i in 0..30 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                if i % 3 == 0 {
                    buf[HEADER + 1] ^= 0xff;
                }
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        let r = udp_send(to, &opts(30));
        echoer.join().unwrap();
        assert!(!r.ok);
        assert_eq!((r.received, r.corrupt, r.lost), (20, 10, 10));
    }

    #[test]
    fn refuses_oversized_runs() {
        let mut o = opts(1);
        o.size = HEADER - 1;
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = udp_send(sink.local_addr().unwrap(), &o);
        assert!(!r.ok && r.sent == 0 && r.error.is_some(), "{r:?}");
    }
}
