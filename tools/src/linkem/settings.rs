//! What one direction of a path does to its packets, and changes to it.

use super::loss::GeParams;
use super::scope::{parse_scoped, Scoped};
use super::units::{
    format_percent, format_rate, format_time, parse_percent, parse_rate, parse_time,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How long a packet may queue behind the rate limit before it is dropped, unless set.
pub const DEFAULT_BUFFER_NS: u64 = 50_000_000;

/// The impairments of one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Added one-way delay.
    pub delay_ns: u64,
    /// Each packet's delay is drawn uniformly from `delay ± jitter` (not below 0).
    pub jitter_ns: u64,
    /// Independent random loss probability.
    pub loss: f64,
    /// Bursty loss, on top of `loss`.
    pub burst_loss: Option<GeParams>,
    /// Rate limit in bits per second.
    pub rate_bps: Option<u64>,
    /// Longest wait behind the rate limit; a packet that would wait longer is dropped.
    pub buffer_ns: u64,
    /// Blackholed: every packet dropped.
    pub cut: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            delay_ns: 0,
            jitter_ns: 0,
            loss: 0.0,
            burst_loss: None,
            rate_bps: None,
            buffer_ns: DEFAULT_BUFFER_NS,
            cut: false,
        }
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "delay {} jitter {} loss {} burst-loss {} rate {} buffer {}{}",
            format_time(self.delay_ns),
            format_time(self.jitter_ns),
            format_percent(self.loss),
            self.burst_loss
                .map_or_else(|| "off".to_string(), |g| g.to_string()),
            format_rate(self.rate_bps),
            format_time(self.buffer_ns),
            if self.cut { " CUT" } else { "" }
        )
    }
}

/// One parameter's new value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Param {
    /// `--delay`.
    Delay(u64),
    /// `--jitter`.
    Jitter(u64),
    /// `--loss`.
    Loss(f64),
    /// `--burst-loss`.
    BurstLoss(Option<GeParams>),
    /// `--rate`.
    Rate(Option<u64>),
    /// `--buffer`.
    Buffer(u64),
}

impl Param {
    /// The command-line flag that sets it.
    pub fn flag(&self) -> &'static str {
        match self {
            Param::Delay(_) => "--delay",
            Param::Jitter(_) => "--jitter",
            Param::Loss(_) => "--loss",
            Param::BurstLoss(_) => "--burst-loss",
            Param::Rate(_) => "--rate",
            Param::Buffer(_) => "--buffer",
        }
    }

    /// Sets it in `s`.
    pub fn apply(&self, s: &mut Settings) {
        match *self {
            Param::Delay(v) => s.delay_ns = v,
            Param::Jitter(v) => s.jitter_ns = v,
            Param::Loss(v) => s.loss = v,
            Param::BurstLoss(v) => s.burst_loss = v,
            Param::Rate(v) => s.rate_bps = v,
            Param::Buffer(v) => s.buffer_ns = v,
        }
    }
}

/// A parameter for a scope.
pub type Change = Scoped<Param>;

/// `[SCOPE=]TIME` of `--delay`.
pub fn parse_delay(s: &str) -> Result<Change, String> {
    parse_scoped(s, |v| parse_time(v).map(Param::Delay))
}

/// `[SCOPE=]TIME` of `--jitter`.
pub fn parse_jitter(s: &str) -> Result<Change, String> {
    parse_scoped(s, |v| parse_time(v).map(Param::Jitter))
}

/// `[SCOPE=]PERCENT` of `--loss`.
pub fn parse_loss(s: &str) -> Result<Change, String> {
    parse_scoped(s, |v| parse_percent(v).map(Param::Loss))
}

/// `[SCOPE=]P,R[,BAD[,GOOD]]` or `[SCOPE=]off` of `--burst-loss`.
pub fn parse_burst_loss(s: &str) -> Result<Change, String> {
    parse_scoped(s, |v| GeParams::parse(v).map(Param::BurstLoss))
}

/// `[SCOPE=]RATE` of `--rate`.
pub fn parse_rate_limit(s: &str) -> Result<Change, String> {
    parse_scoped(s, |v| parse_rate(v).map(Param::Rate))
}

/// `[SCOPE=]TIME` of `--buffer`.
pub fn parse_buffer(s: &str) -> Result<Change, String> {
    parse_scoped(s, |v| parse_time(v).map(Param::Buffer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linkem::scope::{Dir, Scope};

    #[test]
    fn flag_values_parse_with_their_scope() {
        let c = parse_delay("isp1:up=5ms").unwrap();
        assert_eq!(c.value, Param::Delay(5_000_000));
        assert_eq!(
            c.scope,
            Scope {
                path: Some("isp1".into()),
                dir: Some(Dir::Up)
            }
        );
        assert_eq!(parse_jitter("1ms").unwrap().value, Param::Jitter(1_000_000));
        assert_eq!(parse_loss("down=1%").unwrap().value, Param::Loss(0.01));
        assert_eq!(
            parse_burst_loss("isp2=off").unwrap().value,
            Param::BurstLoss(None)
        );
        assert_eq!(
            parse_rate_limit("100mbit").unwrap().value,
            Param::Rate(Some(100_000_000))
        );
        assert_eq!(
            parse_buffer("20ms").unwrap().value,
            Param::Buffer(20_000_000)
        );
        assert!(parse_loss("isp1=1")
            .unwrap_err()
            .contains("`1` is not a percentage"));
        assert!(parse_delay("isp1:left=1ms")
            .unwrap_err()
            .contains("up or down"));
    }

    #[test]
    fn params_apply_and_name_their_flag() {
        let mut s = Settings::default();
        let changes = [
            Param::Delay(5_000_000),
            Param::Jitter(1_000_000),
            Param::Loss(0.01),
            Param::BurstLoss(GeParams::parse("1%,25%").unwrap()),
            Param::Rate(Some(100_000_000)),
            Param::Buffer(20_000_000),
        ];
        for c in &changes {
            c.apply(&mut s);
        }
        assert_eq!(
            s.to_string(),
            "delay 5ms jitter 1ms loss 1% burst-loss 1%,25%,100%,0 rate 100mbit buffer 20ms"
        );
        let flags: Vec<&str> = changes.iter().map(Param::flag).collect();
        assert_eq!(
            flags,
            [
                "--delay",
                "--jitter",
                "--loss",
                "--burst-loss",
                "--rate",
                "--buffer"
            ]
        );
        assert_eq!(
            Settings::default().to_string(),
            "delay 0 jitter 0 loss 0 burst-loss off rate off buffer 50ms"
        );
    }
}
