//! Addresses removed from this host's interfaces, as a VRRP instance learns of them: an
//! rtnetlink subscription to the IPv4 and IPv6 address groups, turned into
//! [`AddressRemoved`] events ([`watch_removed`]), and the pure rule for what an instance
//! does about one ([`on_removed`]).
//!
//! keepalived (2.2.7) answers a VIP removed from a MASTER by leaving MASTER and coming
//! straight back (its master-down timer set to the skew time): the VIPs are added and
//! announced again, after a BACKUP and a MASTER notification. xlb puts the one address back
//! and announces it without a transition: the same end state, without switching the
//! services off and on or running the notify scripts twice. As in keepalived, a VIP
//! marked `no_track` is left removed, nothing is done while the instance is not MASTER,
//! and an address someone adds by hand is never touched (keepalived ignores a VIP being
//! added; only its removal counts).

use std::net::IpAddr;

use futures::{StreamExt, stream::BoxStream};
use rtnetlink::packet_route::{
    RouteNetlinkMessage,
    address::{AddressAttribute, AddressMessage},
};

use super::{machine::State, net::if_name};
use crate::{
    config::VirtualIpAddress,
    netlink::{NetlinkError, subscribe},
};

/// An address was removed from an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRemoved {
    /// The interface's name when the removal was seen.
    pub interface: String,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// Opens a connection subscribed to address changes (`RTMGRP_IPV4_IFADDR`,
/// `RTMGRP_IPV6_IFADDR`); yields the removals. A removal from an interface that is gone
/// by the time it is read is dropped: there is nothing to put the address back on.
pub fn watch_removed() -> Result<BoxStream<'static, AddressRemoved>, NetlinkError> {
    const RTMGRP_IPV4_IFADDR: u32 = 0x10;
    const RTMGRP_IPV6_IFADDR: u32 = 0x100;
    Ok(subscribe(RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)?
        .filter_map(|msg| async move {
            let RouteNetlinkMessage::DelAddress(m) = msg else {
                return None;
            };
            let (ifindex, addr, prefix_len) = removed_address(&m)?;
            let name = if_name(ifindex).ok()?;
            let interface = String::from_utf8_lossy(name.strip_suffix(&[0]).unwrap_or(&name));
            Some(AddressRemoved {
                interface: interface.into_owned(),
                addr,
                prefix_len,
            })
        })
        .boxed())
}

/// (interface index, address, prefix length) of an RTM_DELADDR message: the local address
/// (IFA_LOCAL), which differs from IFA_ADDRESS only on point-to-point links; IPv6 messages
/// carry IFA_ADDRESS alone.
fn removed_address(m: &AddressMessage) -> Option<(u32, IpAddr, u8)> {
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    });
    Some((m.header.index, local.or(address)?, m.header.prefix_len))
}

/// What an instance does about an address removed from an interface.
#[derive(Debug, PartialEq)]
pub enum Removal<'a> {
    /// Not one of the instance's VIPs (or not where the instance puts it).
    NotOurs,
    /// One of its VIPs while it is not MASTER: it does not hold them (most often the
    /// removal was its own, on leaving MASTER).
    NotHeld,
    /// A `no_track` VIP: left removed, as keepalived does.
    NoTrack(&'a VirtualIpAddress),
    /// A VIP of a MASTER removed by someone else: put it back and announce it.
    Restore(&'a VirtualIpAddress),
}

/// The rule (see the module docs): `vips` are the instance's (`virtual_ipaddress` and
/// `virtual_ipaddress_excluded`), each on its `dev` or else on `interface`.
pub fn on_removed<'a>(
    state: State,
    interface: &str,
    vips: &'a [VirtualIpAddress],
    removed: &AddressRemoved,
) -> Removal<'a> {
    let ours = vips.iter().find(|v| {
        v.addr == removed.addr
            && v.prefix_len == removed.prefix_len
            && v.dev.as_deref().unwrap_or(interface) == removed.interface
    });
    match ours {
        None => Removal::NotOurs,
        Some(_) if state != State::Master => Removal::NotHeld,
        Some(v) if v.no_track => Removal::NoTrack(v),
        Some(v) => Removal::Restore(v),
    }
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_route::AddressFamily;

    use super::*;

    fn vips() -> Vec<VirtualIpAddress> {
        [
            "198.18.0.100/32",
            "2001:db8::100/64",
            "198.18.1.100/24 dev eth1",
            "198.18.0.101 no_track",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect()
    }

    fn removed(interface: &str, addr: &str, prefix_len: u8) -> AddressRemoved {
        AddressRemoved {
            interface: interface.into(),
            addr: addr.parse().unwrap(),
            prefix_len,
        }
    }

    #[test]
    fn a_master_restores_a_vip_removed_from_where_it_put_it() {
        let vips = vips();
        let on = |r: &AddressRemoved| on_removed(State::Master, "eth0", &vips, r);
        assert_eq!(
            on(&removed("eth0", "198.18.0.100", 32)),
            Removal::Restore(&vips[0])
        );
        assert_eq!(
            on(&removed("eth0", "2001:db8::100", 64)),
            Removal::Restore(&vips[1]),
            "IPv6 too"
        );
        assert_eq!(
            on(&removed("eth1", "198.18.1.100", 24)),
            Removal::Restore(&vips[2]),
            "on its dev"
        );
    }

    #[test]
    fn other_addresses_and_other_places_are_not_ours() {
        let vips = vips();
        let on = |r: &AddressRemoved| on_removed(State::Master, "eth0", &vips, r);
        assert_eq!(on(&removed("eth0", "198.18.0.1", 24)), Removal::NotOurs);
        assert_eq!(
            on(&removed("eth0", "198.18.0.100", 24)),
            Removal::NotOurs,
            "another prefix: not the address we added"
        );
        assert_eq!(
            on(&removed("eth2", "198.18.0.100", 32)),
            Removal::NotOurs,
            "another interface"
        );
        assert_eq!(
            on(&removed("eth0", "198.18.1.100", 24)),
            Removal::NotOurs,
            "not where its dev puts it"
        );
    }

    #[test]
    fn only_a_master_restores_and_never_a_no_track_vip() {
        let vips = vips();
        let r = removed("eth0", "198.18.0.100", 32);
        for state in [State::Backup, State::Fault, State::Initialize] {
            assert_eq!(on_removed(state, "eth0", &vips, &r), Removal::NotHeld);
        }
        assert_eq!(
            on_removed(
                State::Master,
                "eth0",
                &vips,
                &removed("eth0", "198.18.0.101", 32)
            ),
            Removal::NoTrack(&vips[3])
        );
    }

    #[test]
    fn a_deladdr_message_names_the_local_address() {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.index = 7;
        m.header.prefix_len = 32;
        let local: IpAddr = "198.18.0.100".parse().unwrap();
        let peer: IpAddr = "198.18.0.200".parse().unwrap();
        m.attributes.push(AddressAttribute::Address(peer));
        m.attributes.push(AddressAttribute::Local(local));
        assert_eq!(removed_address(&m), Some((7, local, 32)));
        // IPv6: IFA_ADDRESS only.
        let v6: IpAddr = "2001:db8::100".parse().unwrap();
        m.attributes = vec![AddressAttribute::Address(v6)];
        m.header.prefix_len = 128;
        assert_eq!(removed_address(&m), Some((7, v6, 128)));
        m.attributes.clear();
        assert_eq!(removed_address(&m), None);
    }
}
