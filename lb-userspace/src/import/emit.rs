//! The converted configuration as an ordered TOML tree, written the way a person would
//! write xlb.toml: sections for `global_defs`, each `vrrp_script`, `vrrp_instance`,
//! `virtual_server` and `real_server`; small tables (`authentication`, checkers) inline;
//! keys in the order of the keepalived.conf they come from.
//!
//! Every value remembers the keepalived line it comes from, under the key path xlb's
//! [`ConfigError`](crate::config::ConfigError) names (`virtual_server[0].real_server[1].port`),
//! so a value xlb refuses is reported at its keepalived line.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::Loc;

/// Inline tables and arrays longer than this are written as sections instead.
const MAX_INLINE: usize = 100;

/// A TOML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Elem>),
    /// A table written inline when short enough.
    Inline(Table),
    /// A table always written as a `[section]` (array elements: `[[section]]`).
    Section(Table),
}

/// An array element and its line.
#[derive(Debug, Clone, PartialEq)]
pub struct Elem {
    pub value: Value,
    pub loc: Loc,
}

/// One key of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub loc: Loc,
}

/// An ordered table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub entries: Vec<Entry>,
    /// A comment line written above the section header.
    pub comment: Option<String>,
}

impl Table {
    /// Sets `key`, replacing an earlier value in place. Returns the earlier value's line.
    pub fn set(&mut self, key: &str, value: Value, loc: &Loc) -> Option<Loc> {
        if let Some(e) = self.entries.iter_mut().find(|e| e.key == key) {
            let old = std::mem::replace(&mut e.loc, loc.clone());
            e.value = value;
            return Some(old);
        }
        self.entries.push(Entry {
            key: key.to_owned(),
            value,
            loc: loc.clone(),
        });
        None
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(i))
    }

    /// Appends an element to the array `key` (created at `loc` if absent).
    pub fn push(&mut self, key: &str, value: Value, loc: &Loc, elem_loc: &Loc) {
        let elem = Elem {
            value,
            loc: elem_loc.clone(),
        };
        match self.get_mut(key) {
            Some(Value::Array(items)) => items.push(elem),
            _ => {
                self.set(key, Value::Array(vec![elem]), loc);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Key path helpers, printed exactly as `crate::config`'s `KeyPath` prints them.
pub fn path_key(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let k = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        k
    } else {
        format!("{parent}.{k}")
    }
}

pub fn path_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The key path without its last segment.
pub fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']') {
        return path.rfind('[').map(|i| &path[..i]);
    }
    // Find where the last key starts: scan, skipping quoted keys.
    let bytes = path.as_bytes();
    let mut i = 0;
    let mut last_start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'.' => {
                last_start = i;
                i += 1;
            }
            b'[' => {
                last_start = i;
                i += 1;
            }
            _ => i += 1,
        }
    }
    Some(&path[..last_start])
}

/// Records the line of every key path of `table` (rooted at `path`).
pub fn index_locs(table: &Table, path: &str, out: &mut HashMap<String, Loc>) {
    for e in &table.entries {
        let p = path_key(path, &e.key);
        out.insert(p.clone(), e.loc.clone());
        index_value(&e.value, &p, out);
    }
}

fn index_value(v: &Value, path: &str, out: &mut HashMap<String, Loc>) {
    match v {
        Value::Inline(t) | Value::Section(t) => index_locs(t, path, out),
        Value::Array(items) => {
            for (i, el) in items.iter().enumerate() {
                let p = path_index(path, i);
                out.insert(p.clone(), el.loc.clone());
                index_value(&el.value, &p, out);
            }
        }
        _ => {}
    }
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare { k.to_owned() } else { quote(k) }
}

/// The inline rendering of a value (sections rendered inline too).
fn inline(v: &Value) -> String {
    match v {
        Value::Str(s) => quote(s),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(|e| inline(&e.value)).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Inline(t) | Value::Section(t) => {
            if t.entries.is_empty() {
                return "{}".to_owned();
            }
            let parts: Vec<String> = t
                .entries
                .iter()
                .map(|e| format!("{} = {}", key(&e.key), inline(&e.value)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
    }
}

/// How an entry is written: on a `key = value` line, as a `[section]`, or as
/// `[[section]]` elements.
enum Form<'a> {
    Line,
    Section(&'a Table),
    Sections(Vec<&'a Table>),
}

fn form<'a>(k: &str, v: &'a Value) -> Form<'a> {
    let long = |s: String| k.len() + 3 + s.len() > MAX_INLINE;
    match v {
        Value::Section(t) => Form::Section(t),
        Value::Inline(t) if long(inline(v)) && !t.entries.is_empty() => Form::Section(t),
        Value::Array(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|e| matches!(e.value, Value::Section(_) | Value::Inline(_)))
                && (items.iter().any(|e| matches!(e.value, Value::Section(_)))
                    || long(inline(v))) =>
        {
            Form::Sections(
                items
                    .iter()
                    .filter_map(|e| match &e.value {
                        Value::Section(t) | Value::Inline(t) => Some(t),
                        _ => None,
                    })
                    .collect(),
            )
        }
        _ => Form::Line,
    }
}

/// Writes `table` (the document root when `header` is empty).
pub fn write_table(out: &mut String, header: &str, array: bool, table: &Table) {
    let mut lines = Vec::new();
    let mut later = Vec::new();
    for e in &table.entries {
        match form(&e.key, &e.value) {
            Form::Line => lines.push(e),
            f => later.push((&e.key, f)),
        }
    }
    // A table holding only sub-sections needs no header of its own.
    if !header.is_empty() && (array || !lines.is_empty() || later.is_empty()) {
        if !out.is_empty() {
            out.push('\n');
        }
        if let Some(c) = &table.comment {
            let _ = writeln!(out, "# {c}");
        }
        if array {
            let _ = writeln!(out, "[[{header}]]");
        } else {
            let _ = writeln!(out, "[{header}]");
        }
    }
    for e in lines {
        let one_line = inline(&e.value);
        match &e.value {
            // A long array of values: one element per line.
            Value::Array(items) if e.key.len() + 3 + one_line.len() > MAX_INLINE => {
                let _ = writeln!(out, "{} = [", key(&e.key));
                for el in items {
                    let _ = writeln!(out, "    {},", inline(&el.value));
                }
                out.push_str("]\n");
            }
            _ => {
                let _ = writeln!(out, "{} = {one_line}", key(&e.key));
            }
        }
    }
    for (k, f) in later {
        let h = if header.is_empty() {
            key(k)
        } else {
            format!("{header}.{}", key(k))
        };
        match f {
            Form::Section(t) => write_table(out, &h, false, t),
            Form::Sections(ts) => {
                for t in ts {
                    write_table(out, &h, true, t);
                }
            }
            Form::Line => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_emit_paths() {
        assert_eq!(path_key("", "virtual_server"), "virtual_server");
        assert_eq!(path_key("vrrp_script", "chk.x"), "vrrp_script.\"chk.x\"");
        assert_eq!(parent_path("a[0].b[1].c"), Some("a[0].b[1]"));
        assert_eq!(parent_path("a[0].b[1]"), Some("a[0].b"));
        assert_eq!(
            parent_path("vrrp_script.\"chk.x\".interval"),
            Some("vrrp_script.\"chk.x\"")
        );
        assert_eq!(parent_path("vrrp_script.\"chk.x\""), Some("vrrp_script"));
        assert_eq!(parent_path("global_defs"), Some(""));
        assert_eq!(parent_path(""), None);
        assert_eq!(quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }
}
