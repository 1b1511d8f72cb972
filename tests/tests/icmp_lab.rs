//! End to end in network namespaces: an ICMP "fragmentation needed" / ICMPv6 "packet too
//! big" that a router on the client side sends to the VIP about a tracked connection
//! reaches the real server that owns the connection (path-MTU discovery through a DR
//! director), and no other; one about no connection does not leave the director.

use std::{
    net::{IpAddr, SocketAddr},
    sync::mpsc,
    time::{Duration, Instant},
};

use integration_tests::{
    frames::{Frame, TCP_ACK, too_big},
    netns::{
        EchoConn, LAB_VIP, LAB_VIP6, Lab, dr_lab, enter, lab_real, lab_real6, mac_of, start_xlb,
        write_config, xlb_bin,
    },
};

fn parse_mac(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (b, part) in mac.iter_mut().zip(s.split(':')) {
        *b = u8::from_str_radix(part, 16).expect("MAC");
    }
    mac
}

const ETH_P_ALL: u16 = 0x0003;

/// Whether `f` is an ICMP too-big (of either family) about a reply to `client_port`.
fn is_too_big_about(f: &[u8], client_port: u16) -> bool {
    let at = |i: usize| f.get(i).copied();
    let port_at = |i: usize| Some(u16::from_be_bytes([at(i)?, at(i + 1)?]));
    match (at(12), at(13)) {
        // IPv4 (no options), ICMP 3/4, inner IPv4 header of 20 bytes, its dport.
        (Some(0x08), Some(0x00)) => {
            at(23) == Some(1)
                && at(34) == Some(3)
                && at(35) == Some(4)
                && port_at(14 + 20 + 8 + 20 + 2) == Some(client_port)
        }
        (Some(0x86), Some(0xdd)) => {
            at(20) == Some(58)
                && at(54) == Some(2)
                && port_at(14 + 40 + 8 + 40 + 2) == Some(client_port)
        }
        _ => false,
    }
}

/// Counts the frames of [`is_too_big_about`] `client_port` that namespace `short`'s
/// eth0 receives (AF_PACKET, as tcpdump) within `window`, once `ready` has been told.
fn capture(
    lab: &Lab,
    short: &str,
    client_port: u16,
    window: Duration,
    ready: mpsc::Sender<()>,
) -> usize {
    let netns = lab.netns_file(short);
    enter(&netns).expect("setns");
    // SAFETY: plain socket calls on an fd we own and close.
    unsafe {
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW,
            i32::from(ETH_P_ALL.to_be()),
        );
        assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            size_of::<libc::timeval>() as u32,
        );
        ready.send(()).unwrap();
        let mut seen = 0;
        let mut buf = [0u8; 2048];
        let end = Instant::now() + window;
        while Instant::now() < end {
            let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
            if n > 0 && is_too_big_about(&buf[..n as usize], client_port) {
                seen += 1;
            }
        }
        libc::close(fd);
        seen
    }
}

/// Sends `frame` out of the client's eth0 (AF_PACKET), as a router on that link would.
fn send_from_client(lab: &Lab, frame: &[u8]) {
    let director = parse_mac(&mac_of(lab, "dir"));
    let client = parse_mac(&mac_of(lab, "client"));
    let mut f = frame.to_vec();
    f[..6].copy_from_slice(&director);
    f[6..12].copy_from_slice(&client);
    lab.within("client", move || {
        // SAFETY: plain socket calls on an fd we own and close.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = libc::if_nametoindex(c"eth0".as_ptr()) as i32;
            addr.sll_halen = 6;
            addr.sll_addr[..6].copy_from_slice(&director);
            let n = libc::sendto(
                fd,
                f.as_ptr().cast(),
                f.len(),
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(n, f.len() as isize, "{}", std::io::Error::last_os_error());
            libc::close(fd);
        }
    });
}

