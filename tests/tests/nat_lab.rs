//! NAT end to end in network namespaces: a client on the director's external veth, the
//! director running `xlb run` (XDP on its external and its internal interface), and two
//! real servers behind a bridge on the internal side whose default gateway is the
//! director. Real TCP (the lab's HTTP server on port 80) behind a VIP on port 8080,
//! IPv4 and IPv6. tcpdump on the client and on a real server shows what each sees.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use integration_tests::netns::{
    Lab, http_get, lab_real, lab_real6, realserver_script, write_config, xlb_bin, xlb_status,
    xlb_status_json,
};

const VIP: &str = "198.18.1.100";
const VIP6: &str = "2001:db8:1::100";
const CLIENT: &str = "198.18.1.1";
const CLIENT6: &str = "2001:db8:1::1";
const DIRECTOR_INT: &str = "198.18.0.1";
const DIRECTOR_INT6: &str = "2001:db8::1";
const VPORT: u16 = 8080;

/// client (eth0) -- (ext) director (eth0) -- bridge `sw` -- rs1, rs2 (default route via
/// the director). The VIPs are on the director's ext, as an operator puts them without
/// VRRP. XDP pass programs on the veth peers that receive the director's redirects.
fn nat_lab() -> Lab {
    let mut lab = Lab::new("natl");
    for short in ["sw", "client", "dir"] {
        lab.add_ns(short);
    }
    lab.bridge("sw");
    lab.plug(
        "sw",
        "dir",
        &[
            &format!("{DIRECTOR_INT}/24"),
            &format!("{DIRECTOR_INT6}/64 nodad"),
        ],
    );
    lab.pass_xdp("sw", "p-dir", &lab.pins.0.join("pass_dir"));
    let client_ns = lab.ns("client");
    lab.sh(
        "dir",
        &format!(
            "ip link add ext type veth peer name eth0 netns {client_ns} && ip link set ext up && \
             ip addr add 198.18.1.254/24 dev ext && ip addr add 2001:db8:1::fe/64 dev ext nodad && \
             ip addr add {VIP}/32 dev ext && ip addr add {VIP6}/128 dev ext nodad && \
             sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
             net.ipv4.conf.all.accept_local=1 net.ipv4.conf.eth0.accept_local=1"
        ),
    );
    lab.sh(
        "client",
        &format!(
            "ip link set eth0 up && ethtool -K eth0 tx off >/dev/null && \
             ip addr add {CLIENT}/24 dev eth0 && ip addr add {CLIENT6}/64 dev eth0 nodad"
        ),
    );
    lab.pass_xdp("client", "eth0", &lab.pins.0.join("pass_client"));
    for n in 1..=2 {
        let short = format!("rs{n}");
        lab.add_ns(&short);
        lab.plug(
            "sw",
            &short,
            &[
                &format!("{}/24", lab_real(n)),
                &format!("{}/64 nodad", lab_real6(n)),
            ],
        );
        lab.sh(
            &short,
            &format!(
                "ip route add default via {DIRECTOR_INT} && \
                 ip -6 route add default via {DIRECTOR_INT6}"
            ),
        );
        let mut server = lab.command(&short, Path::new("python3"));
        server.arg(realserver_script()).arg(&short);
        lab.spawn(&short, server);
        lab.wait_log(&short, "listening", Duration::from_secs(10));
    }
    lab
}

fn config() -> String {
    let mut c = String::new();
    for (vip, reals) in [
        (VIP, [lab_real(1), lab_real(2)]),
        (VIP6, [lab_real6(1), lab_real6(2)]),
    ] {
        c.push_str(&format!(
            r#"
[[virtual_server]]
ip = "{vip}"
port = {VPORT}
protocol = "TCP"
lb_algo = "rr"
lb_kind = "NAT"
interface = "ext"
delay_loop = 1
"#
        ));
        for r in reals {
            c.push_str(&format!(
                r#"
[[virtual_server.real_server]]
ip = "{r}"
port = 80
tcp_check = {{ connect_timeout = 2 }}
"#
            ));
        }
    }
    c
}

/// tcpdump on `short`'s eth0 with `filter`, its output in the lab log `label`.
fn tcpdump(lab: &mut Lab, short: &str, label: &str, filter: &str) {
    let mut cmd = lab.command(short, Path::new("tcpdump"));
    cmd.args(["-n", "-l", "-i", "eth0", filter]);
    lab.spawn(label, cmd);
    lab.wait_log(label, "listening on", Duration::from_secs(10));
}

