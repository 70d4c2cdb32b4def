//! `XskPorts`: AF_XDP sockets (via xsk-rs) as the [`Ports`] of one worker. This file,
//! `tx_ring.rs`, `prog.rs` and `host.rs` hold every `unsafe` block of the project.
//!
//! # Layout
//! One UMEM per worker, shared by one socket per interface, all bound to the same
//! queue number. Each socket (its own netdev/queue pair) has its own fill and
//! completion rings. Every frame descriptor of the UMEM is, at any moment, in
//! exactly one place: the free list, a fill ring (or the RX ring it moves to), a
//! pending TX list, a TX ring, or a completion ring. Half of the frames are split
//! evenly between the fill rings, the rest stay on the free list as a TX reserve,
//! so a port that receives a flood cannot take the buffers the others need.
//!
//! A received frame keeps its UMEM chunk when it is forwarded: the verdict moves
//! the descriptor to the target port's TX ring with the handler's final start and
//! length. A packet arrives [`XDP_PACKET_HEADROOM`] bytes into its chunk; the handler
//! sees the whole chunk, so headers go in front of the packet in place and
//! decapsulation only advances its start; a frame's room from there is
//! [`FRAME_CAPACITY`]. xsk-rs sends a frame only from the address it arrived at, so the
//! TX rings are written by `tx_ring.rs`; xsk-rs keeps the RX, fill and completion rings.
//!
//! # AF_XDP facts this code relies on (measured on veth, kernel 6.x)
//! - veth supports copy mode only; binding without a mode flag lets the kernel
//!   fall back from zero-copy to copy by itself, so the same code serves NICs
//!   that do zero-copy.
//! - In copy mode the TX ring is only read inside `sendto()`, and one call sends
//!   at most 32 frames (the kernel's TX batch) before returning `EAGAIN`: a larger
//!   batch needs several kicks. `flush` kicks until the ring is empty or a kick
//!   makes no progress (zero-copy drivers send asynchronously after one kick).
//! - The TX ring's need-wakeup flag is always set in copy mode; it is honoured
//!   everywhere, which is why sockets are bound with `XDP_USE_NEED_WAKEUP` (it
//!   also lets the kernel sleep while `wait` blocks in `poll()`). Sockets that
//!   join a shared UMEM inherit the first socket's bind flags.
//! - braidd attaches its own program (`prog.rs`) and binds with libxdp's program loading
//!   inhibited (`open_with`); what follows holds for `open`, and for tests and tools.
//! - libxdp loads its default program on first bind (no dispatcher, no bpffs): all
//!   frames of a bound queue go to the socket, ARP included; frames arriving on a
//!   queue with no socket go to the kernel stack (`XDP_PASS`). It keeps a
//!   reference count in the program and detaches it when the last socket of the
//!   interface is deleted, so dropping `XskPorts` leaves the device clean (checked
//!   by `tests/xsk_veth.rs`). It logs to stderr while loading (no bpffs, no
//!   dispatcher, unknown ELF sections): harmless.
//! - Native (driver) XDP on veth spreads flows over the receive queues (create
//!   veths with `numrxqueues N numtxqueues N`); generic mode puts all on queue 0.
//! - Rebinding a queue right after its socket closed can fail with `EBUSY` while
//!   the kernel finishes the teardown: `open` retries for about a second.
//! - UMEM registration counts against `RLIMIT_MEMLOCK` (8 MiB here) unless the
//!   process has `CAP_IPC_LOCK`; the kernel answers `ENOBUFS` past the limit.
//! - xsk-rs requires that a (netdev, queue) pair is bound at most once per UMEM
//!   unless program loading is inhibited, so `open` rejects an interface named
//!   twice (compared by index, which also catches alternative names).
//! - Frames larger than the chunk (GSO super-frames from a sender with TSO/GSO on)
//!   are dropped by the kernel before they reach the ring; turn offloads off on
//!   the devices that feed braid.

// No packet byte is used as an index here. Indexes are port numbers, checked where they
// enter (`rx_batch`, `tx_copy`, `queue_tx`) or taken from `0..ports.len()`, and counts
// the rings return, which never exceed the slice they were given. Frame contents are
// reached only through xsk-rs views and `Frame`, which check their bounds.
#![allow(clippy::indexing_slicing)]
// The AF_XDP rings, UMEM and socket calls need unsafe; each block says why it holds.
#![allow(unsafe_code)]

