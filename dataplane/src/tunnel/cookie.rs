//! Cookies of the tunnel's handshake (docs/PROTOCOL.md, "The handshake"): the type 7 cookie
//! reply a responder under load answers an initiation with, and the mac2 an initiator puts
//! on its initiations once it holds a cookie. Pure: no I/O and no clock; time comes in as
//! an argument (monotonic ns), randomness from a seed given once.
//!
//! - The cookie is BLAKE2s-128 keyed with a responder secret that changes every
//!   [`ROTATE_NS`] (derived from the seed and the number of the period), over the
//!   initiation's source address (4 bytes) and port (2 bytes, big-endian).
//! - The reply seals it with XChaCha20-Poly1305 under BLAKE2s-256("cookie--" ‖ responder's
//!   static public key), a random nonce ([`Nonces`]) and the initiation's mac1 as associated
//!   data: only the initiator that sent that initiation, to that responder, can use it.
//! - mac2 is BLAKE2s-128 keyed with the cookie over the message up to mac2.

use std::fmt;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU64, Ordering};

use blake2::digest::consts::{U16, U32};
use blake2::digest::{Digest, Mac};
use blake2::{Blake2s256, Blake2sMac};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};

use super::handshake_msg::{HandshakeError, INITIATION_LEN, KEY_LEN, MAC_LEN, VERSION};

/// The cookie reply's message type.
pub const TYPE_COOKIE: u8 = 7;
/// Length of a cookie.
pub const COOKIE_LEN: usize = 16;
/// Length of the cookie reply's nonce.
pub const NONCE_LEN: usize = 24;
/// Length of the AEAD tag on the sealed cookie.
const TAG_LEN: usize = 16;
/// Where the nonce starts: after version, type, reserved (2) and receiver index (4).
const NONCE_AT: usize = 8;
/// Where the sealed cookie starts.
const SEALED_AT: usize = NONCE_AT + NONCE_LEN;
/// Length of a cookie reply.
pub const COOKIE_REPLY_LEN: usize = SEALED_AT + COOKIE_LEN + TAG_LEN;
/// The responder's cookie secret changes this often: a cookie is good until then.
pub const ROTATE_NS: u64 = 120_000_000_000;
/// An initiator uses a cookie this long after it got it (two minutes less a margin).
pub const COOKIE_KEEP_NS: u64 = 110_000_000_000;
/// The label of the key the cookie is sealed under.
const COOKIE_LABEL: &[u8] = b"cookie--";

/// A cookie: what mac2 is keyed with.
pub type Cookie = [u8; COOKIE_LEN];

/// A 32-byte key derived from `key` for one use (`label`).
fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    Blake2s256::new()
        .chain_update(label)
        .chain_update(key)
        .finalize()
        .into()
}

/// The responder's cookie secret: a new one every [`ROTATE_NS`], each derived from a root
/// key and the number of its period, so it needs no timer and no lock.
#[derive(Clone)]
pub struct CookieSecret {
    root: [u8; 32],
}

impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSecret(..)")
    }
}

impl CookieSecret {
    /// The secrets of the root key derived from `key` (32 bytes from a random source).
    pub fn new(key: &[u8; 32]) -> CookieSecret {
        CookieSecret {
            root: derive(key, b"braid cookie secret"),
        }
    }

    /// The secrets of a 64-bit seed: for tests (64 bits are too few to keep the secret
    /// from a search, see [`CookieSecret::new`]).
    pub fn from_seed(seed: u64) -> CookieSecret {
        CookieSecret::new(&derive(&seed.to_le_bytes(), b"braid seed"))
    }

    /// The secret of the period `now` falls in.
    fn at(&self, now: u64) -> [u8; 32] {
        let period = now / ROTATE_NS;
        match Blake2sMac::<U32>::new_from_slice(&self.root) {
            Ok(m) => m
                .chain_update(period.to_be_bytes())
                .finalize()
                .into_bytes()
                .into(),
            // A 32-byte key is always a valid BLAKE2s key.
            Err(_) => [0; 32],
        }
    }

    /// The cookie of the source `src` at `now`.
    pub fn cookie(&self, now: u64, src: SocketAddrV4) -> Cookie {
        let Ok(mac) = Blake2sMac::<U16>::new_from_slice(&self.at(now)) else {
            return [0; COOKIE_LEN];
        };
        mac.chain_update(src.ip().octets())
            .chain_update(src.port().to_be_bytes())
            .finalize()
            .into_bytes()
            .into()
    }
}

