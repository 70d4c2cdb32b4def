//! The per-worker session table: slots with per-class expiry lists, the maps
//! both ways, the per-host counts, the limits and the port allocator.

// Indexes are slot, entry and word numbers this structure computed and keeps in
// range, never packet bytes (see the module documentation of `nat`).
#![allow(clippy::indexing_slicing)]

use super::config::{ConfigError, NatConfig};
use super::hash::{mix, SeededState};
use super::index::Index;
use super::packet::Endpoint;
use super::pool::AddressPool;
use super::ports::{PortAllocator, PortSlice, SliceMap};
use super::session::{
    class_of, tcp_track, Dir, Proto, Session, SessionState, CLASSES, CLASS_FREE, CLASS_ICMP,
    CLASS_TCP_ESTABLISHED, CLASS_TCP_TRANSITORY, CLASS_UDP,
};
use super::NatError;
use crate::io::pages;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::num::NonZeroU32;

/// The session slot a lookup found when it started loading it
/// ([`NatTable::prefetch_session_out`]): tried first when the packet is translated, and
/// taken only if it still holds the packet's endpoint (an earlier packet of the batch
/// may have reused it). Four bytes as an `Option`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotHint(NonZeroU32);

impl SlotHint {
    /// The hint of slot `slot` (none for the one slot number no table reaches).
    pub(crate) fn new(slot: u32) -> Option<SlotHint> {
        NonZeroU32::new(slot.wrapping_add(1)).map(SlotHint)
    }

    /// The slot.
    pub(crate) fn slot(self) -> u32 {
        self.0.get() - 1
    }
}

/// End of a list.
const NIL: u32 = u32::MAX;
/// A session refreshed within the same 4-second tick as its last packet keeps
/// its place in its expiry list: a busy flow moves in the list once per tick.
/// A list is so in the order of its sessions' last ticks, and the sweep stops at
/// the first session that has not timed out: one behind it is removed at most a
/// tick late.
///
/// The sweep does not move such a session back to look further: it would then sit
/// behind sessions linked long after it, and wait for them, up to a timeout late.
pub(crate) const RELINK_NS: u64 = 4_000_000_000;
/// Expiry-list steps spent to make room before a new session is refused.
const RECLAIM_BUDGET: usize = 64;

/// What the table has done, as plain counters (the pipeline copies them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatCounters {
    /// Sessions created.
    pub created: u64,
    /// Sessions removed after their timeout.
    pub expired: u64,
    /// New sessions refused: the worker's share of `max_sessions` is in use.
    pub refused_table_full: u64,
    /// New sessions refused: the inside host has its share of `max_per_host`.
    pub refused_host_limit: u64,
    /// New sessions refused: no free outside port for the protocol.
    pub refused_ports_exhausted: u64,
    /// Packets translated inside→outside (ICMP errors included).
    pub translated_out: u64,
    /// Packets translated outside→inside (ICMP errors included).
    pub translated_in: u64,
}

/// A live session, as listed for the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    /// The inside host's endpoint.
    pub inside: Endpoint,
    /// The endpoint the outside sees.
    pub outside: Endpoint,
    /// What the timeout follows.
    pub state: SessionState,
    /// Time since the session was created (ns).
    pub age_ns: u64,
    /// Time left before it expires unless refreshed (ns).
    pub remaining_ns: u64,
}

/// One worker's NAT sessions. See the module documentation.
#[derive(Debug)]
pub struct NatTable {
    pub(crate) config: NatConfig,
    /// Timeout per class (ns).
    timeouts: [u64; CLASSES],
    capacity: u32,
    per_host: u32,
    pub(crate) slots: Vec<Session>,
    /// Head of the free-slot list (through `next`).
    free: u32,
    heads: [u32; CLASSES],
    tails: [u32; CLASSES],
    live: u32,
    in2out: Index,
    out2in: Index,
    hosts: HashMap<u32, u32, SeededState>,
    ports: PortAllocator,
    pub(crate) counters: NatCounters,
    /// Class the next sweep starts with.
    sweep_from: usize,
    /// When the last sweep ran, and whether it stopped at its budget.
    swept_at: u64,
    swept_all: bool,
}

/// A map key: protocol, address and port packed in one word.
fn key(proto: Proto, addr: u32, port: u16) -> u64 {
    u64::from(addr) << 32 | u64::from(port) << 16 | u64::from(proto.number())
}