use super::prog::XdpProgram;
use super::tx_ring::TxRing;
use super::wake::WakeFd;
use super::XdpMode;
use super::{hand_over, PortCounters, PortId, Ports, Verdict, RX_BURST};
use crate::frame::{Frame, HEADROOM};
use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::AsFd;
use std::os::unix::io::AsRawFd;
use std::thread;
use std::time::Duration;
use xsk_rs::config::{
    BindFlags, FrameSize, LibxdpFlags, QueueSize, SocketConfig, UmemConfig, XdpFlags,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// Size of one UMEM chunk in bytes.
pub const FRAME_SIZE: usize = 2048;
/// Bytes the kernel reserves in front of every received packet.
pub const XDP_PACKET_HEADROOM: usize = 256;
/// Room for a packet in one chunk: what `Frame::capacity` is for AF_XDP frames.
pub const FRAME_CAPACITY: usize = FRAME_SIZE - XDP_PACKET_HEADROOM;

// The pipeline's headroom is the one the kernel leaves in a chunk.
const _: () = assert!(HEADROOM == XDP_PACKET_HEADROOM);

/// Attempts to bind a socket when the kernel answers `EBUSY`.
const BIND_TRIES: u32 = 50;
/// Pause between two bind attempts.
const BIND_RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Busy-poll time per `poll()`/`sendto()` when busy polling, in microseconds.
const BUSY_POLL_USECS: libc::c_int = 20;
/// NAPI budget per busy-poll round.
const BUSY_POLL_BUDGET: libc::c_int = 64;

/// Options for [`XskPorts::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XskOptions {
    /// Queue number bound on every interface.
    pub queue: u32,
    /// Frames in the UMEM (each [`FRAME_SIZE`] bytes).
    pub frame_count: u32,
    /// Size of every ring (RX, TX, fill, completion); a power of two.
    pub ring_size: u32,
    /// XDP attach mode.
    pub mode: XdpMode,
    /// Ask the kernel to busy-poll the sockets (dedicated cores only).
    pub busy_poll: bool,
}

impl Default for XskOptions {
    fn default() -> Self {
        XskOptions {
            queue: 0,
            frame_count: 4096,
            ring_size: 2048,
            mode: XdpMode::Native,
            busy_poll: false,
        }
    }
}

/// Kernel-side drop counters of one socket (`XDP_STATISTICS`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XskKernelCounters {
    /// Frames dropped for reasons other than the two below (e.g. too large).
    pub rx_dropped: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub fill_ring_empty: u64,
    /// Invalid descriptors on the RX side.
    pub rx_invalid: u64,
    /// Invalid descriptors on the TX ring.
    pub tx_invalid: u64,
}

/// A descriptor waiting for a TX ring: the frame is `len` bytes at UMEM address `addr`,
/// in `desc`'s chunk.
#[derive(Debug, Clone, Copy)]
struct Pending {
    desc: FrameDesc,
    addr: u64,
    len: u32,
}

/// One socket: an interface's queue and its four rings.
#[derive(Debug)]
struct Port {
    name: String,
    rx: RxQueue,
    /// xsk-rs' view of the TX ring, used only for its wake-up call.
    tx: TxQueue,
    /// The TX ring, written here.
    tx_ring: TxRing,
    fill: FillQueue,
    comp: CompQueue,
    /// Descriptors queued for this port's TX ring by `rx_batch`/`tx_copy`.
    tx_pending: Vec<Pending>,
    /// Descriptors handed to the fill ring and not yet taken back from RX.
    fill_owned: usize,
    /// How many descriptors `flush` keeps on the fill side.
    fill_target: usize,
    counters: PortCounters,
}

impl Port {
    /// True if one more descriptor fits on the TX ring after those pending.
    fn tx_has_room(&mut self) -> bool {
        self.tx_ring.free() as usize > self.tx_pending.len()
    }

    /// Descriptors on the TX ring that the kernel has not read yet.
    fn tx_outstanding(&mut self) -> usize {
        self.tx_ring.outstanding() as usize
    }
}

