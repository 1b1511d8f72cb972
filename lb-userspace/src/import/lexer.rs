//! keepalived.conf's lexical layer, as keepalived's `read_line` sees a file: logical
//! lines of words, each with the file and line it came from.
//!
//! - `#` and `!` outside double quotes start a comment, anywhere on a line (`\#` and
//!   `\!` stand for the characters themselves);
//! - `"..."` is one word without its quotes; outside quotes a word ends at white space
//!   or a quote;
//! - `{` and `}` outside quotes are lines of their own: `TCP_CHECK{`, a `{` on the next
//!   line and one-line blocks (`url { path / }`) all read the same;
//! - `include PATTERN` (exactly two words) reads the matching files in place; a
//!   relative pattern is relative to the directory of the file that names it (keepalived
//!   changes to that directory); patterns are shell globs with `{a,b}`, matched files
//!   are read in sorted order, directories and executable files are skipped;
//! - `$NAME=VALUE` defines a parameter, and `$NAME` / `${NAME}` are replaced by its
//!   value in the lines after it.
//!
//! - `@ID rest` keeps `rest` only when the config id ([`Options::config_id`],
//!   keepalived's `-i ID`, by default the short host name) is ID; `@^ID rest` keeps it
//!   only when it is not (or there is no id); an `@` line with nothing after its id is
//!   dropped (keepalived's `read_line`). Dropped lines are counted, not reported.
//!
//! What keepalived has and the importer does not (multi-line definitions, `~SEQ`) is
//! refused with the line that uses it.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::glob::{glob, has_glob_chars};
use super::{Diagnostics, Loc};

/// Includes nested deeper than this are refused (a loop through globs, most likely).
const MAX_INCLUDE_DEPTH: usize = 32;

/// One word of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// Written between double quotes (so never a keyword or a brace).
    pub quoted: bool,
}

impl Word {
    /// An unquoted word equal to `s`.
    pub fn is(&self, s: &str) -> bool {
        !self.quoted && self.text == s
    }
}

/// A logical line: its words and where it starts.
#[derive(Debug, Clone)]
pub struct Line {
    pub loc: Loc,
    pub words: Vec<Word>,
    /// The line shared its physical line with a brace (`url { path / }`): the only
    /// place where the converter splits several keywords written on one line.
    pub inline: bool,
}

impl Line {
    /// Whether this line is a lone unquoted `{` or `}`.
    pub fn is_brace(&self, brace: &str) -> bool {
        self.words.len() == 1 && self.words[0].is(brace)
    }
}

/// How the file is read.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// keepalived's config id (`-i`, `--config-id`): which `@ID` lines are kept. None:
    /// no id, so every `@ID` line is dropped and every `@^ID` line kept.
    pub config_id: Option<String>,
}

/// What the lexer found besides lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditionals {
    /// `@ID` / `@^ID` lines kept (their condition held) and dropped.
    pub kept: usize,
    pub dropped: usize,
}

/// Reads `path` and every file it includes into logical lines. Problems are recorded
/// in `diags`; the lines read so far are returned whatever happens.
pub fn read(path: &Path, diags: &mut Diagnostics) -> Vec<Line> {
    read_with(path, &Options::default(), diags).0
}

/// [`read`] with `options`; also says how many conditional lines were kept and dropped.
pub fn read_with(
    path: &Path,
    options: &Options,
    diags: &mut Diagnostics,
) -> (Vec<Line>, Conditionals) {
    let mut lexer = Lexer {
        lines: Vec::new(),
        defs: HashMap::new(),
        stack: Vec::new(),
        config_id: options.config_id.clone(),
        conditionals: Conditionals::default(),
    };
    let name: Arc<str> = path.display().to_string().into();
    match read_text(path, &name, diags) {
        Ok(text) => lexer.file(path, name, &text, diags),
        Err(e) => diags.error(&Loc::file(name), format!("cannot read the file: {e}")),
    }
    (lexer.lines, lexer.conditionals)
}

