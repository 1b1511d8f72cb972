//! Routes and routing rules in keepalived's syntax (`static_routes`, `virtual_routes`,
//! `static_rules`, `virtual_rules`), as keepalived 2.x reads them (`vrrp_iproute.c`,
//! `vrrp_iprule.c`), parsed into [`IpRoute`] and [`IpRule`]. Pure: what the kernel is
//! told is in `netlink::route`.
//!
//! A route: `[TYPE] [to] DEST[/LEN]|default [src IP] [via|gw IP] [dev|oif IF]
//! [scope S] [table N] [metric|priority|preference N] [onlink] [protocol P] [no_track]
//! [or IP] [nexthop via IP [dev IF] [weight N] [onlink] ...]`, TYPE one of `unicast`,
//! `blackhole`, `unreachable`, `prohibit`, `throw`. Routes are added with protocol
//! `keepalived` (18) unless `protocol` says otherwise, so that `ip route show proto
//! keepalived` lists them, as keepalived's do.
//!
//! A rule: `[from P] [to P] [not] [iif|dev IF] [oif IF] [fwmark N[/M]] [tos N]
//! preference|priority|order N ACTION [no_track]`, ACTION one of `table|lookup N`,
//! `goto N`, `nop`, `blackhole`, `unreachable`, `prohibit`. xlb needs the preference
//! (keepalived numbers rules without one from 16384 down and says "this is probably not
//! what you want"; `xlb import-keepalived` writes the number keepalived would use).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The protocol keepalived marks its routes and rules with (RTPROT_KEEPALIVED).
pub const PROTO_KEEPALIVED: u8 = 18;
/// The main routing table.
pub const TABLE_MAIN: u32 = 254;

/// An address with a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// `ADDR[/LEN]` (no length: a host), `default` / `all` (the whole of `v6`'s family).
fn prefix(s: &str, v6: bool) -> Result<Prefix, String> {
    if s == "default" || s == "all" || s == "any" {
        let addr = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        return Ok(Prefix { addr, len: 0 });
    }
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("{s:?} is not an address or prefix (ADDR[/LEN] or default)"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match l {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|&l| l <= max)
            .ok_or_else(|| format!("/{l} in {s:?} is not a prefix length (0..={max})"))?,
    };
    Ok(Prefix { addr, len })
}

fn address(s: &str, what: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} ({what}) is not an IP address"))
}

fn number(s: &str, what: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("{s:?} is not a valid {what} (a number 0..=4294967295)"))
}

/// A routing table: a number, or `main`, `local`, `default`.
pub fn table(s: &str) -> Result<u32, String> {
    let t = match s {
        "main" => TABLE_MAIN,
        "local" => 255,
        "default" => 253,
        _ => number(s, "table").map_err(|_| {
            format!(
                "table {s:?}: xlb takes a table number or main, local, default (it does \
                 not read /etc/iproute2/rt_tables; write the number)"
            )
        })?,
    };
    if t == 0 {
        return Err("table 0 is not a routing table".to_owned());
    }
    Ok(t)
}

/// A route scope as iproute2 names it, or a number.
pub fn scope(s: &str) -> Result<u8, String> {
    Ok(match s {
        "global" | "universe" => 0,
        "site" => 200,
        "link" => 253,
        "host" => 254,
        "nowhere" => 255,
        _ => s.parse().map_err(|_| {
            format!("unknown scope {s:?}: expected global, site, link, host, nowhere or a number")
        })?,
    })
}

fn scope_name(s: u8) -> String {
    match s {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

/// A route or rule protocol as iproute2 names it (`/etc/iproute2/rt_protos`), or a number.
pub fn protocol(s: &str) -> Result<u8, String> {
    Ok(match s {
        "redirect" => 1,
        "kernel" => 2,
        "boot" => 3,
        "static" => 4,
        "keepalived" => PROTO_KEEPALIVED,
        "dhcp" => 16,
        "babel" => 42,
        "bgp" => 186,
        "isis" => 187,
        "ospf" => 188,
        "rip" => 189,
        _ => s.parse().map_err(|_| {
            format!(
                "unknown protocol {s:?}: expected a number or redirect, kernel, boot, static, \
                 keepalived, dhcp, babel, bgp, isis, ospf, rip"
            )
        })?,
    })
}

/// What a route does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteType {
    #[default]
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

impl RouteType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "unicast" => Self::Unicast,
            "blackhole" => Self::Blackhole,
            "unreachable" => Self::Unreachable,
            "prohibit" => Self::Prohibit,
            "throw" => Self::Throw,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unicast => "unicast",
            Self::Blackhole => "blackhole",
            Self::Unreachable => "unreachable",
            Self::Prohibit => "prohibit",
            Self::Throw => "throw",
        }
    }
}

