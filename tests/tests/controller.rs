//! The controller (`xlb run`) in network namespaces: neighbour changes reaching the data
//! plane, SIGHUP reloads (good and broken configs), refusing real servers that are not
//! on-link; and the `xlb check` / `xlb realserver` commands on a real kernel.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use integration_tests::netns::{
    LAB_VIP, Lab, dr_lab, http_get, lab_real, start_xlb, wait_for, write_config, xlb_bin,
};

fn vip80() -> SocketAddr {
    format!("{LAB_VIP}:80").parse().unwrap()
}

/// One service, `LAB_VIP:80` wrr over rs1 and rs2 with the given weights.
fn config(w1: &str, w2: &str) -> String {
    format!(
        r#"[[virtual_server]]
ip = "{LAB_VIP}"
port = 80
protocol = "TCP"
lb_algo = "wrr"
lb_kind = "DR"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{rs1}"
port = 80
weight = {w1}

[[virtual_server.real_server]]
ip = "{rs2}"
port = 80
weight = {w2}
"#,
        rs1 = lab_real(1),
        rs2 = lab_real(2)
    )
}

/// `xlb status --json` on the lab's pins.
fn status(lab: &Lab) -> serde_json::Value {
    let out = Command::new(xlb_bin())
        .args(["status", "--json", "--pin-path"])
        .arg(&lab.pins.0)
        .output()
        .expect("running xlb status");
    assert!(
        out.status.success(),
        "xlb status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("xlb status --json prints JSON")
}

/// The real server `ip` of the service on port 80, as `xlb status --json` shows it.
fn real_status(s: &serde_json::Value, ip: &str) -> Option<serde_json::Value> {
    s["services"].as_array()?.iter().find(|v| v["port"] == 80)?["real_servers"]
        .as_array()?
        .iter()
        .find(|r| r["ip"] == ip)
        .cloned()
}

/// Opens `n` HTTP connections through the VIP from the client; all must succeed.
/// Returns how many rs1 and rs2 answered.
fn http_through_vip(lab: &Lab, n: usize, when: &str) -> (usize, usize) {
    let answers: Vec<String> = lab.within("client", || {
        (0..n)
            .map(|i| {
                http_get(vip80(), "/")
                    .unwrap_or_else(|e| panic!("{when}: connection {i} through the VIP: {e}"))
            })
            .collect()
    });
    let (mut rs1, mut rs2) = (0, 0);
    for a in &answers {
        let first = a.lines().next().unwrap_or_default();
        match first.split(' ').next() {
            Some("rs1") => rs1 += 1,
            Some("rs2") => rs2 += 1,
            _ => panic!("{when}: unexpected answer {a:?}"),
        }
        assert_eq!(
            first.split(' ').nth(1),
            Some(format!("{LAB_VIP}:80").as_str()),
            "{when}: DR: the real server must see the VIP as the local address"
        );
    }
    (rs1, rs2)
}

/// Finds `<file name>:<line>:<column>` in `text`.
fn file_line_col(text: &str, file: &str) -> Option<(usize, usize)> {
    let needle = format!("{file}:");
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        rest = &rest[at + needle.len()..];
        let digits = |s: &str| -> Option<(usize, usize)> {
            let n = s.chars().take_while(char::is_ascii_digit).count();
            s[..n].parse().ok().map(|v| (v, n))
        };
        if let Some((line, n)) = digits(rest) {
            if rest[n..].starts_with(':') {
                if let Some((col, _)) = digits(&rest[n + 1..]) {
                    return Some((line, col));
                }
            }
        }
    }
    None
}

/// 1-based line and column of `needle` in `text`.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1)))
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
}

#[test]
fn a_changed_neighbour_mac_reaches_the_data_plane() {
    let mut lab = dr_lab("nmac", 2);
    let cfg = write_config(&lab, &config("3", "1"));
    start_xlb(&mut lab, "xlb", &cfg);
    let rs1 = lab_real(1);

    let actual = lab.sh("rs1", "cat /sys/class/net/eth0/address");
    let old_mac = real_status(&status(&lab), &rs1).expect("rs1 in xlb status")["mac"].clone();
    assert_eq!(
        old_mac.as_str(),
        Some(actual.trim()),
        "the data plane must start with rs1's MAC"
    );
    let (a, b) = http_through_vip(&lab, 8, "before the MAC change");
    assert!(a > 0 && b > 0, "before the change: rs1 {a}, rs2 {b}");

    const NEW_MAC: &str = "02:00:00:00:aa:01";
    assert_ne!(old_mac.as_str(), Some(NEW_MAC));
    lab.sh("rs1", &format!("ip link set eth0 address {NEW_MAC}"));
    // What a gratuitous ARP from rs1 would do to the director's neighbour table.
    lab.sh(
        "dir",
        &format!("ip neigh replace {rs1} lladdr {NEW_MAC} dev eth0 nud reachable"),
    );

    let started = Instant::now();
    wait_for(
        Duration::from_secs(5),
        "rs1's new MAC in xlb status",
        || {
            let r = real_status(&status(&lab), &rs1);
            let mac = r.as_ref().map(|r| r["mac"].clone());
            (
                (mac.as_ref().and_then(|m| m.as_str()) == Some(NEW_MAC)).then_some(()),
                format!("{r:?}\nxlb log:\n{}", lab.log("xlb")),
            )
        },
    );
    println!("new MAC in the data plane after {:?}", started.elapsed());

    let (a, b) = http_through_vip(&lab, 40, "after the MAC change");
    println!("after the MAC change: rs1 {a}, rs2 {b} of 40");
    assert!(
        a > 0 && b > 0,
        "both real servers must answer after rs1's MAC changed: rs1 {a}, rs2 {b}"
    );
}

