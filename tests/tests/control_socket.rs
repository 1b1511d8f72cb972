//! The control socket, with a real `xlb run` in a DR lab: who may use it (0600, root
//! only, `SO_PEERCRED`), what bad clients get (garbage, oversized lines, silence) while
//! the daemon keeps serving, one daemon per socket, and the commands on it: `xlb reload`
//! (its refusal with file:line:column, state unchanged), `xlb weight` changing the maps and
//! the traffic, `xlb drain --wait` returning when a live TCP connection closes, the next
//! reload undoing the edits, `xlb log level` changing what the daemon logs, and `xlb
//! status` live or falling back to the pinned maps.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    os::unix::{fs::MetadataExt, fs::PermissionsExt, net::UnixStream},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use integration_tests::netns::{
    EchoConn, LAB_VIP, Lab, dr_lab, http_get, lab_real, start_xlb, wait_for, write_config, xlb_bin,
};

/// Two services on the lab's VIP (already on the director's eth0: no VRRP), wrr over rs1
/// and rs2, weight 1 each: HTTP on 80 and the line echo on 7.
fn config() -> String {
    let mut s = String::new();
    for port in [80, 7] {
        s.push_str(&format!(
            r#"[[virtual_server]]
ip = "{LAB_VIP}"
port = {port}
protocol = "TCP"
lb_algo = "wrr"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{rs1}"
port = {port}
weight = 1

[[virtual_server.real_server]]
ip = "{rs2}"
port = {port}
weight = 1

"#,
            rs1 = lab_real(1),
            rs2 = lab_real(2)
        ));
    }
    s
}

/// Removes the daemon's socket if the test ends with the daemon killed (the lab kills
/// with SIGKILL, which leaves it).
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A DR lab running `xlb run` (label "xlb") with [`config`]; its socket.
fn running(tag: &str) -> (Lab, PathBuf, SocketFile) {
    let mut lab = dr_lab(tag, 2);
    let cfg = write_config(&lab, &config());
    let socket = xlb::daemon::default_socket(&lab.pins.0);
    let guard = SocketFile(socket.clone());
    start_xlb(&mut lab, "xlb", &cfg);
    (lab, socket, guard)
}

/// `xlb ARGS --pin-path PINS` from the host namespace (the socket is a file: any
/// namespace reaches it).
fn xlb(lab: &Lab, args: &[&str]) -> Output {
    Command::new(xlb_bin())
        .args(args)
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .output()
        .expect("running xlb")
}

