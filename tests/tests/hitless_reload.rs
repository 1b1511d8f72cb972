//! Hitless reload under traffic: two xlb directors in one VRRP group, real servers with
//! real HTTP and line-echo servers, a client loop of short requests and long-lived
//! streams running, while the master's file is edited and SIGHUP sent for a priority
//! change, a VIP added, the VIP removed again, a real server added and a weight changed.
//! No request may fail, no stream be cut or moved, no VRRP transition happen on either
//! director; the adverts on the wire carry the new priority; the added VIP answers and
//! the removed one is gone from the interface.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use integration_tests::netns::{
    EchoConn, LAB_VIP, Lab, enter, ha_lab, has_address, http_get, lab_real, start_xlb_in, wait_for,
    xlb_bin,
};

/// The VIP the reload adds and removes.
const VIP2: &str = "198.18.0.101";

fn vip(port: u16) -> SocketAddr {
    format!("{LAB_VIP}:{port}").parse().unwrap()
}

/// A director's config. `vips`: the instance's VIPs; `reals`: (real server number,
/// weight) of the HTTP service (`wrr`, so the client loop reaches every server); the
/// echo service (`mh` by client port) stays on rs1 and rs2 throughout.
fn config(priority: u8, vips: &[&str], reals: &[(usize, u32)]) -> String {
    let vips: Vec<String> = vips.iter().map(|v| format!("\"{v}/32\"")).collect();
    let mut t = format!(
        r#"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 61
priority = {priority}
advert_int = 1
virtual_ipaddress = [{}]

[[virtual_server]]
ip = "{LAB_VIP}"
port = 80
lb_algo = "wrr"
"#,
        vips.join(", ")
    );
    for (n, w) in reals {
        t.push_str(&format!(
            "[[virtual_server.real_server]]\nip = \"{}\"\nport = 80\nweight = {w}\n",
            lab_real(*n)
        ));
    }
    t.push_str(&format!(
        "\n[[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 7\nlb_algo = \"mh\"\nmh_port = true\n"
    ));
    for n in [1, 2] {
        t.push_str(&format!(
            "[[virtual_server.real_server]]\nip = \"{}\"\nport = 7\n",
            lab_real(n)
        ));
    }
    t
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// Edits dir1's file, sends SIGHUP and waits until the reload is done.
fn reload(lab: &mut Lab, text: &str) {
    let path = lab.tmp.join("dir1.toml");
    let before = count(&lab.log("xlb1"), "config reloaded");
    std::fs::write(&path, text).unwrap();
    lab.signal("xlb1", libc::SIGHUP);
    wait_for(Duration::from_secs(10), "the reload", || {
        let log = lab.log("xlb1");
        ((count(&log, "config reloaded") > before).then_some(()), log)
    });
}

/// The client's traffic: one thread of short HTTP requests, one of long-lived echo
/// streams, both in the client namespace until `stop`.
struct Traffic {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    /// Which real server answered each HTTP request.
    servers: Arc<Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Traffic {
    fn start(lab: &Lab, streams: usize) -> Self {
        let t = Self {
            stop: Arc::default(),
            ok: Arc::default(),
            failures: Arc::default(),
            servers: Arc::default(),
            threads: Vec::new(),
        };
        let (stop, ok, failures, servers) = (
            t.stop.clone(),
            t.ok.clone(),
            t.failures.clone(),
            t.servers.clone(),
        );
        let ns = lab.netns_file("client");
        let requests = std::thread::spawn(move || {
            enter(&ns).expect("setns");
            while !stop.load(Ordering::Relaxed) {
                match http_get(vip(80), "/") {
                    Ok(body) if body.contains(LAB_VIP) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        let name = body.split_whitespace().next().unwrap_or("").to_string();
                        servers.lock().unwrap().push(name);
                    }
                    Ok(body) => failures
                        .lock()
                        .unwrap()
                        .push(format!("bad answer {body:?}")),
                    Err(e) => failures.lock().unwrap().push(format!("request: {e}")),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let (stop, failures) = (t.stop.clone(), t.failures.clone());
        let ns = lab.netns_file("client");
        let echo = std::thread::spawn(move || {
            enter(&ns).expect("setns");
            let mut conns: Vec<(EchoConn, String)> = (0..streams)
                .map(|i| {
                    let mut c = EchoConn::connect(vip(7)).expect("stream");
                    let first = c.ask(&format!("hello {i}")).expect("first line");
                    let server = first.split_whitespace().next().unwrap().to_string();
                    (c, server)
                })
                .collect();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (i, (c, server)) in conns.iter_mut().enumerate() {
                    match c.ask(&format!("line {n} on stream {i}")) {
                        Ok(answer) if answer.starts_with(&format!("{server} ")) => {}
                        Ok(answer) => failures
                            .lock()
                            .unwrap()
                            .push(format!("stream {i} moved off {server}: {answer}")),
                        Err(e) => failures
                            .lock()
                            .unwrap()
                            .push(format!("stream {i} on {server} cut: {e}")),
                    }
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self {
            threads: vec![requests, echo],
            ..t
        }
    }

    fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }

    fn served_by(&self, name: &str) -> bool {
        self.servers.lock().unwrap().iter().any(|s| s == name)
    }

    fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("traffic thread");
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failures.lock().unwrap().clone(),
        )
    }
}

/// The weight `xlb status` reports for real server `n` of the HTTP service on dir1.
fn weight_of(lab: &Lab, n: usize) -> Option<u64> {
    let out = std::process::Command::new(xlb_bin())
        .args(["status", "--json", "--pin-path"])
        .arg(lab.pins.0.join("dir1"))
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let svc = s["services"]
        .as_array()?
        .iter()
        .find(|v| v["port"] == 80)?
        .clone();
    svc["real_servers"]
        .as_array()?
        .iter()
        .find(|r| r["ip"] == lab_real(n).as_str())
        .and_then(|r| r["weight"].as_u64())
}

#[test]
fn reloads_under_traffic_change_nothing_they_do_not_concern() {
    let mut lab = ha_lab("hot", 3);
    // rs3 gets no traffic until the reload adds it.
    let c1 = lab.tmp.join("dir1.toml");
    let c2 = lab.tmp.join("dir2.toml");
    let base = [(1, 1), (2, 1)];
    std::fs::write(&c1, config(150, &[LAB_VIP], &base)).unwrap();
    std::fs::write(&c2, config(100, &[LAB_VIP], &base)).unwrap();
    // The adverts on the wire, as the client's side of the switch sees them.
    let mut tcpdump = lab.command("client", std::path::Path::new("tcpdump"));
    tcpdump.args(["-l", "-n", "-i", "eth0", "ip proto 112"]);
    lab.spawn("tcpdump", tcpdump);
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_for(Duration::from_secs(10), "dir1 MASTER, dir2 BACKUP", || {
        let (l1, l2) = (lab.log("xlb1"), lab.log("xlb2"));
        let ok = has_address(&lab, "dir1", LAB_VIP)
            && l1.contains("to=MASTER")
            && l2.contains("to=BACKUP");
        (ok.then_some(()), format!("{l1}\n{l2}"))
    });
    let transitions = |lab: &Lab| {
        (
            count(&lab.log("xlb1"), "VRRP transition"),
            count(&lab.log("xlb2"), "VRRP transition"),
        )
    };
    let at_start = transitions(&lab);
    assert_eq!(
        at_start,
        (2, 1),
        "INIT->BACKUP->MASTER on dir1, ->BACKUP on dir2"
    );
    wait_for(Duration::from_secs(5), "tcpdump sees adverts", || {
        let log = lab.log("tcpdump");
        (log.contains("prio 150").then_some(()), log)
    });
    let traffic = Traffic::start(&lab, 8);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        traffic.failures(),
        Vec::<String>::new(),
        "before any reload"
    );

    // 1. Priority 150 -> 200: the next adverts carry it.
    reload(&mut lab, &config(200, &[LAB_VIP], &base));
    wait_for(Duration::from_secs(5), "adverts at priority 200", || {
        let log = lab.log("tcpdump");
        (log.contains("prio 200").then_some(()), log)
    });

    // 2. A VIP added: on the interface, and answering the client.
    reload(&mut lab, &config(200, &[LAB_VIP, VIP2], &base));
    wait_for(Duration::from_secs(5), "the added VIP on dir1", || {
        (
            has_address(&lab, "dir1", VIP2).then_some(()),
            lab.log("xlb1"),
        )
    });
    let ping = lab.sh("client", &format!("ping -c 1 -W 2 {VIP2} || true"));
    assert!(ping.contains("1 received"), "the added VIP answers: {ping}");
    assert!(!has_address(&lab, "dir2", VIP2), "only the master holds it");

    // 3. The VIP removed again: gone, the other one stays.
    reload(&mut lab, &config(200, &[LAB_VIP], &base));
    wait_for(
        Duration::from_secs(5),
        "the removed VIP gone from dir1",
        || {
            (
                (!has_address(&lab, "dir1", VIP2)).then_some(()),
                lab.log("xlb1"),
            )
        },
    );
    assert!(has_address(&lab, "dir1", LAB_VIP), "the kept VIP stays");

    // 4. A real server added: the client loop reaches it.
    let three = [(1, 1), (2, 1), (3, 1)];
    reload(&mut lab, &config(200, &[LAB_VIP], &three));
    wait_for(Duration::from_secs(5), "requests answered by rs3", || {
        (traffic.served_by("rs3").then_some(()), lab.log("xlb1"))
    });

    // 5. A weight changed: the data plane holds it.
    reload(
        &mut lab,
        &config(200, &[LAB_VIP], &[(1, 3), (2, 1), (3, 1)]),
    );
    wait_for(Duration::from_secs(5), "rs1 at weight 3", || {
        let w = weight_of(&lab, 1);
        ((w == Some(3)).then_some(()), format!("{w:?}"))
    });

    // The streams and the loop keep going over the last reload's settling.
    std::thread::sleep(Duration::from_secs(3));
    let (served, failures) = traffic.stop();
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "failed requests or cut streams"
    );
    assert!(served > 50, "the client loop ran: {served} requests");
    assert_eq!(
        transitions(&lab),
        at_start,
        "no VRRP transition on either director:\n{}\n{}",
        lab.log("xlb1"),
        lab.log("xlb2")
    );
    // The log says what each reload changed, as `xlb check --diff` does.
    let log = lab.log("xlb1");
    for line in [
        "new settings applied in place",
        "reload: vrrp_instance VI_1: changed in place, state kept: priority",
        "reload:   + VIP 198.18.0.101/32",
        "reload:   - VIP 198.18.0.101/32",
        "reload:   + 198.18.0.13:80 weight 1",
        "reload:   ~ 198.18.0.11:80 weight 1 -> 3",
    ] {
        assert!(log.contains(line), "{line:?} not in the log:\n{log}");
    }
    println!(
        "dir1's reloads:\n{}",
        log.lines()
            .filter(|l| l.contains("reload") || l.contains("in place") || l.contains("VIPs"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The wire never carried a resignation (priority 0).
    let wire = lab.log("tcpdump");
    assert!(!wire.contains("prio 0,"), "{wire}");
    println!(
        "{served} requests, 8 streams, 5 reloads: no failure, no transition; adverts:\n{}",
        wire.lines()
            .filter(|l| l.contains("prio"))
            .map(|l| l.split("VRRP").nth(1).unwrap_or(l))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn a_new_virtual_router_id_restarts_the_instance() {
    let mut lab = ha_lab("hotvrid", 2);
    let c1 = lab.tmp.join("dir1.toml");
    let c2 = lab.tmp.join("dir2.toml");
    std::fs::write(&c1, config(150, &[LAB_VIP], &[(1, 1)])).unwrap();
    std::fs::write(&c2, config(100, &[LAB_VIP], &[(1, 1)])).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_for(Duration::from_secs(10), "dir1 MASTER", || {
        (
            has_address(&lab, "dir1", LAB_VIP).then_some(()),
            lab.log("xlb1"),
        )
    });
    // For the peers, VRID 62 is another router: dir1 resigns from 61 (dir2 takes it
    // over) and starts 62 afresh.
    reload(
        &mut lab,
        &config(150, &[LAB_VIP], &[(1, 1)])
            .replace("virtual_router_id = 61", "virtual_router_id = 62"),
    );
    wait_for(Duration::from_secs(10), "dir2 MASTER of VRID 61", || {
        (
            has_address(&lab, "dir2", LAB_VIP).then_some(()),
            lab.log("xlb2"),
        )
    });
    let log = lab.log("xlb1");
    assert!(
        log.contains("virtual_router_id 61 -> 62: restarting the instance"),
        "{log}"
    );
    assert!(log.contains("to=INIT"), "the old instance resigned: {log}");
}

#[test]
fn check_diff_prints_the_plan_for_two_files_without_a_daemon() {
    let dir = std::env::temp_dir().join(format!("xlb-hot-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let running = dir.join("running.toml");
    let new = dir.join("new.toml");
    std::fs::write(&running, config(150, &[LAB_VIP], &[(1, 1), (2, 1)])).unwrap();
    std::fs::write(
        &new,
        config(200, &[LAB_VIP, VIP2], &[(1, 3), (2, 1), (3, 1)]),
    )
    .unwrap();
    let run = |extra: &[&str], running: &std::path::Path| {
        std::process::Command::new(xlb_bin())
            .args(["check", "--no-host-checks", "--diff"])
            .arg(running)
            .arg("-c")
            .arg(&new)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[], &running);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    for line in [
        "vrrp_instance VI_1: changed in place, state kept: priority, virtual_ipaddress\n",
        "  + VIP 198.18.0.101/32\n",
        "virtual_server 198.18.0.100:80/TCP: changed\n",
        "  ~ 198.18.0.11:80 weight 1 -> 3\n",
        "  + 198.18.0.13:80 weight 1\n",
        "1 virtual server(s) unchanged",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    // --json: the plan alone on stdout.
    let out = run(&["--json"], &running);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(plan["instances"][0]["action"], "in_place");
    assert_eq!(plan["services"][0]["real_servers"][1]["action"], "added");
    // A running file that does not load: refused at its line, nothing printed as a plan.
    std::fs::write(&running, "[[vrrp_instance]]\nname = 5\n").unwrap();
    let out = run(&[], &running);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("running.toml:2:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real keepalived 2.2.7 as the BACKUP peer (in `dir2`), priority 100.
fn start_keepalived_backup(lab: &mut Lab) {
    let dir = lab.tmp.join("keepalived");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(
        &conf,
        format!(
            "global_defs {{\n    router_id kd2\n}}\n\
             vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    \
             virtual_router_id 61\n    priority 100\n    advert_int 1\n    \
             virtual_ipaddress {{\n        {LAB_VIP}/32\n    }}\n}}\n"
        ),
    )
    .unwrap();
    let mut cmd = lab.command("dir2", std::path::Path::new("keepalived"));
    cmd.args(["-n", "-l", "-D", "-P", "-f"]).arg(&conf);
    for (flag, file) in [
        ("-p", "keepalived.pid"),
        ("-r", "vrrp.pid"),
        ("-c", "checkers.pid"),
        ("-b", "bfd.pid"),
    ] {
        cmd.arg(flag).arg(dir.join(file));
    }
    lab.spawn("keepalived", cmd);
    lab.wait_log("keepalived", "(VI_1) Entering", Duration::from_secs(10));
}

#[test]
fn a_keepalived_backup_sees_no_transition_when_the_xlb_master_reloads() {
    let mut lab = ha_lab("hotka", 0);
    // VRRP only (no virtual server): the priority and an excluded VIP change.
    let xlb = |priority: u8, excluded: &str| {
        format!(
            "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 61\n\
             priority = {priority}\nadvert_int = 1\nvirtual_ipaddress = [\"{LAB_VIP}/32\"]\n\
             virtual_ipaddress_excluded = [{excluded}]\n"
        )
    };
    let c1 = lab.tmp.join("dir1.toml");
    std::fs::write(&c1, xlb(150, "")).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    wait_for(Duration::from_secs(10), "xlb MASTER", || {
        (
            has_address(&lab, "dir1", LAB_VIP).then_some(()),
            lab.log("xlb1"),
        )
    });
    start_keepalived_backup(&mut lab);
    std::thread::sleep(Duration::from_secs(4));
    let entering = |lab: &Lab| count(&lab.log("keepalived"), "Entering");
    assert_eq!(entering(&lab), 1, "{}", lab.log("keepalived"));
    let xlb_transitions = count(&lab.log("xlb1"), "VRRP transition");

    // Priority 150 -> 120 (still above keepalived's 100), then a VIP added and removed
    // as virtual_ipaddress_excluded, which adverts do not carry: keepalived checks the
    // advertised list and would refuse adverts listing a VIP it lacks.
    reload(&mut lab, &xlb(120, ""));
    reload(&mut lab, &xlb(120, &format!("\"{VIP2}/32\"")));
    wait_for(Duration::from_secs(5), "the excluded VIP on dir1", || {
        (
            has_address(&lab, "dir1", VIP2).then_some(()),
            lab.log("xlb1"),
        )
    });
    reload(&mut lab, &xlb(120, ""));
    wait_for(Duration::from_secs(5), "the excluded VIP gone", || {
        (
            (!has_address(&lab, "dir1", VIP2)).then_some(()),
            lab.log("xlb1"),
        )
    });
    // Over several master-down intervals of keepalived's.
    std::thread::sleep(Duration::from_secs(5));
    let log = lab.log("keepalived");
    assert_eq!(entering(&lab), 1, "keepalived changed state:\n{log}");
    assert!(!log.contains("Entering MASTER STATE"), "{log}");
    assert!(!has_address(&lab, "dir2", LAB_VIP), "{log}");
    assert_eq!(
        count(&lab.log("xlb1"), "VRRP transition"),
        xlb_transitions,
        "{}",
        lab.log("xlb1")
    );
}
