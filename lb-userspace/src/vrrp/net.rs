//! VRRP sockets: raw IP protocol 112 over IPv4 or IPv6, multicast or unicast, bound to
//! one interface and driven by tokio (`AsyncFd`).
//!
//! A [`VrrpSocket`] holds two raw sockets, as keepalived does:
//! - the **sending** socket is bound to the source address (for IPv4 the kernel builds
//!   the IP header, no `IP_HDRINCL`: binding is how the source is chosen), sends with TTL
//!   / hop limit 255 to the multicast group or to each unicast peer, with multicast loop
//!   off. It never reads: a BPF filter drops everything that would be queued to it.
//! - the **receiving** socket is bound to the multicast group (multicast mode: it sees
//!   only adverts sent to the group, which it joins on the interface) or to the source
//!   address (unicast mode: only adverts sent to us), with `IP_MULTICAST_ALL` off.
//!
//! Both are bound to the interface (`SO_BINDTODEVICE`).
//!
//! Checksums: this layer never touches the payload. The VRRPv3 checksum (with the IPv4 or
//! IPv6 pseudo-header) is computed and verified in userspace by the codec; for that reason
//! `IPV6_CHECKSUM` is **not** set on either socket (it would make the kernel overwrite the
//! field on send and silently drop bad packets on receive). Callers build one payload per
//! destination with [`VrrpSocket::send_each`], which passes the source and destination
//! the pseudo-header needs.
//!
//! Our own packets: with multicast loop off and the interface binding, a router normally
//! does not see its own adverts, but this layer does not filter by source: if one arrives
//! (another instance of ours, a looped-back copy) it is returned like any other, and the
//! caller compares [`Received::src`] with its own primary address.

use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use futures::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// IANA protocol number of VRRP.
pub const IPPROTO_VRRP: i32 = 112;
/// TTL / hop limit of every advert (RFC 3768 5.2.3, RFC 5798 5.1.1.3 / 5.1.2.3); receivers
/// discard adverts with any other value.
pub const VRRP_TTL: u8 = 255;
/// Default IPv4 multicast group, 224.0.0.18.
pub const MCAST_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// Default IPv6 multicast group, ff02::12.
pub const MCAST_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// IPTOS_PREC_INTERNETCONTROL, the TOS / traffic class keepalived gives adverts.
const TOS_INTERNETCONTROL: i32 = 0xc0;
/// Large enough for any advert: 8 + 255 * 16 bytes of VRRP, 60 of IPv4 header.
const RECV_BUF: usize = 8192;

/// Where a [`VrrpSocket`] sends from and to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpSocketConfig {
    /// The instance's interface.
    pub ifindex: u32,
    /// Source address of the adverts: `unicast_src_ip` / `mcast_src_ip`, else the
    /// interface's primary IPv4 address or IPv6 link-local address (see
    /// [`source_address`]). Its family is the socket's. An IPv6 link-local address needs
    /// no scope here: `ifindex` is used.
    pub src: IpAddr,
    /// The multicast group (224.0.0.18 / ff02::12 unless `vrrp_mcast_group4/6`), sent to
    /// and joined when `unicast_peers` is empty.
    pub group: IpAddr,
    /// Unicast peers: when not empty, adverts go to each of them instead of the group,
    /// and the group is not joined.
    pub unicast_peers: Vec<IpAddr>,
}

impl VrrpSocketConfig {
    /// Multicast to the default group of `src`'s family.
    pub fn multicast(ifindex: u32, src: IpAddr) -> Self {
        let group = match src {
            IpAddr::V4(_) => IpAddr::V4(MCAST_GROUP_V4),
            IpAddr::V6(_) => IpAddr::V6(MCAST_GROUP_V6),
        };
        Self {
            ifindex,
            src,
            group,
            unicast_peers: Vec::new(),
        }
    }

    /// Unicast to `peers`.
    pub fn unicast(ifindex: u32, src: IpAddr, peers: Vec<IpAddr>) -> Self {
        Self {
            unicast_peers: peers,
            ..Self::multicast(ifindex, src)
        }
    }

    fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }
}

