//! The daemon's ownership of its pin path, in network namespaces: one `xlb run` per pin
//! path, `xlb status` telling a dead daemon's last state from a live one, pin directories
//! a non-root user could write refused, a failed start leaving nothing behind, `xlb
//! teardown` refused under a running daemon, and the watchdog: removed pins and a
//! detached program put back, an interface deleted and re-created followed.

use std::{
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use integration_tests::netns::{
    LAB_DIRECTOR, LAB_VIP, Lab, dr_lab, http_get, lab_real, replug_director,
    replug_director_without_ipv4, start_xlb, unplug_director, wait_for, write_config, xlb_bin,
};

/// One VRRP instance owning `LAB_VIP` and a wrr service on it over rs1 and rs2: the
/// service forwards only while the instance is MASTER.
fn config() -> String {
    format!(
        r#"[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 150
advert_int = 1
virtual_ipaddress = ["{LAB_VIP}/32"]

[[virtual_server]]
ip = "{LAB_VIP}"
port = 80
protocol = "TCP"
lb_algo = "wrr"
lb_kind = "DR"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{rs1}"
port = 80

[[virtual_server.real_server]]
ip = "{rs2}"
port = 80
"#,
        rs1 = lab_real(1),
        rs2 = lab_real(2)
    )
}

/// A lab whose director runs `xlb run` (label "xlb") with [`config`], MASTER and
/// forwarding. The VIP is the VRRP instance's to add.
fn running_lab(tag: &str) -> Lab {
    running_lab_with(tag, |_| String::new())
}

/// [`running_lab`] with more keys for the VRRP instance, made from the lab (its paths).
fn running_lab_with(tag: &str, instance_keys: impl FnOnce(&Lab) -> String) -> Lab {
    let mut lab = dr_lab(tag, 2);
    lab.sh("dir", &format!("ip addr del {LAB_VIP}/32 dev eth0"));
    let keys = instance_keys(&lab);
    let cfg = write_config(
        &lab,
        &config().replacen("advert_int = 1\n", &format!("advert_int = 1\n{keys}\n"), 1),
    );
    start_xlb(&mut lab, "xlb", &cfg);
    wait_for(Duration::from_secs(10), "MASTER and forwarding", || {
        let s = status_json(&lab);
        let ok = s["vrrp"][0]["state"] == "MASTER" && s["services"][0]["active"] == true;
        (ok.then_some(()), s.to_string())
    });
    lab
}

/// `xlb status ARGS --pin-path PINS`, which must succeed.
fn status(lab: &Lab, args: &[&str]) -> String {
    let out = Command::new(xlb_bin())
        .arg("status")
        .args(args)
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .output()
        .expect("running xlb status");
    assert!(
        out.status.success(),
        "xlb status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_json(lab: &Lab) -> serde_json::Value {
    serde_json::from_str(&status(lab, &["--json"])).expect("xlb status --json prints JSON")
}

/// Runs `xlb run -c CONFIG --pin-path PINS` in the director namespace to its exit, killed
/// after `timeout` (then None).
fn run_to_exit(lab: &Lab, config: &Path, pins: &Path, timeout: Duration) -> Option<Output> {
    let mut cmd = lab.command("dir", &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .arg("--pin-path")
        .arg(pins)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning xlb run");
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            // SIGKILL: a still-running second daemon must not resign on the way out.
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(child.wait_with_output().expect("xlb run output"))
}

/// The program id behind the pinned XDP link on the director's eth0.
fn linked_prog_id(pins: &Path) -> u64 {
    let out = Command::new("bpftool")
        .args(["-j", "link", "show", "pinned"])
        .arg(pins.join("link_eth0"))
        .output()
        .expect("running bpftool");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bpftool -j: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    v["prog_id"].as_u64().expect("prog_id")
}

/// What xlb pinned under `pins` (the lab's own `pass_*` links of the switch aside).
fn xlb_pins(pins: &Path) -> Vec<String> {
    std::fs::read_dir(pins)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with("pass_"))
                .collect()
        })
        .unwrap_or_default()
}

