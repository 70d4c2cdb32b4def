//! braid's own XDP program (`dataplane/bpf/braid_xdp.c`, built by `build.rs`): loaded with
//! libbpf, attached to an interface, its maps filled from [`Steering`], and each worker's
//! socket put in its XSKMAP at the socket's queue. The sockets are created with libxdp's
//! program loading inhibited (`XskPorts::open_with`), so this program is the only one.
//!
//! Dropping an [`XdpProgram`] detaches it, and only if it is still the one attached.

// The libbpf calls need unsafe; each block says why it holds.
#![allow(unsafe_code)]

use super::XdpMode;
use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::raw::{c_int, c_void};
use std::ptr::NonNull;

/// The compiled program.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/braid_xdp.o"));

/// Claims the program holds (`MAX_CLAIMS` in braid_xdp.c).
pub const MAX_CLAIMS: usize = 16;
/// Addresses the program knows (`MAX_ADDRS` in braid_xdp.c).
pub const MAX_ADDRS: usize = 256;
/// Queues the XSKMAP holds (`MAX_QUEUES` in braid_xdp.c; braid has at most 64 workers).
pub const MAX_QUEUES: u32 = 64;

/// What an address in the program's table is (`ADDR_*` in braid_xdp.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// The kernel's: its frames go to the kernel, except what braid claims on it.
    Host = 1,
    /// A directed broadcast of one of the kernel's prefixes: to the kernel.
    Broadcast = 2,
    /// braid's and not the kernel's: every frame to it goes to braid.
    Braid = 3,
}

/// Protocols of a [`Claim`] (`CLAIM_*` in braid_xdp.c).
pub mod protos {
    /// ICMP echo identifiers (and errors quoting them).
    pub const ICMP: u32 = 1;
    /// TCP destination ports.
    pub const TCP: u32 = 2;
    /// UDP destination ports.
    pub const UDP: u32 = 4;
}

/// Ports `ports` of the protocols `protos` on `addr`, one of the host's addresses, are
/// braid's: its tunnel's or its NAT's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub addr: Ipv4Addr,
    pub protos: u32,
    pub ports: std::ops::RangeInclusive<u16>,
}

/// What the program sends to braid on one interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Steering {
    /// Every frame to braid (an `owned` interface); the rest is then unused.
    pub owned: bool,
    /// Addresses and what they are; an address not listed is to be routed (to braid).
    pub addrs: Vec<(Ipv4Addr, AddrClass)>,
    /// braid's ports on the host's addresses.
    pub claims: Vec<Claim>,
}

/// `struct claim` in braid_xdp.c.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawClaim {
    addr: u32,
    port_min: u16,
    port_max: u16,
    protos: u32,
}

/// `struct params` in braid_xdp.c.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawParams {
    owned: u32,
    claims: u32,
    claim: [RawClaim; MAX_CLAIMS],
}

