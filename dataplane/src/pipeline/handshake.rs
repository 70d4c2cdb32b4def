//! The tunnel handshake through the stages. On an edge, worker 0 starts a handshake with
//! each peer when one is due ([`Handshaker`], timers in `crate::session`) and sends
//! keepalives; any worker takes the response, makes the session, and confirms it to the
//! hub with a keepalive in place. On a hub, any worker answers an initiation in place: with
//! a response, or under load (`crate::session::Guard`) with a cookie reply, or not at all
//! (over its source's rate). An edge that gets a cookie reply for its handshake keeps the
//! cookie and sends the initiation again at once, with mac2.
//! Messages and timers: docs/PROTOCOL.md.

use super::encap::{own_message_to, udp_headers, wrap, Addrs};
use super::meta::Meta;
use super::{Ctx, Next};
use crate::frame::Frame;
use crate::ids::{Lane, PeerIdx};
use crate::session::{Admit, CookieTaken, Live, PeerKeys, Pending, Sessions};
use crate::snapshot::Peer;
use crate::stats::{DropReason, WorkerStats};
use crate::tunnel::cookie::{self, TYPE_COOKIE};
use crate::tunnel::handshake::{Initiator, TYPE_INITIATION, TYPE_RESPONSE, VERSION};
use crate::tunnel::{Header, MsgType};
use crate::wire::{ethernet, ipv4, udp};
use braid_control::config::Role;
use std::net::SocketAddrV4;

/// With probes on, a session nothing came back on for this long is renewed: the hub
/// restarted and lost it, or every link is dead (then the handshakes wait their turn).
const SILENCE_NS: u64 = 2_000_000_000;

/// Bytes in front of a handshake message: Ethernet, outer IPv4 and UDP headers.
const HANDSHAKE_AT: usize = ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN + udp::HEADER_LEN;

/// True for a message the handshake stage takes.
#[inline]
pub(super) fn is_handshake(msg: &[u8]) -> bool {
    matches!(
        msg,
        [VERSION, TYPE_INITIATION | TYPE_RESPONSE | TYPE_COOKIE, ..]
    )
}

/// A message worker 0 sends now: an initiation (its bytes), or a keepalive.
#[derive(Debug)]
pub(super) struct Due {
    pub peer: PeerIdx,
    pub link: usize,
    pub initiation: Option<Vec<u8>>,
}

/// Worker 0's handshake and keepalive timers.
#[derive(Debug)]
pub struct Handshaker {
    on: bool,
    due: u64,
    keepalive_due: u64,
    /// A link changed state: handshakes under way are retried at once.
    retry: bool,
}

impl Handshaker {
    /// The handshaker of worker `lane`: only worker 0 runs the timers.
    pub fn new(lane: Lane) -> Handshaker {
        Handshaker {
            on: lane.0 == 0,
            due: 0,
            keepalive_due: 0,
            retry: false,
        }
    }

    /// Looks at every peer at the next batch (after a snapshot change).
    pub fn reset(&mut self) {
        self.due = 0;
    }

    /// A link went down or came back: a handshake under way is sent again at the next
    /// batch, on a link that is up, instead of waiting up to 16 s for its retry.
    pub fn links_changed(&mut self) {
        self.retry = true;
        self.due = 0;
    }

