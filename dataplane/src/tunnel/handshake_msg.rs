//! The handshake messages' layout (types 5 and 6; the cookie reply is `super::cookie`'s) and
//! why one is refused: what the handshake and the cookies both read, so that neither module
//! depends on the other for it.

use std::fmt;

/// The protocol version of every message, handshakes as data.
pub use super::header::VERSION;
/// The initiation's message type.
pub const TYPE_INITIATION: u8 = 5;
/// The response's message type.
pub const TYPE_RESPONSE: u8 = 6;

/// Length of a public or private X25519 key, and of the pre-shared key.
pub const KEY_LEN: usize = 32;
/// Length of mac1 and of mac2.
pub const MAC_LEN: usize = 16;
/// Length of an AEAD tag inside the Noise messages.
const TAG_LEN: usize = 16;

/// The initiation's Noise message: ephemeral, encrypted static, encrypted 1-byte offer.
pub(super) const INIT_NOISE_LEN: usize = KEY_LEN + KEY_LEN + TAG_LEN + 1 + TAG_LEN;
/// Where the initiation's Noise message starts: after version, type, link, reserved, sender.
pub(super) const INIT_NOISE_AT: usize = 8;
/// Length of an initiation.
pub const INITIATION_LEN: usize = INIT_NOISE_AT + INIT_NOISE_LEN + 2 * MAC_LEN;

/// The response's Noise message: ephemeral, encrypted 1-byte choice.
pub(super) const RESP_NOISE_LEN: usize = KEY_LEN + 1 + TAG_LEN;
/// Where the response's Noise message starts: after the header and both indices.
pub(super) const RESP_NOISE_AT: usize = 12;
/// Length of a response.
pub const RESPONSE_LEN: usize = RESP_NOISE_AT + RESP_NOISE_LEN + 2 * MAC_LEN;

/// Why a handshake message was refused, or a handshake could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not the length of its type.
    BadLength,
    /// Version is not [`VERSION`].
    BadVersion,
    /// Not the expected message type.
    BadType,
    /// mac1 does not verify, or mac2 (when checked) does not: refused before any
    /// Diffie-Hellman. Also a cookie reply that does not open.
    BadMac,
    /// The response is not to this initiation (its receiver index is not ours).
    WrongReceiver,
    /// The Noise message does not authenticate: other keys, other PSK or corrupted.
    BadNoise,
    /// The initiator's static key is not one of the configured peers'.
    UnknownPeer,
    /// The offer and ours share no cipher, or the response names one we did not offer.
    NoCommonCipher,
    /// `snow` refused to build the handshake (does not happen with valid keys).
    Setup,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::BadLength => "handshake message of the wrong length",
            HandshakeError::BadVersion => "unknown tunnel protocol version",
            HandshakeError::BadType => "unexpected handshake message type",
            HandshakeError::BadMac => "handshake message mac refused",
            HandshakeError::WrongReceiver => "handshake response to another initiation",
            HandshakeError::BadNoise => "handshake message failed authentication",
            HandshakeError::UnknownPeer => "handshake from a key that is not a configured peer",
            HandshakeError::NoCommonCipher => "no cipher in common with the peer",
            HandshakeError::Setup => "handshake could not be set up",
        })
    }
}

impl std::error::Error for HandshakeError {}
