//! `vrrp_script`, `vrrp_instance` and `vrrp_sync_group` blocks: the keyword tables, plus
//! `weight`, `authentication` and the address and tracking lists; and what keepalived
//! checks of sync groups once every instance is known (members that exist, in one
//! group only, weights it ignores in a group).

use super::super::emit::{Elem, Table, Value};
use super::super::parser::Node;
use super::Converter;
use super::keywords::{
    INSTANCE, INSTANCE_BLOCKS, INSTANCE_IGNORED, INSTANCE_REFUSED, SCRIPT, SYNC_GROUP, ValueKind,
};

impl Converter<'_> {
    pub(super) fn vrrp_script(&mut self, n: &Node) {
        let Some(name) = self.one(n).map(str::to_owned) else {
            return;
        };
        let mut t = Table {
            comment: Some(format!("vrrp_script {name} ({})", n.loc)),
            ..Table::default()
        };
        for c in self.lines(n, &Self::keywords(&[SCRIPT], &["weight"])) {
            if self.simple(&[SCRIPT], &c, &mut t) {
                continue;
            }
            match c.keyword() {
                "weight" => self.weight(&c, &mut t),
                _ => self.unknown(&c, "vrrp_script"),
            }
        }
        if t.get("script").is_none() {
            self.err(n, format!("vrrp_script {name} has no `script`"));
        }
        if self.scripts.get(&name).is_some() {
            self.err(n, format!("vrrp_script {name} is defined twice"));
            return;
        }
        self.scripts.set(&name, Value::Section(t), &n.loc);
    }

    /// `weight N [reverse|noreverse]`.
    fn weight(&mut self, n: &Node, t: &mut Table) {
        let args: Vec<&str> = n.args().iter().map(|w| w.text.as_str()).collect();
        let (w, rest) = match args.split_first() {
            Some((w, rest)) => (*w, rest),
            None => {
                self.err(n, "`weight` needs a number");
                return;
            }
        };
        let Ok(w) = w.parse::<i64>() else {
            self.err(n, format!("`weight`: {w:?} is not an integer"));
            return;
        };
        let reverse = match rest {
            [] | ["noreverse"] => false,
            ["reverse"] => true,
            _ => {
                self.err(n, "`weight` takes N [reverse|noreverse]");
                return;
            }
        };
        self.set(t, "weight", Value::Int(w), n);
        if reverse {
            self.set(t, "reverse", Value::Bool(true), n);
        }
    }

    /// Under `global_defs vrrp_strict`, keepalived's default is `no_accept`, which xlb
    /// cannot do: each non-owner instance that does not say gets `accept = true`, with a
    /// warning (`xlb check` refuses a strict instance that does not say).
    pub(super) fn strict_accept(&mut self) {
        if !matches!(self.global.get("vrrp_strict"), Some(Value::Bool(true))) {
            return;
        }
        for el in &mut self.instances {
            let Value::Section(t) = &mut el.value else {
                continue;
            };
            let owner = matches!(t.get("priority"), Some(Value::Int(255)));
            if t.get("accept").is_none() && !owner {
                t.set("accept", Value::Bool(true), &el.loc);
                self.d.warning(
                    &el.loc,
                    "vrrp_strict: keepalived would drop packets to the VIPs of this \
                     non-owner instance (no_accept, with firewall rules); xlb installs no \
                     firewall rules, so it writes accept = true",
                );
            }
        }
    }

    pub(super) fn vrrp_instance(&mut self, n: &Node) {
        let Some(name) = self.one(n).map(str::to_owned) else {
            return;
        };
        let mut t = Table {
            comment: Some(format!("vrrp_instance {name} ({})", n.loc)),
            ..Table::default()
        };
        t.set("name", Value::Str(name.clone()), &n.loc);
        // The addresses of virtual_ipaddress(_excluded) so far, and where.
        let mut vips: Vec<(String, super::super::Loc)> = Vec::new();
        for c in self.lines(n, &Self::keywords(&[INSTANCE], INSTANCE_BLOCKS)) {
            if self.simple(&[INSTANCE], &c, &mut t)
                || self.ignored(INSTANCE_IGNORED, &c)
                || self.refused(INSTANCE_REFUSED, &c)
            {
                continue;
            }
            match c.keyword() {
                "preempt" => {
                    if c.args().is_empty() && c.block.is_none() {
                        self.set(&mut t, "nopreempt", Value::Bool(false), &c);
                    } else {
                        self.err(&c, "`preempt` takes no value");
                    }
                }
                "accept" | "no_accept" => {
                    if !c.args().is_empty() || c.block.is_some() {
                        self.err(&c, format!("`{}` takes no value", c.keyword()));
                    } else if c.keyword() == "no_accept" {
                        self.err(&c, NO_ACCEPT);
                    } else {
                        self.set(&mut t, "accept", Value::Bool(true), &c);
                    }
                }
                "authentication" => self.authentication(&c, &mut t),
                "lvs_sync_daemon_interface" => self.lvs_sync_daemon_interface(&c, &name),
                "use_vmac" => self.use_vmac(&c, &mut t),
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    let key = c.keyword().to_owned();
                    for (loc, words) in self.entries(&c) {
                        // keepalived warns about a VIP listed twice and keeps the first.
                        let addr = words
                            .first()
                            .and_then(|w| w.split('/').next())
                            .unwrap_or_default()
                            .to_owned();
                        if let Some((_, first)) = vips.iter().find(|(a, _)| *a == addr) {
                            let first = first.clone();
                            self.d.warning(
                                &loc,
                                format!(
                                    "{addr} is already a VIP of vrrp_instance {name} (at \
                                     {first}): keepalived ignores the duplicate, so does this \
                                     conversion"
                                ),
                            );
                            continue;
                        }
                        vips.push((addr, loc.clone()));
                        t.push(&key, Value::Str(words.join(" ")), &c.loc, &loc);
                    }
                    if t.get(&key).is_none() {
                        t.set(&key, Value::Array(Vec::new()), &c.loc);
                    }
                }
                "unicast_peer" => {
                    for (loc, words) in self.entries(&c) {
                        let mut it = words.iter().peekable();
                        while let Some(w) = it.next() {
                            match w.as_str() {
                                "min_ttl" | "max_ttl" => {
                                    let v = it.next().cloned().unwrap_or_default();
                                    self.d.warning(
                                        &loc,
                                        format!(
                                            "unicast_peer `{w} {v}` ignored: xlb accepts \
                                             unicast adverts with TTL 255 only, as the RFCs say"
                                        ),
                                    );
                                }
                                _ => t.push("unicast_peer", Value::Str(w.clone()), &c.loc, &loc),
                            }
                        }
                    }
                }
                "virtual_routes" => self.routes(&c, &mut t, "virtual_routes"),
                "virtual_rules" => self.rules(&c, &mut t, "virtual_rules"),
                "track_interface" | "track_script" => {
                    let key = c.keyword().to_owned();
                    for (loc, words) in self.entries(&c) {
                        t.push(&key, Value::Str(words.join(" ")), &c.loc, &loc);
                    }
                }
                _ => self.unknown(&c, "vrrp_instance"),
            }
        }
        self.drop_ignored_authentication(&mut t);
        self.instances.push(Elem {
            value: Value::Section(t),
            loc: n.loc.clone(),
        });
    }

    /// `use_vmac [[name] NAME]`: `use_vmac = true` or the name. keepalived's other
    /// options (`mac`, `group`, `netlink_notify_msg`) are refused by name.
    fn use_vmac(&mut self, n: &Node, t: &mut Table) {
        if n.block.is_some() {
            self.err(n, "`use_vmac` takes no block");
            return;
        }
        let args: Vec<&str> = n.args().iter().map(|w| w.text.as_str()).collect();
        let value = match args.as_slice() {
            [] => Value::Bool(true),
            ["name", name] | [name]
                if !matches!(*name, "mac" | "group" | "netlink_notify_msg" | "name") =>
            {
                Value::Str((*name).to_owned())
            }
            _ => {
                self.err(
                    n,
                    format!(
                        "`use_vmac {}`: xlb takes `use_vmac` or `use_vmac NAME` (a VMAC with \
                         the RFC MAC 00:00:5e:00:01:VRID); keepalived's `mac`, `group` and \
                         `netlink_notify_msg` options have no equivalent",
                        args.join(" ")
                    ),
                );
                return;
            }
        };
        self.set(t, "use_vmac", value, n);
    }

    /// `vrrp_sync_group NAME { group { VI_1 VI_2 } notify_* track_* ... }`.
    pub(super) fn vrrp_sync_group(&mut self, n: &Node) {
        let Some(name) = self.one(n).map(str::to_owned) else {
            return;
        };
        let mut t = Table {
            comment: Some(format!("vrrp_sync_group {name} ({})", n.loc)),
            ..Table::default()
        };
        t.set("name", Value::Str(name.clone()), &n.loc);
        let mut members: Vec<(String, super::super::Loc)> = Vec::new();
        let blocks = [
            "group",
            "track_interface",
            "track_script",
            "global_tracking",
        ];
        for c in self.lines(n, &Self::keywords(&[SYNC_GROUP], &blocks)) {
            if self.simple(&[SYNC_GROUP], &c, &mut t) {
                continue;
            }
            match c.keyword() {
                "group" => {
                    for (loc, words) in self.entries(&c) {
                        for w in words {
                            members.push((w, loc.clone()));
                        }
                    }
                }
                "track_interface" | "track_script" => {
                    let key = c.keyword().to_owned();
                    for (loc, words) in self.entries(&c) {
                        t.push(&key, Value::Str(words.join(" ")), &c.loc, &loc);
                    }
                }
                "global_tracking" => {
                    self.warn(
                        &c,
                        format!(
                            "`global_tracking` is deprecated in keepalived (use track_* on \
                             the sync group); as keepalived does, the members' weighted \
                             tracking counts: converted to sync_group_tracking_weight in \
                             vrrp_sync_group {name}"
                        ),
                    );
                    self.set(&mut t, "sync_group_tracking_weight", Value::Bool(true), &c);
                }
                "track_file" => self.err(
                    &c,
                    "`track_file` is not supported: xlb tracks scripts and interfaces; \
                     replace it by a vrrp_script that tests the file",
                ),
                // A bare name, a member written outside `group { }`: keepalived skips it
                // as an unknown keyword.
                word if c.args().is_empty() && c.block.is_none() => {
                    self.warn(
                        &c,
                        format!(
                            "`{word}` in vrrp_sync_group {name} is outside `group {{ }}`: \
                             keepalived skips it as an unknown keyword, and so does this \
                             conversion (list members in `group {{ {word} ... }}`)"
                        ),
                    );
                }
                _ => self.unknown(&c, "vrrp_sync_group"),
            }
        }
        if members.is_empty() {
            self.warn(
                n,
                format!(
                    "vrrp_sync_group {name} has no `group` of instances: keepalived \
                     removes it, and so does this conversion"
                ),
            );
            return;
        }
        self.sync_groups.push((
            Elem {
                value: Value::Section(t),
                loc: n.loc.clone(),
            },
            members,
        ));
    }

    /// keepalived's checks of the sync groups, once every instance is read: a member
    /// that is no instance, or already in another group, is dropped with a warning; a
    /// group left with no member is removed, one with one member is kept with
    /// keepalived's warning; a member's weighted tracking that keepalived ignores in a
    /// group is named.
    pub(super) fn check_sync_groups(&mut self) {
        let instance_names: Vec<String> = (self.instances.iter())
            .filter_map(|el| match &el.value {
                Value::Section(t) => match t.get("name") {
                    Some(Value::Str(n)) => Some(n.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        let mut taken: Vec<(String, String)> = Vec::new();
        let groups = std::mem::take(&mut self.sync_groups);
        for (mut el, members) in groups {
            let Value::Section(t) = &mut el.value else {
                continue;
            };
            let name = match t.get("name") {
                Some(Value::Str(n)) => n.clone(),
                _ => String::new(),
            };
            let mut kept: Vec<(String, super::super::Loc)> = Vec::new();
            for (member, loc) in members {
                if !instance_names.contains(&member) {
                    self.d.warning(
                        &loc,
                        format!(
                            "vrrp_instance {member} of sync group {name} does not exist: \
                             keepalived ignores it, and so does this conversion"
                        ),
                    );
                } else if let Some((_, other)) = taken.iter().find(|(m, _)| *m == member) {
                    self.d.warning(
                        &loc,
                        format!(
                            "vrrp_instance {member} is already in sync group {other}: an \
                             instance can be in one sync group only; keepalived ignores it \
                             in {name}, and so does this conversion"
                        ),
                    );
                } else if kept.iter().any(|(m, _)| *m == member) {
                    self.d.warning(
                        &loc,
                        format!("vrrp_instance {member} is listed twice in sync group {name}"),
                    );
                } else {
                    taken.push((member.clone(), name.clone()));
                    kept.push((member, loc));
                }
            }
            match kept.len() {
                0 => {
                    self.d.warning(
                        &el.loc,
                        format!(
                            "sync group {name} has no virtual router: keepalived removes it, \
                             and so does this conversion"
                        ),
                    );
                    continue;
                }
                1 => self.d.warning(
                    &el.loc,
                    format!(
                        "sync group {name} has only 1 virtual router(s) - this probably \
                         isn't what you want (keepalived's warning; converted as written)"
                    ),
                ),
                _ => {}
            }
            for (member, loc) in &kept {
                t.push("group", Value::Str(member.clone()), &el.loc, loc);
            }
            let weights = matches!(t.get("sync_group_tracking_weight"), Some(Value::Bool(true)));
            if !weights {
                for (member, _) in &kept {
                    self.warn_weights_in_group(member, &name);
                }
            }
            self.sync_groups.push((el, Vec::new()));
        }
    }

    /// Names the weighted `track_*` entries of instance `member` that keepalived ignores
    /// because it is in sync group `group` (xlb leaves them out too).
    fn warn_weights_in_group(&mut self, member: &str, group: &str) {
        let mut found: Vec<(super::super::Loc, String)> = Vec::new();
        for el in &self.instances {
            let Value::Section(t) = &el.value else {
                continue;
            };
            if !matches!(t.get("name"), Some(Value::Str(n)) if n == member) {
                continue;
            }
            for key in ["track_interface", "track_script"] {
                let Some(Value::Array(items)) = t.get(key) else {
                    continue;
                };
                for item in items {
                    if let Value::Str(entry) = &item.value {
                        let weighted = entry
                            .split_whitespace()
                            .skip_while(|w| *w != "weight")
                            .nth(1)
                            .is_some_and(|w| w != "0");
                        let script_weight = key == "track_script" && !entry.contains("weight") && {
                            let script = entry.split_whitespace().next().unwrap_or_default();
                            matches!(self.scripts.get(script), Some(Value::Section(s))
                                if matches!(s.get("weight"), Some(Value::Int(w)) if *w != 0))
                        };
                        if weighted || script_weight {
                            found.push((item.loc.clone(), entry.clone()));
                        }
                    }
                }
            }
        }
        for (loc, entry) in found {
            self.d.warning(
                &loc,
                format!(
                    "`{entry}` has a weight and vrrp_instance {member} is in sync group \
                     {group}: keepalived ignores tracking with weights in a sync group \
                     (unless sync_group_tracking_weight), and so does xlb"
                ),
            );
        }
    }

    /// keepalived's vrrp_complete_instance drops authentication, with a warning, under
    /// VRRPv3 (RFC 5798 has none) and in strict mode: so does the conversion.
    fn drop_ignored_authentication(&mut self, t: &mut Table) {
        let is_true = |v: Option<&Value>| matches!(v, Some(Value::Bool(true)));
        let is_v3 = |v: Option<&Value>| match v {
            Some(Value::Int(n)) => *n == 3,
            Some(Value::Str(s)) => s == "3",
            _ => false,
        };
        let why = if is_v3(t.get("version"))
            || (t.get("version").is_none() && is_v3(self.global.get("vrrp_version")))
        {
            "VRRPv3 has no authentication (RFC 5798)"
        } else if is_true(t.get("strict_mode")) || is_true(self.global.get("vrrp_strict")) {
            "strict mode (vrrp_strict) does not allow authentication"
        } else {
            return;
        };
        if let Some(e) = t.remove("authentication") {
            self.d.warning(
                &e.loc,
                format!(
                    "authentication ignored: {why}; keepalived ignores it with a warning, \
                     and so does this conversion"
                ),
            );
        }
    }

    fn authentication(&mut self, n: &Node, t: &mut Table) {
        let mut a = Table::default();
        for c in self.lines(n, &["auth_type", "auth_pass"]) {
            match c.keyword() {
                "auth_type" => {
                    if let Some(v) = self.value(ValueKind::Str, &c) {
                        self.set(&mut a, "auth_type", v, &c);
                    }
                }
                "auth_pass" => {
                    let Some(mut p) = self.value(ValueKind::Str, &c) else {
                        continue;
                    };
                    if let Value::Str(s) = &p {
                        if s.chars().count() > 8 && s.is_ascii() {
                            let short: String = s.chars().take(8).collect();
                            self.warn(
                                &c,
                                format!(
                                    "auth_pass is longer than 8 characters: keepalived uses \
                                     the first 8 ({short:?}), and so does the converted file"
                                ),
                            );
                            p = Value::Str(short);
                        }
                    }
                    self.set(&mut a, "auth_pass", p, &c);
                }
                _ => self.unknown(&c, "authentication"),
            }
        }
        self.set(t, "authentication", Value::Inline(a), n);
    }
}

const NO_ACCEPT: &str = "`no_accept` is not supported: xlb installs no firewall rules to \
                         drop packets to the VIPs, so a non-owner master accepts them \
                         (accept mode) always; remove it";
