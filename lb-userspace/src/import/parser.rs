//! Logical lines into a tree: a line followed by a `{` line is a block holding the
//! lines up to the matching `}`, as keepalived's `process_stream` reads them (a block
//! may span included files).

use super::lexer::{Line, Word};
use super::{Diagnostics, Loc};

/// A keyword line, with its block if it opens one.
#[derive(Debug, Clone)]
pub struct Node {
    pub loc: Loc,
    /// The keyword (for value blocks such as `virtual_ipaddress`, the first word of
    /// the entry) and its arguments.
    pub words: Vec<Word>,
    /// Shared its physical line with a brace (see [`Line::inline`]).
    pub inline: bool,
    /// `Some` when a block follows the line (possibly empty).
    pub block: Option<Vec<Node>>,
}

impl Node {
    /// The keyword (first word).
    pub fn keyword(&self) -> &str {
        &self.words[0].text
    }

    /// The arguments after the keyword.
    pub fn args(&self) -> &[Word] {
        &self.words[1..]
    }

    /// The children of the block (none when there is no block).
    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or(&[])
    }

    /// `keyword arg1 arg2 ...`, for messages.
    pub fn display(&self) -> String {
        self.words
            .iter()
            .map(|w| {
                if w.quoted {
                    format!("\"{}\"", w.text)
                } else {
                    w.text.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Builds the tree of top-level statements.
pub fn parse(lines: Vec<Line>, diags: &mut Diagnostics) -> Vec<Node> {
    // Open blocks: the nodes collected so far at each level; the node owning level k
    // (k >= 1) is the last node of level k - 1.
    let mut levels: Vec<Vec<Node>> = vec![Vec::new()];
    // Whether the previous line was a keyword line that may take a `{`.
    let mut may_open = false;
    for line in lines {
        if line.is_brace("{") {
            let last = levels.last_mut().and_then(|l| l.last_mut());
            match last {
                Some(node) if may_open && node.block.is_none() => {
                    node.block = Some(Vec::new());
                    levels.push(Vec::new());
                }
                _ => diags.error(
                    &line.loc,
                    "unexpected `{`: no keyword line opens this block",
                ),
            }
            may_open = false;
            continue;
        }
        if line.is_brace("}") {
            may_open = false;
            if levels.len() == 1 {
                diags.error(&line.loc, "unexpected `}`: no block is open here");
                continue;
            }
            let children = levels.pop().unwrap_or_default();
            if let Some(owner) = levels.last_mut().and_then(|l| l.last_mut()) {
                owner.block = Some(children);
            }
            continue;
        }
        levels
            .last_mut()
            .expect("the top level is never popped")
            .push(Node {
                loc: line.loc,
                words: line.words,
                inline: line.inline,
                block: None,
            });
        may_open = true;
    }
    while levels.len() > 1 {
        let children = levels.pop().unwrap_or_default();
        if let Some(owner) = levels.last_mut().and_then(|l| l.last_mut()) {
            diags.error(
                &owner.loc,
                format!(
                    "the block of `{}` is not closed (missing `}}`)",
                    owner.display()
                ),
            );
            owner.block = Some(children);
        }
    }
    levels.pop().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::lexer;
    use super::*;

    fn tree(text: &str) -> (Vec<Node>, Diagnostics) {
        let mut d = Diagnostics::default();
        let lines = lexer::read_str(text, "t.conf", Path::new("/nonexistent"), &mut d);
        (parse(lines, &mut d), d)
    }

    #[test]
    fn import_parser_blocks() {
        let (nodes, d) = tree(
            "global_defs {\n router_id A\n}\nvirtual_server 1.2.3.4 80\n{\n \
             real_server 1.2.3.5 80 { weight 2 }\n TCP_CHECK{\n }\n}\n",
        );
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].children()[0].display(), "router_id A");
        assert_eq!(nodes[0].children()[0].loc.line, 2);
        let vs = &nodes[1];
        assert_eq!(vs.args().len(), 2);
        let rs = &vs.children()[0];
        assert_eq!(rs.children()[0].display(), "weight 2");
        assert!(rs.children()[0].inline);
        assert_eq!(vs.children()[1].block.as_ref().map(Vec::len), Some(0));
    }

    #[test]
    fn import_parser_unbalanced() {
        let (_, d) = tree("a {\n b\n");
        assert_eq!(d.errors.len(), 1);
        assert_eq!(d.errors[0].loc.line, 1);
        let (_, d) = tree("a\n}\n");
        assert_eq!(d.errors[0].loc.line, 2);
        let (_, d) = tree("a {\n}\n{\n}\n");
        assert_eq!(d.errors[0].loc.line, 3);
    }
}
