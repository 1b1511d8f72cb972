//! `xlb import-keepalived FILE`: converts a keepalived.conf (with its includes) into
//! xlb's TOML configuration.
//!
//! - [`lexer`] reads the file as keepalived does (bytes: a non-UTF-8 byte in a comment is no
//!   error): comments, quotes, braces, `include`
//!   globs (matched by `glob`, as glob(3)), `$NAME` parameters; every line keeps its
//!   file and line number;
//! - [`parser`] builds the tree of blocks;
//! - [`convert`] maps keepalived's keywords to xlb's (mostly the same names): each
//!   keyword is converted, or dropped with a warning when that changes nothing that
//!   matters (SNMP, process tuning...), or refused with an error when xlb would behave
//!   differently (NAT/TUN, ipvlan...). What keepalived itself ignores or only
//!   warns about (`nat_mask`, a VIP listed twice, authentication under VRRPv3, the
//!   argument of `nopreempt`...) is converted as keepalived reads it, with a warning; an
//!   unknown keyword close to a known one is a misspelling keepalived skips (a warning
//!   with "did you mean"), any other unknown keyword is an error;
//! - [`emit`] writes the TOML, which must pass [`Config::parse`]: a value xlb refuses
//!   is reported at the keepalived line it comes from.
//!
//! Diagnostics read `FILE:LINE: message`; all the errors of a file are reported in one
//! run. `tests::corpus` imports every file of the keepalived corpus against a table of
//! recorded outcomes.

pub mod convert;
pub mod emit;
mod glob;
pub mod lexer;
pub mod parser;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::config::Config;

/// A place in the input: file (as named by the user or the `include`) and 1-based
/// line (0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<str>,
    pub line: usize,
}

impl Loc {
    /// The file as a whole.
    pub fn file(file: Arc<str>) -> Self {
        Self { file, line: 0 }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.file)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// One error or warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub loc: Loc,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

/// Errors and warnings, in the order found.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            loc: loc.clone(),
            message: message.into(),
        });
    }

    pub fn warning(&mut self, loc: &Loc, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            loc: loc.clone(),
            message: message.into(),
        });
    }
}