/// One received advert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The IP source address (IPv6 link-local addresses without scope).
    pub src: IpAddr,
    /// The IP destination: the group or one of our addresses.
    pub dst: IpAddr,
    /// TTL (IPv4 header) or hop limit (IPv6 ancillary data; 0 if the kernel gave none).
    pub ttl: u8,
    /// The VRRP packet, IP header stripped.
    pub payload: Vec<u8>,
}

/// A pair of raw protocol-112 sockets on one interface (see the module documentation).
pub struct VrrpSocket {
    tx: AsyncFd<Socket>,
    rx: AsyncFd<Socket>,
    src: IpAddr,
    destinations: Vec<IpAddr>,
    ifindex: u32,
}

impl std::fmt::Debug for VrrpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VrrpSocket")
            .field("ifindex", &self.ifindex)
            .field("src", &self.src)
            .field("destinations", &self.destinations)
            .finish()
    }
}

impl VrrpSocket {
    /// Opens both sockets. Must run inside a tokio runtime (the sockets register with
    /// its reactor; outside one this panics) and in the network namespace of the
    /// interface. Needs CAP_NET_RAW.
    pub fn open(cfg: &VrrpSocketConfig) -> io::Result<Self> {
        let v6 = cfg.src.is_ipv6();
        let mixed = cfg.group.is_ipv6() != v6
            || (cfg.is_unicast() && cfg.unicast_peers.iter().any(|p| p.is_ipv6() != v6));
        if mixed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "VRRP source {} and destinations {:?} / {} are not of one address family",
                    cfg.src, cfg.unicast_peers, cfg.group
                ),
            ));
        }
        if !cfg.group.is_multicast() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a multicast group", cfg.group),
            ));
        }
        let ifname = if_name(cfg.ifindex)?;
        let tx = open_tx(cfg, &ifname)?;
        let rx = open_rx(cfg, &ifname)?;
        let destinations = if cfg.is_unicast() {
            cfg.unicast_peers.clone()
        } else {
            vec![cfg.group]
        };
        // SAFETY: the AsyncFds own their sockets, whose fds stay open and unchanged until
        // the AsyncFds drop.
        let (tx, rx) = unsafe {
            (
                AsyncFd::register_with_interest(tx, Interest::WRITABLE)?,
                AsyncFd::register_with_interest(rx, Interest::READABLE)?,
            )
        };
        Ok(Self {
            tx,
            rx,
            src: cfg.src,
            destinations,
            ifindex: cfg.ifindex,
        })
    }

    /// The source address of our adverts.
    pub fn source(&self) -> IpAddr {
        self.src
    }

    /// Where [`send`](Self::send) and [`send_each`](Self::send_each) send: the group, or
    /// the unicast peers.
    pub fn destinations(&self) -> &[IpAddr] {
        &self.destinations
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends `payload` (a whole VRRP packet) to `dst` (any address of the socket's family;
    /// normally one of [`destinations`](Self::destinations)).
    pub async fn send_to(&self, dst: IpAddr, payload: &[u8]) -> io::Result<()> {
        let addr = self.sockaddr(dst);
        loop {
            let mut guard = self.tx.writable().await?;
            match guard.try_io(|s| s.get_ref().send_to(payload, &addr)) {
                Ok(result) => return result.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends the same `payload` to every destination (fine for VRRPv2, whose checksum has
    /// no pseudo-header). Tries every destination; returns the first error.
    pub async fn send(&self, payload: &[u8]) -> io::Result<()> {
        self.send_each(|_, _| payload.to_vec()).await
    }

    /// Sends to every destination the payload `build(src, dst)` returns (VRRPv3: the
    /// checksum covers a pseudo-header with both addresses). Tries every destination;
    /// returns the first error.
    pub async fn send_each(
        &self,
        mut build: impl FnMut(IpAddr, IpAddr) -> Vec<u8>,
    ) -> io::Result<()> {
        let mut first_err = None;
        for &dst in &self.destinations {
            let payload = build(self.src, dst);
            if let Err(e) = self.send_to(dst, &payload).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The next advert that reached the interface (see the module documentation for
    /// which). Malformed or truncated packets are skipped.
    pub async fn recv(&self) -> io::Result<Received> {
        loop {
            let mut guard = self.rx.readable().await?;
            let result = guard.try_io(|s| {
                let fd = s.get_ref().as_raw_fd();
                if self.src.is_ipv6() {
                    recv_v6(fd)
                } else {
                    recv_v4(fd)
                }
            });
            match result {
                Ok(Ok(Some(r))) => return Ok(r),
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    fn sockaddr(&self, dst: IpAddr) -> SockAddr {
        match dst {
            IpAddr::V4(a) => SockAddr::from(SocketAddrV4::new(a, 0)),
            IpAddr::V6(a) => SockAddr::from(SocketAddrV6::new(a, 0, 0, scope_of(a, self.ifindex))),
        }
    }
}

/// The scope id an IPv6 address needs on `ifindex`: the index for link-local unicast and
/// link- or interface-local multicast, 0 otherwise.
fn scope_of(a: Ipv6Addr, ifindex: u32) -> u32 {
    let link_local_unicast = (a.segments()[0] & 0xffc0) == 0xfe80;
    let small_multicast = a.is_multicast() && matches!(a.segments()[0] & 0x000f, 1 | 2);
    if link_local_unicast || small_multicast {
        ifindex
    } else {
        0
    }
}

fn socket_addr(ip: IpAddr, ifindex: u32) -> SockAddr {
    match ip {
        IpAddr::V4(a) => SockAddr::from(SocketAddr::V4(SocketAddrV4::new(a, 0))),
        IpAddr::V6(a) => SockAddr::from(SocketAddr::V6(SocketAddrV6::new(
            a,
            0,
            0,
            scope_of(a, ifindex),
        ))),
    }
}

fn raw_socket(v6: bool, ifname: &[u8]) -> io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(
        domain,
        Type::from(libc::SOCK_RAW),
        Some(Protocol::from(IPPROTO_VRRP)),
    )?;
    s.set_nonblocking(true)?;
    setsockopt_bytes(&s, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, ifname)?;
    Ok(s)
}

fn open_tx(cfg: &VrrpSocketConfig, ifname: &[u8]) -> io::Result<Socket> {
    let v6 = cfg.src.is_ipv6();
    let s = raw_socket(v6, ifname)?;
    // Never read: drop whatever the kernel would queue (unicast adverts to `src`).
    drop_all_input(&s)?;
    if v6 {
        s.set_unicast_hops_v6(VRRP_TTL.into())?;
        s.set_multicast_hops_v6(VRRP_TTL.into())?;
        s.set_multicast_loop_v6(false)?;
        s.set_multicast_if_v6(cfg.ifindex)?;
        setsockopt_int(
            &s,
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            TOS_INTERNETCONTROL,
        )?;
        // The link-local source may still be tentative (DAD) right after the link came
        // up; the bind must not fail for that.
        setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_FREEBIND, 1)?;
    } else {
        s.set_ttl(VRRP_TTL.into())?;
        s.set_multicast_ttl_v4(VRRP_TTL.into())?;
        s.set_multicast_loop_v4(false)?;
        s.set_tos(TOS_INTERNETCONTROL as u32)?;
        // IP_MULTICAST_IF by index (struct ip_mreqn), independent of addresses.
        let mreqn = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: 0 },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: cfg.ifindex as i32,
        };
        setsockopt_struct(&s, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreqn)?;
    }
    s.bind(&socket_addr(cfg.src, cfg.ifindex)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("binding the VRRP socket to source {}: {e}", cfg.src),
        )
    })?;
    Ok(s)
}

fn open_rx(cfg: &VrrpSocketConfig, ifname: &[u8]) -> io::Result<Socket> {
    let v6 = cfg.src.is_ipv6();
    let s = raw_socket(v6, ifname)?;
    if v6 {
        // Only groups this socket joined (IPV6_MULTICAST_ALL, Linux 4.20+; older kernels
        // refuse the option, which changes nothing for a socket bound to its group).
        let _ = setsockopt_int(&s, libc::IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0);
        setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
        setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
    } else {
        setsockopt_int(&s, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, 0)?;
    }
    let bind_to = if cfg.is_unicast() {
        cfg.src
    } else {
        match cfg.group {
            IpAddr::V4(g) => {
                s.join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(cfg.ifindex))?
            }
            IpAddr::V6(g) => s.join_multicast_v6(&g, cfg.ifindex)?,
        }
        cfg.group
    };
    if v6 && cfg.is_unicast() {
        setsockopt_int(&s, libc::IPPROTO_IPV6, libc::IPV6_FREEBIND, 1)?;
    }
    s.bind(&socket_addr(bind_to, cfg.ifindex)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("binding the VRRP receive socket to {bind_to}: {e}"),
        )
    })?;
    Ok(s)
}

const IPV6_MULTICAST_ALL: i32 = 29;

/// One IPv4 packet from a raw socket: the kernel hands over the IP header too.
fn recv_v4(fd: RawFd) -> io::Result<Option<Received>> {
    let mut buf = vec![0u8; RECV_BUF];
    // SAFETY: a buffer of RECV_BUF bytes we own.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n > buf.len() {
        return Ok(None); // truncated: no advert is that large
    }
    buf.truncate(n);
    Ok(parse_ipv4(&buf))
}

/// Splits an IPv4 packet into [`Received`]; None if it is not a whole VRRP packet.
pub fn parse_ipv4(pkt: &[u8]) -> Option<Received> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || pkt.len() < ihl || i32::from(pkt[9]) != IPPROTO_VRRP {
        return None;
    }
    // Fragments never carry whole adverts.
    let frag = u16::from_be_bytes([pkt[6], pkt[7]]);
    if frag & 0x3fff != 0 {
        return None;
    }
    let end = if total >= ihl && total <= pkt.len() {
        total
    } else {
        pkt.len()
    };
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    Some(Received {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        ttl: pkt[8],
        payload: pkt[ihl..end].to_vec(),
    })
}