/// One next hop of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NextHop {
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// 1..=256 (iproute2's `weight`). Default 1.
    pub weight: u16,
    pub onlink: bool,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRoute {
    pub kind: RouteType,
    pub dst: Prefix,
    /// The preferred source (`src`).
    pub src: Option<IpAddr>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// Default: `link` for a unicast route without `via`, else `global` (as iproute2).
    pub scope: Option<u8>,
    pub table: u32,
    pub metric: Option<u32>,
    pub onlink: bool,
    pub protocol: u8,
    /// keepalived's `no_track`: not put back (static) nor watched (virtual) if removed.
    pub no_track: bool,
    pub nexthops: Vec<NextHop>,
}

impl IpRoute {
    pub fn is_ipv6(&self) -> bool {
        self.dst.addr.is_ipv6()
    }

    /// The scope the kernel is given.
    pub fn scope_in_force(&self) -> u8 {
        self.scope.unwrap_or(
            if self.kind == RouteType::Unicast && self.via.is_none() && self.nexthops.is_empty() {
                253
            } else {
                0
            },
        )
    }

    /// Every interface the route names.
    pub fn devices(&self) -> impl Iterator<Item = &str> {
        self.dev
            .iter()
            .chain(self.nexthops.iter().filter_map(|n| n.dev.as_ref()))
            .map(String::as_str)
    }

    /// What identifies the route in the kernel (and in logs).
    pub fn key(&self) -> String {
        let mut s = String::new();
        if self.kind != RouteType::Unicast {
            s.push_str(self.kind.as_str());
            s.push(' ');
        }
        s.push_str(&self.dst.to_string());
        if self.table != TABLE_MAIN {
            s.push_str(&format!(" table {}", self.table));
        }
        if let Some(m) = self.metric {
            s.push_str(&format!(" metric {m}"));
        }
        s
    }
}

const ROUTE_SYNTAX: &str = "[TYPE] DEST[/LEN]|default [src IP] [via IP] [dev IF] [scope S] \
                            [table N] [metric N] [onlink] [protocol P] [no_track] \
                            [nexthop via IP [dev IF] [weight N] [onlink] ...]";

