//! Virtual IP addresses: adding and removing them (rtnetlink) and announcing them
//! (gratuitous ARP, unsolicited neighbour advertisements). When to announce is
//! `garp`'s business.
//!
//! What goes on the wire follows keepalived 2.2.7:
//! - gratuitous ARP (`vrrp_arp.c`): an ARP **request** in a broadcast Ethernet frame from
//!   the interface's MAC; sender MAC = interface MAC, sender IP = target IP = VIP, target
//!   MAC = ff:ff:ff:ff:ff:ff. 42 bytes, no padding.
//! - unsolicited NA (`vrrp_ndisc.c`): ICMPv6 type 136 to ff02::1 (33:33:00:00:00:01), hop
//!   limit 255, source = the VIP, Override set, Solicited clear, Router set when the
//!   interface forwards IPv6, target = VIP, target link-layer address option = MAC.
//!   keepalived writes the whole frame on an AF_PACKET socket; xlb uses a raw ICMPv6
//!   socket and lets the kernel build the IPv6 header and the ICMPv6 checksum (it always
//!   does for raw ICMPv6 sockets).
//! - IPv6 VIPs are added with `nodad` (usable at once, never stuck in `dadfailed` after a
//!   split brain), as keepalived does.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV6};

use futures::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressScope,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use thiserror::Error;

use super::net::{if_name, setsockopt_int};
use crate::config::VirtualIpAddress;

#[derive(Debug, Error)]
pub enum VipError {
    #[error("interface {0} (dev of a virtual_ipaddress) not found")]
    NoSuchInterface(String),
    #[error("{vip}: {source}")]
    Netlink {
        vip: String,
        #[source]
        source: rtnetlink::Error,
    },
}