fn ok(lab: &Lab, args: &[&str]) -> String {
    let out = xlb(lab, args);
    assert!(
        out.status.success(),
        "xlb {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `xlb ARGS`, which must fail (1, or 2 for a usage error); returns its stderr.
fn fails(lab: &Lab, args: &[&str]) -> String {
    let out = xlb(lab, args);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "xlb {args:?} must fail: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_live_unavailable(lab: &Lab) -> String {
    status_json(lab)["live_unavailable"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn status_json(lab: &Lab) -> serde_json::Value {
    serde_json::from_str(&ok(lab, &["status", "--json"])).expect("xlb status --json")
}

/// The weight of real server `n` of the service on `port`, as the maps hold it.
fn map_weight(s: &serde_json::Value, port: u16, n: usize) -> u64 {
    let svc = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["port"] == port)
        .unwrap_or_else(|| panic!("no service on port {port}: {s}"));
    svc["real_servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ip"] == lab_real(n))
        .unwrap_or_else(|| panic!("no real server {n}: {s}"))["weight"]
        .as_u64()
        .unwrap()
}

/// Which real servers answered `count` HTTP requests through the VIP, in order.
fn answering(lab: &Lab, count: usize) -> Vec<String> {
    let vip: SocketAddr = format!("{LAB_VIP}:80").parse().unwrap();
    lab.within("client", || {
        (0..count)
            .map(|i| {
                let body = http_get(vip, "/").unwrap_or_else(|e| panic!("request {i}: {e}"));
                body.split_whitespace().next().unwrap_or("").to_string()
            })
            .collect()
    })
}

/// One request line on a raw connection; the reply line, parsed.
fn exchange(conn: &mut BufReader<UnixStream>, line: &[u8]) -> serde_json::Value {
    conn.get_mut().write_all(line).expect("writing a request");
    let mut reply = String::new();
    conn.read_line(&mut reply).expect("reading a reply");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply {reply:?}: {e}"))
}

fn raw(socket: &Path) -> BufReader<UnixStream> {
    let s = UnixStream::connect(socket).expect("connecting to the control socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

#[test]
fn the_socket_is_root_s_bad_clients_get_errors_and_the_daemon_keeps_serving() {
    let (mut lab, socket, _guard) = running("ctls");
    let pid = lab.pid("xlb");

    // 0600, root's.
    let meta = std::fs::metadata(&socket).expect("the socket exists");
    println!("socket {}: mode {:o}", socket.display(), meta.mode());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), 0);

    // Another user cannot connect at all...
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(xlb_bin())
            .args(args)
            .arg("--socket")
            .arg(&socket)
            .output()
            .expect("running setpriv")
    };
    let out = as_nobody(&["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("uid 65534, socket 0600: {stderr}");
    assert!(!out.status.success());
    assert!(
        stderr.contains("permission denied: the control socket is root's"),
        "{stderr}"
    );
    // ...and with the file opened to everyone by mistake, the daemon refuses by the peer's
    // credentials, and says so in its log.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&["reload"]);
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("uid 65534, socket 0666: {stderr}");
    assert!(!out.status.success());
    assert!(
        stderr.contains("permission denied: uid 65534 may not use the control socket"),
        "{stderr}"
    );
    lab.wait_log(
        "xlb",
        "control socket: refused a client that is not root",
        Duration::from_secs(5),
    );
    assert!(
        !lab.log("xlb").contains("config reloaded"),
        "the refused reload did nothing"
    );

    // A client that connects and says nothing does not hold up anyone.
    let silent = UnixStream::connect(&socket).unwrap();
    // Garbage: an error reply, and the same connection goes on.
    let mut c = raw(&socket);
    let r = exchange(&mut c, b"hello\n");
    println!("garbage: {r}");
    assert_eq!(r["result"], "error");
    assert!(
        r["message"].as_str().unwrap().starts_with("not a request"),
        "{r}"
    );
    let r = exchange(&mut c, b"{\"version\":7,\"command\":\"reload\"}\n");
    assert_eq!(r["result"], "error");
    assert!(r["message"].as_str().unwrap().contains("version 7"), "{r}");
    let weight = format!(
        "{{\"version\":1,\"command\":\"weight\",\"service\":\"{LAB_VIP}:80/tcp\",\
         \"real\":\"{}:80\",\"weight\":0}}\n",
        lab_real(2)
    );
    let r = exchange(&mut c, weight.as_bytes());
    println!("> {weight}< {r}");
    assert_eq!(r["result"], "edited", "{r}");
    assert_eq!(r["pin_path"], lab.pins.0.to_str().unwrap(), "{r}");
    let r = exchange(&mut c, b"{\"version\":1,\"command\":\"reload\"}\n");
    assert_eq!(r["result"], "done", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .ends_with("; 1 runtime edit dropped (the file is the truth)"),
        "{r}"
    );
    let r = exchange(&mut c, b"{\"version\":1,\"command\":\"status\"}\n");
    assert_eq!(r["result"], "status", "{r}");
    assert_eq!(r["pid"], pid, "{r}");
    // An oversized line: an error reply, then the connection ends.
    let mut c = raw(&socket);
    let mut big = vec![b'x'; 70 * 1024];
    big.push(b'\n');
    let r = exchange(&mut c, &big);
    println!("oversized: {r}");
    assert_eq!(r["message"], "request longer than 65536 bytes", "{r}");
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    // The daemon still serves, the silent client still connected.
    let live = ok(&lab, &["status"]);
    assert!(
        live.starts_with(&format!("daemon pid {pid}, up ")),
        "{live}"
    );
    drop(silent);

    // A second daemon on the same socket (another pin path) is refused before it changes
    // anything; the first still answers.
    let cfg = lab.tmp.join("xlb.toml");
    let second_pins = lab.pins.0.join("second");
    let started = Instant::now();
    let out = lab
        .command("dir", &xlb_bin())
        .arg("run")
        .arg("-c")
        .arg(&cfg)
        .arg("--pin-path")
        .arg(&second_pins)
        .arg("--socket")
        .arg(&socket)
        .stdin(Stdio::null())
        .output()
        .expect("second xlb run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!(
        "second daemon: {} after {:?}: {stderr}",
        out.status,
        started.elapsed()
    );
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "control socket {}: a daemon already answers there",
            socket.display()
        )),
        "{stderr}"
    );
    assert!(!second_pins.exists(), "the refused daemon pinned nothing");
    assert!(ok(&lab, &["status"]).starts_with(&format!("daemon pid {pid}")));

    // The daemon stops: its socket goes; the commands say no daemon answers, and status
    // falls back to the maps, which still forward.
    lab.kill("xlb", libc::SIGTERM);
    assert!(!socket.exists(), "the socket is removed on exit");
    let stderr = fails(&lab, &["reload"]);
    assert!(
        stderr.contains(&format!("no xlb daemon answers on {}", socket.display())),
        "{stderr}"
    );
    let fallback = ok(&lab, &["status"]);
    println!("{fallback}");
    assert!(
        fallback.contains(&format!("no xlb daemon answers on {}", socket.display())),
        "{fallback}"
    );
    assert!(
        fallback.ends_with(": the pinned maps only, nothing live\n"),
        "{fallback}"
    );
    assert!(
        json_live_unavailable(&lab).contains("no xlb daemon answers"),
        "--json says why too"
    );
    assert!(
        fallback.contains(&format!("TCP {LAB_VIP}:80 wrr")),
        "{fallback}"
    );
    let json = status_json(&lab);
    assert!(json["live"].is_null(), "{json}");

    // A socket left by a daemon killed with SIGKILL is stale: the next daemon replaces it.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    start_xlb(&mut lab, "xlb2", &cfg);
    assert!(lab.log("xlb2").contains("removing a stale control socket"));
    let pid2 = lab.pid("xlb2");
    assert!(ok(&lab, &["status"]).starts_with(&format!("daemon pid {pid2}")));
    lab.kill("xlb2", libc::SIGTERM);
}