/// The key of session `s`'s inside endpoint.
fn inside_key(s: &Session) -> u64 {
    key(s.proto, s.inside, s.inside_port)
}

/// The key of session `s`'s outside endpoint (`None` for a pool index out of range).
fn outside_key(pool: &AddressPool, s: &Session) -> Option<u64> {
    let addr = pool.get(usize::from(s.pool))?;
    Some(key(s.proto, u32::from(addr), s.outside_port))
}

/// True when session `s` is the one of inside endpoint `ep`.
#[inline]
fn is_inside(s: &Session, ep: Endpoint) -> bool {
    s.inside == u32::from(ep.addr) && s.inside_port == ep.port && s.proto == ep.proto
}

/// True when session `s` is the one of outside endpoint `ep`.
#[inline]
fn is_outside(pool: &AddressPool, s: &Session, ep: Endpoint) -> bool {
    s.outside_port == ep.port
        && s.proto == ep.proto
        && pool.get(usize::from(s.pool)) == Some(ep.addr)
}

/// Nanoseconds in a duration, saturating.
fn ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl NatTable {
    /// The table of worker `slice.worker` of `slice.workers`, with its share of
    /// the limits and of the port range. `seed` keys the map hasher: take it from
    /// a random source so hosts cannot aim at hash collisions.
    pub fn new(config: &NatConfig, slice: PortSlice, seed: u64) -> Result<NatTable, ConfigError> {
        config.validate()?;
        let map = SliceMap::new(config.ports, slice).ok_or(ConfigError::Slice)?;
        let share = |n: usize| u32::try_from(n.div_ceil(slice.workers)).unwrap_or(NIL - 1);
        let capacity = share(config.max_sessions).min(NIL - 1);
        let per_host = share(config.max_per_host);
        let cap = capacity as usize;
        let t = &config.timeouts;
        let mut timeouts = [0; CLASSES];
        timeouts[usize::from(CLASS_UDP)] = ns(t.udp);
        timeouts[usize::from(CLASS_TCP_ESTABLISHED)] = ns(t.tcp_established);
        timeouts[usize::from(CLASS_TCP_TRANSITORY)] = ns(t.tcp_transitory);
        timeouts[usize::from(CLASS_ICMP)] = ns(t.icmp);
        let hasher = SeededState::new(seed);
        let mut slots: Vec<Session> = Vec::with_capacity(cap);
        pages::advise_huge_pages(slots.spare_capacity_mut());
        Ok(NatTable {
            config: config.clone(),
            timeouts,
            capacity,
            per_host,
            slots,
            free: NIL,
            heads: [NIL; CLASSES],
            tails: [NIL; CLASSES],
            live: 0,
            in2out: Index::new(cap, seed),
            out2in: Index::new(cap, mix(seed)),
            // Far fewer hosts than sessions in practice; it grows (up to the
            // session count) if not.
            hosts: HashMap::with_capacity_and_hasher((cap / 16).max(64), hasher),
            ports: PortAllocator::new(map, config.pool.len()),
            counters: NatCounters::default(),
            sweep_from: 0,
            swept_at: 0,
            swept_all: true,
        })
    }

    /// Checks that a table can be built for every worker of `workers` from `config`
    /// (without building one): the daemon refuses a configuration that fails here.
    pub fn check(config: &NatConfig, workers: usize) -> Result<(), ConfigError> {
        config.validate()?;
        let workers = workers.max(1);
        for worker in 0..workers {
            let slice = PortSlice { worker, workers };
            SliceMap::new(config.ports, slice).ok_or(ConfigError::Slice)?;
        }
        Ok(())
    }

    /// The earliest time (ns) at which [`NatTable::expire`] has work: when the
    /// front of a class's expiry list times out; `None` when empty. A sweep stopped
    /// by its budget is due again at once.
    pub fn next_expiry(&self) -> Option<u64> {
        if !self.swept_all {
            return Some(self.swept_at);
        }
        (0..CLASSES)
            .filter_map(|class| {
                let s = self.slots.get(self.heads[class] as usize)?;
                Some(s.last_seen.saturating_add(self.timeouts[class]))
            })
            .min()
    }

    /// Never hands out `port` for `proto` (on any outside address): for ports
    /// braid itself receives on, such as the tunnel's UDP port.
    pub fn reserve(&mut self, proto: Proto, port: u16) {
        self.ports.reserve(proto.index(), port);
    }

    /// The configuration the table was built with.
    pub fn config(&self) -> &NatConfig {
        &self.config
    }

    /// What the table has done so far.
    pub fn counters(&self) -> &NatCounters {
        &self.counters
    }

    /// Sessions held, expired ones not yet reclaimed included.
    pub fn len(&self) -> usize {
        self.live as usize
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Most sessions this table holds (its share of `max_sessions`).
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Heap bytes held by the table's structures at their current sizes.
    pub fn heap_bytes(&self) -> usize {
        // hashbrown: buckets are a power of two at most 7/8 full; each holds
        // the entry and one control byte.
        let host_buckets = (self.hosts.capacity() * 8).div_ceil(7).next_power_of_two();
        self.slots.capacity() * std::mem::size_of::<Session>()
            + self.in2out.heap_bytes()
            + self.out2in.heap_bytes()
            + host_buckets * (std::mem::size_of::<(u32, u32)>() + 1)
            + self.ports.heap_bytes()
    }

    /// Live sessions (not yet timed out at `now`), for the control plane.
    pub fn sessions(&self, now: u64) -> impl Iterator<Item = SessionInfo> + '_ {
        self.slots
            .iter()
            .filter(|s| s.class != CLASS_FREE)
            .filter_map(move |s| {
                let until = s
                    .last_seen
                    .saturating_add(self.timeouts[usize::from(s.class)]);
                (now < until).then(|| {
                    let (inside, outside) = self.endpoints(s);
                    SessionInfo {
                        inside,
                        outside,
                        state: s.state(),
                        age_ns: now.saturating_sub(s.created),
                        remaining_ns: until - now,
                    }
                })
            })
    }

    /// Removes up to `budget` expired sessions, oldest first, releasing their
    /// ports; never looks at more than `budget` sessions. Returns how many were
    /// removed. Call it regularly (e.g. once per batch) so ports come back
    /// without waiting for the table to fill. A session that has timed out is
    /// removed at most [`RELINK_NS`] after its timeout.
    pub fn expire(&mut self, now: u64, budget: usize) -> usize {
        let (mut steps, mut removed) = (0, 0);
        for n in 0..CLASSES {
            let class = (self.sweep_from + n) % CLASSES;
            let timeout = self.timeouts[class];
            while steps < budget {
                let i = self.heads[class];
                let Some(s) = self.slots.get(i as usize) else {
                    break;
                };
                if now < s.last_seen.saturating_add(timeout) {
                    // What is behind was last seen no earlier than this one's tick.
                    break;
                }
                steps += 1;
                self.remove(i);
                self.counters.expired += 1;
                removed += 1;
            }
        }
        self.sweep_from = (self.sweep_from + 1) % CLASSES;
        self.swept_at = now;
        self.swept_all = steps < budget;
        removed
    }

    /// The inside and outside endpoints of session `s`.
    #[inline]
    pub(crate) fn endpoints(&self, s: &Session) -> (Endpoint, Endpoint) {
        let outside = self
            .config
            .pool
            .get(usize::from(s.pool))
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        (
            Endpoint {
                proto: s.proto,
                addr: Ipv4Addr::from(s.inside),
                port: s.inside_port,
            },
            Endpoint {
                proto: s.proto,
                addr: outside,
                port: s.outside_port,
            },
        )
    }

    /// True when session `i` has timed out at `now`.
    #[inline]
    fn expired(&self, i: u32, now: u64) -> bool {
        let s = &self.slots[i as usize];
        now >= s
            .last_seen
            .saturating_add(self.timeouts[usize::from(s.class)])
    }

    /// Session `found`, unless it timed out at `now` (then it is removed).
    #[inline]
    fn live(&mut self, found: Option<u32>, now: u64) -> Option<u32> {
        let i = found?;
        if self.expired(i, now) {
            self.remove(i);
            self.counters.expired += 1;
            return None;
        }
        Some(i)
    }

    /// The session of inside endpoint `ep`, timed out or not: slot `hint` when it
    /// holds that session (the slot a started lookup found, [`NatTable::prefetch_slot`]),
    /// else whatever the index finds.
    #[inline]
    fn find_inside(&self, ep: Endpoint, hint: Option<SlotHint>) -> Option<u32> {
        let hint = hint.map(SlotHint::slot);
        if let Some(h) = hint.filter(|&h| self.holds(h, |s| is_inside(s, ep))) {
            return Some(h);
        }
        let slots = &self.slots;
        let tag = self.in2out.tag(key(ep.proto, ep.addr.into(), ep.port));
        self.in2out.get(tag, |i| {
            slots.get(i as usize).is_some_and(|s| is_inside(s, ep))
        })
    }

    /// The session of outside endpoint `ep`, timed out or not (`hint` as for
    /// [`NatTable::find_inside`]).
    #[inline]
    fn find_outside(&self, ep: Endpoint, hint: Option<SlotHint>) -> Option<u32> {
        let (slots, pool) = (&self.slots, &self.config.pool);
        if let Some(h) = hint
            .map(SlotHint::slot)
            .filter(|&h| self.holds(h, |s| is_outside(pool, s, ep)))
        {
            return Some(h);
        }
        let tag = self.out2in.tag(key(ep.proto, ep.addr.into(), ep.port));
        self.out2in.get(tag, |i| {
            slots
                .get(i as usize)
                .is_some_and(|s| is_outside(pool, s, ep))
        })
    }

    /// True when slot `i` holds a session for which `is` holds (a freed slot keeps
    /// its last session's fields).
    #[inline]
    fn holds(&self, i: u32, is: impl FnOnce(&Session) -> bool) -> bool {
        self.slots
            .get(i as usize)
            .is_some_and(|s| s.class != CLASS_FREE && is(s))
    }

    /// The live session of inside endpoint `ep` (`hint` as for
    /// [`NatTable::find_inside`]).
    #[inline]
    pub(crate) fn by_inside(
        &mut self,
        ep: Endpoint,
        hint: Option<SlotHint>,
        now: u64,
    ) -> Option<u32> {
        let found = self.find_inside(ep, hint);
        self.live(found, now)
    }

    /// The live session of outside endpoint `ep` (`hint` as for
    /// [`NatTable::find_inside`]).
    #[inline]
    pub(crate) fn by_outside(
        &mut self,
        ep: Endpoint,
        hint: Option<SlotHint>,
        now: u64,
    ) -> Option<u32> {
        let found = self.find_outside(ep, hint);
        self.live(found, now)
    }

    /// Starts loading the index entry where the lookup of `ep` (going `dir`)
    /// begins; returns its tag for [`NatTable::prefetch_slot`].
    pub(crate) fn prefetch_entry(&self, ep: Endpoint, dir: Dir) -> u32 {
        let k = key(ep.proto, ep.addr.into(), ep.port);
        let index = match dir {
            Dir::Out => &self.in2out,
            Dir::In => &self.out2in,
        };
        let tag = index.tag(k);
        index.prefetch(tag);
        tag
    }

    /// Starts loading the session slot the index names first for `tag` (going
    /// `dir`): the one a lookup will check, nearly always the session. Returns that
    /// slot, the hint for [`NatTable::find_inside`] and [`NatTable::find_outside`].
    #[inline]
    pub(crate) fn prefetch_slot(&self, tag: u32, dir: Dir) -> Option<SlotHint> {
        let index = match dir {
            Dir::Out => &self.in2out,
            Dir::In => &self.out2in,
        };
        let i = index.get(tag, |_| true)?;
        // A 40-byte slot may cross into the next cache line: the next slot's.
        for s in [i as usize, i as usize + 1] {
            if let Some(s) = self.slots.get(s) {
                pages::prefetch(s);
            }
        }
        SlotHint::new(i)
    }

    /// The live session of inside endpoint `ep`, created if there is none.
    /// Returns the slot and whether it was created.
    #[inline]
    pub(crate) fn by_inside_or_new(
        &mut self,
        ep: Endpoint,
        hint: Option<SlotHint>,
        now: u64,
    ) -> Result<(u32, bool), NatError> {
        match self.by_inside(ep, hint, now) {
            Some(i) => Ok((i, false)),
            None => self.create(ep, now).map(|i| (i, true)),
        }
    }

    /// Notes a packet of session `i` going `dir` with TCP flags `flags` at `now`.
    #[inline]
    pub(crate) fn touch(&mut self, i: u32, dir: Dir, flags: u8, now: u64) {
        let s = &mut self.slots[i as usize];
        let mut class = s.class;
        if s.proto == Proto::Tcp {
            s.tcp = tcp_track(s.tcp, dir, flags);
            class = class_of(s.state());
        }
        let relink = class != s.class || now / RELINK_NS != s.last_seen / RELINK_NS;
        s.last_seen = s.last_seen.max(now);
        if relink {
            self.unlink(i);
            self.link_tail(i, class);
        }
    }

    /// Makes a session for inside endpoint `ep`, within the limits.
    fn create(&mut self, ep: Endpoint, now: u64) -> Result<u32, NatError> {
        let inside = u32::from(ep.addr);
        if self.live >= self.capacity {
            self.expire(now, RECLAIM_BUDGET);
            if self.live >= self.capacity {
                self.counters.refused_table_full += 1;
                return Err(NatError::TableFull);
            }
        }
        if self.host_sessions(inside) >= self.per_host {
            self.expire(now, RECLAIM_BUDGET);
            if self.host_sessions(inside) >= self.per_host {
                self.counters.refused_host_limit += 1;
                return Err(NatError::HostLimit);
            }
        }
        let (pool, port) = match self.alloc_port(ep) {
            Some(got) => got,
            None => {
                self.expire(now, RECLAIM_BUDGET);
                match self.alloc_port(ep) {
                    Some(got) => got,
                    None => {
                        self.counters.refused_ports_exhausted += 1;
                        return Err(NatError::PortsExhausted);
                    }
                }
            }
        };
        let session = Session {
            last_seen: now,
            created: now,
            inside,
            prev: NIL,
            next: NIL,
            inside_port: ep.port,
            outside_port: port,
            pool,
            proto: ep.proto,
            tcp: 0,
            class: CLASS_FREE,
        };
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].next;
            self.slots[i as usize] = session;
            i
        } else {
            // No free slot: every slot is live, and live < capacity <= u32::MAX - 1.
            self.slots.push(session);
            (self.slots.len() - 1) as u32
        };
        let class = class_of(session.state());
        self.link_tail(i, class);
        self.in2out.insert(self.in2out.tag(inside_key(&session)), i);
        if let Some(k) = outside_key(&self.config.pool, &session) {
            self.out2in.insert(self.out2in.tag(k), i);
        }
        *self.hosts.entry(inside).or_insert(0) += 1;
        self.live += 1;
        self.counters.created += 1;
        Ok(i)
    }

    /// Sessions of inside address `inside`.
    fn host_sessions(&self, inside: u32) -> u32 {
        self.hosts.get(&inside).copied().unwrap_or(0)
    }

    /// An outside address (index) and port for `ep`: the address paired with the
    /// inside address first (the same for every worker), then the others.
    fn alloc_port(&mut self, ep: Endpoint) -> Option<(u16, u16)> {
        let n = self.config.pool.len();
        let first = (mix(u64::from(u32::from(ep.addr))) % n as u64) as usize;
        (0..n).find_map(|k| {
            let a = (first + k) % n;
            let port = self.ports.alloc(a, ep.proto.index(), ep.port)?;
            Some((a as u16, port))
        })
    }

    /// Frees session `i`: its map entries, host count, port and slot.
    fn remove(&mut self, i: u32) {
        self.unlink(i);
        let s = self.slots[i as usize];
        self.in2out.remove(self.in2out.tag(inside_key(&s)), i);
        if let Some(k) = outside_key(&self.config.pool, &s) {
            self.out2in.remove(self.out2in.tag(k), i);
        }
        self.ports
            .release(usize::from(s.pool), s.proto.index(), s.outside_port);
        if let Some(n) = self.hosts.get_mut(&s.inside) {
            *n -= 1;
            if *n == 0 {
                self.hosts.remove(&s.inside);
            }
        }
        let slot = &mut self.slots[i as usize];
        slot.class = CLASS_FREE;
        slot.next = self.free;
        self.free = i;
        self.live -= 1;
    }

    /// Appends slot `i` to the expiry list of `class`.
    fn link_tail(&mut self, i: u32, class: u8) {
        let c = usize::from(class);
        let tail = self.tails[c];
        let s = &mut self.slots[i as usize];
        s.class = class;
        s.prev = tail;
        s.next = NIL;
        match self.slots.get_mut(tail as usize) {
            Some(t) => t.next = i,
            None => self.heads[c] = i,
        }
        self.tails[c] = i;
    }

    /// Takes slot `i` out of its expiry list.
    fn unlink(&mut self, i: u32) {
        let s = self.slots[i as usize];
        let c = usize::from(s.class);
        if c >= CLASSES {
            return;
        }
        match self.slots.get_mut(s.prev as usize) {
            Some(p) => p.next = s.next,
            None => self.heads[c] = s.next,
        }
        match self.slots.get_mut(s.next as usize) {
            Some(n) => n.prev = s.prev,
            None => self.tails[c] = s.prev,
        }
    }
}
