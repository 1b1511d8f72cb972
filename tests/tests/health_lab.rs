//! Health checks driving the data plane, end to end: real servers in namespaces, a
//! separate health endpoint per server (port 8080) that the test stops and starts.

use std::{
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant},
};

use integration_tests::netns::{
    EchoConn, LAB_VIP, Lab, dr_lab, http_get, lab_real, start_xlb, write_config, xlb_bin,
};

fn vip(port: u16) -> SocketAddr {
    format!("{LAB_VIP}:{port}").parse().unwrap()
}

/// Starts a health endpoint (HTTP on 8080) in real server `n`'s namespace.
fn start_health(lab: &mut Lab, n: usize) {
    let ns = format!("rs{n}");
    let mut cmd = lab.command(&ns, Path::new("python3"));
    cmd.args(["-m", "http.server", "8080", "--bind", "0.0.0.0"]);
    lab.spawn(&format!("health{n}"), cmd);
    // Ready when it accepts connections.
    let addr: SocketAddr = format!("{}:8080", lab_real(n)).parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab
        .within("client", || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
        })
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "health endpoint {n} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const CHECK: &str =
    "tcp_check = { connect_port = 8080, connect_timeout = 1, retry = 1, delay_before_retry = 1 }";

fn real(n: usize, port: u16, extra: &str) -> String {
    format!(
        "\n[[virtual_server.real_server]]\nip = \"{}\"\nport = {port}\n{CHECK}\n{extra}\n",
        lab_real(n)
    )
}

