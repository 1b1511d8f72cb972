//! Routes and routing policy rules of the config (`static_routes`, `virtual_routes`,
//! `static_rules`, `virtual_rules`) in the kernel: the RTM_NEWROUTE / RTM_NEWRULE messages
//! keepalived sends for them (`vrrp_iproute.c`, `vrrp_iprule.c`), adding, removing, and
//! finding them again in a dump.
//!
//! Removal names the route's protocol (keepalived's 18 unless the config says otherwise):
//! the kernel then removes only a route of that protocol, never a route someone else
//! added for the same prefix.

use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType as NlRouteType,
};
use rtnetlink::packet_route::rule::{
    RuleAction as NlRuleAction, RuleAttribute, RuleFlags, RuleMessage,
};
use rtnetlink::{Handle, IpVersion};
use thiserror::Error;

use crate::config::{IpRoute, IpRule, RouteType, RuleAction};

#[derive(Debug, Error)]
pub enum RouteError {
    #[error("{what}: interface {dev} not found")]
    NoSuchInterface { what: String, dev: String },
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

fn family(v6: bool) -> AddressFamily {
    if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    }
}

fn kind(k: RouteType) -> NlRouteType {
    match k {
        RouteType::Unicast => NlRouteType::Unicast,
        RouteType::Blackhole => NlRouteType::BlackHole,
        RouteType::Unreachable => NlRouteType::Unreachable,
        RouteType::Prohibit => NlRouteType::Prohibit,
        RouteType::Throw => NlRouteType::Throw,
    }
}

/// The header's 8-bit table: the table itself below 256, else "unspecified" with the
/// whole number in the table attribute (as iproute2 does).
fn table8(t: u32) -> u8 {
    u8::try_from(t).unwrap_or(RouteHeader::RT_TABLE_UNSPEC)
}

/// The RTM_NEWROUTE (`add`) or RTM_DELROUTE message of `r`, with the interface indexes of
/// its `dev` and of each next hop's `dev` (0: none) already looked up.
pub fn route_message(r: &IpRoute, oif: Option<u32>, nh_oifs: &[u32], add: bool) -> RouteMessage {
    let mut m = RouteMessage::default();
    let h = &mut m.header;
    h.address_family = family(r.is_ipv6());
    h.destination_prefix_length = r.dst.len;
    h.table = table8(r.table);
    h.protocol = RouteProtocol::from(r.protocol);
    // A removal matches any scope, as `ip route del` asks.
    h.scope = if add {
        RouteScope::from(r.scope_in_force())
    } else {
        RouteScope::NoWhere
    };
    h.kind = kind(r.kind);
    if r.onlink {
        h.flags |= RouteFlags::Onlink;
    }
    let a = &mut m.attributes;
    a.push(RouteAttribute::Table(r.table));
    if r.dst.len > 0 {
        a.push(RouteAttribute::Destination(RouteAddress::from(r.dst.addr)));
    }
    if let Some(s) = r.src {
        a.push(RouteAttribute::PrefSource(RouteAddress::from(s)));
    }
    if let Some(v) = r.via {
        a.push(RouteAttribute::Gateway(RouteAddress::from(v)));
    }
    if let Some(i) = oif {
        a.push(RouteAttribute::Oif(i));
    }
    if let Some(p) = r.metric {
        a.push(RouteAttribute::Priority(p));
    }
    if !r.nexthops.is_empty() {
        let hops = r
            .nexthops
            .iter()
            .zip(nh_oifs.iter().copied().chain(std::iter::repeat(0)))
            .map(|(n, index)| {
                let mut hop = RouteNextHop::default();
                hop.interface_index = index;
                hop.hops = (n.weight - 1) as u8;
                if n.onlink {
                    hop.flags |= RouteNextHopFlags::Onlink;
                }
                if let Some(v) = n.via {
                    hop.attributes
                        .push(RouteAttribute::Gateway(RouteAddress::from(v)));
                }
                hop
            })
            .collect();
        a.push(RouteAttribute::MultiPath(hops));
    }
    m
}

