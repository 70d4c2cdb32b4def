//! Driving a sink for trials: in this process ([`SinkPool`]) or in another one, typically in
//! another network namespace, over a Unix socket at a filesystem path (such paths are reachable
//! across namespaces). The protocol is one JSON object per line each way.

use super::sink::SinkReport;
use super::workers::SinkPool;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a blocking read or accept waits before looking at the stop flag again.
const POLL: Duration = Duration::from_millis(100);
/// Longest wait for one answer of a remote sink.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a trial needs of a sink.
pub trait SinkControl {
    /// Starts a trial: forget the counts, expect the streams to start at these sequences.
    fn begin(&mut self, starts: &[(u16, u64)]) -> io::Result<()>;
    /// Generated packets received so far (since the sink started).
    fn received(&mut self) -> io::Result<u64>;
    /// What was received since `begin`.
    fn report(&mut self) -> io::Result<SinkReport>;
}

impl SinkControl for SinkPool {
    fn begin(&mut self, starts: &[(u16, u64)]) -> io::Result<()> {
        SinkPool::begin(self, starts);
        Ok(())
    }

    fn received(&mut self) -> io::Result<u64> {
        Ok(SinkPool::received(self))
    }

    fn report(&mut self) -> io::Result<SinkReport> {
        Ok(self.tally().report())
    }
}

/// A request to a remote sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// [`SinkControl::begin`].
    Begin { starts: Vec<(u16, u64)> },
    /// [`SinkControl::received`].
    Received,
    /// [`SinkControl::report`].
    Report,
    /// End the sink process.
    Quit,
}

/// A remote sink's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ok,
    /// Packets received.
    Received(u64),
    /// The trial's report.
    Report(SinkReport),
    /// The request failed.
    Error(String),
}

/// A sink in another process, reached at a Unix socket path.
#[derive(Debug)]
pub struct RemoteSink {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl RemoteSink {
    /// Connects to the sink at `path`, retrying for up to `wait` while it starts.
    pub fn connect(path: &Path, wait: Duration) -> io::Result<RemoteSink> {
        let deadline = Instant::now() + wait;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("sink control {}: {e}", path.display()),
                    ))
                }
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        };
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        Ok(RemoteSink {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// Sends `req` and reads the answer.
    pub fn call(&mut self, req: &Request) -> io::Result<Reply> {
        let mut line = serde_json::to_string(req).map_err(io::Error::other)?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "the sink closed the control connection",
            ));
        }
        match serde_json::from_str(&answer).map_err(io::Error::other)? {
            Reply::Error(e) => Err(io::Error::other(format!("sink: {e}"))),
            r => Ok(r),
        }
    }
}

fn unexpected(r: Reply) -> io::Error {
    io::Error::other(format!("unexpected answer from the sink: {r:?}"))
}

impl SinkControl for RemoteSink {
    fn begin(&mut self, starts: &[(u16, u64)]) -> io::Result<()> {
        match self.call(&Request::Begin {
            starts: starts.to_vec(),
        })? {
            Reply::Ok => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    fn received(&mut self) -> io::Result<u64> {
        match self.call(&Request::Received)? {
            Reply::Received(n) => Ok(n),
            r => Err(unexpected(r)),
        }
    }

    fn report(&mut self) -> io::Result<SinkReport> {
        match self.call(&Request::Report)? {
            Reply::Report(r) => Ok(r),
            r => Err(unexpected(r)),
        }
    }
}

/// Why [`serve`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeEnd {
    /// A client asked to quit.
    Quit,
    /// The stop flag was set.
    Stopped,
    /// The deadline passed.
    Deadline,
}

/// Serves `sink` at `path` (a stale socket file there is replaced; the file is removed on
/// return), one client at a time, until a client sends `quit`, `stop` is set or `deadline`.
pub fn serve(
    sink: &mut dyn SinkControl,
    path: &Path,
    stop: &AtomicBool,
    deadline: Instant,
) -> io::Result<ServeEnd> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    struct Remove<'a>(&'a Path);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let _remove = Remove(path);
    listener.set_nonblocking(true)?;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(ServeEnd::Stopped);
        }
        if Instant::now() >= deadline {
            return Ok(ServeEnd::Deadline);
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(POLL);
                continue;
            }
            Err(e) => return Err(e),
        };
        stream.set_nonblocking(false)?;
        if let Some(end) = serve_client(sink, stream, stop, deadline)? {
            return Ok(end);
        }
    }
}