fn http_through_vip(lab: &Lab, when: &str) {
    let vip: SocketAddr = format!("{LAB_VIP}:80").parse().unwrap();
    lab.within("client", || {
        for i in 0..10 {
            http_get(vip, "/")
                .unwrap_or_else(|e| panic!("{when}: connection {i} through the VIP: {e}"));
        }
    });
}

#[test]
fn a_second_daemon_on_the_same_pin_path_is_refused_and_changes_nothing() {
    let mut lab = running_lab("lock");
    http_through_vip(&lab, "before the second daemon");
    let first_pid = lab.pid("xlb");
    let prog = linked_prog_id(&lab.pins.0);

    let cfg = lab.tmp.join("xlb.toml");
    let started = Instant::now();
    let out = run_to_exit(&lab, &cfg, &lab.pins.0, Duration::from_secs(10))
        .expect("a second xlb run on the same pin path kept running");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!(
        "second xlb run: {} after {:?}: {stderr}",
        out.status,
        started.elapsed()
    );
    assert!(
        !out.status.success(),
        "the second xlb run must fail:\n{stderr}"
    );
    let expected = format!(
        "another xlb (pid {first_pid}) runs on pin path {}",
        lab.pins.0.display()
    );
    assert!(
        stderr.contains(&expected),
        "the refusal must name the first daemon's PID ({expected:?}):\n{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once, not after a start-up"
    );

    // The first daemon still runs, MASTER, its service active, its program in the link.
    lab.signal("xlb", 0);
    let s = status_json(&lab);
    assert_eq!(s["vrrp"][0]["state"], "MASTER", "{s}");
    assert_eq!(s["services"][0]["active"], true, "{s}");
    assert_eq!(
        linked_prog_id(&lab.pins.0),
        prog,
        "the link's program was swapped"
    );
    http_through_vip(&lab, "after the refused second daemon");
}

#[test]
fn status_says_the_state_is_stale_once_the_daemon_is_killed() {
    let mut lab = running_lab("stale");
    let live = status(&lab, &[]);
    // (Not the bare word: the live status names the config file, in this lab's "stale" dir.)
    assert!(
        !live.contains("last state below is stale"),
        "a live daemon's state is not stale:\n{live}"
    );
    assert!(live.contains("MASTER"), "{live}");
    let json = status_json(&lab);
    assert_eq!(json["daemon"]["running"], true, "{json}");

    let pid = lab.kill("xlb", libc::SIGKILL);
    let text = status(&lab, &[]);
    assert!(
        text.starts_with(&format!(
            "daemon not running (pid {pid} gone); last state below is stale\n"
        )),
        "xlb status after kill -9:\n{text}"
    );
    let json = status_json(&lab);
    assert_eq!(json["daemon"]["pid"], pid, "{json}");
    assert_eq!(json["daemon"]["running"], false, "{json}");

    // SIGKILL released the lock: a new daemon starts on the same pins.
    let cfg = lab.tmp.join("xlb.toml");
    start_xlb(&mut lab, "xlb2", &cfg);
    let new_pid = lab.pid("xlb2");
    wait_for(Duration::from_secs(5), "the new daemon's status", || {
        let s = status_json(&lab);
        let ok = s["daemon"]["pid"] == new_pid && s["daemon"]["running"] == true;
        (ok.then_some(()), s.to_string())
    });
}

#[test]
fn a_pin_dir_others_could_write_is_refused() {
    let lab = dr_lab("mode", 1);
    let cfg = write_config(&lab, &config());
    std::fs::create_dir_all(&lab.pins.0).expect("pin dir");
    std::fs::set_permissions(&lab.pins.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = run_to_exit(&lab, &cfg, &lab.pins.0, Duration::from_secs(10))
        .expect("xlb run kept running on a 0777 pin dir");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "xlb run must refuse a 0777 pin dir:\n{stderr}"
    );
    let fix = format!(
        "chown root:root {0} && chmod 0700 {0}",
        lab.pins.0.display()
    );
    assert!(
        stderr.contains("mode 0777") && stderr.contains(&fix),
        "the refusal must say what is wrong and how to fix it ({fix:?}):\n{stderr}"
    );
    let left = xlb_pins(&lab.pins.0);
    assert!(left.is_empty(), "pinned in a refused pin dir: {left:?}");
}