const EEXIST: i32 = libc::EEXIST;
const EADDRNOTAVAIL: i32 = libc::EADDRNOTAVAIL;
const ENODEV: i32 = libc::ENODEV;
const ENOENT: i32 = libc::ENOENT;

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// Adds each VIP with its prefix length, `brd`, `scope` and `label`, on its `dev` (looked
/// up by name) or else on `default_ifindex`. An address that is already there is not an
/// error (it is left as it is). Every VIP is tried; the first failure is returned.
pub async fn add_vips(
    handle: &Handle,
    default_ifindex: u32,
    vips: &[VirtualIpAddress],
) -> Result<(), VipError> {
    let mut first_err = None;
    for vip in vips {
        let result = async {
            let index = vip_ifindex(handle, default_ifindex, vip).await?;
            let mut req = handle.address().add(index, vip.addr, vip.prefix_len);
            *req.message_mut() = address_message(index, vip, true);
            match req.execute().await {
                Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
                r => r.map_err(|source| VipError::Netlink {
                    vip: vip.to_string(),
                    source,
                }),
            }
        }
        .await;
        if let Err(e) = result {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Removes each VIP (matched by address, prefix length and interface). An address that is
/// not there, or whose `dev` no longer exists, is not an error. Every VIP is tried; the
/// first failure is returned.
pub async fn remove_vips(
    handle: &Handle,
    default_ifindex: u32,
    vips: &[VirtualIpAddress],
) -> Result<(), VipError> {
    let mut first_err = None;
    for vip in vips {
        let index = match vip_ifindex(handle, default_ifindex, vip).await {
            Ok(i) => i,
            Err(VipError::NoSuchInterface(_)) => continue,
            Err(e) => {
                first_err.get_or_insert(e);
                continue;
            }
        };
        let result = handle
            .address()
            .del(address_message(index, vip, false))
            .execute()
            .await;
        match result {
            Ok(()) => {}
            Err(e) if matches!(errno(&e), Some(EADDRNOTAVAIL | ENODEV | ENOENT)) => {}
            Err(source) => {
                first_err.get_or_insert(VipError::Netlink {
                    vip: vip.to_string(),
                    source,
                });
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Whether `vip` is on its interface now (address and prefix length).
pub async fn has_vip(
    handle: &Handle,
    default_ifindex: u32,
    vip: &VirtualIpAddress,
) -> Result<bool, VipError> {
    let index = match vip_ifindex(handle, default_ifindex, vip).await {
        Ok(i) => i,
        Err(VipError::NoSuchInterface(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut addrs = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .set_address_filter(vip.addr)
        .execute();
    loop {
        match addrs.try_next().await {
            Ok(Some(m)) => {
                if m.header.index == index && m.header.prefix_len == vip.prefix_len {
                    return Ok(true);
                }
            }
            Ok(None) => return Ok(false),
            Err(source) => {
                return Err(VipError::Netlink {
                    vip: vip.to_string(),
                    source,
                });
            }
        }
    }
}

async fn vip_ifindex(
    handle: &Handle,
    default_ifindex: u32,
    vip: &VirtualIpAddress,
) -> Result<u32, VipError> {
    match &vip.dev {
        None => Ok(default_ifindex),
        Some(name) => crate::netlink::ifindex(handle, name)
            .await
            .map_err(|_| VipError::NoSuchInterface(name.clone())),
    }
}

/// The RTM_NEWADDR / RTM_DELADDR message of `vip` on `index`, as keepalived builds it:
/// IFA_LOCAL (and IFA_ADDRESS) = the VIP, IFA_BROADCAST only when `brd` is given, IFA_LABEL,
/// the scope, and `nodad` for IPv6. Linux honours the scope for IPv4 only (an IPv6
/// address's scope follows from the address) and labels exist for IPv4 only.
pub fn address_message(index: u32, vip: &VirtualIpAddress, add: bool) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = match vip.addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    m.header.prefix_len = vip.prefix_len;
    m.header.index = index;
    m.header.scope = scope_of(vip.scope.as_deref());
    m.attributes.push(AddressAttribute::Local(vip.addr));
    m.attributes.push(AddressAttribute::Address(vip.addr));
    if add {
        if let Some(b) = vip.brd {
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &vip.label {
            if vip.addr.is_ipv4() {
                m.attributes.push(AddressAttribute::Label(l.clone()));
            }
        }
        if vip.addr.is_ipv6() {
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    m
}

/// keepalived / iproute2 scope names; none means global.
pub fn scope_of(name: Option<&str>) -> AddressScope {
    match name {
        Some("site") => AddressScope::Site,
        Some("link") => AddressScope::Link,
        Some("host") => AddressScope::Host,
        Some("nowhere") => AddressScope::Nowhere,
        _ => AddressScope::Universe,
    }
}

// ---------------------------------------------------------------------------------------
// Gratuitous ARP and unsolicited NA

const ETH_P_ARP: u16 = 0x0806;
const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// The gratuitous ARP frame keepalived sends for `ip` from `mac` (see the module docs).
pub fn gratuitous_arp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&BROADCAST_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ETH_P_IP
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // ARPOP_REQUEST
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    f[32..38].copy_from_slice(&BROADCAST_MAC);
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// Sends one gratuitous ARP for `ip` on `ifindex` (AF_PACKET; needs CAP_NET_RAW).
pub fn send_gratuitous_arp(ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> io::Result<()> {
    // Protocol 0: the socket only sends, nothing is ever queued to it.
    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let sock = unsafe { <Socket as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let frame = gratuitous_arp_frame(mac, ip);
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ARP.to_be();
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&BROADCAST_MAC);
    // SAFETY: frame and sll are live for the call; sll's size is passed.
    let n = unsafe {
        libc::sendto(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("gratuitous ARP for {ip} on ifindex {ifindex}: {e}"),
        ));
    }
    Ok(())
}

/// All-nodes multicast, where unsolicited NAs go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The ICMPv6 part of the unsolicited NA for `ip` (checksum left 0: the kernel fills it).
pub fn unsolicited_na_message(mac: [u8; 6], ip: Ipv6Addr, router: bool) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0] = 136; // neighbour advertisement
    m[1] = 0;
    // R S O flags: Override always, Solicited never (to a multicast destination).
    m[4] = 0x20 | if router { 0x80 } else { 0 };
    m[8..24].copy_from_slice(&ip.octets());
    m[24] = 2; // target link-layer address
    m[25] = 1; // 8 bytes
    m[26..32].copy_from_slice(&mac);
    m
}

/// Sends one unsolicited neighbour advertisement for `ip` on `ifindex` to ff02::1 (raw
/// ICMPv6 socket, hop limit 255, source `ip`, bound to the interface).
pub fn send_unsolicited_na(ifindex: u32, mac: [u8; 6], ip: Ipv6Addr) -> io::Result<()> {
    let ifname = if_name(ifindex)?;
    let router = forwarding_v6(&ifname);
    let s = Socket::new(
        Domain::IPV6,
        Type::from(libc::SOCK_RAW),
        Some(Protocol::ICMPV6),
    )?;
    let ctx = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("unsolicited NA for {ip} on ifindex {ifindex}: {e}"),
        )
    };
    s.set_multicast_hops_v6(255).map_err(ctx)?;
    s.set_unicast_hops_v6(255).map_err(ctx)?;
    s.set_multicast_if_v6(ifindex).map_err(ctx)?;
    s.set_multicast_loop_v6(false).map_err(ctx)?;
    // SAFETY: ifname is a live NUL-terminated buffer.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            ifname.as_ptr().cast(),
            ifname.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(ctx(io::Error::last_os_error()));
    }
    // The VIP as source, as keepalived; freebind in case it is not (yet) on the interface.
    setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_FREEBIND, 1).map_err(ctx)?;
    let scope = if (ip.segments()[0] & 0xffc0) == 0xfe80 {
        ifindex
    } else {
        0
    };
    s.bind(&SockAddr::from(SocketAddrV6::new(ip, 0, 0, scope)))
        .map_err(ctx)?;
    let msg = unsolicited_na_message(mac, ip, router);
    s.send_to(
        &msg,
        &SockAddr::from(SocketAddrV6::new(ALL_NODES, 0, 0, ifindex)),
    )
    .map_err(ctx)?;
    Ok(())
}

/// Whether IPv6 forwarding is on for the interface (the NA then carries the Router flag).
fn forwarding_v6(ifname_nul: &[u8]) -> bool {
    let name = String::from_utf8_lossy(&ifname_nul[..ifname_nul.len().saturating_sub(1)]);
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{name}/forwarding"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// Announces `vip` once: a gratuitous ARP (IPv4) or an unsolicited NA (IPv6).
pub fn announce(ifindex: u32, mac: [u8; 6], vip: IpAddr) -> io::Result<()> {
    match vip {
        IpAddr::V4(a) => send_gratuitous_arp(ifindex, mac, a),
        IpAddr::V6(a) => send_unsolicited_na(ifindex, mac, a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(s: &str) -> VirtualIpAddress {
        s.parse().unwrap()
    }

    #[test]
    fn garp_frame_is_keepalived_s() {
        let mac = [0x02, 0, 0, 0, 0, 0x0a];
        let f = gratuitous_arp_frame(mac, Ipv4Addr::new(198, 18, 0, 100));
        assert_eq!(
            f.to_vec(),
            [
                &[0xff; 6][..],
                &mac,
                &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1],
                &mac,
                &[198, 18, 0, 100],
                &[0xff; 6],
                &[198, 18, 0, 100],
            ]
            .concat()
        );
    }

    #[test]
    fn na_message() {
        let mac = [0x02, 0, 0, 0, 0, 0x0a];
        let ip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let m = unsolicited_na_message(mac, ip, false);
        assert_eq!(&m[..8], &[136, 0, 0, 0, 0x20, 0, 0, 0]);
        assert_eq!(&m[8..24], &ip.octets());
        assert_eq!(&m[24..], &[2, 1, 2, 0, 0, 0, 0, 0x0a]);
        assert_eq!(unsolicited_na_message(mac, ip, true)[4], 0xa0);
    }

    #[test]
    fn address_messages() {
        let v = vip("198.18.0.100/24 brd 198.18.0.255 scope link label eth0:vip");
        let m = address_message(7, &v, true);
        assert_eq!(m.header.index, 7);
        assert_eq!(m.header.prefix_len, 24);
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!(m.header.scope, AddressScope::Link);
        assert!(m.attributes.contains(&AddressAttribute::Local(v.addr)));
        assert!(
            m.attributes
                .contains(&AddressAttribute::Broadcast(Ipv4Addr::new(198, 18, 0, 255)))
        );
        assert!(
            m.attributes
                .contains(&AddressAttribute::Label("eth0:vip".into()))
        );
        // No broadcast unless asked for (rtnetlink's own add request would invent one).
        let m = address_message(7, &vip("198.18.0.100"), true);
        assert!(
            !m.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Broadcast(_)))
        );
        assert_eq!(m.header.prefix_len, 32);
        let m = address_message(7, &vip("2001:db8::100/64"), true);
        assert_eq!(m.header.family, AddressFamily::Inet6);
        assert!(
            m.attributes
                .contains(&AddressAttribute::Flags(AddressFlags::Nodad))
        );
        // Deletion: just the address.
        let m = address_message(7, &v, false);
        assert_eq!(m.attributes.len(), 2);
    }

    #[test]
    fn scopes() {
        assert_eq!(scope_of(None), AddressScope::Universe);
        assert_eq!(scope_of(Some("global")), AddressScope::Universe);
        assert_eq!(scope_of(Some("host")), AddressScope::Host);
        assert_eq!(scope_of(Some("site")), AddressScope::Site);
        assert_eq!(scope_of(Some("nowhere")), AddressScope::Nowhere);
    }
}
