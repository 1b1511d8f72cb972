//! Connection sync between two xlb directors (`[sync]`, keepalived's lvs_sync_daemon),
//! in network namespaces named `xcs-*`: a client holds 50 long-lived TCP echo streams
//! through a `wrr` service; the master is crashed (link down, then kill -9) and later
//! comes back (torn down, so its table can only come from the backup's bulk sync) and
//! preempts. Every stream must keep answering from its first real server both times; a
//! control run without sync shows the same failover resetting streams (so the check can
//! fail). Forged datagrams from a third host (even with a peer's source address) install
//! nothing; a key file others can read refuses the start; a reload changes `[sync]` in
//! place. With `mh` and identical tables nothing is sent, and the streams still survive.
//! Persistence templates follow the failover; multicast sync (with a key) works as
//! unicast does.

use std::{
    net::{SocketAddr, UdpSocket},
    path::PathBuf,
    time::{Duration, Instant},
};

use integration_tests::{
    PinDir,
    netns::{
        EchoConn, LAB_CLIENT, LAB_DIRECTOR, LAB_DIRECTOR2, LAB_VIP, Lab, build_ha_lab, echo_server,
        lab_real, mac_of, start_xlb_in, wait_for, wait_vip, xlb_bin, xlb_status_json,
    },
};
use xlb::connsync::{
    auth::Key,
    wire::{Entry, Kind, encode_entry, encode_header},
};

const STREAMS: usize = 50;
const KEY: &str = "conn-sync-test-secret";

fn lab(tag: &str) -> Lab {
    let prefix = format!("xcs-{tag}{}", std::process::id());
    build_ha_lab(Lab::named(&prefix, PinDir::new(tag)), 2)
}

fn vip(port: u16) -> SocketAddr {
    format!("{LAB_VIP}:{port}").parse().unwrap()
}

/// A director's config: VRRP by unicast to the other director, the echo service (port
/// 7) over rs1 and rs2 with `algo`, and `sync` (a `[sync]` table, or nothing).
fn config(me: &str, peer: &str, priority: u8, algo: &str, sync: &str) -> String {
    let mut c = format!(
        r#"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = {priority}
advert_int = 1
unicast_src_ip = "{me}"
unicast_peer = ["{peer}"]
virtual_ipaddress = ["{LAB_VIP}/32"]

[[virtual_server]]
ip = "{LAB_VIP}"
port = 7
protocol = "TCP"
lb_algo = "{algo}"
"#
    );
    for n in 1..=2 {
        c.push_str(&format!(
            "\n[[virtual_server.real_server]]\nip = \"{}\"\nport = 7\nweight = 1\n",
            lab_real(n)
        ));
    }
    c.push('\n');
    c.push_str(sync);
    c
}

fn synced() -> String {
    format!("[sync]\ninstance = \"VI_1\"\nkey = \"{KEY}\"\n")
}