/// A service on eth0 and a VRRP instance on an interface that does not exist: the start
/// fails after XDP was attached to eth0, when the instance starts.
fn config_failing_late() -> String {
    format!(
        r#"[[vrrp_instance]]
name = "VI_GONE"
interface = "nosuch0"
virtual_router_id = 52
priority = 150
advert_int = 1
virtual_ipaddress = ["198.18.0.101/32"]

[[virtual_server]]
ip = "{LAB_VIP}"
port = 80
protocol = "TCP"
lb_algo = "rr"
lb_kind = "DR"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{rs1}"
port = 80
"#,
        rs1 = lab_real(1)
    )
}

#[test]
fn a_failed_start_leaves_nothing_it_made_and_keeps_what_it_adopted() {
    let mut lab = dr_lab("undo", 1);
    let bad = write_config(&lab, &config_failing_late());
    let out = run_to_exit(&lab, &bad, &lab.pins.0, Duration::from_secs(20))
        .expect("xlb run kept running with an instance on a missing interface");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the start must fail:\n{stderr}");
    let link = lab.sh("dir", "ip link show eth0");
    let left = xlb_pins(&lab.pins.0);
    assert!(
        !link.contains("xdp") && left.is_empty(),
        "a failed start left XDP on eth0 or pins {left:?}:\n{link}\nxlb:\n{stderr}"
    );

    // Over a data plane an earlier run left forwarding, the same failure removes nothing.
    let good_cfg = write_config(
        &lab,
        &config_failing_late()
            .split("[[virtual_server]]")
            .nth(1)
            .map(|rest| format!("[[virtual_server]]{rest}"))
            .unwrap(),
    );
    start_xlb(&mut lab, "xlb", &good_cfg);
    lab.kill("xlb", libc::SIGTERM);
    let bad = write_config(&lab, &config_failing_late());
    let out = run_to_exit(&lab, &bad, &lab.pins.0, Duration::from_secs(20)).expect("exits");
    assert!(!out.status.success());
    let link = lab.sh("dir", "ip link show eth0");
    assert!(
        link.contains("xdp") && lab.pins.0.join("link_eth0").exists(),
        "the adopted link must stay:\n{link}"
    );
    assert!(lab.pins.0.join(lb_common::map_names::SERVICES).exists());
}

#[test]
fn a_second_daemon_on_the_same_interface_from_another_pin_path_is_refused() {
    let mut lab = running_lab("iface");
    let other = lab.pins.0.join("other");
    let cfg = lab.tmp.join("xlb.toml");
    let out = run_to_exit(&lab, &cfg, &other, Duration::from_secs(10))
        .expect("a second xlb run on the same interface kept running");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "the second xlb run must fail:\n{stderr}"
    );
    assert!(
        stderr.contains("interface eth0 already has an XDP program"),
        "the refusal must name the interface:\n{stderr}"
    );
    assert!(
        xlb_pins(&other).is_empty(),
        "the refused run left pins under {}",
        other.display()
    );
    lab.signal("xlb", 0);
    let s = status_json(&lab);
    assert_eq!(s["vrrp"][0]["state"], "MASTER", "{s}");
    assert_eq!(s["services"][0]["active"], true, "{s}");
    http_through_vip(&lab, "after the refused second daemon");
}

/// `xlb ARGS --pin-path PINS`, run to its end.
fn xlb(lab: &Lab, args: &[&str]) -> Output {
    Command::new(xlb_bin())
        .args(args)
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .output()
        .expect("running xlb")
}

/// The id of the XDP program on the director's eth0, if any (`ip -d link`'s view).
fn eth0_prog_id(lab: &Lab) -> Option<u64> {
    let out = lab.sh("dir", "ip -j -d link show dev eth0");
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j");
    v[0]["xdp"]["prog"]["id"].as_u64()
}