/// The text of the file at `path` (named `name` in diagnostics). keepalived reads bytes:
/// a byte that is not UTF-8 in a comment (a Latin-1 accent, say) changes nothing and is
/// replaced; elsewhere it is an error at its line (the rest of the file is still read,
/// so that all its errors are reported at once).
fn read_text(path: &Path, name: &str, diags: &mut Diagnostics) -> std::io::Result<String> {
    let bytes = fs::read(path)?;
    if let Ok(text) = String::from_utf8(bytes.clone()) {
        return Ok(text);
    }
    let mut out = String::with_capacity(bytes.len());
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if let Ok(l) = std::str::from_utf8(line) {
            out.push_str(l);
            continue;
        }
        let bad = std::str::from_utf8(line).unwrap_err().valid_up_to();
        let in_comment = line[..bad].iter().any(|&b| b == b'#' || b == b'!');
        if !in_comment {
            diags.error(
                &Loc {
                    file: name.into(),
                    line: i + 1,
                },
                format!(
                    "byte 0x{:02x} (column {}) is not UTF-8, outside a comment: write the \
                     file in UTF-8",
                    line[bad],
                    bad + 1
                ),
            );
        }
        out.push_str(&String::from_utf8_lossy(line));
    }
    Ok(out)
}

/// Lexes `text` as if read from `name`; includes are relative to `dir`.
pub fn read_str(text: &str, name: &str, dir: &Path, diags: &mut Diagnostics) -> Vec<Line> {
    read_str_with(text, name, dir, &Options::default(), diags).0
}

/// [`read_str`] with `options`.
pub fn read_str_with(
    text: &str,
    name: &str,
    dir: &Path,
    options: &Options,
    diags: &mut Diagnostics,
) -> (Vec<Line>, Conditionals) {
    let mut lexer = Lexer {
        lines: Vec::new(),
        defs: HashMap::new(),
        stack: Vec::new(),
        config_id: options.config_id.clone(),
        conditionals: Conditionals::default(),
    };
    lexer.file(&dir.join(name), name.into(), text, diags);
    (lexer.lines, lexer.conditionals)
}

/// keepalived's test of an `@` line (`text` starts with '@'): the rest of the line when
/// its condition holds for `config_id`, None when the line is dropped.
pub fn conditional<'t>(text: &'t str, config_id: Option<&str>) -> Option<&'t str> {
    let (reverse, rest) = match text[1..].strip_prefix('^') {
        Some(r) => (true, r),
        None => (false, &text[1..]),
    };
    // Something must follow the id.
    let end = rest.find([' ', '\t'])?;
    let matches = config_id.is_some_and(|id| id == &rest[..end]);
    (matches != reverse).then(|| rest[end..].trim_start_matches([' ', '\t']))
}

struct Lexer {
    lines: Vec<Line>,
    /// `$NAME=VALUE` definitions.
    defs: HashMap<String, String>,
    /// Canonical paths of the files being read, outermost first (include loops).
    stack: Vec<PathBuf>,
    config_id: Option<String>,
    conditionals: Conditionals,
}

impl Lexer {
    fn file(&mut self, path: &Path, name: Arc<str>, text: &str, diags: &mut Diagnostics) {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.stack.push(canonical);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for (i, raw) in text.lines().enumerate() {
            let loc = Loc {
                file: name.clone(),
                line: i + 1,
            };
            self.physical_line(raw, &loc, &dir, diags);
        }
        self.stack.pop();
    }