impl Steering {
    fn raw(&self) -> io::Result<RawParams> {
        if self.claims.len() > MAX_CLAIMS {
            return Err(invalid(format!(
                "{} port claims, braid's XDP program holds {MAX_CLAIMS}",
                self.claims.len()
            )));
        }
        if self.addrs.len() > MAX_ADDRS {
            return Err(invalid(format!(
                "{} addresses, braid's XDP program holds {MAX_ADDRS}",
                self.addrs.len()
            )));
        }
        let mut raw = RawParams {
            owned: u32::from(self.owned),
            claims: self.claims.len() as u32,
            ..RawParams::default()
        };
        for (slot, c) in raw.claim.iter_mut().zip(&self.claims) {
            *slot = RawClaim {
                addr: u32::from_ne_bytes(c.addr.octets()),
                port_min: *c.ports.start(),
                port_max: *c.ports.end(),
                protos: c.protos,
            };
        }
        Ok(raw)
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The error of a libbpf call that returned `rc` (a negative errno), with context.
fn bpf_error(rc: c_int, what: &str) -> io::Error {
    let os = io::Error::from_raw_os_error(rc.saturating_neg());
    io::Error::new(os.kind(), format!("{what}: {os}"))
}

/// braid's program attached to one interface.
#[derive(Debug)]
pub struct XdpProgram {
    name: String,
    obj: NonNull<libbpf_sys::bpf_object>,
    ifindex: c_int,
    flags: u32,
    prog_fd: c_int,
    xsks_fd: c_int,
    addrs_fd: c_int,
    params_fd: c_int,
}

// SAFETY: the bpf_object is only touched by `drop` (which has `&mut self`); the other
// methods use map file descriptors, which the kernel serialises.
unsafe impl Send for XdpProgram {}
// SAFETY: as above: `&self` methods only make map system calls on open descriptors.
unsafe impl Sync for XdpProgram {}

impl XdpProgram {
    /// Loads the program, fills its maps from `steering` and attaches it to `ifname`,
    /// replacing the program attached there (a braidd that died leaves its own behind).
    pub fn attach(ifname: &str, mode: XdpMode, steering: &Steering) -> io::Result<XdpProgram> {
        let params = steering.raw()?;
        let c_name = CString::new(ifname).map_err(|_| invalid(format!("{ifname:?} has a NUL")))?;
        // SAFETY: `c_name` is a valid NUL-terminated string alive for the call.
        let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{ifname}: no such interface"),
            ));
        }
        let what = |step: &str| format!("{ifname}: braid's XDP program: {step}");
        // SAFETY: OBJECT is a static byte slice that outlives the object (libbpf copies
        // what it keeps); null options mean defaults.
        let obj = unsafe {
            libbpf_sys::bpf_object__open_mem(
                OBJECT.as_ptr().cast::<c_void>(),
                OBJECT.len() as libbpf_sys::size_t,
                std::ptr::null(),
            )
        };
        let obj = NonNull::new(obj).ok_or_else(|| io::Error::other(what("cannot open")))?;
        let flags = match mode {
            XdpMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
        };
        // From here on, `prog` owns the object and closes it if a step fails.
        let mut prog = XdpProgram {
            name: ifname.to_owned(),
            obj,
            ifindex: ifindex as c_int,
            flags,
            prog_fd: -1,
            xsks_fd: -1,
            addrs_fd: -1,
            params_fd: -1,
        };
        // SAFETY: `obj` is a live object opened above.
        let rc = unsafe { libbpf_sys::bpf_object__load(prog.obj.as_ptr()) };
        if rc != 0 {
            return Err(bpf_error(rc, &what("loading (verifier)")));
        }
        prog.prog_fd = prog.fd_of_program(c"braid_xdp", &what)?;
        prog.xsks_fd = prog.fd_of_map(c"braid_xsks", &what)?;
        prog.addrs_fd = prog.fd_of_map(c"braid_addrs", &what)?;
        prog.params_fd = prog.fd_of_map(c"braid_params", &what)?;
        for (addr, class) in &steering.addrs {
            let key = u32::from_ne_bytes(addr.octets());
            update(
                prog.addrs_fd,
                &key,
                &(*class as u32),
                &what("filling braid_addrs"),
            )?;
        }
        update(
            prog.params_fd,
            &0u32,
            &params,
            &what("filling braid_params"),
        )?;
        // SAFETY: plain system call on descriptors this object owns; null options.
        let rc = unsafe {
            libbpf_sys::bpf_xdp_attach(prog.ifindex, prog.prog_fd, flags, std::ptr::null())
        };
        if rc != 0 {
            prog.prog_fd = -1; // not attached: nothing to detach on drop
            return Err(bpf_error(rc, &what("attaching")));
        }
        Ok(prog)
    }

    fn fd_of_program(
        &self,
        name: &std::ffi::CStr,
        what: &dyn Fn(&str) -> String,
    ) -> io::Result<c_int> {
        // SAFETY: `self.obj` is a live loaded object and `name` a NUL-terminated string.
        let p = unsafe {
            libbpf_sys::bpf_object__find_program_by_name(self.obj.as_ptr(), name.as_ptr())
        };
        if p.is_null() {
            return Err(io::Error::other(what("no program braid_xdp")));
        }
        // SAFETY: `p` belongs to the live object.
        let fd = unsafe { libbpf_sys::bpf_program__fd(p) };
        if fd < 0 {
            return Err(bpf_error(fd, &what("program not loaded")));
        }
        Ok(fd)
    }

    fn fd_of_map(&self, name: &std::ffi::CStr, what: &dyn Fn(&str) -> String) -> io::Result<c_int> {
        // SAFETY: `self.obj` is a live loaded object and `name` a NUL-terminated string.
        let fd = unsafe {
            libbpf_sys::bpf_object__find_map_fd_by_name(self.obj.as_ptr(), name.as_ptr())
        };
        if fd < 0 {
            return Err(bpf_error(fd, &what(&format!("no map {name:?}"))));
        }
        Ok(fd)
    }

    /// Puts `steering` in the maps in place of `previous` (its addresses that `steering` lacks
    /// are deleted). The program reads each map entry whole, so a frame meets either the old
    /// or the new class of an address.
    pub fn steer(&self, steering: &Steering, previous: &Steering) -> io::Result<()> {
        let params = steering.raw()?;
        self.fill(steering, &previous.addrs, params)
    }

    fn fill(
        &self,
        steering: &Steering,
        previous: &[(Ipv4Addr, AddrClass)],
        params: RawParams,
    ) -> io::Result<()> {
        let what = |step: &str| format!("{}: braid's XDP program: {step}", self.name);
        for (addr, class) in &steering.addrs {
            let key = u32::from_ne_bytes(addr.octets());
            update(
                self.addrs_fd,
                &key,
                &(*class as u32),
                &what("filling braid_addrs"),
            )?;
        }
        for (addr, _) in previous {
            if steering.addrs.iter().all(|(a, _)| a != addr) {
                let key = u32::from_ne_bytes(addr.octets());
                // SAFETY: `key` is a live u32, the map's key size; the kernel only reads it.
                let rc = unsafe {
                    libbpf_sys::bpf_map_delete_elem(
                        self.addrs_fd,
                        (&key as *const u32).cast::<c_void>(),
                    )
                };
                // Gone already (a change that failed half way): what was asked.
                if rc != 0 && rc.saturating_neg() != libc::ENOENT {
                    return Err(bpf_error(rc, &what("emptying braid_addrs")));
                }
            }
        }
        update(
            self.params_fd,
            &0u32,
            &params,
            &what("filling braid_params"),
        )
    }

    /// Sends the frames of queue `queue` to the AF_XDP socket `fd`.
    pub fn register(&self, queue: u32, fd: c_int) -> io::Result<()> {
        if queue >= MAX_QUEUES {
            return Err(invalid(format!(
                "{}: queue {queue}: braid's XDP program serves queues below {MAX_QUEUES}",
                self.name
            )));
        }
        update(
            self.xsks_fd,
            &queue,
            &(fd as u32),
            &format!(
                "{}: putting queue {queue}'s socket in braid_xsks",
                self.name
            ),
        )
    }

    /// The interface the program is attached to.
    pub fn interface(&self) -> &str {
        &self.name
    }
}