/// The AF_XDP ports of one worker: queue `queue` of each interface, one UMEM.
/// Dropping it closes the sockets (libxdp then detaches its program from each
/// interface whose last socket this was) and frees the UMEM.
#[derive(Debug)]
pub struct XskPorts {
    ports: Vec<Port>,
    /// Descriptors owned by user space and unused.
    free: Vec<FrameDesc>,
    /// Room for descriptors read from an RX or completion ring.
    scratch: Vec<FrameDesc>,
    /// One entry per socket, for `wait`, then the wake fd's when set.
    pollfds: Vec<libc::pollfd>,
    /// Written by other threads to end a `wait` early.
    wake: Option<WakeFd>,
    /// Declared last: the sockets above hold their own handles on it, so it is
    /// freed only after the last of them is closed.
    umem: Umem,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Wraps an OS error with context, keeping its kind.
fn with_context(err: &io::Error, what: String) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// The OS error behind an xsk-rs error, if any.
fn os_source<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    err.source().and_then(|s| s.downcast_ref::<io::Error>())
}

/// The whole UMEM chunk of `desc` (the packet's headroom included) and where `desc`'s
/// address lies in it.
///
/// # Safety
/// `desc` must name a chunk of `umem` that no ring, list or other reference uses while the
/// slice lives.
unsafe fn chunk<'a>(umem: &'a Umem, desc: &'a mut FrameDesc) -> (&'a mut [u8], usize) {
    let offset = desc.addr() % FRAME_SIZE;
    // SAFETY: the caller's contract, which is xsk-rs' for `data_mut`.
    let mut data = unsafe { umem.data_mut(desc) };
    let at = data.contents_mut().as_mut_ptr();
    // SAFETY: chunks are FRAME_SIZE bytes, aligned to FRAME_SIZE from the UMEM's start (an
    // aligned UMEM), and `desc`'s address is `offset` bytes into its chunk: the slice is
    // exactly that chunk, inside the UMEM mapping, used by no one else (the contract).
    let chunk = unsafe { std::slice::from_raw_parts_mut(at.sub(offset), FRAME_SIZE) };
    (chunk, offset)
}

/// Kernel index of interface `name` in the caller's network namespace.
fn if_index(name: &str) -> io::Result<u32> {
    let c =
        CString::new(name).map_err(|_| invalid(format!("interface name {name:?} has a NUL")))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call, and
    // if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{name}: no such interface"),
        ));
    }
    Ok(index)
}

