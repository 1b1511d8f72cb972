//! [`ConfigError`]: every way a configuration file can be refused, located at
//! `file:line:column: key.path: message`.

use std::fmt;
use std::ops::Range;

use super::locate::line_col;

/// Where in the file an error is, with the offending line for a caret display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The text of that line, without its newline.
    pub source_line: String,
    /// How many characters the caret underlines (at least 1).
    pub width: usize,
}

impl Location {
    pub(crate) fn from_span(text: &str, span: Range<usize>) -> Self {
        let (line, column) = line_col(text, span.start);
        let source_line = text.lines().nth(line - 1).unwrap_or("").to_owned();
        let rest = source_line.chars().count().saturating_sub(column - 1);
        let width = text
            .get(span.clone())
            .map_or(1, |s| s.lines().next().unwrap_or("").chars().count())
            .clamp(1, rest.max(1));
        Self {
            line,
            column,
            source_line,
            width,
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrorKind {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(#[source] std::io::Error),
    /// Not TOML.
    #[error("{0}")]
    Syntax(String),
    /// TOML, but not a valid xlb configuration: an unknown key, a wrong type, a value
    /// out of range, or a semantic rule (duplicate service, address family mismatch...).
    #[error("{0}")]
    Invalid(String),
    /// The host checks could not ask the kernel (`xlb check` without
    /// `--no-host-checks`).
    #[error("cannot check against this host: {0}")]
    Host(String),
}

/// A configuration error. `Display` gives one line,
/// `xlb.toml:12:10: virtual_server[0].real_server[1].weight: 70000 is out of range (0..=65535)`;
/// the alternate form (`{:#}`) adds the offending line and a caret under the value.
#[derive(Debug)]
pub struct ConfigError {
    /// The file name as given to [`Config::load`](super::Config::load) or
    /// [`Config::parse`](super::Config::parse).
    pub file: String,
    /// Where, when the error is about a place in the file (not for read errors).
    /// Boxed to keep `Result<Config, ConfigError>` small.
    pub location: Option<Box<Location>>,
    /// The key path, e.g. `virtual_server[0].port`; empty for file-level errors.
    pub key_path: String,
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    /// The message without the location prefix.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(loc) = &self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        if !self.key_path.is_empty() {
            write!(f, ": {}", self.key_path)?;
        }
        write!(f, ": {}", self.kind)?;
        if f.alternate() {
            if let Some(loc) = &self.location {
                let gutter = loc.line.to_string().len();
                write!(
                    f,
                    "\n{:gutter$} |\n{} | {}\n{:gutter$} | {}{}",
                    "",
                    loc.line,
                    loc.source_line,
                    "",
                    " ".repeat(loc.column - 1),
                    "^".repeat(loc.width),
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ConfigErrorKind::Read(e) => Some(e),
            _ => None,
        }
    }
}
