//! The scale-out lab: active-active directors behind an ECMP router, each announcing the
//! VIP by BGP through BIRD 2 (`announce = "bgp"`), shared by `tests/scale_out.rs`, the
//! demo (`--scale-out`) and the benchmark (`scaleout`).
//!
//! ```text
//!  client ── router ──(swup: 198.18.2.0/24, BGP + BFD)── dir1 dir2 dir3 (XDP on eth0)
//!   .1.1      │ .2.254 / .3.254                            │    │    │  (eth1)
//!             └──────(swdn: 198.18.3.0/24)─────────────────┴────┴────┴── rs1 rs2 rs3
//! ```
//! The router runs BIRD with `merge paths` (one ECMP route over the directors) and the
//! kernel's L4 multipath hash (`fib_multipath_hash_policy=1`); it is also the real
//! servers' gateway, so their replies go straight to the client (DR). Each director runs
//! `xlb run` (pins, socket and status under its own pin directory) and BIRD with the
//! bird.conf `xlb bird-config` prints, socket `<tmp>/dirN-bird.sock`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use super::{Lab, realserver_script, run_ok, xlb_bin};

pub const SO_VIP: &str = "198.18.0.100";
pub const SO_VIP6: &str = "2001:db8::100";
pub const SO_CLIENT: &str = "198.18.1.1";
pub const SO_ROUTER_UP: &str = "198.18.2.254";
pub const ROUTER_AS: u32 = 65000;
pub const DIRECTOR_AS: u32 = 65001;

/// Director `n`'s address towards the router.
pub fn so_director(n: usize) -> String {
    format!("198.18.2.{n}")
}

/// Real server `n`'s address (and `so_real6`).
pub fn so_real(n: usize) -> String {
    format!("198.18.3.{}", 10 + n)
}
pub fn so_real6(n: usize) -> String {
    format!("2001:db8:3::{:x}", 0x10 + n)
}

/// Connects `a_if` in namespace `a` to `b_if` in `b` (a veth pair), both up, transmit
/// checksum offload off (see TOOLCHAIN.md).
fn veth(lab: &Lab, a: &str, a_if: &str, b: &str, b_if: &str) {
    lab.sh(
        a,
        &format!(
            "ip link add {a_if} type veth peer name {b_if} netns {} && ip link set {a_if} up \
             && ethtool -K {a_if} tx off >/dev/null",
            lab.ns(b)
        ),
    );
    lab.sh(
        b,
        &format!("ip link set {b_if} up && ethtool -K {b_if} tx off >/dev/null"),
    );
}

/// Plugs `host`'s `ifname` into the bridge of `switch` (port `p<ifname>-<host>`).
fn plug_into(lab: &Lab, switch: &str, host: &str, ifname: &str, addrs: &[String]) {
    let port = format!("p{}-{host}", &ifname[ifname.len() - 1..]);
    veth(lab, switch, &port, host, ifname);
    lab.sh(switch, &format!("ip link set {port} master br0"));
    for a in addrs {
        lab.sh(host, &format!("ip addr add {a} dev {ifname}"));
    }
}

/// The lab, with `directors` director namespaces (`dir1`..) and `reals` real servers
/// running the lab program; nothing started on the directors yet.
pub fn scale_out_lab(mut lab: Lab, directors: usize, reals: usize) -> Lab {
    for short in ["swup", "swdn", "client", "router"] {
        lab.add_ns(short);
    }
    lab.bridge("swup");
    lab.bridge("swdn");
    veth(&lab, "client", "eth0", "router", "eth2");
    lab.sh(
        "client",
        &format!("ip addr add {SO_CLIENT}/24 dev eth0 && ip route add default via 198.18.1.254"),
    );
    lab.sh("router", "ip addr add 198.18.1.254/24 dev eth2");
    plug_into(
        &lab,
        "swup",
        "router",
        "eth0",
        &[format!("{SO_ROUTER_UP}/24")],
    );
    plug_into(
        &lab,
        "swdn",
        "router",
        "eth1",
        &["198.18.3.254/24".into(), "2001:db8:3::fe/64 nodad".into()],
    );
    lab.sh(
        "router",
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
         net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0",
    );
    for n in 1..=directors {
        add_director(&mut lab, n);
    }
    let xlb = xlb_bin();
    for n in 1..=reals {
        let short = format!("rs{n}");
        lab.add_ns(&short);
        plug_into(
            &lab,
            "swdn",
            &short,
            "eth0",
            &[
                format!("{}/24", so_real(n)),
                format!("{}/64 nodad", so_real6(n)),
            ],
        );
        lab.sh(&short, "ip route add default via 198.18.3.254");
        let state = lab.tmp.join(format!("{short}-realserver.json"));
        run_ok(
            lab.command(&short, &xlb)
                .args([
                    "realserver",
                    "setup",
                    "--vip",
                    SO_VIP,
                    "--vip",
                    SO_VIP6,
                    "--state-file",
                ])
                .arg(&state),
        );
        let mut server = lab.command(&short, Path::new("python3"));
        server.arg(realserver_script()).arg(&short);
        lab.spawn(&short, server);
        lab.wait_log(&short, "listening", Duration::from_secs(10));
    }
    lab
}

