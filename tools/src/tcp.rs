//! The TCP transfer. The client sends a [`Header`] and `len` bytes of the stream of `seed`; the server
//! checks them, answers one verdict byte and, when the upload was right, `len` bytes of the stream of
//! `seed + 1`, then closes its side. The client checks those and that nothing follows them.

use crate::deadline::Deadline;
use crate::stream::{Stream, Verifier};
use serde::Serialize;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

const MAGIC: [u8; 4] = *b"BRXF";
const CHUNK: usize = 64 * 1024;
const VERDICT_OK: u8 = 1;
const VERDICT_BAD: u8 = 0;

/// What the client announces before its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Bytes that follow, and that the server sends back.
    pub len: u64,
    /// Seed of the uploaded stream; the download uses `seed + 1`.
    pub seed: u64,
}

impl Header {
    /// Encoded size: magic `BRXF`, then `len` and `seed` as big-endian u64.
    pub const SIZE: usize = 20;

    /// The wire form.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0; Self::SIZE];
        b[..4].copy_from_slice(&MAGIC);
        b[4..12].copy_from_slice(&self.len.to_be_bytes());
        b[12..].copy_from_slice(&self.seed.to_be_bytes());
        b
    }

    /// Parses the wire form; fails on a wrong magic.
    pub fn decode(b: &[u8; Self::SIZE]) -> io::Result<Self> {
        if b[..4] != MAGIC {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                "not a braid-xfer header",
            ));
        }
        let word = |at: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_be_bytes(w)
        };
        Ok(Header {
            len: word(4),
            seed: word(12),
        })
    }
}

/// The client's account of one transfer.
#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    /// Bytes uploaded and confirmed right by the server.
    pub bytes_up: u64,
    /// Bytes downloaded and found right.
    pub bytes_down: u64,
    /// Both directions complete and byte-exact.
    pub ok: bool,
    /// Wall time from connect to the end.
    pub secs: f64,
    /// The server's address.
    pub peer: String,
    /// Why the transfer failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The server's account of one connection.
#[derive(Debug, Clone, Serialize)]
pub struct ServeReport {
    /// The client's address as the server saw it.
    pub peer: String,
    /// Bytes received and checked.
    pub bytes: u64,
    /// The upload was complete and right, and the download was sent.
    pub ok: bool,
    /// Wall time of the connection.
    pub secs: f64,
    /// Why the connection failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How long the socket calls of one exchange may wait.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// The whole exchange ends by this deadline (the client).
    Total(Deadline),
    /// Each call may wait this long (the server: a live client may take its time).
    Idle(Duration),
}

impl Limit {
    fn remaining(self) -> io::Result<Duration> {
        match self {
            Limit::Total(d) => d.remaining(),
            Limit::Idle(idle) => Ok(idle),
        }
    }
}

/// Socket timeouts surface as `WouldBlock` on Unix: name them.
fn timed(e: io::Error) -> io::Error {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            io::Error::new(ErrorKind::TimedOut, "timed out")
        }
        _ => e,
    }
}

fn write_by(conn: &mut TcpStream, mut data: &[u8], limit: Limit) -> io::Result<()> {
    while !data.is_empty() {
        conn.set_write_timeout(Some(limit.remaining()?))?;
        match conn.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(timed(e)),
        }
    }
    Ok(())
}

fn read_by(conn: &mut TcpStream, buf: &mut [u8], limit: Limit) -> io::Result<usize> {
    loop {
        conn.set_read_timeout(Some(limit.remaining()?))?;
        match conn.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            r => return r.map_err(timed),
        }
    }
}

/// Streams `len` bytes of `seed`'s stream into `conn`.
fn send_stream(
    conn: &mut TcpStream,
    len: u64,
    seed: u64,
    limit: Limit,
    buf: &mut [u8],
) -> io::Result<()> {
    let mut src = Stream::new(seed);
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        src.fill(&mut buf[..n]);
        write_by(conn, &buf[..n], limit)?;
        left -= n as u64;
    }
    Ok(())
}

/// Reads exactly `len` bytes and checks them against `seed`'s stream, counting into `seen` as it goes;
/// fails on a short stream or a mismatch.
fn recv_stream(
    conn: &mut TcpStream,
    len: u64,
    seed: u64,
    limit: Limit,
    buf: &mut [u8],
    seen: &mut u64,
) -> io::Result<Verifier> {
    let mut check = Verifier::new(seed);
    while check.seen() < len {
        let want = (len - check.seen()).min(buf.len() as u64) as usize;
        let n = read_by(conn, &mut buf[..want], limit)?;
        if n == 0 {
            let msg = format!("peer closed after {} of {len} bytes", check.seen());
            return Err(io::Error::new(ErrorKind::UnexpectedEof, msg));
        }
        check.update(&buf[..n]);
        *seen = check.seen();
    }
    Ok(check)
}

