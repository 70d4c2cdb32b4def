//! What is wrong with a configuration file, located by line and field path.

use std::fmt::{self, Write};
use std::path::{Path, PathBuf};

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// Field path such as `peer[0].link[1].weight`; `None` when the problem has no field
    /// (a TOML syntax error, an unreadable file).
    pub field: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl Problem {
    /// A problem with the field at `field`, whose line is looked up later.
    pub(crate) fn at(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            line: None,
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// `<field path>: <what is wrong>` (the field path left out when unknown).
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Why a configuration was refused: every problem found, in file order where lines are known.
///
/// Display prints one problem per line as `<file>:<line>: <field path>: <what is wrong>`
/// (the line or the field path left out when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: PathBuf,
    problems: Vec<Problem>,
}

impl ConfigError {
    /// An error about `file` holding `problems` (at least one).
    pub(crate) fn new(file: &Path, mut problems: Vec<Problem>) -> ConfigError {
        // Stable sort: problems without a line keep their order, after the located ones.
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        ConfigError {
            file: file.to_path_buf(),
            problems,
        }
    }

    /// The file the problems are in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Every problem found.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write_one_line(f, &self.file.display().to_string())?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if let Some(field) = &p.field {
                f.write_str(": ")?;
                write_one_line(f, field)?;
            }
            f.write_str(": ")?;
            write_one_line(f, &p.message)?;
        }
        Ok(())
    }
}

/// Writes `text` with control characters escaped, so that a problem (which may quote a key
/// or value from the file) stays on one line.
fn write_one_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            f.write_char(c)?;
        }
    }
    Ok(())
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prints_one_problem_per_line_with_optional_parts() {
        let err = ConfigError::new(
            Path::new("/etc/braid/braidd.toml"),
            vec![
                Problem {
                    line: None,
                    field: Some("role".into()),
                    message: "missing field `role`".into(),
                },
                Problem {
                    line: Some(7),
                    field: Some("peer[0].link[1].weight".into()),
                    message: "weight 1001 is out of range 0..=1000".into(),
                },
                Problem {
                    line: Some(3),
                    field: None,
                    message: "invalid table header".into(),
                },
            ],
        );
        assert_eq!(
            err.to_string(),
            "/etc/braid/braidd.toml:3: invalid table header\n\
             /etc/braid/braidd.toml:7: peer[0].link[1].weight: weight 1001 is out of range 0..=1000\n\
             /etc/braid/braidd.toml: role: missing field `role`"
        );
        assert_eq!(err.problems().len(), 3);
        assert_eq!(err.file(), Path::new("/etc/braid/braidd.toml"));
    }

    #[test]
    fn display_escapes_control_characters() {
        let err = ConfigError::new(
            Path::new("a.toml"),
            vec![Problem {
                line: Some(1),
                field: Some("x\ny".into()),
                message: "unknown field `x\ny`\t!".into(),
            }],
        );
        assert_eq!(
            err.to_string(),
            "a.toml:1: x\\ny: unknown field `x\\ny`\\t!"
        );
    }
}
