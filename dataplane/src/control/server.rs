//! The control socket and the metrics port: binding them, the control thread that accepts
//! clients, samples rates and runs the weight learners, and the conversation with one client.

use super::counters::{Sampler, Totals};
use super::follow::Follow;
use super::learn::{Learners, LEARN_EVERY};
use super::runtime::Runtime;
use super::{metrics, nat, report};
use crate::pipeline::Shared;
use crate::stats::WorkerStats;
use crate::worker::Mailboxes;
use braid_control::proto::{
    self, ErrorKind, ErrorReply, Metrics, Outcome, Reply, Request, Routes, Rules, MAX_LINE,
    NAT_LIST_DEFAULT,
};
use std::fs::{self, DirBuilder};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Clients served at once; more are told the daemon is busy.
const MAX_CLIENTS: usize = 16;
/// How often the control thread looks for new clients while they come…
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// …and once none came for [`QUIET_AFTER`] rounds: an idle router's control thread
/// wakes ten times a second, a command waits at most this long to be taken.
const ACCEPT_POLL_QUIET: Duration = Duration::from_millis(100);
/// Empty rounds before the control thread polls at [`ACCEPT_POLL_QUIET`].
const QUIET_AFTER: u32 = 50;
/// How often a client's thread looks at the stop flag while waiting for a request.
const READ_POLL: Duration = Duration::from_millis(100);
/// A client that sends no request for this long is disconnected.
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// How long writing a response may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Interval of the rate samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The bound control socket; the file is removed when this is dropped (if it is still ours).
struct SocketFile {
    listener: UnixListener,
    path: PathBuf,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The control socket and the optional metrics port, bound but not yet served.
pub struct Listeners {
    socket: SocketFile,
    metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds the control socket at `socket` (mode 0600; its directory is created if missing)
    /// and, when given, the metrics port. Refuses when another daemon serves the socket;
    /// a stale socket file nobody serves is replaced.
    pub fn bind(socket: &Path, metrics: Option<SocketAddr>) -> Result<Listeners, String> {
        let socket =
            bind_socket(socket).map_err(|e| format!("control socket {}: {e}", socket.display()))?;
        let metrics = metrics
            .map(|addr| {
                let l = TcpListener::bind(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(|e| format!("metrics_listen {addr}: {e}"))?;
                Ok::<_, String>(l)
            })
            .transpose()?;
        Ok(Listeners { socket, metrics })
    }

    /// Where the metrics are served (the port chosen when bound to port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Starts the control thread, serving `runtime` and the counters of `stats` until
    /// `stop`; NAT sessions are asked of the workers through `mail`; the kernel's changes
    /// are followed into the runtime and braid's XDP programs by `follow`.
    pub fn serve(
        self,
        runtime: Runtime,
        stats: Vec<Arc<WorkerStats>>,
        mail: Arc<Mailboxes>,
        stop: Arc<AtomicBool>,
        follow: Follow,
    ) -> Result<Control, String> {
        let ctx = Arc::new(Context {
            shared: Arc::clone(runtime.shared()),
            mail,
            runtime: Mutex::new(runtime),
            stats,
            sampler: Mutex::new(Sampler::default()),
            started: Instant::now(),
            stop,
            clients: AtomicUsize::new(0),
        });
        ctx.sample();
        let thread = thread::Builder::new()
            .name("braid-control".into())
            .spawn(move || control_loop(&ctx, self, follow))
            .map_err(|e| format!("cannot start the control thread: {e}"))?;
        Ok(Control { thread })
    }
}

/// The running control thread.
pub struct Control {
    thread: JoinHandle<()>,
}

impl Control {
    /// Waits for the control thread to end (after the stop flag is set); the socket file is
    /// removed by then. False if the thread panicked.
    pub fn join(self) -> bool {
        self.thread.join().is_ok()
    }