fn differs(what: &str, at: u64) -> io::Error {
    io::Error::new(
        ErrorKind::InvalidData,
        format!("{what} differs from the stream at byte {at}"),
    )
}

/// Runs one transfer of `len` bytes each way with a [`serve_conn`] server at `to`, all within `timeout`.
pub fn send(to: SocketAddr, len: u64, seed: u64, timeout: Duration) -> SendReport {
    let start = Instant::now();
    let limit = Limit::Total(Deadline::after(timeout));
    let (mut up, mut down) = (0, 0);
    let result = TcpStream::connect_timeout(&to, timeout)
        .map_err(timed)
        .and_then(|mut conn| client_exchange(&mut conn, len, seed, limit, &mut up, &mut down));
    SendReport {
        bytes_up: up,
        bytes_down: down,
        ok: result.is_ok(),
        secs: start.elapsed().as_secs_f64(),
        peer: to.to_string(),
        error: result.err().map(|e| e.to_string()),
    }
}

fn client_exchange(
    conn: &mut TcpStream,
    len: u64,
    seed: u64,
    limit: Limit,
    up: &mut u64,
    down: &mut u64,
) -> io::Result<()> {
    let mut buf = vec![0; CHUNK];
    write_by(conn, &Header { len, seed }.encode(), limit)?;
    send_stream(conn, len, seed, limit, &mut buf)?;
    let mut verdict = [0; 1];
    if read_by(conn, &mut verdict, limit)? == 0 {
        return Err(io::Error::new(
            ErrorKind::UnexpectedEof,
            "server closed without a verdict",
        ));
    }
    if verdict[0] != VERDICT_OK {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            "server found the upload corrupted",
        ));
    }
    *up = len;
    let mut seen = 0;
    let check = recv_stream(conn, len, seed.wrapping_add(1), limit, &mut buf, &mut seen)?;
    if let Some(at) = check.first_mismatch() {
        return Err(differs("download", at));
    }
    *down = seen;
    if read_by(conn, &mut buf[..1], limit)? != 0 {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            "server sent more than asked",
        ));
    }
    Ok(())
}

