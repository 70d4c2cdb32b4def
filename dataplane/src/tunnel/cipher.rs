//! The data cipher of the tunnel (docs/PROTOCOL.md): the AEADs a session may use, the choice
//! between them, and one direction's key sealing and opening data-class messages in place.

use std::fmt;

use ring::aead::{
    Aad, Algorithm, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, CHACHA20_POLY1305,
};

use super::{TunnelError, HEADER_LEN};

/// Length of the AEAD tag that ends every data-class message.
pub const TAG_LEN: usize = 16;

/// Length of the AEAD nonce.
pub const NONCE_LEN: usize = 12;

/// A data message's plaintext (bond sequence and packet) is followed by zero bytes up to a
/// multiple of this, the AES block: `ring`'s AES-256-GCM seals a 64-byte frame's packet
/// padded so in two thirds of the time it takes unpadded, and opens it in four fifths
/// (benches/RESULTS.md, "Data padded to whole blocks"); the packet's own IPv4 length tells
/// the receiver where it ends.
pub const PAD_TO: usize = 16;

/// The padded length of a data message's `len`-byte plaintext where at most `limit` bytes
/// fit: `len` up to a multiple of [`PAD_TO`], or `len` itself when that would pass `limit`
/// (a padding short of the block saves no time, only bytes).
#[inline]
pub fn padded_len(len: usize, limit: usize) -> usize {
    let whole = len.next_multiple_of(PAD_TO);
    if whole <= limit {
        whole
    } else {
        len
    }
}

/// A lane's counter must stay below this (the initiator rekeys long before).
pub const COUNTER_LIMIT: u64 = 1 << 60;

/// An AEAD a session may use; both take 32-byte keys, 96-bit nonces and 16-byte tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// ChaCha20-Poly1305 (RFC 8439): fast everywhere.
    ChaCha20Poly1305,
    /// AES-256-GCM: faster where the CPU has AES and carry-less multiplication instructions.
    Aes256Gcm,
}

impl Cipher {
    /// Every cipher, in wire-bit order.
    pub const ALL: [Cipher; 2] = [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm];

    /// The wire code: its bit in an offer (bit 0 ChaCha20-Poly1305, bit 1 AES-256-GCM), also
    /// the byte that names the chosen cipher in the handshake response.
    pub const fn code(self) -> u8 {
        match self {
            Cipher::ChaCha20Poly1305 => 1 << 0,
            Cipher::Aes256Gcm => 1 << 1,
        }
    }

    /// The cipher a response names; `None` for anything but exactly one known bit.
    pub const fn from_code(code: u8) -> Option<Cipher> {
        match code {
            0b01 => Some(Cipher::ChaCha20Poly1305),
            0b10 => Some(Cipher::Aes256Gcm),
            _ => None,
        }
    }

    /// The cipher's name as braidctl shows it.
    pub const fn name(self) -> &'static str {
        match self {
            Cipher::ChaCha20Poly1305 => "chacha20-poly1305",
            Cipher::Aes256Gcm => "aes-256-gcm",
        }
    }

    fn algorithm(self) -> &'static Algorithm {
        match self {
            Cipher::ChaCha20Poly1305 => &CHACHA20_POLY1305,
            Cipher::Aes256Gcm => &AES_256_GCM,
        }
    }
}

/// The ciphers one end offers: the bitmask of their [`Cipher::code`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CipherSet(u8);

impl CipherSet {
    /// No cipher.
    pub const EMPTY: CipherSet = CipherSet(0);

    /// The set an offer carries; bits of unknown ciphers are ignored.
    pub const fn from_bits(bits: u8) -> CipherSet {
        CipherSet(bits & (Cipher::ChaCha20Poly1305.code() | Cipher::Aes256Gcm.code()))
    }

    /// The offer's byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// This set and `cipher`.
    pub const fn with(self, cipher: Cipher) -> CipherSet {
        CipherSet(self.0 | cipher.code())
    }

    /// Whether `cipher` is in the set.
    pub const fn contains(self, cipher: Cipher) -> bool {
        self.0 & cipher.code() != 0
    }

    /// What this CPU runs fast: ChaCha20-Poly1305 always, AES-256-GCM on x86_64 with the AES
    /// and PCLMULQDQ instructions.
    pub fn local() -> CipherSet {
        let chacha = CipherSet::EMPTY.with(Cipher::ChaCha20Poly1305);
        if aes_is_fast() {
            chacha.with(Cipher::Aes256Gcm)
        } else {
            chacha
        }
    }

