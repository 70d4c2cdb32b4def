//! Frame sizes: one fixed size or IMIX. Sizes are Ethernet frame sizes as RFC 2544 counts them,
//! FCS included; AF_XDP hands the NIC the frame without its 4-byte FCS, which the NIC appends.

use std::fmt;
use std::str::FromStr;

/// Bytes of the Ethernet frame check sequence, counted in frame sizes but never written.
pub const FCS_LEN: usize = 4;
/// Smallest Ethernet frame.
pub const MIN_FRAME: usize = 64;
/// Largest untagged Ethernet frame with a 1500-byte MTU.
pub const MAX_FRAME: usize = 1518;
/// The simple IMIX: 7 of 64 bytes, 4 of 570, 1 of 1518, interleaved in this cycle of 12.
pub const IMIX_CYCLE: [usize; 12] = [64, 570, 64, 64, 1518, 64, 570, 64, 64, 570, 64, 570];

/// The sizes of the frames a generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeMix {
    /// Every frame this size.
    Fixed(usize),
    /// [`IMIX_CYCLE`], over and over.
    Imix,
}

impl SizeMix {
    /// The cycle of frame sizes the generator walks through.
    pub fn cycle(&self) -> Vec<usize> {
        match self {
            SizeMix::Fixed(n) => vec![*n],
            SizeMix::Imix => IMIX_CYCLE.to_vec(),
        }
    }

    /// Mean frame size of the cycle, in bytes.
    pub fn mean(&self) -> f64 {
        let c = self.cycle();
        c.iter().sum::<usize>() as f64 / c.len() as f64
    }

    /// Largest frame of the mix.
    pub fn largest(&self) -> usize {
        self.cycle().into_iter().max().unwrap_or(MIN_FRAME)
    }
}

impl fmt::Display for SizeMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeMix::Fixed(n) => write!(f, "{n}"),
            SizeMix::Imix => f.write_str("imix"),
        }
    }
}

impl FromStr for SizeMix {
    type Err = String;

    /// `imix` or a size from 64 to 1518.
    fn from_str(s: &str) -> Result<SizeMix, String> {
        if s.eq_ignore_ascii_case("imix") {
            return Ok(SizeMix::Imix);
        }
        let n: usize = s
            .parse()
            .map_err(|_| format!("frame size {s:?}: a number of bytes or \"imix\""))?;
        if !(MIN_FRAME..=MAX_FRAME).contains(&n) {
            return Err(format!(
                "frame size {n}: out of range {MIN_FRAME}..={MAX_FRAME}"
            ));
        }
        Ok(SizeMix::Fixed(n))
    }
}

/// Parses a comma-separated list of sizes, e.g. `64,512,1518,imix`.
pub fn parse_list(s: &str) -> Result<Vec<SizeMix>, String> {
    let list: Vec<SizeMix> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err("no frame sizes given".into());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imix_is_seven_four_one() {
        let c = SizeMix::Imix.cycle();
        let count = |n| c.iter().filter(|&&s| s == n).count();
        assert_eq!((count(64), count(570), count(1518)), (7, 4, 1));
        assert_eq!(c.len(), 12);
        assert!((SizeMix::Imix.mean() - 4246.0 / 12.0).abs() < 1e-9);
        assert_eq!(SizeMix::Imix.largest(), 1518);
    }

    #[test]
    fn parses_sizes_and_refuses_out_of_range() {
        assert_eq!(
            parse_list("64, 1518,IMIX").unwrap(),
            [SizeMix::Fixed(64), SizeMix::Fixed(1518), SizeMix::Imix]
        );
        assert!("63".parse::<SizeMix>().is_err());
        assert!("1519".parse::<SizeMix>().is_err());
        assert!("big".parse::<SizeMix>().is_err());
        assert!(parse_list(" , ").is_err());
        assert_eq!(SizeMix::Fixed(512).to_string(), "512");
    }
}
