//! `virtual_server_group`, `virtual_server` (by address or group), `real_server` and
//! `sorry_server`: DR only, with keepalived's ports turned into DR's (the service
//! port, checks on the written one).

use std::net::IpAddr;

use super::super::Loc;
use super::super::emit::{Table, Value};
use super::super::parser::Node;
use super::Converter;
use super::keywords::{CHECKER_TIMING, CHECKERS, RS, RS_REFUSED, VS, VS_REFUSED, ValueKind};
use super::statement::parse_ip;

/// A virtual server on its way out.
pub(super) struct VsOut {
    pub table: Table,
    pub loc: Loc,
    /// The VIP (a fwmark service's first match entry's) and port.
    pub ip: IpAddr,
    pub port: u16,
    /// `virtual_server IP PORT` or `virtual_server fwmark N`, for messages.
    pub name: String,
    pub fwmark: bool,
}

/// What a `virtual_server_group` member (or a `virtual_server` line) selects.
#[derive(Clone, Copy, PartialEq)]
enum Selector {
    Addr { ip: IpAddr, port: u16 },
    Fwmark(u32),
}

/// One `virtual_server_group` member.
#[derive(Clone)]
pub(super) struct GroupMember {
    sel: Selector,
    loc: Loc,
}

/// `N` of `fwmark N` (keepalived reads it as a number, hexadecimal with 0x).
fn parse_mark(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}
impl Converter<'_> {
    pub(super) fn vs_group(&mut self, n: &Node) {
        let Some(name) = self.one(n).map(str::to_owned) else {
            return;
        };
        let mut members = Vec::new();
        let mut ok = true;
        for (loc, words) in self.entries_after(n, 1) {
            match words.as_slice() {
                [first, mark] if first == "fwmark" => match parse_mark(mark) {
                    Some(m) => members.push(GroupMember {
                        sel: Selector::Fwmark(m),
                        loc: loc.clone(),
                    }),
                    None => {
                        self.d.error(&loc, format!("{mark:?} is not a mark number"));
                        ok = false;
                    }
                },
                [first, ..] if first == "fwmark" => {
                    self.d.error(&loc, "a fwmark entry is `fwmark N`");
                    ok = false;
                }
                [addr, port] => {
                    let Ok(port) = port.parse::<u16>() else {
                        self.d.error(&loc, format!("{port:?} is not a port"));
                        ok = false;
                        continue;
                    };
                    match expand_range(addr) {
                        Some(ips) => members.extend(ips.into_iter().map(|ip| GroupMember {
                            sel: Selector::Addr { ip, port },
                            loc: loc.clone(),
                        })),
                        None => {
                            self.d.error(
                                &loc,
                                format!(
                                    "{addr:?} is not an address or an address range (A.B.C.D-E)"
                                ),
                            );
                            ok = false;
                        }
                    }
                }
                _ => {
                    self.d.error(
                        &loc,
                        "a virtual_server_group entry is `ADDRESS[-LAST] PORT` or `fwmark N`",
                    );
                    ok = false;
                }
            }
        }
        if self.groups.contains_key(&name) {
            self.err(n, format!("virtual_server_group {name} is defined twice"));
        }
        self.groups.insert(name, ok.then_some(members));
    }

    pub(super) fn virtual_server(&mut self, n: &Node) {
        let args: Vec<&str> = n.args().iter().map(|w| w.text.as_str()).collect();
        if let ["group", name] = args.as_slice() {
            self.used_groups.insert((*name).to_owned());
        }
        let members = match args.as_slice() {
            ["fwmark", mark] => match parse_mark(mark) {
                Some(m) => vec![GroupMember {
                    sel: Selector::Fwmark(m),
                    loc: n.loc.clone(),
                }],
                None => return self.err(n, format!("{mark:?} is not a mark number")),
            },
            ["group", name] => match self.groups.get(*name) {
                Some(Some(m)) => m.clone(),
                Some(None) => return, // already reported
                None => {
                    return self.err(n, format!("there is no virtual_server_group {name}"));
                }
            },
            [ip, port] => {
                let (Some(ip), Ok(port)) = (parse_ip(ip), port.parse::<u16>()) else {
                    return self.err(
                        n,
                        format!("`virtual_server {ip} {port}`: expected an IP address and a port"),
                    );
                };
                vec![GroupMember {
                    sel: Selector::Addr { ip, port },
                    loc: n.loc.clone(),
                }]
            }
            _ => {
                return self.err(n, "virtual_server takes IP PORT (or `group NAME`)");
            }
        };
        // A mark without its `--fwmark` is reported before the block's own errors.
        let members: Vec<GroupMember> = members
            .into_iter()
            .filter(|m| match m.sel {
                Selector::Fwmark(mark) => self.fwmark_match(mark, &m.loc).is_some(),
                Selector::Addr { .. } => true,
            })
            .collect();
        let body = self.vs_body(n);
        for m in members {
            let (name, ip, port) = match m.sel {
                Selector::Addr { ip, port } => (format!("virtual_server {ip} {port}"), ip, port),
                Selector::Fwmark(mark) => {
                    let first = self.opts.fwmarks[&mark][0].clone();
                    (
                        format!("virtual_server fwmark {mark}"),
                        first.ip,
                        first.first_port(),
                    )
                }
            };
            let mut t = Table {
                comment: Some(if m.loc == n.loc {
                    format!("{name} ({})", n.loc)
                } else {
                    format!("{name} ({}, group member at {})", n.loc, m.loc)
                }),
                ..Table::default()
            };
            match m.sel {
                Selector::Addr { ip, port } => {
                    t.set("ip", Value::Str(ip.to_string()), &m.loc);
                    t.set("port", Value::Int(port.into()), &m.loc);
                }
                Selector::Fwmark(mark) => {
                    t.set("fwmark", Value::Int(mark.into()), &m.loc);
                    let specs = self.opts.fwmarks[&mark]
                        .iter()
                        .map(|s| super::super::emit::Elem {
                            value: Value::Str(s.to_string()),
                            loc: m.loc.clone(),
                        })
                        .collect();
                    t.set("match", Value::Array(specs), &m.loc);
                }
            }
            t.entries.extend(body.entries.iter().cloned());
            let mut vs = VsOut {
                table: t,
                loc: n.loc.clone(),
                ip,
                port,
                name,
                fwmark: matches!(m.sel, Selector::Fwmark(_)),
            };
            self.dr_ports(&mut vs);
            self.servers.push(vs);
        }
    }

    /// The first `--fwmark` entry for `mark`, or an error at `loc` saying what to pass.
    fn fwmark_match(&mut self, mark: u32, loc: &Loc) -> Option<crate::config::FwmarkMatch> {
        self.used_marks.insert(mark);
        if let Some(first) = self.opts.fwmarks.get(&mark).and_then(|l| l.first()) {
            return Some(first.clone());
        }
        self.d.error(
            loc,
            format!(
                "fwmark {mark}: keepalived.conf does not say which packets carry mark {mark} \
                 (the firewall sets it), and XDP runs before netfilter, so xlb matches them \
                 itself: pass `--fwmark {mark}=tcp:VIP:PORT[,...]` (PORT, FIRST-LAST or *; \
                 udp: for UDP; IPv6 as [ADDR]) with what the firewall rules that set mark {mark} select (`iptables -t \
                 mangle -S | grep -i mark`, `nft list ruleset | grep 'mark set'`)"
            ),
        );
        None
    }

    fn vs_body(&mut self, n: &Node) -> Table {
        let mut t = Table::default();
        let extra = [
            "lb_algo",
            "lvs_sched",
            "lb_kind",
            "lvs_method",
            "persistence_timeout",
            "persistence_granularity",
            "sorry_server",
            "sorry_server_lvs_method",
            "real_server",
            "nat_mask",
            "net_mask",
        ];
        let mut kind: Option<&'static str> = None;
        let mut kind_seen = false;
        let mut algo_seen = false;
        // Each real server's own `lb_kind`, where it says one.
        let mut rs_kinds: Vec<(Option<&'static str>, Node)> = Vec::new();
        let mut rs_count = 0;
        let mut sorry_kind = None;
        for c in self.lines(n, &Self::keywords(&[VS, CHECKER_TIMING], &extra)) {
            if self.simple(&[VS, CHECKER_TIMING], &c, &mut t) || self.refused(VS_REFUSED, &c) {
                continue;
            }
            match c.keyword() {
                "nat_mask" | "net_mask" => self.warn(
                    &c,
                    format!(
                        "`{}` ignored: the reverse-NAT mask of LVS on Linux 2.2, which \
                         keepalived 2 no longer reads and xlb does not use",
                        c.keyword()
                    ),
                ),
                "lb_algo" | "lvs_sched" => {
                    algo_seen = true;
                    if let Some(v) = self.lb_algo(&c) {
                        self.set(&mut t, "lb_algo", Value::Str(v), &c);
                    }
                }
                "lb_kind" | "lvs_method" => {
                    kind_seen = true;
                    kind = self.lb_kind(&c);
                    if let Some(k) = kind {
                        self.set(&mut t, "lb_kind", Value::Str(k.into()), &c);
                    }
                }
                "persistence_timeout" => {
                    let v = if c.args().is_empty() && c.block.is_none() {
                        Some(Value::Int(360)) // keepalived's value for the bare keyword
                    } else {
                        self.value(ValueKind::Num, &c)
                    };
                    if let Some(v) = v {
                        self.set(&mut t, "persistence_timeout", v, &c);
                    }
                }
                "persistence_granularity" => {
                    if let Some(g) = self.one(&c) {
                        if !matches!(g, "255.255.255.255" | "32" | "/32" | "128" | "/128") {
                            self.err(
                                &c,
                                format!(
                                    "persistence_granularity {g} is not supported: xlb keeps \
                                     persistence per client address (255.255.255.255)"
                                ),
                            );
                        }
                    }
                }
                "sorry_server" => {
                    let args: Vec<&str> = c.args().iter().map(|w| w.text.as_str()).collect();
                    let mut s = Table::default();
                    match args.as_slice() {
                        [ip] => {
                            s.set("ip", Value::Str(ip.to_string()), &c.loc);
                        }
                        [ip, port] => {
                            s.set("ip", Value::Str(ip.to_string()), &c.loc);
                            match port.parse::<i64>() {
                                Ok(p) => {
                                    s.set("port", Value::Int(p), &c.loc);
                                }
                                Err(_) => self.err(&c, format!("{port:?} is not a port")),
                            }
                        }
                        _ => self.err(&c, "sorry_server takes IP [PORT]"),
                    }
                    if !s.is_empty() {
                        self.set(&mut t, "sorry_server", Value::Inline(s), &c);
                    }
                }
                "sorry_server_lvs_method" => {
                    // Checked against the service's below, as a real server's.
                    sorry_kind = self.lb_kind(&c).map(|k| (k, c.clone()));
                }
                "real_server" => {
                    rs_count += 1;
                    let (rs, rs_kind) = self.real_server(&c);
                    rs_kinds.push((rs_kind, c.clone()));
                    if let Some(rs) = rs {
                        t.push("real_server", Value::Section(rs), &c.loc, &c.loc);
                    }
                }
                _ => self.unknown(&c, "virtual_server"),
            }
        }
        if !kind_seen {
            // keepalived 2 lets each real server say its forwarding method.
            let said: Vec<&'static str> = rs_kinds.iter().filter_map(|(k, _)| *k).collect();
            let all_say_one =
                rs_count > 0 && said.len() == rs_count && said.iter().all(|k| *k == said[0]);
            if all_say_one {
                kind = Some(said[0]);
            } else {
                self.warn(
                    n,
                    "no lb_kind: keepalived's default is NAT; converted as DR: each real \
                     server must hold the VIP on a non-ARPing interface (`xlb realserver \
                     setup --vip VIP`); write `lb_kind NAT` for NAT",
                );
                kind = Some("DR");
            }
            t.set("lb_kind", Value::Str(kind.unwrap_or("DR").into()), &n.loc);
        }
        if let Some(vs_kind) = kind {
            rs_kinds.extend(sorry_kind.map(|(k, c)| (Some(k), c)));
            for (rs_kind, c) in &rs_kinds {
                if let Some(k) = rs_kind {
                    if *k != vs_kind {
                        self.err(
                            c,
                            format!(
                                "this real server's lb_kind {k} differs from its virtual \
                                 server's {vs_kind}: xlb forwards a service one way"
                            ),
                        );
                    }
                }
            }
        }
        if !algo_seen {
            // keepalived's default (IPVS's wlc); xlb's own default is wrr, so it is
            // written out.
            t.set("lb_algo", Value::Str("wlc".into()), &n.loc);
        }
        t
    }

    fn lb_algo(&mut self, n: &Node) -> Option<String> {
        let algo = self.one(n)?.to_ascii_lowercase();
        match algo.as_str() {
            "rr" | "wrr" | "sh" | "mh" | "lc" | "wlc" | "sed" | "nq" | "fo" | "ovf" | "dh"
            | "twos" => Some(algo),
            "lblc" | "lblcr" => {
                self.warn(
                    n,
                    format!(
                        "lb_algo {algo} (locality-based least-connection) has no xlb \
                         equivalent: converted to wrr (sh or mh keep a client on one \
                         server, if that is what matters)"
                    ),
                );
                Some("wrr".into())
            }
            _ => {
                self.err(
                    n,
                    format!(
                        "unknown lb_algo {algo:?}: xlb schedules with {}",
                        crate::config::LB_ALGO_NAMES
                    ),
                );
                None
            }
        }
    }

    /// `lb_kind` / `lvs_method`: DR or NAT, or an error naming the line.
    fn lb_kind(&mut self, n: &Node) -> Option<&'static str> {
        let kind = self.one(n).map(str::to_ascii_uppercase)?;
        match kind.as_str() {
            "DR" => Some("DR"),
            "NAT" => Some("NAT"),
            "TUN" => {
                self.err(
                    n,
                    format!(
                        "`{} TUN` cannot be converted: xlb has no IP-in-IP encapsulation \
                         (it forwards in DR mode, real servers on-link holding the VIP, or \
                         NAT)",
                        n.keyword()
                    ),
                );
                None
            }
            _ => {
                self.err(
                    n,
                    format!(
                        "unknown `{}` {kind:?}: xlb forwards in DR or NAT mode",
                        n.keyword()
                    ),
                );
                None
            }
        }
    }

    /// A `real_server` block, and the forwarding method it says, if any.
    fn real_server(&mut self, n: &Node) -> (Option<Table>, Option<&'static str>) {
        let args: Vec<&str> = n.args().iter().map(|w| w.text.as_str()).collect();
        let mut t = Table {
            comment: Some(format!("real_server {} ({})", args.join(" "), n.loc)),
            ..Table::default()
        };
        match args.as_slice() {
            [ip] => {
                t.set(
                    "ip",
                    Value::Str(ip.trim_matches(['[', ']']).to_owned()),
                    &n.loc,
                );
            }
            [ip, port] => {
                t.set(
                    "ip",
                    Value::Str(ip.trim_matches(['[', ']']).to_owned()),
                    &n.loc,
                );
                match port.parse::<i64>() {
                    Ok(p) => {
                        t.set("port", Value::Int(p), &n.loc);
                    }
                    Err(_) => self.err(n, format!("real_server: {port:?} is not a port")),
                }
            }
            _ => {
                self.err(n, "real_server takes IP [PORT]");
                return (None, None);
            }
        }
        let mut kind = None;
        let extra: Vec<&str> = CHECKERS
            .iter()
            .map(|c| c.keepalived)
            .chain(["lb_kind", "lvs_method"])
            .collect();
        for c in self.lines(n, &Self::keywords(&[RS, CHECKER_TIMING], &extra)) {
            if self.simple(&[RS, CHECKER_TIMING], &c, &mut t) || self.refused(RS_REFUSED, &c) {
                continue;
            }
            if let Some(key) = CHECKERS
                .iter()
                .find(|b| b.keepalived == c.keyword())
                .map(|b| b.xlb)
            {
                if t.get(key).is_some() {
                    self.err(
                        &c,
                        format!(
                            "a second {} on this real server: xlb runs at most one checker \
                             of each kind per real server (all must pass)",
                            c.keyword()
                        ),
                    );
                    continue;
                }
                if let Some(check) = self.checker(&c) {
                    t.set(key, Value::Inline(check), &c.loc);
                }
                continue;
            }
            match c.keyword() {
                "lb_kind" | "lvs_method" => kind = self.lb_kind(&c),
                _ => self.unknown(&c, "real_server"),
            }
        }
        (Some(t), kind)
    }

    /// DR forwards to the virtual server's port: a real server (or sorry server) on
    /// another port receives the traffic on the VIP's port anyway, while keepalived
    /// checks the written port. Converted so: the service port, checks on the old one.
    fn dr_ports(&mut self, vs: &mut VsOut) {
        if vs.fwmark {
            return self.fwmark_ports(vs);
        }
        if vs.port == 0 {
            return;
        }
        if matches!(vs.table.get("lb_kind"), Some(Value::Str(k)) if k == "NAT") {
            // NAT rewrites the port: a real server's own port is kept.
            return;
        }
        let vs_port = i64::from(vs.port);
        if let Some(Value::Array(items)) = vs.table.get_mut("real_server") {
            for el in items.iter_mut() {
                let Value::Section(rs) = &mut el.value else {
                    continue;
                };
                let Some(port_entry) = rs.entry("port").cloned() else {
                    continue;
                };
                let Value::Int(p) = port_entry.value else {
                    continue;
                };
                if p == vs_port {
                    continue;
                }
                rs.set("port", Value::Int(vs_port), &port_entry.loc);
                for key in [
                    "tcp_check",
                    "http_get",
                    "ssl_get",
                    "dns_check",
                    "udp_check",
                    "smtp_check",
                ] {
                    if let Some(Value::Inline(c)) = rs.get_mut(key) {
                        if c.get("connect_port").is_none() {
                            c.set("connect_port", Value::Int(p), &port_entry.loc);
                        }
                    }
                }
                self.d.warning(
                    &port_entry.loc,
                    format!(
                        "real_server port {p} differs from the virtual server's {vs_port}: \
                         DR forwards to port {vs_port} unchanged (as IPVS does), so the port \
                         is {vs_port} and the checks keep connecting to {p}"
                    ),
                );
            }
        }
        if let Some(Value::Inline(s)) = vs.table.get_mut("sorry_server") {
            if let Some(e) = s.entry("port").cloned() {
                if e.value != Value::Int(vs_port) {
                    s.remove("port");
                    self.d.warning(
                        &e.loc,
                        format!(
                            "sorry_server port differs from the virtual server's \
                             {vs_port}: DR forwards to port {vs_port} unchanged, so it is \
                             left out (the sorry server gets port {vs_port})"
                        ),
                    );
                }
            }
        }
    }
}
impl Converter<'_> {
    /// A fwmark service's real servers (and sorry server) have no port: DR keeps each
    /// packet's port. A written port is dropped, the checks keep connecting to it.
    fn fwmark_ports(&mut self, vs: &mut VsOut) {
        if let Some(Value::Array(items)) = vs.table.get_mut("real_server") {
            for el in items.iter_mut() {
                let Value::Section(rs) = &mut el.value else {
                    continue;
                };
                let Some(port_entry) = rs.entry("port").cloned() else {
                    continue;
                };
                rs.remove("port");
                let Value::Int(p) = port_entry.value else {
                    continue;
                };
                if p == 0 {
                    continue;
                }
                for key in CHECKED_PORTS {
                    if let Some(Value::Inline(c)) = rs.get_mut(key) {
                        if c.get("connect_port").is_none() {
                            c.set("connect_port", Value::Int(p), &port_entry.loc);
                        }
                    }
                }
                self.d.warning(
                    &port_entry.loc,
                    format!(
                        "real_server port {p} in a fwmark service: DR forwards each packet \
                         to its own port (as IPVS does), so the real server has no port and \
                         the checks connect to {p}"
                    ),
                );
            }
        }
        if let Some(Value::Inline(s)) = vs.table.get_mut("sorry_server") {
            if let Some(e) = s.entry("port").cloned() {
                s.remove("port");
                self.d.warning(
                    &e.loc,
                    "sorry_server port in a fwmark service: DR forwards each packet to its \
                     own port, so it is left out",
                );
            }
        }
    }
}

/// The checkers that connect to a port.
const CHECKED_PORTS: [&str; 6] = [
    "tcp_check",
    "http_get",
    "ssl_get",
    "dns_check",
    "udp_check",
    "smtp_check",
];

/// `A.B.C.D` or `A.B.C.D-E` (last byte range; for IPv6 the last group, in hex).
pub(super) fn expand_range(s: &str) -> Option<Vec<IpAddr>> {
    let Some((first, last)) = s.rsplit_once('-') else {
        return parse_ip(s).map(|ip| vec![ip]);
    };
    match parse_ip(first)? {
        IpAddr::V4(a) => {
            let last: u8 = last.parse().ok()?;
            let o = a.octets();
            (last >= o[3]).then(|| {
                (o[3]..=last)
                    .map(|b| IpAddr::from([o[0], o[1], o[2], b]))
                    .collect()
            })
        }
        IpAddr::V6(a) => {
            let last = u16::from_str_radix(last, 16).ok()?;
            let mut g = a.segments();
            let start = g[7];
            (last >= start).then(|| {
                (start..=last)
                    .map(|x| {
                        g[7] = x;
                        IpAddr::from(g)
                    })
                    .collect()
            })
        }
    }
}
