//! The Prometheus endpoint and `xlb status --rate`, end to end: `xlb run` in the DR lab
//! with `metrics_listen` on the director's loopback, real TCP servers (HTTP on 80, a line
//! echo on 7, health endpoints on 8080), traffic counted independently by nftables in
//! the client's namespace, and scrapes by a plain HTTP GET.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use integration_tests::netns::{
    EchoConn, LAB_VIP, Lab, dr_lab, http_get, lab_real, start_xlb, write_config, xlb_bin,
};

const METRICS: &str = "127.0.0.1:9471";

fn vip(port: u16) -> SocketAddr {
    format!("{LAB_VIP}:{port}").parse().unwrap()
}

/// `GET path` on the director's metrics endpoint: (status line, body).
fn get(lab: &Lab, path: &str) -> (String, String) {
    get_at(lab, METRICS, path)
}

/// `GET path` on `addr`, from the director's namespace.
fn get_at(lab: &Lab, addr: &str, path: &str) -> (String, String) {
    lab.within("dir", || {
        let mut s = TcpStream::connect(addr).expect("connect to the metrics endpoint");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        (
            head.lines().next().unwrap_or_default().to_string(),
            body.to_string(),
        )
    })
}

/// One scrape: every sample as `name{labels}` -> value.
fn scrape(lab: &Lab) -> BTreeMap<String, f64> {
    let (status, body) = get(lab, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn backend(port: u16, n: usize) -> String {
    format!(
        "{{local_address=\"{LAB_VIP}\",local_port=\"{port}\",remote_address=\"{}\",remote_port=\"{port}\",proto=\"TCP\"}}",
        lab_real(n)
    )
}

fn service(port: u16) -> String {
    format!("{{local_address=\"{LAB_VIP}\",local_port=\"{port}\",proto=\"TCP\"}}")
}

/// The value of sample `key`, panicking with the scrape when it is absent.
fn value(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("{key} not in the scrape:\n{m:#?}"))
}

/// Scrapes until `pred` holds (the daemon publishes its part every 500 ms).
fn scrape_until(
    lab: &Lab,
    what: &str,
    within: Duration,
    pred: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let start = Instant::now();
    loop {
        let m = scrape(lab);
        if pred(&m) {
            return m;
        }
        assert!(
            start.elapsed() < within,
            "{what} not within {within:?}:\n{m:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts a health endpoint (HTTP on 8080) in real server `n`'s namespace.
fn start_health(lab: &mut Lab, n: usize) {
    let mut cmd = lab.command(&format!("rs{n}"), Path::new("python3"));
    cmd.args(["-m", "http.server", "8080", "--bind", "0.0.0.0"]);
    lab.spawn(&format!("health{n}"), cmd);
    let addr: SocketAddr = format!("{}:8080", lab_real(n)).parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab
        .within("client", || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
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

/// The director's config: HTTP on 80 over rs1, rs2 (health-checked on 8080), the echo on 7
/// over rs1, rs2, and a VRRP instance of its own VIP; `weight2` is rs2's weight on 80.
fn config(weight2: u32) -> String {
    let check = "tcp_check = { connect_port = 8080, connect_timeout = 1, retry = 1, delay_before_retry = 1 }";
    let mut cfg = format!(
        "[global_defs]\nmetrics_listen = \"{METRICS}\"\n\n\
         [[vrrp_instance]]\nname = \"VI_M\"\ninterface = \"eth0\"\nvirtual_router_id = 61\n\
         priority = 150\nadvert_int = 1\nvirtual_ipaddress = [\"198.18.0.200/32\"]\n\n\
         [[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 80\nprotocol = \"TCP\"\nlb_algo = \"rr\"\n\
         interface = \"eth0\"\ndelay_loop = 1\n"
    );
    for n in 1..=2 {
        let w = if n == 2 { weight2 } else { 1 };
        cfg.push_str(&format!(
            "\n[[virtual_server.real_server]]\nip = \"{}\"\nport = 80\nweight = {w}\n{check}\n",
            lab_real(n)
        ));
    }
    cfg.push_str(&format!(
        "\n[[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 7\nprotocol = \"TCP\"\nlb_algo = \"rr\"\ninterface = \"eth0\"\n"
    ));
    for n in 1..=2 {
        cfg.push_str(&format!(
            "\n[[virtual_server.real_server]]\nip = \"{}\"\nport = 7\n",
            lab_real(n)
        ));
    }
    cfg
}

fn lab_with_xlb(tag: &str) -> Lab {
    let mut lab = dr_lab(tag, 2);
    for n in 1..=2 {
        start_health(&mut lab, n);
    }
    let path = write_config(&lab, &config(1));
    start_xlb(&mut lab, "xlb", &path);
    lab
}

/// Packets and bytes (IP length) the client sent to `LAB_VIP:80`, counted by nftables.
fn client_counter(lab: &Lab) -> (u64, u64) {
    let out = lab.sh("client", "nft list chain inet metc out");
    let line = out
        .lines()
        .find(|l| l.contains("counter"))
        .unwrap_or_else(|| panic!("no counter rule:\n{out}"));
    let w: Vec<&str> = line.split_whitespace().collect();
    let after = |word| {
        let i = w.iter().position(|x| *x == word).unwrap();
        w[i + 1].parse::<u64>().unwrap()
    };
    (after("packets"), after("bytes"))
}

fn xlb(args: &[&str], lab: &Lab) -> String {
    let out = std::process::Command::new(xlb_bin())
        .args(args)
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xlb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn scraped_counters_equal_the_traffic_sent_and_conns_are_counted_like_ipvsadm() {
    let lab = lab_with_xlb("metc");
    lab.sh(
        "client",
        &format!(
            "nft add table inet metc && nft 'add chain inet metc out {{ type filter hook output priority 0; }}' && \
             nft add rule inet metc out ip daddr {LAB_VIP} tcp dport 80 counter"
        ),
    );
    const REQUESTS: usize = 24;
    let answers: Vec<String> = lab.within("client", || {
        (0..REQUESTS)
            .map(|_| {
                let body = http_get(vip(80), "/").expect("request through the VIP");
                body.split(' ').next().unwrap().to_string()
            })
            .collect()
    });
    // Three echo connections held open (ESTABLISHED), each having said something.
    let held: Vec<(EchoConn, String)> = lab.within("client", || {
        (0..3)
            .map(|_| {
                let mut c = EchoConn::connect(vip(7)).expect("connect");
                let a = c.ask("hello").expect("echo");
                let who = a.split(' ').next().unwrap().to_string();
                (c, who)
            })
            .collect()
    });
    let (packets, bytes) = client_counter(&lab);
    let t = Instant::now();
    let m = scrape(&lab);
    println!(
        "one scrape took {:?} (default connection tables: 524288 + 131072 slots)",
        t.elapsed()
    );
    println!("{}", get(&lab, "/metrics").1);

    assert_eq!(
        value(&m, &format!("xlb_service_new_flows_total{}", service(80))),
        REQUESTS as f64
    );
    assert_eq!(
        value(&m, &format!("xlb_service_packets_total{}", service(80))),
        packets as f64,
        "every packet the client sent to the VIP, as nftables counted them"
    );
    // XDP counts whole frames: 14 bytes of Ethernet header more than the IP length.
    assert_eq!(
        value(&m, &format!("xlb_service_bytes_total{}", service(80))),
        (bytes + 14 * packets) as f64
    );
    let mut flows_sum = 0.0;
    let mut packets_sum = 0.0;
    for n in 1..=2 {
        let served = answers.iter().filter(|a| **a == format!("rs{n}")).count();
        assert!(served > 0, "rr gives rs{n} some: {answers:?}");
        let b = backend(80, n);
        assert_eq!(
            value(&m, &format!("xlb_backend_new_flows_total{b}")),
            served as f64,
            "new flows of rs{n}: the requests it answered"
        );
        flows_sum += value(&m, &format!("xlb_backend_new_flows_total{b}"));
        packets_sum += value(&m, &format!("xlb_backend_packets_total{b}"));
        assert_eq!(value(&m, &format!("xlb_backend_weight{b}")), 1.0);
        assert_eq!(value(&m, &format!("xlb_backend_up{b}")), 1.0);
        // HTTP/1.0: closed connections, in FIN_WAIT: inactive, none active.
        assert_eq!(
            value(&m, &format!("xlb_backend_connections_active{b}")),
            0.0
        );
        assert_eq!(
            value(&m, &format!("xlb_backend_connections_inactive{b}")),
            served as f64,
            "rs{n}'s closed connections"
        );
        let e = backend(7, n);
        let open = held.iter().filter(|(_, w)| *w == format!("rs{n}")).count();
        assert_eq!(
            value(&m, &format!("xlb_backend_connections_active{e}")),
            open as f64,
            "rs{n}'s open echo connections are active"
        );
        assert_eq!(
            value(&m, &format!("xlb_backend_connections_inactive{e}")),
            0.0
        );
    }
    assert_eq!(flows_sum, REQUESTS as f64);
    assert_eq!(packets_sum, packets as f64);
    assert_eq!(value(&m, "xlb_conn_table_entries"), (REQUESTS + 3) as f64);
    // The connection tables at their start size, their maximum, and no growth yet.
    assert_eq!(value(&m, r#"xlb_conn_table_slots{family="ipv4"}"#), 16384.0);
    assert_eq!(value(&m, r#"xlb_conn_table_slots{family="ipv6"}"#), 4096.0);
    assert_eq!(value(&m, "xlb_conn_table_max_slots"), 524288.0);
    assert_eq!(value(&m, "xlb_conn_table_growths_total"), 0.0);

    // `xlb status` shows the same counts per real server, in its table and --json.
    let s: serde_json::Value = serde_json::from_str(&xlb(&["status", "--json"], &lab)).unwrap();
    let echo = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["port"] == 7)
        .unwrap();
    let active: Vec<u64> = echo["real_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["active_conns"].as_u64().unwrap())
        .collect();
    assert_eq!(active.iter().sum::<u64>(), 3, "{s}");
    let table = xlb(&["status"], &lab);
    println!("{table}");
    assert!(table.contains("ActiveConn"), "{table}");

    // --rate while a client loop runs: non-zero rates on the service and its servers.
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        let ns = lab.netns_file("client");
        std::thread::spawn(move || {
            integration_tests::netns::enter(&ns).unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if http_get(vip(80), "/").is_ok() {
                    n += 1;
                }
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let text = xlb(&["status", "--rate", "--interval", "1.5"], &lab);
    let rate: serde_json::Value = serde_json::from_str(&xlb(
        &["status", "--rate", "--interval", "1", "--json"],
        &lab,
    ))
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let sent = client.join().unwrap();
    println!("{text}");
    println!("{} requests during the rate readings", sent);
    let web = rate["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["port"] == 80)
        .unwrap();
    for key in ["packets_per_s", "bytes_per_s", "new_flows_per_s"] {
        assert!(web[key].as_f64().unwrap() > 0.0, "{key}: {rate}");
        for r in web["real_servers"].as_array().unwrap() {
            assert!(r[key].as_f64().unwrap() > 0.0, "{key} of {r}: {rate}");
        }
    }
    let echo = rate["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["port"] == 7)
        .unwrap();
    assert_eq!(
        echo["packets_per_s"], 0.0,
        "nothing said on the echo: {rate}"
    );
    let active: u64 = echo["real_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["active_conns"].as_u64().unwrap())
        .sum();
    assert_eq!(active, 3, "the held connections, in --rate too: {rate}");
    drop(held);
}

#[test]
fn vrrp_health_and_reloads_are_scraped() {
    let mut lab = lab_with_xlb("metv");
    let (status, _) = get(&lab, "/");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert!(
        lab.log("xlb")
            .contains("serving metrics on http://127.0.0.1:9471/metrics"),
        "{}",
        lab.log("xlb")
    );
    assert!(
        !lab.log("xlb").contains("no authentication"),
        "loopback: no warning"
    );

    let inst = "{iname=\"VI_M\",intf=\"eth0\",vrid=\"61\"}";
    let m = scrape_until(&lab, "MASTER", Duration::from_secs(10), |m| {
        m.get(&format!("xlb_vrrp_state{inst}")) == Some(&2.0)
    });
    assert_eq!(value(&m, &format!("xlb_vrrp_priority{inst}")), 150.0);
    assert_eq!(
        value(&m, &format!("xlb_vrrp_become_master_total{inst}")),
        1.0
    );
    assert_eq!(
        value(&m, &format!("xlb_vrrp_release_master_total{inst}")),
        0.0
    );
    let sent = value(&m, &format!("xlb_vrrp_advert_sent_total{inst}"));
    assert!(sent >= 1.0, "the takeover's advert");
    std::thread::sleep(Duration::from_secs(2));
    let later = scrape(&lab);
    assert!(
        value(&later, &format!("xlb_vrrp_advert_sent_total{inst}")) >= sent + 1.0,
        "a MASTER advertises every second"
    );
    assert_eq!(
        value(&later, &format!("xlb_vrrp_advert_rcvd_total{inst}")),
        0.0
    );

    let took = format!("xlb_backend_last_check_duration_seconds{}", backend(80, 2));
    let m = scrape_until(&lab, "a completed check", Duration::from_secs(5), |m| {
        m.contains_key(&took)
    });
    assert!(
        value(&m, &took) > 0.0 && value(&m, &took) < 2.0,
        "{}",
        value(&m, &took)
    );

    // A real server's health endpoint stops: it is down, the other stays up.
    lab.kill("health1", libc::SIGKILL);
    let m = scrape_until(&lab, "rs1 down", Duration::from_secs(8), |m| {
        m.get(&format!("xlb_backend_up{}", backend(80, 1))) == Some(&0.0)
    });
    assert_eq!(value(&m, &format!("xlb_backend_up{}", backend(80, 2))), 1.0);
    // The echo service has no checks: up as in the data plane.
    assert_eq!(value(&m, &format!("xlb_backend_up{}", backend(7, 1))), 1.0);

    // Reloads: a good one is counted and applied, a bad file is refused.
    let ok = "xlb_config_reloads_total{result=\"ok\"}";
    let refused = "xlb_config_reloads_total{result=\"refused\"}";
    assert_eq!(value(&scrape(&lab), ok), 0.0);
    assert!(!scrape(&lab).contains_key("xlb_config_last_reload_success_timestamp_seconds"));
    write_config(&lab, &config(5));
    lab.signal("xlb", libc::SIGHUP);
    let m = scrape_until(&lab, "the reload", Duration::from_secs(10), |m| {
        m.get(ok) == Some(&1.0)
            && m.get(&format!("xlb_backend_weight{}", backend(80, 2))) == Some(&5.0)
    });
    let when = value(&m, "xlb_config_last_reload_success_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(when <= now && when > now - 60.0, "{when} vs {now}");
    println!("{}", get(&lab, "/metrics").1);
    write_config(&lab, "[global_defs]\nmetrics_listen = \"127.0.0.1\"\n");
    lab.signal("xlb", libc::SIGHUP);
    let m = scrape_until(&lab, "the refusal", Duration::from_secs(10), |m| {
        m.get(refused) == Some(&1.0)
    });
    assert_eq!(value(&m, ok), 1.0);
    assert!(
        lab.log("xlb").contains("global_defs.metrics_listen"),
        "the refusal names the key:\n{}",
        lab.log("xlb")
    );

    // A reload moving the endpoint to the director's own address: it follows, with the
    // warning that it is reachable from the network.
    let moved = "198.18.0.2:9472";
    write_config(
        &lab,
        &config(5).replace(&format!("\"{METRICS}\""), &format!("\"{moved}\"")),
    );
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log("xlb", "no authentication", Duration::from_secs(10));
    let (status, body) = get_at(&lab, moved, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.contains("xlb_config_reloads_total{result=\"ok\"} 2"),
        "{body}"
    );
    assert!(
        lab.within("dir", || TcpStream::connect(METRICS)).is_err(),
        "the old address is closed"
    );
}
