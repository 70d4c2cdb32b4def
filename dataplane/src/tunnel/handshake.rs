//! The tunnel's handshake (docs/PROTOCOL.md): `Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s`
//! through `snow`, framed as the type 5 initiation and type 6 response, each with its mac1.
//! Pure: no I/O, no clock, no peer table; the caller says whether the initiator's static key
//! belongs to a configured peer, and with which pre-shared key.
//!
//! mac2 (`super::cookie`): the initiator writes it once it holds a cookie
//! ([`Initiator::set_cookie`]); the responder checks it when asked to
//! ([`Responder::respond_with`]), that is when it is under load. A response's mac2 is zero.

use std::fmt;

use blake2::digest::consts::U16;
use blake2::digest::{Digest, Mac};
use blake2::{Blake2s256, Blake2sMac};
use snow::{Builder, HandshakeState};
use x25519_dalek::{PublicKey, StaticSecret};

use super::cipher::{Cipher, CipherSet, SessionKey};
use super::cookie::{self, Cookie};
pub use super::handshake_msg::{
    HandshakeError, INITIATION_LEN, KEY_LEN, MAC_LEN, RESPONSE_LEN, TYPE_INITIATION, TYPE_RESPONSE,
    VERSION,
};
use super::handshake_msg::{INIT_NOISE_AT, INIT_NOISE_LEN, RESP_NOISE_AT, RESP_NOISE_LEN};

/// The Noise protocol of the handshake.
const NOISE_PARAMS: &str = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/// The Noise prologue.
const PROLOGUE: &[u8] = b"braid tunnel v3";
/// The label of mac1's key.
const MAC1_LABEL: &[u8] = b"mac1----";

/// This end's static X25519 key pair; the private key is zeroed on drop.
#[derive(Clone)]
pub struct StaticKeys {
    private: StaticSecret,
    public: [u8; KEY_LEN],
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticKeys(..)")
    }
}

impl StaticKeys {
    /// A new random key pair.
    pub fn generate() -> Result<StaticKeys, HandshakeError> {
        let pair = Builder::new(params()?)
            .generate_keypair()
            .map_err(|_| HandshakeError::Setup)?;
        let private: [u8; KEY_LEN] = pair
            .private
            .as_slice()
            .try_into()
            .map_err(|_| HandshakeError::Setup)?;
        let public = pair
            .public
            .as_slice()
            .try_into()
            .map_err(|_| HandshakeError::Setup)?;
        Ok(StaticKeys {
            private: StaticSecret::from(private),
            public,
        })
    }

    /// The pair of an existing private key.
    pub fn from_private(private: [u8; KEY_LEN]) -> StaticKeys {
        let private = StaticSecret::from(private);
        let public = PublicKey::from(&private).to_bytes();
        StaticKeys { private, public }
    }

    /// The public key.
    pub fn public(&self) -> [u8; KEY_LEN] {
        self.public
    }
}

/// An established session: the chosen cipher, a key per direction and both indices.
#[derive(Debug, Clone)]
pub struct Session {
    /// The cipher both keys use.
    pub cipher: Cipher,
    /// Seals what this end sends.
    pub send: SessionKey,
    /// Opens what this end receives.
    pub recv: SessionKey,
    /// This end's index of the session: the receiver index of the messages it receives.
    pub local_index: u32,
    /// The peer's index: the receiver index of the messages this end sends.
    pub remote_index: u32,
    /// The peer's static public key.
    pub peer_static: [u8; KEY_LEN],
}

/// A handshake this end started, waiting for its response.
pub struct Initiator {
    state: HandshakeState,
    public: [u8; KEY_LEN],
    their_public: [u8; KEY_LEN],
    offer: CipherSet,
    sender_index: u32,
    /// The initiation as last sent (with mac2 once a cookie was set).
    msg: Vec<u8>,
    /// The cookie the initiation's mac2 is under.
    cookie: Option<Cookie>,
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("offer", &self.offer)
            .field("sender_index", &self.sender_index)
            .finish_non_exhaustive()
    }
}