    /// When [`Handshaker::on_timeout`] next has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        (self.on && self.due != u64::MAX).then_some(self.due)
    }

    /// Runs every peer's session timers: old sessions go, and on an edge the
    /// initiations and keepalives due now are returned.
    pub(super) fn on_timeout(&mut self, ctx: &Ctx, sessions: &Sessions) -> Vec<Due> {
        let mut out = Vec::new();
        if !self.on || ctx.now < self.due {
            return out;
        }
        let initiator = ctx.snap.role == Role::Edge;
        let silence = if ctx.snap.health.enabled {
            SILENCE_NS
        } else {
            u64::MAX
        };
        let retry = std::mem::take(&mut self.retry) && initiator;
        let mut due = u64::MAX;
        for (i, peer) in ctx.snap.peers.iter().enumerate() {
            let tick = peer.keys.tick(sessions, ctx.now, initiator, silence);
            due = due.min(tick.due);
            let waiting = || retry.then(|| peer.keys.awaiting()).flatten();
            let Some(tries) = tick.initiate.or_else(waiting) else {
                continue;
            };
            let Some(link) = initiation_link(peer, tries) else {
                continue;
            };
            let index = sessions.new_index();
            let Some(link_id) = peer.links.get(link).map(|l| l.id) else {
                continue;
            };
            let started = Initiator::start(
                &ctx.snap.statics,
                &peer.public_key,
                peer.psk(),
                ctx.snap.offer,
                index,
                link_id,
            );
            // Fails only when snow cannot build the handshake: nothing to retry sooner.
            let Ok((mut initiator, mut msg)) = started else {
                continue;
            };
            // With a cookie the hub gave for this link, mac2 under it.
            if let Some(c) = peer.keys.cookie_for(link_id, ctx.now) {
                match initiator.set_cookie(&c) {
                    Ok(m) => msg = m,
                    Err(_) => continue,
                }
            }
            peer.keys.start(Pending {
                initiator,
                index,
                sent: ctx.now,
                tries,
            });
            due = due.min(ctx.now.saturating_add(crate::session::retry_after(tries)));
            out.push(Due {
                peer: PeerIdx(i),
                link,
                initiation: Some(msg),
            });
        }
        // An edge's keepalives keep the NAT bindings on the way while probes are off
        // (probes do it when they are on).
        let every = ctx.snap.keepalive_ns;
        if initiator && !ctx.snap.health.enabled && every > 0 {
            if self.keepalive_due == 0 {
                // A new session is confirmed by a keepalive of its own: the first
                // round is one interval away.
                self.keepalive_due = ctx.now.saturating_add(every);
            } else if ctx.now >= self.keepalive_due {
                self.keepalive_due = ctx.now.saturating_add(every);
                keepalives(ctx, &mut out);
            }
            due = due.min(self.keepalive_due);
        }
        self.due = due;
        out
    }
}

/// A keepalive on every link of every peer with a session.
fn keepalives(ctx: &Ctx, out: &mut Vec<Due>) {
    for (i, peer) in ctx.snap.peers.iter().enumerate() {
        if peer.keys.sending().is_none() {
            continue;
        }
        out.extend((0..peer.links.len()).map(|link| Due {
            peer: PeerIdx(i),
            link,
            initiation: None,
        }));
    }
}

/// The link an initiation goes on: the links that are up in turn with each retry, or
/// any link in turn when none is.
fn initiation_link(peer: &Peer, tries: u32) -> Option<usize> {
    let up: Vec<usize> = (0..peer.links.len())
        .filter(|&i| peer.links.get(i).is_some_and(|l| l.effective_weight() > 0))
        .collect();
    let turn = tries as usize;
    match up.len() {
        0 => (!peer.links.is_empty()).then(|| turn % peer.links.len()),
        n => up.get(turn % n).copied(),
    }
}

/// Writes the message `due` into `frame` (a buffer of at least [`DUE_FRAME`] bytes)
/// from the link's own address to the peer's endpoint.
pub(super) fn emit(ctx: &Ctx, lane: Lane, frame: &mut Frame<'_>, due: &Due) -> Next {
    let (l, to) = match own_message_to(ctx, due.peer, due.link) {
        Ok(found) => found,
        Err(why) => return Next::Drop(why),
    };
    let Some(peer) = ctx.snap.peer(due.peer) else {
        return Next::Drop(DropReason::NoRoute);
    };
    let sent = match &due.initiation {
        Some(msg) => place(frame, msg) && udp_headers(frame, &to),
        None => match peer.keys.sending() {
            Some(live) => keepalive(frame, &to, &live, l.id, lane),
            None => return Next::Drop(DropReason::NoSession),
        },
    };
    if !sent {
        return Next::Drop(DropReason::TooBig);
    }
    Next::Deliver(l.port, l.gateway.unwrap_or(*to.remote.ip()))
}

/// Bytes of the largest message [`emit`] writes.
pub(super) const DUE_FRAME: usize = HANDSHAKE_AT + crate::tunnel::handshake::INITIATION_LEN;

/// Puts `msg` behind the frame's outer headers, the frame ending with it.
fn place(frame: &mut Frame<'_>, msg: &[u8]) -> bool {
    if !frame.set_len(HANDSHAKE_AT + msg.len()) {
        return false;
    }
    match frame.data_mut().get_mut(HANDSHAKE_AT..) {
        Some(room) => {
            room.copy_from_slice(msg);
            true
        }
        None => false,
    }
}