/// One IPv6 packet: payload only; hop limit and destination come as ancillary data.
fn recv_v6(fd: RawFd) -> io::Result<Option<Received>> {
    let mut buf = vec![0u8; RECV_BUF];
    let mut name = MaybeUninit::<libc::sockaddr_in6>::zeroed();
    // u64 elements: cmsg headers need 8-byte alignment.
    let mut control = [0u64; 32];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = name.as_mut_ptr().cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 32]>() as _;
    // SAFETY: msg describes buffers we own.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if msg.msg_flags & libc::MSG_TRUNC != 0 {
        return Ok(None);
    }
    buf.truncate(n as usize);
    // SAFETY: the kernel filled msg_name with a sockaddr_in6 (the socket is AF_INET6).
    let name = unsafe { name.assume_init() };
    let src = Ipv6Addr::from(name.sin6_addr.s6_addr);
    let mut ttl = 0u8;
    let mut dst = None;
    // SAFETY: walking the control buffer the kernel filled, with the libc macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_IPV6 {
                let data = libc::CMSG_DATA(cmsg);
                if c.cmsg_type == libc::IPV6_HOPLIMIT {
                    let v = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    ttl = v.clamp(0, 255) as u8;
                } else if c.cmsg_type == libc::IPV6_PKTINFO {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let Some(dst) = dst else {
        return Ok(None);
    };
    Ok(Some(Received {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        ttl,
        payload: buf,
    }))
}

