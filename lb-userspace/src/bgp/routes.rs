//! The announcements in the kernel: one blackhole host route (/32, /128) per announced
//! VIP, protocol [`PROTO_XLB`], in xlb's table. BIRD's `kernel` protocol learns that table
//! and BGP exports what it learns. The route never drops VIP traffic: XDP takes the
//! packets before the kernel routes them. Removal names the protocol, so a route of the
//! same prefix that someone else added is never touched.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteType as NlRouteType,
};

use crate::config::{IpRoute, Prefix, RouteType};
use crate::netlink::route::{RouteError, add_route, del_route};

/// The route protocol number of xlb's announcements (`ip route show proto 201`); the
/// default table number too, which is easy to remember.
pub const PROTO_XLB: u8 = 201;

/// The route that announces `vip` in `table`.
pub fn host_route(vip: IpAddr, table: u32) -> IpRoute {
    IpRoute {
        kind: RouteType::Blackhole,
        dst: Prefix {
            addr: vip,
            len: if vip.is_ipv4() { 32 } else { 128 },
        },
        src: None,
        via: None,
        dev: None,
        scope: None,
        table,
        metric: None,
        onlink: false,
        protocol: PROTO_XLB,
        no_track: false,
        nexthops: Vec::new(),
    }
}

pub async fn announce(handle: &Handle, vip: IpAddr, table: u32) -> Result<(), RouteError> {
    add_route(handle, &host_route(vip, table)).await
}

pub async fn withdraw(handle: &Handle, vip: IpAddr, table: u32) -> Result<(), RouteError> {
    del_route(handle, &host_route(vip, table)).await
}

/// The VIP and table of `m` if it is one of xlb's announcements.
fn ours(m: &RouteMessage) -> Option<(IpAddr, u32)> {
    let h = &m.header;
    let host_len = match h.address_family {
        AddressFamily::Inet => 32,
        AddressFamily::Inet6 => 128,
        _ => return None,
    };
    if h.kind != NlRouteType::BlackHole
        || u8::from(h.protocol) != PROTO_XLB
        || h.destination_prefix_length != host_len
    {
        return None;
    }
    let mut table = u32::from(h.table);
    let mut dst = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(v4)) => dst = Some(IpAddr::V4(*v4)),
            RouteAttribute::Destination(RouteAddress::Inet6(v6)) => dst = Some(IpAddr::V6(*v6)),
            _ => {}
        }
    }
    dst.map(|d| (d, table))
}

/// xlb's announcements in the kernel: (VIP, table), in `table` only when given.
pub async fn list(handle: &Handle, table: Option<u32>) -> Result<Vec<(IpAddr, u32)>, RouteError> {
    let mut found = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        let mut dump = handle.route().get(m).execute();
        while let Some(msg) = dump
            .try_next()
            .await
            .map_err(|source| RouteError::Netlink {
                what: "listing xlb's announcements".to_owned(),
                source,
            })?
        {
            if let Some((vip, t)) = ours(&msg) {
                if table.is_none_or(|want| want == t) {
                    found.push((vip, t));
                }
            }
        }
    }
    Ok(found)
}

/// `xlb teardown`: removes every announcement of xlb (every table), so the routers stop
/// sending this director the VIPs' traffic. Returns what it removed.
pub async fn withdraw_everything(handle: &Handle) -> Result<Vec<(IpAddr, u32)>, RouteError> {
    let all = list(handle, None).await?;
    for &(vip, table) in &all {
        withdraw(handle, vip, table).await?;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::route::{is_route, route_message};

    #[test]
    fn the_host_route_is_a_blackhole_of_protocol_201_found_again_in_a_dump() {
        let vip: IpAddr = "198.18.0.100".parse().unwrap();
        let r = host_route(vip, 201);
        assert_eq!(
            r.to_string(),
            "blackhole 198.18.0.100/32 table 201 protocol 201"
        );
        let m = route_message(&r, None, &[], true);
        assert!(is_route(&m, &r));
        assert_eq!(ours(&m), Some((vip, 201)));
        let vip6: IpAddr = "2001:db8::100".parse().unwrap();
        let m = route_message(&host_route(vip6, 1000), None, &[], true);
        assert_eq!(ours(&m), Some((vip6, 1000)));
        // Another protocol's blackhole, or a prefix, is not ours.
        let mut other = host_route(vip, 201);
        other.protocol = 18;
        assert_eq!(ours(&route_message(&other, None, &[], true)), None);
        let mut prefix = host_route(vip, 201);
        prefix.dst.len = 24;
        assert_eq!(ours(&route_message(&prefix, None, &[], true)), None);
    }
}