#[test]
fn weight_edits_steer_traffic_and_a_reload_refused_or_not_says_what_it_did() {
    let (mut lab, _socket, _guard) = running("ctlw");
    let vs = format!("{LAB_VIP}:80");
    let (rs1, rs2) = (format!("{}:80", lab_real(1)), format!("{}:80", lab_real(2)));
    let before = answering(&lab, 10);
    assert!(
        before.contains(&"rs1".to_string()) && before.contains(&"rs2".to_string()),
        "both serve at weight 1: {before:?}"
    );

    // weight 0 on rs2: the maps say so and new flows go to rs1 only.
    let said = ok(&lab, &["weight", &vs, &rs2, "0"]);
    println!("xlb weight: {said}");
    assert!(
        said.starts_with(&format!(
            "{vs}/tcp -> {rs2}: weight 0 (file: 1, set 0 s ago by uid 0"
        )),
        "{said}"
    );
    assert_eq!(map_weight(&status_json(&lab), 80, 2), 0);
    assert_eq!(
        map_weight(&status_json(&lab), 7, 2),
        1,
        "the other service is untouched"
    );
    let after = answering(&lab, 10);
    assert!(after.iter().all(|n| n == "rs1"), "{after:?}");
    let log = lab.log("xlb");
    assert!(
        log.contains(&format!("runtime edit: {vs}/tcp -> {rs2}: weight 0")),
        "the edit is logged with who made it:\n{log}"
    );
    let shown = ok(&lab, &["status"]);
    println!("{shown}");
    assert!(
        shown.contains("runtime edits (differ from the file; the next reload undoes them):"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("  {vs}/tcp -> {rs2}: weight 0 (file: 1, set ")),
        "{shown}"
    );

    // Unknown names: an error listing what there is.
    let e = fails(&lab, &["weight", &vs, "198.18.0.99:80", "1"]);
    println!("unknown real server: {e}");
    assert!(
        e.contains(&format!(
            "{vs}/tcp has no real server 198.18.0.99:80; its real servers: {rs1}, {rs2}"
        )),
        "{e}"
    );
    let e = fails(&lab, &["drain", &format!("{LAB_VIP}:81"), &rs1]);
    println!("unknown service: {e}");
    assert!(
        e.contains(&format!("configured: {LAB_VIP}:80/tcp, {LAB_VIP}:7/tcp")),
        "{e}"
    );
    let e = fails(&lab, &["weight", LAB_VIP, &rs1, "1"]);
    assert!(e.contains("not IP:PORT[/tcp|udp]"), "{e}");

    // A file that does not load: refused with file:line:column, nothing changes, the
    // edit included.
    let cfg = lab.tmp.join("xlb.toml");
    let good = std::fs::read_to_string(&cfg).unwrap();
    let bad = good.replacen("lb_algo = \"wrr\"", "lb_algo = \"fastest\"", 1);
    std::fs::write(&cfg, &bad).unwrap();
    let line = bad.lines().position(|l| l.contains("fastest")).unwrap() + 1;
    let e = fails(&lab, &["reload"]);
    println!("bad reload: {e}");
    assert!(
        e.contains(&format!("{}:{line}:", cfg.display())),
        "the refusal names file:line:column: {e}"
    );
    assert!(e.contains("runtime edits stay"), "{e}");
    let s = status_json(&lab);
    assert_eq!(
        map_weight(&s, 80, 2),
        0,
        "the edit stays after a refused reload"
    );
    assert_eq!(s["live"]["edits"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["services"][0]["scheduler"], "wrr");
    // A file that loads but that the data plane cannot take (a real server off-link): rolled
    // back, the edit restored with the running config.
    let off_link = good.replacen(
        &format!("ip = \"{}\"", lab_real(1)),
        "ip = \"198.19.7.7\"",
        1,
    );
    std::fs::write(&cfg, &off_link).unwrap();
    let e = fails(&lab, &["reload"]);
    println!("off-link reload: {e}");
    assert!(
        e.contains("reload failed, the running config and runtime edits were restored"),
        "{e}"
    );
    let s = status_json(&lab);
    assert_eq!(
        map_weight(&s, 80, 2),
        0,
        "the edit is back after a rolled-back reload"
    );
    assert_eq!(s["live"]["edits"].as_array().unwrap().len(), 1, "{s}");
    assert!(
        s["services"][0]["real_servers"][0]["ip"] == lab_real(1)
            || s["services"][1]["real_servers"][0]["ip"] == lab_real(1),
        "the running real servers stay: {s}"
    );

    // enable undoes it; the next reload of a good file drops the edits and says how many.
    let said = ok(&lab, &["enable", &vs, &rs2]);
    println!("xlb enable: {said}");
    assert!(said.contains("enabled"), "{said}");
    assert_eq!(map_weight(&status_json(&lab), 80, 2), 1);
    ok(&lab, &["weight", &vs, &rs2, "0"]);
    let said = ok(
        &lab,
        &[
            "disable",
            &format!("{LAB_VIP}:7/tcp"),
            &format!("{}:7", lab_real(1)),
        ],
    );
    println!("xlb disable: {said}");
    let shown = ok(&lab, &["status"]);
    println!("{shown}");
    assert!(
        shown.contains(&format!(
            "  {LAB_VIP}:7/tcp -> {}:7: disabled 0 s ago by uid 0",
            lab_real(1)
        )),
        "{shown}"
    );
    let s = status_json(&lab);
    println!("live: {}", s["live"]);
    let echo_rs1 = &s["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["port"] == 7)
        .unwrap()["real_servers"][0];
    assert_eq!(echo_rs1["alive"], false, "disabled: out of the table: {s}");
    // `reload --plan` says what the file would change and changes nothing.
    let heavier = good.replacen("weight = 1", "weight = 3", 1);
    std::fs::write(&cfg, &heavier).unwrap();
    let plan = ok(&lab, &["reload", "--plan"]);
    println!("xlb reload --plan:\n{plan}");
    assert!(
        plan.contains(&format!("~ {}:80 weight 1 -> 3", lab_real(1))),
        "{plan}"
    );
    let plan: serde_json::Value =
        serde_json::from_str(&ok(&lab, &["reload", "--plan", "--json"])).unwrap();
    assert!(
        plan["services"].as_array().is_some_and(|s| s.len() == 1),
        "{plan}"
    );
    let s = status_json(&lab);
    assert_eq!(map_weight(&s, 80, 1), 1, "a plan changes nothing: {s}");
    assert_eq!(s["live"]["edits"].as_array().unwrap().len(), 2, "{s}");
    std::fs::write(&cfg, &bad).unwrap();
    let e = fails(&lab, &["reload", "--plan"]);
    assert!(e.contains("a reload would be refused"), "{e}");
    assert!(e.contains(&format!("{}:{line}:", cfg.display())), "{e}");

    std::fs::write(&cfg, &good).unwrap();
    let said = ok(&lab, &["reload"]);
    println!("reload: {said}");
    assert!(
        said.contains("2 runtime edits dropped (the file is the truth)"),
        "{said}"
    );
    let s = status_json(&lab);
    assert_eq!(map_weight(&s, 80, 2), 1, "the reload undid the edit");
    assert!(s["live"]["edits"].as_array().unwrap().is_empty(), "{s}");
    lab.wait_log("xlb", "runtime_edits_dropped=2", Duration::from_secs(5));
    let again = answering(&lab, 10);
    assert!(again.contains(&"rs2".to_string()), "{again:?}");
    lab.kill("xlb", libc::SIGTERM);
}

#[test]
fn drain_wait_returns_when_the_last_connection_closes_and_log_level_takes_effect() {
    let (mut lab, _socket, _guard) = running("ctld");
    let vip: SocketAddr = format!("{LAB_VIP}:7").parse().unwrap();
    let netns = lab.netns_file("client");
    let (to_conn, conn_rx) = mpsc::channel::<&'static str>();
    let (from_conn, answers) = mpsc::channel::<String>();
    // A long-lived echo connection, in a thread inside the client namespace.
    let holder = std::thread::spawn(move || {
        integration_tests::netns::enter(&netns).unwrap();
        let mut c = EchoConn::connect(vip).expect("echo connection");
        while let Ok(line) = conn_rx.recv() {
            if line == "close" {
                break;
            }
            from_conn.send(c.ask(line).expect("echo")).unwrap();
        }
    });
    to_conn.send("hello").unwrap();
    let first = answers.recv_timeout(Duration::from_secs(10)).unwrap();
    let server = first.split_whitespace().next().unwrap().to_string();
    let n: usize = server.trim_start_matches("rs").parse().unwrap();
    let other = if n == 1 { "rs2" } else { "rs1" };
    let real = format!("{}:7", lab_real(n));
    println!("echo connection on {server} ({real})");
    // The flow is established in the connection table before draining.
    wait_for(Duration::from_secs(5), "the flow tracked", || {
        let conns = ok(&lab, &["conns"]);
        (conns.contains("ESTABLISHED").then_some(()), conns)
    });

    let mut drain = Command::new(xlb_bin())
        .args([
            "drain",
            &vip.to_string(),
            &real,
            "--wait",
            "--timeout",
            "60",
        ])
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xlb drain --wait");
    let stdout = drain.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(l);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen
        .iter()
        .any(|l: &String| l.ends_with("1 active, 0 inactive connections"))
    {
        assert!(
            Instant::now() < deadline,
            "drain did not report 1 active: {seen:?}"
        );
        if let Ok(l) = lines.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    println!("drain says: {seen:?}");
    assert!(
        seen[0].contains("weight 0 (file: 1, drained 0 s ago by uid 0"),
        "{seen:?}"
    );
    // Draining: the existing flow stays where it was, new ones go to the other server.
    to_conn.send("still there").unwrap();
    let again = answers.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(again.starts_with(&format!("{server} ")), "{again}");
    let fresh: Vec<String> = lab.within("client", || {
        (0..4)
            .map(|_| {
                let mut c = EchoConn::connect(vip).unwrap();
                c.ask("new").unwrap()
            })
            .collect()
    });
    assert!(
        fresh.iter().all(|a| a.starts_with(&format!("{other} "))),
        "{fresh:?}"
    );
    assert!(
        drain.try_wait().unwrap().is_none(),
        "drain --wait returned with a connection still open"
    );

    // The connection closes: drain --wait returns, successfully.
    to_conn.send("close").unwrap();
    holder.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = drain.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "drain --wait did not return after the close"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    while let Ok(l) = lines.recv_timeout(Duration::from_millis(500)) {
        seen.push(l);
    }
    println!("drain said: {seen:?}");
    assert!(status.success(), "{status}");
    assert!(
        seen.last()
            .unwrap()
            .contains("drained, no active connection left"),
        "{seen:?}"
    );

    // Log level: no debug line before, debug lines after.
    ok(&lab, &["status"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !lab.log("xlb").contains("DEBUG"),
        "debug lines at the default level"
    );
    let said = ok(&lab, &["log", "level", "debug"]);
    println!("log level: {said}");
    assert!(said.starts_with("log filter: debug (was "), "{said}");
    ok(&lab, &["status"]);
    lab.wait_log("xlb", "control reply", Duration::from_secs(5));
    assert!(lab.log("xlb").contains("DEBUG"));
    let e = fails(&lab, &["log", "level", "xlb=bogus"]);
    assert!(e.contains("is not a log filter"), "{e}");
    ok(&lab, &["log", "level", "info"]);
    let said = ok(&lab, &["log", "reopen"]);
    assert_eq!(said.trim(), "log reopened");
    lab.kill("xlb", libc::SIGTERM);
}