/// The default source address of adverts on `ifindex`: for IPv4 the first primary
/// (non-secondary) address, for IPv6 the first link-local address (RFC 5798 5.1.2.2), in
/// the kernel's order, skipping `exclude` (the VIPs, which may be on the interface
/// already). `None` when the interface has none.
pub async fn source_address(
    handle: &Handle,
    ifindex: u32,
    ipv6: bool,
    exclude: &[IpAddr],
) -> Result<Option<IpAddr>, rtnetlink::Error> {
    let mut addrs = handle
        .address()
        .get()
        .set_link_index_filter(ifindex)
        .execute();
    let mut secondary_v4 = None;
    while let Some(msg) = addrs.try_next().await? {
        if msg.header.index != ifindex {
            continue;
        }
        let Some(addr) = local_address(&msg) else {
            continue;
        };
        if addr.is_ipv6() != ipv6 || exclude.contains(&addr) {
            continue;
        }
        match addr {
            IpAddr::V4(_) => {
                if is_secondary(&msg) {
                    secondary_v4.get_or_insert(addr);
                } else {
                    return Ok(Some(addr));
                }
            }
            IpAddr::V6(a) => {
                if (a.segments()[0] & 0xffc0) == 0xfe80 {
                    return Ok(Some(addr));
                }
            }
        }
    }
    Ok(secondary_v4)
}