    /// The cipher of a session between two offers: AES-256-GCM when both offer it, else
    /// ChaCha20-Poly1305 when both offer that, else none.
    pub fn choose(ours: CipherSet, theirs: CipherSet) -> Option<Cipher> {
        let both = CipherSet(ours.0 & theirs.0);
        [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305]
            .into_iter()
            .find(|&c| both.contains(c))
    }
}

#[cfg(target_arch = "x86_64")]
fn aes_is_fast() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(not(target_arch = "x86_64"))]
fn aes_is_fast() -> bool {
    false
}

/// One direction of a session: seals (or opens) the messages sent that way.
#[derive(Clone)]
pub struct SessionKey {
    cipher: Cipher,
    key: LessSafeKey,
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({:?}, ..)", self.cipher)
    }
}

/// The nonce of a message: lane (header byte 3, as 4 bytes big-endian) | counter (header bytes
/// 8..16, big-endian as they are), and the counter.
fn nonce(header: &[u8; HEADER_LEN]) -> ([u8; NONCE_LEN], u64) {
    let [_, _, _, lane, _, _, _, _, counter @ ..] = *header;
    let mut n = [0u8; NONCE_LEN];
    let (lane_part, counter_part) = n.split_at_mut(4);
    lane_part.copy_from_slice(&u32::from(lane).to_be_bytes());
    counter_part.copy_from_slice(&counter);
    (n, u64::from_be_bytes(counter))
}

/// A message's header, body and tag.
type Parts<'a> = (&'a [u8; HEADER_LEN], &'a mut [u8], &'a mut [u8; TAG_LEN]);

/// Splits `header | body | tag`.
fn split(msg: &mut [u8]) -> Result<Parts<'_>, TunnelError> {
    let (header, rest) = msg
        .split_first_chunk_mut::<HEADER_LEN>()
        .ok_or(TunnelError::Truncated)?;
    let (body, tag) = rest
        .split_last_chunk_mut::<TAG_LEN>()
        .ok_or(TunnelError::Truncated)?;
    Ok((header, body, tag))
}

impl SessionKey {
    /// The key of one direction, as the handshake's split gave it.
    pub fn new(cipher: Cipher, key: &[u8; 32]) -> SessionKey {
        let unbound = UnboundKey::new(cipher.algorithm(), key)
            .unwrap_or_else(|_| unreachable!("both ciphers take 32-byte keys"));
        SessionKey {
            cipher,
            key: LessSafeKey::new(unbound),
        }
    }