/// Random nonces for cookie replies without a system call each: BLAKE2s-256 keyed with a
/// key derived from the seed, over a counter (shared by all workers, one atomic add each).
pub struct Nonces {
    key: [u8; 32],
    next: AtomicU64,
}

impl fmt::Debug for Nonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nonces(..)")
    }
}

impl Nonces {
    /// The nonces of the key derived from `key` (32 bytes from a random source).
    pub fn new(key: &[u8; 32]) -> Nonces {
        Nonces {
            key: derive(key, b"braid cookie nonces"),
            next: AtomicU64::new(0),
        }
    }

    /// The nonces of a 64-bit seed: for tests.
    pub fn from_seed(seed: u64) -> Nonces {
        Nonces::new(&derive(&seed.to_le_bytes(), b"braid seed"))
    }

    /// The next nonce: never the same twice (until 2^64 of them).
    pub fn next(&self) -> [u8; NONCE_LEN] {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut out = [0; NONCE_LEN];
        if let Ok(mac) = Blake2sMac::<U32>::new_from_slice(&self.key) {
            let block = mac.chain_update(n.to_be_bytes()).finalize().into_bytes();
            if let Some(head) = block.get(..NONCE_LEN) {
                out.copy_from_slice(head);
            }
        }
        out
    }
}

/// The key cookies to the responder whose public key is `responder` are sealed under.
fn seal_key(responder: &[u8; KEY_LEN]) -> XChaCha20Poly1305 {
    let key = Blake2s256::new()
        .chain_update(COOKIE_LABEL)
        .chain_update(responder)
        .finalize();
    <XChaCha20Poly1305 as chacha20poly1305::KeyInit>::new(&key)
}

/// The mac1 of an initiation (or any message ending in mac1 and mac2).
pub fn mac1_of(msg: &[u8]) -> Option<[u8; MAC_LEN]> {
    let end = msg.len().checked_sub(MAC_LEN)?;
    let at = end.checked_sub(MAC_LEN)?;
    msg.get(at..end)?.try_into().ok()
}

/// The cookie reply of the responder whose public key is `responder` to `initiation`,
/// carrying `cookie` under `nonce`.
pub fn reply(
    responder: &[u8; KEY_LEN],
    cookie: &Cookie,
    initiation: &[u8],
    nonce: [u8; NONCE_LEN],
) -> Result<[u8; COOKIE_REPLY_LEN], HandshakeError> {
    if initiation.len() != INITIATION_LEN {
        return Err(HandshakeError::BadLength);
    }
    let sender = initiation.get(4..8).ok_or(HandshakeError::BadLength)?;
    let mac1 = mac1_of(initiation).ok_or(HandshakeError::BadLength)?;
    let mut out = [0u8; COOKIE_REPLY_LEN];
    let (head, rest) = out.split_at_mut(NONCE_AT);
    head.copy_from_slice(&[VERSION, TYPE_COOKIE, 0, 0, 0, 0, 0, 0]);
    head.get_mut(4..)
        .ok_or(HandshakeError::Setup)?
        .copy_from_slice(sender);
    let (n, sealed) = rest.split_at_mut(NONCE_LEN);
    n.copy_from_slice(&nonce);
    let (body, tag) = sealed.split_at_mut(COOKIE_LEN);
    body.copy_from_slice(cookie);
    let t = seal_key(responder)
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &mac1, body)
        .map_err(|_| HandshakeError::Setup)?;
    tag.copy_from_slice(&t);
    Ok(out)
}

/// The receiver index of a cookie reply: the sender index of the initiation it answers.
pub fn receiver_index(reply: &[u8]) -> Option<u32> {
    reply
        .get(4..)
        .and_then(|r| r.first_chunk::<4>())
        .map(|b| u32::from_be_bytes(*b))
}