/// Sets an integer socket option.
fn set_sockopt(fd: libc::c_int, opt: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length passed is its size; the
    // kernel only reads it. `fd` is an open socket owned by the caller.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates the UMEM, explaining the usual failures.
fn create_umem(opts: &XskOptions) -> io::Result<(Umem, Vec<FrameDesc>)> {
    let ring = QueueSize::new(opts.ring_size).map_err(|e| invalid(format!("ring_size: {e}")))?;
    let config = UmemConfig::builder()
        .frame_size(FrameSize::new(FRAME_SIZE as u32).map_err(|e| invalid(e.to_string()))?)
        .fill_queue_size(ring)
        .comp_queue_size(ring)
        .frame_headroom(0)
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    let count = NonZeroU32::new(opts.frame_count)
        .ok_or_else(|| invalid("frame_count must not be zero".into()))?;
    Umem::new(config, count, false).map_err(|e| {
        let bytes = opts.frame_count as usize * FRAME_SIZE;
        match os_source(&e) {
            Some(os) if matches!(os.raw_os_error(), Some(libc::ENOBUFS | libc::ENOMEM)) => {
                with_context(
                    os,
                    format!(
                        "registering a UMEM of {bytes} bytes: over RLIMIT_MEMLOCK? \
                         (run with CAP_IPC_LOCK or lower frame_count)"
                    ),
                )
            }
            Some(os) if os.raw_os_error() == Some(libc::EPERM) => with_context(
                os,
                "creating an AF_XDP UMEM (needs CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF)".into(),
            ),
            Some(os) => with_context(os, format!("creating a UMEM of {bytes} bytes: {e}")),
            None => io::Error::other(format!("creating a UMEM of {bytes} bytes: {e}")),
        }
    })
}

/// Binds one socket on `name`/`queue` to `umem`, retrying while `EBUSY`. With `own_program`
/// libxdp loads no program: the caller's program gets the socket.
fn bind_socket(
    umem: &Umem,
    name: &str,
    opts: &XskOptions,
    own_program: bool,
) -> io::Result<(TxQueue, RxQueue, FillQueue, CompQueue)> {
    let ring = QueueSize::new(opts.ring_size).map_err(|e| invalid(format!("ring_size: {e}")))?;
    let mode = match opts.mode {
        XdpMode::Native => XdpFlags::XDP_FLAGS_DRV_MODE,
        XdpMode::Generic => XdpFlags::XDP_FLAGS_SKB_MODE,
    };
    let config = SocketConfig::builder()
        .rx_queue_size(ring)
        .tx_queue_size(ring)
        .xdp_flags(mode)
        .bind_flags(BindFlags::XDP_USE_NEED_WAKEUP)
        .libxdp_flags(if own_program {
            LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD
        } else {
            LibxdpFlags::empty()
        })
        .build();
    let ifname = name
        .parse()
        .map_err(|_| invalid(format!("interface name {name:?} has a NUL")))?;
    let what = format!("{name}: binding an AF_XDP socket to queue {}", opts.queue);
    let mut tries = 0;
    loop {
        tries += 1;
        // SAFETY: `open` checked that no interface appears twice, so this
        // (netdev, queue) pair is not yet bound with this UMEM and libxdp may load
        // its program (xsk-rs' contract for sharing a UMEM); with `own_program` it loads
        // none.
        let result = unsafe { Socket::new(config, umem, &ifname, opts.queue) };
        match result {
            Ok((tx, rx, Some((fill, comp)))) => return Ok((tx, rx, fill, comp)),
            Ok((_, _, None)) => {
                return Err(io::Error::other(format!(
                    "{what}: got no fill/completion rings (pair already bound)"
                )))
            }
            Err(e) => match os_source(&e) {
                Some(os) if os.raw_os_error() == Some(libc::EBUSY) && tries < BIND_TRIES => {
                    thread::sleep(BIND_RETRY_PAUSE);
                }
                Some(os) if os.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(with_context(os, format!("{what} (after {tries} tries)")));
                }
                Some(os) if os.raw_os_error() == Some(libc::EPERM) => {
                    return Err(with_context(
                        os,
                        format!("{what} (needs CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF)"),
                    ));
                }
                Some(os) => return Err(with_context(os, what)),
                None => return Err(io::Error::other(format!("{what}: {e}"))),
            },
        }
    }
}

/// Descriptors each fill ring gets: half the frames, split evenly, at most a ring.
fn fill_share(frame_count: usize, ports: usize, ring_size: usize) -> usize {
    (frame_count / 2 / ports.max(1)).min(ring_size)
}

impl XskPorts {
    /// Opens one AF_XDP socket on queue `opts.queue` of each named interface
    /// (port *i* is `interfaces[i]`), all sharing one UMEM, and fills their fill
    /// rings. Errors name the interface and what failed: no such interface, a
    /// queue still busy after retries, missing privileges, the memlock limit.
    /// libxdp attaches its default program, which sends every frame to the sockets.
    pub fn open(interfaces: &[String], opts: &XskOptions) -> io::Result<XskPorts> {
        XskPorts::open_inner(interfaces, opts, None)
    }

    /// As [`XskPorts::open`], but the frames come from `programs[i]`, braid's XDP program
    /// already attached to `interfaces[i]`, which gets each socket at its queue; libxdp loads
    /// nothing.
    pub fn open_with(
        interfaces: &[String],
        opts: &XskOptions,
        programs: &[&XdpProgram],
    ) -> io::Result<XskPorts> {
        if programs.len() != interfaces.len()
            || programs
                .iter()
                .zip(interfaces)
                .any(|(p, i)| p.interface() != i)
        {
            return Err(invalid(
                "one XDP program per interface, in the interfaces' order".into(),
            ));
        }
        XskPorts::open_inner(interfaces, opts, Some(programs))
    }