    /// The cipher of the session.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// msg = header (already written) | plaintext | [`TAG_LEN`] bytes of room. Encrypts the
    /// plaintext in place and writes the tag at the end. Refuses a counter at or above
    /// [`COUNTER_LIMIT`].
    pub fn seal(&self, msg: &mut [u8]) -> Result<(), TunnelError> {
        let (header, body, tag_room) = split(msg)?;
        let (n, counter) = nonce(header);
        if counter >= COUNTER_LIMIT {
            return Err(TunnelError::SequenceExhausted);
        }
        // Unique under this key: one key per session and direction, one counter per lane.
        let tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::from(header), body)
            // The AEADs refuse only bodies of gigabytes, which no frame reaches.
            .map_err(|_| TunnelError::Truncated)?;
        tag_room.copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// msg = header | ciphertext | tag. Verifies and decrypts in place: the plaintext is then
    /// `msg[HEADER_LEN..msg.len() - TAG_LEN]`. On error the body may have been overwritten.
    pub fn open(&self, msg: &mut [u8]) -> Result<(), TunnelError> {
        let (header, body, tag) = split(msg)?;
        let (n, _) = nonce(header);
        self.key
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(n),
                Aad::from(header),
                Tag::from(*tag),
                body,
                0..,
            )
            .map_err(|_| TunnelError::BadTag)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Seals `plaintext` with ring's AEAD under an explicit nonce: ciphertext | tag.
    fn seal_with_nonce(
        cipher: Cipher,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let key = LessSafeKey::new(UnboundKey::new(cipher.algorithm(), key).unwrap());
        let nonce = Nonce::try_assume_unique_for_key(nonce).unwrap();
        let mut buf = plaintext.to_vec();
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut buf)
            .unwrap();
        buf.extend_from_slice(tag.as_ref());
        buf
    }

    /// A data header: version 3, type 1, link 7, `lane`, receiver index, `counter`.
    fn header(lane: u8, counter: u64) -> [u8; HEADER_LEN] {
        let mut h = [
            3, 1, 7, lane, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        h[8..16].copy_from_slice(&counter.to_be_bytes());
        h
    }

    fn message(lane: u8, counter: u64, body: &[u8]) -> Vec<u8> {
        let mut m = header(lane, counter).to_vec();
        m.extend_from_slice(body);
        m.extend_from_slice(&[0; TAG_LEN]);
        m
    }

    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn rfc8439_chacha20_poly1305_vector() {
        // RFC 8439 section 2.8.2, the AEAD_CHACHA20_POLY1305 example.
        let key: Vec<u8> = (0x80..=0x9f).collect();
        let sealed = seal_with_nonce(
            Cipher::ChaCha20Poly1305,
            &key,
            &hex("070000004041424344454647"),
            &hex("50515253c0c1c2c3c4c5c6c7"),
            b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
        );
        let expected = hex(
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
             3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
             92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
             3ff4def08e4b7a9de576d26586cec64b6116
             1ae10b594f09e26a7e902ecbd0600691",
        );
        assert_eq!(sealed, expected);
    }

    #[test]
    fn gcm_spec_aes_256_vector() {
        // McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test case 16:
        // AES-256, 96-bit IV, 60-byte plaintext, 20-byte AAD.
        let sealed = seal_with_nonce(
            Cipher::Aes256Gcm,
            &hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"),
            &hex("cafebabefacedbaddecaf888"),
            &hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
            &hex(
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
                 1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            ),
        );
        let expected = hex(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662
             76fc6ece0f4e1768cddf8853bb2d551b",
        );
        assert_eq!(sealed, expected);
    }

    #[test]
    fn nonce_layout_golden_bytes() {
        let h = header(0xa5, 0x0123_4567_89ab_cdef >> 4);
        let (n, counter) = nonce(&h);
        assert_eq!(n.to_vec(), hex("000000a5 00123456789abcde"));
        assert_eq!(counter, 0x0012_3456_789a_bcde);
        // The sealed message is the AEAD under that nonce with the 16 header bytes as AAD.
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        for cipher in Cipher::ALL {
            let mut msg = message(0xa5, counter, b"braid tunnel v3");
            SessionKey::new(cipher, &key).seal(&mut msg).unwrap();
            let direct = seal_with_nonce(cipher, &key, &n, &h, b"braid tunnel v3");
            assert_eq!(msg[..HEADER_LEN], h);
            assert_eq!(msg[HEADER_LEN..], direct[..]);
        }
    }

    #[test]
    fn round_trips() {
        for cipher in Cipher::ALL {
            let key = SessionKey::new(cipher, &[0x42; 32]);
            for len in [0, 64, 1518] {
                let plain = body(len);
                let mut msg = message(3, 99, &plain);
                key.seal(&mut msg).unwrap();
                assert_eq!(msg[..HEADER_LEN], header(3, 99));
                if len > 0 {
                    assert_ne!(msg[HEADER_LEN..HEADER_LEN + len], plain[..]);
                }
                key.open(&mut msg).unwrap();
                assert_eq!(msg[HEADER_LEN..msg.len() - TAG_LEN], plain[..]);
            }
        }
    }

    #[test]
    fn any_flipped_bit_is_refused() {
        for cipher in Cipher::ALL {
            let key = SessionKey::new(cipher, &[9; 32]);
            let mut sealed = message(1, 5, &body(64));
            key.seal(&mut sealed).unwrap();
            for bit in 0..sealed.len() * 8 {
                let mut msg = sealed.clone();
                msg[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(key.open(&mut msg), Err(TunnelError::BadTag), "bit {bit}");
            }
        }
    }

    #[test]
    fn other_direction_and_other_cipher_are_refused() {
        let sending: [u8; 32] = [1; 32];
        let receiving: [u8; 32] = [2; 32];
        for cipher in Cipher::ALL {
            let mut msg = message(0, 0, b"secret");
            SessionKey::new(cipher, &sending).seal(&mut msg).unwrap();
            let sealed = msg.clone();
            assert_eq!(
                SessionKey::new(cipher, &receiving).open(&mut msg),
                Err(TunnelError::BadTag)
            );
            assert!(!msg.windows(6).any(|w| w == b"secret"));
            let other = Cipher::ALL.into_iter().find(|&c| c != cipher).unwrap();
            let mut msg = sealed;
            assert_eq!(
                SessionKey::new(other, &sending).open(&mut msg),
                Err(TunnelError::BadTag)
            );
        }
    }

    #[test]
    fn counter_limit() {
        for cipher in Cipher::ALL {
            let key = SessionKey::new(cipher, &[3; 32]);
            let mut msg = message(0, COUNTER_LIMIT - 1, b"x");
            assert_eq!(key.seal(&mut msg), Ok(()));
            assert_eq!(key.open(&mut msg), Ok(()));
            for counter in [COUNTER_LIMIT, COUNTER_LIMIT + 1, u64::MAX] {
                let mut msg = message(0, counter, b"x");
                assert_eq!(key.seal(&mut msg), Err(TunnelError::SequenceExhausted));
            }
        }
    }

    #[test]
    fn short_messages_are_truncated() {
        let key = SessionKey::new(Cipher::ChaCha20Poly1305, &[4; 32]);
        for len in 0..HEADER_LEN + TAG_LEN {
            let mut short = vec![0u8; len];
            assert_eq!(key.seal(&mut short), Err(TunnelError::Truncated));
            assert_eq!(key.open(&mut short), Err(TunnelError::Truncated));
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let key = SessionKey::new(Cipher::Aes256Gcm, &[0xab; 32]);
        assert_eq!(format!("{key:?}"), "SessionKey(Aes256Gcm, ..)");
        assert_eq!(key.cipher(), Cipher::Aes256Gcm);
    }

    #[test]
    fn padded_lengths() {
        // (len, limit) -> padded
        for (len, limit, want) in [
            (0, 1436, 0),
            (1, 1436, 16),
            (16, 1436, 16),
            (17, 1436, 32),
            (50, 1436, 64),
            (1424, 1436, 1424),
            (1425, 1436, 1425),
            (1436, 1436, 1436),
            (1440, 1440, 1440),
            (1430, 1430, 1430),
            (1500, 1436, 1500),
        ] {
            assert_eq!(padded_len(len, limit), want, "{len} within {limit}");
        }
    }

    proptest! {
        #[test]
        fn padding_stays_within_a_block_and_the_limit(len in 0usize..70_000, limit in 0usize..70_000) {
            let p = padded_len(len, limit);
            prop_assert!(p >= len);
            prop_assert!(p - len < PAD_TO);
            prop_assert!(p <= limit.max(len));
            prop_assert!(p.is_multiple_of(PAD_TO) || p == len);
        }
    }

    #[test]
    fn codes() {
        assert_eq!(Cipher::ChaCha20Poly1305.code(), 0b01);
        assert_eq!(Cipher::Aes256Gcm.code(), 0b10);
        for c in Cipher::ALL {
            assert_eq!(Cipher::from_code(c.code()), Some(c));
        }
        for code in [0, 0b11, 0b100, 0xff] {
            assert_eq!(Cipher::from_code(code), None);
        }
        assert_eq!(CipherSet::from_bits(0xff).bits(), 0b11);
        assert!(CipherSet::local().contains(Cipher::ChaCha20Poly1305));
    }

    #[test]
    fn choose_table() {
        let none = CipherSet::EMPTY;
        let chacha = none.with(Cipher::ChaCha20Poly1305);
        let aes = none.with(Cipher::Aes256Gcm);
        let both = chacha.with(Cipher::Aes256Gcm);
        let (c, a) = (Some(Cipher::ChaCha20Poly1305), Some(Cipher::Aes256Gcm));
        let sets = [none, chacha, aes, both];
        // expected[ours][theirs]
        let expected = [
            [None, None, None, None],
            [None, c, None, c],
            [None, None, a, a],
            [None, c, a, a],
        ];
        for (ours, row) in sets.iter().zip(expected) {
            for (theirs, want) in sets.iter().zip(row) {
                assert_eq!(
                    CipherSet::choose(*ours, *theirs),
                    want,
                    "{ours:?} {theirs:?}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn seal_open_round_trip(
            aes: bool,
            key: [u8; 32],
            lane: u8,
            counter in 0..COUNTER_LIMIT,
            plain in proptest::collection::vec(any::<u8>(), 0..1600),
        ) {
            let cipher = if aes { Cipher::Aes256Gcm } else { Cipher::ChaCha20Poly1305 };
            let key = SessionKey::new(cipher, &key);
            let mut msg = message(lane, counter, &plain);
            key.seal(&mut msg).unwrap();
            prop_assert_eq!(&msg[..HEADER_LEN], &header(lane, counter)[..]);
            key.open(&mut msg).unwrap();
            prop_assert_eq!(&msg[HEADER_LEN..msg.len() - TAG_LEN], plain.as_slice());
        }
    }
}