/// Opens a cookie reply from the responder whose public key is `responder` to the
/// initiation whose sender index is `index` and mac1 `mac1`: the cookie.
pub fn open(
    responder: &[u8; KEY_LEN],
    reply: &[u8],
    index: u32,
    mac1: &[u8; MAC_LEN],
) -> Result<Cookie, HandshakeError> {
    if reply.len() != COOKIE_REPLY_LEN {
        return Err(HandshakeError::BadLength);
    }
    match reply {
        [v, ..] if *v != VERSION => return Err(HandshakeError::BadVersion),
        [_, t, ..] if *t != TYPE_COOKIE => return Err(HandshakeError::BadType),
        // The reserved bytes are not sealed: anything but zero is refused.
        [_, _, 0, 0, ..] => {}
        _ => return Err(HandshakeError::BadMac),
    }
    if receiver_index(reply) != Some(index) {
        return Err(HandshakeError::WrongReceiver);
    }
    let nonce = reply
        .get(NONCE_AT..SEALED_AT)
        .ok_or(HandshakeError::BadLength)?;
    let mut cookie: Cookie = reply
        .get(SEALED_AT..SEALED_AT + COOKIE_LEN)
        .and_then(|c| c.try_into().ok())
        .ok_or(HandshakeError::BadLength)?;
    let tag = reply
        .get(SEALED_AT + COOKIE_LEN..)
        .ok_or(HandshakeError::BadLength)?;
    seal_key(responder)
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            mac1,
            &mut cookie,
            Tag::from_slice(tag),
        )
        .map_err(|_| HandshakeError::BadMac)?;
    Ok(cookie)
}

/// mac2 under `cookie` of `covered` (the message up to mac2).
fn mac2(cookie: &Cookie, covered: &[u8]) -> Result<Blake2sMac<U16>, HandshakeError> {
    Blake2sMac::<U16>::new_from_slice(cookie)
        .map(|m| m.chain_update(covered))
        .map_err(|_| HandshakeError::Setup)
}

/// Writes mac2 under `cookie` into the last [`MAC_LEN`] bytes of `msg`.
pub fn write_mac2(cookie: &Cookie, msg: &mut [u8]) -> Result<(), HandshakeError> {
    let at = msg
        .len()
        .checked_sub(MAC_LEN)
        .ok_or(HandshakeError::Setup)?;
    let (covered, tag) = msg.split_at_mut(at);
    let m = mac2(cookie, covered)?.finalize().into_bytes();
    tag.copy_from_slice(&m);
    Ok(())
}

