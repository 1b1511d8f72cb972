//! fwmark services and SMTP_CHECK hosts, end to end in the DR lab.
//!
//! - A fwmark service over ports 80 (HTTP) and 7 (echo) of the VIP with persistence: each
//!   client's connections to both ports land on one real server (one persistence table
//!   for the service), and `xlb status` shows one service with one set of counters.
//! - `smtp_check` with `host` entries, against a real SMTP dialogue in the real servers'
//!   namespaces: one host failing takes the real server down (the real server itself
//!   and every host must pass, as keepalived 2's checkers of one real server must), and
//!   it comes back when that host answers.

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
    time::{Duration, Instant},
};

use integration_tests::netns::{
    LAB_VIP, LAB_VIP6, Lab, dr_lab, lab_real, lab_real6, start_xlb, write_config, xlb_status,
    xlb_status_json,
};

/// Extra client addresses (the lab's client has 198.18.0.1 on the /24).
fn client_addr(i: usize) -> IpAddr {
    format!("198.18.0.{}", 41 + i).parse().unwrap()
}

fn vip(port: u16) -> SocketAddr {
    format!("{LAB_VIP}:{port}").parse().unwrap()
}

/// A connection from `from` to `to`, as a std stream (bound before connecting).
fn connect_from(from: IpAddr, to: SocketAddr) -> std::net::TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = if from.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .unwrap();
        s.bind(SocketAddr::new(from, 0)).unwrap();
        let stream = tokio::time::timeout(Duration::from_secs(3), s.connect(to))
            .await
            .unwrap_or_else(|_| panic!("connect {from} -> {to}: timeout"))
            .unwrap_or_else(|e| panic!("connect {from} -> {to}: {e}"));
        let std = stream.into_std().unwrap();
        std.set_nonblocking(false).unwrap();
        std.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        std
    })
}

/// The VIP of `from`'s family, port `port`.
fn vip_for(from: IpAddr, port: u16) -> SocketAddr {
    if from.is_ipv4() {
        vip(port)
    } else {
        format!("[{LAB_VIP6}]:{port}").parse().unwrap()
    }
}

/// The real server that answers an HTTP GET on port 80 from `from`.
fn http_server_from(from: IpAddr) -> String {
    use std::io::{Read, Write};
    let mut s = connect_from(from, vip_for(from, 80));
    write!(s, "GET / HTTP/1.0\r\nHost: {LAB_VIP}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    body.split(' ').next().unwrap_or_default().to_string()
}

/// The real server that answers a line on the echo port 7 from `from`.
fn echo_server_from(from: IpAddr) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut s = connect_from(from, vip_for(from, 7));
    writeln!(s, "hello").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.split(' ').next().unwrap_or_default().to_string()
}

