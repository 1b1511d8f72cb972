//! VRRP sockets, VIPs and VIP announcements on a real kernel: two network namespaces `a`
//! and `b` joined by one veth pair (`eth0` on both sides), 198.18.0.1-2/24 and
//! 2001:db8::1-2/64, DAD off so link-local addresses are usable at once.
//!
//! Sockets and netlink connections are opened on a thread inside their namespace (they
//! stay in it) and registered with one current-thread tokio runtime that the test thread
//! drives.
//!
//! Run: `cargo test -p integration-tests --test vrrp_net -- --test-threads=1`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

use integration_tests::netns::Lab;
use lb_common::Mac;
use tokio::runtime::Runtime;
use xlb::{
    config::VirtualIpAddress,
    netlink,
    vrrp::{
        net::{self, MCAST_GROUP_V4, MCAST_GROUP_V6, Received, VrrpSocket, VrrpSocketConfig},
        vip,
    },
};

const A4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const OLD_MAC: &str = "02:00:00:00:00:99";
const WAIT: Duration = Duration::from_secs(3);

/// A fixed VRRPv2 advert: VRID 51, priority 100, one VIP 198.18.0.100, interval 1 s.
fn v2_advert() -> Vec<u8> {
    let mut p = vec![0x21, 51, 100, 1, 0, 1, 0, 0, 198, 18, 0, 100];
    let c = checksum(&p, 0);
    p[6..8].copy_from_slice(&c.to_be_bytes());
    p
}

