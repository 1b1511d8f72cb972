//! NAT (`lb_kind = "NAT"`) in the XDP program, through `BPF_PROG_TEST_RUN` on crafted
//! frames: the client's packets get the real server's address and port, its replies get
//! the VIP's back, with checksums recomputed here from scratch and compared; replies
//! that match no flow, with TTL 1, without a neighbour or a route are checked too.
//!
//! The runs happen inside a namespace of their own holding a director with an external
//! (`ext`, towards the clients) and an internal (`int`, towards the real servers)
//! interface, so that the reply path's `bpf_fib_lookup` has routes and neighbours to find.

use std::net::IpAddr;

use aya::programs::{TestRun, TestRunOptions};
use integration_tests::{
    CLIENT_MAC, DIRECTOR_MAC, Plane,
    frames::{Frame, TCP_ACK, TCP_RST, TCP_SYN},
    netns::Lab,
    real_mac, service,
};
use lb_common::{CONN_RST, DropReason, NatEvent, PassReason, SchedAlgo};
use xlb::dataplane::sync::DesiredService;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

const VIP: &str = "198.18.1.100";
const VIP6: &str = "2001:db8:1::100";
const CLIENT: &str = "198.18.1.1";
const CLIENT6: &str = "2001:db8:1::1";
/// On-link on `ext`, but without a neighbour entry.
const CLIENT_UNRESOLVED: &str = "198.18.1.2";
/// No route at all.
const CLIENT_UNROUTED: &str = "198.18.7.7";
const REALS: [&str; 2] = ["198.18.0.11", "198.18.0.12"];
const REALS6: [&str; 2] = ["2001:db8::11", "2001:db8::12"];
const VPORT: u16 = 80;
const RPORT: u16 = 8080;
const EXT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 0x01];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The director's namespace: `ext` (198.18.1.254/24, 2001:db8:1::fe/64) with the
/// clients' neighbour entries, `int` (198.18.0.1/24, 2001:db8::1/64), forwarding on.
fn director_lab() -> Lab {
    let mut lab = Lab::new("natr");
    lab.add_ns("dir");
    lab.sh(
        "dir",
        &format!(
            "ip link add ext address {ext} type veth peer name int && \
             ip link set ext up && ip link set int up && \
             ip addr add 198.18.1.254/24 dev ext && ip addr add 2001:db8:1::fe/64 dev ext nodad && \
             ip addr add 198.18.0.1/24 dev int && ip addr add 2001:db8::1/64 dev int nodad && \
             sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 && \
             ip neigh replace {CLIENT} lladdr {client} dev ext nud permanent && \
             ip neigh replace {CLIENT6} lladdr {client} dev ext nud permanent",
            ext = mac(&EXT_MAC),
            client = mac(&CLIENT_MAC),
        ),
    );
    lab
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: a NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert!(i != 0, "no interface {name}");
    i
}

/// A loaded program with a NAT service on VIP:80 (or VIP6) over two real servers on port
/// 8080 behind `int`; and the two interface indexes.
struct Nat {
    p: Plane,
    svc: DesiredService,
    ext: u32,
    int: u32,
}

impl Nat {
    fn new(tag: &str, v6: bool, tcp: bool) -> Self {
        let ext = ifindex("ext");
        let int = ifindex("int");
        let mut p = Plane::new(tag);
        let mut ifaces = std::collections::BTreeMap::new();
        ifaces.insert(int, DIRECTOR_MAC);
        ifaces.insert(ext, EXT_MAC);
        p.sync.apply_ifaces(&ifaces).expect("ifaces");
        let (vip, reals) = if v6 { (VIP6, REALS6) } else { (VIP, REALS) };
        let reals: Vec<(IpAddr, u32)> = reals.iter().map(|r| (ip(r), 1)).collect();
        let mut svc = service(ip(vip), VPORT, tcp, SchedAlgo::Rr, &reals);
        svc.nat = true;
        for r in &mut svc.reals {
            r.port = RPORT;
            r.ifindex = int;
        }
        p.apply(std::slice::from_ref(&svc));
        Self { p, svc, ext, int }
    }

    /// Runs `frame` as if received on `ifindex`.
    fn run(&mut self, frame: &[u8], ifindex: u32) -> (u32, Vec<u8>) {
        let mut out = vec![0u8; frame.len() + 256];
        let ctx: [u32; 6] = [0, frame.len() as u32, 0, ifindex, 0, 0];
        let ctx_bytes: Vec<u8> = ctx.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let program = self.p.dataplane.program().expect("program");
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx_bytes),
                repeat: 1,
                ..TestRunOptions::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    fn passes(&self, r: PassReason) -> u64 {
        let m = self.p.maps();
        m.passes.get(&(r as u32), 0).unwrap().iter().sum()
    }

