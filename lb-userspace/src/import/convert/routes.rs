//! `static_ipaddress`, `static_routes`, `static_rules` and an instance's
//! `virtual_routes` / `virtual_rules`: one TOML string per line, keepalived's text kept,
//! checked with xlb's own parsers so that a problem is reported at its keepalived line.
//!
//! As keepalived 2.x reads them (`vrrp_iproute.c`, `vrrp_iprule.c`, `vrrp_ipaddress.c`):
//! - a keyword keepalived knows and xlb does not (`mtu`, `encap`, `realms`, `sport`...)
//!   is an error naming it;
//! - an entry keepalived itself refuses (a malformed address, no destination, no action,
//!   mixed families) is skipped by keepalived with a config error, and by the conversion
//!   with a warning;
//! - a rule without a preference gets the one keepalived gives it (16384, then down by
//!   one per rule and family, in file order), with keepalived's warning;
//! - `gw` and `or` are deprecated in keepalived (warned) and still work: `or` makes two
//!   next hops;
//! - a static address without `dev` goes on keepalived's default interface
//!   (`global_defs default_interface`, else eth0), written out.

use super::super::Loc;
use super::super::emit::{Table, Value};
use super::super::parser::Node;
use super::Converter;
use crate::config::{IpRoute, RuleDraft, VirtualIpAddress};

/// Route keywords keepalived reads that xlb does not configure.
const ROUTE_UNSUPPORTED: &[&str] = &[
    "as",
    "tos",
    "dsfield",
    "encap",
    "expires",
    "mtu",
    "hoplimit",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "realms",
    "rto_min",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "pref",
    "ttl-propagate",
    "fastopen_no_cookie",
    "add",
    "prepend",
    "append",
    "track_group",
    "vrf",
    "from",
];

/// Rule keywords keepalived reads that xlb does not configure.
const RULE_UNSUPPORTED: &[&str] = &[
    "realms",
    "suppress_prefixlength",
    "sup_pl",
    "suppress_ifgroup",
    "sup_group",
    "tunnel-id",
    "uidrange",
    "l3mdev",
    "ipproto",
    "sport",
    "dport",
    "track_group",
];

/// keepalived's first automatic rule preference (`RULE_START_PRIORITY`).
const RULE_START_PRIORITY: u32 = 16384;

/// Where keepalived numbers rules without a preference from, per family.
#[derive(Debug)]
pub(super) struct RuleNumbers {
    v4: u32,
    v6: u32,
}

impl Default for RuleNumbers {
    fn default() -> Self {
        Self {
            v4: RULE_START_PRIORITY,
            v6: RULE_START_PRIORITY,
        }
    }
}

impl Converter<'_> {
    /// A top-level `static_ipaddress` block into `out.static_ipaddress`.
    pub(super) fn static_ipaddress(&mut self, n: &Node, out: &mut Table) {
        let key = "static_ipaddress";
        for (loc, words) in self.entries(n) {
            let mut text = words.join(" ");
            if let Ok(a) = text.parse::<VirtualIpAddress>() {
                if a.dev.is_none() {
                    let dev = self
                        .default_interface
                        .as_ref()
                        .map_or("eth0".to_owned(), |(i, _)| i.clone());
                    self.d.warning(
                        &loc,
                        format!(
                            "static address {} has no `dev`: keepalived puts it on its default \
                             interface, {dev}; so does this conversion (`dev {dev}` written out)",
                            a.addr
                        ),
                    );
                    text.push_str(&format!(" dev {dev}"));
                }
            }
            out.push(key, Value::Str(text), &n.loc, &loc);
        }
    }

    /// A `static_routes` or `virtual_routes` block into `out[key]`.
    pub(super) fn routes(&mut self, n: &Node, out: &mut Table, key: &str) {
        for (loc, words) in self.entries(n) {
            if let Some(w) = words
                .iter()
                .find(|w| ROUTE_UNSUPPORTED.contains(&w.as_str()))
            {
                self.d.error(
                    &loc,
                    format!(
                        "route option `{w}` cannot be converted: xlb configures routes with \
                         src, via, dev, scope, table, metric, onlink, protocol, nexthop and the \
                         types blackhole/unreachable/prohibit/throw"
                    ),
                );
                continue;
            }
            self.deprecated(&loc, &words, "gw", "via");
            self.deprecated(&loc, &words, "or", "nexthop");
            let text = words.join(" ");
            match text.parse::<IpRoute>() {
                Ok(_) => out.push(key, Value::Str(text), &n.loc, &loc),
                Err(m) => self.keepalived_refuses(&loc, "route", &m, &text),
            }
        }
        if out.get(key).is_none() {
            out.set(key, Value::Array(Vec::new()), &n.loc);
        }
    }

    /// A `static_rules` or `virtual_rules` block into `out[key]`.
    pub(super) fn rules(&mut self, n: &Node, out: &mut Table, key: &str) {
        for (loc, words) in self.entries(n) {
            if let Some(w) = words
                .iter()
                .find(|w| RULE_UNSUPPORTED.contains(&w.as_str()))
            {
                self.d.error(
                    &loc,
                    format!(
                        "rule option `{w}` cannot be converted: xlb configures rules with from, \
                         to, not, iif, oif, fwmark, tos, preference and the actions table, goto, \
                         nop, blackhole, unreachable, prohibit"
                    ),
                );
                continue;
            }
            let mut text = words.join(" ");
            match text.parse::<RuleDraft>() {
                Ok(d) => {
                    if !d.has_priority {
                        let next = if d.rule.ipv6 {
                            &mut self.rule_numbers.v6
                        } else {
                            &mut self.rule_numbers.v4
                        };
                        let p = *next;
                        *next -= 1;
                        self.d.warning(
                            &loc,
                            format!(
                                "rule has no preference: keepalived sets it to {p} (\"This is \
                                 probably not what you want\"); so does this conversion \
                                 (`preference {p}` written out)"
                            ),
                        );
                        text.push_str(&format!(" preference {p}"));
                    }
                    out.push(key, Value::Str(text), &n.loc, &loc);
                }
                Err(m) => self.keepalived_refuses(&loc, "rule", &m, &text),
            }
        }
        if out.get(key).is_none() {
            out.set(key, Value::Array(Vec::new()), &n.loc);
        }
    }

    fn deprecated(&mut self, loc: &Loc, words: &[String], old: &str, new: &str) {
        if words.iter().any(|w| w == old) {
            self.d.warning(
                loc,
                format!(
                    "`{old}` is deprecated in keepalived (\"Please use {new}\") and still works; \
                     xlb reads it the same way"
                ),
            );
        }
    }

    /// An entry xlb's parser refused. A table name is an error (keepalived reads
    /// rt_tables; xlb wants the number); anything else keepalived refuses too, with a
    /// config error, and runs without the entry: so does the conversion, with a warning.
    fn keepalived_refuses(&mut self, loc: &Loc, what: &str, message: &str, text: &str) {
        if message.contains("rt_tables") {
            self.d.error(loc, format!("{what} `{text}`: {message}"));
            return;
        }
        self.d.warning(
            loc,
            format!(
                "{what} `{text}` skipped: {message}; keepalived refuses it too (a config \
                 error) and runs without it, and so does this conversion: fix the line if the \
                 {what} is needed"
            ),
        );
    }
}
