//! Out of the bond: authenticate a tunnel datagram under its session, check it against
//! replay and the peer's allowed prefixes, and leave the inner packet to be put in
//! order (when its sender sequenced it) and routed.
//! Handshake messages go to their own stage.

use super::handshake::is_handshake;
use super::keys::Keys;
use super::meta::{IpFacts, Meta};
use super::reorder::Sequenced;
use super::{Ctx, Next};
use crate::frame::Frame;
use crate::ids::PeerIdx;
use crate::session::{Live, Sessions};
use crate::snapshot::{Link, Peer, MAX_LANES};
use crate::stats::{DropReason, WorkerStats};
use crate::tunnel::{
    split_data, Header, MsgType, Probe, TunnelError, HEADER_LEN, SEQ_LEN, TAG_LEN,
};
use crate::wire::{ethernet, ipv4, udp};
use braid_control::config::Role;
use std::net::SocketAddrV4;
use std::sync::Arc;

/// Opens the tunnel datagram in `frame` (trimmed to the outer packet). The inner
/// packet takes the outer one's place behind the outer Ethernet header, so errors
/// about it go back to the neighbour the datagram came from; then `Route`.
#[inline]
pub(super) fn open(
    ctx: &Ctx,
    (keys, sessions): (&Keys, &Sessions),
    stats: &WorkerStats,
    meta: &mut Meta,
    frame: &mut Frame<'_>,
) -> Next {
    let start = ethernet::HEADER_LEN + meta.ip.header_len + udp::HEADER_LEN;
    let Some(msg) = frame.data_mut().get_mut(start..) else {
        return Next::Drop(DropReason::Truncated);
    };
    if is_handshake(msg) {
        return Next::Handshake;
    }
    let (header, idx, peer, link) = match authenticate(ctx, keys, sessions, msg) {
        Ok(found) => found,
        Err(why) => return Next::Drop(why),
    };
    if ctx.snap.role == Role::Hub {
        // Behind NAT, or on a new address: the edge is where its last message came from.
        let port = meta.ip.l4.src_port().unwrap_or(ctx.snap.tunnel_port);
        link.endpoint.learn(SocketAddrV4::new(meta.ip.src, port));
    }
    let plain = msg
        .get(HEADER_LEN..msg.len().saturating_sub(TAG_LEN))
        .unwrap_or(&[]);
    let probe = match header.msg_type {
        MsgType::Data => None,
        MsgType::Probe => Some(Next::Answer(idx, header.link)),
        MsgType::ProbeReply => Some(Next::Heard(idx, header.link)),
        MsgType::Keepalive => {
            stats.local.add(1);
            return Next::Consumed;
        }
    };
    if let Some(next) = probe {
        // The probe's payload goes in front, behind the Ethernet header.
        if Probe::parse(plain).is_err() {
            return Next::Drop(DropReason::Malformed);
        }
        if !unwrap(frame, start + HEADER_LEN, Probe::LEN) {
            return Next::Drop(DropReason::Truncated);
        }
        return next;
    }
    let Ok((seq, packet)) = split_data(plain) else {
        return Next::Drop(DropReason::MalformedInner);
    };
    let Ok(ip) = ipv4::Ipv4::parse(packet) else {
        return Next::Drop(DropReason::MalformedInner);
    };
    if !ip.checksum_ok() {
        return Next::Drop(DropReason::MalformedInner);
    }
    if !peer.allows(ip.src()) {
        return Next::Drop(DropReason::Spoofed);
    }
    // Data on the link, for the looks at silence under load (probes do not count: an idle
    // bond is not looked at every 10 ms).
    link.health.heard_at(ctx.now);
    let inner = IpFacts::of(&ip);
    if let Some(c) = stats.link(link.slot) {
        c.rx_packets.add(1);
        c.rx_bytes.add(inner.total_len as u64);
    }
    if !unwrap(frame, start + HEADER_LEN + SEQ_LEN, inner.total_len) {
        return Next::Drop(DropReason::Truncated);
    }
    meta.ip = inner;
    meta.from_peer = Some(idx);
    if seq != 0 {
        let s = Sequenced::new(idx, header.lane, seq, header.receiver, header.link);
        return s.map_or(Next::Drop(DropReason::UnknownSession), Next::Order);
    }
    Next::Route
}

/// Finds the session and link of the message in `msg`, opens it in place, and takes it
/// through the session's replay window, which moves only for a message whose tag
/// verified. The window is looked at once, after the AEAD: a replayed message costs the
/// AEAD as a forged one does, and the window's lock is taken once a packet. The first
/// message under a responder's new session confirms it.
#[inline]
fn authenticate<'s>(
    ctx: &'s Ctx,
    keys: &'s Keys,
    sessions: &Sessions,
    msg: &mut [u8],
) -> Result<(Header, PeerIdx, &'s Peer, &'s Link), DropReason> {
    let header = match Header::parse(msg) {
        Ok(h) => h,
        Err(TunnelError::Truncated) => return Err(DropReason::Truncated),
        Err(TunnelError::OldVersion) => return Err(DropReason::OldVersion),
        Err(_) => return Err(DropReason::BadTunnelHeader),
    };
    if usize::from(header.lane) >= MAX_LANES {
        // No window to take it: refused before the AEAD.
        return Err(DropReason::BadTunnelHeader);
    }
    let (idx, live) = keys
        .receiver(header.receiver)
        .ok_or(DropReason::UnknownSession)?;
    let peer = ctx.snap.peer(idx).ok_or(DropReason::UnknownSession)?;
    let link = peer
        .links
        .get(usize::from(header.link))
        .ok_or(DropReason::UnknownLink)?;
    match live.recv.open(msg) {
        Ok(()) => {}
        Err(TunnelError::Truncated) => return Err(DropReason::Truncated),
        Err(_) => return Err(DropReason::BadTag),
    }
    if !live.accept(header.lane, header.counter) {
        return Err(DropReason::Replayed);
    }
    heard(ctx, sessions, peer, live);
    Ok((header, idx, peer, link))
}

/// Records that `live` carried an authenticated message now.
#[inline(always)]
fn heard(ctx: &Ctx, sessions: &Sessions, peer: &Peer, live: &Arc<Live>) {
    live.heard_at(ctx.now);
    if !live.is_confirmed() {
        peer.keys.confirm(sessions, ctx.now, live);
    }
}

/// Moves the inner packet (`inner_len` bytes at `at`) up behind the frame's
/// Ethernet header; false when the frame is shorter.
#[inline(always)]
fn unwrap(frame: &mut Frame<'_>, at: usize, inner_len: usize) -> bool {
    let mut eth = [0u8; ethernet::HEADER_LEN];
    if let Some(h) = frame.data().first_chunk::<{ ethernet::HEADER_LEN }>() {
        eth = *h;
    }
    if !frame.pull_front(at - ethernet::HEADER_LEN)
        || !frame.set_len(ethernet::HEADER_LEN + inner_len)
    {
        return false;
    }
    if let Some(h) = frame
        .data_mut()
        .first_chunk_mut::<{ ethernet::HEADER_LEN }>()
    {
        *h = eth;
    }
    true
}