/// Makes `frame` an empty keepalive on link `link` under `live`.
fn keepalive(frame: &mut Frame<'_>, to: &Addrs, live: &Live, link: u8, lane: Lane) -> bool {
    let Some(counter) = live.next_counter(lane) else {
        return false;
    };
    let header = Header {
        msg_type: MsgType::Keepalive,
        link,
        lane: lane.0,
        receiver: live.remote_index,
        counter,
    };
    frame.set_len(ethernet::HEADER_LEN) && wrap(frame, to, &header, (&live.send, 0))
}

/// A handshake message from `meta.ip.src`: an initiation is answered (hub), a response
/// makes the session, a cookie reply has the initiation sent again (edge). Either way the
/// answer goes back in place on the link the message names, to the address and port it
/// came from. Out of line (rare; see `local::arp`).
#[inline(never)]
pub(super) fn handle(
    ctx: &Ctx,
    (lane, sessions): (Lane, &Sessions),
    stats: &WorkerStats,
    meta: &Meta,
    frame: &mut Frame<'_>,
) -> Next {
    let start = ethernet::HEADER_LEN + meta.ip.header_len + udp::HEADER_LEN;
    let Some(msg) = frame.data().get(start..) else {
        return Next::Drop(DropReason::Truncated);
    };
    let port = meta.ip.l4.src_port().unwrap_or(ctx.snap.tunnel_port);
    let from = SocketAddrV4::new(meta.ip.src, port);
    let made = match (ctx.snap.role, msg.get(1).copied()) {
        (Role::Hub, Some(TYPE_INITIATION)) => {
            if ctx.snap.responder.check_mac1(msg).is_err() {
                return Next::Drop(DropReason::BadHandshake);
            }
            match sessions.guard().admit(ctx.now, from, msg) {
                Admit::Answer(cookie) => respond(ctx, sessions, msg, cookie.as_ref()),
                Admit::Cookie => return cookie_reply(ctx, sessions, stats, meta, frame, from),
                Admit::Limited => return Next::Drop(DropReason::HandshakeRateLimited),
            }
        }
        (Role::Edge, Some(TYPE_RESPONSE)) => finish(ctx, sessions, msg),
        (Role::Edge, Some(TYPE_COOKIE)) => match take_cookie(ctx, msg) {
            // Authenticated, but the initiation already carries that cookie.
            Some((_, None)) => return Next::Consumed,
            Some((peer, Some(retry))) => Some((peer, retry)),
            None => None,
        },
        _ => return Next::Drop(DropReason::BadHandshake),
    };
    let Some((peer, answer)) = made else {
        return Next::Drop(DropReason::BadHandshake);
    };
    let Some(p) = ctx.snap.peer(peer) else {
        return Next::Drop(DropReason::BadHandshake);
    };
    let link = match &answer {
        Answer::Initiation(m) => m.get(2).copied(),
        _ => msg.get(2).copied(),
    }
    .unwrap_or(0);
    let Some(l) = p.links.get(usize::from(link)) else {
        return Next::Drop(DropReason::UnknownLink);
    };
    let to = Addrs {
        src: meta.ip.dst,
        remote: from,
        src_port: ctx.snap.tunnel_port,
    };
    stats.local.add(1);
    let sent = match answer {
        Answer::Response(msg) | Answer::Initiation(msg) => {
            place(frame, &msg) && udp_headers(frame, &to)
        }
        Answer::Keepalive(live) => keepalive(frame, &to, &live, l.id, lane),
    };
    if !sent {
        return Next::Drop(DropReason::TooBig);
    }
    Next::Deliver(l.port, l.gateway.unwrap_or(meta.ip.src))
}

