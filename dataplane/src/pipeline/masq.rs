//! Masquerade: source translation of traffic leaving by a masquerading port, the
//! reverse for traffic to its outside addresses, and the handoff of a packet to
//! the worker that owns its session (VPP NAT44-ED's rule: the owner of the inside
//! endpoint translates outbound packets, the owner of the outside port inbound
//! ones, so a session's two directions meet on one worker and no table is shared).

use super::icmp_error::IcmpError;
use super::meta::Meta;
use super::{Ctx, Next};
use crate::frame::{Frame, PortId};
use crate::ids::{Lane, MasqIdx};
use crate::nat::{self, NatError, NatTable, PortSlice, Proto, SessionInfo, SlotHint};
use crate::snapshot::{Masquerade, Snapshot};
use crate::stats::{DropReason, WorkerStats};
use crate::wire::l4::End;
use crate::wire::{ethernet, icmp};
use braid_control::config::{Hairpin, NatRefusal, OtherProtocols};
use std::net::Ipv4Addr;

/// Expired NAT sessions a worker reclaims per batch and table.
const NAT_EXPIRE_BUDGET: usize = 64;

/// An outbound packet's way out: the masquerading port, the next hop, the masquerade.
/// The port and the masquerade are kept small (a config has at most
/// [`MAX_INTERFACES`](braid_control::config::MAX_INTERFACES) interfaces, and one
/// masquerade per interface), so [`Next`] stays small.
#[derive(Debug, Clone, Copy)]
pub struct MasqOut {
    pub next_hop: Ipv4Addr,
    port: u16,
    masq: u16,
}

impl MasqOut {
    /// The way out by `port` to `next_hop` under masquerade `masq`; `None` when either
    /// index is beyond `u16` (never in a snapshot of a validated config).
    pub fn new(port: PortId, next_hop: Ipv4Addr, masq: MasqIdx) -> Option<MasqOut> {
        Some(MasqOut {
            next_hop,
            port: u16::try_from(port).ok()?,
            masq: u16::try_from(masq.0).ok()?,
        })
    }

    /// The masquerading port.
    pub fn port(self) -> PortId {
        PortId::from(self.port)
    }

    /// The masquerade.
    pub fn masq(self) -> MasqIdx {
        MasqIdx(usize::from(self.masq))
    }
}

/// This worker's session table per masquerade, kept while its masquerade is unchanged.
#[derive(Debug)]
pub struct Masq {
    lane: Lane,
    /// Keys the tables' hashes; each table built takes the next value.
    seed: u64,
    tables: Vec<Option<NatTable>>,
    /// The masquerades the tables were built for.
    plan: Vec<Masquerade>,
    /// The pipeline's batch parks its frames at their translations
    /// ([`Pipeline::process_batch`](super::Pipeline::process_batch)): `outbound` and
    /// `inbound` start their lookups and return [`Next::ParkOut`]/[`Next::ParkIn`].
    parking: bool,
}

impl Masq {
    /// No tables yet; `seed` keys their hashes.
    pub fn new(lane: Lane, seed: u64) -> Masq {
        Masq {
            lane,
            seed,
            tables: Vec::new(),
            plan: Vec::new(),
            parking: false,
        }
    }

    /// Rebuilds the tables when the snapshot's masquerades changed. The tunnel's
    /// UDP port is never handed out: replies to it would be taken for tunnel
    /// datagrams. A table the snapshot checked always builds; one that did not
    /// would leave its masquerade dropping as `NoRoute`.
    pub fn sync(&mut self, snap: &Snapshot) {
        if snap.masquerades == self.plan {
            return;
        }
        self.plan = snap.masquerades.clone();
        let slice = PortSlice {
            worker: self.lane.index(),
            workers: snap.workers,
        };
        self.tables = self
            .plan
            .iter()
            .map(|m| {
                self.seed = crate::nat::mix(self.seed.wrapping_add(1));
                let mut t = NatTable::new(&m.nat, slice, self.seed).ok()?;
                for lane in 0..snap.workers {
                    t.reserve(Proto::Udp, snap.tunnel_port_of(Lane(lane as u8)));
                }
                Some(t)
            })
            .collect();
    }

    /// Ages the tables and publishes their totals.
    pub fn on_timeout(&mut self, now: u64, stats: &WorkerStats) {
        let (mut live, mut created, mut expired, mut out, mut inn) = (0, 0, 0, 0, 0);
        for t in self.tables.iter_mut().flatten() {
            t.expire(now, NAT_EXPIRE_BUDGET);
            let c = t.counters();
            live += t.len() as u64;
            created += c.created;
            expired += c.expired;
            out += c.translated_out;
            inn += c.translated_in;
        }
        let n = &stats.nat;
        n.sessions.set(live);
        n.created.set(created);
        n.expired.set(expired);
        n.translated_out.set(out);
        n.translated_in.set(inn);
    }

    /// When a session may next expire.
    pub fn next_deadline(&self) -> Option<u64> {
        self.tables
            .iter()
            .flatten()
            .filter_map(NatTable::next_expiry)
            .min()
    }

