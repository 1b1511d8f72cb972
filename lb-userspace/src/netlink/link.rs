//! Links: an interface's index, Ethernet address, state and attached XDP program, and its
//! state changes.

use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use rtnetlink::{
    Handle,
    packet_route::{
        RouteNetlinkMessage,
        link::{LinkAttribute, LinkFlags, LinkMessage, LinkXdp},
    },
};

use crate::netlink::{NetlinkError, ethernet, subscribe};

/// A link's state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    pub ifindex: u32,
    /// Administratively up and with carrier (`IFF_UP` and `IFF_RUNNING`).
    pub up: bool,
    /// The link's name, when the kernel said it (a re-created or renamed interface is
    /// recognised by it).
    pub name: Option<String>,
}

/// An interface as it is now, looked up by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    pub ifindex: u32,
    /// The id of the XDP program attached to it, in any mode.
    pub xdp_prog: Option<u32>,
}

/// Whether `e` says the interface asked about does not exist (any more).
pub fn is_no_such_link(e: &NetlinkError) -> bool {
    match e {
        NetlinkError::NoMac(_) | NetlinkError::NoSuchInterface(_) => true,
        NetlinkError::Netlink(rtnetlink::Error::NetlinkError(m)) => m.raw_code() == -libc::ENODEV,
        _ => false,
    }
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

fn xdp_prog(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Xdp(xdp) => xdp.iter().find_map(|x| match x {
            LinkXdp::ProgId(id) if *id != 0 => Some(*id),
            _ => None,
        }),
        _ => None,
    })
}

/// The interface called `name` now (index, XDP program), or None when there is none.
pub async fn link_state(handle: &Handle, name: &str) -> Result<Option<LinkState>, NetlinkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(LinkState {
            ifindex: link.header.index,
            xdp_prog: xdp_prog(&link),
        })),
        Ok(None) => Ok(None),
        Err(e) => {
            let e = NetlinkError::from(e);
            if is_no_such_link(&e) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

fn link_is_up(link: &LinkMessage) -> bool {
    link.header.flags.contains(LinkFlags::Up) && link.header.flags.contains(LinkFlags::Running)
}

/// Whether interface `ifindex` is up with carrier.
pub async fn link_up(handle: &Handle, ifindex: u32) -> Result<bool, NetlinkError> {
    let mut links = handle.link().get().match_index(ifindex).execute();
    match links.try_next().await? {
        Some(link) => Ok(link_is_up(&link)),
        None => Ok(false),
    }
}

/// Opens a connection subscribed to link changes (`RTMGRP_LINK`); a deleted link is
/// reported down.
pub fn watch_links() -> Result<BoxStream<'static, LinkEvent>, NetlinkError> {
    const RTMGRP_LINK: u32 = 1;
    Ok(subscribe(RTMGRP_LINK)?
        .filter_map(|msg| async move {
            match msg {
                RouteNetlinkMessage::NewLink(l) => Some(LinkEvent {
                    ifindex: l.header.index,
                    up: link_is_up(&l),
                    name: link_name(&l),
                }),
                RouteNetlinkMessage::DelLink(l) => Some(LinkEvent {
                    ifindex: l.header.index,
                    up: false,
                    name: None,
                }),
                _ => None,
            }
        })
        .boxed())
}

/// Index of the interface called `name`.
pub async fn ifindex(handle: &Handle, name: &str) -> Result<u32, NetlinkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(link.header.index),
        _ => Err(NetlinkError::NoSuchInterface(name.to_string())),
    }
}

/// The Ethernet address of interface `ifindex` (the director's source MAC there).
pub async fn link_mac(handle: &Handle, ifindex: u32) -> Result<[u8; 6], NetlinkError> {
    let mut links = handle.link().get().match_index(ifindex).execute();
    let link: LinkMessage = links
        .try_next()
        .await?
        .ok_or(NetlinkError::NoMac(ifindex))?;
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(m) => ethernet(m),
            _ => None,
        })
        .ok_or(NetlinkError::NoMac(ifindex))
}

/// The id of the XDP program attached to interface `ifindex`, in any mode, if there is one.
pub async fn xdp_prog_id(handle: &Handle, ifindex: u32) -> Result<Option<u32>, NetlinkError> {
    let mut links = handle.link().get().match_index(ifindex).execute();
    let Some(link) = links.try_next().await? else {
        return Ok(None);
    };
    Ok(xdp_prog(&link))
}