impl FromStr for IpRoute {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let mut kind = None;
        let mut dst_word: Option<&str> = None;
        let mut r = IpRoute {
            kind: RouteType::Unicast,
            dst: Prefix {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                len: 0,
            },
            src: None,
            via: None,
            dev: None,
            scope: None,
            table: TABLE_MAIN,
            metric: None,
            onlink: false,
            protocol: PROTO_KEEPALIVED,
            no_track: false,
            nexthops: Vec::new(),
        };
        let mut or: Option<IpAddr> = None;
        let mut i = 0;
        let arg = |i: usize, what: &str| -> Result<&str, String> {
            words
                .get(i + 1)
                .copied()
                .ok_or_else(|| format!("`{}` needs {what}", words[i]))
        };
        while i < words.len() {
            let w = words[i];
            match w {
                "src" => r.src = Some(address(arg(i, "an address")?, "src")?),
                "via" | "gw" => {
                    let mut a = arg(i, "an address")?;
                    if a == "inet" || a == "inet6" {
                        i += 1;
                        a = arg(i, "an address")?;
                    }
                    r.via = Some(address(a, "via")?);
                }
                "dev" | "oif" => r.dev = Some(arg(i, "an interface name")?.to_owned()),
                "scope" => r.scope = Some(scope(arg(i, "a scope")?)?),
                "table" => r.table = table(arg(i, "a table")?)?,
                "metric" | "priority" | "preference" => {
                    r.metric = Some(number(arg(i, "a number")?, "metric")?)
                }
                "protocol" | "proto" => r.protocol = protocol(arg(i, "a protocol")?)?,
                "onlink" => {
                    r.onlink = true;
                    i += 1;
                    continue;
                }
                "no_track" => {
                    r.no_track = true;
                    i += 1;
                    continue;
                }
                "or" => {
                    if or.is_some() {
                        return Err("`or` given twice: write the next hops with `nexthop`".into());
                    }
                    or = Some(address(arg(i, "an address")?, "or")?);
                }
                "nexthop" => {
                    r.nexthops = nexthops(&words[i..])?;
                    break;
                }
                "inet" | "inet6" => {
                    i += 1;
                    continue;
                }
                _ => {
                    let mut j = i;
                    if w == "to" {
                        j += 1;
                    }
                    let word = *words.get(j).ok_or("`to` needs a destination")?;
                    let word = match RouteType::parse(word) {
                        Some(k) => {
                            if kind.is_some() {
                                return Err(format!("route type given twice ({word})"));
                            }
                            kind = Some(k);
                            j += 1;
                            *words
                                .get(j)
                                .ok_or_else(|| format!("`{word}` needs a destination"))?
                        }
                        None => word,
                    };
                    if let Some(first) = dst_word {
                        return Err(format!(
                            "`{word}` is neither a keyword xlb knows in a route nor a \
                             destination (the destination is already {first}) ({ROUTE_SYNTAX})"
                        ));
                    }
                    // The family of `default` is settled once the other addresses are read.
                    if word != "default" {
                        prefix(word, false).map_err(|_| {
                            format!(
                                "`{word}` is neither a keyword xlb knows in a route nor a \
                                 destination ({ROUTE_SYNTAX})"
                            )
                        })?;
                    }
                    dst_word = Some(word);
                    i = j + 1;
                    continue;
                }
            }
            i += 2;
        }
        let dst_word = dst_word.ok_or("a route needs a destination (DEST[/LEN] or default)")?;
        r.kind = kind.unwrap_or_default();
        let others: Vec<IpAddr> = (r.src.iter().chain(&r.via).chain(&or))
            .copied()
            .chain(r.nexthops.iter().filter_map(|n| n.via))
            .collect();
        let v6 = others.first().is_some_and(IpAddr::is_ipv6);
        r.dst = prefix(dst_word, v6)?;
        if let Some(a) = others.iter().find(|a| a.is_ipv6() != r.dst.addr.is_ipv6()) {
            return Err(format!(
                "{a} and the destination {} are of different address families",
                r.dst
            ));
        }
        if let Some(o) = or {
            // keepalived 1.x's alternative gateway, kept by 2.x as two next hops.
            if !r.nexthops.is_empty() {
                return Err("`or` and `nexthop` cannot be used together".into());
            }
            let first = r.via.take().ok_or("`or` needs a `via` before it")?;
            r.nexthops = [first, o]
                .into_iter()
                .map(|a| NextHop {
                    via: Some(a),
                    dev: None,
                    weight: 1,
                    onlink: false,
                })
                .collect();
        }
        if r.kind != RouteType::Unicast && (r.via.is_some() || !r.nexthops.is_empty() || r.onlink) {
            return Err(format!(
                "a {} route takes no gateway (via, nexthop, onlink)",
                r.kind.as_str()
            ));
        }
        if !r.nexthops.is_empty() && r.via.is_some() {
            return Err("`via` and `nexthop` cannot be used together".into());
        }
        if r.onlink && r.via.is_none() {
            return Err("`onlink` needs a `via`".into());
        }
        Ok(r)
    }
}

fn nexthops(words: &[&str]) -> Result<Vec<NextHop>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let arg = |what: &str| -> Result<&str, String> {
            words
                .get(i + 1)
                .copied()
                .ok_or_else(|| format!("`{w}` needs {what}"))
        };
        match w {
            "nexthop" => {
                out.push(NextHop {
                    via: None,
                    dev: None,
                    weight: 1,
                    onlink: false,
                });
                i += 1;
                continue;
            }
            _ if out.is_empty() => unreachable!("called at a `nexthop`"),
            "via" => out.last_mut().unwrap().via = Some(address(arg("an address")?, "via")?),
            "dev" => out.last_mut().unwrap().dev = Some(arg("an interface name")?.to_owned()),
            "weight" => {
                let v = arg("a number")?;
                out.last_mut().unwrap().weight = v
                    .parse::<u16>()
                    .ok()
                    .filter(|w| (1..=256).contains(w))
                    .ok_or_else(|| format!("weight {v:?} is out of range (1..=256)"))?;
            }
            "onlink" => {
                out.last_mut().unwrap().onlink = true;
                i += 1;
                continue;
            }
            _ => {
                return Err(format!(
                    "`{w}` is not supported in a nexthop (xlb takes nexthop via IP [dev IF] \
                     [weight N] [onlink]; nexthops end the route)"
                ));
            }
        }
        i += 2;
    }
    if out.iter().any(|n| n.via.is_none() && n.dev.is_none()) {
        return Err("a nexthop needs `via` or `dev`".into());
    }
    Ok(out)
}

