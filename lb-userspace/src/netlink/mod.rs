//! The kernel's view of the network through rtnetlink: links (index, MAC, up/down and
//! their changes, for VRRP and the director's source MACs) and where real servers are
//! (routes and neighbour entries, for DR forwarding).
//!
//! - `link`: [`ifindex`], [`link_mac`], [`link_up`], [`link_state`], [`watch_links`].
//! - `neighbor`: [`route_to`], [`lookup`], [`resolve`], [`watch`].
//! - `route`: the config's routes and rules ([`route::RouteSet`]).

mod link;
mod neighbor;
pub mod route;

use std::net::IpAddr;

use futures::{Stream, StreamExt};
use rtnetlink::{
    Handle,
    packet_core::{NetlinkMessage, NetlinkPayload},
    packet_route::RouteNetlinkMessage,
};
use thiserror::Error;

pub use link::{
    LinkEvent, LinkState, ifindex, is_no_such_link, link_mac, link_state, link_up, watch_links,
    xdp_prog_id,
};
pub use neighbor::{NeighborEvent, OnLink, lookup, resolve, route_to, watch};

#[derive(Debug, Error)]
pub enum NetlinkError {
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

/// Opens an rtnetlink connection (its driver runs as a tokio task).
pub fn connect() -> Result<Handle, NetlinkError> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    Ok(handle)
}

/// Opens a connection subscribed to the multicast `groups` (`RTMGRP_*`); yields the
/// route messages the kernel sends there.
pub(crate) fn subscribe(
    groups: u32,
) -> Result<impl Stream<Item = RouteNetlinkMessage> + Send + 'static, NetlinkError> {
    use rtnetlink::sys::{AsyncSocket, SocketAddr};
    let (mut conn, _handle, messages) = rtnetlink::new_connection()?;
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, groups))?;
    tokio::spawn(conn);
    Ok(messages.filter_map(
        |(msg, _): (NetlinkMessage<RouteNetlinkMessage>, _)| async move {
            match msg.payload {
                NetlinkPayload::InnerMessage(m) => Some(m),
                _ => None,
            }
        },
    ))
}

/// An Ethernet address from a link-layer address attribute; None when it is not one.
fn ethernet(bytes: &[u8]) -> Option<[u8; 6]> {
    bytes.try_into().ok()
}