#[test]
fn a_fwmark_service_keeps_a_client_on_one_real_server_across_its_ports() {
    let mut lab = dr_lab("fwmark", 3);
    let clients = 6;
    let mut script = String::from("true");
    for i in 0..clients {
        script.push_str(&format!(" && ip addr add {}/24 dev eth0", client_addr(i)));
    }
    lab.sh("client", &script);
    let mut cfg = format!(
        "[[virtual_server]]\nfwmark = 1\nmatch = [\"tcp:{LAB_VIP}:80\", \"tcp:{LAB_VIP}:7\"]\n\
         lb_algo = \"rr\"\npersistence_timeout = 300\ninterface = \"eth0\"\n"
    );
    for n in 1..=3 {
        cfg.push_str(&format!(
            "[[virtual_server.real_server]]\nip = \"{}\"\n",
            lab_real(n)
        ));
    }
    let path = write_config(&lab, &cfg);
    start_xlb(&mut lab, "xlb", &path);

    // Port 80 in one order, then port 7 in the other: two services of their own (two
    // persistence tables, two round-robin cursors) would not agree.
    let web: Vec<String> = (0..clients)
        .map(|i| lab.within("client", || http_server_from(client_addr(i))))
        .collect();
    let mut echo = vec![String::new(); clients];
    for i in (0..clients).rev() {
        echo[i] = lab.within("client", || echo_server_from(client_addr(i)));
    }
    println!("port 80: {web:?}\nport 7:  {echo:?}");
    assert_eq!(
        web, echo,
        "each client's connections to both ports go to one real server"
    );
    let mut distinct = web.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() >= 2,
        "the clients were spread over the real servers: {web:?}"
    );
    // A second round on port 7 stays where each client is.
    for (i, want) in web.iter().enumerate() {
        assert_eq!(
            &lab.within("client", || echo_server_from(client_addr(i))),
            want
        );
    }

    // One service, one set of counters, under both keys.
    let s = xlb_status_json(&lab.pins.0);
    let services = s["services"].as_array().unwrap();
    assert_eq!(services.len(), 1, "one service row: {s}");
    let svc = &services[0];
    assert_eq!(svc["port"], 7, "listed under its lowest key");
    assert_eq!(
        svc["also"],
        serde_json::json!([format!("TCP {LAB_VIP}:80")])
    );
    assert_eq!(svc["persistence_timeout"], 300);
    let connections = 3 * clients as u64;
    assert_eq!(svc["new_flows"], connections, "{svc}");
    let per_real: u64 = svc["real_servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["new_flows"].as_u64().unwrap())
        .sum();
    assert_eq!(per_real, connections, "{svc}");
    let text = xlb_status(&lab.pins.0, &[]);
    println!("{text}");
    assert!(text.contains(&format!("also TCP {LAB_VIP}:80")), "{text}");

    // A restarted daemon adopts the service (one id under both keys, one table region):
    // the clients stay where they are, on either port.
    lab.kill("xlb", libc::SIGTERM);
    start_xlb(&mut lab, "xlb2", &path);
    for (i, want) in web.iter().enumerate() {
        assert_eq!(
            &lab.within("client", || echo_server_from(client_addr(i))),
            want,
            "after a restart"
        );
        assert_eq!(
            &lab.within("client", || http_server_from(client_addr(i))),
            want,
            "after a restart"
        );
    }

    // A reload that drops port 7 from the match list: port 7 is no longer forwarded (the
    // director's own stack refuses it), port 80 keeps its clients.
    let cfg80 = cfg.replace(&format!(", \"tcp:{LAB_VIP}:7\""), "");
    assert_ne!(cfg80, cfg);
    std::fs::write(&path, &cfg80).unwrap();
    lab.signal("xlb2", libc::SIGHUP);
    lab.wait_log("xlb2", "config reloaded", Duration::from_secs(10));
    let s = xlb_status_json(&lab.pins.0);
    assert_eq!(s["services"][0]["port"], 80, "{s}");
    assert_eq!(s["services"][0]["also"], serde_json::json!([]), "{s}");
    let refused = lab.within("client", || {
        std::net::TcpStream::connect_timeout(&vip(7), Duration::from_secs(2))
    });
    assert!(refused.is_err(), "port 7 still forwarded after the reload");
    for (i, want) in web.iter().enumerate() {
        assert_eq!(
            &lab.within("client", || http_server_from(client_addr(i))),
            want,
            "after the reload"
        );
    }
}

#[test]
fn an_ipv6_fwmark_service_keeps_a_client_on_one_real_server_across_its_ports() {
    let mut lab = dr_lab("fwmark6", 3);
    let clients = 6;
    let client6 = |i: usize| -> IpAddr { format!("2001:db8::{:x}", 0x41 + i).parse().unwrap() };
    let mut script = String::from("true");
    for i in 0..clients {
        script.push_str(&format!(" && ip addr add {}/64 dev eth0 nodad", client6(i)));
    }
    lab.sh("client", &script);
    let mut cfg = format!(
        "[[virtual_server]]\nfwmark = 6\nmatch = [\"tcp:[{LAB_VIP6}]:80\", \"[{LAB_VIP6}]:7\"]\n\
         lb_algo = \"rr\"\npersistence_timeout = 300\ninterface = \"eth0\"\n"
    );
    for n in 1..=3 {
        cfg.push_str(&format!(
            "[[virtual_server.real_server]]\nip = \"{}\"\n",
            lab_real6(n)
        ));
    }
    let path = write_config(&lab, &cfg);
    start_xlb(&mut lab, "xlb", &path);
    let web: Vec<String> = (0..clients)
        .map(|i| lab.within("client", || http_server_from(client6(i))))
        .collect();
    let mut echo = vec![String::new(); clients];
    for i in (0..clients).rev() {
        echo[i] = lab.within("client", || echo_server_from(client6(i)));
    }
    println!("port 80: {web:?}\nport 7:  {echo:?}");
    assert_eq!(
        web, echo,
        "each client's connections to both ports go to one real server"
    );
    let s = xlb_status_json(&lab.pins.0);
    assert_eq!(s["services"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["services"][0]["new_flows"], 2 * clients as u64, "{s}");
}

/// A minimal SMTP server on port 25 in namespace `ns` (greets 220, answers HELO with
/// 250 and QUIT with 221), logging what it is told.
fn start_smtp(lab: &mut Lab, ns: &str) {
    let script = format!(
        r#"
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 25))
s.listen(16)
print("listening", flush=True)
def serve(c):
    f = c.makefile("rwb")
    f.write(b"220 {ns} ESMTP\r\n"); f.flush()
    for line in f:
        print(line.decode().strip(), flush=True)
        word = line.split(b" ")[0].strip().upper()
        if word == b"HELO":
            f.write(b"250 {ns}\r\n")
        elif word == b"QUIT":
            f.write(b"221 bye\r\n"); f.flush(); break
        else:
            f.write(b"500 what\r\n")
        f.flush()
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#
    );
    let mut cmd = lab.command(ns, Path::new("python3"));
    cmd.args(["-c", &script]);
    let label = format!("smtp-{ns}");
    lab.spawn(&label, cmd);
    lab.wait_log(&label, "listening", Duration::from_secs(10));
}