#[test]
fn sighup_applies_a_new_config_and_refuses_a_broken_one() {
    let mut lab = dr_lab("hup", 2);
    let cfg = write_config(&lab, &config("3", "1"));
    start_xlb(&mut lab, "xlb", &cfg);
    let weights = |lab: &Lab| -> (Option<u64>, Option<u64>) {
        let s = status(lab);
        let w = |n| real_status(&s, &lab_real(n)).and_then(|r| r["weight"].as_u64());
        (w(1), w(2))
    };
    assert_eq!(weights(&lab), (Some(3), Some(1)), "weights at start");

    write_config(&lab, &config("1", "1"));
    lab.signal("xlb", libc::SIGHUP);
    wait_for(Duration::from_secs(5), "weights 1:1 after SIGHUP", || {
        let w = weights(&lab);
        (
            (w == (Some(1), Some(1))).then_some(()),
            format!("{w:?}\nxlb log:\n{}", lab.log("xlb")),
        )
    });
    lab.wait_log("xlb", "config reloaded", Duration::from_secs(5));
    let (a, b) = http_through_vip(&lab, 20, "after the good reload");
    assert!(a > 0 && b > 0, "after the good reload: rs1 {a}, rs2 {b}");

    let broken = config("1", "\"heavy\"");
    let (line, column) = position_of(&broken, "\"heavy\"");
    write_config(&lab, &broken);
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log("xlb", "reload refused", Duration::from_secs(5));
    let log = lab.log("xlb");
    let refused = log
        .lines()
        .find(|l| l.contains("reload refused"))
        .expect("the refusal line");
    println!("{refused}");
    assert_eq!(
        file_line_col(refused, "xlb.toml"),
        Some((line, column)),
        "the refusal must name xlb.toml:{line}:{column} (the bad weight): {refused}"
    );
    assert!(refused.contains("weight"), "names the key: {refused}");

    // Give a wrongly applied reload time to show, then check nothing changed.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        weights(&lab),
        (Some(1), Some(1)),
        "a refused reload must change nothing"
    );
    let (a, b) = http_through_vip(&lab, 20, "after the refused reload");
    assert!(a > 0 && b > 0, "after the refused reload: rs1 {a}, rs2 {b}");
    lab.signal("xlb", 0); // still running
}

