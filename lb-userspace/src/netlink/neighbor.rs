//! Where real servers are on the link: route and neighbour (ARP / NDP) lookups.
//!
//! DR forwarding only rewrites MAC addresses, so every real server must be on-link: the
//! kernel's route to it must have no gateway. Its MAC comes from the kernel's neighbour
//! table; when the entry is missing we ask the kernel to resolve it (`NTF_USE`, the same
//! as `ip neigh replace ADDR dev IF use`), which sends ARP / NS without sending the real
//! server any payload. Neighbour events keep the MACs current.

use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use rtnetlink::{
    Handle,
    packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload},
    packet_route::{
        AddressFamily, RouteNetlinkMessage,
        neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
        },
        route::{RouteAddress, RouteAttribute, RouteMessage, RouteType},
    },
};

use crate::netlink::{NetlinkError, ethernet, subscribe};

/// How the director reaches a real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnLink {
    pub ifindex: u32,
}

/// One change of the kernel's neighbour table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborEvent {
    pub ifindex: u32,
    pub addr: IpAddr,
    /// The usable MAC, or None when the entry is gone or failed.
    pub mac: Option<[u8; 6]>,
}

/// Opens a connection subscribed to neighbour changes; yields them as they happen.
pub fn watch() -> Result<BoxStream<'static, NeighborEvent>, NetlinkError> {
    const RTMGRP_NEIGH: u32 = 4;
    Ok(subscribe(RTMGRP_NEIGH)?
        .filter_map(|msg| async move {
            match msg {
                RouteNetlinkMessage::NewNeighbour(n) => event_of(&n, false),
                RouteNetlinkMessage::DelNeighbour(n) => event_of(&n, true),
                _ => None,
            }
        })
        .boxed())
}

fn event_of(n: &NeighbourMessage, deleted: bool) -> Option<NeighborEvent> {
    let addr = destination(n)?;
    let mac = if deleted { None } else { usable_mac(n) };
    Some(NeighborEvent {
        ifindex: n.header.ifindex,
        addr,
        mac,
    })
}

fn destination(n: &NeighbourMessage) -> Option<IpAddr> {
    n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })
}

/// The entry's MAC if the kernel considers it usable (not INCOMPLETE / FAILED).
fn usable_mac(n: &NeighbourMessage) -> Option<[u8; 6]> {
    match n.header.state {
        NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None => {
            return None;
        }
        _ => {}
    }
    n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLocalAddress(l) => ethernet(l).filter(|mac| *mac != [0; 6]),
        _ => None,
    })
}

/// `ip route get ADDR`: the interface the kernel would send to `addr` through, refusing
/// anything that is not directly on-link.
pub async fn route_to(handle: &Handle, addr: IpAddr) -> Result<OnLink, NetlinkError> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = if addr.is_ipv4() { 32 } else { 128 };
    msg.attributes.push(RouteAttribute::Destination(match addr {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }));
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetRoute(msg));
    req.header.flags = NLM_F_REQUEST;
    let mut responses = handle.clone().request(req)?;
    while let Some(resp) = responses.next().await {
        match resp.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => {
                if route.header.kind == RouteType::Local {
                    return Err(NetlinkError::Local(addr));
                }
                let mut oif = None;
                for a in &route.attributes {
                    match a {
                        RouteAttribute::Oif(i) => oif = Some(*i),
                        RouteAttribute::Gateway(RouteAddress::Inet(g)) => {
                            return Err(NetlinkError::NotOnLink {
                                addr,
                                gateway: IpAddr::V4(*g),
                            });
                        }
                        RouteAttribute::Gateway(RouteAddress::Inet6(g)) => {
                            return Err(NetlinkError::NotOnLink {
                                addr,
                                gateway: IpAddr::V6(*g),
                            });
                        }
                        _ => {}
                    }
                }
                return oif
                    .map(|ifindex| OnLink { ifindex })
                    .ok_or(NetlinkError::NoRoute(addr));
            }
            NetlinkPayload::Error(_) => return Err(NetlinkError::NoRoute(addr)),
            _ => {}
        }
    }
    Err(NetlinkError::NoRoute(addr))
}

/// The neighbour table's usable MAC for `addr` on `ifindex`, if any.
pub async fn lookup(
    handle: &Handle,
    ifindex: u32,
    addr: IpAddr,
) -> Result<Option<[u8; 6]>, NetlinkError> {
    let family = match addr {
        IpAddr::V4(_) => rtnetlink::IpVersion::V4,
        IpAddr::V6(_) => rtnetlink::IpVersion::V6,
    };
    let mut entries = handle.neighbours().get().set_family(family).execute();
    while let Some(n) = entries.try_next().await? {
        if n.header.ifindex == ifindex && destination(&n) == Some(addr) {
            return Ok(usable_mac(&n));
        }
    }
    Ok(None)
}

/// Asks the kernel to (re)resolve `addr` on `ifindex` (`ip neigh replace ADDR dev IF use`).
/// An existing entry is only re-confirmed, never overwritten.
pub async fn resolve(handle: &Handle, ifindex: u32, addr: IpAddr) -> Result<(), NetlinkError> {
    handle
        .neighbours()
        .add(ifindex, addr)
        .flags(NeighbourFlags::Use)
        .state(NeighbourState::None)
        .replace()
        .execute()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn entry(state: NeighbourState, mac: &[u8]) -> NeighbourMessage {
        let mut n = NeighbourMessage::default();
        n.header.ifindex = 7;
        n.header.state = state;
        n.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                Ipv4Addr::new(198, 18, 0, 11),
            )));
        n.attributes
            .push(NeighbourAttribute::LinkLocalAddress(mac.to_vec()));
        n
    }

    #[test]
    fn only_usable_entries_give_a_mac() {
        let mac = [2, 0, 0, 0, 0, 11];
        let event = event_of(&entry(NeighbourState::Reachable, &mac), false).unwrap();
        assert_eq!(
            event,
            NeighborEvent {
                ifindex: 7,
                addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11)),
                mac: Some(mac),
            }
        );
        assert_eq!(usable_mac(&entry(NeighbourState::Stale, &mac)), Some(mac));
        for state in [
            NeighbourState::Incomplete,
            NeighbourState::Failed,
            NeighbourState::None,
        ] {
            assert_eq!(usable_mac(&entry(state, &mac)), None, "{state:?}");
        }
        assert_eq!(usable_mac(&entry(NeighbourState::Reachable, &[0; 6])), None);
        assert_eq!(usable_mac(&entry(NeighbourState::Reachable, &[1; 8])), None);
        let gone = event_of(&entry(NeighbourState::Reachable, &mac), true).unwrap();
        assert_eq!(gone.mac, None, "a deleted entry");
    }
}
