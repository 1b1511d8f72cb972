//! Where real servers are on the link: route and neighbour (ARP / NDP) lookups through
//! rtnetlink.
//!
//! DR forwarding only rewrites MAC addresses, so every real server must be on-link: the
//! kernel's route to it must have no gateway. Its MAC comes from the kernel's neighbour
//! table; when the entry is missing we ask the kernel to resolve it (`NTF_USE`, the same
//! as `ip neigh replace ADDR dev IF use`), which sends ARP / NS without sending the real
//! server any payload. Neighbour events keep the MACs current.

use std::net::IpAddr;

use futures::{StreamExt, TryStreamExt};
use rtnetlink::{
    Handle,
    packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload},
    packet_route::{
        AddressFamily, RouteNetlinkMessage,
        link::{LinkAttribute, LinkMessage},
        neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
        },
        route::{RouteAddress, RouteAttribute, RouteMessage, RouteType},
    },
};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NeighborError {
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("no route to {0}")]
    NoRoute(IpAddr),
    #[error(
        "{addr} is reached through the gateway {gateway}: a DR real server must be on the \
         same link as the director (DR only rewrites MAC addresses)"
    )]
    NotOnLink { addr: IpAddr, gateway: IpAddr },
    #[error("{0} is an address of this host, not a real server")]
    Local(IpAddr),
    #[error("interface {0} not found")]
    NoSuchInterface(String),
    #[error("interface index {0} has no Ethernet address")]
    NoMac(u32),
}

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

/// Opens an rtnetlink connection (its driver runs as a tokio task).
pub fn connect() -> Result<Handle, NeighborError> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    Ok(handle)
}

/// A link's state changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    pub ifindex: u32,
    /// Administratively up and with carrier (`IFF_UP` and `IFF_RUNNING`).
    pub up: bool,
}

fn link_is_up(link: &LinkMessage) -> bool {
    use rtnetlink::packet_route::link::LinkFlags;
    link.header.flags.contains(LinkFlags::Up) && link.header.flags.contains(LinkFlags::Running)
}

/// Whether interface `ifindex` is up with carrier.
pub async fn link_up(handle: &Handle, ifindex: u32) -> Result<bool, NeighborError> {
    let mut links = handle.link().get().match_index(ifindex).execute();
    match links.try_next().await? {
        Some(link) => Ok(link_is_up(&link)),
        None => Ok(false),
    }
}

/// Opens a connection subscribed to link changes (`RTMGRP_LINK`); a deleted link is
/// reported down.
pub fn watch_links() -> Result<futures::stream::BoxStream<'static, LinkEvent>, NeighborError> {
    use rtnetlink::sys::{AsyncSocket, SocketAddr};
    const RTMGRP_LINK: u32 = 1;
    let (mut conn, _handle, messages) = rtnetlink::new_connection()?;
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, RTMGRP_LINK))?;
    tokio::spawn(conn);
    Ok(messages
        .filter_map(|(msg, _)| async move {
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => Some(LinkEvent {
                    ifindex: l.header.index,
                    up: link_is_up(&l),
                }),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(l)) => Some(LinkEvent {
                    ifindex: l.header.index,
                    up: false,
                }),
                _ => None,
            }
        })
        .boxed())
}

/// Opens a connection subscribed to neighbour changes; yields them as they happen.
pub fn watch() -> Result<futures::stream::BoxStream<'static, NeighborEvent>, NeighborError> {
    use rtnetlink::sys::{AsyncSocket, SocketAddr};
    const RTMGRP_NEIGH: u32 = 4;
    let (mut conn, _handle, messages) = rtnetlink::new_connection()?;
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, RTMGRP_NEIGH))?;
    tokio::spawn(conn);
    Ok(messages
        .filter_map(|(msg, _)| async move {
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => {
                    event_of(&n, false)
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelNeighbour(n)) => {
                    event_of(&n, true)
                }
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
        NeighbourAttribute::LinkLocalAddress(l) if l.len() == 6 => {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(l);
            (mac != [0; 6]).then_some(mac)
        }
        _ => None,
    })
}

/// `ip route get ADDR`: the interface the kernel would send to `addr` through, refusing
/// anything that is not directly on-link.
pub async fn route_to(handle: &Handle, addr: IpAddr) -> Result<OnLink, NeighborError> {
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
                    return Err(NeighborError::Local(addr));
                }
                let mut oif = None;
                for a in &route.attributes {
                    match a {
                        RouteAttribute::Oif(i) => oif = Some(*i),
                        RouteAttribute::Gateway(RouteAddress::Inet(g)) => {
                            return Err(NeighborError::NotOnLink {
                                addr,
                                gateway: IpAddr::V4(*g),
                            });
                        }
                        RouteAttribute::Gateway(RouteAddress::Inet6(g)) => {
                            return Err(NeighborError::NotOnLink {
                                addr,
                                gateway: IpAddr::V6(*g),
                            });
                        }
                        _ => {}
                    }
                }
                return oif
                    .map(|ifindex| OnLink { ifindex })
                    .ok_or(NeighborError::NoRoute(addr));
            }
            NetlinkPayload::Error(_) => return Err(NeighborError::NoRoute(addr)),
            _ => {}
        }
    }
    Err(NeighborError::NoRoute(addr))
}

/// The neighbour table's usable MAC for `addr` on `ifindex`, if any.
pub async fn lookup(
    handle: &Handle,
    ifindex: u32,
    addr: IpAddr,
) -> Result<Option<[u8; 6]>, NeighborError> {
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
pub async fn resolve(handle: &Handle, ifindex: u32, addr: IpAddr) -> Result<(), NeighborError> {
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

/// Index of the interface called `name`.
pub async fn ifindex(handle: &Handle, name: &str) -> Result<u32, NeighborError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        _ => Err(NeighborError::NoSuchInterface(name.to_string())),
    }
}

/// The Ethernet address of interface `ifindex` (the director's source MAC there).
pub async fn link_mac(handle: &Handle, ifindex: u32) -> Result<[u8; 6], NeighborError> {
    let mut links = handle.link().get().match_index(ifindex).execute();
    let link: LinkMessage = links
        .try_next()
        .await?
        .ok_or(NeighborError::NoMac(ifindex))?;
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(m) if m.len() == 6 => {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(m);
                Some(mac)
            }
            _ => None,
        })
        .ok_or(NeighborError::NoMac(ifindex))
}