    fn open_inner(
        interfaces: &[String],
        opts: &XskOptions,
        programs: Option<&[&XdpProgram]>,
    ) -> io::Result<XskPorts> {
        if interfaces.is_empty() {
            return Err(invalid("no interfaces to open".into()));
        }
        let mut indexes = Vec::with_capacity(interfaces.len());
        for name in interfaces {
            let index = if_index(name)?;
            if indexes.contains(&index) {
                return Err(invalid(format!("{name}: interface given twice")));
            }
            indexes.push(index);
        }
        let n = interfaces.len();
        QueueSize::new(opts.ring_size).map_err(|e| invalid(format!("ring_size: {e}")))?;
        let ring_size = opts.ring_size as usize;
        let share = fill_share(opts.frame_count as usize, n, ring_size);
        if share == 0 {
            return Err(invalid(format!(
                "frame_count {} is too small for {n} ports",
                opts.frame_count
            )));
        }
        let (umem, free) = create_umem(opts)?;
        let mut ports = Vec::with_capacity(n);
        let mut pollfds = Vec::with_capacity(n);
        for (i, name) in interfaces.iter().enumerate() {
            let program = programs.and_then(|p| p.get(i));
            let (tx, rx, fill, comp) = bind_socket(&umem, name, opts, program.is_some())?;
            let fd = rx.fd().as_raw_fd();
            let tx_ring = TxRing::map(fd, opts.ring_size)
                .map_err(|e| with_context(&e, format!("{name}: mapping the TX ring")))?;
            if let Some(program) = program {
                program.register(opts.queue, fd)?;
            }
            if opts.busy_poll {
                for (opt, value) in [
                    (libc::SO_PREFER_BUSY_POLL, 1),
                    (libc::SO_BUSY_POLL, BUSY_POLL_USECS),
                    (libc::SO_BUSY_POLL_BUDGET, BUSY_POLL_BUDGET),
                ] {
                    set_sockopt(fd, opt, value)
                        .map_err(|e| with_context(&e, format!("{name}: enabling busy polling")))?;
                }
            }
            pollfds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
            ports.push(Port {
                name: name.clone(),
                rx,
                tx,
                tx_ring,
                fill,
                comp,
                tx_pending: Vec::with_capacity(ring_size),
                fill_owned: 0,
                fill_target: share,
                counters: PortCounters::default(),
            });
        }
        let mut xsk = XskPorts {
            ports,
            free,
            scratch: vec![FrameDesc::default(); ring_size],
            pollfds,
            wake: None,
            umem,
        };
        xsk.refill()?;
        Ok(xsk)
    }

    /// Name of the interface behind `port`.
    pub fn name(&self, port: PortId) -> Option<&str> {
        self.ports.get(port).map(|p| p.name.as_str())
    }

    /// The kernel's drop counters for `port`'s socket.
    pub fn kernel_counters(&self, port: PortId) -> io::Result<XskKernelCounters> {
        let p = self
            .ports
            .get(port)
            .ok_or_else(|| invalid(format!("no port {port}")))?;
        let s = p.rx.fd().xdp_statistics()?;
        Ok(XskKernelCounters {
            rx_dropped: s.rx_dropped(),
            rx_ring_full: s.rx_ring_full(),
            fill_ring_empty: s.rx_fill_ring_empty_descs(),
            rx_invalid: s.rx_invalid_descs(),
            tx_invalid: s.tx_invalid_descs(),
        })
    }

    /// Moves every completed TX descriptor of `port` to the free list.
    fn reclaim(&mut self, port: PortId) {
        loop {
            // SAFETY: the completion ring only returns descriptors this process put
            // on the TX ring of the same UMEM; the kernel is done with them, and
            // `scratch` entries are overwritten, not read.
            let got = unsafe { self.ports[port].comp.consume(&mut self.scratch) };
            self.free.extend_from_slice(&self.scratch[..got]);
            if got < self.scratch.len() {
                return;
            }
        }
    }