impl fmt::Display for IpRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != RouteType::Unicast {
            write!(f, "{} ", self.kind.as_str())?;
        }
        if self.dst.len == 0 {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.dst)?;
        }
        if let Some(s) = self.src {
            write!(f, " src {s}")?;
        }
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if let Some(s) = self.scope {
            write!(f, " scope {}", scope_name(s))?;
        }
        if self.table != TABLE_MAIN {
            write!(f, " table {}", self.table)?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        if self.onlink {
            f.write_str(" onlink")?;
        }
        if self.protocol != PROTO_KEEPALIVED {
            write!(f, " protocol {}", self.protocol)?;
        }
        if self.no_track {
            f.write_str(" no_track")?;
        }
        for n in &self.nexthops {
            f.write_str(" nexthop")?;
            if let Some(v) = n.via {
                write!(f, " via {v}")?;
            }
            if let Some(d) = &n.dev {
                write!(f, " dev {d}")?;
            }
            if n.weight != 1 {
                write!(f, " weight {}", n.weight)?;
            }
            if n.onlink {
                f.write_str(" onlink")?;
            }
        }
        Ok(())
    }
}

/// What a rule does with a packet it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Table(u32),
    Goto(u32),
    Nop,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// One routing policy rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRule {
    pub ipv6: bool,
    pub from: Option<Prefix>,
    pub to: Option<Prefix>,
    /// `not`: the rule matches what the selectors do not.
    pub invert: bool,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<(u32, Option<u32>)>,
    pub tos: Option<u8>,
    pub priority: u32,
    pub action: RuleAction,
    pub protocol: u8,
    pub no_track: bool,
}

impl IpRule {
    /// What identifies the rule (and names it in logs).
    pub fn key(&self) -> String {
        format!("preference {} ({})", self.priority, self)
    }
}

const RULE_SYNTAX: &str = "[from P] [to P] [not] [iif IF] [oif IF] [fwmark N[/M]] [tos N] \
                           preference N table N|goto N|nop|blackhole|unreachable|prohibit \
                           [no_track]";

/// A rule as written, before its preference is required: keepalived's own reading,
/// which the importer uses to number rules without one as keepalived does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDraft {
    pub rule: IpRule,
    pub has_priority: bool,
}