    fn physical_line(&mut self, raw: &str, loc: &Loc, dir: &Path, diags: &mut Diagnostics) {
        let text = match decomment(raw) {
            Ok(t) => t,
            Err(m) => return diags.error(loc, m),
        };
        if text.is_empty() {
            return;
        }
        let text = if text.starts_with('@') {
            match conditional(&text, self.config_id.as_deref()) {
                Some(rest) => {
                    self.conditionals.kept += 1;
                    rest.to_owned()
                }
                None => {
                    self.conditionals.dropped += 1;
                    return;
                }
            }
        } else {
            text
        };
        if text.is_empty() {
            return;
        }
        if let Some(def) = text.strip_prefix('$') {
            if let Some((name, value)) = definition(def) {
                if value.ends_with('\\') {
                    return diags.error(
                        loc,
                        format!(
                            "multi-line definition ${name} is not supported by the importer: \
                             expand it in the file first"
                        ),
                    );
                }
                self.defs.insert(name.to_owned(), value.trim().to_owned());
                return;
            }
        }
        if text.starts_with('~') {
            return diags.error(
                loc,
                "~SEQ is not supported by the importer: expand the sequence in the file first",
            );
        }
        let text = match self.substitute(&text) {
            Ok(t) => t,
            Err(m) => return diags.error(loc, m),
        };

        // `include` is recognised on the whole line, before braces are split off
        // (`include conf.d/{a,b}.conf`), as keepalived's check_include does.
        match words(&text) {
            Ok(w) if w.len() == 2 && w[0].is("include") => {
                return self.include(&w[1].text, loc, dir, diags);
            }
            Ok(w) if w.first().is_some_and(|w| w.is("include")) => {
                return diags.error(loc, "`include` takes exactly one file name or pattern");
            }
            _ => {}
        }
        let pieces = match split_braces(&text) {
            Ok(p) => p,
            Err(m) => return diags.error(loc, m),
        };
        let inline = pieces.len() > 1;
        for piece in pieces {
            let words = match words(&piece) {
                Ok(w) => w,
                Err(m) => return diags.error(loc, m),
            };
            if words.is_empty() {
                continue;
            }
            if words.len() == 2 && words[0].is("include") {
                self.include(&words[1].text, loc, dir, diags);
                continue;
            }
            if words[0].is("include") {
                diags.error(loc, "`include` takes exactly one file name or pattern");
                continue;
            }
            self.lines.push(Line {
                loc: loc.clone(),
                words,
                inline,
            });
        }
    }

    /// Replaces `$NAME` and `${NAME}` of defined parameters (others stay as written, as
    /// in keepalived), until nothing changes.
    fn substitute(&self, text: &str) -> Result<String, String> {
        if self.defs.is_empty() || !text.contains('$') {
            return Ok(text.to_owned());
        }
        let mut cur = text.to_owned();
        for _ in 0..16 {
            let next = substitute_once(&cur, &self.defs);
            if next == cur {
                return Ok(cur);
            }
            cur = next;
        }
        Err("parameter substitution does not terminate (a definition refers to itself)".into())
    }

    fn include(&mut self, pattern: &str, loc: &Loc, dir: &Path, diags: &mut Diagnostics) {
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            return diags.error(
                loc,
                format!("includes nested more than {MAX_INCLUDE_DEPTH} deep (an include loop?)"),
            );
        }
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            dir.join(pattern)
        };
        let full_s = full.display().to_string();
        if !has_glob_chars(&full_s) {
            return match read_text(&full, &full_s, diags) {
                Ok(text) => self.included(&full, text, loc, diags),
                Err(e) => diags.error(loc, format!("cannot read included file {full_s}: {e}")),
            };
        }
        let matches = glob(&full_s);
        let mut n = 0;
        for path in matches {
            if path.is_dir() {
                continue;
            }
            match fs::metadata(&path) {
                Ok(m) if m.permissions().mode() & 0o111 != 0 => {
                    diags.warning(
                        loc,
                        format!(
                            "{} is executable: keepalived skips executable configuration \
                             files, so it is not converted either",
                            path.display()
                        ),
                    );
                    continue;
                }
                _ => {}
            }
            match read_text(&path, &path.display().to_string(), diags) {
                Ok(text) => {
                    n += 1;
                    self.included(&path, text, loc, diags);
                }
                Err(e) => diags.error(
                    loc,
                    format!("cannot read included file {}: {e}", path.display()),
                ),
            }
        }
        if n == 0 {
            diags.warning(
                loc,
                format!("include {pattern}: no file matches {full_s} (keepalived skips it too)"),
            );
        }
    }

    fn included(&mut self, path: &Path, text: String, loc: &Loc, diags: &mut Diagnostics) {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.stack.contains(&canonical) {
            return diags.error(
                loc,
                format!("include loop: {} includes itself", path.display()),
            );
        }
        self.file(path, path.display().to_string().into(), &text, diags);
    }
}