    /// Up to `limit` live sessions, with their masquerade.
    pub fn sessions(&self, now: u64, limit: usize) -> Vec<(MasqIdx, SessionInfo)> {
        self.tables
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_ref().map(|t| (MasqIdx(i), t)))
            .flat_map(|(i, t)| t.sessions(now).map(move |s| (i, s)))
            .take(limit)
            .collect()
    }

    fn table(&mut self, m: MasqIdx) -> Option<&mut NatTable> {
        self.tables.get_mut(m.0).and_then(Option::as_mut)
    }

    fn table_ref(&self, m: MasqIdx) -> Option<&NatTable> {
        self.tables.get(m.0).and_then(Option::as_ref)
    }

    /// Whether any masquerade is configured.
    pub(super) fn any(&self) -> bool {
        !self.plan.is_empty()
    }

    /// Turns parking on or off; returns whether it was on.
    pub(super) fn set_parking(&mut self, on: bool) -> bool {
        std::mem::replace(&mut self.parking, on)
    }

    /// Starts loading the session slot of `lookup`, a frame's parked to resume with
    /// `next` (`TranslateOut` or `TranslateIn`; its index entry is in the cache by
    /// now). Returns `next` with that slot as the translation's hint: the lookup is not
    /// walked again.
    pub(super) fn prefetch_session(&self, next: Next, lookup: nat::Lookup) -> Next {
        match next {
            Next::TranslateOut(o, _) => {
                let hint = self
                    .table_ref(o.masq())
                    .and_then(|t| t.prefetch_session_out(lookup));
                Next::TranslateOut(o, hint)
            }
            Next::TranslateIn(m, _) => {
                let hint = self
                    .table_ref(m)
                    .and_then(|t| t.prefetch_session_in(lookup));
                Next::TranslateIn(m, hint)
            }
            other => other,
        }
    }
}

/// Outbound: the forwarded packet (TTL done) leaves by a masquerading port. When this
/// worker owns its session and the batch is parking, the lookup's first memory read
/// starts here and the packet parks.
pub(super) fn outbound(ctx: &Ctx, masq: &Masq, meta: &Meta, frame: &Frame<'_>, o: MasqOut) -> Next {
    let Some(m) = ctx.snap.masquerade(o.masq()) else {
        return Next::Drop(DropReason::NoRoute);
    };
    if m.nat.pool.contains(meta.ip.dst) && m.hairpin == Hairpin::Drop {
        return Next::Drop(DropReason::NatHairpin);
    }
    let ep = match endpoint(meta, frame, End::Src) {
        Ok(ep) => ep,
        Err(e) => return refuse(m, e, o),
    };
    let owner = nat::owner_of_inside(ep.proto, ep.addr, ep.port, m.nat.ports, ctx.snap.workers);
    if owner != masq.lane.index() {
        return Next::HandoffOut(Lane(owner as u8), o);
    }
    if masq.parking {
        return park_out(masq, ep, o);
    }
    Next::TranslateOut(o, None)
}

/// Inbound: a packet to an outside address of masquerade `m`. When this worker owns
/// its session and the batch is parking, the lookup's first memory read starts here
/// and the packet parks.
pub(super) fn inbound(ctx: &Ctx, masq: &Masq, meta: &Meta, frame: &Frame<'_>, m: MasqIdx) -> Next {
    let Some(mq) = ctx.snap.masquerade(m) else {
        return Next::Drop(DropReason::NoRoute);
    };
    let ep = match endpoint(meta, frame, End::Dst) {
        Ok(ep) => ep,
        Err(e) => return not_translated_in(ctx, meta, e),
    };
    let owner = nat::owner_of_port(ep.port, mq.nat.ports, ctx.snap.workers);
    if owner != masq.lane.index() {
        return Next::HandoffIn(Lane(owner as u8), m);
    }
    if masq.parking {
        return park_in(masq, ep, m);
    }
    Next::TranslateIn(m, None)
}

/// The session endpoint a packet names at `end` (its source going out, its destination
/// coming in). For TCP and UDP it comes from the facts the ingress parsed: the owner and
/// the lookup need no second parse, and the table, which checks the packet whole when it
/// translates it, refuses there what it would refuse here (a short transport header, a
/// first fragment), with the same answer. ICMP (its identifier, or the packet an error
/// quotes, is past the head the ingress keeps), other protocols and later fragments are
/// parsed by `nat::outbound_endpoint`/`inbound_endpoint`.
#[inline]
fn endpoint(meta: &Meta, frame: &Frame<'_>, end: End) -> Result<nat::Endpoint, NatError> {
    let ip = &meta.ip;
    let proto = Proto::from_number(ip.protocol).filter(|p| matches!(p, Proto::Tcp | Proto::Udp));
    let (addr, port) = match end {
        End::Src => (ip.src, ip.l4.src_port()),
        End::Dst => (ip.dst, ip.l4.dst_port()),
    };
    if let (Some(proto), Some(port), false) = (proto, port, ip.later_fragment) {
        return Ok(nat::Endpoint { proto, addr, port });
    }
    let packet = frame.data().get(ethernet::HEADER_LEN..).unwrap_or(&[]);
    match end {
        End::Src => nat::outbound_endpoint(packet),
        End::Dst => nat::inbound_endpoint(packet),
    }
}

