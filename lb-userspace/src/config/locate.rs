//! Key paths (`virtual_server[0].real_server[1].weight`) and the parsed TOML document
//! that maps them to byte spans, in both directions:
//! - a span reported by the deserializer (wrong type, unknown key, out-of-range value)
//!   gives the deepest key path that covers it;
//! - a key path named by a semantic check (duplicate service, wrong address family)
//!   gives the span of that value, or of its nearest ancestor present in the file.

use std::fmt;
use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A dotted key path with array indices, printed the way a reader finds the key:
/// `virtual_server[0].real_server[1].weight`, `vrrp_script.chk_nginx.interval`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Seg>);

impl KeyPath {
    pub(crate) fn root() -> Self {
        Self::default()
    }

    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    fn push(&mut self, seg: Seg) {
        self.0.push(seg);
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if bare {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The parsed document, kept for its spans.
pub(crate) struct Document(ImDocument<String>);

/// A node of the document while walking it.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a Table),
}

struct Child<'a> {
    seg: Seg,
    key_span: Option<Range<usize>>,
    node: Node<'a>,
}

impl<'a> Node<'a> {
    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(item) => item.span(),
            Node::Value(value) => value.span(),
            Node::Table(table) => table.span(),
        }
    }

    fn children(self) -> Vec<Child<'a>> {
        let table_children = |t: &'a Table| {
            t.iter()
                .filter(|(_, item)| !item.is_none())
                .map(|(k, item)| Child {
                    seg: Seg::Key(k.to_owned()),
                    key_span: t.key(k).and_then(|key| key.span()),
                    node: Node::Item(item),
                })
                .collect::<Vec<_>>()
        };
        let value_children = |v: &'a Value| match v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| Child {
                    seg: Seg::Index(i),
                    key_span: None,
                    node: Node::Value(v),
                })
                .collect(),
            Value::InlineTable(t) => t
                .iter()
                .map(|(k, v)| Child {
                    seg: Seg::Key(k.to_owned()),
                    key_span: t.key(k).and_then(|key| key.span()),
                    node: Node::Value(v),
                })
                .collect(),
            _ => Vec::new(),
        };
        match self {
            Node::Table(t) => table_children(t),
            Node::Value(v) => value_children(v),
            Node::Item(Item::Table(t)) => table_children(t),
            Node::Item(Item::Value(v)) => value_children(v),
            Node::Item(Item::ArrayOfTables(a)) => a
                .iter()
                .enumerate()
                .map(|(i, t)| Child {
                    seg: Seg::Index(i),
                    key_span: None,
                    node: Node::Table(t),
                })
                .collect(),
            Node::Item(Item::None) => Vec::new(),
        }
    }

    fn child(self, seg: &Seg) -> Option<Child<'a>> {
        self.children().into_iter().find(|c| &c.seg == seg)
    }
}

impl Document {
    pub(crate) fn parse(text: &str) -> Result<Self, toml_edit::TomlError> {
        ImDocument::parse(text.to_owned()).map(Self)
    }

    /// The whole document, for the deserializer.
    pub(crate) fn inner(&self) -> &ImDocument<String> {
        &self.0
    }

    fn root(&self) -> Node<'_> {
        Node::Table(self.0.as_table())
    }

    /// Whether the file spells out this key (as opposed to a default applying).
    pub(crate) fn contains(&self, path: &KeyPath) -> bool {
        let mut node = self.root();
        for seg in &path.0 {
            match node.child(seg) {
                Some(c) => node = c.node,
                None => return false,
            }
        }
        true
    }

    /// Where this key's value is written; for a key that is absent, where its nearest
    /// present ancestor is (so "set `interface`" points at the `[[virtual_server]]`).
    pub(crate) fn span_of(&self, path: &KeyPath) -> Option<Range<usize>> {
        let mut node = self.root();
        let mut best = None;
        for seg in &path.0 {
            let Some(child) = node.child(seg) else { break };
            if let Some(span) = child.node.span().or(child.key_span.clone()) {
                best = Some(span);
            }
            node = child.node;
        }
        best
    }

    /// The deepest key path whose key or value covers `offset` (the smallest span wins).
    pub(crate) fn path_at(&self, offset: usize) -> KeyPath {
        let mut best: Option<(usize, KeyPath)> = None;
        let mut path = KeyPath::root();
        walk(self.root(), &mut path, offset, &mut best);
        best.map(|(_, p)| p).unwrap_or_default()
    }
}

fn walk(node: Node<'_>, path: &mut KeyPath, offset: usize, best: &mut Option<(usize, KeyPath)>) {
    for child in node.children() {
        path.push(child.seg.clone());
        for span in [child.key_span.clone(), child.node.span()]
            .into_iter()
            .flatten()
        {
            // An empty span (the very end of the file) still names its key.
            let covers = span.contains(&offset) || (span.is_empty() && span.start == offset);
            let len = span.len();
            let better = match best {
                None => true,
                Some((best_len, best_path)) => {
                    len < *best_len || (len == *best_len && path.0.len() > best_path.0.len())
                }
            };
            if covers && better {
                *best = Some((len, path.clone()));
            }
        }
        walk(child.node, path, offset, best);
        path.0.pop();
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
[global_defs]
router_id = \"a\"

[[virtual_server]]
ip = \"198.18.0.100\"
port = 80

[[virtual_server.real_server]]
ip = \"198.18.0.21\"
tcp_check = { connect_port = 80, retry = 3 }

[[virtual_server.real_server]]
ip = \"198.18.0.22\"
weight = 70000
";

    #[test]
    fn display_quotes_only_odd_keys() {
        let p = KeyPath::root()
            .key("virtual_server")
            .index(0)
            .key("real_server")
            .index(1)
            .key("weight");
        assert_eq!(p.to_string(), "virtual_server[0].real_server[1].weight");
        let p = KeyPath::root().key("vrrp_script").key("chk.x");
        assert_eq!(p.to_string(), "vrrp_script.\"chk.x\"");
    }

    #[test]
    fn span_and_path_round_trip() {
        let doc = Document::parse(DOC).unwrap();
        let weight = KeyPath::root()
            .key("virtual_server")
            .index(0)
            .key("real_server")
            .index(1)
            .key("weight");
        let span = doc.span_of(&weight).unwrap();
        assert_eq!(&DOC[span.clone()], "70000");
        assert_eq!(line_col(DOC, span.start), (14, 10));
        assert_eq!(doc.path_at(span.start), weight);

        let retry = KeyPath::root()
            .key("virtual_server")
            .index(0)
            .key("real_server")
            .index(0)
            .key("tcp_check")
            .key("retry");
        let span = doc.span_of(&retry).unwrap();
        assert_eq!(&DOC[span.clone()], "3");
        assert_eq!(doc.path_at(span.start), retry);
        assert!(doc.contains(&retry));
        assert!(!doc.contains(&retry.key("nope")));
    }

    #[test]
    fn absent_key_points_at_nearest_ancestor() {
        let doc = Document::parse(DOC).unwrap();
        let iface = KeyPath::root()
            .key("virtual_server")
            .index(0)
            .key("interface");
        let span = doc.span_of(&iface).unwrap();
        // A table's span runs from its header to the end of its body.
        assert!(DOC[span].starts_with("[[virtual_server]]\nip"));
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("a\nbé=c", 5), (2, 3));
        assert_eq!(line_col("", 10), (1, 1));
    }
}