/// Sends a too-big about `client_port` (a reply of `vip`:7) and returns how many copies
/// each real server received.
fn deliver(lab: &Lab, router: IpAddr, client: IpAddr, client_port: u16, vip: IpAddr) -> [usize; 2] {
    let reply = Frame {
        tcp_flags: TCP_ACK,
        payload: vec![0x5a; 1400],
        ..Frame::tcp(vip, 7, client, client_port)
    };
    let frame = too_big(router, &reply, 1280, 576);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let window = Duration::from_secs(2);
        let rs1 = {
            let tx = tx.clone();
            s.spawn(move || capture(lab, "rs1", client_port, window, tx))
        };
        let rs2 = s.spawn(move || capture(lab, "rs2", client_port, window, tx));
        for _ in 0..2 {
            rx.recv().unwrap();
        }
        send_from_client(lab, &frame);
        [rs1.join().unwrap(), rs2.join().unwrap()]
    })
}

#[test]
fn packet_too_big_reaches_the_real_server_of_its_connection_ipv4_and_ipv6() {
    let mut lab = dr_lab("ptb", 2);
    let cfg = format!(
        r#"
[[virtual_server]]
ip = "{LAB_VIP}"
port = 7
protocol = "TCP"
lb_algo = "rr"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{a}"
port = 7

[[virtual_server.real_server]]
ip = "{b}"
port = 7

[[virtual_server]]
ip = "{LAB_VIP6}"
port = 7
protocol = "TCP"
lb_algo = "rr"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{a6}"
port = 7

[[virtual_server.real_server]]
ip = "{b6}"
port = 7
"#,
        a = lab_real(1),
        b = lab_real(2),
        a6 = lab_real6(1),
        b6 = lab_real6(2),
    );
    let path = write_config(&lab, &cfg);
    start_xlb(&mut lab, "xlb", &path);

    for (vip, router) in [(LAB_VIP, "198.18.0.254"), (LAB_VIP6, "2001:db8::fe")] {
        let vip: IpAddr = vip.parse().unwrap();
        let router: IpAddr = router.parse().unwrap();
        // One connection on each real server (the round-robin cursor is per CPU: new
        // connections until both have one).
        let conns: Vec<(EchoConn, SocketAddr, String)> = lab.within("client", || {
            let mut conns: Vec<(EchoConn, SocketAddr, String)> = Vec::new();
            for _ in 0..40 {
                let mut c = EchoConn::connect(SocketAddr::new(vip, 7)).expect("connect");
                let owner = c.ask("hello").expect("echo");
                let owner = owner.split(' ').next().unwrap().to_string();
                if conns.iter().all(|k| k.2 != owner) {
                    let local = c.local_addr().unwrap();
                    conns.push((c, local, owner));
                }
                if conns.len() == 2 {
                    break;
                }
            }
            conns
        });
        let owners: Vec<&str> = conns.iter().map(|c| c.2.as_str()).collect();
        assert!(
            owners.contains(&"rs1") && owners.contains(&"rs2"),
            "{owners:?}"
        );
        for (_, local, owner) in &conns {
            let got = deliver(&lab, router, local.ip(), local.port(), vip);
            let expected = if owner == "rs1" { [1, 0] } else { [0, 1] };
            assert_eq!(
                got, expected,
                "{vip}: the too-big about {local} (owned by {owner}) must reach {owner} only"
            );
        }
        // About a port no connection uses: the director keeps it (its host stack).
        let client = conns[0].1.ip();
        assert_eq!(
            deliver(&lab, router, client, 1, vip),
            [0, 0],
            "{vip}: untracked"
        );
    }
    let out = std::process::Command::new(xlb_bin())
        .arg("status")
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .output()
        .expect("xlb status");
    let status = String::from_utf8_lossy(&out.stdout);
    eprintln!("xlb status:\n{status}");
    assert!(
        status.contains("icmp too-big forwarded to real servers: 2 IPv4, 2 IPv6"),
        "{status}"
    );
    assert!(status.contains("icmp_no_flow=2"), "{status}");
}
