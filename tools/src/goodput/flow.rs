//! The measured flow: a sender that writes to a TCP connection as fast as it can for a bounded
//! time, and a sink that counts what it receives in fixed intervals, empty ones included.

use super::series::{Bucketer, Interval, Sample};
use crate::deadline::Deadline;
use crate::tcp::accept_within;
use serde::Serialize;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CHUNK: usize = 128 * 1024;
/// Most socket calls a loop may make per second it is allowed to run.
const CALLS_PER_SEC: u64 = 1_000_000;
/// Pause between two connection attempts while the sink is not listening yet.
const RETRY: Duration = Duration::from_millis(50);

/// Most calls a loop allowed to run `limit` may make.
fn call_budget(limit: Duration) -> u64 {
    (limit.as_secs() + 1).saturating_mul(CALLS_PER_SEC)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// What the sink saw.
#[derive(Debug, Clone, Serialize)]
pub struct SinkReport {
    /// The sender's address.
    pub peer: String,
    /// Bytes received.
    pub bytes: u64,
    /// From the connection to the end of the last interval.
    pub secs: f64,
    /// The sender closed the connection (false: the sink's time was over first).
    pub eof: bool,
    /// Why reading stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Waits up to `accept` for one connection on `listener`, then counts its bytes in intervals of
/// `interval` from the moment it came, passing each interval to `emit` as it ends, until the sender
/// closes or `duration` has passed. The last interval is cut short there.
pub fn sink(
    listener: &TcpListener,
    interval: Duration,
    accept: Duration,
    duration: Duration,
    mut emit: impl FnMut(Sample),
) -> io::Result<SinkReport> {
    let mut conn = accept_within(listener, accept)?;
    let start = Instant::now();
    let start_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let peer = conn
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    let step = interval.as_secs_f64();
    let to_sample = |i: Interval, secs: f64| Sample {
        t: start_unix + i.index as f64 * step,
        secs,
        bytes: i.bytes,
    };
    let mut buckets = Bucketer::new(interval);
    let mut buf = vec![0; CHUNK];
    let (mut bytes, mut eof, mut error) = (0, false, None);
    for _ in 0..call_budget(duration) {
        let now = start.elapsed();
        if now >= duration {
            break;
        }
        // Intervals that ended while this thread was busy or descheduled are over: out with them.
        buckets.advance(now, |i| emit(to_sample(i, step)));
        let wait = buckets.current_end().min(duration).saturating_sub(now);
        conn.set_read_timeout(Some(wait.max(Duration::from_micros(100))))?;
        match conn.read(&mut buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => {
                bytes += n as u64;
                buckets.record(start.elapsed(), n as u64, |i| emit(to_sample(i, step)));
            }
            Err(e) if is_timeout(&e) => {
                buckets.advance(start.elapsed(), |i| emit(to_sample(i, step)))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    // The series ends at the duration, or where a read that came back after it left the intervals.
    let end = start.elapsed().min(duration);
    buckets.advance(end, |i| emit(to_sample(i, step)));
    let last = buckets.partial();
    let begun = buckets.current_end() - interval;
    let secs = end.max(begun).as_secs_f64();
    if end > begun || last.bytes > 0 {
        emit(to_sample(last, secs - begun.as_secs_f64()));
    }
    Ok(SinkReport {
        peer,
        bytes,
        secs,
        eof,
        error,
    })
}

/// What the sender did.
#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    /// The sink's address.
    pub peer: String,
    /// Bytes handed to the connection (some of them may not have arrived).
    pub bytes: u64,
    /// From the connection to the end of sending.
    pub secs: f64,
    /// Connected and sent until the time was over.
    pub ok: bool,
    /// Why sending stopped early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Connects to `to`, retrying for up to `connect` while nothing listens there yet.
fn connect_within(to: SocketAddr, connect: Duration) -> io::Result<TcpStream> {
    let deadline = Deadline::after(connect);
    let attempts = connect.as_millis() / RETRY.as_millis() + 1;
    let mut last = io::Error::new(ErrorKind::TimedOut, "no connection attempt");
    for _ in 0..attempts {
        let left = deadline.remaining()?;
        match TcpStream::connect_timeout(&to, left) {
            Ok(c) => return Ok(c),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                last = e;
                thread::sleep(RETRY.min(left));
            }
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Connects to the sink at `to` (waiting up to `connect` for it to listen), writes as fast as the
/// connection takes for `duration`, then closes.
pub fn send(to: SocketAddr, duration: Duration, connect: Duration) -> SendReport {
    let mut report = SendReport {
        peer: to.to_string(),
        bytes: 0,
        secs: 0.0,
        ok: false,
        error: None,
    };
    let mut conn = match connect_within(to, connect) {
        Ok(c) => c,
        Err(e) => {
            report.error = Some(format!("connect: {e}"));
            return report;
        }
    };
    let start = Instant::now();
    let result = write_for(&mut conn, duration, &mut report.bytes);
    report.secs = start.elapsed().as_secs_f64();
    // What is still queued goes out before the FIN; a reset here is the sink's business.
    let _ = conn.shutdown(Shutdown::Write);
    report.ok = result.is_ok();
    report.error = result.err().map(|e| e.to_string());
    report
}

/// Writes zeros to `conn` until `duration` is over, counting into `bytes`.
fn write_for(conn: &mut TcpStream, duration: Duration, bytes: &mut u64) -> io::Result<()> {
    let deadline = Deadline::after(duration);
    let buf = vec![0; CHUNK];
    for _ in 0..call_budget(duration) {
        let Ok(left) = deadline.remaining() else {
            return Ok(());
        };
        conn.set_write_timeout(Some(left))?;
        match conn.write(&buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => *bytes += n as u64,
            Err(e) if is_timeout(&e) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_counts_a_loopback_flow_in_intervals_and_ends_at_the_close() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        let sender =
            thread::spawn(move || send(to, Duration::from_millis(350), Duration::from_secs(5)));
        let mut samples = Vec::new();
        let report = sink(
            &listener,
            Duration::from_millis(100),
            Duration::from_secs(5),
            Duration::from_secs(10),
            |s| samples.push(s),
        )
        .unwrap();
        let sent = sender.join().unwrap();
        assert!(sent.ok, "{sent:?}");
        assert!(report.eof && report.error.is_none(), "{report:?}");
        assert_eq!(report.bytes, sent.bytes);
        assert_eq!(samples.iter().map(|s| s.bytes).sum::<u64>(), sent.bytes);
        // Three whole intervals and a short last one, back to back.
        assert!(samples.len() >= 4, "{samples:?}");
        let (last, whole) = samples.split_last().unwrap();
        assert!(whole.iter().all(|s| s.secs == 0.1), "{samples:?}");
        assert!(last.secs > 0.0 && last.secs <= 0.1, "{last:?}");
        for pair in samples.windows(2) {
            assert!((pair[1].t - pair[0].end()).abs() < 1e-6, "{pair:?}");
        }
    }

    #[test]
    fn sink_reports_empty_intervals_and_stops_at_its_duration() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        // Connected, silent: the sink's time runs out first.
        let quiet = thread::spawn(move || {
            let c = TcpStream::connect(to).unwrap();
            thread::sleep(Duration::from_millis(600));
            drop(c);
        });
        let mut samples = Vec::new();
        let t = Instant::now();
        let report = sink(
            &listener,
            Duration::from_millis(100),
            Duration::from_secs(5),
            Duration::from_millis(250),
            |s| samples.push(s),
        )
        .unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(550),
            "{:?}",
            t.elapsed()
        );
        assert!(!report.eof);
        let lens: Vec<f64> = samples.iter().map(|s| (s.secs * 1000.0).round()).collect();
        assert_eq!(lens, [100.0, 100.0, 50.0]);
        assert!(samples.iter().all(|s| s.bytes == 0));
        quiet.join().unwrap();
    }

    #[test]
    fn send_gives_up_when_nothing_listens() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let t = Instant::now();
        let r = send(port, Duration::from_secs(1), Duration::from_millis(200));
        assert!(!r.ok && r.bytes == 0, "{r:?}");
        assert!(r.error.as_deref().unwrap().starts_with("connect:"), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