fn write(lab: &Lab, name: &str, text: &str) -> PathBuf {
    let p = lab.tmp.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn pins(lab: &Lab, ns: &str) -> PathBuf {
    lab.pins.0.join(ns)
}

/// Starts both directors (dir1 the higher priority) and waits for dir1 to hold the VIP.
fn start_pair(lab: &mut Lab, algo: &str, sync: &str) -> (PathBuf, PathBuf) {
    let c1 = write(
        lab,
        "dir1.toml",
        &config(LAB_DIRECTOR, LAB_DIRECTOR2, 150, algo, sync),
    );
    let c2 = write(
        lab,
        "dir2.toml",
        &config(LAB_DIRECTOR2, LAB_DIRECTOR, 100, algo, sync),
    );
    start_xlb_in(lab, "dir1", "xlb1", &c1);
    start_xlb_in(lab, "dir2", "xlb2", &c2);
    wait_vip(lab, "dir1", true, Duration::from_secs(10));
    (c1, c2)
}

/// Opens the streams; each remembers the real server that answered first.
fn open_streams(lab: &Lab, n: usize) -> Vec<(EchoConn, String)> {
    lab.within("client", || {
        (0..n)
            .map(|i| {
                let mut c = EchoConn::connect(vip(7)).expect("connect through the VIP");
                let first = c.ask(&format!("stream {i} hello")).expect("echo");
                (c, echo_server(&first))
            })
            .collect()
    })
}

/// Asks every stream once more: how many answered from their first real server.
fn survivors(streams: &mut [(EchoConn, String)], what: &str) -> usize {
    let mut ok = 0;
    for (i, (c, server)) in streams.iter_mut().enumerate() {
        match c.ask(&format!("stream {i} {what}")) {
            Ok(a) if echo_server(&a) == *server => ok += 1,
            Ok(a) => println!("stream {i} moved from {server}: {a}"),
            Err(e) => println!("stream {i} (on {server}) lost {what}: {e}"),
        }
    }
    ok
}

/// The `conn_sync` part of a director's `xlb status --json`.
fn sync_status(lab: &Lab, ns: &str) -> serde_json::Value {
    xlb_status_json(&pins(lab, ns))["conn_sync"].clone()
}

fn count(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// Waits until the client's neighbour entry for the VIP is `ns`'s MAC (its gratuitous
/// ARP arrived).
fn wait_client_arp(lab: &Lab, ns: &str) {
    let mac = mac_of(lab, ns);
    wait_for(Duration::from_secs(5), "the client's ARP entry", || {
        let arp = lab.sh("client", &format!("ip neigh show {LAB_VIP}"));
        (arp.contains(&mac).then_some(()), arp)
    });
}

/// Waits until `ns` tracks at least `n` connections (its table, read from the maps).
fn wait_tracked(lab: &Lab, ns: &str, n: u64) {
    wait_for(Duration::from_secs(10), &format!("{ns} tracking"), || {
        let s = xlb_status_json(&pins(lab, ns));
        let c = count(&s, "connections");
        (
            (c >= n).then_some(()),
            format!("{c} connections; {}", s["conn_sync"]),
        )
    });
}

/// Waits until `ns`'s sync task has installed at least `n` entries.
fn wait_installed(lab: &Lab, ns: &str, n: u64) {
    wait_for(Duration::from_secs(10), &format!("{ns} installing"), || {
        let s = sync_status(lab, ns);
        ((count(&s, "installed") >= n).then_some(()), s.to_string())
    });
}

/// Crash of the master: its link goes down, then its daemon is killed with SIGKILL.
fn crash_dir1(lab: &mut Lab) {
    lab.sh("dir1", "ip link set eth0 down");
    lab.kill("xlb1", libc::SIGKILL);
    let took = wait_vip(lab, "dir2", true, Duration::from_secs(10));
    println!("crash failover: dir2 holds the VIP after {took:?}");
    wait_client_arp(lab, "dir2");
}

#[test]
fn wrr_streams_survive_a_crash_failover_and_preemption_back() {
    let mut lab = lab("fo");
    let (c1, _) = start_pair(&mut lab, "wrr", &synced());
    let mut streams = open_streams(&lab, STREAMS);
    let servers: std::collections::BTreeSet<&String> = streams.iter().map(|(_, s)| s).collect();
    assert_eq!(servers.len(), 2, "wrr spread the streams: {servers:?}");
    // The backup holds every flow before the crash.
    wait_installed(&lab, "dir2", STREAMS as u64);
    wait_tracked(&lab, "dir2", STREAMS as u64);
    let s1 = sync_status(&lab, "dir1");
    let s2 = sync_status(&lab, "dir2");
    println!("master: {s1}\nbackup: {s2}");
    assert_eq!(s1["role"], "master", "{s1}");
    assert_eq!(s2["role"], "backup", "{s2}");
    assert!(count(&s2, "installed") >= STREAMS as u64, "{s2}");
    assert!(s2["drops"].as_object().unwrap().is_empty(), "{s2}");
    assert!(count(&s1, "sent_entries") >= STREAMS as u64, "{s1}");

    crash_dir1(&mut lab);
    let alive = survivors(&mut streams, "after the crash");
    assert_eq!(
        alive, STREAMS,
        "streams that kept their real server over the failover"
    );

    // dir1 comes back with nothing of its own (torn down: no pinned table), asks dir2 for
    // the whole table, and preempts.
    let out = lab
        .command("dir1", &xlb_bin())
        .args(["teardown", "--force", "--pin-path"])
        .arg(pins(&lab, "dir1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.sh("dir1", "ip link set eth0 up");
    start_xlb_in(&mut lab, "dir1", "xlb1b", &c1);
    wait_vip(&lab, "dir1", true, Duration::from_secs(10));
    wait_vip(&lab, "dir2", false, Duration::from_secs(5));
    wait_client_arp(&lab, "dir1");
    wait_installed(&lab, "dir1", STREAMS as u64);
    let s1 = sync_status(&lab, "dir1");
    let s2 = sync_status(&lab, "dir2");
    println!("after preemption: dir1 {s1}\ndir2 {s2}");
    assert!(count(&s1, "bulk_requests_sent") >= 1, "{s1}");
    assert!(count(&s2, "bulk_requests_served") >= 1, "{s2}");
    assert!(count(&s1, "installed") >= STREAMS as u64, "{s1}");
    let alive = survivors(&mut streams, "after preemption");
    assert_eq!(
        alive, STREAMS,
        "streams that kept their real server over preemption"
    );
}

#[test]
fn without_sync_a_wrr_crash_failover_resets_streams() {
    let mut lab = lab("ctl");
    start_pair(&mut lab, "wrr", "");
    let mut streams = open_streams(&lab, STREAMS);
    crash_dir1(&mut lab);
    let alive = survivors(&mut streams, "after the crash");
    println!("without sync: {alive} of {STREAMS} streams survived");
    assert!(
        alive < STREAMS,
        "wrr on the new master scheduled every flow as before: the control run proves nothing"
    );
}

/// An entries datagram for one flow of the lab's echo service to rs1.
fn forged(client_port: u16, key: Option<&Key>, sync_id: u8) -> Vec<u8> {
    let mut d = Vec::new();
    encode_header(&mut d, Kind::Entries, sync_id, 1, 1, key.is_some());
    encode_entry(
        &mut d,
        &Entry {
            protocol: 6,
            state: 0,
            flags: 0,
            remaining_s: 900,
            virtual_service: vip(7),
            client: format!("{LAB_CLIENT}:{client_port}").parse().unwrap(),
            real: format!("{}:7", lab_real(1)).parse().unwrap(),
        },
    )
    .unwrap();
    if let Some(k) = key {
        k.sign(&mut d);
    }
    d
}

#[test]
fn forged_datagrams_install_nothing_and_a_readable_key_file_fails_start() {
    let mut lab = lab("forge");
    // A key file others can read: refused by `xlb check` and by `xlb run`.
    let key_file = lab.tmp.join("sync.key");
    std::fs::write(&key_file, "secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let sync = format!(
        "[sync]\ninstance = \"VI_1\"\nkey_file = \"{}\"\n",
        key_file.display()
    );
    let bad = write(
        &lab,
        "bad.toml",
        &config(LAB_DIRECTOR, LAB_DIRECTOR2, 150, "wrr", &sync),
    );
    // Host checks (the default) in the director's namespace, where its interface is.
    let out = lab
        .command("dir1", &xlb_bin())
        .args(["check", "-c"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a readable key file passed the check"
    );
    assert!(
        err.contains("sync.key_file") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(err.contains("bad.toml:"), "a located error: {err}");
    let out = lab
        .command("dir1", &xlb_bin())
        .args(["run", "-c"])
        .arg(&bad)
        .arg("--pin-path")
        .arg(pins(&lab, "dir1"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "xlb run started with a readable key file"
    );

    let (_, c2) = start_pair(&mut lab, "wrr", &synced());
    // The client sends from its own address, with the peer's address too (spoofed, as
    // a third host on the segment can): unsigned, signed with another key, signed
    // with the right key but another sync id.
    lab.sh(
        "client",
        &format!(
            "sysctl -qw net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.eth0.arp_announce=2 && \
             ip addr add {LAB_DIRECTOR}/32 dev lo"
        ),
    );
    let to: SocketAddr = format!("{LAB_DIRECTOR2}:8848").parse().unwrap();
    let right = Key::new(KEY.as_bytes());
    let wrong = Key::new(b"guessed");
    lab.within("client", || {
        let own = UdpSocket::bind(format!("{LAB_CLIENT}:0")).unwrap();
        own.send_to(&forged(1001, Some(&right), 0), to).unwrap();
        let spoofed = UdpSocket::bind(format!("{LAB_DIRECTOR}:0")).unwrap();
        spoofed.send_to(&forged(1002, None, 0), to).unwrap();
        spoofed.send_to(&forged(1003, Some(&wrong), 0), to).unwrap();
        spoofed.send_to(&forged(1004, Some(&right), 9), to).unwrap();
        spoofed.send_to(b"XLBS garbage", to).unwrap();
    });
    let s2 = wait_for(
        Duration::from_secs(5),
        "the forged datagrams counted",
        || {
            let s = sync_status(&lab, "dir2");
            let drops: u64 = s["drops"]
                .as_object()
                .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
                .unwrap_or(0);
            ((drops >= 5).then_some(s.clone()), s.to_string())
        },
    );
    println!("backup after forged datagrams: {s2}");
    for reason in [
        "unknown_peer",
        "unsigned",
        "bad_hmac",
        "sync_id",
        "truncated",
    ] {
        assert_eq!(count(&s2["drops"], reason), 1, "{reason}: {s2}");
    }
    assert_eq!(count(&s2, "installed"), 0, "{s2}");
    assert_eq!(
        count(&xlb_status_json(&pins(&lab, "dir2")), "connections"),
        0
    );
    // The same datagram signed with the right key from the peer's address is installed:
    // the refusals above are the checks, not a receiver that installs nothing.
    lab.within("client", || {
        let spoofed = UdpSocket::bind(format!("{LAB_DIRECTOR}:0")).unwrap();
        spoofed.send_to(&forged(1005, Some(&right), 0), to).unwrap();
    });
    wait_tracked(&lab, "dir2", 1);
    let text = integration_tests::netns::xlb_status(&pins(&lab, "dir2"), &[]);
    assert!(
        text.contains("connection sync: backup (instance VI_1"),
        "{text}"
    );
    assert!(text.contains("dropped datagrams: bad_hmac 1"), "{text}");

    // A reload changes [sync] in place: the same daemon now takes sync id 5 only.
    let pid = lab.pid("xlb2");
    std::fs::write(
        &c2,
        config(
            LAB_DIRECTOR2,
            LAB_DIRECTOR,
            100,
            "wrr",
            &format!("{}id = 5\n", synced()),
        ),
    )
    .unwrap();
    let out = lab
        .command("dir2", &xlb_bin())
        .args(["reload", "--pin-path"])
        .arg(pins(&lab, "dir2"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(Duration::from_secs(5), "sync id 5 in force", || {
        let s = sync_status(&lab, "dir2");
        ((s["sync_id"] == 5).then_some(()), s.to_string())
    });
    lab.within("client", || {
        let spoofed = UdpSocket::bind(format!("{LAB_DIRECTOR}:0")).unwrap();
        spoofed.send_to(&forged(1006, Some(&right), 0), to).unwrap();
        spoofed.send_to(&forged(1007, Some(&right), 5), to).unwrap();
    });
    wait_tracked(&lab, "dir2", 2);
    // The status file follows within a tick.
    let s2 = wait_for(
        Duration::from_secs(3),
        "the reloaded task's counters",
        || {
            let s = sync_status(&lab, "dir2");
            let done = count(&s, "received_datagrams") >= 2;
            (done.then_some(s.clone()), s.to_string())
        },
    );
    assert_eq!(count(&s2["drops"], "sync_id"), 1, "id 0 now refused: {s2}");
    assert_eq!(count(&s2, "installed"), 1, "{s2}");
    assert_eq!(lab.pid("xlb2"), pid, "the daemon restarted");
}

#[test]
fn with_mh_and_identical_tables_nothing_is_sent_and_streams_survive() {
    let mut lab = lab("mh");
    start_pair(&mut lab, "mh", &synced());
    // The digests cross every second; the master leaves mh flows out once confirmed.
    wait_for(
        Duration::from_secs(10),
        "the peer's digest confirmed",
        || {
            let s = sync_status(&lab, "dir1");
            ((s["hashed_skipped"] == true).then_some(()), s.to_string())
        },
    );
    let before = count(&sync_status(&lab, "dir1"), "sent_entries");
    let mut streams = open_streams(&lab, 20);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let s1 = sync_status(&lab, "dir1");
    assert_eq!(
        count(&s1, "sent_entries"),
        before,
        "mh flows were sent: {s1}"
    );
    crash_dir1(&mut lab);
    assert_eq!(survivors(&mut streams, "after the crash"), 20);
}

/// One echo exchange from each of `sources` (addresses of the client) to the VIP, each
/// on a new connection: the real server that answered, by source.
fn ask_from(lab: &Lab, sources: &[String]) -> Vec<String> {
    let script = format!(
        "import socket\n\
         for src in {sources:?}:\n\
         \x20   s = socket.create_connection(('{LAB_VIP}', 7), timeout=5, source_address=(src, 0))\n\
         \x20   s.sendall(b'hello\\n')\n\
         \x20   print(s.recv(200).decode().split()[0])\n\
         \x20   s.close()\n"
    );
    let path = lab.tmp.join("ask_from.py");
    std::fs::write(&path, script).unwrap();
    lab.sh("client", &format!("python3 {}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn persistence_templates_follow_the_failover() {
    let mut lab = lab("per");
    let persistent = |me, peer, prio| {
        config(me, peer, prio, "wrr", &synced()).replace(
            "lb_algo = \"wrr\"\n",
            "lb_algo = \"wrr\"\npersistence_timeout = 300\n",
        )
    };
    let c1 = write(
        &lab,
        "dir1.toml",
        &persistent(LAB_DIRECTOR, LAB_DIRECTOR2, 150),
    );
    let c2 = write(
        &lab,
        "dir2.toml",
        &persistent(LAB_DIRECTOR2, LAB_DIRECTOR, 100),
    );
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir1", true, Duration::from_secs(10));
    // 20 clients (addresses of the client host), one short connection each: each
    // client's template names its real server.
    let sources: Vec<String> = (50..70).map(|n| format!("198.18.0.{n}")).collect();
    for s in &sources {
        lab.sh("client", &format!("ip addr add {s}/24 dev eth0"));
    }
    let before = ask_from(&lab, &sources);
    assert_eq!(before.len(), sources.len(), "{before:?}");
    let spread: std::collections::BTreeSet<&String> = before.iter().collect();
    assert_eq!(spread.len(), 2, "wrr spread the clients: {before:?}");
    // 20 templates and at least one entry per connection.
    wait_installed(&lab, "dir2", 2 * sources.len() as u64);
    crash_dir1(&mut lab);
    // New connections after the failover: each client's template sends it where it went.
    let after = ask_from(&lab, &sources);
    assert_eq!(after, before, "clients that lost their real server");
}

#[test]
fn multicast_sync_with_a_key_keeps_streams_over_a_failover() {
    let mut lab = lab("mc");
    // No unicast_peer: VRRP and sync both multicast (sync to IPVS's 224.0.0.81).
    let multicast = |me: &str, peer: &str, prio| {
        config(me, peer, prio, "wrr", &synced())
            .replace(&format!("unicast_src_ip = \"{me}\"\n"), "")
            .replace(&format!("unicast_peer = [\"{peer}\"]\n"), "")
    };
    let c1 = write(
        &lab,
        "dir1.toml",
        &multicast(LAB_DIRECTOR, LAB_DIRECTOR2, 150),
    );
    let c2 = write(
        &lab,
        "dir2.toml",
        &multicast(LAB_DIRECTOR2, LAB_DIRECTOR, 100),
    );
    assert!(!std::fs::read_to_string(&c1).unwrap().contains("unicast"));
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir1", true, Duration::from_secs(10));
    let mut streams = open_streams(&lab, 20);
    wait_installed(&lab, "dir2", 20);
    let s1 = sync_status(&lab, "dir1");
    assert_eq!(s1["destinations"][0], "224.0.0.81:8848", "{s1}");
    crash_dir1(&mut lab);
    assert_eq!(survivors(&mut streams, "after the crash"), 20);
}

/// The receiver's writes, read by the XDP program itself (`BPF_PROG_TEST_RUN`, no
/// namespaces): entries installed for IPv4 and IPv6 flows, all naming the second real
/// server, send every one of those flows there (`wrr` alone would alternate), and an
/// entry for a real server the service lacks installs nothing.
#[test]
fn installed_entries_are_what_the_xdp_program_forwards_by() {
    use integration_tests::{Plane, frames::Frame, real_mac, service};
    use lb_common::SchedAlgo;
    use xlb::{
        connsync::{
            directory::Directory,
            table::{Skip, install_conn},
        },
        dataplane::{Maps, conn_table::now_ticks},
    };
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    let families = [
        (
            ip("198.18.0.100"),
            ip("198.18.0.11"),
            ip("198.18.0.12"),
            ip("198.19.0.1"),
        ),
        (
            ip("2001:db8::100"),
            ip("2001:db8::11"),
            ip("2001:db8::12"),
            ip("2001:db8:1::1"),
        ),
    ];
    let mut p = Plane::sized("xcsinst", 4096);
    let services: Vec<_> = families
        .iter()
        .map(|(vip, a, b, _)| service(*vip, 80, true, SchedAlgo::Wrr, &[(*a, 1), (*b, 1)]))
        .collect();
    p.apply(&services);
    let maps = Maps::from_pins(&p.pins.0).unwrap();
    let dir = Directory::read(&maps);
    let mut tables = maps.conn_tables(true).unwrap();
    for (vip, _, second, client) in families {
        for port in 1000..1020 {
            let e = Entry {
                protocol: 6,
                state: lb_common::CONN_OPEN,
                flags: 0,
                remaining_s: 900,
                virtual_service: SocketAddr::new(vip, 80),
                client: SocketAddr::new(client, port),
                real: SocketAddr::new(second, 80),
            };
            install_conn(&mut tables, &dir, &e, now_ticks()).expect("installed");
            let mut f = Frame::tcp(client, port, vip, 80);
            f.tcp_flags = integration_tests::frames::TCP_ACK;
            let (action, out) = p.run(&f.build());
            assert_eq!(action, 3, "XDP_TX for {client}:{port}");
            assert_eq!(
                out[..6],
                real_mac(integration_tests::last_octet(second)),
                "{client}:{port} went elsewhere"
            );
        }
        let stranger = Entry {
            protocol: 6,
            state: lb_common::CONN_OPEN,
            flags: 0,
            remaining_s: 900,
            virtual_service: SocketAddr::new(vip, 80),
            client: SocketAddr::new(client, 2000),
            real: SocketAddr::new(client, 80),
        };
        assert_eq!(
            install_conn(&mut tables, &dir, &stranger, now_ticks()),
            Err(Skip::UnknownReal)
        );
    }
}
