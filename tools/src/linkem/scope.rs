//! Which paths and directions a parameter or a command applies to: `[SCOPE=]VALUE`, where SCOPE is
//! a direction (`up`, `down`), a path name (`isp1`) or both (`isp1:up`); no scope means every
//! direction of every path.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A direction of a path `NAME=A,B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    /// From A to B (in the lab: edge to internet).
    Up,
    /// From B to A.
    Down,
}

impl Dir {
    /// Both directions, up first.
    pub const BOTH: [Dir; 2] = [Dir::Up, Dir::Down];

    /// `up` or `down`.
    pub fn name(self) -> &'static str {
        match self {
            Dir::Up => "up",
            Dir::Down => "down",
        }
    }

    fn parse(s: &str) -> Option<Dir> {
        match s {
            "up" => Some(Dir::Up),
            "down" => Some(Dir::Down),
            _ => None,
        }
    }
}

/// A set of directions: a path (or all), a direction (or both).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The path's name; None for every path.
    pub path: Option<String>,
    /// The direction; None for both.
    pub dir: Option<Dir>,
}

impl Scope {
    /// Whether the scope covers direction `dir` of path `path`.
    pub fn covers(&self, path: &str, dir: Dir) -> bool {
        self.path.as_deref().is_none_or(|p| p == path) && self.dir.is_none_or(|d| d == dir)
    }

    /// `up`, `isp1`, `isp1:down`; the empty string is every direction of every path.
    pub fn parse(s: &str) -> Result<Scope, String> {
        if s.is_empty() {
            return Ok(Scope::default());
        }
        if let Some(dir) = Dir::parse(s) {
            return Ok(Scope {
                path: None,
                dir: Some(dir),
            });
        }
        let (name, dir) = match s.split_once(':') {
            Some((name, d)) => {
                let dir = Dir::parse(d)
                    .ok_or_else(|| format!("`{s}`: the direction after `:` is up or down"))?;
                (name, Some(dir))
            }
            None => (s, None),
        };
        check_path_name(name).map_err(|e| format!("`{s}`: {e}"))?;
        Ok(Scope {
            path: Some(name.to_string()),
            dir,
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.dir) {
            (None, None) => f.write_str("all"),
            (None, Some(d)) => f.write_str(d.name()),
            (Some(p), None) => f.write_str(p),
            (Some(p), Some(d)) => write!(f, "{p}:{}", d.name()),
        }
    }
}

/// A path name: 1 to 32 letters, digits, `_` or `-`, and not a direction's name.
pub fn check_path_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if name.is_empty() || name.len() > 32 || !ok_chars {
        return Err(format!(
            "path name `{name}`: 1 to 32 letters, digits, `_` or `-`"
        ));
    }
    if Dir::parse(name).is_some() {
        return Err(format!("path name `{name}` is a direction's name"));
    }
    Ok(())
}

/// A value for some scope: `[SCOPE=]VALUE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scoped<T> {
    /// Where it applies.
    pub scope: Scope,
    /// The value.
    pub value: T,
}

/// Parses `[SCOPE=]VALUE` with `value` parsing the part after `=`.
pub fn parse_scoped<T>(
    s: &str,
    value: impl Fn(&str) -> Result<T, String>,
) -> Result<Scoped<T>, String> {
    let (scope, v) = match s.split_once('=') {
        Some((scope, v)) => (Scope::parse(scope)?, v),
        None => (Scope::default(), s),
    };
    Ok(Scoped {
        scope,
        value: value(v)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linkem::units::parse_time;

    fn scope(path: Option<&str>, dir: Option<Dir>) -> Scope {
        Scope {
            path: path.map(str::to_string),
            dir,
        }
    }

    #[test]
    fn scopes_parse() {
        assert_eq!(Scope::parse(""), Ok(scope(None, None)));
        assert_eq!(Scope::parse("up"), Ok(scope(None, Some(Dir::Up))));
        assert_eq!(Scope::parse("isp1"), Ok(scope(Some("isp1"), None)));
        assert_eq!(
            Scope::parse("isp1:down"),
            Ok(scope(Some("isp1"), Some(Dir::Down)))
        );
        assert_eq!(
            Scope::parse("isp1:sideways").unwrap_err(),
            "`isp1:sideways`: the direction after `:` is up or down"
        );
        assert!(Scope::parse("is p1")
            .unwrap_err()
            .contains("letters, digits"));
        assert!(Scope::parse(":up").is_err());
    }

    #[test]
    fn scopes_cover_what_they_name() {
        let s = scope(Some("isp1"), Some(Dir::Up));
        assert!(s.covers("isp1", Dir::Up));
        assert!(!s.covers("isp1", Dir::Down));
        assert!(!s.covers("isp2", Dir::Up));
        assert!(scope(None, None).covers("any", Dir::Down));
        assert!(scope(None, Some(Dir::Down)).covers("isp2", Dir::Down));
        assert_eq!(s.to_string(), "isp1:up");
        assert_eq!(scope(None, None).to_string(), "all");
    }

    #[test]
    fn scoped_values_parse_with_or_without_a_scope() {
        let v = parse_scoped("isp2:up=15ms", parse_time).unwrap();
        assert_eq!(v.scope, scope(Some("isp2"), Some(Dir::Up)));
        assert_eq!(v.value, 15_000_000);
        let v = parse_scoped("5ms", parse_time).unwrap();
        assert_eq!(v.scope, Scope::default());
        assert!(parse_scoped("isp1=5xs", parse_time)
            .unwrap_err()
            .contains("`5xs` is not a time"));
    }

    #[test]
    fn path_names_are_checked() {
        assert!(check_path_name("isp_1-a").is_ok());
        for bad in ["", "up", "down", "a:b", "a=b", &"x".repeat(33)] {
            assert!(check_path_name(bad).is_err(), "{bad}");
        }
    }
}