/// Director `n`'s namespace and links: eth0 towards the router, eth1 on the real
/// servers' bridge, whose switch port runs the XDP pass program (XDP redirects into it).
fn add_director(lab: &mut Lab, n: usize) {
    let short = format!("dir{n}");
    lab.add_ns(&short);
    plug_into(
        lab,
        "swup",
        &short,
        "eth0",
        &[format!("{}/24", so_director(n))],
    );
    plug_into(
        lab,
        "swdn",
        &short,
        "eth1",
        &[
            format!("198.18.3.{n}/24"),
            format!("2001:db8:3::{n}/64 nodad"),
        ],
    );
    let pin = lab.pins.0.join(format!("pass_{short}"));
    let _ = std::fs::remove_file(&pin);
    lab.pass_xdp("swdn", &format!("p1-{short}"), &pin);
}

/// The router's bird.conf: one eBGP session with BFD per director, routes merged into one
/// ECMP route in the kernel; short timers so a restarted director peers again at once.
fn router_bird_conf(directors: usize) -> String {
    let mut c = format!(
        "log stderr all;\nrouter id {SO_ROUTER_UP};\nprotocol device {{ scan time 10; }}\n\
         protocol bfd {{ interface \"*\" {{ min rx interval 100 ms; min tx interval 100 ms; \
         multiplier 3; }}; }}\n\
         protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths on; }}\n"
    );
    for n in 1..=directors {
        c.push_str(&format!(
            "protocol bgp dir{n} {{ local as {ROUTER_AS}; neighbor {} as {DIRECTOR_AS}; \
             bfd on; connect delay time 1; connect retry time 2; error wait time 1, 2; \
             ipv4 {{ import all; export none; }}; }}\n",
            so_director(n)
        ));
    }
    c
}

fn bird_command(lab: &Lab, ns: &str, conf: &Path, sock: &Path) -> Command {
    let mut c = lab.command(ns, Path::new("bird"));
    c.arg("-f").arg("-c").arg(conf).arg("-s").arg(sock);
    c
}

/// Starts BIRD on the router (label `router-bird`).
pub fn start_router(lab: &mut Lab, directors: usize) {
    let conf = lab.tmp.join("router-bird.conf");
    std::fs::write(&conf, router_bird_conf(directors)).expect("router bird.conf");
    let sock = lab.tmp.join("router-bird.sock");
    let cmd = bird_command(lab, "router", &conf, &sock);
    lab.spawn("router-bird", cmd);
}

/// The pin path of director `n`'s xlb.
pub fn director_pins(lab: &Lab, n: usize) -> PathBuf {
    lab.pins.0.join(format!("dir{n}"))
}

/// Director `n`'s xlb config: `SO_VIP:7` (and `SO_VIP6:7`) over `reals` real servers,
/// `mh` with the client port hashed, announced by BGP; `extra` is appended.
pub fn director_config(lab: &Lab, n: usize, reals: usize, extra: &str) -> PathBuf {
    let mut c = String::new();
    for (vip, real) in [
        (SO_VIP, so_real as fn(usize) -> String),
        (SO_VIP6, so_real6),
    ] {
        c.push_str(&format!(
            "[[virtual_server]]\nip = \"{vip}\"\nport = 7\nprotocol = \"TCP\"\nlb_algo = \"mh\"\n\
             mh_port = true\ninterface = \"eth0\"\nannounce = \"bgp\"\n"
        ));
        for r in 1..=reals {
            c.push_str(&format!(
                "[[virtual_server.real_server]]\nip = \"{}\"\nport = 7\n",
                real(r)
            ));
        }
    }
    c.push_str(extra);
    c.push_str(&format!(
        "\n[announce]\ntable = 201\nbird_include = \"{}\"\n",
        lab.tmp.join(format!("dir{n}-xlb-bird.conf")).display()
    ));
    let path = lab.tmp.join(format!("dir{n}.toml"));
    std::fs::write(&path, c).expect("director config");
    path
}

