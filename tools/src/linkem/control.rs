//! The control socket: a Unix socket at a filesystem path (reachable from any network namespace),
//! one JSON request per line and one JSON reply per line. A thread serves it, changing the shared
//! [`Links`] directly: the workers see a change at their next frame.

use super::engine::{Links, PathStatus};
use super::scope::Scope;
use super::settings::Change;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often the server looks at its stop flag while no client connects.
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// Longest a client may take to send a line, and to read an answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes a client may send over one connection.
const MAX_CLIENT_BYTES: u64 = 64 * 1024;

/// A request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Every path's settings and counters.
    Show,
    /// Parameter changes, applied in order, all or none.
    Set {
        /// The changes.
        changes: Vec<Change>,
    },
    /// Blackhole the directions in scope: drop everything, in flight included.
    Cut {
        /// Where.
        scope: Scope,
    },
    /// End the blackhole of the directions in scope.
    Restore {
        /// Where.
        scope: Scope,
    },
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ok,
    /// What `show` asked for.
    Status(Vec<PathStatus>),
    /// The request was refused; nothing changed.
    Error(String),
}

/// Carries out `req` on `links`.
pub fn handle(links: &Links, req: Request) -> Reply {
    let done = |r: Result<(), String>| r.map_or_else(Reply::Error, |()| Reply::Ok);
    match req {
        Request::Show => Reply::Status(links.status()),
        Request::Set { changes } => done(links.set(&changes)),
        Request::Cut { scope } => done(links.cut(&scope, true)),
        Request::Restore { scope } => done(links.cut(&scope, false)),
    }
}

/// The serving thread; dropping it stops the thread and removes the socket file.
pub struct Server {
    handle: Option<JoinHandle<()>>,
    quit: Arc<AtomicBool>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Binds `path`, replacing a stale socket file but not a live one.
fn bind(path: &Path) -> io::Result<UnixListener> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                ErrorKind::AddrInUse,
                format!("{}: another emulator answers there", path.display()),
            ));
        }
        std::fs::remove_file(path).map_err(context)?;
    }
    UnixListener::bind(path).map_err(context)
}

/// Serves the control socket at `path` for `links` until the server is dropped.
pub fn serve(path: &Path, links: Arc<Links>) -> io::Result<Server> {
    let listener = bind(path)?;
    listener.set_nonblocking(true)?;
    let quit = Arc::new(AtomicBool::new(false));
    let (quit_flag, path) = (Arc::clone(&quit), path.to_path_buf());
    let handle = thread::spawn(move || accept_loop(&listener, &links, &quit_flag, path));
    Ok(Server {
        handle: Some(handle),
        quit,
    })
}

fn accept_loop(listener: &UnixListener, links: &Links, quit: &AtomicBool, path: PathBuf) {
    while !quit.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                // A client that misbehaves only loses its own connection.
                let _ = converse(conn, links);
            }
            // Nothing to accept (or a transient error): look at the flag again shortly.
            Err(_) => thread::sleep(ACCEPT_POLL),
        }
    }
    let _ = std::fs::remove_file(path);
}

/// Answers the requests of one client until it hangs up.
fn converse(conn: UnixStream, links: &Links) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn.take(MAX_CLIENT_BYTES));
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => handle(links, req),
            Err(e) => Reply::Error(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_string(&reply).map_err(io::Error::other)?;
        out.push('\n');
        writer.write_all(out.as_bytes())?;
    }
}

/// Sends `req` to the emulator at `path` and returns its reply (an `Error` reply as an error).
pub fn call(path: &Path, req: &Request) -> Result<Reply, String> {
    let context = |e: io::Error| format!("control socket {}: {e}", path.display());
    let conn = UnixStream::connect(path).map_err(context)?;
    conn.set_read_timeout(Some(IO_TIMEOUT)).map_err(context)?;
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    (&conn).write_all(line.as_bytes()).map_err(context)?;
    let mut answer = String::new();
    BufReader::new(&conn)
        .read_line(&mut answer)
        .map_err(context)?;
    match serde_json::from_str(&answer) {
        Ok(Reply::Error(e)) => Err(e),
        Ok(r) => Ok(r),
        Err(e) => Err(format!(
            "control socket {}: bad answer: {e}",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linkem::engine::PathSpec;
    use crate::linkem::settings::parse_delay;

    fn links() -> Links {
        let specs = vec![PathSpec::parse("isp1=a1,b1").unwrap()];
        Links::new(specs, &[], 1).unwrap()
    }

    #[test]
    fn requests_have_a_stable_json_form() {
        let req = Request::Set {
            changes: vec![parse_delay("isp1:up=5ms").unwrap()],
        };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(
            json,
            r#"{"op":"set","changes":[{"scope":{"path":"isp1","dir":"up"},"value":{"delay":5000000}}]}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), req);
        let cut = r#"{"op":"cut","scope":{"path":"isp1","dir":null}}"#;
        assert_eq!(
            serde_json::from_str::<Request>(cut).unwrap(),
            Request::Cut {
                scope: Scope::parse("isp1").unwrap()
            }
        );
    }

    #[test]
    fn handle_carries_out_requests() {
        let links = links();
        let isp1 = Scope::parse("isp1").unwrap();
        assert_eq!(
            handle(
                &links,
                Request::Cut {
                    scope: isp1.clone()
                }
            ),
            Reply::Ok
        );
        let Reply::Status(st) = handle(&links, Request::Show) else {
            panic!("no status");
        };
        assert!(st[0].up.settings.cut && st[0].down.settings.cut);
        assert_eq!(handle(&links, Request::Restore { scope: isp1 }), Reply::Ok);
        let bad = Request::Cut {
            scope: Scope::parse("isp9").unwrap(),
        };
        assert!(matches!(handle(&links, bad), Reply::Error(e) if e.contains("isp9")));
        let set = Request::Set {
            changes: vec![parse_delay("isp1:down=3ms").unwrap()],
        };
        assert_eq!(handle(&links, set), Reply::Ok);
        assert_eq!(links.status()[0].down.settings.delay_ns, 3_000_000);
    }

    #[test]
    fn a_client_talks_to_the_emulator_through_the_socket() {
        let dir = std::env::temp_dir().join(format!("linkem-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.sock");
        let links = Arc::new(links());
        let server = serve(&path, Arc::clone(&links)).unwrap();
        assert!(
            serve(&path, Arc::clone(&links)).is_err(),
            "a live socket is not replaced"
        );
        let cut = Request::Cut {
            scope: Scope::default(),
        };
        assert_eq!(call(&path, &cut), Ok(Reply::Ok));
        let restore = Request::Restore {
            scope: Scope::parse("nosuch").unwrap(),
        };
        assert!(call(&path, &restore)
            .unwrap_err()
            .contains("no path `nosuch`"));
        assert!(
            matches!(call(&path, &Request::Show), Ok(Reply::Status(s)) if s[0].up.settings.cut)
        );
        drop(server);
        assert!(!path.exists(), "the socket file is removed");
        assert!(call(&path, &Request::Show)
            .unwrap_err()
            .contains("control socket"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
