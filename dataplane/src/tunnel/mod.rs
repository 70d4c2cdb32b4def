//! The braid tunnel: the handshake and its cookies, the data header, the session ciphers
//! and the replay window. No I/O here.
//!
//! The wire format is described in `docs/PROTOCOL.md`.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod cipher;
pub mod cookie;
pub mod handshake;
mod handshake_msg;
pub mod header;
pub mod replay;

use std::fmt;

pub use cipher::{padded_len, Cipher, CipherSet, SessionKey, COUNTER_LIMIT, PAD_TO, TAG_LEN};
pub use header::{split_data, Header, MsgType, Probe, HEADER_LEN, SEQ_LEN, VERSION};
pub use replay::ReplayWindow;

/// Why a tunnel message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelError {
    /// Shorter than its fixed parts.
    Truncated,
    /// Header version is not [`VERSION`].
    BadVersion,
    /// An older version (1 or 2), which this code no longer speaks.
    OldVersion,
    /// Unknown message type.
    BadType,
    /// Authentication failed: forged, corrupted or sealed under another key.
    BadTag,
    /// Sequence already seen or too old for the replay window.
    Replayed,
    /// The lane's counter reached [`COUNTER_LIMIT`]: the session is used up.
    SequenceExhausted,
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TunnelError::Truncated => "tunnel message truncated",
            TunnelError::BadVersion => "unknown tunnel protocol version",
            TunnelError::OldVersion => "an older tunnel protocol version, no longer spoken",
            TunnelError::BadType => "unknown tunnel message type",
            TunnelError::BadTag => "tunnel message failed authentication",
            TunnelError::Replayed => "tunnel message replayed or too old",
            TunnelError::SequenceExhausted => "tunnel session counter exhausted",
        })
    }
}

impl std::error::Error for TunnelError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_distinct_messages() {
        let all = [
            TunnelError::Truncated,
            TunnelError::BadVersion,
            TunnelError::OldVersion,
            TunnelError::BadType,
            TunnelError::BadTag,
            TunnelError::Replayed,
            TunnelError::SequenceExhausted,
        ];
        let texts: std::collections::HashSet<String> = all.iter().map(|e| e.to_string()).collect();
        assert_eq!(texts.len(), all.len());
        assert_eq!(
            TunnelError::BadTag.to_string(),
            "tunnel message failed authentication"
        );
    }
}