/// Starts xlb on director `n` (label `xlbN`) with `config`; waits until it runs.
pub fn start_director_xlb(lab: &mut Lab, n: usize, config: &Path) {
    let pins = director_pins(lab, n);
    let mut cmd = lab.command(&format!("dir{n}"), &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .arg("--pin-path")
        .arg(&pins);
    let label = format!("xlb{n}");
    lab.spawn(&label, cmd);
    lab.wait_log(&label, "xlb running", Duration::from_secs(20));
}

/// Starts BIRD on director `n` (label `birdN`) with the bird.conf `xlb bird-config`
/// prints for it.
pub fn start_director_bird(lab: &mut Lab, n: usize) {
    let out = run_ok(Command::new(xlb_bin()).args([
        "bird-config",
        "--table",
        "201",
        "--local-as",
        &DIRECTOR_AS.to_string(),
        "--peer-as",
        &ROUTER_AS.to_string(),
        "--neighbor",
        SO_ROUTER_UP,
        "--router-id",
        &so_director(n),
    ]));
    let conf = lab.tmp.join(format!("dir{n}-bird.conf"));
    std::fs::write(&conf, format!("log stderr all;\n{out}")).expect("bird.conf");
    let sock = bird_socket(lab, n);
    let cmd = bird_command(lab, &format!("dir{n}"), &conf, &sock);
    lab.spawn(&format!("bird{n}"), cmd);
}

pub fn bird_socket(lab: &Lab, n: usize) -> PathBuf {
    lab.tmp.join(format!("dir{n}-bird.sock"))
}

/// `birdc -s SOCK ARGS` of director `n`.
pub fn birdc(lab: &Lab, n: usize, args: &str) -> String {
    let out = Command::new("birdc")
        .arg("-s")
        .arg(bird_socket(lab, n))
        .args(args.split(' '))
        .output()
        .expect("birdc");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The directors the router's route to the VIP goes through now (their addresses).
pub fn router_next_hops(lab: &Lab) -> Vec<String> {
    let out = lab.sh("router", &format!("ip -4 route show {SO_VIP}"));
    let mut hops: Vec<String> = out
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect();
    hops.sort();
    hops
}

/// How many of the router's BFD sessions are Up (`birdc show bfd sessions`).
pub fn router_bfd_up(lab: &Lab) -> usize {
    let out = Command::new("birdc")
        .arg("-s")
        .arg(lab.tmp.join("router-bird.sock"))
        .args(["show", "bfd", "sessions"])
        .output()
        .expect("birdc");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("Up"))
        .count()
}

/// Waits until the router has `want` BFD sessions Up. BGP comes up before BFD does, and
/// BIRD only acts on a BFD session that was Up: a director that dies before then is
/// noticed by the BGP hold time (seconds), not BFD. Returns how long it waited; panics
/// after `timeout`.
pub fn wait_bfd_up(lab: &Lab, want: usize, timeout: Duration) -> Duration {
    let start = Instant::now();
    while router_bfd_up(lab) < want {
        assert!(
            start.elapsed() < timeout,
            "the router's BFD sessions did not reach {want} Up within {timeout:?}\n{}",
            lab.log("router-bird")
        );
        super::check_interrupted();
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Waits until the router routes the VIP over exactly `want` directors; returns how long
/// that took (polled every 10 ms).
pub fn wait_next_hops(lab: &Lab, want: usize, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let hops = router_next_hops(lab);
        if hops.len() == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "the router's route to {SO_VIP} did not reach {want} next hops within {timeout:?}: \
             {hops:?}; BFD sessions Up: {}\n{}",
            router_bfd_up(lab),
            lab.log("router-bird")
        );
        super::check_interrupted();
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// xlb's announcements in director `n`'s kernel (`ip route show table 201 proto 201`).
pub fn announced_routes(lab: &Lab, n: usize) -> String {
    let v4 = lab.sh(&format!("dir{n}"), "ip -4 route show table 201 proto 201");
    let v6 = lab.sh(&format!("dir{n}"), "ip -6 route show table 201 proto 201");
    format!("{v4}{v6}")
}

/// Brings up a whole director: xlb, then BIRD.
pub fn start_director(lab: &mut Lab, n: usize, reals: usize) {
    let config = director_config(lab, n, reals, "");
    start_director_xlb(lab, n, &config);
    start_director_bird(lab, n);
}

/// `count` echo connections from the client to `SO_VIP:7`, each asked once: (connection,
/// the real server that answered).
pub fn open_echo_conns(lab: &Lab, count: usize) -> Vec<(super::EchoConn, String)> {
    let vip: std::net::SocketAddr = format!("{SO_VIP}:7").parse().expect("VIP");
    lab.within("client", || {
        (0..count)
            .map(|i| {
                let mut c = super::EchoConn::connect(vip).expect("connect through the VIP");
                let answer = c.ask(&format!("hello {i}")).expect("first answer");
                (c, super::echo_server(&answer))
            })
            .collect()
    })
}

/// Asks every connection again: how many answered, from the real server they had.
pub fn still_answering(lab: &Lab, conns: &mut [(super::EchoConn, String)], round: &str) -> usize {
    lab.within("client", || {
        let mut alive = 0;
        for (i, (c, server)) in conns.iter_mut().enumerate() {
            if c.ask(&format!("{round} {i}"))
                .is_ok_and(|a| super::echo_server(&a) == *server)
            {
                alive += 1;
            }
        }
        alive
    })
}

/// The client ports director `n`'s connection table holds for `SO_VIP:7` (`xlb conns`).
pub fn client_ports_through(lab: &Lab, n: usize) -> std::collections::HashSet<u16> {
    let out = Command::new(xlb_bin())
        .args(["conns", "--pin-path"])
        .arg(director_pins(lab, n))
        .output()
        .expect("xlb conns");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("{SO_VIP}:7")))
        .filter_map(|l| {
            let client = l.split_whitespace().nth(3)?;
            client
                .parse::<std::net::SocketAddr>()
                .ok()
                .map(|a| a.port())
        })
        .collect()
}
