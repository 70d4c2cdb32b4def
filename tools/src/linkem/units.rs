//! The units of the emulator's parameters as people write them: times (`5ms`), percentages
//! (`1%`) and rates (`100mbit`), parsed into integers and floats and written back.

/// Longest delay, jitter or rate buffer accepted, in nanoseconds (10 s).
pub const MAX_TIME_NS: u64 = 10_000_000_000;
/// Lowest rate accepted, in bits per second.
pub const MIN_RATE_BPS: u64 = 8_000;
/// Highest rate accepted, in bits per second.
pub const MAX_RATE_BPS: u64 = 100_000_000_000;

/// Splits `s` into a decimal number and the suffix that follows it.
fn number_and_suffix(s: &str) -> Option<(f64, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(end);
    let v: f64 = num.parse().ok()?;
    v.is_finite().then_some((v, suffix))
}

/// A time: `5ms`, `250us`, `1.5s`, `0` (nanoseconds, at most [`MAX_TIME_NS`]).
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a time: give e.g. 5ms, 250us, 1.5s or 0");
    let (v, suffix) = number_and_suffix(s.trim()).ok_or_else(bad)?;
    let scale = match suffix {
        "" if v == 0.0 => 0.0,
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(bad()),
    };
    let ns = (v * scale).round();
    if ns > MAX_TIME_NS as f64 {
        return Err(format!("`{s}` is longer than {}", format_time(MAX_TIME_NS)));
    }
    Ok(ns as u64)
}

/// A probability written as a percentage: `1%`, `0.25%`, `100%`, `0`.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let bad = || format!("`{s}` is not a percentage: give e.g. 1%, 0.25% or 0");
    let (v, suffix) = number_and_suffix(s.trim()).ok_or_else(bad)?;
    match suffix {
        "%" => {}
        "" if v == 0.0 => {}
        _ => return Err(bad()),
    }
    if v > 100.0 {
        return Err(format!("`{s}` is more than 100%"));
    }
    Ok(v / 100.0)
}

/// A rate in bits per second: `100mbit`, `1.5gbit`, `500kbit`, `64000bit`; `off` (None) for
/// no limit.
pub fn parse_rate(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim();
    if t == "off" {
        return Ok(None);
    }
    let bad = || format!("`{s}` is not a rate: give e.g. 100mbit, 1.5gbit, 500kbit or off");
    let (v, suffix) = number_and_suffix(t).ok_or_else(bad)?;
    let scale = match suffix {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return Err(bad()),
    };
    let bps = (v * scale).round();
    if !(MIN_RATE_BPS as f64..=MAX_RATE_BPS as f64).contains(&bps) {
        return Err(format!(
            "`{s}` is outside {} to {}",
            format_rate(Some(MIN_RATE_BPS)),
            format_rate(Some(MAX_RATE_BPS))
        ));
    }
    Ok(Some(bps as u64))
}

