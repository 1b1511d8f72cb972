//! One keepalived statement: its arguments read as a value of a [`ValueKind`], the
//! generic handling of a keyword by the block's tables (carried over, dropped,
//! refused, unknown), and the lines of a block.

use std::net::IpAddr;

use super::super::Loc;
use super::super::emit::{Table, Value};
use super::super::parser::Node;
use super::Converter;
use super::keywords::{
    KeywordReason, KeywordRule, ValueKind, find_reason, find_rule, known_keywords,
};

/// Flags whose handler in keepalived's parsers (vrrp_parser.c `vrrp_nopreempt_handler`,
/// check_parser.c `hasuspend_handler`, ...) sets the flag without reading its argument:
/// `nopreempt off` means nopreempt there, and here.
const FLAGS_ARG_IGNORED: &[&str] = &["nopreempt", "dont_track_primary", "alpha", "ha_suspend"];

/// The Levenshtein distance between `a` and `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The keyword of `known` nearest to `word`, if it is close enough to be a misspelling
/// (at most a third of its letters, rounded up, differ).
pub(super) fn did_you_mean<'a>(
    word: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = word.chars().count().div_ceil(3);
    known
        .into_iter()
        .filter(|k| *k != word)
        .map(|k| (edit_distance(word, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

pub(super) fn parse_num(s: &str) -> Option<Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::Int(i));
    }
    // Rust's float syntax is wider than keepalived's strtod in places that do not
    // matter here (`inf`, `nan` are refused below).
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && s.bytes().any(|b| b.is_ascii_digit()) => Some(Value::Float(f)),
        _ => None,
    }
}

pub(super) fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

