//! `global_defs`: the director-wide settings, with `smtp_server`,
//! `notification_email` and `lvs_timeouts` converted by hand.

use std::net::IpAddr;

use super::super::emit::{Table, Value};
use super::super::parser::Node;
use super::Converter;
use super::keywords::{GLOBAL, GLOBAL_IGNORED, GLOBAL_REFUSED};
use super::statement::parse_num;

impl Converter<'_> {
    pub(super) fn global_defs(&mut self, n: &Node) {
        let mut g = std::mem::take(&mut self.global);
        if g.comment.is_none() {
            g.comment = Some(format!("global_defs ({})", n.loc));
        }
        let words = Self::keywords(
            &[GLOBAL],
            &[
                "smtp_server",
                "notification_email",
                "lvs_timeouts",
                "lvs_sync_daemon",
            ],
        );
        for c in self.lines(n, &words) {
            if self.simple(&[GLOBAL], &c, &mut g)
                || self.ignored(GLOBAL_IGNORED, &c)
                || self.refused(GLOBAL_REFUSED, &c)
            {
                continue;
            }
            match c.keyword() {
                "notification_email" => {
                    for (loc, words) in self.entries(&c) {
                        for w in words {
                            g.push("notification_email", Value::Str(w), &c.loc, &loc);
                        }
                    }
                }
                "smtp_server" => {
                    let args: Vec<&str> = c.args().iter().map(|w| w.text.as_str()).collect();
                    let v = match args.as_slice() {
                        [host] => Some(host.to_string()),
                        [host, port] if port.parse::<u16>().is_ok() => {
                            Some(match host.parse::<IpAddr>() {
                                Ok(IpAddr::V6(a)) => format!("[{a}]:{port}"),
                                _ => format!("{host}:{port}"),
                            })
                        }
                        _ => {
                            self.err(&c, "smtp_server takes HOST [PORT]");
                            None
                        }
                    };
                    if let Some(v) = v {
                        self.set(&mut g, "smtp_server", Value::Str(v), &c);
                    }
                }
                "notify_fifo" | "vrrp_notify_fifo" | "lvs_notify_fifo" => {
                    let Some(first) = c.args().first() else {
                        self.err(&c, format!("`{}` needs a path", c.keyword()));
                        continue;
                    };
                    if c.args().len() > 1 {
                        self.warn(
                            &c,
                            format!(
                                "`{}`: the owner of the FIFO ({}) is ignored: xlb creates \
                                 it owned by its own user",
                                c.keyword(),
                                c.args()[1..]
                                    .iter()
                                    .map(|w| w.text.as_str())
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            ),
                        );
                    }
                    let key = c.keyword().to_owned();
                    self.set(&mut g, &key, Value::Str(first.text.clone()), &c);
                }
                "lvs_timeouts" => {
                    // `lvs_timeouts tcp 7200 tcpfin 120 udp 300`, any subset, any order.
                    let args: Vec<&str> = c.args().iter().map(|w| w.text.as_str()).collect();
                    let mut t = Table::default();
                    for pair in args.chunks(2) {
                        match pair {
                            [k @ ("tcp" | "tcpfin" | "udp"), v] => match parse_num(v) {
                                Some(n) => {
                                    t.set(k, n, &c.loc);
                                }
                                None => {
                                    self.err(&c, format!("lvs_timeouts {k}: {v:?} is not a number"))
                                }
                            },
                            [k, _] => self.err(
                                &c,
                                format!("lvs_timeouts: unknown protocol {k:?} (tcp, tcpfin, udp)"),
                            ),
                            _ => self.err(&c, "lvs_timeouts takes pairs: tcp T tcpfin T udp T"),
                        }
                    }
                    if !t.is_empty() {
                        self.set(&mut g, "lvs_timeouts", Value::Inline(t), &c);
                    }
                }
                "lvs_sync_daemon" => self.lvs_sync_daemon(&c),
                "default_interface" => {
                    if let Some(v) = self.one(&c) {
                        self.default_interface = Some((v.to_owned(), c.loc.clone()));
                    }
                }
                _ => self.unknown(&c, "global_defs"),
            }
        }
        self.global = g;
    }
}