/// Writes `n` scaled down by `unit`, with up to three decimals and none trailing.
fn scaled(n: u64, unit: u64) -> String {
    let s = format!("{:.3}", n as f64 / unit as f64);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `5ms`, `250us`, `1.5s`, `0`: the largest unit that keeps the number at 1 or more.
pub fn format_time(ns: u64) -> String {
    match ns {
        0 => "0".into(),
        1_000_000_000.. => format!("{}s", scaled(ns, 1_000_000_000)),
        1_000_000.. => format!("{}ms", scaled(ns, 1_000_000)),
        1_000.. => format!("{}us", scaled(ns, 1_000)),
        _ => format!("{ns}ns"),
    }
}

/// `1%`, `0.25%`, `0`.
pub fn format_percent(p: f64) -> String {
    if p == 0.0 {
        return "0".into();
    }
    let s = format!("{:.4}", p * 100.0);
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

/// `100mbit`, `1.5gbit`, `off`.
pub fn format_rate(bps: Option<u64>) -> String {
    match bps {
        None => "off".into(),
        Some(b @ 1_000_000_000..) => format!("{}gbit", scaled(b, 1_000_000_000)),
        Some(b @ 1_000_000..) => format!("{}mbit", scaled(b, 1_000_000)),
        Some(b @ 1_000..) => format!("{}kbit", scaled(b, 1_000)),
        Some(b) => format!("{b}bit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_to_nanoseconds() {
        let cases = [
            ("5ms", 5_000_000),
            ("0.5ms", 500_000),
            ("250us", 250_000),
            ("1.5s", 1_500_000_000),
            ("40ns", 40),
            ("0", 0),
            ("0ms", 0),
            ("10s", MAX_TIME_NS),
        ];
        for (s, ns) in cases {
            assert_eq!(parse_time(s), Ok(ns), "{s}");
        }
    }

    #[test]
    fn bad_times_are_refused_with_the_value_in_the_message() {
        for s in ["", "5", "ms", "5 m", "5xs", "-1ms", "1e3ms", "5ms5"] {
            let e = parse_time(s).unwrap_err();
            assert!(
                e.contains(&format!("`{s}`")) && e.contains("5ms"),
                "{s}: {e}"
            );
        }
        assert_eq!(
            parse_time("10.5s").unwrap_err(),
            "`10.5s` is longer than 10s"
        );
    }

    #[test]
    fn percentages_parse_to_probabilities() {
        assert_eq!(parse_percent("1%"), Ok(0.01));
        assert_eq!(parse_percent("0.25%"), Ok(0.0025));
        assert_eq!(parse_percent("100%"), Ok(1.0));
        assert_eq!(parse_percent("0"), Ok(0.0));
        assert_eq!(parse_percent("0%"), Ok(0.0));
        for s in ["1", "0.5", "%", "-1%", "1%%", "one%"] {
            assert!(
                parse_percent(s).unwrap_err().contains("not a percentage"),
                "{s}"
            );
        }
        assert_eq!(
            parse_percent("100.1%").unwrap_err(),
            "`100.1%` is more than 100%"
        );
    }

    #[test]
    fn rates_parse_to_bits_per_second() {
        assert_eq!(parse_rate("100mbit"), Ok(Some(100_000_000)));
        assert_eq!(parse_rate("1.5gbit"), Ok(Some(1_500_000_000)));
        assert_eq!(parse_rate("500kbit"), Ok(Some(500_000)));
        assert_eq!(parse_rate("64000bit"), Ok(Some(64_000)));
        assert_eq!(parse_rate("off"), Ok(None));
        for s in ["100", "100mbps", "100Mbit", "mbit", "0mbit x"] {
            assert!(parse_rate(s).unwrap_err().contains("not a rate"), "{s}");
        }
        assert_eq!(
            parse_rate("1kbit").unwrap_err(),
            "`1kbit` is outside 8kbit to 100gbit"
        );
        assert!(parse_rate("101gbit").is_err());
    }

    #[test]
    fn values_are_written_back_as_they_are_read() {
        assert_eq!(format_time(5_000_000), "5ms");
        assert_eq!(format_time(1_500_000_000), "1.5s");
        assert_eq!(format_time(250_000), "250us");
        assert_eq!(format_time(999), "999ns");
        assert_eq!(format_time(0), "0");
        assert_eq!(format_percent(0.01), "1%");
        assert_eq!(format_percent(0.0025), "0.25%");
        assert_eq!(format_percent(0.0), "0");
        assert_eq!(format_rate(Some(100_000_000)), "100mbit");
        assert_eq!(format_rate(Some(1_500_000_000)), "1.5gbit");
        assert_eq!(format_rate(Some(64_000)), "64kbit");
        assert_eq!(format_rate(None), "off");
        for s in ["5ms", "1.5s", "250us", "0"] {
            assert_eq!(format_time(parse_time(s).unwrap()), s);
        }
    }
}