pub(super) fn bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// Whether `prefix` of `net` holds `ip`.
pub(super) fn in_subnet(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// A command line that xlb (like keepalived 2.x) splits back into exactly `words`
/// ([`crate::process::words`]): a word with a blank, a quote, a backslash or shell
/// syntax is single-quoted, its `\\` and `'` escaped (keepalived's splitter reads
/// backslashes inside quotes too).
pub(super) fn command_line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if w.is_empty() || w.contains(|c: char| c.is_whitespace() || "'\"\\$`;&|<>".contains(c))
            {
                format!("'{}'", w.replace('\\', r"\\").replace('\'', r"\'"))
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Converter<'_> {
    // ---- generic helpers ----------------------------------------------------------

    pub(super) fn err(&mut self, n: &Node, msg: impl Into<String>) {
        self.d.error(&n.loc, msg);
    }

    pub(super) fn warn(&mut self, n: &Node, msg: impl Into<String>) {
        self.d.warning(&n.loc, msg);
    }

    /// Exactly one argument.
    pub(super) fn one<'n>(&mut self, n: &'n Node) -> Option<&'n str> {
        match n.args() {
            [] => {
                self.err(n, format!("`{}` needs a value", n.keyword()));
                None
            }
            [w] => Some(&w.text),
            [w, extra, ..] => {
                self.err(
                    n,
                    format!(
                        "unexpected `{}` after `{} {}`: one value expected",
                        extra.text,
                        n.keyword(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    pub(super) fn value(&mut self, k: ValueKind, n: &Node) -> Option<Value> {
        if n.block.is_some() {
            self.err(n, format!("`{}` takes no {{ }} block", n.keyword()));
            return None;
        }
        let args: Vec<String> = n.args().iter().map(|w| w.text.clone()).collect();
        match k {
            ValueKind::Num => {
                let s = self.one(n)?;
                let v = parse_num(s);
                if v.is_none() {
                    self.err(n, format!("`{}`: {s:?} is not a number", n.keyword()));
                }
                v
            }
            ValueKind::Str => self.one(n).map(|s| Value::Str(s.to_owned())),
            ValueKind::Flag => match n.args() {
                [] => Some(Value::Bool(true)),
                [w] if FLAGS_ARG_IGNORED.contains(&n.keyword()) => {
                    self.warn(
                        n,
                        format!(
                            "`{} {}`: keepalived ignores the argument of `{}` and sets the \
                             flag; so does this conversion (delete the line to leave it unset)",
                            n.keyword(),
                            w.text,
                            n.keyword()
                        ),
                    );
                    Some(Value::Bool(true))
                }
                [w] => {
                    let b = bool_word(&w.text);
                    if b.is_none() {
                        self.err(
                            n,
                            format!(
                                "`{}` takes no value, or true/false (on/off, yes/no), not {:?}",
                                n.keyword(),
                                w.text
                            ),
                        );
                    }
                    b.map(Value::Bool)
                }
                _ => {
                    self.err(n, format!("`{}` takes at most one value", n.keyword()));
                    None
                }
            },
            ValueKind::Words => {
                if args.is_empty() {
                    self.err(n, format!("`{}` needs a value", n.keyword()));
                    return None;
                }
                Some(Value::Str(args.join(" ")))
            }
            ValueKind::Cmd => {
                if args.is_empty() {
                    self.err(n, format!("`{}` needs a command", n.keyword()));
                    return None;
                }
                if args.len() > 1 {
                    self.warn(
                        n,
                        format!(
                            "`{}`: keepalived 2 runs only {:?} (the first word; quote the \
                             command to pass arguments); converted as the whole line {:?}",
                            n.keyword(),
                            args[0],
                            command_line(&args)
                        ),
                    );
                    return Some(Value::Str(command_line(&args)));
                }
                self.command(n, &args[0]).map(Value::Str)
            }
            ValueKind::Notify => match args.as_slice() {
                [] => {
                    self.err(n, format!("`{}` needs a command", n.keyword()));
                    None
                }
                [cmd] => self.command(n, cmd).map(Value::Str),
                [cmd, user @ ..] => {
                    self.err(
                        n,
                        format!(
                            "`{}`: keepalived runs {cmd:?} as user/group {:?}; xlb runs \
                             these commands as global_defs script_user: drop the user, or \
                             quote the whole command if {:?} are arguments (`{} \"{}\"`)",
                            n.keyword(),
                            user.join(" "),
                            user.join(" "),
                            n.keyword(),
                            args.join(" ")
                        ),
                    );
                    None
                }
            },
        }
    }

    /// keepalived's script line `line` as an xlb command that runs the same way: both
    /// split it into words and run it without a shell. Shell syntax outside quotes
    /// was a plain argument for keepalived; it is quoted so that it stays one (and
    /// `xlb check` accepts it), with a warning.
    fn command(&mut self, n: &Node, line: &str) -> Option<String> {
        match crate::process::words::split(line) {
            Err(e) => {
                self.err(
                    n,
                    format!("`{}`: keepalived cannot parse {line:?}: {e}", n.keyword()),
                );
                None
            }
            Ok(split) => match split.shell_syntax {
                None => Some(line.to_owned()),
                Some(op) => {
                    let quoted = command_line(&split.argv);
                    self.warn(
                        n,
                        format!(
                            "`{}`: keepalived 2 runs {line:?} without a shell, so `{op}` \
                             is a plain argument to the program; converted the same way as \
                             {quoted:?} (to use a shell, write /bin/sh -c '...')",
                            n.keyword()
                        ),
                    );
                    Some(quoted)
                }
            },
        }
    }

    /// Sets `key`, warning when a keyword sets it again.
    pub(super) fn set(&mut self, t: &mut Table, key: &str, v: Value, n: &Node) {
        if let Some(old) = t.set(key, v, &n.loc) {
            self.warn(
                n,
                format!(
                    "`{}` overrides the value set at {old} (the last one counts, as in \
                     keepalived)",
                    n.keyword()
                ),
            );
        }
    }

    /// Handles `n` if `spec` lists its keyword.
    pub(super) fn simple(&mut self, tables: &[&[KeywordRule]], n: &Node, t: &mut Table) -> bool {
        let Some(rule) = tables
            .iter()
            .find_map(|rules| find_rule(rules, n.keyword()))
        else {
            return false;
        };
        // keepalived's `notify_* CMD USER [GROUP]` on an instance or a sync group: xlb's
        // `notify_*_user`.
        const WITH_USER: &[&str] = &[
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
            "notify",
        ];
        if let (ValueKind::Notify, [cmd, user @ ..]) = (rule.conversion, n.args()) {
            if !user.is_empty() && WITH_USER.contains(&rule.xlb) {
                if let Some(c) = self.command(n, &cmd.text) {
                    self.set(t, rule.xlb, Value::Str(c), n);
                    let user: Vec<&str> = user.iter().map(|w| w.text.as_str()).collect();
                    let key = format!("{}_user", rule.xlb);
                    self.set(t, &key, Value::Str(user.join(" ")), n);
                }
                return true;
            }
        }
        if let Some(v) = self.value(rule.conversion, n) {
            self.set(t, rule.xlb, v, n);
        }
        true
    }

    /// Warns and drops `n` if `list` names its keyword.
    pub(super) fn ignored(&mut self, reasons: &[KeywordReason], n: &Node) -> bool {
        let Some(why) = find_reason(reasons, n.keyword()) else {
            return false;
        };
        self.warn(n, format!("`{}` ignored: {why}", n.keyword()));
        true
    }

    /// Refuses `n` if `list` names its keyword.
    pub(super) fn refused(&mut self, reasons: &[KeywordReason], n: &Node) -> bool {
        let Some(why) = find_reason(reasons, n.keyword()) else {
            return false;
        };
        self.err(n, format!("`{}` is not supported: {why}", n.keyword()));
        true
    }

    /// An unknown keyword. keepalived logs "Unknown keyword" and skips it (with its
    /// block): a misspelling of a keyword the importer knows is skipped the same way,
    /// with a warning naming the keyword meant; anything else may be a keepalived
    /// feature xlb lacks, and is refused.
    pub(super) fn unknown(&mut self, n: &Node, block: &str) {
        match did_you_mean(n.keyword(), known_keywords()) {
            Some(k) => self.warn(
                n,
                format!(
                    "`{}` in {block} is not a keyword the importer knows (did you mean \
                     `{k}`?): keepalived skips a misspelt keyword{}, and so does this \
                     conversion",
                    n.keyword(),
                    if n.block.is_some() {
                        " and its block"
                    } else {
                        ""
                    }
                ),
            ),
            None => self.err(
                n,
                format!(
                    "`{}` in {block}: not a keyword xlb knows, or a keepalived keyword xlb \
                     has no equivalent for",
                    n.keyword()
                ),
            ),
        }
    }

    /// The block's children, with one-line blocks (`url { path / status_code 200 }`)
    /// split at each keyword of `keywords` (keepalived reads one keyword per line).
    pub(super) fn lines(&mut self, parent: &Node, keywords: &[&str]) -> Vec<Node> {
        let Some(children) = &parent.block else {
            self.err(
                parent,
                format!("`{}` needs a {{ }} block", parent.display()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for n in children {
            let cut: Vec<usize> = n
                .words
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, w)| !w.quoted && keywords.contains(&w.text.as_str()))
                .map(|(i, _)| i)
                .collect();
            if !n.inline || cut.is_empty() {
                out.push(n.clone());
                continue;
            }
            self.warn(
                n,
                format!(
                    "several keywords on one line (`{}`): keepalived reads one keyword per \
                     line; converted as one line each",
                    n.display()
                ),
            );
            let mut start = 0;
            for &end in cut.iter().chain(std::iter::once(&n.words.len())) {
                let last = end == n.words.len();
                out.push(Node {
                    loc: n.loc.clone(),
                    words: n.words[start..end].to_vec(),
                    inline: false,
                    block: if last { n.block.clone() } else { None },
                });
                start = end;
            }
        }
        out
    }

    /// The entries of a value block: the words of each line.
    pub(super) fn entries(&mut self, parent: &Node) -> Vec<(Loc, Vec<String>)> {
        self.entries_after(parent, 0)
    }

    /// [`Self::entries`] of a block whose keyword takes `nargs` arguments.
    pub(super) fn entries_after(&mut self, parent: &Node, nargs: usize) -> Vec<(Loc, Vec<String>)> {
        if parent.args().len() > nargs {
            self.err(
                parent,
                format!(
                    "unexpected `{}` after `{}`",
                    parent.args()[nargs].text,
                    parent.keyword()
                ),
            );
        }
        let Some(children) = &parent.block else {
            self.err(
                parent,
                format!("`{}` needs a {{ }} block", parent.keyword()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for n in children {
            if n.block.is_some() {
                self.err(n, format!("unexpected block in `{}`", parent.keyword()));
                continue;
            }
            out.push((
                n.loc.clone(),
                n.words.iter().map(|w| w.text.clone()).collect(),
            ));
        }
        out
    }

    pub(super) fn keywords(tables: &[&[KeywordRule]], extra: &[&'static str]) -> Vec<&'static str> {
        tables
            .iter()
            .flat_map(|rules| rules.iter())
            .map(|r| r.keepalived)
            .chain(extra.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::import::import_str;
    use crate::process::words;

    /// The argv keepalived 2.x would run for `line` (the quoted script of a notify or
    /// `script` keyword) and the one xlb runs for what the importer made of it.
    #[test]
    fn imported_commands_split_into_keepalived_s_words() {
        for (line, argv) in [
            (r"/opt/x.sh master", &["/opt/x.sh", "master"][..]),
            (r"/opt/x.sh 'a b' c\ d", &["/opt/x.sh", "a b", "c d"]),
            // No shell in keepalived 2: these are plain arguments, and stay so.
            (
                r"/bin/echo up >> /var/log/x; reboot",
                &["/bin/echo", "up", ">>", "/var/log/x;", "reboot"],
            ),
            (
                r"/bin/sh -c 'echo $1 | logger'",
                &["/bin/sh", "-c", "echo $1 | logger"],
            ),
        ] {
            let conf = format!(
                "vrrp_instance V {{\n interface eth0\n virtual_router_id 1\n \
                 virtual_ipaddress {{\n  198.18.1.100\n }}\n notify_master \"{line}\"\n}}\n"
            );
            let c = import_str(&conf, "keepalived.conf", Path::new("/nonexistent"))
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            let imported = c.config.vrrp_instance[0].notify_master.clone().unwrap();
            assert_eq!(words::split_command(&imported).unwrap(), argv, "{line}");
            // What xlb runs is those words; nothing is left for a shell.
            let s = words::split(&imported).unwrap();
            assert_eq!(s.shell_syntax, None, "{imported}");
        }
    }
}