fn local_address(msg: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for a in &msg.attributes {
        match a {
            AddressAttribute::Local(ip) => return Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    address
}

fn is_secondary(msg: &AddressMessage) -> bool {
    msg.header.flags.contains(AddressHeaderFlags::Secondary)
        || msg
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Flags(f) if f.contains(AddressFlags::Secondary)))
}

/// The name of interface `ifindex` (NUL-terminated, for SO_BINDTODEVICE).
pub(crate) fn if_name(ifindex: u32) -> io::Result<Vec<u8>> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf is IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("interface index {ifindex}: {e}"),
        ));
    }
    let mut name: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    name.push(0);
    Ok(name)
}

/// Attaches a one-instruction classic BPF filter, `ret #0`: nothing is queued.
pub(crate) fn drop_all_input(s: &Socket) -> io::Result<()> {
    let mut code = [libc::sock_filter {
        code: 0x06, // BPF_RET | BPF_K
        jt: 0,
        jf: 0,
        k: 0,
    }];
    let prog = libc::sock_fprog {
        len: 1,
        filter: code.as_mut_ptr(),
    };
    setsockopt_struct(s, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
}

pub(crate) fn setsockopt_int(s: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    setsockopt_struct(s, level, name, &value)
}

pub(crate) fn setsockopt_struct<T>(s: &Socket, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T of the size given.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn setsockopt_bytes(s: &Socket, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    // SAFETY: value is a live slice of the length given.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_packet(ttl: u8, proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x45, 0xc0, 0, 0, 0, 1, 0, 0, ttl, proto, 0, 0, 198, 18, 0, 1, 224, 0, 0, 18,
        ];
        let total = (p.len() + payload.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn parses_ipv4_header() {
        let pkt = ipv4_packet(255, 112, &[0x21, 7, 100, 1, 1, 1, 0, 0]);
        let r = parse_ipv4(&pkt).unwrap();
        assert_eq!(r.src, "198.18.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.dst, IpAddr::V4(MCAST_GROUP_V4));
        assert_eq!(r.ttl, 255);
        assert_eq!(r.payload, vec![0x21, 7, 100, 1, 1, 1, 0, 0]);
    }

    #[test]
    fn ipv4_options_and_padding() {
        // IHL 6 (one option word) and two bytes of link-layer padding after total length.
        let mut pkt = ipv4_packet(1, 112, &[]);
        pkt[0] = 0x46;
        pkt.extend_from_slice(&[0x94, 0x04, 0, 0]); // router alert
        pkt.extend_from_slice(&[9, 9, 9, 9]);
        let total = pkt.len() as u16;
        pkt[2..4].copy_from_slice(&total.to_be_bytes());
        pkt.extend_from_slice(&[0, 0]);
        let r = parse_ipv4(&pkt).unwrap();
        assert_eq!(r.ttl, 1);
        assert_eq!(r.payload, vec![9, 9, 9, 9]);
    }

    #[test]
    fn rejects_non_vrrp() {
        assert!(parse_ipv4(&ipv4_packet(255, 17, &[1, 2, 3])).is_none());
        assert!(parse_ipv4(&[0x45, 0, 0]).is_none());
        let mut frag = ipv4_packet(255, 112, &[1, 2, 3, 4]);
        frag[6] = 0x20; // more fragments
        assert!(parse_ipv4(&frag).is_none());
    }

    #[test]
    fn scopes() {
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(scope_of(ll, 7), 7);
        assert_eq!(scope_of(MCAST_GROUP_V6, 7), 7);
        assert_eq!(scope_of(global, 7), 0);
        assert_eq!(scope_of("ff05::12".parse().unwrap(), 7), 0);
    }

    #[test]
    fn config_family_checks() {
        let c = VrrpSocketConfig::multicast(3, "fe80::1".parse().unwrap());
        assert_eq!(c.group, IpAddr::V6(MCAST_GROUP_V6));
        let c = VrrpSocketConfig::unicast(
            3,
            "198.18.0.1".parse().unwrap(),
            vec!["198.18.0.2".parse().unwrap()],
        );
        assert!(c.is_unicast());
        assert_eq!(c.group, IpAddr::V4(MCAST_GROUP_V4));
    }
}