    fn drops(&self, r: DropReason) -> u64 {
        let m = self.p.maps();
        m.drops.get(&(r as u32), 0).unwrap().iter().sum()
    }

    fn nat(&self, e: NatEvent) -> u64 {
        let m = self.p.maps();
        m.nat_stats.get(&(e as u32), 0).unwrap().iter().sum()
    }
}

fn sum16(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The IP version, L4 protocol and offsets of an untagged frame.
fn layout(f: &[u8]) -> (bool, u8, usize) {
    if f[14] >> 4 == 4 {
        (true, f[23], 14 + 20)
    } else {
        (false, f[20], 14 + 40)
    }
}

/// The pseudo-header sum of the frame's L4 segment.
fn pseudo(f: &[u8]) -> u32 {
    let (v4, proto, l4) = layout(f);
    let len = (f.len() - l4) as u32;
    let addrs = if v4 { &f[26..34] } else { &f[22..54] };
    sum16(addrs) + u32::from(proto) + len
}

fn l4_csum_at(f: &[u8]) -> usize {
    let (_, proto, l4) = layout(f);
    l4 + if proto == 17 { 6 } else { 16 }
}

/// Fills in the frame's IPv4 header and TCP / UDP checksums, as a sender's stack does.
fn with_checksums(mut f: Vec<u8>) -> Vec<u8> {
    let (v4, proto, l4) = layout(&f);
    if v4 {
        f[24..26].copy_from_slice(&[0, 0]);
        let c = !fold(sum16(&f[14..34]));
        f[24..26].copy_from_slice(&c.to_be_bytes());
    }
    let at = l4_csum_at(&f);
    f[at..at + 2].copy_from_slice(&[0, 0]);
    let mut c = !fold(pseudo(&f) + sum16(&f[l4..]));
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

/// Checks the checksums of `f` from scratch.
fn assert_checksums(f: &[u8]) {
    let (v4, _, l4) = layout(f);
    if v4 {
        assert_eq!(fold(sum16(&f[14..34])), 0xffff, "IPv4 header checksum");
    }
    assert_eq!(
        fold(pseudo(f) + sum16(&f[l4..])),
        0xffff,
        "TCP/UDP checksum of {f:02x?}"
    );
}

/// Source and destination address and port of an untagged frame.
fn endpoints(f: &[u8]) -> (IpAddr, u16, IpAddr, u16) {
    let (v4, _, l4) = layout(f);
    let (s, d) = if v4 {
        let s: [u8; 4] = f[26..30].try_into().unwrap();
        let d: [u8; 4] = f[30..34].try_into().unwrap();
        (IpAddr::from(s), IpAddr::from(d))
    } else {
        let s: [u8; 16] = f[22..38].try_into().unwrap();
        let d: [u8; 16] = f[38..54].try_into().unwrap();
        (IpAddr::from(s), IpAddr::from(d))
    };
    let port = |i: usize| u16::from_be_bytes([f[l4 + i], f[l4 + i + 1]]);
    (s, port(0), d, port(2))
}

fn ttl(f: &[u8]) -> u8 {
    if f[14] >> 4 == 4 { f[22] } else { f[21] }
}

fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Vec<u8> {
    let mut f = Frame::tcp(ip(src), sport, ip(dst), dport);
    f.tcp_flags = flags;
    with_checksums(f.build())
}

/// A client's SYN goes to a real server's address and port 8080 (checksums valid, TTL
/// kept, MACs the real server's); the server's SYN-ACK goes back from VIP:80 (checksums
/// valid, TTL one less) to the neighbour `bpf_fib_lookup` gives; the server's RST closes
/// the flow. `v6` picks the family.
fn both_directions(tag: &str, v6: bool) {
    let lab = director_lab();
    lab.within("dir", || {
        let (vip, client) = if v6 { (VIP6, CLIENT6) } else { (VIP, CLIENT) };
        let mut n = Nat::new(tag, v6, true);
        let syn = tcp(client, 40000, vip, VPORT, TCP_SYN);
        let (action, out) = n.run(&syn, n.ext);
        assert_eq!(action, XDP_REDIRECT, "to the real server behind int");
        assert_eq!(out.len(), syn.len());
        assert_checksums(&out);
        let (src, sport, dst, dport) = endpoints(&out);
        assert_eq!(
            (src, sport),
            (ip(client), 40000),
            "the client's source is kept"
        );
        assert_eq!(dport, RPORT, "the real server's port");
        let reals = if v6 { REALS6 } else { REALS };
        let real = reals
            .iter()
            .find(|r| ip(r) == dst)
            .unwrap_or_else(|| panic!("{dst} is no real server"));
        assert_eq!(&out[..6], &real_mac(n_of(real)), "the real server's MAC");
        assert_eq!(&out[6..12], &DIRECTOR_MAC, "the director's MAC on int");
        assert_eq!(ttl(&out), ttl(&syn), "the client's packets keep their TTL");

        // The client's ACK takes the established path: same real server, same rewrite.
        let ack = tcp(client, 40000, vip, VPORT, TCP_ACK);
        let (action, out2) = n.run(&ack, n.ext);
        assert_eq!(action, XDP_REDIRECT);
        assert_checksums(&out2);
        assert_eq!(endpoints(&out2), endpoints(&out));

        let synack = tcp(real, RPORT, client, 40000, TCP_SYN | TCP_ACK);
        let (action, back) = n.run(&synack, n.int);
        assert_eq!(action, XDP_REDIRECT, "to the client behind ext");
        assert_checksums(&back);
        assert_eq!(
            endpoints(&back),
            (ip(vip), VPORT, ip(client), 40000),
            "the client sees only the VIP"
        );
        assert_eq!(ttl(&back), ttl(&synack) - 1, "forwarded: TTL decremented");
        assert_eq!(
            &back[..6],
            &CLIENT_MAC,
            "the client's MAC, from the neighbour table"
        );
        assert_eq!(&back[6..12], &EXT_MAC, "ext's own MAC");
        assert_eq!(n.nat(NatEvent::Forwarded), 1);

        // The server's RST closes the flow (IPVS's output direction).
        let rst = tcp(real, RPORT, client, 40000, TCP_RST | TCP_ACK);
        let (action, _) = n.run(&rst, n.int);
        assert_eq!(action, XDP_REDIRECT);
        let tables = n.p.maps().conn_tables(false).expect("tables");
        let live = tables.live(xlb::dataplane::conn_table::now_ticks());
        let conn = live
            .iter()
            .find(|c| c.client.port() == 40000)
            .expect("the flow's slot");
        assert_eq!(
            conn.value.state, CONN_RST,
            "the server's RST moved the state"
        );
        let _ = n.int;
    });
}

fn n_of(real: &str) -> u8 {
    integration_tests::last_octet(ip(real))
}

#[test]
fn nat_ipv4_tcp_both_directions() {
    both_directions("nat4", false);
}

#[test]
fn nat_ipv6_tcp_both_directions() {
    both_directions("nat6", true);
}

/// UDP: a checksum is rewritten correctly both ways; an IPv4 datagram without one keeps 0.
#[test]
fn nat_udp_checksums_and_ipv4_zero_checksum() {
    let lab = director_lab();
    lab.within("dir", || {
        for v6 in [false, true] {
            let (vip, client) = if v6 { (VIP6, CLIENT6) } else { (VIP, CLIENT) };
            let mut n = Nat::new(if v6 { "natu6" } else { "natu4" }, v6, false);
            let q = with_checksums(Frame::udp(ip(client), 5353, ip(vip), VPORT).build());
            let (action, out) = n.run(&q, n.ext);
            assert_eq!(action, XDP_REDIRECT);
            assert_checksums(&out);
            let (_, _, real, dport) = endpoints(&out);
            assert_eq!(dport, RPORT);
            let a = with_checksums(Frame::udp(real, RPORT, ip(client), 5353).build());
            let (action, back) = n.run(&a, n.int);
            assert_eq!(action, XDP_REDIRECT);
            assert_checksums(&back);
            assert_eq!(endpoints(&back), (ip(vip), VPORT, ip(client), 5353));
            if v6 {
                continue;
            }
            // IPv4 UDP without a checksum (0): stays without one, both ways.
            let mut q0 = Frame::udp(ip(client), 5354, ip(vip), VPORT).build();
            q0 = with_checksums(q0);
            let at = l4_csum_at(&q0);
            q0[at..at + 2].copy_from_slice(&[0, 0]);
            let (action, out) = n.run(&q0, n.ext);
            assert_eq!(action, XDP_REDIRECT);
            assert_eq!(&out[at..at + 2], &[0, 0], "no UDP checksum stays none");
            assert_eq!(fold(sum16(&out[14..34])), 0xffff, "IPv4 header checksum");
            let (_, _, real, _) = endpoints(&out);
            let mut a0 = with_checksums(Frame::udp(real, RPORT, ip(client), 5354).build());
            a0[at..at + 2].copy_from_slice(&[0, 0]);
            let (action, back) = n.run(&a0, n.int);
            assert_eq!(action, XDP_REDIRECT);
            assert_eq!(&back[at..at + 2], &[0, 0]);
            assert_eq!(endpoints(&back), (ip(vip), VPORT, ip(client), 5354));
        }
    });
}

/// Replies that are no NAT reply, or cannot be sent, go to the stack untouched or are
/// dropped, each counted.
#[test]
fn nat_replies_without_flow_ttl_neighbour_or_route() {
    let lab = director_lab();
    lab.within("dir", || {
        // One CPU: rr's cursor is per CPU.
        integration_tests::pin_to_cpu(0);
        let mut n = Nat::new("natx", false, true);
        // A real server's packet to a client it has no flow with: no NAT reply, counted.
        let stray = tcp(REALS[0], RPORT, CLIENT, 41000, TCP_SYN | TCP_ACK);
        let (action, out) = n.run(&stray, n.int);
        assert_eq!((action, &out), (XDP_PASS, &stray), "untouched");
        assert_eq!(n.passes(PassReason::NatNoFlow), 1);
        // From another port of the real server (its health-check answers, say): not its
        // service's, so no NAT matter.
        let other = tcp(REALS[0], 22, CLIENT, 41000, TCP_SYN | TCP_ACK);
        let before = n.passes(PassReason::NotVirtualService);
        let (action, out) = n.run(&other, n.int);
        assert_eq!((action, &out), (XDP_PASS, &other), "untouched");
        assert_eq!(n.passes(PassReason::NotVirtualService), before + 1);
        assert_eq!(n.passes(PassReason::NatNoFlow), 1);

        // A flow on one real server, closed by the client and opened again: rr moves it
        // to the other; the first one's reply no longer belongs to it.
        let (action, out) = n.run(&tcp(CLIENT, 42000, VIP, VPORT, TCP_SYN), n.ext);
        assert_eq!(action, XDP_REDIRECT);
        let first = endpoints(&out).2;
        n.run(&tcp(CLIENT, 42000, VIP, VPORT, TCP_ACK), n.ext);
        n.run(&tcp(CLIENT, 42000, VIP, VPORT, TCP_RST), n.ext);
        let (_, out) = n.run(&tcp(CLIENT, 42000, VIP, VPORT, TCP_SYN), n.ext);
        let second = endpoints(&out).2;
        assert_ne!(
            first, second,
            "rr gave the reopened flow the other real server"
        );
        let old = tcp(&first.to_string(), RPORT, CLIENT, 42000, TCP_ACK);
        let (action, out) = n.run(&old, n.int);
        assert_eq!((action, &out), (XDP_PASS, &old), "untouched");
        assert_eq!(n.passes(PassReason::NatNoFlow), 2);
        // The current one's passes.
        let cur = tcp(&second.to_string(), RPORT, CLIENT, 42000, TCP_ACK);
        assert_eq!(n.run(&cur, n.int).0, XDP_REDIRECT);

        // Truncated (the TCP header cut short): the parser passes it, untouched.
        let cut = &cur[..14 + 20 + 10];
        let before = n.passes(PassReason::Truncated);
        let (action, out) = n.run(cut, n.int);
        assert_eq!((action, &out[..]), (XDP_PASS, cut));
        assert_eq!(n.passes(PassReason::Truncated), before + 1);

        // The service inactive (this director BACKUP): its replies are not translated.
        let mut backup = n.svc.clone();
        backup.active = false;
        n.p.apply(&[backup]);
        let (action, out) = n.run(&cur, n.int);
        assert_eq!((action, &out), (XDP_PASS, &cur), "untouched");
        assert_eq!(n.passes(PassReason::Inactive), 1);
        let active = n.svc.clone();
        n.p.apply(&[active]);

        // TTL 1: to the stack untranslated (it answers "time exceeded").
        let mut f = Frame::tcp(second, RPORT, ip(CLIENT), 42000);
        f.tcp_flags = TCP_ACK;
        f.ttl = 1;
        let dying = with_checksums(f.build());
        let (action, out) = n.run(&dying, n.int);
        assert_eq!((action, &out), (XDP_PASS, &dying));
        assert_eq!(n.passes(PassReason::NatTtl), 1);

        // Larger than the egress MTU: the FIB refuses it (IPVS would send "fragmentation
        // needed" from the stack; here it is dropped, counted).
        let mut big = Frame::tcp(second, RPORT, ip(CLIENT), 42000);
        big.tcp_flags = TCP_ACK;
        big.payload = vec![0x55; 1000];
        let big = with_checksums(big.build());
        std::process::Command::new("ip")
            .args(["link", "set", "ext", "mtu", "576"])
            .status()
            .expect("ip link set mtu");
        let (action, _) = n.run(&big, n.int);
        assert_eq!(action, XDP_DROP, "too big for ext's MTU");
        assert_eq!(n.drops(DropReason::NatNoRoute), 1);
        std::process::Command::new("ip")
            .args(["link", "set", "ext", "mtu", "1500"])
            .status()
            .expect("ip link set mtu");
        assert_eq!(n.run(&big, n.int).0, XDP_REDIRECT, "fits again");

        // A client on-link without a neighbour entry: translated, to the stack.
        for (client, port) in [(CLIENT_UNRESOLVED, 43000), (CLIENT_UNROUTED, 44000)] {
            let (action, out) = n.run(&tcp(client, port, VIP, VPORT, TCP_SYN), n.ext);
            assert_eq!(action, XDP_REDIRECT);
            let real = endpoints(&out).2;
            let reply = tcp(&real.to_string(), RPORT, client, port, TCP_SYN | TCP_ACK);
            let (action, out) = n.run(&reply, n.int);
            if client == CLIENT_UNRESOLVED {
                assert_eq!(action, XDP_PASS, "to the stack, which resolves the client");
                assert_checksums(&out);
                assert_eq!(endpoints(&out), (ip(VIP), VPORT, ip(client), port));
                assert_eq!(ttl(&out), ttl(&reply), "the stack decrements it");
                assert_eq!(n.nat(NatEvent::ToStack), 1);
            } else {
                assert_eq!(action, XDP_DROP, "no route to {client}");
                assert_eq!(n.drops(DropReason::NatNoRoute), 2);
            }
        }
    });
}

/// Random clients, ports and payloads, TCP and UDP, both families: every rewritten frame
/// carries checksums that a from-scratch computation accepts, both ways (replies to
/// clients without a neighbour entry go to the stack translated: checked as well).
#[test]
fn nat_checksums_hold_for_random_frames() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let lab = director_lab();
    lab.within("dir", || {
        let mut rng = StdRng::seed_from_u64(0x6e61_7421);
        for (v6, tcp_proto) in [(false, true), (false, false), (true, true), (true, false)] {
            let mut n = Nat::new(
                &format!("natz{}{}", v6 as u8, tcp_proto as u8),
                v6,
                tcp_proto,
            );
            let vip = if v6 { VIP6 } else { VIP };
            for _ in 0..100 {
                let client: IpAddr = if v6 {
                    format!("2001:db8:1::{:x}", rng.random_range(1..0xffffu32))
                        .parse()
                        .unwrap()
                } else {
                    format!("198.18.1.{}", rng.random_range(1..254u32))
                        .parse()
                        .unwrap()
                };
                let cport: u16 = rng.random_range(1024..=65535);
                let len = rng.random_range(0..64usize);
                let payload: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                let mut f = if tcp_proto {
                    Frame::tcp(client, cport, ip(vip), VPORT)
                } else {
                    Frame::udp(client, cport, ip(vip), VPORT)
                };
                f.payload = payload.clone();
                f.tcp_flags = TCP_SYN;
                let q = with_checksums(f.build());
                let (action, out) = n.run(&q, n.ext);
                assert_eq!(action, XDP_REDIRECT);
                assert_checksums(&out);
                let real = endpoints(&out).2;
                let mut r = if tcp_proto {
                    Frame::tcp(real, RPORT, client, cport)
                } else {
                    Frame::udp(real, RPORT, client, cport)
                };
                r.payload = payload;
                r.tcp_flags = TCP_SYN | TCP_ACK;
                let a = with_checksums(r.build());
                let (action, back) = n.run(&a, n.int);
                assert!(
                    action == XDP_REDIRECT || action == XDP_PASS,
                    "reply to {client}: action {action}"
                );
                assert_checksums(&back);
                assert_eq!(endpoints(&back), (ip(vip), VPORT, client, cport));
            }
        }
    });
}
