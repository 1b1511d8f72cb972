//! The checker blocks of a `real_server` (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK,
//! DNS_CHECK, UDP_CHECK, PING_CHECK, SMTP_CHECK): one table of options for all, which
//! `Config::parse` then refuses, at their line, where a kind lacks them; `url` blocks.

use super::super::emit::{Table, Value};
use super::super::parser::Node;
use super::Converter;
use super::keywords::{CHECK, CHECKER_TIMING, URL, ValueKind};

impl Converter<'_> {
    pub(super) fn checker(&mut self, n: &Node) -> Option<Table> {
        if !n.args().is_empty() {
            self.err(
                n,
                format!("unexpected `{}` after {}", n.args()[0].text, n.keyword()),
            );
        }
        let mut t = Table::default();
        let extra = ["url", "require_reply", "host"];
        let mut host_seen = false;
        for c in self.lines(n, &Self::keywords(&[CHECK, CHECKER_TIMING], &extra)) {
            if host_seen && HOST_DEFAULTS.contains(&c.keyword()) {
                // keepalived copies the check's settings into a host when the host
                // block starts: a later one does not reach the hosts before it.
                self.warn(
                    &c,
                    format!(
                        "`{}` after a `host` block: keepalived gives it only to the hosts \
                         after this line (and the check's own target); xlb gives it to \
                         every host that does not set its own",
                        c.keyword()
                    ),
                );
            }
            if self.simple(&[CHECK, CHECKER_TIMING], &c, &mut t) {
                continue;
            }
            match c.keyword() {
                "url" => {
                    let u = self.url(&c);
                    t.push("url", Value::Inline(u), &c.loc, &c.loc);
                }
                "require_reply" => {
                    let v = match c.args() {
                        [] => Some(Value::Bool(true)),
                        _ => self.value(ValueKind::Words, &c),
                    };
                    if let Some(v) = v {
                        self.set(&mut t, "require_reply", v, &c);
                    }
                }
                "host" if n.keyword() == "SMTP_CHECK" => {
                    host_seen = true;
                    // keepalived 2 makes each host a checker of its own, starting from the
                    // SMTP_CHECK's connection settings: xlb's `host` entries.
                    if !c.args().is_empty() {
                        self.err(&c, "`host` takes a block, no value");
                    }
                    let mut h = Table::default();
                    for k in self.lines(&c, &Self::keywords(&[CHECK, CHECKER_TIMING], &[])) {
                        if !self.simple(&[CHECK, CHECKER_TIMING], &k, &mut h) {
                            self.unknown(&k, "host");
                        }
                    }
                    t.push("host", Value::Inline(h), &c.loc, &c.loc);
                }
                _ => self.unknown(&c, n.keyword()),
            }
        }
        Some(t)
    }

    fn url(&mut self, n: &Node) -> Table {
        let mut u = Table::default();
        for c in self.lines(n, &Self::keywords(&[URL], &["status_code"])) {
            if self.simple(&[URL], &c, &mut u) {
                continue;
            }
            match c.keyword() {
                "status_code" => {
                    let words: Vec<&str> = c.args().iter().map(|w| w.text.as_str()).collect();
                    let v = match words.as_slice() {
                        [] => {
                            self.err(&c, "`status_code` needs a value");
                            continue;
                        }
                        [one] => match one.parse::<i64>() {
                            Ok(code) => Value::Int(code),
                            Err(_) => Value::Str(one.to_string()),
                        },
                        many => Value::Str(many.join(" ")),
                    };
                    self.set(&mut u, "status_code", v, &c);
                }
                "regex_options" | "regex_stack" | "regex_min_offset" | "regex_max_offset" => {
                    self.err(
                        &c,
                        format!(
                            "`{}` is not supported: xlb matches `regex` (Rust regex syntax) \
                             against the whole body",
                            c.keyword()
                        ),
                    );
                }
                _ => self.unknown(&c, "url"),
            }
        }
        if u.get("path").is_none() {
            self.err(n, "url without `path`");
        }
        u
    }
}

/// The SMTP_CHECK keywords a `host` block starts from.
const HOST_DEFAULTS: [&str; 7] = [
    "connect_ip",
    "connect_port",
    "bindto",
    "bind_port",
    "bind_if",
    "fwmark",
    "connect_timeout",
];