impl Initiator {
    /// Starts a handshake with the peer whose public key is `their_public`: the initiation to
    /// send on link `link`, offering `offer`, and the state that waits for its response.
    pub fn start(
        ours: &StaticKeys,
        their_public: &[u8; KEY_LEN],
        psk: &[u8; KEY_LEN],
        offer: CipherSet,
        sender_index: u32,
        link: u8,
    ) -> Result<(Initiator, Vec<u8>), HandshakeError> {
        let mut state = Builder::new(params()?)
            .local_private_key(ours.private.as_bytes())
            .remote_public_key(their_public)
            .psk(2, psk)
            .prologue(PROLOGUE)
            .build_initiator()
            .map_err(|_| HandshakeError::Setup)?;
        let mut msg = vec![0u8; INITIATION_LEN];
        let (head, rest) = msg.split_at_mut(INIT_NOISE_AT);
        head.copy_from_slice(&header(TYPE_INITIATION, link, sender_index));
        let noise = rest
            .get_mut(..INIT_NOISE_LEN)
            .ok_or(HandshakeError::Setup)?;
        let n = state
            .write_message(&[offer.bits()], noise)
            .map_err(|_| HandshakeError::Setup)?;
        if n != INIT_NOISE_LEN {
            return Err(HandshakeError::Setup);
        }
        write_mac1(&mut msg, their_public)?;
        let initiator = Initiator {
            state,
            public: ours.public,
            their_public: *their_public,
            offer,
            sender_index,
            msg: msg.clone(),
            cookie: None,
        };
        Ok((initiator, msg))
    }

    /// The initiation's mac1: a cookie reply to it is sealed with it as associated data.
    pub fn mac1(&self) -> [u8; MAC_LEN] {
        cookie::mac1_of(&self.msg).unwrap_or([0; MAC_LEN])
    }

    /// The link id the initiation names.
    pub fn link(&self) -> u8 {
        self.msg.get(2).copied().unwrap_or(0)
    }

    /// The responder's public key.
    pub fn their_public(&self) -> &[u8; KEY_LEN] {
        &self.their_public
    }

    /// The cookie the initiation's mac2 is under, if one was set.
    pub fn cookie(&self) -> Option<&Cookie> {
        self.cookie.as_ref()
    }

    /// Puts mac2 under `cookie` on the initiation (the same handshake: the Noise message
    /// and mac1 stay), and returns it to send.
    pub fn set_cookie(&mut self, cookie: &Cookie) -> Result<Vec<u8>, HandshakeError> {
        cookie::write_mac2(cookie, &mut self.msg)?;
        self.cookie = Some(*cookie);
        Ok(self.msg.clone())
    }

    /// Checks what a response can be checked for without the Noise message: length, type,
    /// that it names this initiation, its mac1 (only who knows this end's public key can
    /// make it) and a zero mac2. A response that fails here leaves the handshake waiting.
    pub fn check(&self, response: &[u8]) -> Result<(), HandshakeError> {
        check_frame(response, RESPONSE_LEN, TYPE_RESPONSE)?;
        if read_u32(response, 8)? != self.sender_index {
            return Err(HandshakeError::WrongReceiver);
        }
        check_mac1(response, &self.public)?;
        // The responder never holds a cookie of ours: its mac2 is zero.
        if response
            .get(RESPONSE_LEN - MAC_LEN..)
            .is_none_or(|m| m.iter().any(|&b| b != 0))
        {
            return Err(HandshakeError::BadMac);
        }
        Ok(())
    }

