//! A socket's TX ring, written here rather than through xsk-rs: a descriptor then says
//! where in its chunk the frame starts. xsk-rs sends a frame from the address it was
//! received at, so a packet that got outer headers in front (or lost them) would have to
//! be moved back there; with this ring it is sent from where the pipeline left it.
//!
//! The ring is the kernel's, mapped a second time from the socket (the kernel allows
//! several mappings of one ring). xsk-rs' own `TxQueue` stays for the wake-up call and
//! is never produced to, so this is the ring's only producer.

// The ring's memory is shared with the kernel; reading and writing it needs unsafe.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// One socket's TX ring, mapped into this process.
#[derive(Debug)]
pub(super) struct TxRing {
    map: NonNull<libc::c_void>,
    map_len: usize,
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<libc::xdp_desc>,
    size: u32,
    /// Our next producer index (published by `submit`).
    cached_prod: u32,
    /// The consumer index last read, plus the ring size: descriptors below it are free.
    cached_cons: u32,
}

// SAFETY: the mapping belongs to this value alone (nothing else in the process writes
// through it: xsk-rs' queue of the same ring is never produced to), so it may move to
// another thread with it.
unsafe impl Send for TxRing {}

impl TxRing {
    /// Maps the TX ring of socket `fd`, whose ring has `size` entries (a power of two).
    pub(super) fn map(fd: RawFd, size: u32) -> io::Result<TxRing> {
        // SAFETY: an all-zero `xdp_mmap_offsets` is valid (plain integers).
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
        // SAFETY: `off` is a live, writable struct of `len` bytes and `len` a live
        // socklen_t; the kernel writes at most `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_XDP,
                libc::XDP_MMAP_OFFSETS,
                (&mut off as *mut libc::xdp_mmap_offsets).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if len as usize != std::mem::size_of::<libc::xdp_mmap_offsets>() {
            return Err(io::Error::other("kernel without the rings' flags word"));
        }
        let map_len = off.tx.desc as usize + size as usize * std::mem::size_of::<libc::xdp_desc>();
        // SAFETY: a fresh shared mapping of the socket's TX ring, at the kernel's page
        // offset for it; nothing else is at the returned address.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                libc::XDP_PGOFF_TX_RING,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let at = |offset: u64| {
            // SAFETY: the kernel's offsets all lie within the `map_len` bytes mapped, and
            // the mapping is not null (mmap succeeded).
            unsafe { NonNull::new_unchecked(map.cast::<u8>().add(offset as usize)) }
        };
        let producer = at(off.tx.producer).cast::<AtomicU32>();
        let consumer = at(off.tx.consumer).cast::<AtomicU32>();
        // SAFETY: producer and consumer are aligned u32 words of the live mapping, which
        // only the kernel (consumer) and this value (producer) write.
        let (prod, cons) = unsafe {
            (
                producer.as_ref().load(Ordering::Relaxed),
                consumer.as_ref().load(Ordering::Acquire),
            )
        };
        Ok(TxRing {
            // SAFETY: mmap succeeded, so the address is not null.
            map: unsafe { NonNull::new_unchecked(map) },
            map_len,
            producer,
            consumer,
            flags: at(off.tx.flags).cast(),
            descs: at(off.tx.desc).cast(),
            size,
            cached_prod: prod,
            cached_cons: cons.wrapping_add(size),
        })
    }

    /// Free entries, reading the kernel's consumer index.
    #[inline]
    pub(super) fn free(&mut self) -> u32 {
        // SAFETY: an aligned u32 of the live mapping that the kernel writes atomically.
        let cons = unsafe { self.consumer.as_ref().load(Ordering::Acquire) };
        self.cached_cons = cons.wrapping_add(self.size);
        self.cached_cons.wrapping_sub(self.cached_prod)
    }

    /// Entries the kernel has not read yet.
    pub(super) fn outstanding(&mut self) -> u32 {
        self.size - self.free()
    }

    /// Writes a descriptor for the `len` bytes at UMEM address `addr`; false when the ring
    /// is full. The kernel sees it at the next [`TxRing::submit`].
    #[inline]
    pub(super) fn push(&mut self, addr: u64, len: u32) -> bool {
        if self.cached_cons.wrapping_sub(self.cached_prod) == 0 && self.free() == 0 {
            return false;
        }
        let index = (self.cached_prod & (self.size - 1)) as usize;
        // SAFETY: `index` is below the ring's size, so the entry lies within the mapped
        // descriptor array; it is free (between the consumer and the producer), so the
        // kernel does not read it until `submit` publishes it.
        unsafe {
            self.descs.add(index).write(libc::xdp_desc {
                addr,
                len,
                options: 0,
            });
        }
        self.cached_prod = self.cached_prod.wrapping_add(1);
        true
    }

    /// Publishes the descriptors pushed so far to the kernel.
    #[inline]
    pub(super) fn submit(&mut self) {
        // SAFETY: an aligned u32 of the live mapping that only this value writes; the
        // release store orders the descriptors written before it.
        unsafe {
            self.producer
                .as_ref()
                .store(self.cached_prod, Ordering::Release)
        };
    }

    /// True when the kernel asks for a `sendto()` to read the ring.
    #[inline]
    pub(super) fn needs_wakeup(&self) -> bool {
        // SAFETY: an aligned u32 of the live mapping that the kernel writes.
        let flags = unsafe { self.flags.as_ref().load(Ordering::Relaxed) };
        flags & libc::XDP_RING_NEED_WAKEUP != 0
    }
}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, of `map_len` bytes, unmapped once.
        unsafe { libc::munmap(self.map.as_ptr(), self.map_len) };
    }
}