/// `alive` of real server `n` in the lab service, per `xlb status --json`.
fn alive(lab: &Lab, n: usize) -> Option<bool> {
    let s = xlb_status_json(&lab.pins.0);
    s["services"][0]["real_servers"]
        .as_array()?
        .iter()
        .find(|r| r["ip"] == lab_real(n))
        .and_then(|r| r["alive"].as_bool())
}

fn wait_alive(lab: &Lab, n: usize, want: bool, within: Duration) {
    let start = Instant::now();
    while alive(lab, n) != Some(want) {
        assert!(
            start.elapsed() < within,
            "rs{n} not alive={want} within {within:?}: {}\n{}",
            xlb_status(&lab.pins.0, &[]),
            lab.log("xlb")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn smtp_check_hosts_must_all_pass() {
    let mut lab = dr_lab("fwsmtp", 3);
    start_smtp(&mut lab, "rs1");
    start_smtp(&mut lab, "rs2");
    // rs1 checks rs1 and rs2 (both speak SMTP); rs2 checks rs2 and rs3 (rs3 does not,
    // yet); rs3 lists only rs1, but keepalived 2 checks the real server itself too, and
    // rs3 does not speak SMTP yet.
    let check = |a: usize, b: usize| {
        format!(
            "smtp_check = {{ helo_name = \"xlb-fwmark-lab\", connect_timeout = 1, retry = 0, \
             delay_loop = 1, host = [{{ connect_ip = \"{}\" }}, {{ connect_ip = \"{}\", \
             connect_port = 25 }}] }}\n",
            lab_real(a),
            lab_real(b)
        )
    };
    let mut cfg = format!(
        "[[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 80\nlb_algo = \"rr\"\n\
         interface = \"eth0\"\ndelay_loop = 1\n"
    );
    let only_rs1 = format!(
        "smtp_check = {{ helo_name = \"xlb-fwmark-lab\", connect_timeout = 1, retry = 0, \
         delay_loop = 1, host = [{{ connect_ip = \"{}\" }}] }}\n",
        lab_real(1)
    );
    for (n, c) in [(1, check(1, 2)), (2, check(2, 3)), (3, only_rs1)] {
        cfg.push_str(&format!(
            "[[virtual_server.real_server]]\nip = \"{}\"\nport = 80\n{c}",
            lab_real(n)
        ));
    }
    let path = write_config(&lab, &cfg);
    start_xlb(&mut lab, "xlb", &path);

    wait_alive(&lab, 1, true, Duration::from_secs(5));
    wait_alive(&lab, 2, false, Duration::from_secs(5));
    wait_alive(&lab, 3, false, Duration::from_secs(5));
    // rs2's own SMTP server is checked (and passes): only the other host takes it down.
    let start = Instant::now();
    while !lab.log("smtp-rs2").contains("HELO xlb-fwmark-lab") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{}",
            lab.log("smtp-rs2")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(alive(&lab, 2), Some(false));
    assert!(
        lab.log("xlb").contains(&format!("{}:25", lab_real(3))),
        "the failing host is named in the log:\n{}",
        lab.log("xlb")
    );

    // The failing host answers: rs2 is back, and rs3 (itself and rs1 pass).
    start_smtp(&mut lab, "rs3");
    wait_alive(&lab, 2, true, Duration::from_secs(5));
    wait_alive(&lab, 3, true, Duration::from_secs(5));
    // One host of rs1 stops: rs1 goes down though its other host passes.
    lab.kill("smtp-rs2", libc::SIGKILL);
    wait_alive(&lab, 1, false, Duration::from_secs(5));
    wait_alive(&lab, 2, false, Duration::from_secs(5));
}