    /// Reads the response ([`Initiator::check`] first): the session, sending with the
    /// split's first key.
    pub fn finish(mut self, response: &[u8]) -> Result<Session, HandshakeError> {
        self.check(response)?;
        let remote_index = read_u32(response, 4)?;
        let noise = response
            .get(RESP_NOISE_AT..RESP_NOISE_AT + RESP_NOISE_LEN)
            .ok_or(HandshakeError::BadLength)?;
        let mut payload = [0u8; RESP_NOISE_LEN];
        let n = self
            .state
            .read_message(noise, &mut payload)
            .map_err(|_| HandshakeError::BadNoise)?;
        let cipher = match payload.get(..n) {
            Some(&[code]) => Cipher::from_code(code),
            _ => None,
        }
        .filter(|&c| self.offer.contains(c))
        .ok_or(HandshakeError::NoCommonCipher)?;
        let (to_responder, to_initiator) = self.state.dangerously_get_raw_split();
        Ok(Session {
            cipher,
            send: SessionKey::new(cipher, &to_responder),
            recv: SessionKey::new(cipher, &to_initiator),
            local_index: self.sender_index,
            remote_index,
            peer_static: self.their_public,
        })
    }
}

/// The answering end: its keys and its offer.
pub struct Responder {
    keys: StaticKeys,
    offer: CipherSet,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("offer", &self.offer)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// A responder with this end's keys and its offer.
    pub fn new(ours: StaticKeys, offer: CipherSet) -> Responder {
        Responder { keys: ours, offer }
    }

    /// Checks what an initiation is refused by before anything else: length, version, type
    /// and mac1 (one keyed BLAKE2s, no Diffie-Hellman).
    pub fn check_mac1(&self, msg: &[u8]) -> Result<(), HandshakeError> {
        check_frame(msg, INITIATION_LEN, TYPE_INITIATION)?;
        check_mac1(msg, &self.keys.public)
    }

    /// Answers an initiation without looking at its mac2: [`Responder::respond_with`]
    /// with no cookie.
    pub fn respond(
        &self,
        msg: &[u8],
        receiver_index: u32,
        psk_of: impl FnOnce(&[u8; KEY_LEN]) -> Option<[u8; KEY_LEN]>,
    ) -> Result<(Vec<u8>, Session), HandshakeError> {
        self.respond_with(msg, receiver_index, None, psk_of)
    }