impl FromStr for RuleDraft {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let mut r = IpRule {
            ipv6: false,
            from: None,
            to: None,
            invert: false,
            iif: None,
            oif: None,
            fwmark: None,
            tos: None,
            priority: 0,
            action: RuleAction::Nop,
            protocol: PROTO_KEEPALIVED,
            no_track: false,
        };
        let mut action = None;
        let mut has_priority = false;
        let mut family: Option<bool> = None;
        let mut prefixes: Vec<(bool, &str)> = Vec::new();
        let mut set_action = |a: RuleAction, w: &str| -> Result<(), String> {
            if action.replace(a).is_some() {
                return Err(format!(
                    "`{w}`: a rule has one action (table, goto, nop, blackhole, unreachable \
                     or prohibit)"
                ));
            }
            Ok(())
        };
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            let arg = |what: &str| -> Result<&str, String> {
                words
                    .get(i + 1)
                    .copied()
                    .ok_or_else(|| format!("`{w}` needs {what}"))
            };
            match w {
                "from" | "to" => prefixes.push((w == "from", arg("an address or prefix")?)),
                "not" => {
                    r.invert = true;
                    i += 1;
                    continue;
                }
                "inet" | "inet6" => {
                    family = Some(w == "inet6");
                    i += 1;
                    continue;
                }
                "no_track" => {
                    r.no_track = true;
                    i += 1;
                    continue;
                }
                "nop" | "blackhole" | "unreachable" | "prohibit" => {
                    set_action(
                        match w {
                            "nop" => RuleAction::Nop,
                            "blackhole" => RuleAction::Blackhole,
                            "unreachable" => RuleAction::Unreachable,
                            _ => RuleAction::Prohibit,
                        },
                        w,
                    )?;
                    i += 1;
                    continue;
                }
                "type" => {
                    // `type ACTION`: the keyword alone is noise.
                    i += 1;
                    continue;
                }
                "table" | "lookup" => set_action(RuleAction::Table(table(arg("a table")?)?), w)?,
                "goto" => set_action(RuleAction::Goto(number(arg("a preference")?, "goto")?), w)?,
                "preference" | "priority" | "order" => {
                    r.priority = number(arg("a number")?, "preference")?;
                    has_priority = true;
                }
                "iif" | "dev" => r.iif = Some(arg("an interface name")?.to_owned()),
                "oif" => r.oif = Some(arg("an interface name")?.to_owned()),
                "fwmark" => {
                    let v = arg("a mark")?;
                    r.fwmark = Some(match v.split_once('/') {
                        Some((m, k)) => (number(m, "fwmark")?, Some(number(k, "fwmark mask")?)),
                        None => (number(v, "fwmark")?, None),
                    });
                }
                "tos" | "dsfield" => {
                    let v = arg("a number")?;
                    r.tos = Some(
                        number(v, "tos")
                            .ok()
                            .and_then(|t| u8::try_from(t).ok())
                            .ok_or_else(|| format!("tos {v:?} is not a number 0..=255"))?,
                    );
                }
                "protocol" => r.protocol = protocol(arg("a protocol")?)?,
                _ => {
                    return Err(format!(
                        "`{w}` is not a keyword xlb knows in a rule ({RULE_SYNTAX})"
                    ));
                }
            }
            i += 2;
        }
        // The family: the first address's, else inet6 / inet, else IPv4.
        let v6 = family.unwrap_or_else(|| {
            prefixes
                .iter()
                .find_map(|(_, p)| prefix(p, false).ok().filter(|p| p.len > 0 || *p != all4()))
                .is_some_and(|p| p.addr.is_ipv6())
        });
        r.ipv6 = v6;
        for (from, p) in prefixes {
            let p = prefix(p, v6)?;
            if p.addr.is_ipv6() != v6 {
                return Err(format!(
                    "{} is {} but the rule is {}",
                    p,
                    if p.addr.is_ipv6() { "IPv6" } else { "IPv4" },
                    if v6 { "IPv6" } else { "IPv4" }
                ));
            }
            if from {
                r.from = Some(p);
            } else {
                r.to = Some(p);
            }
        }
        r.action = action.ok_or_else(|| {
            format!("a rule needs an action: table N, goto N, nop, blackhole, unreachable or prohibit ({RULE_SYNTAX})")
        })?;
        if let RuleAction::Goto(target) = r.action {
            if !has_priority || r.priority >= target {
                return Err(format!(
                    "`goto {target}` needs a preference below {target}, as in the kernel"
                ));
            }
        }
        Ok(RuleDraft {
            rule: r,
            has_priority,
        })
    }
}

fn all4() -> Prefix {
    Prefix {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        len: 0,
    }
}

impl FromStr for IpRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let d: RuleDraft = s.parse()?;
        if !d.has_priority {
            return Err(format!(
                "a rule needs its `preference N` (the kernel would pick one, and xlb could \
                 not tell its rule from another when removing it) ({RULE_SYNTAX})"
            ));
        }
        Ok(d.rule)
    }
}

