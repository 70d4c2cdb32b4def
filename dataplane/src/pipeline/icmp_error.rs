//! ICMP errors about dropped packets, rate limited, and routed as an unbound
//! local socket's traffic would be.

use super::hygiene;
use super::meta::{IpFacts, Meta};
use super::{Ctx, Next};
use crate::frame::Frame;
use crate::route::NextHop;
use crate::stats::{DropReason, WorkerStats};
use crate::wire::{ethernet, icmp, ipv4};
use std::net::Ipv4Addr;

/// ICMP errors a worker may send per second (and its burst).
const ICMP_ERRORS_PER_SEC: u64 = 1000;

/// An ICMP error to answer a dropped packet with.
#[derive(Debug, Clone, Copy)]
pub struct IcmpError {
    pub icmp_type: u8,
    pub code: u8,
    /// Second word of the ICMP header (next-hop MTU for "fragmentation needed").
    pub rest: u32,
    /// The drop counted for the offending packet.
    pub why: DropReason,
}

impl IcmpError {
    /// The TTL ran out.
    pub const TIME_EXCEEDED: IcmpError = IcmpError {
        icmp_type: icmp::TIME_EXCEEDED,
        code: 0,
        rest: 0,
        why: DropReason::TtlExceeded,
    };
    /// No route to the destination.
    pub const NO_ROUTE: IcmpError = IcmpError {
        icmp_type: icmp::DEST_UNREACHABLE,
        code: icmp::CODE_HOST_UNREACHABLE,
        rest: 0,
        why: DropReason::NoRoute,
    };
}

/// A token bucket over the ICMP errors of one worker.
#[derive(Debug)]
pub struct IcmpLimiter {
    tokens: u64,
    refilled_ns: u64,
}

impl IcmpLimiter {
    /// A full bucket.
    pub fn new() -> IcmpLimiter {
        IcmpLimiter {
            tokens: ICMP_ERRORS_PER_SEC,
            refilled_ns: 0,
        }
    }

    /// Takes a token at `now`; false when the bucket is empty.
    fn take(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.refilled_ns);
        let refill = elapsed.saturating_mul(ICMP_ERRORS_PER_SEC) / 1_000_000_000;
        if refill > 0 {
            self.tokens = (self.tokens + refill).min(ICMP_ERRORS_PER_SEC);
            self.refilled_ns = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// Counts the drop of the packet in `frame` and turns it into an ICMP error about
/// it, from the port it came in on. Never sent about ICMP errors, non-first
/// fragments, packets from a martian source or to a broadcast, multicast or martian
/// destination (RFC 1812 §4.3.2.7; routing drops those before, this is the last
/// guard); rate limited. The error is routed like
/// traffic of an unbound local socket (source 0.0.0.0 for the rules, as Linux
/// does): one about a packet out of the tunnel goes back into it; without a route
/// it returns to the neighbour the packet came from.
pub(super) fn answer(
    ctx: &Ctx,
    limiter: &mut IcmpLimiter,
    stats: &WorkerStats,
    meta: &mut Meta,
    frame: &mut Frame<'_>,
    err: IcmpError,
) -> Next {
    let Some(p) = ctx.snap.ports.get(meta.in_port) else {
        return Next::Drop(err.why);
    };
    let ip = meta.ip;
    let about_icmp_error = ip.protocol == ipv4::PROTO_ICMP
        && ip
            .l4
            .first_byte()
            .is_none_or(|t| t != icmp::ECHO_REQUEST && t != icmp::ECHO_REPLY);
    let src = ip.src;
    if about_icmp_error
        || ip.later_fragment
        || hygiene::refusal(&ctx.snap, src, ip.dst).is_some()
        || !limiter.take(ctx.now)
    {
        return Next::Drop(err.why);
    }
    stats.count_drop(err.why);
    let quote = ip.total_len.min(icmp::MAX_QUOTE);
    if !frame.set_len(ethernet::HEADER_LEN + quote) || !frame.push_front(icmp::ERROR_HEAD_LEN) {
        return Next::Consumed;
    }
    let data = frame.data_mut();
    ethernet::write(data, meta.from_mac, p.mac, ethernet::ETHERTYPE_IPV4);
    let Some((head, quoted)) = data
        .get_mut(ethernet::HEADER_LEN..)
        .and_then(|d| d.split_first_chunk_mut::<{ icmp::ERROR_HEAD_LEN }>())
    else {
        return Next::Consumed;
    };
    icmp::ErrorRepr {
        src: p.addr,
        dst: src,
        icmp_type: err.icmp_type,
        code: err.code,
        rest: err.rest,
    }
    .emit(head, quoted);
    stats.icmp_errors.add(1);
    match frame
        .data()
        .get(ethernet::HEADER_LEN..)
        .map(ipv4::Ipv4::parse)
    {
        Some(Ok(error)) => meta.ip = IpFacts::of(&error),
        _ => return Next::Consumed,
    }
    match ctx.snap.routes.lookup(Ipv4Addr::UNSPECIFIED, src) {
        Some(NextHop::Bond(peer)) => Next::Seal(peer),
        Some(NextHop::Port { port, gateway }) => Next::Deliver(port, gateway.unwrap_or(src)),
        None => Next::Tx(meta.in_port),
    }
}