/// Internet checksum of `data`, starting from the partial sum `sum`.
fn checksum(data: &[u8], mut sum: u32) -> u16 {
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Namespaces `a` and `b` joined by a veth pair.
fn pair(tag: &str) -> Lab {
    let mut lab = Lab::new(tag);
    lab.add_ns("a");
    lab.add_ns("b");
    lab.sh(
        "a",
        &format!(
            "ip link add eth0 type veth peer name eth0 netns {}",
            lab.ns("b")
        ),
    );
    for (ns, mac, n) in [("a", MAC_A, 1), ("b", MAC_B, 2)] {
        lab.sh(
            ns,
            &format!(
                "sysctl -qw net.ipv6.conf.eth0.accept_dad=0 && \
                 ip link set eth0 address {} && \
                 ip addr add 198.18.0.{n}/24 dev eth0 && \
                 ip addr add 2001:db8::{n}/64 dev eth0 nodad && \
                 ip link set eth0 up",
                Mac(&mac)
            ),
        );
    }
    // Both ends up, link-local addresses present and not tentative.
    let deadline = Instant::now() + Duration::from_secs(10);
    for ns in ["a", "b"] {
        loop {
            let out = lab.sh(ns, "ip -6 -o addr show dev eth0 scope link");
            if out.contains("fe80::") && !out.contains("tentative") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no usable link-local address in {ns}: {out}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    lab
}

/// A netlink handle living in namespace `$ns`, driven by the runtime `$rt`.
macro_rules! netlink {
    ($lab:expr, $ns:expr, $rt:expr) => {{
        let rt = $rt.handle().clone();
        $lab.within($ns, move || {
            let _guard = rt.enter();
            netlink::connect().expect("netlink connection")
        })
    }};
}

/// `eth0`'s index in namespace `ns`.
fn eth0(lab: &Lab, ns: &str) -> u32 {
    lab.sh(ns, "cat /sys/class/net/eth0/ifindex")
        .trim()
        .parse()
        .expect("ifindex")
}

/// Opens a VrrpSocket inside namespace `ns`, registered with `rt`.
fn open(lab: &Lab, ns: &str, rt: &Runtime, cfg: VrrpSocketConfig) -> VrrpSocket {
    let h = rt.handle().clone();
    lab.within(ns, move || {
        let _guard = h.enter();
        VrrpSocket::open(&cfg).unwrap_or_else(|e| panic!("opening {cfg:?}: {e}"))
    })
}

/// The default advert source of `eth0` in `ns` (primary IPv4 / link-local IPv6).
fn source(lab: &Lab, ns: &str, rt: &Runtime, v6: bool) -> IpAddr {
    let handle = netlink!(lab, ns, rt);
    let ifindex = eth0(lab, ns);
    rt.block_on(net::source_address(&handle, ifindex, v6, &[]))
        .expect("address dump")
        .expect("a source address")
}

fn recv(rt: &Runtime, sock: &VrrpSocket) -> Received {
    rt.block_on(async { tokio::time::timeout(WAIT, sock.recv()).await })
        .expect("no advert within 3 s")
        .expect("recv")
}

fn nothing_arrives(rt: &Runtime, sock: &VrrpSocket) {
    let got =
        rt.block_on(async { tokio::time::timeout(Duration::from_millis(300), sock.recv()).await });
    assert!(got.is_err(), "unexpected packet: {got:?}");
}

#[test]
fn ipv4_multicast_advert_arrives_with_ttl_255() {
    let lab = pair("vrrpnet-m4-");
    let rt = runtime();
    let src_a = source(&lab, "a", &rt, false);
    assert_eq!(src_a, IpAddr::V4(A4), "primary address of a");
    let tx = open(
        &lab,
        "a",
        &rt,
        VrrpSocketConfig::multicast(eth0(&lab, "a"), src_a),
    );
    let rx = open(
        &lab,
        "b",
        &rt,
        VrrpSocketConfig::multicast(eth0(&lab, "b"), IpAddr::V4(B4)),
    );
    assert_eq!(tx.destinations(), &[IpAddr::V4(MCAST_GROUP_V4)]);
    rt.block_on(tx.send(&v2_advert())).expect("send");
    let r = recv(&rt, &rx);
    assert_eq!(r.src, IpAddr::V4(A4));
    assert_eq!(r.dst, IpAddr::V4(MCAST_GROUP_V4));
    assert_eq!(r.ttl, 255);
    assert_eq!(r.payload, v2_advert());
    // Multicast loop is off: the sender does not hear itself.
    nothing_arrives(&rt, &tx);
    // And the other way round.
    rt.block_on(rx.send(&[0x21, 52, 90, 0, 0, 1, 0, 0]))
        .expect("send back");
    let r = recv(&rt, &tx);
    assert_eq!((r.src, r.ttl), (IpAddr::V4(B4), 255));
    assert_eq!(r.payload[1], 52);
}

#[test]
fn ipv4_unicast_advert_arrives_with_ttl_255() {
    let lab = pair("vrrpnet-u4-");
    let rt = runtime();
    let tx = open(
        &lab,
        "a",
        &rt,
        VrrpSocketConfig::unicast(eth0(&lab, "a"), IpAddr::V4(A4), vec![IpAddr::V4(B4)]),
    );
    let rx = open(
        &lab,
        "b",
        &rt,
        VrrpSocketConfig::unicast(eth0(&lab, "b"), IpAddr::V4(B4), vec![IpAddr::V4(A4)]),
    );
    // send_each hands the pseudo-header addresses to the payload builder.
    let mut seen = Vec::new();
    rt.block_on(tx.send_each(|s, d| {
        seen.push((s, d));
        v2_advert()
    }))
    .expect("send");
    assert_eq!(seen, vec![(IpAddr::V4(A4), IpAddr::V4(B4))]);
    let r = recv(&rt, &rx);
    assert_eq!(r.src, IpAddr::V4(A4));
    assert_eq!(r.dst, IpAddr::V4(B4));
    assert_eq!(r.ttl, 255);
    assert_eq!(r.payload, v2_advert());
    rt.block_on(rx.send(&v2_advert())).expect("send back");
    let r = recv(&rt, &tx);
    assert_eq!((r.src, r.dst, r.ttl), (IpAddr::V4(B4), IpAddr::V4(A4), 255));
}

#[test]
fn ipv6_multicast_advert_from_link_local_arrives_with_hop_limit_255() {
    let lab = pair("vrrpnet-m6-");
    let rt = runtime();
    let ll_a = source(&lab, "a", &rt, true);
    let ll_b = source(&lab, "b", &rt, true);
    let IpAddr::V6(a6) = ll_a else { panic!() };
    assert_eq!(a6.segments()[0], 0xfe80, "link-local source, got {ll_a}");
    let tx = open(
        &lab,
        "a",
        &rt,
        VrrpSocketConfig::multicast(eth0(&lab, "a"), ll_a),
    );
    let rx = open(
        &lab,
        "b",
        &rt,
        VrrpSocketConfig::multicast(eth0(&lab, "b"), ll_b),
    );
    // A v3 advert (the checksum is the codec's business, any bytes do here).
    let advert = [0x31, 51, 100, 1, 0, 100, 0, 0];
    rt.block_on(tx.send(&advert)).expect("send");
    let r = recv(&rt, &rx);
    assert_eq!(r.src, ll_a);
    assert_eq!(r.dst, IpAddr::V6(MCAST_GROUP_V6));
    assert_eq!(r.ttl, 255);
    assert_eq!(r.payload, advert);
    nothing_arrives(&rt, &tx);
}

#[test]
fn ipv6_unicast_advert_between_link_locals() {
    let lab = pair("vrrpnet-u6-");
    let rt = runtime();
    let ll_a = source(&lab, "a", &rt, true);
    let ll_b = source(&lab, "b", &rt, true);
    let tx = open(
        &lab,
        "a",
        &rt,
        VrrpSocketConfig::unicast(eth0(&lab, "a"), ll_a, vec![ll_b]),
    );
    let rx = open(
        &lab,
        "b",
        &rt,
        VrrpSocketConfig::unicast(eth0(&lab, "b"), ll_b, vec![ll_a]),
    );
    let advert = [0x31, 51, 100, 1, 0, 100, 0, 0];
    rt.block_on(tx.send(&advert)).expect("send");
    let r = recv(&rt, &rx);
    assert_eq!((r.src, r.dst, r.ttl), (ll_a, ll_b, 255));
    assert_eq!(r.payload, advert);
}

fn vips(list: &[&str]) -> Vec<VirtualIpAddress> {
    list.iter().map(|s| s.parse().expect("VIP")).collect()
}

/// The `ip -o addr` line of `addr` in namespace `ns`, if any.
fn addr_line(lab: &Lab, ns: &str, addr: &str) -> Option<String> {
    lab.sh(ns, "ip -o addr show")
        .lines()
        .find(|l| {
            l.split_whitespace()
                .any(|w| w.split('/').next() == Some(addr))
        })
        .map(str::to_owned)
}

#[test]
fn vips_are_added_with_label_scope_brd_and_dev_and_removed_idempotently() {
    let lab = pair("vrrpnet-vip-");
    lab.sh(
        "a",
        "ip link add eth1 type veth peer name eth1p && ip link set eth1 up && \
         ip link set eth1p up",
    );
    let rt = runtime();
    let handle = netlink!(lab, "a", rt);
    let ifindex = eth0(&lab, "a");
    let list = vips(&[
        "198.18.0.100/32 label eth0:vip",
        "198.18.5.1/24 brd 198.18.5.255 dev eth1 scope site label eth1:x",
        "2001:db8::100/64",
        "2001:db8:5::1/64 dev eth1",
    ]);
    rt.block_on(vip::add_vips(&handle, ifindex, &list))
        .expect("add");
    // Adding again is not an error.
    rt.block_on(vip::add_vips(&handle, ifindex, &list))
        .expect("add again");
    let l = addr_line(&lab, "a", "198.18.0.100").expect("198.18.0.100 added");
    assert!(l.contains(" eth0 ") && l.contains("198.18.0.100/32"), "{l}");
    assert!(l.contains("scope global eth0:vip"), "{l}");
    assert!(!l.contains("brd"), "no broadcast unless asked: {l}");
    let l = addr_line(&lab, "a", "198.18.5.1").expect("198.18.5.1 added");
    assert!(l.contains(" eth1 "), "{l}");
    assert!(
        l.contains("198.18.5.1/24 brd 198.18.5.255 scope site eth1:x"),
        "{l}"
    );
    let l = addr_line(&lab, "a", "2001:db8::100").expect("2001:db8::100 added");
    assert!(
        l.contains(" eth0 ") && l.contains("/64 scope global"),
        "{l}"
    );
    assert!(l.contains("nodad") && !l.contains("tentative"), "{l}");
    let l = addr_line(&lab, "a", "2001:db8:5::1").expect("2001:db8:5::1 added");
    assert!(l.contains(" eth1 ") && l.contains("nodad"), "{l}");
    for v in &list {
        assert!(
            rt.block_on(vip::has_vip(&handle, ifindex, v)).unwrap(),
            "{v}"
        );
    }

    rt.block_on(vip::remove_vips(&handle, ifindex, &list))
        .expect("remove");
    for a in [
        "198.18.0.100",
        "198.18.5.1",
        "2001:db8::100",
        "2001:db8:5::1",
    ] {
        assert_eq!(addr_line(&lab, "a", a), None, "{a} still there");
    }
    for v in &list {
        assert!(
            !rt.block_on(vip::has_vip(&handle, ifindex, v)).unwrap(),
            "{v}"
        );
    }
    // Removing what is not there is not an error either; the interface's own
    // addresses are untouched.
    rt.block_on(vip::remove_vips(&handle, ifindex, &list))
        .expect("remove again");
    assert!(addr_line(&lab, "a", "198.18.0.1").is_some());
    // An unknown dev is an error on add, nothing on remove.
    let bad = vips(&["198.18.6.1 dev nosuch0"]);
    let err = rt
        .block_on(vip::add_vips(&handle, ifindex, &bad))
        .expect_err("unknown dev");
    assert!(err.to_string().contains("nosuch0"), "{err}");
    rt.block_on(vip::remove_vips(&handle, ifindex, &bad))
        .expect("remove with unknown dev");
}

/// An AF_PACKET socket on `eth0` of a namespace, receiving frames of one EtherType.
struct Capture(OwnedFd);

impl Capture {
    fn open(lab: &Lab, ns: &str, ethertype: u16) -> Self {
        let ifindex = eth0(lab, ns);
        lab.within(ns, move || {
            // SAFETY: plain socket(2); the fd goes into an OwnedFd at once.
            let fd = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    i32::from(ethertype.to_be()),
                )
            };
            assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
            // SAFETY: a fresh fd we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: zeroed sockaddr_ll filled below.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = ethertype.to_be();
            sll.sll_ifindex = ifindex as i32;
            // SAFETY: binding our fd to a live sockaddr_ll.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 200_000,
            };
            // SAFETY: SO_RCVTIMEO with a live timeval.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as u32,
                )
            };
            Capture(fd)
        })
    }

    /// The first frame for which `want` holds, within 3 s.
    fn wait_for(&self, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        let mut buf = vec![0u8; 2048];
        while Instant::now() < deadline {
            // SAFETY: reading into a buffer we own.
            let n =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 && want(&buf[..n as usize]) {
                return buf[..n as usize].to_vec();
            }
        }
        panic!("no matching frame within {WAIT:?}");
    }
}