/// A successful conversion.
#[derive(Debug)]
pub struct Conversion {
    /// The TOML file: a header naming the source and the warnings, then the
    /// configuration.
    pub toml: String,
    /// `toml` as xlb reads it.
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// A failed conversion: at least one error.
#[derive(Debug)]
pub struct ImportError {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ImportError {}

/// What `xlb import-keepalived` is told besides the file: what keepalived.conf does not
/// say and xlb needs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// keepalived's `-i ID` / `--config-id ID`: which `@ID` lines are kept.
    pub config_id: Option<String>,
    /// `--interface IFNAME`: where XDP attaches for a virtual server whose VIP no
    /// vrrp_instance holds (IPVS needs no interface).
    pub interface: Option<String>,
    /// `--fwmark N=SPEC[,SPEC...]`: the packets the firewall marks N (XDP runs before
    /// netfilter and sees no mark), for `virtual_server fwmark N`.
    pub fwmarks: std::collections::BTreeMap<u32, Vec<crate::config::FwmarkMatch>>,
}

impl Options {
    /// Parses one `--fwmark` argument, `N=SPEC[,SPEC...]`, into `self`.
    pub fn add_fwmark(&mut self, arg: &str) -> Result<(), String> {
        let (n, specs) = arg.split_once('=').ok_or_else(|| {
            format!(
                "--fwmark {arg:?}: expected N=SPEC[,SPEC...], e.g. \
                 1=tcp:198.18.0.10:80,tcp:198.18.0.10:443"
            )
        })?;
        let mark: u32 = n
            .trim()
            .strip_prefix("0x")
            .map_or_else(
                || n.trim().parse().ok(),
                |h| u32::from_str_radix(h, 16).ok(),
            )
            .ok_or_else(|| format!("--fwmark {arg:?}: {n:?} is not a mark number"))?;
        let mut list = Vec::new();
        for spec in specs.split(',').filter(|s| !s.trim().is_empty()) {
            list.push(
                spec.parse::<crate::config::FwmarkMatch>()
                    .map_err(|e| format!("--fwmark {arg:?}: {e}"))?,
            );
        }
        if list.is_empty() {
            return Err(format!("--fwmark {arg:?}: no SPEC after {n}="));
        }
        self.fwmarks.entry(mark).or_default().extend(list);
        Ok(())
    }
}

/// Converts the keepalived configuration at `path` (and what it includes), with no
/// config id (`@ID` lines dropped, `@^ID` lines kept, as keepalived without one).
pub fn import_file(path: &Path) -> Result<Conversion, ImportError> {
    import_file_with(path, &Options::default())
}

/// As [`import_file`], with the command line's [`Options`].
pub fn import_file_with(path: &Path, opts: &Options) -> Result<Conversion, ImportError> {
    let mut d = Diagnostics::default();
    let lexer_options = lexer::Options {
        config_id: opts.config_id.clone(),
    };
    let (lines, cond) = lexer::read_with(path, &lexer_options, &mut d);
    finish(lines, &path.display().to_string(), d, opts, &cond)
}

/// Converts `text`, read as the file `file_name`; relative includes are looked up in
/// `dir`.
pub fn import_str(text: &str, file_name: &str, dir: &Path) -> Result<Conversion, ImportError> {
    import_str_with(text, file_name, dir, &Options::default())
}

/// As [`import_str`], with the command line's [`Options`].
pub fn import_str_with(
    text: &str,
    file_name: &str,
    dir: &Path,
    opts: &Options,
) -> Result<Conversion, ImportError> {
    let mut d = Diagnostics::default();
    let lexer_options = lexer::Options {
        config_id: opts.config_id.clone(),
    };
    let (lines, cond) = lexer::read_str_with(text, file_name, dir, &lexer_options, &mut d);
    finish(lines, file_name, d, opts, &cond)
}

fn finish(
    lines: Vec<lexer::Line>,
    source: &str,
    mut d: Diagnostics,
    opts: &Options,
    cond: &lexer::Conditionals,
) -> Result<Conversion, ImportError> {
    let nodes = parser::parse(lines, &mut d);
    let root = convert::convert(&nodes, &mut d, opts);
    if !d.errors.is_empty() {
        return Err(ImportError {
            errors: d.errors,
            warnings: d.warnings,
        });
    }

    let mut body = String::new();
    emit::write_table(&mut body, "", false, &root);
    let toml = format!("{}{body}", header(source, &d.warnings, opts, cond));

    match Config::parse(&toml, source) {
        Ok(config) => Ok(Conversion {
            toml,
            config,
            warnings: d.warnings,
        }),
        Err(e) => {
            let mut locs = HashMap::new();
            emit::index_locs(&root, "", &mut locs);
            let mut path = e.key_path.as_str();
            let loc = loop {
                if let Some(l) = locs.get(path) {
                    break l.clone();
                }
                match emit::parent_path(path) {
                    Some(p) => path = p,
                    None => break Loc::file(source.into()),
                }
            };
            let message = if e.key_path.is_empty() {
                format!(
                    "the converted file is not valid ({}): this is a bug in \
                     `xlb import-keepalived`",
                    e.message()
                )
            } else {
                format!("{} (xlb key {})", e.message(), e.key_path)
            };
            d.error(&loc, message);
            Err(ImportError {
                errors: d.errors,
                warnings: d.warnings,
            })
        }
    }
}

fn header(
    source: &str,
    warnings: &[Diagnostic],
    opts: &Options,
    cond: &lexer::Conditionals,
) -> String {
    let mut h = format!(
        "# xlb configuration converted from {source} by `xlb import-keepalived` (xlb {}).\n\
         # Keys keep keepalived's names; check the file with `xlb check -c FILE`.\n",
        env!("CARGO_PKG_VERSION")
    );
    if cond.kept + cond.dropped > 0 {
        let id = opts.config_id.as_deref().unwrap_or("(none)");
        h.push_str(&format!(
            "# keepalived config id {id} (`--config-id`): {} conditional line(s) kept, {} \
             dropped, as `keepalived -i {id}` reads the file.\n",
            cond.kept, cond.dropped
        ));
    }
    if warnings.is_empty() {
        h.push_str("# The conversion raised no warnings.\n");
    } else {
        h.push_str("#\n# Conversion warnings (review them):\n");
        for w in warnings {
            h.push_str(&format!("#   {w}\n"));
        }
    }
    h.push('\n');
    h
}

/// keepalived's default config id: the host name up to its first dot.
pub fn short_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let short = name.trim().split('.').next()?.to_owned();
    (!short.is_empty()).then_some(short)
}

/// The `xlb import-keepalived FILE [-o OUT] [--config-id ID]` command: TOML to `output` or stdout,
/// warnings and errors to stderr; an error if anything could not be converted.
pub fn run(file: &Path, output: Option<&Path>, opts: &Options) -> anyhow::Result<()> {
    match import_file_with(file, opts) {
        Ok(conv) => {
            for w in &conv.warnings {
                eprintln!("{}: warning: {}", w.loc, w.message);
            }
            match output {
                Some(out) => std::fs::write(out, &conv.toml)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?,
                None => std::io::stdout().write_all(conv.toml.as_bytes())?,
            }
            Ok(())
        }
        Err(e) => {
            for w in &e.warnings {
                eprintln!("{}: warning: {}", w.loc, w.message);
            }
            for err in &e.errors {
                eprintln!("{err}");
            }
            anyhow::bail!(
                "{}: {} error{}, nothing converted",
                file.display(),
                e.errors.len(),
                if e.errors.len() == 1 { "" } else { "s" }
            )
        }
    }
}