    /// Answers an initiation: the response to send (on the initiation's link) and the session,
    /// numbered `receiver_index` here and sending with the split's second key. Length, version,
    /// type and mac1, and mac2 under `cookie` when one is given (the responder is under load),
    /// are checked before any Diffie-Hellman; without a cookie mac2 is not looked at. `psk_of` gives the pre-shared key
    /// (all zero when none is configured) of the peer whose static key the initiation carries,
    /// or None when that key is no peer's. The PSK is mixed in at the response (`psk2`): a wrong
    /// one shows only when the initiator reads it, so the session is to be used only once a
    /// data-class message opens under it.
    pub fn respond_with(
        &self,
        msg: &[u8],
        receiver_index: u32,
        cookie: Option<&Cookie>,
        psk_of: impl FnOnce(&[u8; KEY_LEN]) -> Option<[u8; KEY_LEN]>,
    ) -> Result<(Vec<u8>, Session), HandshakeError> {
        self.check_mac1(msg)?;
        if let Some(c) = cookie {
            cookie::check_mac2(c, msg)?;
        }
        let link = msg.get(2).copied().ok_or(HandshakeError::BadLength)?;
        let remote_index = read_u32(msg, 4)?;
        let noise = msg
            .get(INIT_NOISE_AT..INIT_NOISE_AT + INIT_NOISE_LEN)
            .ok_or(HandshakeError::BadLength)?;

        let mut state = Builder::new(params()?)
            .local_private_key(self.keys.private.as_bytes())
            .psk(2, &[0; KEY_LEN])
            .prologue(PROLOGUE)
            .build_responder()
            .map_err(|_| HandshakeError::Setup)?;
        let mut payload = [0u8; INIT_NOISE_LEN];
        let n = state
            .read_message(noise, &mut payload)
            .map_err(|_| HandshakeError::BadNoise)?;
        let theirs = match payload.get(..n) {
            Some(&[bits]) => CipherSet::from_bits(bits),
            _ => return Err(HandshakeError::BadNoise),
        };
        let peer_static: [u8; KEY_LEN] = state
            .get_remote_static()
            .and_then(|k| k.try_into().ok())
            .ok_or(HandshakeError::BadNoise)?;
        let psk = psk_of(&peer_static).ok_or(HandshakeError::UnknownPeer)?;
        state.set_psk(2, &psk).map_err(|_| HandshakeError::Setup)?;
        let cipher = CipherSet::choose(self.offer, theirs).ok_or(HandshakeError::NoCommonCipher)?;

        let mut out = vec![0u8; RESPONSE_LEN];
        let (head, rest) = out.split_at_mut(RESP_NOISE_AT);
        let (first, indices) = head.split_at_mut(4);
        first.copy_from_slice(&[VERSION, TYPE_RESPONSE, link, 0]);
        let (sender, receiver) = indices.split_at_mut(4);
        sender.copy_from_slice(&receiver_index.to_be_bytes());
        receiver.copy_from_slice(&remote_index.to_be_bytes());
        let noise_out = rest
            .get_mut(..RESP_NOISE_LEN)
            .ok_or(HandshakeError::Setup)?;
        let written = state
            .write_message(&[cipher.code()], noise_out)
            .map_err(|_| HandshakeError::Setup)?;
        if written != RESP_NOISE_LEN {
            return Err(HandshakeError::Setup);
        }
        write_mac1(&mut out, &peer_static)?;

        let (to_responder, to_initiator) = state.dangerously_get_raw_split();
        let session = Session {
            cipher,
            send: SessionKey::new(cipher, &to_initiator),
            recv: SessionKey::new(cipher, &to_responder),
            local_index: receiver_index,
            remote_index,
            peer_static,
        };
        Ok((out, session))
    }
}

fn params() -> Result<snow::params::NoiseParams, HandshakeError> {
    NOISE_PARAMS.parse().map_err(|_| HandshakeError::Setup)
}

/// Version, type, link id, reserved, sender index.
fn header(kind: u8, link: u8, sender_index: u32) -> [u8; INIT_NOISE_AT] {
    let [s0, s1, s2, s3] = sender_index.to_be_bytes();
    [VERSION, kind, link, 0, s0, s1, s2, s3]
}

/// The big-endian u32 at `at`.
fn read_u32(msg: &[u8], at: usize) -> Result<u32, HandshakeError> {
    msg.get(at..)
        .and_then(|m| m.first_chunk::<4>())
        .map(|b| u32::from_be_bytes(*b))
        .ok_or(HandshakeError::BadLength)
}

/// Length, version and type.
fn check_frame(msg: &[u8], len: usize, kind: u8) -> Result<(), HandshakeError> {
    if msg.len() != len {
        return Err(HandshakeError::BadLength);
    }
    match msg {
        [v, ..] if *v != VERSION => Err(HandshakeError::BadVersion),
        [_, t, ..] if *t == kind => Ok(()),
        _ => Err(HandshakeError::BadType),
    }
}

/// mac1's keyed BLAKE2s-128, keyed for the receiver whose public key is `receiver`.
fn mac1(receiver: &[u8; KEY_LEN]) -> Result<Blake2sMac<U16>, HandshakeError> {
    let key = Blake2s256::new()
        .chain_update(MAC1_LABEL)
        .chain_update(receiver)
        .finalize();
    Blake2sMac::<U16>::new_from_slice(&key).map_err(|_| HandshakeError::Setup)
}