/// Answers an initiation from `from` with a cookie reply in place, back to the neighbour
/// it came from on the port it came in on (no peer is known: nothing was decrypted).
/// Counted as [`DropReason::CookieReplied`]: the initiation itself was not processed.
fn cookie_reply(
    ctx: &Ctx,
    sessions: &Sessions,
    stats: &WorkerStats,
    meta: &Meta,
    frame: &mut Frame<'_>,
    from: SocketAddrV4,
) -> Next {
    let start = ethernet::HEADER_LEN + meta.ip.header_len + udp::HEADER_LEN;
    let Some(msg) = frame.data().get(start..) else {
        return Next::Drop(DropReason::Truncated);
    };
    let public = ctx.snap.statics.public();
    let Ok(reply) = sessions.guard().cookie_reply(ctx.now, from, &public, msg) else {
        return Next::Drop(DropReason::BadHandshake);
    };
    let Some(p) = ctx.snap.ports.get(meta.in_port) else {
        return Next::Drop(DropReason::NotForUs);
    };
    let to = Addrs {
        src: meta.ip.dst,
        remote: from,
        src_port: ctx.snap.tunnel_port,
    };
    if !(place(frame, &reply) && udp_headers(frame, &to)) {
        return Next::Drop(DropReason::TooBig);
    }
    ethernet::write(
        frame.data_mut(),
        meta.from_mac,
        p.mac,
        ethernet::ETHERTYPE_IPV4,
    );
    stats.count_drop(DropReason::CookieReplied);
    Next::Tx(meta.in_port)
}

/// What a handshake message is answered with.
enum Answer {
    /// The response to an initiation.
    Response(Vec<u8>),
    /// A keepalive under the session just made, which confirms it to the responder.
    Keepalive(std::sync::Arc<Live>),
    /// The initiation again, with mac2 under the cookie just received.
    Initiation(Vec<u8>),
}

/// Answers an initiation from a configured peer; its session opens from now on. Under
/// load its mac2 is checked again under `cookie`.
fn respond(
    ctx: &Ctx,
    sessions: &Sessions,
    msg: &[u8],
    cookie: Option<&cookie::Cookie>,
) -> Option<(PeerIdx, Answer)> {
    let mut peer = None;
    let index = sessions.new_index();
    let (response, session) = ctx
        .snap
        .responder
        .respond_with(msg, index, cookie, |key| {
            let i = ctx.snap.peer_by_key(key)?;
            peer = Some(i);
            ctx.snap.peer(i).map(|p| *p.psk())
        })
        .ok()?;
    let peer = peer?;
    keys_of(ctx, peer)?.responded(sessions, Live::new(session, ctx.now, false));
    Some((peer, Answer::Response(response)))
}

/// Finishes the handshake the response answers; its session sends from now on.
fn finish(ctx: &Ctx, sessions: &Sessions, msg: &[u8]) -> Option<(PeerIdx, Answer)> {
    let receiver = u32::from_be_bytes(*msg.get(8..)?.first_chunk::<4>()?);
    let (i, pending) = ctx.snap.peers.iter().enumerate().find_map(|(i, p)| {
        let pending = p
            .keys
            .take_pending(receiver, |w| w.initiator.check(msg).is_ok())?;
        Some((PeerIdx(i), pending))
    })?;
    // A response with a valid mac1 whose Noise message fails (it takes knowing this end's
    // public key to make one) used the handshake up: the next one starts at its retry time.
    let session = pending.initiator.finish(msg).ok()?;
    let live = keys_of(ctx, i)?.initiated(sessions, ctx.now, Live::new(session, ctx.now, true));
    Some((i, Answer::Keepalive(live)))
}

/// Takes a cookie reply for the handshake under way with its receiver index: the
/// initiation again with mac2, when the reply opens and brings a cookie the initiation
/// does not carry yet (None for the answer: it does). A reply that does not open changes
/// nothing (None), and the handshake still waits for its response.
fn take_cookie(ctx: &Ctx, msg: &[u8]) -> Option<(PeerIdx, Option<Answer>)> {
    let receiver = cookie::receiver_index(msg)?;
    for (i, p) in ctx.snap.peers.iter().enumerate() {
        let taken = p.keys.take_cookie(receiver, ctx.now, |initiator| {
            cookie::open(initiator.their_public(), msg, receiver, &initiator.mac1()).ok()
        });
        match taken {
            CookieTaken::Refused => continue,
            CookieTaken::Kept => return Some((PeerIdx(i), None)),
            CookieTaken::Retry(m) => return Some((PeerIdx(i), Some(Answer::Initiation(m)))),
        }
    }
    None
}

fn keys_of(ctx: &Ctx, peer: PeerIdx) -> Option<&PeerKeys> {
    ctx.snap.peer(peer).map(|p| &*p.keys)
}