/// A child killed (by PID) if the test panics while it runs.
struct Reaped(Option<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for `child` to exit within `timeout`; kills it and returns None otherwise.
fn wait_exit(child: &mut Reaped, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = child.0.as_mut().expect("child");
        if let Some(status) = c.try_wait().expect("try_wait") {
            child.0 = None;
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None; // killed by the guard
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_real_server_that_is_not_on_link_is_refused() {
    let lab = dr_lab("onlink", 1);
    lab.sh("dir", "ip route add 198.19.5.0/24 via 198.18.0.1 dev eth0");
    let cfg = write_config(
        &lab,
        &format!(
            r#"[[virtual_server]]
ip = "{LAB_VIP}"
port = 80
protocol = "TCP"
lb_algo = "rr"
lb_kind = "DR"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{rs1}"
port = 80

[[virtual_server.real_server]]
ip = "198.19.5.5"
port = 80
"#,
            rs1 = lab_real(1)
        ),
    );
    let log_path = lab.tmp.join("xlb.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut cmd = lab.command("dir", &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(&cfg)
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let started = Instant::now();
    let mut child = Reaped(Some(cmd.spawn().expect("spawning xlb run")));
    let exit = wait_exit(&mut child, Duration::from_secs(10));
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let exit = exit
        .unwrap_or_else(|| panic!("xlb run kept running with an off-link real server:\n{output}"));
    println!("xlb run exited ({exit}) after {:?}", started.elapsed());
    assert!(
        !exit.success(),
        "xlb run must fail with an off-link real server:\n{output}"
    );
    assert!(
        output.contains("198.19.5.5")
            && output.contains("gateway 198.18.0.1")
            && output.contains("same link"),
        "the error must name the real server, the gateway and the same-link rule:\n{output}"
    );
    assert!(
        !output.contains("xlb running"),
        "must not claim to run:\n{output}"
    );

    // A refused start leaves no data plane behind: no XDP program on the interface and no
    // pinned link keeping one there.
    let link = lab.sh("dir", "ip link show eth0");
    let pin = xlb::dataplane::link_pin_path(&lab.pins.0, "eth0");
    assert!(
        !link.contains("xdp") && !pin.exists(),
        "a failed start left XDP attached to the director's eth0 (pinned link {} exists: \
         {}):\n{link}\nxlb output:\n{output}",
        pin.display(),
        pin.exists()
    );
}

fn ns_sysctl(lab: &Lab, ns: &str, name: &str) -> String {
    lab.sh(ns, &format!("cat /proc/sys/{}", name.replace('.', "/")))
        .trim()
        .to_string()
}

fn xlb_in(lab: &Lab, ns: &str, args: &[&str], state: &Path) -> String {
    let out = lab
        .command(ns, &xlb_bin())
        .args(args)
        .arg("--state-file")
        .arg(state)
        .output()
        .expect("running xlb");
    assert!(
        out.status.success(),
        "xlb {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn realserver_setup_and_teardown_restore_the_host() {
    const ARP: [&str; 4] = [
        "net.ipv4.conf.all.arp_ignore",
        "net.ipv4.conf.all.arp_announce",
        "net.ipv4.conf.lo.arp_ignore",
        "net.ipv4.conf.lo.arp_announce",
    ];
    let mut lab = Lab::new("rsset");
    lab.add_ns("host");
    for name in ARP {
        lab.sh(
            "host",
            &format!("echo 0 > /proc/sys/{}", name.replace('.', "/")),
        );
    }
    let arp = |lab: &Lab| ARP.map(|n| ns_sysctl(lab, "host", n));
    assert_eq!(arp(&lab), ["0", "0", "0", "0"], "the host starts stock");
    let host_before = ARP.map(|n| {
        std::fs::read_to_string(format!("/proc/sys/{}", n.replace('.', "/"))).unwrap_or_default()
    });

    let state = lab.tmp.join("rs.json");
    let vips = ["--vip", LAB_VIP, "--vip", "2001:db8::100"];
    let setup: Vec<&str> = ["realserver", "setup"]
        .iter()
        .chain(&vips)
        .copied()
        .collect();
    let teardown: Vec<&str> = ["realserver", "teardown"]
        .iter()
        .chain(&vips)
        .copied()
        .collect();
    let has_vips = |lab: &Lab| {
        let lo = lab.sh("host", "ip addr show lo");
        (
            lo.contains(&format!("inet {LAB_VIP}/32")),
            lo.contains("inet6 2001:db8::100/128"),
            lo,
        )
    };

    for round in ["first", "second"] {
        let log = xlb_in(&lab, "host", &setup, &state);
        let (v4, v6, lo) = has_vips(&lab);
        assert!(v4 && v6, "{round} setup: both VIPs on lo:\n{lo}\n{log}");
        assert_eq!(
            arp(&lab),
            ["1", "2", "1", "2"],
            "{round} setup: arp_ignore=1, arp_announce=2 on all and lo\n{log}"
        );
        assert!(state.exists(), "{round} setup records its state");
    }

    let log = xlb_in(&lab, "host", &teardown, &state);
    let (v4, v6, lo) = has_vips(&lab);
    assert!(!v4 && !v6, "teardown removes both VIPs:\n{lo}\n{log}");
    assert_eq!(
        arp(&lab),
        ["0", "0", "0", "0"],
        "teardown restores the values found by the first setup\n{log}"
    );
    assert!(!state.exists(), "teardown removes the state file");
    let host_after = ARP.map(|n| {
        std::fs::read_to_string(format!("/proc/sys/{}", n.replace('.', "/"))).unwrap_or_default()
    });
    assert_eq!(
        host_before, host_after,
        "the test's own namespace was not touched"
    );
}

#[test]
fn check_names_file_line_and_column_and_accepts_a_good_file() {
    let lab = Lab::new("check");
    let good = write_config(&lab, &config("3", "1"));
    // The file names the lab's eth0, not this host's: only the file is checked here
    // (config_check.rs tests the host checks).
    let out = Command::new(xlb_bin())
        .arg("check")
        .arg("--no-host-checks")
        .arg("-c")
        .arg(&good)
        .output()
        .expect("running xlb check");
    assert!(
        out.status.success(),
        "xlb check refused a good file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let text = config("1", "\"heavy\"");
    let (line, column) = position_of(&text, "\"heavy\"");
    let broken = write_config(&lab, &text);
    let out = Command::new(xlb_bin())
        .arg("check")
        .arg("-c")
        .arg(&broken)
        .output()
        .expect("running xlb check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert!(!out.status.success(), "xlb check accepted a broken file");
    let expected = format!("{}:{line}:{column}", broken.display());
    assert!(
        stderr.contains(&expected),
        "stderr must name {expected}: {stderr}"
    );
    assert!(
        stderr.contains("virtual_server[0].real_server[1].weight"),
        "stderr must name the key: {stderr}"
    );
}

#[test]
fn a_reload_with_an_off_link_real_server_keeps_the_running_config() {
    let mut lab = dr_lab("hupoff", 2);
    lab.sh("dir", "ip route add 198.19.5.0/24 via 198.18.0.1 dev eth0");
    let cfg = write_config(&lab, &config("1", "1"));
    start_xlb(&mut lab, "xlb", &cfg);
    let before = status(&lab);
    let rs2_before = real_status(&before, &lab_real(2)).expect("rs2 in xlb status");
    assert!(rs2_before["mac"].is_string(), "rs2 resolved: {rs2_before}");

    // rs2 replaced by a real server behind a gateway: the reload must fail as a whole.
    write_config(&lab, &config("1", "1").replace(&lab_real(2), "198.19.5.5"));
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log("xlb", "reload failed", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));

    let after = status(&lab);
    let rs2_after = real_status(&after, &lab_real(2));
    assert_eq!(
        rs2_after
            .as_ref()
            .map(|r| (&r["mac"], &r["ifindex"], &r["weight"])),
        Some((
            &rs2_before["mac"],
            &rs2_before["ifindex"],
            &rs2_before["weight"]
        )),
        "a failed reload must leave rs2 as it was (MAC, interface, weight)\nxlb log:\n{}",
        lab.log("xlb")
    );
    assert!(
        real_status(&after, "198.19.5.5").is_none(),
        "the off-link real server must not reach the data plane"
    );
    let (a, b) = http_through_vip(&lab, 20, "after the failed reload");
    assert!(
        a > 0 && b > 0,
        "both real servers still answer after the failed reload: rs1 {a}, rs2 {b}"
    );
}

/// The program id behind the pinned XDP link on the director's eth0.
fn linked_prog_id(lab: &Lab) -> u64 {
    let out = Command::new("bpftool")
        .args(["-j", "link", "show", "pinned"])
        .arg(lab.pins.0.join("link_eth0"))
        .output()
        .expect("running bpftool");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bpftool -j: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    v["prog_id"].as_u64().expect("prog_id")
}

#[test]
fn a_reload_with_new_lvs_timeouts_swaps_the_program_in_place() {
    let mut lab = dr_lab("hupto", 2);
    let cfg = write_config(&lab, &config("1", "1"));
    start_xlb(&mut lab, "xlb", &cfg);
    let before = linked_prog_id(&lab);
    let (a, b) = http_through_vip(&lab, 10, "before the reload");
    assert!(a + b == 10, "before: {a} + {b}");

    write_config(
        &lab,
        &format!(
            "[global_defs]\nlvs_timeouts = {{ tcp = 7200 }}\n\n{}",
            config("1", "1")
        ),
    );
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log("xlb", "config reloaded", Duration::from_secs(5));
    assert!(
        lab.log("xlb")
            .contains("lvs_timeouts changed: program reloaded"),
        "{}",
        lab.log("xlb")
    );
    let after = linked_prog_id(&lab);
    assert_ne!(after, before, "the pinned link runs the reloaded program");
    let maps = xlb::dataplane::Maps::from_pins(&lab.pins.0).expect("pinned maps");
    let meta = maps.meta.get(&0, 0).unwrap();
    assert_eq!(
        meta.timeouts,
        lb_common::Timeouts::from_seconds(7200, 120, 300)
    );
    let (a, b) = http_through_vip(&lab, 10, "after the reload");
    assert!(a + b == 10, "after: {a} + {b}");
    // A connection made before the reload is still tracked (same tables, same seed).
    let out = Command::new(xlb_bin())
        .args(["conns", "--json", "--pin-path"])
        .arg(&lab.pins.0)
        .output()
        .expect("xlb conns");
    let conns: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let n = conns.as_array().map_or(0, Vec::len);
    assert!(n >= 20, "{n} connections tracked: {conns}");
    lab.signal("xlb", 0);
}