#[test]
fn teardown_is_refused_while_the_daemon_runs() {
    let mut lab = running_lab("teardown");
    let pid = lab.pid("xlb");
    let out = xlb(&lab, &["teardown"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "teardown under a running daemon must be refused:\n{stderr}"
    );
    let expected = format!("xlb (pid {pid}) runs on pin path {}", lab.pins.0.display());
    assert!(
        stderr.contains(&expected) && stderr.contains("--force"),
        "the refusal must name the daemon's PID ({expected:?}) and --force:\n{stderr}"
    );
    assert!(
        lab.pins.0.join("link_eth0").exists() && eth0_prog_id(&lab).is_some(),
        "a refused teardown removed something"
    );
    http_through_vip(&lab, "after the refused teardown");

    // --force under a daemon that does not answer: XDP leaves eth0 although the daemon
    // still holds the link.
    lab.signal("xlb", libc::SIGSTOP);
    let out = xlb(&lab, &["teardown", "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "teardown --force: {stderr}");
    assert!(stderr.contains("--force: tearing down anyway"), "{stderr}");
    assert_eq!(eth0_prog_id(&lab), None, "XDP still on eth0 after --force");
    // A daemon that comes back puts its data plane back, as the refusal said.
    lab.signal("xlb", libc::SIGCONT);
    wait_for(
        Duration::from_secs(3),
        "the daemon's data plane back",
        || {
            let back = eth0_prog_id(&lab).is_some() && lab.pins.0.join("link_eth0").exists();
            (back.then_some(()), String::new())
        },
    );
    http_through_vip(&lab, "after the daemon restored what --force removed");

    // Once the daemon has stopped, teardown goes ahead.
    lab.kill("xlb", libc::SIGTERM);
    let out = xlb(&lab, &["teardown"]);
    assert!(
        out.status.success(),
        "teardown without a daemon: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(eth0_prog_id(&lab), None, "XDP still on eth0 after teardown");
    assert!(
        xlb_pins(&lab.pins.0).is_empty(),
        "{:?}",
        xlb_pins(&lab.pins.0)
    );
}

#[test]
fn removed_pins_and_a_detached_program_are_put_back_within_a_second() {
    let mut lab = running_lab("watchdog");
    http_through_vip(&lab, "before");
    let prog = eth0_prog_id(&lab).expect("XDP on eth0");
    let packets_before = status_json(&lab)["services"][0]["packets"]
        .as_u64()
        .unwrap();
    let link_pin = lab.pins.0.join("link_eth0");

    // The link's pin removed: the daemon holds the link, so XDP stays, and the pin is back.
    std::fs::remove_file(&link_pin).expect("removing the link pin");
    wait_for(Duration::from_millis(1500), "the link pinned again", || {
        (link_pin.exists().then_some(()), String::new())
    });
    assert_eq!(eth0_prog_id(&lab), Some(prog), "the program changed");
    lab.wait_log(
        "xlb",
        "pinned XDP link removed by someone else; pinning it again",
        Duration::from_secs(1),
    );
    http_through_vip(&lab, "after the link pin was removed");

    // The link detached by hand: the program is attached again within a second.
    let detached = Command::new("bpftool")
        .args(["link", "detach", "pinned"])
        .arg(&link_pin)
        .status()
        .expect("bpftool link detach");
    assert!(detached.success(), "bpftool link detach failed");
    let started = Instant::now();
    wait_for(
        Duration::from_millis(1500),
        "XDP attached to eth0 again",
        || {
            (
                eth0_prog_id(&lab).filter(|p| *p == prog).map(|_| ()),
                String::new(),
            )
        },
    );
    println!("re-attached {:?} after the detach", started.elapsed());
    lab.wait_log(
        "xlb",
        "XDP program detached from eth0 by someone else; re-attaching",
        Duration::from_secs(1),
    );
    http_through_vip(&lab, "after the program was detached");
    // The status file is written every half second.
    let s = wait_for(
        Duration::from_secs(2),
        "status counting the re-attach",
        || {
            let s = status_json(&lab);
            let ok = s["interfaces"][0]["name"] == "eth0" && s["interfaces"][0]["reattached"] == 1;
            (ok.then(|| s.clone()), s.to_string())
        },
    );
    assert!(
        s["services"][0]["packets"].as_u64().unwrap() > packets_before,
        "the same maps (counters kept and counting): {s}"
    );
    let text = status(&lab, &[]);
    assert!(
        text.contains("XDP eth0: forwarding, re-attached 1 times"),
        "xlb status:\n{text}"
    );

    // A map's pin removed: pinned again.
    let services = lab.pins.0.join(lb_common::map_names::SERVICES);
    std::fs::remove_file(&services).expect("removing a map pin");
    wait_for(Duration::from_millis(1500), "the map pinned again", || {
        (services.exists().then_some(()), String::new())
    });
    lab.wait_log(
        "xlb",
        "pinned maps removed by someone else",
        Duration::from_secs(1),
    );
    assert_eq!(status_json(&lab)["services"][0]["active"], true);
    http_through_vip(&lab, "after a map pin was removed");

    // Every pin of xlb's at once (`rm /sys/fs/bpf/xlb/*`): all back, forwarding throughout.
    let all = xlb_pins(&lab.pins.0);
    for name in &all {
        std::fs::remove_file(lab.pins.0.join(name)).expect("removing a pin");
    }
    wait_for(Duration::from_millis(1500), "every pin back", || {
        let now = xlb_pins(&lab.pins.0);
        let back = all.iter().all(|n| now.contains(n));
        (back.then_some(()), format!("{now:?}"))
    });
    assert_eq!(eth0_prog_id(&lab), Some(prog), "the program changed");
    http_through_vip(&lab, "after every pin was removed");
}

/// A notify script recording each state the instance reports, one a line, in `states`.
fn recording_notify(lab: &Lab) -> String {
    let script = lab.tmp.join("notify.sh");
    let states = lab.tmp.join("states");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$3\" >> {}\n", states.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("notify = \"{}\"", script.display())
}

/// The states the instance reported to its notify script so far.
fn notified(lab: &Lab) -> Vec<String> {
    std::fs::read_to_string(lab.tmp.join("states"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until the instance is MASTER, XDP forwards on eth0, the service is active and
/// every real server has a MAC; then until a request through the VIP succeeds.
fn wait_forwarding_again(lab: &Lab, after: &str) {
    let started = Instant::now();
    wait_for(
        Duration::from_secs(10),
        "MASTER and forwarding again",
        || {
            let s = status_json(lab);
            let ok = s["vrrp"][0]["state"] == "MASTER"
                && s["interfaces"][0]["forwarding"] == true
                && s["services"][0]["active"] == true
                && s["services"][0]["real_servers"]
                    .as_array()
                    .is_some_and(|r| r.iter().all(|r| !r["mac"].is_null()));
            (ok.then_some(()), s.to_string())
        },
    );
    println!("forwarding again {:?} after {after}", started.elapsed());
    assert!(eth0_prog_id(lab).is_some(), "no XDP on eth0 after {after}");
    let vip: SocketAddr = format!("{LAB_VIP}:80").parse().unwrap();
    wait_for(Duration::from_secs(5), "a request through the VIP", || {
        let r = lab.within("client", || http_get(vip, "/"));
        (r.as_ref().ok().map(|_| ()), format!("{r:?}"))
    });
    http_through_vip(lab, after);
}

#[test]
fn an_interface_deleted_and_re_created_forwards_again_without_a_restart() {
    let mut lab = running_lab_with("recreate", recording_notify);
    http_through_vip(&lab, "before");
    let pid = lab.pid("xlb");

    unplug_director(&lab);
    wait_for(Duration::from_secs(3), "status saying eth0 is down", || {
        let s = status_json(&lab);
        let ok = s["interfaces"][0]["forwarding"] == false && s["vrrp"][0]["state"] == "FAULT";
        (ok.then_some(()), s.to_string())
    });
    let text = status(&lab, &[]);
    assert!(
        text.contains("XDP eth0: DOWN (interface eth0 is gone)"),
        "xlb status while eth0 is gone:\n{text}"
    );
    lab.wait_log(
        "xlb",
        "not forwarding: interface eth0 is gone",
        Duration::from_secs(1),
    );
    // A reload meanwhile is not refused for the missing interface or its real servers.
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log("xlb", "config reloaded", Duration::from_secs(5));
    assert!(
        !lab.log("xlb").contains("reload failed"),
        "{}",
        lab.log("xlb")
    );

    replug_director(&mut lab);
    wait_forwarding_again(&lab, "eth0 was re-created");
    // The same daemon, no restart.
    lab.signal("xlb", 0);
    assert_eq!(lab.pid("xlb"), pid);
    let text = status(&lab, &[]);
    assert!(
        text.contains("XDP eth0: forwarding, re-attached 1 times"),
        "xlb status:\n{text}"
    );
    // As keepalived: FAULT while the interface is gone, then BACKUP and the election.
    let states = notified(&lab);
    assert!(
        states.ends_with(&["FAULT".into(), "BACKUP".into(), "MASTER".into()]),
        "notified states: {states:?}"
    );
}

#[test]
fn a_re_created_interface_without_the_vrrp_source_address_stays_in_fault_until_it_has_it() {
    let mut lab = running_lab_with("nosrc", recording_notify);
    unplug_director(&lab);
    wait_for(Duration::from_secs(3), "FAULT while eth0 is gone", || {
        let s = status_json(&lab);
        (
            (s["vrrp"][0]["state"] == "FAULT").then_some(()),
            s.to_string(),
        )
    });
    // Back, up, but without the address adverts leave from.
    replug_director_without_ipv4(&mut lab);
    // Longer than the master-down timer (3 x 1 s + skew): never BACKUP or MASTER, since
    // adverts could neither leave nor arrive.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let s = status_json(&lab);
        assert_eq!(s["vrrp"][0]["state"], "FAULT", "{s}");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(notified(&lab).last().map(String::as_str), Some("FAULT"));
    lab.wait_log(
        "xlb",
        "the VRRP socket cannot open on the re-created interface",
        Duration::from_secs(1),
    );
    // The address comes back: the socket opens, out of FAULT, the election, forwarding.
    lab.sh("dir", &format!("ip addr add {LAB_DIRECTOR}/24 dev eth0"));
    wait_forwarding_again(&lab, "the source address was added");
    lab.wait_log("xlb", "VRRP socket open again", Duration::from_secs(1));
    let states = notified(&lab);
    assert!(
        states.ends_with(&["FAULT".into(), "BACKUP".into(), "MASTER".into()]),
        "notified states: {states:?}"
    );
}

#[test]
fn an_interface_renamed_away_and_back_forwards_again() {
    let lab = running_lab("rename");
    http_through_vip(&lab, "before");
    lab.sh(
        "dir",
        "ip link set eth0 down && ip link set eth0 name away0",
    );
    wait_for(Duration::from_secs(3), "status saying eth0 is down", || {
        let s = status_json(&lab);
        let ok = s["interfaces"][0]["forwarding"] == false && s["vrrp"][0]["state"] == "FAULT";
        (ok.then_some(()), s.to_string())
    });
    // Up under another name: still not ours.
    lab.sh("dir", "ip link set away0 up");
    std::thread::sleep(Duration::from_secs(1));
    let s = status_json(&lab);
    assert_eq!(s["vrrp"][0]["state"], "FAULT", "{s}");
    assert_eq!(s["interfaces"][0]["forwarding"], false, "{s}");

    lab.sh(
        "dir",
        "ip link set away0 down && ip link set away0 name eth0 && ip link set eth0 up",
    );
    wait_forwarding_again(&lab, "eth0 was renamed back");
}

#[test]
fn a_tracked_interface_deleted_and_re_created_is_followed() {
    // A veth pair inside the director (no dummy driver everywhere): trk0 is up with carrier.
    let add = "ip link add trk0 type veth peer name trk1 && ip link set trk1 up && \
               ip link set trk0 up";
    let lab = running_lab_with("tracked", |lab| {
        lab.sh("dir", add);
        r#"track_interface = ["trk0"]"#.to_string()
    });
    lab.sh("dir", "ip link del trk0");
    wait_for(Duration::from_secs(3), "FAULT with trk0 gone", || {
        let s = status_json(&lab);
        (
            (s["vrrp"][0]["state"] == "FAULT").then_some(()),
            s.to_string(),
        )
    });
    lab.sh("dir", add);
    wait_forwarding_again(&lab, "trk0 was re-created");
}