/// Starts loading the index entry of inside endpoint `ep`, and parks the packet
/// (without a table, nothing to wait for: it goes on at once).
fn park_out(masq: &Masq, ep: nat::Endpoint, o: MasqOut) -> Next {
    match masq.table_ref(o.masq()) {
        Some(t) => Next::ParkOut(o, t.prefetch_out(ep)),
        None => Next::TranslateOut(o, None),
    }
}

/// Starts loading the index entry of outside endpoint `ep`, and parks the packet
/// (as [`park_out`]).
fn park_in(masq: &Masq, ep: nat::Endpoint, m: MasqIdx) -> Next {
    match masq.table_ref(m) {
        Some(t) => Next::ParkIn(m, t.prefetch_in(ep)),
        None => Next::TranslateIn(m, None),
    }
}

/// Translates outbound on the session's owner (trying slot `hint` first); a packet to
/// one of the pool's own mappings comes back in through it (hairpin), never out and
/// around.
pub(super) fn translate_out(
    ctx: &Ctx,
    masq: &mut Masq,
    meta: &mut Meta,
    frame: &mut Frame<'_>,
    (o, hint): (MasqOut, Option<SlotHint>),
) -> Next {
    let Some(m) = ctx.snap.masquerade(o.masq()) else {
        return Next::Drop(DropReason::NoRoute);
    };
    let Some(table) = masq.table(o.masq()) else {
        return Next::Drop(DropReason::NoRoute);
    };
    let Some(packet) = frame.data_mut().get_mut(ethernet::HEADER_LEN..) else {
        return Next::Drop(DropReason::Truncated);
    };
    match table.translate_out_at(packet, hint, ctx.now) {
        Ok(t) => meta.ip.src = t.outside.addr,
        Err(e) => return refuse(m, e, o),
    }
    if m.nat.pool.contains(meta.ip.dst) {
        return Next::MasqIn(o.masq());
    }
    Next::Deliver(o.port(), o.next_hop)
}

/// Translates inbound on the session's owner (trying slot `hint` first), then routes.
pub(super) fn translate_in(
    ctx: &Ctx,
    masq: &mut Masq,
    meta: &mut Meta,
    frame: &mut Frame<'_>,
    (m, hint): (MasqIdx, Option<SlotHint>),
) -> Next {
    let Some(table) = masq.table(m) else {
        return Next::Drop(DropReason::NoRoute);
    };
    let Some(packet) = frame.data_mut().get_mut(ethernet::HEADER_LEN..) else {
        return Next::Drop(DropReason::Truncated);
    };
    match table.translate_in_at(packet, hint, ctx.now) {
        Ok(t) => {
            meta.ip.dst = t.inside.addr;
            // A hairpin's packet, translated both ways, is the NAT's own and goes to an inside
            // endpoint: it may go back into the bond it came out of (not a loop).
            meta.from_peer = None;
            Next::Route
        }
        Err(e) => not_translated_in(ctx, meta, e),
    }
}

/// An inbound packet without a session: braid's own traffic when it is for a
/// port's own address, else dropped.
fn not_translated_in(ctx: &Ctx, meta: &Meta, e: NatError) -> Next {
    if ctx.snap.port_with_addr(meta.ip.dst).is_some() {
        return Next::Local;
    }
    Next::Drop(reason(e))
}

/// An outbound packet the table would not translate: passed untranslated, refused
/// with an ICMP error, or dropped, as the masquerade says.
fn refuse(m: &Masquerade, e: NatError, o: MasqOut) -> Next {
    match e {
        NatError::Unsupported if m.other_protocols == OtherProtocols::Pass => {
            Next::Deliver(o.port(), o.next_hop)
        }
        NatError::TableFull | NatError::HostLimit | NatError::PortsExhausted
            if m.when_full == NatRefusal::Icmp =>
        {
            Next::IcmpError(IcmpError {
                icmp_type: icmp::DEST_UNREACHABLE,
                code: icmp::CODE_ADMIN_PROHIBITED,
                rest: 0,
                why: reason(e),
            })
        }
        _ => Next::Drop(reason(e)),
    }
}

/// The drop counter of a NAT refusal.
fn reason(e: NatError) -> DropReason {
    match e {
        NatError::Malformed => DropReason::Malformed,
        NatError::Unsupported => DropReason::NatUnsupported,
        NatError::Fragment => DropReason::NatFragment,
        NatError::NoSession => DropReason::NatNoSession,
        NatError::TableFull => DropReason::NatTableFull,
        NatError::HostLimit => DropReason::NatHostLimit,
        NatError::PortsExhausted => DropReason::NatPortsExhausted,
    }
}