/// keepalived's `decomment`: drops the comment (from an unquoted `#` or `!`), unescapes
/// `\#` and `\!` outside quotes, trims.
fn decomment(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut quote = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quote = !quote;
                out.push(c);
            }
            '\\' if !quote && matches!(chars.peek(), Some('#' | '!')) => {
                out.push(chars.next().unwrap_or_default());
            }
            '\\' => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '#' | '!' if !quote => break,
            _ => out.push(c),
        }
    }
    if quote {
        return Err("unterminated quote".into());
    }
    Ok(out.trim().to_owned())
}

/// `NAME=VALUE` after the `$` of a definition line.
fn definition(s: &str) -> Option<(&str, &str)> {
    let (name, value) = s.split_once('=')?;
    let name = name.trim_end();
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    Some((name, value))
}

fn substitute_once(text: &str, defs: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match defs.get(name) {
            Some(value) if !name.is_empty() => {
                out.push_str(value);
                rest = &after[consumed..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits a decommented line at unquoted braces, each brace a piece of its own.
fn split_braces(text: &str) -> Result<Vec<String>, String> {
    let mut pieces = Vec::new();
    let mut cur = String::new();
    let mut quote = false;
    for c in text.chars() {
        match c {
            '"' => {
                quote = !quote;
                cur.push(c);
            }
            '{' | '}' if !quote => {
                if !cur.trim().is_empty() {
                    pieces.push(cur.trim().to_owned());
                }
                cur.clear();
                pieces.push(c.to_string());
            }
            _ => cur.push(c),
        }
    }
    if quote {
        return Err("unterminated quote".into());
    }
    if !cur.trim().is_empty() {
        pieces.push(cur.trim().to_owned());
    }
    Ok(pieces)
}

/// keepalived's `alloc_strvec`: words separated by white space; `"..."` is one word
/// without its quotes; an unquoted word also ends at a quote.
fn words(piece: &str) -> Result<Vec<Word>, String> {
    let mut out = Vec::new();
    let mut rest = piece.trim_start();
    while !rest.is_empty() {
        if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').ok_or("unterminated quote")?;
            out.push(Word {
                text: q[..end].to_owned(),
                quoted: true,
            });
            rest = &q[end + 1..];
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            out.push(Word {
                text: rest[..end].to_owned(),
                quoted: false,
            });
            rest = &rest[end..];
        }
        rest = rest.trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        let d = decomment(line).unwrap();
        split_braces(&d)
            .unwrap()
            .iter()
            .flat_map(|p| words(p).unwrap())
            .map(|w| w.text)
            .collect()
    }

    #[test]
    fn import_lexer_comments_quotes_braces() {
        assert_eq!(
            texts("delay_loop 6 #健康检查的间隔时间(秒)"),
            ["delay_loop", "6"]
        );
        assert_eq!(texts("auth_type PASS ####认证类型"), ["auth_type", "PASS"]);
        assert_eq!(texts("! a comment"), Vec::<String>::new());
        assert_eq!(texts("TCP_CHECK{"), ["TCP_CHECK", "{"]);
        assert_eq!(
            texts(r#"notify_master "/opt/x.sh master # not a comment" # one"#),
            ["notify_master", "/opt/x.sh master # not a comment"]
        );
        assert_eq!(texts(r"auth_pass ab\#c"), ["auth_pass", "ab#c"]);
        assert_eq!(
            texts("url { path / status_code 200 }"),
            ["url", "{", "path", "/", "status_code", "200", "}"]
        );
        assert_eq!(texts(r#"script "a {b}""#), ["script", "a {b}"]);
        assert!(decomment(r#"script "open"#).is_err());
    }

    #[test]
    fn import_lexer_definitions() {
        let mut defs = HashMap::new();
        defs.insert("VIP".to_owned(), "10.0.0.1".to_owned());
        assert_eq!(
            substitute_once("virtual_server $VIP 80 ${VIP}x $OTHER", &defs),
            "virtual_server 10.0.0.1 80 10.0.0.1x $OTHER"
        );
        assert_eq!(definition("VIP = 1.2.3.4"), Some(("VIP", " 1.2.3.4")));
        assert_eq!(definition("1X=2"), None);
    }
}