    /// Puts `port`'s pending descriptors on its TX ring and kicks the kernel until
    /// it has read them (copy mode) or stops making progress.
    fn transmit(&mut self, port: PortId) -> io::Result<()> {
        let p = &mut self.ports[port];
        if !p.tx_pending.is_empty() {
            // Every pending descriptor belongs to this UMEM and sits only on this list
            // (it was taken from RX or the free list and removed from there), its frame
            // within its chunk; `tx_has_room` kept the list no longer than the ring's
            // free space, so the kernel takes all of them and owns them until it
            // returns them on the completion ring.
            let mut sent = 0;
            for d in &p.tx_pending {
                if !p.tx_ring.push(d.addr, d.len) {
                    break;
                }
                sent += 1;
                p.counters.tx_packets += 1;
                p.counters.tx_bytes += u64::from(d.len);
            }
            p.tx_ring.submit();
            p.counters.tx_dropped += (p.tx_pending.len() - sent) as u64;
            self.free
                .extend(p.tx_pending[sent..].iter().map(|d| d.desc));
            p.tx_pending.clear();
        }
        let mut outstanding = self.ports[port].tx_outstanding();
        while outstanding > 0 && self.ports[port].tx_ring.needs_wakeup() {
            self.ports[port]
                .tx
                .wakeup()
                .map_err(|e| with_context(&e, format!("{}: TX kick", self.ports[port].name)))?;
            self.reclaim(port);
            let now = self.ports[port].tx_outstanding();
            if now >= outstanding {
                break;
            }
            outstanding = now;
        }
        Ok(())
    }

    /// Tops every fill ring up to its share from the free list.
    fn refill(&mut self) -> io::Result<()> {
        for p in &mut self.ports {
            let want = p
                .fill_target
                .saturating_sub(p.fill_owned)
                .min(self.free.len());
            if want == 0 {
                continue;
            }
            let start = self.free.len() - want;
            // SAFETY: the descriptors come from the free list of this UMEM, so no
            // one else uses them; they leave the list right below, and `fill_owned`
            // never exceeds the ring size, so the ring has room for all of them.
            let produced = unsafe { p.fill.produce(&self.free[start..]) };
            self.free.drain(start..start + produced);
            p.fill_owned += produced;
            if produced > 0 && p.fill.needs_wakeup() {
                p.fill
                    .wakeup(p.rx.fd_mut(), 0)
                    .map_err(|e| with_context(&e, format!("{}: fill wakeup", p.name)))?;
            }
        }
        Ok(())
    }

    /// Queues `d` for TX on `to`; frees it and counts a drop on `counted_on`
    /// when `to` does not exist or its ring is full.
    fn queue_tx(&mut self, to: PortId, d: Pending, counted_on: PortId) {
        if let Some(p) = self.ports.get_mut(to) {
            if p.tx_has_room() {
                p.tx_pending.push(d);
                return;
            }
        }
        if let Some(p) = self.ports.get_mut(counted_on) {
            p.counters.tx_dropped += 1;
        }
        self.free.push(d.desc);
    }
}

impl Ports for XskPorts {
    fn len(&self) -> usize {
        self.ports.len()
    }