/// Answers one client until it leaves (None) or the serving must end.
fn serve_client(
    sink: &mut dyn SinkControl,
    stream: UnixStream,
    stop: &AtomicBool,
    deadline: Instant,
) -> io::Result<Option<ServeEnd>> {
    stream.set_read_timeout(Some(POLL))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(Some(ServeEnd::Stopped));
        }
        if Instant::now() >= deadline {
            return Ok(Some(ServeEnd::Deadline));
        }
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            // A timeout keeps what was read of the line so far.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(None),
            Err(e) => return Err(e),
        }
        let (reply, quit) = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Begin { starts }) => (sink.begin(&starts).map(|()| Reply::Ok), false),
            Ok(Request::Received) => (sink.received().map(Reply::Received), false),
            Ok(Request::Report) => (sink.report().map(Reply::Report), false),
            Ok(Request::Quit) => (Ok(Reply::Ok), true),
            Err(e) => (Ok(Reply::Error(format!("bad request: {e}"))), false),
        };
        line.clear();
        let reply = reply.unwrap_or_else(|e| Reply::Error(e.to_string()));
        let mut out = serde_json::to_string(&reply).map_err(io::Error::other)?;
        out.push('\n');
        if writer.write_all(out.as_bytes()).is_err() {
            return Ok(None);
        }
        if quit {
            return Ok(Some(ServeEnd::Quit));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktgen::frame::{FrameFactory, FrameSpec, Proto};
    use crate::pktgen::sink::SinkState;
    use crate::pktgen::stamp::Stamp;
    use std::sync::Arc;

    fn frame(stream: u16, seq: u64) -> Vec<u8> {
        let spec = FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: "198.18.0.1".parse().unwrap(),
            dst_ip: "198.18.0.2".parse().unwrap(),
            src_port: 1,
            dst_port: 2,
            proto: Proto::Udp,
            flows: 1,
            ttl: 64,
        };
        let stamp = Stamp {
            stream,
            seq,
            tx_ns: 1,
        };
        FrameFactory::new(&spec, &[64])
            .unwrap()
            .frame(0, 0, &stamp)
            .to_vec()
    }

    /// A sink with no sockets: frames are handed to it directly.
    struct Fake(SinkState);

    impl SinkControl for Fake {
        fn begin(&mut self, starts: &[(u16, u64)]) -> io::Result<()> {
            self.0.begin(starts);
            Ok(())
        }
        fn received(&mut self) -> io::Result<u64> {
            Ok(self.0.tally().packets)
        }
        fn report(&mut self) -> io::Result<SinkReport> {
            Ok(self.0.tally().report())
        }
    }

    #[test]
    fn a_remote_sink_answers_like_a_local_one() {
        let dir = std::env::temp_dir().join(format!("bpgctl{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sink.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let (path, stop) = (path.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let mut sink = Fake(SinkState::new());
                // One frame of stream 4, sequence 7, arrives before the trial: stale after begin.
                sink.0.handle(&frame(4, 7), 10);
                let deadline = Instant::now() + Duration::from_secs(20);
                let end = serve(&mut sink, &path, &stop, deadline);
                (end, sink)
            })
        };
        let mut remote = RemoteSink::connect(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(remote.received().unwrap(), 1);
        remote.begin(&[(4, 8)]).unwrap();
        assert_eq!(remote.received().unwrap(), 0);
        let r = remote.report().unwrap();
        assert_eq!(r.streams.len(), 1);
        assert_eq!((r.streams[0].stream, r.streams[0].start), (4, 8));
        // Garbage gets an error, and the connection stays usable.
        remote.writer.write_all(b"{\"op\":\"dance\"}\n").unwrap();
        let mut answer = String::new();
        remote.reader.read_line(&mut answer).unwrap();
        assert!(answer.contains("error"), "{answer}");
        assert_eq!(remote.call(&Request::Quit).unwrap(), Reply::Ok);
        let (end, _) = server.join().unwrap();
        assert_eq!(end.unwrap(), ServeEnd::Quit);
        assert!(!path.exists(), "the socket file is removed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn serving_ends_on_stop_or_deadline() {
        let dir = std::env::temp_dir().join(format!("bpgctl{}b", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sink.sock");
        let mut sink = Fake(SinkState::new());
        let past = Instant::now();
        assert_eq!(
            serve(&mut sink, &path, &AtomicBool::new(false), past).unwrap(),
            ServeEnd::Deadline
        );
        let later = Instant::now() + Duration::from_secs(30);
        assert_eq!(
            serve(&mut sink, &path, &AtomicBool::new(true), later).unwrap(),
            ServeEnd::Stopped
        );
        assert!(RemoteSink::connect(&path, Duration::from_millis(100)).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
