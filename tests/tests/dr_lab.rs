//! End to end in network namespaces: a client, a director running `xlb run` with native
//! XDP, and real servers with the VIP on `lo`, on one bridge.

use std::{net::SocketAddr, time::Duration};

use integration_tests::netns::{
    EchoConn, LAB_VIP, dr_lab, http_get, lab_real, start_xlb, write_config, xlb_bin,
};

fn vip(port: u16) -> SocketAddr {
    format!("{LAB_VIP}:{port}").parse().unwrap()
}

fn config(algo: &str) -> String {
    format!(
        r#"
[[virtual_server]]
ip = "{LAB_VIP}"
port = 80
protocol = "TCP"
lb_algo = "{algo}"
lb_kind = "DR"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{rs1}"
port = 80
weight = 3

[[virtual_server.real_server]]
ip = "{rs2}"
port = 80
weight = 1

[[virtual_server]]
ip = "{LAB_VIP}"
port = 7
protocol = "TCP"
lb_algo = "rr"
lb_kind = "DR"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{rs1}"
port = 7

[[virtual_server.real_server]]
ip = "{rs2}"
port = 7
"#,
        rs1 = lab_real(1),
        rs2 = lab_real(2)
    )
}

#[test]
fn wrr_balances_three_to_one_in_dr_mode_and_replies_bypass_the_director() {
    let mut lab = dr_lab("wrr", 2);
    let cfg = write_config(&lab, &config("wrr"));
    start_xlb(&mut lab, "xlb", &cfg);

    const CONNECTIONS: usize = 400;
    const BODY: usize = 20_000;
    let rx_before = lab.counter("dir", "eth0", "rx_bytes");
    let answers: Vec<String> = lab.within("client", || {
        (0..CONNECTIONS)
            .map(|i| {
                http_get(vip(80), &format!("/?size={BODY}"))
                    .unwrap_or_else(|e| panic!("connection {i} through the VIP: {e}"))
            })
            .collect()
    });
    let rx_after = lab.counter("dir", "eth0", "rx_bytes");

    let mut rs1 = 0;
    for a in &answers {
        let first = a.lines().next().unwrap_or_default();
        let (name, local) = first.split_once(' ').expect("answer names the server");
        assert_eq!(
            local,
            format!("{LAB_VIP}:80"),
            "DR: the real server must see the VIP as the local address"
        );
        assert_eq!(a.len(), first.len() + 1 + BODY, "the whole body arrived");
        if name == "rs1" {
            rs1 += 1;
        } else {
            assert_eq!(name, "rs2");
        }
    }
    let share = rs1 as f64 / CONNECTIONS as f64;
    println!(
        "wrr 3:1 over {CONNECTIONS} connections: rs1 {:.1}%",
        share * 100.0
    );
    assert!(
        (0.65..=0.85).contains(&share),
        "rs1 share {share} not 75% +-10%"
    );

    // The responses (8 MB) went from the real servers straight to the client: the director
    // received only the client's side of each connection.
    let received = rx_after - rx_before;
    let replies = (CONNECTIONS * BODY) as u64;
    println!("director received {received} bytes while the real servers sent {replies}");
    assert!(
        received < replies / 10,
        "replies seem to pass through the director"
    );

    let status = std::process::Command::new(xlb_bin())
        .args(["status", "--json", "--pin-path"])
        .arg(&lab.pins.0)
        .output()
        .expect("xlb status");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    let http = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["port"] == 80)
        .expect("port 80 service");
    assert_eq!(http["new_flows"], CONNECTIONS as u64, "{http}");
}

#[test]
fn a_long_lived_connection_survives_kill_9_and_a_restart_of_xlb() {
    let mut lab = dr_lab("restart", 2);
    let cfg = write_config(&lab, &config("rr"));
    start_xlb(&mut lab, "xlb", &cfg);

    // The connection has to outlive the thread that opened it: keep the socket open
    // across the kill and the restart.
    let (mut conn, server) = lab.within("client", || {
        let mut conn = EchoConn::connect(vip(7)).expect("connect through the VIP");
        let first = conn.ask("hello").expect("echo");
        (conn, first.split(' ').next().unwrap().to_string())
    });

    lab.kill("xlb", libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(300));
    let during = conn
        .ask("while xlb is dead")
        .expect("the connection survives kill -9");
    assert!(during.starts_with(&server), "{during}");
    // New connections also still work: the program and maps stayed pinned.
    let fresh = lab.within("client", || http_get(vip(80), "/").expect("new connection"));
    assert!(fresh.contains(LAB_VIP));

    start_xlb(&mut lab, "xlb2", &cfg);
    assert!(lab.log("xlb2").contains("adopted"), "{}", lab.log("xlb2"));
    let after = conn
        .ask("after restart")
        .expect("the connection survives the restart");
    assert!(
        after.starts_with(&server),
        "same real server after restart: {after}"
    );

    // A graceful stop leaves forwarding in place too.
    lab.kill("xlb2", libc::SIGTERM);
    let after_stop = conn.ask("after stop").expect("survives a graceful stop");
    assert!(after_stop.starts_with(&server));
}

#[test]
fn ipv6_clients_are_balanced_in_dr_mode_too() {
    use integration_tests::netns::{LAB_VIP6, lab_real6};
    let mut lab = dr_lab("v6", 2);
    let cfg = format!(
        r#"
[[virtual_server]]
ip = "{LAB_VIP6}"
port = 80
protocol = "TCP"
lb_algo = "rr"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{a}"
port = 80

[[virtual_server.real_server]]
ip = "{b}"
port = 80
"#,
        a = lab_real6(1),
        b = lab_real6(2)
    );
    let path = write_config(&lab, &cfg);
    start_xlb(&mut lab, "xlb", &path);
    let vip6: SocketAddr = format!("[{LAB_VIP6}]:80").parse().unwrap();
    let answers: Vec<String> = lab.within("client", || {
        (0..20)
            .map(|i| http_get(vip6, "/").unwrap_or_else(|e| panic!("IPv6 connection {i}: {e}")))
            .collect()
    });
    let mut seen = std::collections::BTreeSet::new();
    for a in &answers {
        let (name, local) = a.lines().next().unwrap().split_once(' ').unwrap();
        assert_eq!(
            local,
            format!("[{LAB_VIP6}]:80"),
            "DR over IPv6: the VIP is the local address"
        );
        seen.insert(name.to_string());
    }
    assert_eq!(seen.len(), 2, "both real servers answer: {answers:?}");
}