/// Waits until `ip neigh show ADDR dev eth0` in `ns` names `mac`.
fn wait_neigh(lab: &Lab, ns: &str, family: &str, addr: &str, mac: [u8; 6]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = lab.sh(ns, &format!("ip {family} neigh show {addr} dev eth0"));
        if out.contains(&Mac(&mac).to_string()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "neighbour {addr} in {ns} not updated to {}: {out}",
            Mac(&mac)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn gratuitous_arp_is_a_broadcast_request_for_the_vip_and_updates_the_peer() {
    let lab = pair("vrrpnet-garp-");
    let vip4 = Ipv4Addr::new(198, 18, 0, 100);
    // The peer has a stale entry for the VIP pointing at the previous master.
    lab.sh(
        "b",
        &format!("ip neigh replace {vip4} lladdr {OLD_MAC} dev eth0 nud stale"),
    );
    let capture = Capture::open(&lab, "b", 0x0806);
    let ifindex = eth0(&lab, "a");
    lab.within("a", move || vip::send_gratuitous_arp(ifindex, MAC_A, vip4))
        .expect("send GARP");
    let f = capture.wait_for(|f| f.len() >= 42 && f[28..32] == vip4.octets());
    assert_eq!(f.len(), 42, "keepalived sends an unpadded 42-byte frame");
    assert_eq!(&f[0..6], &[0xff; 6], "Ethernet broadcast");
    assert_eq!(&f[6..12], &MAC_A, "Ethernet source = interface MAC");
    assert_eq!(&f[12..14], &[0x08, 0x06]);
    assert_eq!(
        &f[14..22],
        &[0, 1, 0x08, 0, 6, 4, 0, 1],
        "Ethernet/IPv4 request"
    );
    assert_eq!(&f[22..28], &MAC_A, "sender MAC");
    assert_eq!(&f[28..32], &vip4.octets(), "sender IP = VIP");
    assert_eq!(&f[32..38], &[0xff; 6], "target MAC (keepalived: broadcast)");
    assert_eq!(&f[38..42], &vip4.octets(), "target IP = VIP");
    wait_neigh(&lab, "b", "-4", &vip4.to_string(), MAC_A);
}

#[test]
fn unsolicited_na_overrides_the_peer_s_neighbour_entry() {
    let lab = pair("vrrpnet-na-");
    let vip6: Ipv6Addr = "2001:db8::100".parse().unwrap();
    let rt = runtime();
    let handle = netlink!(lab, "a", rt);
    let ifindex = eth0(&lab, "a");
    rt.block_on(vip::add_vips(
        &handle,
        ifindex,
        &vips(&["2001:db8::100/64"]),
    ))
    .expect("add VIP");
    lab.sh(
        "b",
        &format!("ip -6 neigh replace {vip6} lladdr {OLD_MAC} dev eth0 nud stale"),
    );
    let capture = Capture::open(&lab, "b", 0x86dd);
    lab.within("a", move || vip::send_unsolicited_na(ifindex, MAC_A, vip6))
        .expect("send NA");
    // Ethernet 14 + IPv6 40 + NA 24 + option 8.
    let f = capture.wait_for(|f| f.len() >= 86 && f[20] == 58 && f[54] == 136);
    assert_eq!(f.len(), 86);
    assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1], "to all-nodes");
    assert_eq!(&f[6..12], &MAC_A);
    let ip6 = &f[14..54];
    assert_eq!(ip6[0] >> 4, 6);
    assert_eq!(u16::from_be_bytes([ip6[4], ip6[5]]), 32, "payload length");
    assert_eq!(ip6[7], 255, "hop limit");
    assert_eq!(&ip6[8..24], &vip6.octets(), "source = VIP");
    assert_eq!(&ip6[24..40], &vip::ALL_NODES.octets());
    let na = &f[54..86];
    assert_eq!((na[0], na[1]), (136, 0));
    assert_eq!(
        na[4], 0x20,
        "Override only (no forwarding: no Router; no Solicited)"
    );
    assert_eq!(&na[8..24], &vip6.octets(), "target = VIP");
    assert_eq!(&na[24..26], &[2, 1], "target link-layer address option");
    assert_eq!(&na[26..32], &MAC_A);
    // The kernel's checksum is right: summing with the pseudo-header gives 0.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&ip6[8..40]);
    pseudo.extend_from_slice(&32u32.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(na);
    assert_eq!(checksum(&pseudo, 0), 0, "ICMPv6 checksum");
    wait_neigh(&lab, "b", "-6", &vip6.to_string(), MAC_A);
}