impl fmt::Display for IpRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut w = |f: &mut fmt::Formatter<'_>, s: String| {
            let r = write!(f, "{sep}{s}");
            sep = " ";
            r
        };
        if self.ipv6 && self.from.is_none() && self.to.is_none() {
            w(f, "inet6".into())?;
        }
        if self.invert {
            w(f, "not".into())?;
        }
        if let Some(p) = self.from {
            w(f, format!("from {p}"))?;
        }
        if let Some(p) = self.to {
            w(f, format!("to {p}"))?;
        }
        if let Some(i) = &self.iif {
            w(f, format!("iif {i}"))?;
        }
        if let Some(o) = &self.oif {
            w(f, format!("oif {o}"))?;
        }
        if let Some((m, k)) = self.fwmark {
            match k {
                Some(k) => w(f, format!("fwmark {m:#x}/{k:#x}"))?,
                None => w(f, format!("fwmark {m:#x}"))?,
            }
        }
        if let Some(t) = self.tos {
            w(f, format!("tos {t}"))?;
        }
        w(f, format!("preference {}", self.priority))?;
        w(
            f,
            match self.action {
                RuleAction::Table(t) => format!("table {t}"),
                RuleAction::Goto(t) => format!("goto {t}"),
                RuleAction::Nop => "nop".into(),
                RuleAction::Blackhole => "blackhole".into(),
                RuleAction::Unreachable => "unreachable".into(),
                RuleAction::Prohibit => "prohibit".into(),
            },
        )?;
        if self.protocol != PROTO_KEEPALIVED {
            w(f, format!("protocol {}", self.protocol))?;
        }
        if self.no_track {
            w(f, "no_track".into())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(s: &str) -> IpRoute {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn rule(s: &str) -> RuleDraft {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Every route line of keepalived's samples (vrrp.routes.conf, track_interface.conf,
    /// vrrp.static_ipaddress.conf), byte for byte.
    #[test]
    fn corpus_routes() {
        let r = route("src 192.168.100.1 192.168.209.0/24 via 192.168.200.254 dev eth0");
        assert_eq!(r.src, Some("192.168.100.1".parse().unwrap()));
        assert_eq!(r.dst.to_string(), "192.168.209.0/24");
        assert_eq!(r.via, Some("192.168.200.254".parse().unwrap()));
        assert_eq!(r.dev.as_deref(), Some("eth0"));
        assert_eq!(r.table, TABLE_MAIN);
        assert_eq!(r.protocol, PROTO_KEEPALIVED);
        assert_eq!(r.scope_in_force(), 0);

        let r = route("192.168.212.0/24 dev eth3 scope site");
        assert_eq!(r.scope, Some(200));
        let r = route("192.168.213.0/24 dev eth1 scope link");
        assert_eq!(r.scope_in_force(), 253);
        let r = route("192.168.111.0/24 dev eth2");
        assert_eq!(
            r.scope_in_force(),
            253,
            "no gateway: link scope, as iproute2"
        );

        let r = route("192.168.113.0/24 via 192.168.100.252 or 192.168.100.253");
        assert_eq!(r.via, None);
        assert_eq!(
            r.nexthops
                .iter()
                .map(|n| n.via.unwrap())
                .collect::<Vec<_>>(),
            [
                "192.168.100.252".parse::<IpAddr>().unwrap(),
                "192.168.100.253".parse().unwrap()
            ]
        );
        assert_eq!(
            r.to_string(),
            "192.168.113.0/24 nexthop via 192.168.100.252 nexthop via 192.168.100.253"
        );

        let r = route("blackhole 192.168.113.1/32");
        assert_eq!(r.kind, RouteType::Blackhole);
        assert_eq!(r.to_string(), "blackhole 192.168.113.1/32");

        let r = route("0.0.0.0/0 gw 192.168.0.1 table 100");
        assert_eq!(r.dst.len, 0);
        assert_eq!(r.table, 100);
        assert_eq!(r.to_string(), "default via 192.168.0.1 table 100");
    }

    #[test]
    fn routes_round_trip() {
        for s in [
            "198.18.1.0/24 via 198.18.0.1 dev eth0 table 100 metric 20",
            "default via 2001:db8::1 dev eth0",
            "2001:db8:5::/64 dev eth0 scope link protocol 4",
            "unreachable 198.18.9.0/24 table 7",
            "198.18.2.0/24 src 198.18.0.10 via 198.18.0.1 onlink no_track",
            "198.18.3.0/24 nexthop via 198.18.0.1 dev eth0 weight 2 nexthop via 198.18.0.2 onlink",
        ] {
            let r = route(s);
            assert_eq!(route(&r.to_string()), r, "{s} -> {r}");
        }
        // `default` takes the family of the gateway.
        assert!(route("default via 2001:db8::1").is_ipv6());
        assert!(!route("default via 198.18.0.1").is_ipv6());
        assert_eq!(route("to 198.18.0.0/16 via 198.18.0.1").dst.len, 16);
        assert_eq!(route("throw 198.18.0.0/16").kind, RouteType::Throw);
        assert_eq!(
            route("198.18.0.0/16 via inet 198.18.0.1")
                .via
                .unwrap()
                .to_string(),
            "198.18.0.1"
        );
    }

    #[test]
    fn bad_routes() {
        let err = |s: &str| s.parse::<IpRoute>().unwrap_err();
        assert!(err("via 198.18.0.1").contains("needs a destination"));
        assert!(err("198.18.0.0/33").contains("neither a keyword"));
        assert!(err("198.18.0.0/24 via").contains("`via` needs an address"));
        assert!(err("198.18.0.0/24 via 2001:db8::1").contains("different address families"));
        assert!(err("198.18.0.0/24 table frob").contains("rt_tables"));
        assert!(err("198.18.0.0/24 mtu 1400").contains("`mtu` is neither a keyword"));
        assert!(err("198.18.0.0/24 198.18.1.0/24").contains("already 198.18.0.0/24"));
        assert!(err("blackhole 198.18.0.0/24 via 198.18.0.1").contains("no gateway"));
        assert!(err("198.18.0.0/24 scope galaxy").contains("unknown scope"));
        assert!(err("198.18.0.0/24 nexthop weight 2").contains("needs `via` or `dev`"));
        assert!(err("198.18.0.0/24 dev eth0 onlink").contains("needs a `via`"));
        assert!(err("198.18.0.0/24 or 198.18.0.2").contains("needs a `via`"));
    }

    /// keepalived's vrrp.rules.conf, byte for byte: the malformed `192.168.100./24` is
    /// refused, as keepalived refuses it.
    #[test]
    fn corpus_rules() {
        let d = rule("from 192.168.100.0/24 table 1");
        assert!(!d.has_priority);
        assert_eq!(d.rule.from.unwrap().to_string(), "192.168.100.0/24");
        assert_eq!(d.rule.action, RuleAction::Table(1));
        assert!(
            "to 192.168.100./24 table 1"
                .parse::<RuleDraft>()
                .unwrap_err()
                .contains("not an address")
        );
        assert!(
            "from 192.168.100.0/24 table 1"
                .parse::<IpRule>()
                .unwrap_err()
                .contains("preference")
        );
    }

    #[test]
    fn rules_round_trip() {
        for s in [
            "from 198.18.0.0/24 preference 100 table 10",
            "not from 198.18.0.0/24 to 198.18.5.0/24 iif eth0 oif eth1 preference 7 table 2",
            "fwmark 0x10/0xff preference 50 lookup 100",
            "from 2001:db8::/64 preference 300 blackhole",
            "inet6 preference 5 unreachable",
            "to 198.18.0.1 tos 16 priority 9 goto 20 no_track",
            "from all preference 1000 nop",
        ] {
            let r: IpRule = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(r.to_string().parse::<IpRule>().unwrap(), r, "{s} -> {r}");
        }
        let r: IpRule = "from 2001:db8::/64 preference 3 table 4".parse().unwrap();
        assert!(r.ipv6);
        let r: IpRule = "fwmark 5 preference 3 table 4".parse().unwrap();
        assert_eq!(r.fwmark, Some((5, None)));
        assert!(!r.ipv6);
    }

    #[test]
    fn bad_rules() {
        let err = |s: &str| s.parse::<IpRule>().unwrap_err();
        assert!(err("from 198.18.0.0/24 preference 3").contains("needs an action"));
        assert!(err("from 198.18.0.0/24 preference 3 table 1 nop").contains("one action"));
        assert!(err("from 198.18.0.0/24 to 2001:db8::/64 preference 3 nop").contains("IPv4"));
        assert!(err("preference 30 goto 20").contains("below 20"));
        assert!(err("from 198.18.0.0/24 preference 3 table 0").contains("table 0"));
        assert!(err("sport 80 preference 3 table 1").contains("`sport` is not a keyword"));
        assert!(err("fwmark x preference 3 table 1").contains("fwmark"));
    }
}