/// Who answers `count` new connections on port 80.
fn answers(lab: &Lab, count: usize) -> Vec<String> {
    lab.within("client", || {
        (0..count)
            .map(|_| {
                http_get(vip(80), "/")
                    .expect("request through the VIP")
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    })
}

fn status(lab: &Lab) -> serde_json::Value {
    let out = std::process::Command::new(xlb_bin())
        .args(["status", "--json", "--pin-path"])
        .arg(&lab.pins.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until `xlb status` says real server `n` of the service on `port` is `state`.
fn wait_real(
    lab: &Lab,
    port: u16,
    n: usize,
    pred: impl Fn(&serde_json::Value) -> bool,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let s = status(lab);
        let rs = s["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["port"] == port)
            .and_then(|v| {
                v["real_servers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["ip"] == lab_real(n))
                    .cloned()
            });
        if rs.as_ref().is_some_and(&pred) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "rs{n} not as expected within {within:?}: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_dead_real_server_gets_no_new_flows_within_the_check_bound_and_returns_when_healthy() {
    let mut lab = dr_lab("health", 3);
    for n in 1..=3 {
        start_health(&mut lab, n);
    }
    let mut cfg = format!(
        "[[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 80\nprotocol = \"TCP\"\nlb_algo = \"rr\"\ninterface = \"eth0\"\ndelay_loop = 1\n"
    );
    for n in 1..=3 {
        cfg.push_str(&real(n, 80, ""));
    }
    let path = write_config(&lab, &cfg);
    start_xlb(&mut lab, "xlb", &path);
    let all = answers(&lab, 30);
    for n in 1..=3 {
        assert!(
            all.contains(&format!("rs{n}")),
            "rs{n} got nothing: {all:?}"
        );
    }

    // keepalived's bound: delay_loop + (retry + 1) x connect_timeout + retry x delay_before_retry.
    let bound = Duration::from_secs(1 + 2 + 1);
    lab.kill("health1", libc::SIGKILL);
    let took = wait_real(
        &lab,
        80,
        1,
        |r| r["alive"] == false,
        bound + Duration::from_secs(1),
    );
    println!("rs1 marked down {took:?} after its health endpoint died (bound {bound:?})");
    let after = answers(&lab, 30);
    assert!(
        !after.contains(&"rs1".to_string()),
        "a dead server got new flows: {after:?}"
    );

    start_health(&mut lab, 1);
    let took = wait_real(&lab, 80, 1, |r| r["alive"] == true, Duration::from_secs(4));
    println!("rs1 back up {took:?} after its health endpoint returned");
    let back = answers(&lab, 30);
    assert!(
        back.contains(&"rs1".to_string()),
        "a recovered server gets no flows: {back:?}"
    );
    assert!(
        lab.log("xlb").contains("connection refused"),
        "the reason is logged:\n{}",
        lab.log("xlb")
    );
}

#[test]
fn inhibit_on_failure_keeps_a_long_lived_connection_to_the_failed_server() {
    let mut lab = dr_lab("inhibit", 3);
    for n in 1..=3 {
        start_health(&mut lab, n);
    }
    let mut cfg = format!(
        "[[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 7\nprotocol = \"TCP\"\nlb_algo = \"rr\"\ninterface = \"eth0\"\ndelay_loop = 1\ninhibit_on_failure = true\n"
    );
    for n in 1..=3 {
        cfg.push_str(&real(n, 7, ""));
    }
    let path = write_config(&lab, &cfg);
    start_xlb(&mut lab, "xlb", &path);

    let (mut conn, server) = lab.within("client", || {
        let mut c = EchoConn::connect(vip(7)).expect("connect");
        let a = c.ask("hello").expect("echo");
        (c, a.split(' ').next().unwrap().to_string())
    });
    let n: usize = server.trim_start_matches("rs").parse().unwrap();
    lab.kill(&format!("health{n}"), libc::SIGKILL);
    wait_real(&lab, 7, n, |r| r["weight"] == 0, Duration::from_secs(6));
    let still = conn
        .ask("still there?")
        .expect("the connection survives the failed check");
    assert!(still.starts_with(&server), "{still}");
    let fresh: Vec<String> = lab.within("client", || {
        (0..12)
            .map(|_| {
                let mut c = EchoConn::connect(vip(7)).unwrap();
                c.ask("x").unwrap().split(' ').next().unwrap().to_string()
            })
            .collect()
    });
    assert!(
        !fresh.contains(&server),
        "new flows went to the inhibited server: {fresh:?}"
    );
}

#[test]
fn losing_the_quorum_installs_the_sorry_server_and_regaining_it_removes_it() {
    let mut lab = dr_lab("quorum", 3);
    for n in 1..=2 {
        start_health(&mut lab, n);
    }
    let marks = lab.tmp.join("quorum.log");
    let mut cfg = format!(
        "[[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 80\nprotocol = \"TCP\"\nlb_algo = \"rr\"\ninterface = \"eth0\"\ndelay_loop = 1\n\
         quorum = 2\nsorry_server = {{ ip = \"{sorry}\" }}\n\
         quorum_up = \"sh -c 'echo up >> {m}'\"\nquorum_down = \"sh -c 'echo down >> {m}'\"\n",
        sorry = lab_real(3),
        m = marks.display()
    );
    for n in 1..=2 {
        cfg.push_str(&real(n, 80, ""));
    }
    let path = write_config(&lab, &cfg);
    start_xlb(&mut lab, "xlb", &path);
    let before = answers(&lab, 12);
    assert!(
        !before.contains(&"rs3".to_string()),
        "the sorry server serves with the quorum: {before:?}"
    );

    // One of two down: weight 1 < quorum 2.
    lab.kill("health1", libc::SIGKILL);
    wait_real(&lab, 80, 3, |r| r["weight"] == 1, Duration::from_secs(6));
    let sorry = answers(&lab, 12);
    assert!(
        sorry.iter().all(|a| a == "rs3"),
        "while the quorum is lost only the sorry server takes new flows: {sorry:?}"
    );

    start_health(&mut lab, 1);
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let s = status(&lab);
        let reals = s["services"][0]["real_servers"].as_array().unwrap().clone();
        if !reals.iter().any(|r| r["ip"] == lab_real(3)) {
            break;
        }
        assert!(Instant::now() < deadline, "the sorry server stayed: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let again = answers(&lab, 12);
    assert!(!again.contains(&"rs3".to_string()), "{again:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read_to_string(&marks).unwrap_or_default(),
        "down\nup\n"
    );
}

/// Connections to real server `n`'s health port (8080) from `src`, counted by nftables in
/// the real server's namespace.
fn health_hits(lab: &Lab, n: usize, src: &str) -> u64 {
    let out = lab.sh(&format!("rs{n}"), "nft list chain inet hc in");
    out.lines()
        .find(|l| l.contains(src))
        .and_then(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.iter()
                .position(|x| *x == "packets")
                .map(|i| w[i + 1].parse().unwrap())
        })
        .unwrap_or(0)
}

#[test]
fn ha_suspend_runs_checks_only_on_the_director_that_forwards() {
    use integration_tests::netns::{LAB_DIRECTOR, LAB_DIRECTOR2, ha_lab, start_xlb_in};
    let mut lab = ha_lab("hasusp", 1);
    start_health(&mut lab, 1);
    lab.sh(
        "rs1",
        &format!(
            "nft add table inet hc && nft 'add chain inet hc in {{ type filter hook input priority 0; }}' && \
             nft add rule inet hc in ip saddr {LAB_DIRECTOR} tcp dport 8080 tcp flags syn counter && \
             nft add rule inet hc in ip saddr {LAB_DIRECTOR2} tcp dport 8080 tcp flags syn counter"
        ),
    );
    let cfg = |prio: u8| {
        format!(
            "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = {prio}\n\
             advert_int = 1\nvirtual_ipaddress = [\"{LAB_VIP}/32\"]\n\n\
             [[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 80\nprotocol = \"TCP\"\nlb_algo = \"rr\"\ndelay_loop = 0.5\nha_suspend = true\n{}",
            real(1, 80, "")
        )
    };
    let c1 = lab.tmp.join("dir1.toml");
    let c2 = lab.tmp.join("dir2.toml");
    std::fs::write(&c1, cfg(150)).unwrap();
    std::fs::write(&c2, cfg(100)).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    lab.wait_log("xlb1", "to=MASTER", Duration::from_secs(8));
    std::thread::sleep(Duration::from_secs(3));
    let (m, b) = (
        health_hits(&lab, 1, LAB_DIRECTOR),
        health_hits(&lab, 1, LAB_DIRECTOR2),
    );
    println!("health checks in 3 s: master {m}, backup {b}");
    assert!(m >= 3, "the master checks ({m})");
    assert_eq!(b, 0, "the backup director must not check with ha_suspend");
    // After a handover the roles swap.
    lab.kill("xlb1", libc::SIGTERM);
    lab.wait_log("xlb2", "to=MASTER", Duration::from_secs(4));
    let before = health_hits(&lab, 1, LAB_DIRECTOR2);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        health_hits(&lab, 1, LAB_DIRECTOR2) > before,
        "the new master checks"
    );
}