/// `bpf_map_update_elem(fd, key, value, BPF_ANY)`.
fn update<K, V>(fd: c_int, key: &K, value: &V, what: &str) -> io::Result<()> {
    // SAFETY: `key` and `value` are live references to plain values whose sizes are the
    // map's key and value sizes (the layouts of braid_xdp.c); the kernel only reads them.
    let rc = unsafe {
        libbpf_sys::bpf_map_update_elem(
            fd,
            (key as *const K).cast::<c_void>(),
            (value as *const V).cast::<c_void>(),
            u64::from(libbpf_sys::BPF_ANY),
        )
    };
    if rc != 0 {
        return Err(bpf_error(rc, what));
    }
    Ok(())
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        if self.prog_fd >= 0 {
            let opts = libbpf_sys::bpf_xdp_attach_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as libbpf_sys::size_t,
                old_prog_fd: self.prog_fd,
                ..Default::default()
            };
            // SAFETY: `opts` is a live, sized options struct; with `old_prog_fd` the kernel
            // detaches only if this program is still the one attached. A failure leaves a
            // program whose sockets are gone, which passes every frame to the kernel.
            unsafe { libbpf_sys::bpf_xdp_detach(self.ifindex, self.flags, &opts) };
        }
        // SAFETY: the object was opened by `attach` and is closed once, here; its maps'
        // and program's descriptors are not used after this.
        unsafe { libbpf_sys::bpf_object__close(self.obj.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_have_the_c_layout() {
        assert_eq!(std::mem::size_of::<RawClaim>(), 12);
        assert_eq!(std::mem::size_of::<RawParams>(), 8 + 12 * MAX_CLAIMS);
    }

    #[test]
    fn too_many_claims_are_refused_before_loading() {
        let claim = Claim {
            addr: Ipv4Addr::new(203, 0, 113, 2),
            protos: protos::UDP,
            ports: 7420..=7420,
        };
        let s = Steering {
            claims: vec![claim; MAX_CLAIMS + 1],
            ..Steering::default()
        };
        let err = XdpProgram::attach("lo", XdpMode::Generic, &s).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn claims_keep_addresses_in_network_order() {
        let s = Steering {
            claims: vec![Claim {
                addr: Ipv4Addr::new(203, 0, 113, 2),
                protos: protos::TCP | protos::UDP,
                ports: 20000..=29999,
            }],
            ..Steering::default()
        };
        let raw = s.raw().unwrap();
        assert_eq!(raw.claims, 1);
        assert_eq!(raw.claim[0].addr.to_ne_bytes(), [203, 0, 113, 2]);
        assert_eq!(
            (raw.claim[0].port_min, raw.claim[0].port_max),
            (20000, 29999)
        );
    }
}
