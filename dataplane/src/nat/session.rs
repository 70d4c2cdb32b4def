//! One session (an endpoint-independent mapping), its protocol and its TCP state.

/// The transport protocols the NAT translates; each has its own port space
/// (for ICMP, the echo identifier stands in for the port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// ICMP echo (and errors quoting it).
    Icmp,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Icmp => 1,
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    /// The protocol with IP protocol number `n`, if translated.
    pub(crate) fn from_number(n: u8) -> Option<Proto> {
        match n {
            1 => Some(Proto::Icmp),
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            _ => None,
        }
    }

    /// Index of the protocol's port space (0..3).
    pub(crate) fn index(self) -> usize {
        match self {
            Proto::Icmp => 0,
            Proto::Tcp => 1,
            Proto::Udp => 2,
        }
    }
}

/// The state a session's timeout follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// UDP (`udp` timeout).
    Udp,
    /// ICMP echo (`icmp` timeout).
    Icmp,
    /// TCP seen in one direction only, e.g. a SYN (`tcp_transitory`).
    TcpOpening,
    /// TCP seen in both directions (`tcp_established`).
    TcpEstablished,
    /// TCP with a FIN seen in one direction: half-closed (`tcp_established`).
    TcpClosing,
    /// TCP after FINs in both directions or a RST (`tcp_transitory`).
    TcpClosed,
}

/// Which way a packet crosses the NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Inside to outside: the source is translated.
    Out,
    /// Outside to inside: the destination is translated.
    In,
}

/// Timeout classes, each with its own expiry list.
pub(crate) const CLASS_UDP: u8 = 0;
pub(crate) const CLASS_TCP_ESTABLISHED: u8 = 1;
pub(crate) const CLASS_TCP_TRANSITORY: u8 = 2;
pub(crate) const CLASS_ICMP: u8 = 3;
/// Number of timeout classes.
pub(crate) const CLASSES: usize = 4;
/// The class of an unused slot.
pub(crate) const CLASS_FREE: u8 = u8::MAX;

/// TCP header flags.
pub(crate) const TCP_FIN: u8 = 0x01;
pub(crate) const TCP_SYN: u8 = 0x02;
pub(crate) const TCP_RST: u8 = 0x04;
pub(crate) const TCP_ACK: u8 = 0x10;

/// TCP tracking bits kept per session.
const SEEN_OUT: u8 = 1;
const SEEN_IN: u8 = 2;
const FIN_OUT: u8 = 4;
const FIN_IN: u8 = 8;
const CLOSED: u8 = 16;

/// The TCP tracking bits after a segment with `flags` went `dir`.
///
/// Established once segments went both ways; closed by a RST or by FINs both
/// ways. A closed session stays closed (transitory timeout, still translating)
/// until a bare SYN starts a new connection on the same mapping.
pub(crate) fn tcp_track(bits: u8, dir: Dir, flags: u8) -> u8 {
    if flags & TCP_RST != 0 {
        return CLOSED;
    }
    let mut bits = bits;
    if bits & CLOSED != 0 {
        if flags & (TCP_SYN | TCP_ACK) != TCP_SYN {
            return bits;
        }
        bits = 0;
    }
    let (seen, fin) = match dir {
        Dir::Out => (SEEN_OUT, FIN_OUT),
        Dir::In => (SEEN_IN, FIN_IN),
    };
    bits |= seen;
    if flags & TCP_FIN != 0 {
        bits |= fin;
    }
    if bits & (FIN_OUT | FIN_IN) == FIN_OUT | FIN_IN {
        CLOSED
    } else {
        bits
    }
}

/// The state named by TCP tracking bits.
pub(crate) fn tcp_state(bits: u8) -> SessionState {
    if bits & CLOSED != 0 {
        SessionState::TcpClosed
    } else if bits & (FIN_OUT | FIN_IN) != 0 {
        SessionState::TcpClosing
    } else if bits & (SEEN_OUT | SEEN_IN) == SEEN_OUT | SEEN_IN {
        SessionState::TcpEstablished
    } else {
        SessionState::TcpOpening
    }
}

/// The timeout class of a state.
pub(crate) fn class_of(state: SessionState) -> u8 {
    match state {
        SessionState::Udp => CLASS_UDP,
        SessionState::Icmp => CLASS_ICMP,
        SessionState::TcpEstablished | SessionState::TcpClosing => CLASS_TCP_ESTABLISHED,
        SessionState::TcpOpening | SessionState::TcpClosed => CLASS_TCP_TRANSITORY,
    }
}

/// A session slot: the mapping, its timer and its place in its class's expiry
/// list (or in the free list). 40 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Session {
    /// Last packet that refreshed the session (ns).
    pub(crate) last_seen: u64,
    /// When the session was created (ns).
    pub(crate) created: u64,
    /// Inside address (big-endian value).
    pub(crate) inside: u32,
    /// Neighbours in the expiry list (`NIL` at the ends).
    pub(crate) prev: u32,
    pub(crate) next: u32,
    pub(crate) inside_port: u16,
    pub(crate) outside_port: u16,
    /// Index of the outside address in the pool.
    pub(crate) pool: u16,
    pub(crate) proto: Proto,
    /// TCP tracking bits (0 for UDP and ICMP).
    pub(crate) tcp: u8,
    /// Timeout class, or `CLASS_FREE`.
    pub(crate) class: u8,
}

impl Session {
    /// The session's state.
    pub(crate) fn state(&self) -> SessionState {
        match self.proto {
            Proto::Udp => SessionState::Udp,
            Proto::Icmp => SessionState::Icmp,
            Proto::Tcp => tcp_state(self.tcp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(steps: &[(Dir, u8)]) -> SessionState {
        tcp_state(steps.iter().fold(0, |b, &(d, f)| tcp_track(b, d, f)))
    }

    #[test]
    fn tcp_states_follow_flags_both_ways() {
        use Dir::{In, Out};
        assert_eq!(run(&[(Out, TCP_SYN)]), SessionState::TcpOpening);
        assert_eq!(
            run(&[(Out, TCP_SYN), (Out, TCP_SYN)]),
            SessionState::TcpOpening
        );
        let open = [(Out, TCP_SYN), (In, TCP_SYN | TCP_ACK), (Out, TCP_ACK)];
        assert_eq!(run(&open), SessionState::TcpEstablished);
        let half = [open.as_slice(), &[(Out, TCP_FIN | TCP_ACK)]].concat();
        assert_eq!(run(&half), SessionState::TcpClosing);
        let closed = [half.as_slice(), &[(In, TCP_FIN | TCP_ACK)]].concat();
        assert_eq!(run(&closed), SessionState::TcpClosed);
        // The last ACK does not reopen; a new SYN does.
        let acked = [closed.as_slice(), &[(Out, TCP_ACK)]].concat();
        assert_eq!(run(&acked), SessionState::TcpClosed);
        let again = [acked.as_slice(), &[(Out, TCP_SYN)]].concat();
        assert_eq!(run(&again), SessionState::TcpOpening);
        // RST either way closes.
        let rst = [open.as_slice(), &[(In, TCP_RST)]].concat();
        assert_eq!(run(&rst), SessionState::TcpClosed);
        // A connection picked up mid-stream is established once both ways are seen.
        assert_eq!(
            run(&[(Out, TCP_ACK), (In, TCP_ACK)]),
            SessionState::TcpEstablished
        );
    }

    #[test]
    fn session_slot_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Session>(), 40);
    }
}