/// Verifies (in constant time) that `msg` ends in its mac2 under `cookie`.
pub fn check_mac2(cookie: &Cookie, msg: &[u8]) -> Result<(), HandshakeError> {
    let at = msg
        .len()
        .checked_sub(MAC_LEN)
        .ok_or(HandshakeError::BadLength)?;
    let (covered, tag) = msg.split_at(at);
    mac2(cookie, covered)?
        .verify_slice(tag)
        .map_err(|_| HandshakeError::BadMac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::handshake::{Initiator, Responder, StaticKeys};
    use crate::tunnel::{Cipher, CipherSet};
    use std::net::Ipv4Addr;

    const S: u64 = 1_000_000_000;
    const BOTH: CipherSet = CipherSet::EMPTY
        .with(Cipher::ChaCha20Poly1305)
        .with(Cipher::Aes256Gcm);

    fn edge() -> StaticKeys {
        StaticKeys::from_private([0x11; KEY_LEN])
    }

    fn hub() -> StaticKeys {
        StaticKeys::from_private([0x22; KEY_LEN])
    }

    fn src(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 11, 2), port)
    }

    fn start(index: u32) -> (Initiator, Vec<u8>) {
        Initiator::start(&edge(), &hub().public(), &[0; KEY_LEN], BOTH, index, 1).unwrap()
    }

    #[test]
    fn the_cookie_reply_round_trip() {
        let secret = CookieSecret::from_seed(7);
        let nonces = Nonces::from_seed(7);
        let (mut initiator, init) = start(0x0102_0304);
        let cookie = secret.cookie(5 * S, src(7420));
        let r = reply(&hub().public(), &cookie, &init, nonces.next()).unwrap();
        assert_eq!(r.len(), COOKIE_REPLY_LEN);
        assert_eq!(COOKIE_REPLY_LEN, 2 + 2 + 4 + 24 + 16 + 16);
        assert_eq!(r[..8], [3, 7, 0, 0, 1, 2, 3, 4]);
        assert_eq!(receiver_index(&r), Some(0x0102_0304));
        // The cookie does not show.
        assert!(!r.windows(COOKIE_LEN).any(|w| w == cookie));
        let got = open(&hub().public(), &r, 0x0102_0304, &initiator.mac1()).unwrap();
        assert_eq!(got, cookie);
        // The initiation with mac2: the responder checks it when asked to.
        let with = initiator.set_cookie(&got).unwrap();
        assert_eq!(
            with[..INITIATION_LEN - MAC_LEN],
            init[..INITIATION_LEN - MAC_LEN]
        );
        assert!(check_mac2(&cookie, &with).is_ok());
        assert_eq!(check_mac2(&cookie, &init), Err(HandshakeError::BadMac));
        let responder = Responder::new(hub(), BOTH);
        let psk = |_: &[u8; KEY_LEN]| Some([0; KEY_LEN]);
        assert!(responder.respond_with(&with, 9, Some(&cookie), psk).is_ok());
        assert_eq!(
            responder.respond_with(&init, 9, Some(&cookie), psk).err(),
            Some(HandshakeError::BadMac)
        );
        // Without a cookie to check, mac2 is not looked at.
        assert!(responder.respond(&with, 9, psk).is_ok());
        // mac2 as specified: BLAKE2s-128 keyed with the cookie over the message up to it.
        let mut m = Blake2sMac::<U16>::new_from_slice(&cookie).unwrap();
        m.update(&with[..INITIATION_LEN - MAC_LEN]);
        assert_eq!(
            m.finalize().into_bytes()[..],
            with[INITIATION_LEN - MAC_LEN..]
        );
    }

    #[test]
    fn any_flipped_bit_in_a_cookie_reply_is_refused() {
        let (initiator, init) = start(9);
        let cookie = CookieSecret::from_seed(1).cookie(S, src(1));
        let r = reply(&hub().public(), &cookie, &init, Nonces::from_seed(1).next()).unwrap();
        for bit in 0..COOKIE_REPLY_LEN * 8 {
            let mut m = r;
            m[bit / 8] ^= 1 << (bit % 8);
            assert!(
                open(&hub().public(), &m, 9, &initiator.mac1()).is_err(),
                "bit {bit}"
            );
        }
        assert!(open(&hub().public(), &r, 9, &initiator.mac1()).is_ok());
    }

    #[test]
    fn a_reply_for_another_initiation_or_responder_is_refused() {
        let (initiator, init) = start(9);
        let (other, _) = start(9);
        let cookie = CookieSecret::from_seed(1).cookie(S, src(1));
        let r = reply(&hub().public(), &cookie, &init, [3; NONCE_LEN]).unwrap();
        // Another mac1 as associated data: refused.
        assert_eq!(
            open(&hub().public(), &r, 9, &other.mac1()),
            Err(HandshakeError::BadMac)
        );
        // Sealed by another responder key.
        let forged = reply(&edge().public(), &cookie, &init, [3; NONCE_LEN]).unwrap();
        assert_eq!(
            open(&hub().public(), &forged, 9, &initiator.mac1()),
            Err(HandshakeError::BadMac)
        );
        assert_eq!(
            open(&hub().public(), &r, 10, &initiator.mac1()),
            Err(HandshakeError::WrongReceiver)
        );
        assert_eq!(
            open(&hub().public(), &r[1..], 9, &initiator.mac1()),
            Err(HandshakeError::BadLength)
        );
        assert_eq!(
            reply(&hub().public(), &cookie, &init[1..], [3; NONCE_LEN]).err(),
            Some(HandshakeError::BadLength)
        );
    }

    #[test]
    fn a_cookie_is_for_one_source_and_one_period() {
        let secret = CookieSecret::from_seed(7);
        let (mut initiator, _) = start(9);
        let ok = initiator.set_cookie(&secret.cookie(S, src(7420))).unwrap();
        let check = |now, from| check_mac2(&secret.cookie(now, from), &ok);
        assert!(check(S, src(7420)).is_ok());
        // The same period: still good.
        assert!(check(ROTATE_NS - 1, src(7420)).is_ok());
        // Another port, another address: refused.
        assert!(check(S, src(7421)).is_err());
        let elsewhere = SocketAddrV4::new(Ipv4Addr::new(198, 18, 12, 2), 7420);
        assert!(check(S, elsewhere).is_err());
        // After the secret rotated: refused.
        assert!(check(ROTATE_NS, src(7420)).is_err());
        assert!(check(ROTATE_NS + S, src(7420)).is_err());
        // Another responder secret: refused.
        let other = CookieSecret::from_seed(8);
        assert!(check_mac2(&other.cookie(S, src(7420)), &ok).is_err());
        const { assert!(COOKIE_KEEP_NS < ROTATE_NS) };
    }

    #[test]
    fn nonces_do_not_repeat_and_depend_on_the_seed() {
        let a = Nonces::from_seed(1);
        let seen: std::collections::HashSet<_> = (0..1000).map(|_| a.next()).collect();
        assert_eq!(seen.len(), 1000);
        assert!(!seen.contains(&Nonces::from_seed(2).next()));
        assert_eq!(format!("{a:?}"), "Nonces(..)");
        assert_eq!(
            format!("{:?}", CookieSecret::from_seed(1)),
            "CookieSecret(..)"
        );
    }
}
