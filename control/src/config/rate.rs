//! A link's rate in bits per second, written `"100mbit"`, `"1.5gbit"`, `"800kbit"` or as a
//! plain number of bits per second.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;

/// Bits per second, above 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(u64);

/// Most a link's rate may be: 1 Tbit/s.
const MAX_BPS: u64 = 1_000_000_000_000;

impl Rate {
    /// The rate in bits per second.
    pub fn bps(self) -> u64 {
        self.0
    }

    /// `bps` bits per second, if within 1 bit/s and 1 Tbit/s.
    pub fn from_bps(bps: u64) -> Option<Rate> {
        (1..=MAX_BPS).contains(&bps).then_some(Rate(bps))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b if b % 1_000_000_000 == 0 => write!(f, "{}gbit", b / 1_000_000_000),
            b if b % 1_000_000 == 0 => write!(f, "{}mbit", b / 1_000_000),
            b if b % 1_000 == 0 => write!(f, "{}kbit", b / 1_000),
            b => write!(f, "{b}bit"),
        }
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let lower = text.trim().to_ascii_lowercase();
        let split = lower
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(lower.len());
        let (number, unit) = lower.split_at(split);
        let scale = match unit {
            "" | "bit" => 1.0,
            "kbit" => 1e3,
            "mbit" => 1e6,
            "gbit" => 1e9,
            _ => {
                return Err(format!(
                    "{text:?}: unit {unit:?} is not bit, kbit, mbit or gbit"
                ))
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?}: no number before the unit"))?;
        let bps = (value * scale).round();
        if !(1.0..=MAX_BPS as f64).contains(&bps) {
            return Err(format!("{text:?}: must be 1 bit/s to 1000 gbit/s"));
        }
        Ok(Rate(bps as u64))
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a rate such as \"100mbit\" or a number of bits per second")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Rate, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                u64::try_from(v)
                    .ok()
                    .and_then(Rate::from_bps)
                    .ok_or_else(|| {
                        E::custom(format!("{v}: must be 1 to {MAX_BPS} bits per second"))
                    })
            }
        }
        d.deserialize_any(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_with_their_units() {
        for (text, bps) in [
            ("100mbit", 100_000_000),
            ("1.5gbit", 1_500_000_000),
            ("800kbit", 800_000),
            ("12345", 12_345),
            ("20Mbit", 20_000_000),
        ] {
            assert_eq!(text.parse::<Rate>().unwrap().bps(), bps, "{text}");
        }
        for bad in ["", "mbit", "100mbps", "-5mbit", "0", "2000gbit"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        assert_eq!("200mbit".parse::<Rate>().unwrap().to_string(), "200mbit");
    }
}