fn start_xlb(lab: &mut Lab, config: &PathBuf) {
    let mut cmd = lab.command("dir", &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .arg("--pin-path")
        .arg(&lab.pins.0);
    lab.spawn("xlb", cmd);
    lab.wait_log("xlb", "xlb running", Duration::from_secs(20));
}

#[test]
fn nat_balances_rewrites_ports_and_hides_the_real_servers_ipv4_and_ipv6() {
    let mut lab = nat_lab();
    let cfg = write_config(&lab, &config());
    start_xlb(&mut lab, &cfg);
    // What the client sees that is not the VIP (nothing should be), and what rs1 sees.
    tcpdump(
        &mut lab,
        "client",
        "dump-client",
        &format!("tcp and not host {VIP} and not host {VIP6}"),
    );
    tcpdump(&mut lab, "rs1", "dump-rs1", "tcp port 80");

    for (vip, reals) in [
        (VIP, [lab_real(1), lab_real(2)]),
        (VIP6, [lab_real6(1), lab_real6(2)]),
    ] {
        let addr: SocketAddr = if vip.contains(':') {
            format!("[{vip}]:{VPORT}")
        } else {
            format!("{vip}:{VPORT}")
        }
        .parse()
        .unwrap();
        let bodies: Vec<String> = lab.within("client", || {
            (0..6)
                .map(|i| {
                    http_get(addr, "/")
                        .unwrap_or_else(|e| panic!("GET {addr} (request {i}) through NAT: {e}"))
                })
                .collect()
        });
        for (n, real) in reals.iter().enumerate() {
            let name = format!("rs{}", n + 1);
            // The server names itself and the local address the connection arrived at:
            // its own address and port 80, not the VIP's.
            let local = if real.contains(':') {
                format!("[{real}]:80")
            } else {
                format!("{real}:80")
            };
            let want = format!("{name} {local}");
            let got = bodies.iter().filter(|b| b.trim() == want).count();
            assert!(
                got >= 2,
                "rr over two servers: {want:?} answered {got} of {} requests through {addr}: {bodies:?}",
                bodies.len()
            );
        }
    }

    std::thread::sleep(Duration::from_millis(300));
    let seen_by_client = lab.log("dump-client");
    assert!(
        !seen_by_client.lines().any(|l| l.contains(" IP")),
        "the client saw TCP not from or to the VIP:\n{seen_by_client}"
    );
    let seen_by_rs1 = lab.log("dump-rs1");
    assert!(
        seen_by_rs1.contains(&format!("{CLIENT}.")) && seen_by_rs1.contains(&format!("{CLIENT6}.")),
        "rs1 must see the clients' own addresses (NAT keeps them):\n{seen_by_rs1}"
    );
    assert!(
        !seen_by_rs1.contains(VIP) && !seen_by_rs1.contains(VIP6),
        "rs1 must never see the VIP:\n{seen_by_rs1}"
    );

    // The director forgets the client's MAC (the client keeps the VIP's): the first reply
    // finds no neighbour, goes through the host stack (ip_forward, accept_local), which
    // resolves the client; the request still succeeds.
    let to_stack = |json: &serde_json::Value| json["nat_replies"]["to_stack"].as_u64();
    let before = to_stack(&xlb_status_json(&lab.pins.0));
    assert_eq!(before, Some(0), "every reply so far had a neighbour");
    lab.sh("dir", "ip neigh flush dev ext && ip -6 neigh flush dev ext");
    for addr in [format!("{VIP}:{VPORT}"), format!("[{VIP6}]:{VPORT}")] {
        let addr: SocketAddr = addr.parse().unwrap();
        let body = lab.within("client", || http_get(addr, "/"));
        let body = body.unwrap_or_else(|e| panic!("GET {addr} with the client unresolved: {e}"));
        assert!(body.starts_with("rs"), "{body:?}");
    }
    let after = to_stack(&xlb_status_json(&lab.pins.0)).unwrap_or(0);
    assert!(
        after >= 2,
        "a reply per family went through the stack: {after}"
    );

    // xlb status shows the NAT services and the replies it translated.
    let text = xlb_status(&lab.pins.0, &[]);
    assert!(
        text.contains(&format!("TCP {VIP}:{VPORT} rr nat")),
        "status:\n{text}"
    );
    assert!(text.contains("nat replies: "), "status:\n{text}");
    let json = xlb_status_json(&lab.pins.0);
    let services = json["services"]
        .as_array()
        .unwrap_or_else(|| panic!("no services in {json}"));
    assert!(
        services.iter().all(|s| s["lb_kind"] == "NAT"),
        "{services:?}"
    );
    let forwarded = json["nat_replies"]["forwarded"].as_u64().unwrap_or(0)
        + json["nat_replies"]["to_stack"].as_u64().unwrap_or(0);
    assert!(
        forwarded >= 24,
        "12 HTTP exchanges answer with more than 24 packets: {json}"
    );

    // xlb conns (as ipvsadm -Lnc): the clients' flows, on the real servers' own port.
    let out = std::process::Command::new(xlb_bin())
        .args(["conns", "--pin-path"])
        .arg(&lab.pins.0)
        .output()
        .expect("xlb conns");
    let conns = String::from_utf8_lossy(&out.stdout);
    for real in [
        format!("{}:80", lab_real(1)),
        format!("[{}]:80", lab_real6(2)),
    ] {
        assert!(
            conns
                .lines()
                .any(|l| l.contains(&real) && l.contains(&format!(":{VPORT}"))),
            "xlb conns shows no flow from a VIP:{VPORT} to {real}:\n{conns}"
        );
    }
}