/// Waits up to `limit` for one connection on `listener`.
pub fn accept_within(listener: &TcpListener, limit: Duration) -> io::Result<TcpStream> {
    let deadline = Deadline::after(limit);
    listener.set_nonblocking(true)?;
    let conn = loop {
        match listener.accept() {
            Ok((conn, _)) => break conn,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                deadline.remaining().map_err(|_| {
                    io::Error::new(ErrorKind::TimedOut, "no connection came in time")
                })?;
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    listener.set_nonblocking(false)?;
    conn.set_nonblocking(false)?;
    Ok(conn)
}

/// Serves one client connection; `idle` bounds every wait on the client.
pub fn serve_conn(mut conn: TcpStream, idle: Duration) -> ServeReport {
    let start = Instant::now();
    let peer = conn
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    let mut bytes = 0;
    let result = server_exchange(&mut conn, Limit::Idle(idle), &mut bytes);
    ServeReport {
        peer,
        bytes,
        ok: result.is_ok(),
        secs: start.elapsed().as_secs_f64(),
        error: result.err().map(|e| e.to_string()),
    }
}

fn server_exchange(conn: &mut TcpStream, limit: Limit, bytes: &mut u64) -> io::Result<()> {
    let mut head = [0; Header::SIZE];
    let mut got = 0;
    while got < head.len() {
        match read_by(conn, &mut head[got..], limit)? {
            0 => {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "client closed in the header",
                ))
            }
            n => got += n,
        }
    }
    let header = Header::decode(&head)?;
    let mut buf = vec![0; CHUNK];
    let check = recv_stream(conn, header.len, header.seed, limit, &mut buf, bytes)?;
    if let Some(at) = check.first_mismatch() {
        write_by(conn, &[VERDICT_BAD], limit)?;
        return Err(differs("upload", at));
    }
    write_by(conn, &[VERDICT_OK], limit)?;
    send_stream(
        conn,
        header.len,
        header.seed.wrapping_add(1),
        limit,
        &mut buf,
    )?;
    conn.shutdown(Shutdown::Write)?;
    // Wait for the client's close so that our last bytes are not cut short by a reset.
    while read_by(conn, &mut buf, limit)? != 0 {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener() -> (TcpListener, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        (l, a)
    }

    fn stream_bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        Stream::new(seed).fill(&mut v);
        v
    }

    /// A server that reads the request, then answers with `reply(header)` and closes.
    fn fake_server(reply: impl FnOnce(Header) -> Vec<u8> + Send + 'static) -> SocketAddr {
        let (l, a) = listener();
        thread::spawn(move || {
            let mut c = accept_within(&l, Duration::from_secs(10)).unwrap();
            let mut h = [0; Header::SIZE];
            c.read_exact(&mut h).unwrap();
            let h = Header::decode(&h).unwrap();
            let mut data = vec![0; h.len as usize];
            c.read_exact(&mut data).unwrap();
            c.write_all(&reply(h)).unwrap();
        });
        a
    }

    #[test]
    fn header_round_trips_and_rejects_a_wrong_magic() {
        let h = Header {
            len: 0x0102_0304_0506_0708,
            seed: u64::MAX,
        };
        let b = h.encode();
        assert_eq!(&b[..4], b"BRXF");
        assert_eq!(b[4..12], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(Header::decode(&b).unwrap(), h);
        let mut bad = b;
        bad[0] = b'X';
        assert_eq!(
            Header::decode(&bad).unwrap_err().kind(),
            ErrorKind::InvalidData
        );
    }

    #[test]
    fn loopback_transfer_is_byte_exact_both_ways() {
        let (l, a) = listener();
        let server = thread::spawn(move || {
            let c = accept_within(&l, Duration::from_secs(10)).unwrap();
            serve_conn(c, Duration::from_secs(10))
        });
        let len = 3 * CHUNK as u64 + 12345;
        let r = send(a, len, 42, Duration::from_secs(20));
        assert!(r.ok, "{r:?}");
        assert_eq!((r.bytes_up, r.bytes_down), (len, len));
        let s = server.join().unwrap();
        assert!(s.ok, "{s:?}");
        assert_eq!(s.bytes, len);
        assert!(s.peer.starts_with("127.0.0.1:"), "{}", s.peer);
    }

    #[test]
    fn client_detects_a_corrupted_download() {
        let a = fake_server(|h| {
            let mut r = vec![VERDICT_OK];
            r.extend(stream_bytes(h.seed + 1, h.len as usize));
            r[1 + 5000] ^= 0x40;
            r
        });
        let r = send(a, 10_000, 9, Duration::from_secs(10));
        assert!(!r.ok);
        assert_eq!(r.bytes_up, 10_000);
        assert!(
            r.error
                .as_deref()
                .unwrap()
                .contains("download differs from the stream at byte 5000"),
            "{r:?}"
        );
    }

    #[test]
    fn client_detects_a_short_and_a_long_download() {
        let short = fake_server(|h| {
            let mut r = vec![VERDICT_OK];
            r.extend(stream_bytes(h.seed + 1, h.len as usize - 1));
            r
        });
        let r = send(short, 1000, 1, Duration::from_secs(10));
        assert!(!r.ok);
        assert!(
            r.error.as_deref().unwrap().contains("after 999 of 1000"),
            "{r:?}"
        );

        let long = fake_server(|h| {
            let mut r = vec![VERDICT_OK];
            r.extend(stream_bytes(h.seed + 1, h.len as usize + 1));
            r
        });
        let r = send(long, 1000, 1, Duration::from_secs(10));
        assert!(!r.ok);
        assert!(
            r.error.as_deref().unwrap().contains("more than asked"),
            "{r:?}"
        );
    }

    #[test]
    fn server_detects_a_corrupted_upload_and_says_so() {
        let (l, a) = listener();
        let server = thread::spawn(move || {
            let c = accept_within(&l, Duration::from_secs(10)).unwrap();
            serve_conn(c, Duration::from_secs(10))
        });
        let mut c = TcpStream::connect(a).unwrap();
        let mut data = stream_bytes(5, 4000);
        data[1234] ^= 1;
        c.write_all(&Header { len: 4000, seed: 5 }.encode())
            .unwrap();
        c.write_all(&data).unwrap();
        let mut verdict = Vec::new();
        c.read_to_end(&mut verdict).unwrap();
        assert_eq!(verdict, [VERDICT_BAD]);
        let s = server.join().unwrap();
        assert!(!s.ok);
        assert_eq!(s.bytes, 4000);
        assert!(
            s.error
                .as_deref()
                .unwrap()
                .contains("upload differs from the stream at byte 1234"),
            "{s:?}"
        );
    }

    #[test]
    fn a_silent_server_times_the_client_out() {
        let (l, a) = listener();
        let hold = thread::spawn(move || {
            let c = accept_within(&l, Duration::from_secs(10)).unwrap();
            thread::sleep(Duration::from_secs(3));
            drop(c);
        });
        let t = Instant::now();
        let r = send(a, 100, 1, Duration::from_millis(700));
        assert!(!r.ok);
        assert!(r.error.as_deref().unwrap().contains("timed out"), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        hold.join().unwrap();
    }

    #[test]
    fn accept_gives_up_in_time() {
        let (l, _) = listener();
        let t = Instant::now();
        let e = accept_within(&l, Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