    fn rx_burst(
        &mut self,
        port: PortId,
        max: usize,
        handle: &mut dyn FnMut(&mut [Frame<'_>], &mut [Verdict]),
    ) -> io::Result<usize> {
        if port >= self.ports.len() {
            return Err(invalid(format!(
                "no port {port} (have {})",
                self.ports.len()
            )));
        }
        let want = max.min(RX_BURST).min(self.scratch.len());
        let mut batch = std::mem::take(&mut self.scratch);
        // SAFETY: the RX ring only returns descriptors this process put on the
        // fill ring of the same UMEM; the kernel has finished writing them, and
        // `batch` entries are overwritten, not read.
        let got = unsafe { self.ports[port].rx.consume(&mut batch[..want]) };
        let p = &mut self.ports[port];
        p.fill_owned = p.fill_owned.saturating_sub(got);
        if got == 0 {
            self.scratch = batch;
            return Ok(0);
        }
        for desc in &batch[..got] {
            p.counters.rx_packets += 1;
            p.counters.rx_bytes += desc.lengths().data() as u64;
        }
        let umem = &self.umem;
        let frames = batch[..got].iter_mut().map(|desc| {
            let rx_len = desc.lengths().data();
            // SAFETY: `desc` was just taken off this UMEM's RX ring, so it names a
            // chunk of `self.umem` that neither the kernel nor any ring or list
            // touches until the descriptor goes onto a ring or the free list below,
            // after `hand_over` has returned and its frames are gone. The frames of
            // this burst live at once, each over its own chunk: the RX ring hands each
            // chunk out once (a chunk comes back only through the fill ring, where it
            // goes only after its frame is done), so no two of them overlap.
            let (buf, at) = unsafe { chunk(umem, desc) };
            Frame::at(buf, at, rx_len)
        });
        let handled = hand_over(frames, handle);
        for (&desc, (verdict, start, len)) in batch[..got].iter().zip(handled) {
            match verdict {
                Verdict::Tx(to) => {
                    let base = (desc.addr() - desc.addr() % FRAME_SIZE) as u64;
                    let d = Pending {
                        desc,
                        addr: base + start as u64,
                        len: len as u32,
                    };
                    self.queue_tx(to, d, port);
                }
                Verdict::Drop => self.free.push(desc),
            }
        }
        self.scratch = batch;
        Ok(got)
    }

    fn tx_copy(&mut self, port: PortId, frame: &[u8]) -> bool {
        let Some(p) = self.ports.get_mut(port) else {
            return false;
        };
        if frame.len() > FRAME_CAPACITY || !p.tx_has_room() {
            p.counters.tx_dropped += 1;
            return false;
        }
        let Some(mut desc) = self.free.pop() else {
            p.counters.tx_dropped += 1;
            return false;
        };
        let base = (desc.addr() - desc.addr() % FRAME_SIZE) as u64;
        {
            // SAFETY: `desc` was on this UMEM's free list, which no ring and no
            // other reference shares, and it goes onto the pending list only after
            // `buf` is gone.
            let (buf, _) = unsafe { chunk(&self.umem, &mut desc) };
            buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        }
        p.tx_pending.push(Pending {
            desc,
            addr: base + HEADROOM as u64,
            len: frame.len() as u32,
        });
        true
    }

    fn flush(&mut self) -> io::Result<()> {
        for port in 0..self.ports.len() {
            self.reclaim(port);
            self.transmit(port)?;
        }
        self.refill()
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        let ms = timeout
            .as_micros()
            .div_ceil(1000)
            .min(libc::c_int::MAX as u128) as libc::c_int;
        // SAFETY: `pollfds` is a live, exclusively borrowed array of
        // `pollfds.len()` entries whose fds stay open as long as `self.ports`
        // and `self.wake`, which own them.
        let rc = unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                ms,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        if let Some(w) = &self.wake {
            w.drain();
        }
        Ok(())
    }

    fn set_wake_fd(&mut self, fd: WakeFd) {
        self.pollfds.truncate(self.ports.len());
        self.pollfds.push(libc::pollfd {
            fd: fd.as_fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        self.wake = Some(fd);
    }

    fn counters(&self, port: PortId) -> PortCounters {
        self.ports.get(port).map(|p| p.counters).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_rings_get_half_the_frames_capped_at_a_ring() {
        assert_eq!(fill_share(4096, 2, 2048), 1024);
        assert_eq!(fill_share(4096, 1, 2048), 2048);
        assert_eq!(fill_share(16384, 1, 2048), 2048);
        assert_eq!(fill_share(4096, 3, 2048), 682);
        assert_eq!(fill_share(3, 2, 2048), 0);
    }

    #[test]
    fn frame_capacity_leaves_the_kernel_headroom() {
        assert_eq!(FRAME_CAPACITY, 1792);
        // Room for a full Ethernet frame plus an outer Ethernet/IPv4/UDP header
        // and a tunnel header with its tag.
        const { assert!(FRAME_CAPACITY >= 1514 + 14 + 20 + 8 + 64) };
    }

    #[test]
    fn xsk_ports_can_move_to_a_worker_thread() {
        fn is_send<T: Send>() {}
        is_send::<XskPorts>();
    }

    #[test]
    fn missing_interface_is_named_in_the_error() {
        let err =
            XskPorts::open(&["braidnosuch0".to_string()], &XskOptions::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("braidnosuch0"), "{err}");
    }

    #[test]
    fn bad_options_are_refused_before_any_socket() {
        let lo = vec!["lo".to_string()];
        let opts = XskOptions {
            ring_size: 1000,
            ..XskOptions::default()
        };
        assert_eq!(
            XskPorts::open(&lo, &opts).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let opts = XskOptions {
            frame_count: 1,
            ..XskOptions::default()
        };
        assert_eq!(
            XskPorts::open(&lo, &opts).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let twice = vec!["lo".to_string(), "lo".to_string()];
        let err = XskPorts::open(&twice, &XskOptions::default()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(XskPorts::open(&[], &XskOptions::default()).is_err());
    }
}