async fn dev_index(handle: &Handle, dev: &str, r: &IpRoute) -> Result<u32, RouteError> {
    super::ifindex(handle, dev)
        .await
        .map_err(|_| RouteError::NoSuchInterface {
            what: format!("route {r}"),
            dev: dev.to_owned(),
        })
}

async fn indexes(handle: &Handle, r: &IpRoute) -> Result<(Option<u32>, Vec<u32>), RouteError> {
    let oif = match &r.dev {
        Some(d) => Some(dev_index(handle, d, r).await?),
        None => None,
    };
    let mut nh = Vec::new();
    for n in &r.nexthops {
        nh.push(match &n.dev {
            Some(d) => dev_index(handle, d, r).await?,
            None => 0,
        });
    }
    Ok((oif, nh))
}

/// Adds `r`; one that is there already is not an error.
pub async fn add_route(handle: &Handle, r: &IpRoute) -> Result<(), RouteError> {
    let (oif, nh) = indexes(handle, r).await?;
    match handle
        .route()
        .add(route_message(r, oif, &nh, true))
        .execute()
        .await
    {
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        res => res.map_err(|source| RouteError::Netlink {
            what: format!("route {r}"),
            source,
        }),
    }
}

/// Removes `r`; one that is not there (or whose interface is gone, and the route with
/// it) is not an error.
pub async fn del_route(handle: &Handle, r: &IpRoute) -> Result<(), RouteError> {
    let (oif, nh) = match indexes(handle, r).await {
        Ok(i) => i,
        Err(RouteError::NoSuchInterface { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    match handle
        .route()
        .del(route_message(r, oif, &nh, false))
        .execute()
        .await
    {
        Err(e) if matches!(errno(&e), Some(libc::ESRCH | libc::ENOENT | libc::ENODEV)) => Ok(()),
        res => res.map_err(|source| RouteError::Netlink {
            what: format!("route {r}"),
            source,
        }),
    }
}

/// Whether `m` (from a dump) is route `r`: family, destination, table, type, metric and
/// protocol, as keepalived's `compare_route` matches its own.
pub fn is_route(m: &RouteMessage, r: &IpRoute) -> bool {
    let h = &m.header;
    if h.address_family != family(r.is_ipv6())
        || h.destination_prefix_length != r.dst.len
        || h.kind != kind(r.kind)
        || u8::from(h.protocol) != r.protocol
    {
        return false;
    }
    let mut table = u32::from(h.table);
    let mut dst = None;
    let mut metric = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => dst = Some(d.clone()),
            RouteAttribute::Priority(p) => metric = Some(*p),
            _ => {}
        }
    }
    let want_dst = (r.dst.len > 0).then(|| RouteAddress::from(r.dst.addr));
    let metric_ok = match (r.metric, metric) {
        (Some(a), Some(b)) => a == b,
        (None, None) => true,
        // IPv6 routes always carry a metric: 1024 when none was asked for.
        (None, Some(1024)) => r.is_ipv6(),
        (Some(0), None) => true,
        _ => false,
    };
    table == r.table && dst == want_dst && metric_ok
}

/// Whether `r` is in the kernel now.
pub async fn has_route(handle: &Handle, r: &IpRoute) -> Result<bool, RouteError> {
    let mut m = RouteMessage::default();
    m.header.address_family = family(r.is_ipv6());
    let mut dump = handle.route().get(m).execute();
    loop {
        match dump.try_next().await {
            Ok(Some(msg)) if is_route(&msg, r) => return Ok(true),
            Ok(Some(_)) => {}
            Ok(None) => return Ok(false),
            Err(source) => {
                return Err(RouteError::Netlink {
                    what: format!("route {r}"),
                    source,
                });
            }
        }
    }
}

/// The RTM_NEWRULE / RTM_DELRULE message of `r`.
pub fn rule_message(r: &IpRule) -> RuleMessage {
    let mut m = RuleMessage::default();
    let h = &mut m.header;
    h.family = family(r.ipv6);
    h.tos = r.tos.unwrap_or(0);
    if r.invert {
        h.flags |= RuleFlags::Invert;
    }
    let a = &mut m.attributes;
    if let Some(p) = r.from {
        h.src_len = p.len;
        if p.len > 0 {
            a.push(RuleAttribute::Source(p.addr));
        }
    }
    if let Some(p) = r.to {
        h.dst_len = p.len;
        if p.len > 0 {
            a.push(RuleAttribute::Destination(p.addr));
        }
    }
    a.push(RuleAttribute::Priority(r.priority));
    h.action = match r.action {
        RuleAction::Table(t) => {
            h.table = table8(t);
            a.push(RuleAttribute::Table(t));
            NlRuleAction::ToTable
        }
        RuleAction::Goto(t) => {
            a.push(RuleAttribute::Goto(t));
            NlRuleAction::Goto
        }
        RuleAction::Nop => NlRuleAction::Nop,
        RuleAction::Blackhole => NlRuleAction::Blackhole,
        RuleAction::Unreachable => NlRuleAction::Unreachable,
        RuleAction::Prohibit => NlRuleAction::Prohibit,
    };
    if let Some(i) = &r.iif {
        a.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &r.oif {
        a.push(RuleAttribute::Oifname(o.clone()));
    }
    if let Some((mark, mask)) = r.fwmark {
        a.push(RuleAttribute::FwMark(mark));
        if let Some(k) = mask {
            a.push(RuleAttribute::FwMask(k));
        }
    }
    a.push(RuleAttribute::Protocol(RouteProtocol::from(r.protocol)));
    m
}

/// Adds `r`; one that is there already is not an error.
pub async fn add_rule(handle: &Handle, r: &IpRule) -> Result<(), RouteError> {
    let mut req = handle.rule().add();
    *req.message_mut() = rule_message(r);
    match req.execute().await {
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
        res => res.map_err(|source| RouteError::Netlink {
            what: format!("rule {r}"),
            source,
        }),
    }
}

/// Removes `r`; one that is not there is not an error.
pub async fn del_rule(handle: &Handle, r: &IpRule) -> Result<(), RouteError> {
    match handle.rule().del(rule_message(r)).execute().await {
        Err(e) if matches!(errno(&e), Some(libc::ENOENT | libc::ESRCH)) => Ok(()),
        res => res.map_err(|source| RouteError::Netlink {
            what: format!("rule {r}"),
            source,
        }),
    }
}

/// Whether `m` (from a dump) is rule `r`: family, preference, action and table, as
/// keepalived's `compare_rule` matches its own.
pub fn is_rule(m: &RuleMessage, r: &IpRule) -> bool {
    let want = rule_message(r);
    if m.header.family != want.header.family || m.header.action != want.header.action {
        return false;
    }
    let prio = |m: &RuleMessage| {
        m.attributes.iter().find_map(|a| match a {
            RuleAttribute::Priority(p) => Some(*p),
            _ => None,
        })
    };
    let table = |m: &RuleMessage| {
        m.attributes
            .iter()
            .find_map(|a| match a {
                RuleAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(m.header.table))
    };
    prio(m) == Some(r.priority)
        && table(m) == table(&want)
        && m.header.src_len == want.header.src_len
        && m.header.dst_len == want.header.dst_len
}

/// Whether `r` is in the kernel now.
pub async fn has_rule(handle: &Handle, r: &IpRule) -> Result<bool, RouteError> {
    let v = if r.ipv6 { IpVersion::V6 } else { IpVersion::V4 };
    let mut dump = handle.rule().get(v).execute();
    loop {
        match dump.try_next().await {
            Ok(Some(msg)) if is_rule(&msg, r) => return Ok(true),
            Ok(Some(_)) => {}
            Ok(None) => return Ok(false),
            Err(source) => {
                return Err(RouteError::Netlink {
                    what: format!("rule {r}"),
                    source,
                });
            }
        }
    }
}

/// Routes and rules that come and go together: an instance's virtual ones, or the
/// static ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteSet {
    pub routes: Vec<IpRoute>,
    pub rules: Vec<IpRule>,
}

impl RouteSet {
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.rules.is_empty()
    }

    /// What is in `self` and not in `other`.
    pub fn minus(&self, other: &Self) -> Self {
        Self {
            routes: (self.routes.iter())
                .filter(|r| !other.routes.contains(r))
                .cloned()
                .collect(),
            rules: (self.rules.iter())
                .filter(|r| !other.rules.contains(r))
                .cloned()
                .collect(),
        }
    }

    /// Adds the routes, then the rules (a rule may send traffic to a table the routes
    /// fill, as keepalived orders them). Everything is tried; the failures are returned.
    pub async fn add(&self, handle: &Handle) -> Vec<RouteError> {
        let mut errors = Vec::new();
        for r in &self.routes {
            if let Err(e) = add_route(handle, r).await {
                errors.push(e);
            }
        }
        for r in &self.rules {
            if let Err(e) = add_rule(handle, r).await {
                errors.push(e);
            }
        }
        errors
    }

    /// Removes the rules, then the routes. Everything is tried; failures are returned.
    pub async fn remove(&self, handle: &Handle) -> Vec<RouteError> {
        let mut errors = Vec::new();
        for r in &self.rules {
            if let Err(e) = del_rule(handle, r).await {
                errors.push(e);
            }
        }
        for r in &self.routes {
            if let Err(e) = del_route(handle, r).await {
                errors.push(e);
            }
        }
        errors
    }

    /// Puts back the tracked (not `no_track`) routes and rules that are missing; returns
    /// the ones put back (as text) and the failures.
    pub async fn restore(&self, handle: &Handle) -> (Vec<String>, Vec<RouteError>) {
        let mut back = Vec::new();
        let mut errors = Vec::new();
        for r in self.routes.iter().filter(|r| !r.no_track) {
            match has_route(handle, r).await {
                Ok(true) => {}
                Ok(false) => match add_route(handle, r).await {
                    Ok(()) => back.push(format!("route {r}")),
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(e),
            }
        }
        for r in self.rules.iter().filter(|r| !r.no_track) {
            match has_rule(handle, r).await {
                Ok(true) => {}
                Ok(false) => match add_rule(handle, r).await {
                    Ok(()) => back.push(format!("rule {r}")),
                    Err(e) => errors.push(e),
                },
                Err(e) => errors.push(e),
            }
        }
        (back, errors)
    }
}

/// A route or rule removed from the kernel, as the subscription reports it.
#[derive(Debug, Clone)]
pub enum Removed {
    Route(RouteMessage),
    Rule(RuleMessage),
}

/// Opens a connection subscribed to the route and rule groups of both families; yields
/// the removals (RTM_DELROUTE, RTM_DELRULE).
pub fn watch_removed() -> Result<BoxStream<'static, Removed>, super::NetlinkError> {
    const RTMGRP_IPV4_ROUTE: u32 = 0x40;
    const RTMGRP_IPV4_RULE: u32 = 0x80;
    const RTMGRP_IPV6_ROUTE: u32 = 0x400;
    // RTNLGRP_IPV6_RULE (19) has no RTMGRP_ mask of its own; its bit is 1 << (19 - 1).
    const IPV6_RULE: u32 = 1 << 18;
    Ok(
        super::subscribe(RTMGRP_IPV4_ROUTE | RTMGRP_IPV4_RULE | RTMGRP_IPV6_ROUTE | IPV6_RULE)?
            .filter_map(|msg| async move {
                match msg {
                    RouteNetlinkMessage::DelRoute(m) => Some(Removed::Route(m)),
                    RouteNetlinkMessage::DelRule(m) => Some(Removed::Rule(m)),
                    _ => None,
                }
            })
            .boxed(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(s: &str) -> IpRoute {
        s.parse().unwrap()
    }

    #[test]
    fn route_messages() {
        let r = route("198.18.9.0/24 src 198.18.0.10 via 198.18.0.1 table 100 metric 7");
        let m = route_message(&r, Some(3), &[], true);
        assert_eq!(m.header.address_family, AddressFamily::Inet);
        assert_eq!(m.header.destination_prefix_length, 24);
        assert_eq!(m.header.table, 100);
        assert_eq!(m.header.protocol, RouteProtocol::KeepAlived);
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert_eq!(m.header.kind, NlRouteType::Unicast);
        for a in [
            RouteAttribute::Table(100),
            RouteAttribute::Destination(RouteAddress::Inet("198.18.9.0".parse().unwrap())),
            RouteAttribute::PrefSource(RouteAddress::Inet("198.18.0.10".parse().unwrap())),
            RouteAttribute::Gateway(RouteAddress::Inet("198.18.0.1".parse().unwrap())),
            RouteAttribute::Oif(3),
            RouteAttribute::Priority(7),
        ] {
            assert!(m.attributes.contains(&a), "{a:?}");
        }
        // Found again in a dump that echoes it.
        assert!(is_route(&m, &r));
        assert!(!is_route(
            &m,
            &route("198.18.9.0/24 via 198.18.0.1 table 101 metric 7")
        ));
        assert_eq!(
            route_message(&r, Some(3), &[], false).header.scope,
            RouteScope::NoWhere
        );

        let r = route("198.18.5.0/24 dev eth0");
        assert_eq!(
            route_message(&r, Some(3), &[], true).header.scope,
            RouteScope::Link
        );
        let r = route("blackhole 198.18.5.0/24 table 1000");
        let m = route_message(&r, None, &[], true);
        assert_eq!(m.header.kind, NlRouteType::BlackHole);
        assert_eq!(m.header.table, 0);
        assert!(m.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(is_route(&m, &r));
        let r =
            route("198.18.6.0/24 nexthop via 198.18.0.1 dev eth0 weight 3 nexthop via 198.18.0.2");
        let m = route_message(&r, None, &[4, 0], true);
        let hops = m
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::MultiPath(h) => Some(h.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(hops.len(), 2);
        assert_eq!((hops[0].interface_index, hops[0].hops), (4, 2));
        assert_eq!((hops[1].interface_index, hops[1].hops), (0, 0));
        let r = route("default via 2001:db8::1");
        let m = route_message(&r, None, &[], true);
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        assert!(
            !m.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Destination(_)))
        );
    }

    #[test]
    fn rule_messages() {
        let r: IpRule = "not from 198.18.0.0/24 iif eth0 fwmark 0x10/0xff preference 100 table 300"
            .parse()
            .unwrap();
        let m = rule_message(&r);
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!(m.header.src_len, 24);
        assert_eq!(m.header.table, 0);
        assert_eq!(m.header.action, NlRuleAction::ToTable);
        assert!(m.header.flags.contains(RuleFlags::Invert));
        for a in [
            RuleAttribute::Source("198.18.0.0".parse().unwrap()),
            RuleAttribute::Priority(100),
            RuleAttribute::Table(300),
            RuleAttribute::Iifname("eth0".into()),
            RuleAttribute::FwMark(0x10),
            RuleAttribute::FwMask(0xff),
            RuleAttribute::Protocol(RouteProtocol::KeepAlived),
        ] {
            assert!(m.attributes.contains(&a), "{a:?}");
        }
        assert!(is_rule(&m, &r));
        let other: IpRule = "from 198.18.0.0/24 preference 101 table 300"
            .parse()
            .unwrap();
        assert!(!is_rule(&m, &other));
        let r: IpRule = "from 2001:db8::/48 preference 5 blackhole".parse().unwrap();
        let m = rule_message(&r);
        assert_eq!(m.header.family, AddressFamily::Inet6);
        assert_eq!(m.header.action, NlRuleAction::Blackhole);
    }
}