/// Splits `covered | mac1 | mac2`.
fn split_macs(msg: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (rest, mac2) = msg.split_at_checked(msg.len().checked_sub(MAC_LEN)?)?;
    let (covered, mac1) = rest.split_at_checked(rest.len().checked_sub(MAC_LEN)?)?;
    Some((covered, mac1, mac2))
}

/// Verifies mac1 (in constant time) for the receiver `ours`.
fn check_mac1(msg: &[u8], ours: &[u8; KEY_LEN]) -> Result<(), HandshakeError> {
    let (covered, tag, _) = split_macs(msg).ok_or(HandshakeError::BadLength)?;
    mac1(ours)?
        .chain_update(covered)
        .verify_slice(tag)
        .map_err(|_| HandshakeError::BadMac)
}

/// Writes mac1 for the receiver `theirs` over the message up to it (mac2 stays zero).
fn write_mac1(msg: &mut [u8], theirs: &[u8; KEY_LEN]) -> Result<(), HandshakeError> {
    let at = msg
        .len()
        .checked_sub(2 * MAC_LEN)
        .ok_or(HandshakeError::Setup)?;
    let (covered, macs) = msg.split_at_mut(at);
    let tag = mac1(theirs)?
        .chain_update(&*covered)
        .finalize()
        .into_bytes();
    macs.get_mut(..MAC_LEN)
        .ok_or(HandshakeError::Setup)?
        .copy_from_slice(&tag);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tunnel::{HEADER_LEN, TAG_LEN as DATA_TAG_LEN};
    use proptest::prelude::*;

    const CHACHA: CipherSet = CipherSet::EMPTY.with(Cipher::ChaCha20Poly1305);
    const AES: CipherSet = CipherSet::EMPTY.with(Cipher::Aes256Gcm);
    const BOTH: CipherSet = CHACHA.with(Cipher::Aes256Gcm);
    const PSK: [u8; KEY_LEN] = [0x5a; KEY_LEN];

    fn edge() -> StaticKeys {
        StaticKeys::from_private([0x11; KEY_LEN])
    }

    fn hub() -> StaticKeys {
        StaticKeys::from_private([0x22; KEY_LEN])
    }

    /// The hub's peer table in these tests: the edge, with [`PSK`].
    fn known(key: &[u8; KEY_LEN]) -> Option<[u8; KEY_LEN]> {
        (*key == edge().public()).then_some(PSK)
    }

    fn start(offer: CipherSet, index: u32) -> (Initiator, Vec<u8>) {
        Initiator::start(&edge(), &hub().public(), &PSK, offer, index, 3).unwrap()
    }

    /// A full handshake: the initiator's session, then the responder's.
    fn handshake(ours: CipherSet, theirs: CipherSet) -> Result<(Session, Session), HandshakeError> {
        let (initiator, init) = start(ours, 0x0102_0304);
        let (resp, responder_session) =
            Responder::new(hub(), theirs).respond(&init, 0x0a0b_0c0d, known)?;
        Ok((initiator.finish(&resp)?, responder_session))
    }

    /// A data message sealed with `from`, opened with `to`.
    fn carries(from: &SessionKey, to: &SessionKey) -> bool {
        let mut msg = vec![VERSION, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
        msg.extend_from_slice(b"over the tunnel");
        msg.extend_from_slice(&[0; DATA_TAG_LEN]);
        from.seal(&mut msg).unwrap();
        to.open(&mut msg).is_ok()
            && &msg[HEADER_LEN..msg.len() - DATA_TAG_LEN] == b"over the tunnel"
    }

    #[test]
    fn full_handshake_both_ways() {
        for (offer, cipher) in [(CHACHA, Cipher::ChaCha20Poly1305), (AES, Cipher::Aes256Gcm)] {
            let (i, r) = handshake(offer, BOTH).unwrap();
            assert_eq!((i.cipher, r.cipher), (cipher, cipher));
            assert_eq!((i.send.cipher(), i.recv.cipher()), (cipher, cipher));
            assert_eq!((i.local_index, i.remote_index), (0x0102_0304, 0x0a0b_0c0d));
            assert_eq!((r.local_index, r.remote_index), (0x0a0b_0c0d, 0x0102_0304));
            assert_eq!(i.peer_static, hub().public());
            assert_eq!(r.peer_static, edge().public());
            assert!(carries(&i.send, &r.recv));
            assert!(carries(&r.send, &i.recv));
            // Each direction has its own key.
            assert!(!carries(&i.send, &i.recv));
            assert!(!carries(&r.send, &r.recv));
        }
    }

    #[test]
    fn every_handshake_has_new_keys() {
        let (a, _) = handshake(CHACHA, CHACHA).unwrap();
        let (_, b) = handshake(CHACHA, CHACHA).unwrap();
        assert!(!carries(&a.send, &b.recv));
    }

    #[test]
    fn cipher_choice_follows_the_offers() {
        let sets = [CipherSet::EMPTY, CHACHA, AES, BOTH];
        for ours in sets {
            for theirs in sets {
                let got = handshake(ours, theirs).map(|(i, r)| {
                    assert_eq!(i.cipher, r.cipher);
                    i.cipher
                });
                match CipherSet::choose(ours, theirs) {
                    Some(c) => assert_eq!(got, Ok(c), "{ours:?} {theirs:?}"),
                    None => assert_eq!(got.err(), Some(HandshakeError::NoCommonCipher)),
                }
            }
        }
        assert_eq!(handshake(BOTH, BOTH).unwrap().0.cipher, Cipher::Aes256Gcm);
        assert_eq!(
            handshake(BOTH, CHACHA).unwrap().0.cipher,
            Cipher::ChaCha20Poly1305
        );
        assert_eq!(
            handshake(CHACHA, BOTH).unwrap().0.cipher,
            Cipher::ChaCha20Poly1305
        );
    }

    #[test]
    fn lengths_and_golden_header_bytes() {
        assert_eq!(INITIATION_LEN, 2 + 1 + 1 + 4 + 32 + 48 + 17 + 16 + 16);
        assert_eq!(RESPONSE_LEN, 2 + 1 + 1 + 4 + 4 + 32 + 17 + 16 + 16);
        let (initiator, init) = start(BOTH, 0xdead_beef);
        assert_eq!(init.len(), INITIATION_LEN);
        assert_eq!(init[..8], [3, 5, 3, 0, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(init[INITIATION_LEN - MAC_LEN..], [0; MAC_LEN]);
        let (resp, _) = Responder::new(hub(), BOTH)
            .respond(&init, 0x0123_4567, known)
            .unwrap();
        assert_eq!(resp.len(), RESPONSE_LEN);
        assert_eq!(
            resp[..12],
            [3, 6, 3, 0, 0x01, 0x23, 0x45, 0x67, 0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(resp[RESPONSE_LEN - MAC_LEN..], [0; MAC_LEN]);
        // mac1 as specified: keyed BLAKE2s-128 under BLAKE2s-256("mac1----" | receiver key).
        for (msg, receiver) in [(&init, hub().public()), (&resp, edge().public())] {
            let key = Blake2s256::digest([&b"mac1----"[..], &receiver].concat());
            let mut mac = Blake2sMac::<U16>::new_from_slice(&key).unwrap();
            mac.update(&msg[..msg.len() - 2 * MAC_LEN]);
            let at = msg.len() - 2 * MAC_LEN;
            assert_eq!(mac.finalize().into_bytes()[..], msg[at..at + MAC_LEN]);
        }
        initiator.finish(&resp).unwrap();
    }

    #[test]
    fn wrong_responder_key_is_refused_by_mac1() {
        let (_, init) = Initiator::start(&edge(), &edge().public(), &PSK, BOTH, 1, 0).unwrap();
        let responder = Responder::new(hub(), BOTH);
        assert_eq!(
            responder.respond(&init, 2, known).err(),
            Some(HandshakeError::BadMac)
        );
        // A valid mac1 over garbage gets as far as the Noise message.
        let mut garbage = vec![0x77; INITIATION_LEN];
        garbage[..2].copy_from_slice(&[VERSION, TYPE_INITIATION]);
        garbage[INITIATION_LEN - MAC_LEN..].fill(0);
        write_mac1(&mut garbage, &hub().public()).unwrap();
        assert_eq!(
            responder.respond(&garbage, 2, known).err(),
            Some(HandshakeError::BadNoise)
        );
        // The responder is unchanged: the real initiation is still answered.
        let (_, init) = start(BOTH, 1);
        assert!(responder.respond(&init, 2, known).is_ok());
    }

    #[test]
    fn psk_must_match() {
        // psk2 mixes the PSK in at the response: the responder answers, the initiator refuses.
        let (initiator, init) = start(BOTH, 1);
        let (resp, _) = Responder::new(hub(), BOTH)
            .respond(&init, 2, |_| Some([0; KEY_LEN]))
            .unwrap();
        assert_eq!(
            initiator.finish(&resp).err(),
            Some(HandshakeError::BadNoise)
        );
    }

    #[test]
    fn an_initiator_that_is_no_peer_is_refused() {
        let stranger = StaticKeys::from_private([0x33; KEY_LEN]);
        let (_, init) = Initiator::start(&stranger, &hub().public(), &PSK, BOTH, 1, 0).unwrap();
        let mut asked = None;
        let refused = Responder::new(hub(), BOTH).respond(&init, 2, |k| {
            asked = Some(*k);
            known(k)
        });
        assert_eq!(refused.err(), Some(HandshakeError::UnknownPeer));
        // The lookup was asked about the stranger's key, read from the Noise message.
        assert_eq!(asked, Some(stranger.public()));
    }

    #[test]
    fn any_flipped_bit_in_the_initiation_is_refused() {
        let (mut initiator, init) = start(BOTH, 7);
        let responder = Responder::new(hub(), BOTH);
        for bit in 0..init.len() * 8 {
            let mut msg = init.clone();
            msg[bit / 8] ^= 1 << (bit % 8);
            // Without a cookie to check, mac2 is not looked at.
            let in_mac2 = bit / 8 >= INITIATION_LEN - MAC_LEN;
            let got = responder.respond(&msg, 8, known);
            assert_eq!(got.is_ok(), in_mac2, "bit {bit}");
        }
        assert!(responder.respond(&init, 8, known).is_ok());
        // With mac2 under a cookie and the responder asking for it: every bit counts.
        let cookie = [0x42; cookie::COOKIE_LEN];
        let init = initiator.set_cookie(&cookie).unwrap();
        for bit in 0..init.len() * 8 {
            let mut msg = init.clone();
            msg[bit / 8] ^= 1 << (bit % 8);
            let got = responder.respond_with(&msg, 8, Some(&cookie), known);
            assert!(got.is_err(), "bit {bit}");
        }
        assert!(responder
            .respond_with(&init, 8, Some(&cookie), known)
            .is_ok());
        assert_eq!(initiator.cookie(), Some(&cookie));
    }

    #[test]
    fn any_flipped_bit_in_the_response_is_refused() {
        let responder = Responder::new(hub(), BOTH);
        for bit in 0..RESPONSE_LEN * 8 {
            let (initiator, init) = start(BOTH, 7);
            let (mut resp, _) = responder.respond(&init, 8, known).unwrap();
            resp[bit / 8] ^= 1 << (bit % 8);
            assert!(initiator.finish(&resp).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn a_response_from_another_handshake_is_refused() {
        let responder = Responder::new(hub(), BOTH);
        let (first, init) = start(BOTH, 7);
        let (second, _) = start(BOTH, 7);
        let (third, _) = start(BOTH, 9);
        let (resp, _) = responder.respond(&init, 8, known).unwrap();
        assert_eq!(second.finish(&resp).err(), Some(HandshakeError::BadNoise));
        assert_eq!(
            third.finish(&resp).err(),
            Some(HandshakeError::WrongReceiver)
        );
        assert!(first.finish(&resp).is_ok());
    }

    #[test]
    fn wrong_framing_is_refused() {
        let (initiator, init) = start(BOTH, 7);
        let responder = Responder::new(hub(), BOTH);
        let (resp, _) = responder.respond(&init, 8, known).unwrap();
        assert_eq!(
            responder.respond(&resp, 8, known).err(),
            Some(HandshakeError::BadLength)
        );
        assert_eq!(
            responder
                .respond(&init[..INITIATION_LEN - 1], 8, known)
                .err(),
            Some(HandshakeError::BadLength)
        );
        let mut v1 = init.clone();
        v1[0] = 1;
        assert_eq!(
            responder.respond(&v1, 8, known).err(),
            Some(HandshakeError::BadVersion)
        );
        let mut t = init.clone();
        t[1] = TYPE_RESPONSE;
        assert_eq!(
            responder.respond(&t, 8, known).err(),
            Some(HandshakeError::BadType)
        );
        let mut long = resp.clone();
        long.push(0);
        assert_eq!(
            initiator.finish(&long).err(),
            Some(HandshakeError::BadLength)
        );
    }

    #[test]
    fn keys_and_debug() {
        let generated = StaticKeys::generate().unwrap();
        assert_eq!(
            StaticKeys::from_private(generated.private.to_bytes()).public(),
            generated.public()
        );
        assert_ne!(generated.public(), StaticKeys::generate().unwrap().public());
        assert_eq!(format!("{generated:?}"), "StaticKeys(..)");
        let (initiator, _) = start(BOTH, 7);
        assert_eq!(
            format!("{initiator:?}"),
            "Initiator { offer: CipherSet(3), sender_index: 7, .. }"
        );
        assert_eq!(
            format!("{:?}", Responder::new(hub(), BOTH)),
            "Responder { offer: CipherSet(3), .. }"
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..160),
            framed: bool,
        ) {
            let mut bytes = bytes;
            if framed && bytes.len() >= 2 {
                bytes[0] = VERSION;
                bytes[1] = TYPE_INITIATION;
            }
            let _ = Responder::new(hub(), BOTH).respond(&bytes, 1, known);
            if framed && bytes.len() >= 2 {
                bytes[1] = TYPE_RESPONSE;
            }
            let (initiator, _) = start(BOTH, 1);
            let _ = initiator.finish(&bytes);
        }

        #[test]
        fn random_bodies_with_valid_mac1_are_refused(
            body in proptest::collection::vec(any::<u8>(), INITIATION_LEN),
        ) {
            let mut msg = body;
            msg[..2].copy_from_slice(&[VERSION, TYPE_INITIATION]);
            msg[INITIATION_LEN - MAC_LEN..].fill(0);
            write_mac1(&mut msg, &hub().public()).unwrap();
            prop_assert!(Responder::new(hub(), BOTH).respond(&msg, 1, known).is_err());
        }

        #[test]
        fn random_responses_with_valid_mac1_are_refused(
            body in proptest::collection::vec(any::<u8>(), RESPONSE_LEN),
        ) {
            let (initiator, _) = start(BOTH, 0x0102_0304);
            let mut msg = body;
            msg[..2].copy_from_slice(&[VERSION, TYPE_RESPONSE]);
            msg[8..12].copy_from_slice(&0x0102_0304u32.to_be_bytes());
            msg[RESPONSE_LEN - MAC_LEN..].fill(0);
            write_mac1(&mut msg, &edge().public()).unwrap();
            prop_assert_eq!(initiator.finish(&msg).err(), Some(HandshakeError::BadNoise));
        }
    }
}