    /// True once the control thread has ended (before the stop flag: it failed).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Binds `path`, never leaving a moment when the socket exists with a mode other than 0600:
/// it is bound in a fresh private directory, restricted, then moved into place.
fn bind_socket(path: &Path) -> io::Result<SocketFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another braidd serves it (stop that one, or give this one its own \
                     control_socket)",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => fs::remove_file(path)?,
            Err(e) => return Err(e),
        },
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket; not replacing it",
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let private = dir.join(format!(".braidd-{}.sock.d", std::process::id()));
    DirBuilder::new().mode(0o700).create(&private)?;
    let staged = private.join("s");
    let bound = UnixListener::bind(&staged).and_then(|listener| {
        fs::set_permissions(&staged, fs::Permissions::from_mode(0o600))?;
        fs::rename(&staged, path)?;
        Ok(listener)
    });
    let _ = fs::remove_file(&staged);
    let _ = fs::remove_dir(&private);
    let listener = bound?;
    let ino = fs::symlink_metadata(path)?.ino();
    let socket = SocketFile {
        listener,
        path: path.to_path_buf(),
        ino,
    };
    socket.listener.set_nonblocking(true)?;
    Ok(socket)
}

/// What the control thread and the client threads share.
struct Context {
    runtime: Mutex<Runtime>,
    shared: Arc<Shared>,
    mail: Arc<Mailboxes>,
    stats: Vec<Arc<WorkerStats>>,
    sampler: Mutex<Sampler>,
    started: Instant,
    stop: Arc<AtomicBool>,
    clients: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Context {
    fn totals(&self) -> Totals {
        Totals::sum(&self.stats, self.shared.snapshot.load().ports.len())
    }

    fn sample(&self) {
        let totals = self.totals();
        lock(&self.sampler).sample(Instant::now(), totals);
    }

    fn metrics(&self) -> String {
        metrics::render(
            &self.shared.snapshot.load(),
            &self.stats,
            self.started.elapsed(),
        )
    }

    /// Answers one request.
    fn handle(&self, request: &Request) -> Outcome {
        let snap = self.shared.snapshot.load();
        let reply = match request {
            Request::Status => {
                Reply::Status(report::status(&lock(&self.runtime), self.started.elapsed()))
            }
            Request::Links => {
                Reply::Links(report::links(&snap, &self.totals(), &lock(&self.sampler)))
            }
            Request::Interfaces => Reply::Interfaces(report::interfaces(
                &snap,
                &self.totals(),
                &lock(&self.sampler),
            )),
            Request::Stats => Reply::Stats(report::stats(&snap, &self.stats)),
            Request::Routes => Reply::Routes(Routes {
                routes: lock(&self.runtime).config().routes.clone(),
            }),
            Request::Rules => Reply::Rules(Rules {
                rules: lock(&self.runtime).config().rules.clone(),
            }),
            Request::Nat { address, limit } => Reply::Nat(nat::nat(
                &self.shared,
                &self.mail,
                &self.stats,
                *address,
                limit.unwrap_or(NAT_LIST_DEFAULT),
            )),
            Request::Running => Reply::Running(lock(&self.runtime).running()),
            Request::Metrics => Reply::Metrics(Metrics {
                text: self.metrics(),
            }),
            change => match lock(&self.runtime).apply(change) {
                Ok(changed) => {
                    eprintln!(
                        "braidd: control: {change:?}: now generation {}",
                        changed.generation
                    );
                    Reply::Changed(changed)
                }
                Err(e) => return Outcome::Error(e),
            },
        };
        Outcome::Ok(reply)
    }
}

/// Decrements the client count when a client's thread ends.
struct ClientSlot<'a>(&'a AtomicUsize);

impl Drop for ClientSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `serve` for one client on its own thread, unless too many are served already
/// (then `busy` answers instead).
fn spawn_client(
    ctx: &Arc<Context>,
    serve: impl FnOnce(&Context) + Send + 'static,
    busy: impl FnOnce(),
) {
    if ctx.clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
        ctx.clients.fetch_sub(1, Ordering::AcqRel);
        busy();
        return;
    }
    let ctx2 = Arc::clone(ctx);
    let spawned = thread::Builder::new()
        .name("braid-ctl-client".into())
        .spawn(move || {
            let _slot = ClientSlot(&ctx2.clients);
            serve(&ctx2);
        });
    if spawned.is_err() {
        ctx.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

fn control_loop(ctx: &Arc<Context>, listeners: Listeners, mut follow: Follow) {
    let mut next_sample = Instant::now() + SAMPLE_EVERY;
    let mut learners = Learners::default();
    let mut next_learn = Instant::now();
    let mut quiet = 0u32;
    while !ctx.stop.load(Ordering::Relaxed) {
        let mut idle = true;
        if let Ok((stream, _)) = listeners.socket.listener.accept() {
            idle = false;
            let busy = stream.try_clone();
            spawn_client(
                ctx,
                move |ctx| serve_client(ctx, stream),
                move || {
                    if let Ok(mut s) = busy {
                        let e = ErrorReply::new(ErrorKind::Busy, "too many clients; try again");
                        let _ = s.write_all(proto::encode_response(Outcome::Error(e)).as_bytes());
                    }
                },
            );
        }
        if let Some(Ok((stream, _))) = listeners.metrics.as_ref().map(TcpListener::accept) {
            idle = false;
            spawn_client(
                ctx,
                move |ctx| {
                    let _ = stream.set_nonblocking(false);
                    let _ = metrics::serve_http(stream, || ctx.metrics());
                },
                || {},
            );
        }
        follow.look(&ctx.runtime);
        let now = Instant::now();
        if now >= next_learn {
            let t = ctx.started.elapsed().as_nanos() as u64;
            for line in learners.step(&ctx.shared, &ctx.stats, t) {
                eprintln!("braidd: {line}");
            }
            next_learn = now + LEARN_EVERY;
        }
        if now >= next_sample {
            ctx.sample();
            next_sample += SAMPLE_EVERY;
            if next_sample < now {
                next_sample = now + SAMPLE_EVERY;
            }
        }
        if idle {
            quiet = quiet.saturating_add(1);
            thread::sleep(if quiet > QUIET_AFTER {
                ACCEPT_POLL_QUIET
            } else {
                ACCEPT_POLL
            });
        } else {
            quiet = 0;
        }
    }
    // Clients notice the stop flag within READ_POLL; give them a moment before the socket goes.
    let deadline = Instant::now() + Duration::from_secs(1);
    while ctx.clients.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
}

/// Answers one client's request lines until it hangs up, idles too long, sends a line longer
/// than [`MAX_LINE`], or the daemon stops. A line that is not a valid request gets an error
/// response; the conversation goes on.
fn serve_client(ctx: &Context, mut stream: UnixStream) {
    let set_up = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(READ_POLL)))
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)));
    if set_up.is_err() {
        return;
    }
    let mut pending = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut last_request = Instant::now();
    while !ctx.stop.load(Ordering::Relaxed) {
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            last_request = Instant::now();
            let outcome = match proto::decode_request(line) {
                Ok(request) => ctx.handle(&request),
                Err(e) => Outcome::Error(e),
            };
            if stream
                .write_all(proto::encode_response(outcome).as_bytes())
                .is_err()
            {
                return;
            }
        }
        if pending.len() > MAX_LINE {
            let e = ErrorReply::new(
                ErrorKind::Malformed,
                format!("request line longer than {MAX_LINE} bytes"),
            );
            let _ = stream.write_all(proto::encode_response(Outcome::Error(e)).as_bytes());
            hang_up(stream);
            return;
        }
        if last_request.elapsed() > IDLE_LIMIT {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

/// Closes a conversation the client may still be sending on: what it sends is read and
/// discarded until it stops (or for a second), so that closing with unread data does not reset
/// the connection before the client has read the last response.
fn hang_up(mut stream: UnixStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}
