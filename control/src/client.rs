//! The client side of the control socket: connect, send a request, read its response.

use crate::proto::{self, ErrorReply, Outcome, Reply, Request, MAX_RESPONSE};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a response may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no answer, or a refusal.
#[derive(Debug)]
pub enum ClientError {
    /// No daemon serves the socket (no file there, or nobody listening).
    NotRunning(PathBuf),
    /// The caller may not open the socket.
    PermissionDenied(PathBuf),
    /// Any other failure to talk to the socket.
    Io(PathBuf, io::Error),
    /// The daemon's answer could not be understood.
    Protocol(String),
    /// The daemon refused the request.
    Refused(ErrorReply),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NotRunning(path) => write!(
                f,
                "braidd is not running (nothing serves {}); start it, or give its socket with --socket",
                path.display()
            ),
            ClientError::PermissionDenied(path) => write!(
                f,
                "permission denied on {}: the control socket is for root only; run braidctl as root",
                path.display()
            ),
            ClientError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            ClientError::Protocol(what) => write!(f, "braidd: {what}"),
            ClientError::Refused(e) => write!(f, "refused: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A connection to the daemon's control socket.
pub struct Client {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning(path.to_path_buf())
            }
            io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(path.to_path_buf()),
            _ => ClientError::Io(path.to_path_buf(), e),
        })?;
        let io_err = |e| ClientError::Io(path.to_path_buf(), e);
        stream
            .set_read_timeout(Some(RESPONSE_TIMEOUT))
            .map_err(io_err)?;
        let writer = stream.try_clone().map_err(io_err)?;
        Ok(Client {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends `request` and returns the daemon's reply; a refusal is [`ClientError::Refused`].
    pub fn call(&mut self, request: &Request) -> Result<Reply, ClientError> {
        let line = proto::encode_request(request);
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| self.io_error(e))?;
        let mut answer = Vec::new();
        let limit = MAX_RESPONSE as u64 + 1;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut answer)
            .map_err(|e| self.io_error(e))?;
        if read == 0 {
            return Err(ClientError::Protocol("closed the connection".into()));
        }
        if answer.pop() != Some(b'\n') {
            return Err(ClientError::Protocol(
                "sent an unterminated response".into(),
            ));
        }
        match proto::decode_response(&answer)
            .map_err(ClientError::Protocol)?
            .outcome
        {
            Outcome::Ok(reply) => Ok(reply),
            Outcome::Error(e) => Err(ClientError::Refused(e)),
        }
    }

    fn io_error(&self, e: io::Error) -> ClientError {
        match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                ClientError::Protocol("closed the connection".into())
            }
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                ClientError::Protocol("did not answer in time".into())
            }
            _ => ClientError::Io(self.path.clone(), e),
        }
    }
}
