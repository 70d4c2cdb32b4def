//! The Internet checksum: full computation (RFC 1071) and incremental update
//! (RFC 1624, equation 3), so a rewrite of a few fields costs a few operations.

use std::net::Ipv4Addr;

/// Adds `data` as big-endian 16-bit words to `acc` (an odd last byte is padded
/// with zero). The result is unfolded: pass it on or to [`finish`].
pub fn add(mut acc: u64, data: &[u8]) -> u64 {
    let (chunks, rest) = data.as_chunks::<8>();
    for &[a, b, c, d, e, f, g, h] in chunks {
        // Eight bytes as two 32-bit words; summing wider words then folding gives
        // the same one's-complement sum with a quarter of the additions.
        acc += u64::from(u32::from_be_bytes([a, b, c, d]));
        acc += u64::from(u32::from_be_bytes([e, f, g, h]));
    }
    let (words, last) = rest.as_chunks::<2>();
    for w in words {
        acc += u64::from(u16::from_be_bytes(*w));
    }
    if let [last] = last {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds an accumulated sum to 16 bits and complements it: the checksum field value.
pub fn finish(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The checksum of `data` alone.
pub fn checksum(data: &[u8]) -> u16 {
    finish(add(0, data))
}

/// The checksum of an option-less IPv4 header: five 32-bit words summed and
/// folded without loops (the header checksum every packet is checked or sealed with).
///
/// The words are summed in the machine's byte order, not swapped one by one: the one's
/// complement sum of byte-swapped words is the byte-swapped sum (RFC 1071, 2.B), so one
/// swap of the result, through its bytes, gives the big-endian checksum.
#[inline]
pub fn header20(h: &[u8; 20]) -> u16 {
    let (words, _) = h.as_chunks::<4>();
    let sum: u64 = words
        .iter()
        .map(|w| u64::from(u32::from_ne_bytes(*w)))
        .sum();
    // At most 5 * (2^32 - 1): folding 32 bits once and 16 bits three times ends in 16 bits.
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !u16::from_be_bytes((sum as u16).to_ne_bytes())
}

/// Sum of the IPv4 pseudo-header used by TCP and UDP.
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u64 {
    let acc = add(0, &src.octets());
    let acc = add(acc, &dst.octets());
    acc + u64::from(protocol) + u64::from(len)
}

/// Updates checksum `csum` for a 16-bit field changing from `old` to `new`
/// (RFC 1624: HC' = ~(~HC + ~m + m')).
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    Delta::word(old, new).apply(csum)
}

/// Updates checksum `csum` for a 4-byte field (an address) changing from `old` to `new`.
pub fn update32(csum: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    Delta::addr(old.into(), new.into()).apply(csum)
}

/// A sum of 16-bit word changes (`~old + new` for each), to apply to a checksum
/// that covers the changed words (RFC 1624 equation 3: `HC' = ~(~HC + sum)`).
/// Several changes add up before one [`Delta::apply`], which gives the same
/// checksum as applying them one by one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    /// A word changing from `old` to `new`.
    pub fn word(old: u16, new: u16) -> Delta {
        Delta(u64::from(!old) + u64::from(new))
    }

    /// An address (two words) changing from `old` to `new`.
    pub fn addr(old: Ipv4Addr, new: Ipv4Addr) -> Delta {
        let ([o0, o1, o2, o3], [n0, n1, n2, n3]) = (old.octets(), new.octets());
        Delta::word(u16::from_be_bytes([o0, o1]), u16::from_be_bytes([n0, n1]))
            + Delta::word(u16::from_be_bytes([o2, o3]), u16::from_be_bytes([n2, n3]))
    }

    /// Checksum `csum` after the changes.
    pub fn apply(self, csum: u16) -> u16 {
        finish(u64::from(!csum) + self.0)
    }
}

impl std::ops::Add for Delta {
    type Output = Delta;
    fn add(self, other: Delta) -> Delta {
        Delta(self.0 + other.0)
    }
}

impl std::ops::AddAssign for Delta {
    fn add_assign(&mut self, other: Delta) {
        self.0 += other.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 word by word, the reference the fast path is held against.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            sum += u32::from(data[i]) << 8 | u32::from(data[i + 1]);
            i += 2;
        }
        if i < data.len() {
            sum += u32::from(data[i]) << 8;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    proptest! {
        #[test]
        fn header20_matches_the_general_sum(h in any::<[u8; 20]>()) {
            prop_assert_eq!(header20(&h), checksum(&h));
        }

        #[test]
        fn fast_sum_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..1600)) {
            prop_assert_eq!(checksum(&data), reference(&data));
        }

        #[test]
        fn incremental_update_matches_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 8..200),
            at in 0usize..100,
            new in any::<u16>(),
        ) {
            let at = (at % (data.len() / 2 - 1)) * 2;
            // A packet whose checksum field (first two bytes) is valid.
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            data[..2].copy_from_slice(&c.to_be_bytes());
            let at = at.max(2);
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let updated = update16(c, old, new);
            data[..2].copy_from_slice(&updated.to_be_bytes());
            // The whole packet, checksum included, must sum to zero (0xffff or 0 both verify).
            let verify = checksum(&data);
            prop_assert!(verify == 0 || verify == 0xffff, "verify {verify:#x}");
        }

        #[test]
        fn one_delta_equals_updates_one_by_one(
            csum in any::<u16>(),
            changes in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..6),
        ) {
            let mut sum = Delta::default();
            let mut one_by_one = csum;
            for &(old, new) in &changes {
                sum += Delta::word(old, new);
                one_by_one = update16(one_by_one, old, new);
            }
            prop_assert_eq!(sum.apply(csum), one_by_one);
        }
    }
}
