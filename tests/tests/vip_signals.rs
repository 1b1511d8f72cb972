//! Faults an operator or a stray command brings on a running director, in network
//! namespaces: a VIP deleted by hand (put back at once and announced again by the
//! MASTER, left alone by the BACKUP), a SIGHUP during start-up (a reload once started,
//! never fatal), keepalived's dump signals (files under /run/xlb) and every other signal
//! a user may send (logged, never fatal).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use integration_tests::netns::{
    LAB_VIP, LAB_VIP6, Lab, dr_lab, ha_lab, has_address, start_xlb_in, wait_addr, wait_for,
    xlb_bin, xlb_status_json,
};

/// A VRRP-only config (no virtual server, no XDP): `LAB_VIP` as the VIP and `LAB_VIP6`
/// excluded from adverts, one announcement burst (no second one after 5 s), and
/// `notify_master` running `notify` when given.
fn vrrp_config(priority: u8, notify: Option<&Path>) -> String {
    let notify = notify.map_or_else(String::new, |p| {
        format!("notify_master = \"{}\"\n", p.display())
    });
    format!(
        r#"[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = {priority}
advert_int = 1
garp_master_delay = 0
virtual_ipaddress = ["{LAB_VIP}/32"]
virtual_ipaddress_excluded = ["{LAB_VIP6}/128"]
{notify}"#
    )
}

/// Starts `xlb run` with `config` in namespace `ns` of an HA lab (label `label`).
fn start(lab: &mut Lab, ns: &str, label: &str, config: &str) {
    let path = lab.tmp.join(format!("{ns}.toml"));
    std::fs::write(&path, config).expect("config");
    start_xlb_in(lab, ns, label, &path);
}

/// The pin path `start_xlb_in` gives the daemon in `ns`.
fn pins_of(lab: &Lab, ns: &str) -> PathBuf {
    lab.pins.0.join(ns)
}

/// `/run/xlb/<pin path>.<suffix>`: where the daemon on `pins` writes its dumps, beside
/// its status file.
fn run_file(pins: &Path, suffix: &str) -> PathBuf {
    let status = xlb::daemon::default_state_file(pins);
    let name = status
        .to_string_lossy()
        .replace(".status.json", &format!(".{suffix}"));
    PathBuf::from(name)
}

/// Waits until `label`'s log has a line containing every one of `words`.
fn wait_line(lab: &Lab, label: &str, words: &[&str], timeout: Duration) {
    wait_for(timeout, &format!("{label}: a line with {words:?}"), || {
        let log = lab.log(label);
        let found = log.lines().any(|l| words.iter().all(|w| l.contains(w)));
        (found.then_some(()), log)
    });
}

/// The state letter of process `pid` (R, S, T for stopped, Z for exited), or None if
/// it is gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn assert_running(lab: &Lab, label: &str) {
    let state = proc_state(lab.pid(label));
    assert!(
        matches!(state, Some('R' | 'S' | 'D')),
        "{label} is not running (state {state:?}):\n{}",
        lab.log(label)
    );
}

/// Captures ARP and neighbour advertisements on the client's link (label "tcpdump").
fn capture_announcements(lab: &mut Lab) {
    let mut cmd = lab.command("client", Path::new("tcpdump"));
    cmd.args([
        "-i",
        "eth0",
        "-n",
        "-l",
        "arp or (icmp6 and ip6[40] == 136)",
    ]);
    lab.spawn("tcpdump", cmd);
    lab.wait_log("tcpdump", "listening on", Duration::from_secs(10));
}

#[test]
fn a_vip_deleted_by_hand_is_put_back_by_the_master_and_left_alone_by_the_backup() {
    let mut lab = ha_lab("vipdel", 0);
    start(&mut lab, "dir1", "xlb1", &vrrp_config(200, None));
    wait_addr(&lab, "dir1", LAB_VIP, true, Duration::from_secs(10));
    start(&mut lab, "dir2", "xlb2", &vrrp_config(100, None));
    wait_line(
        &lab,
        "xlb2",
        &["VRRP transition", "to=BACKUP"],
        Duration::from_secs(5),
    );
    // From here on, announcements on the wire can only be answers to the deletions.
    capture_announcements(&mut lab);

    lab.sh("dir1", &format!("ip addr del {LAB_VIP}/32 dev eth0"));
    wait_addr(&lab, "dir1", LAB_VIP, true, Duration::from_secs(1));
    wait_line(
        &lab,
        "xlb1",
        &[&format!(
            "VIP {LAB_VIP}/32 removed from eth0 by someone else; restoring"
        )],
        Duration::from_secs(1),
    );
    wait_line(
        &lab,
        "tcpdump",
        &[&format!("who-has {LAB_VIP}"), &format!("tell {LAB_VIP}")],
        Duration::from_secs(2),
    );

    // The excluded IPv6 VIP too, announced by an unsolicited NA.
    lab.sh("dir1", &format!("ip -6 addr del {LAB_VIP6}/128 dev eth0"));
    wait_addr(&lab, "dir1", LAB_VIP6, true, Duration::from_secs(1));
    wait_line(
        &lab,
        "xlb1",
        &[&format!(
            "VIP {LAB_VIP6}/128 removed from eth0 by someone else; restoring"
        )],
        Duration::from_secs(1),
    );
    wait_line(
        &lab,
        "tcpdump",
        &["neighbor advertisement", &format!("tgt is {LAB_VIP6}")],
        Duration::from_secs(2),
    );
    let masters = lab.log("xlb1").matches("to=MASTER").count();
    assert_eq!(
        masters,
        1,
        "restored without a transition:\n{}",
        lab.log("xlb1")
    );
    // Counted, for `xlb status` and the metrics.
    let s = xlb_status_json(&pins_of(&lab, "dir1"));
    assert_eq!(s["vrrp"][0]["counts"]["vips_restored"], 2, "{s}");

    // The BACKUP: holds nothing, restores nothing, and leaves an address added by hand
    // alone (as keepalived does).
    assert!(!has_address(&lab, "dir2", LAB_VIP));
    lab.sh("dir2", &format!("ip addr add {LAB_VIP}/32 dev eth0"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(has_address(&lab, "dir2", LAB_VIP), "added by hand: kept");
    lab.sh("dir2", &format!("ip addr del {LAB_VIP}/32 dev eth0"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !has_address(&lab, "dir2", LAB_VIP),
        "a BACKUP restores nothing"
    );
    assert!(
        !lab.log("xlb2").contains("restoring"),
        "{}",
        lab.log("xlb2")
    );
    assert_running(&lab, "xlb1");
    assert_running(&lab, "xlb2");
}

/// A director config whose start-up takes INITIAL_RESOLVE_WAIT (3 s): its real server
/// is on-link but absent, so its MAC never resolves. `ports` virtual servers.
fn slow_start_config(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|port| {
            format!(
                r#"
[[virtual_server]]
ip = "{LAB_VIP}"
port = {port}
protocol = "TCP"
lb_algo = "rr"
interface = "eth0"

[[virtual_server.real_server]]
ip = "198.18.0.50"
port = {port}
"#
            )
        })
        .collect()
}

#[test]
fn a_sighup_during_start_up_is_a_reload_once_started() {
    let mut lab = dr_lab("hupstart", 0);
    let config = lab.tmp.join("xlb.toml");
    std::fs::write(&config, slow_start_config(&[80])).unwrap();
    let mut cmd = lab.command("dir", &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(&config)
        .arg("--pin-path")
        .arg(&lab.pins.0);
    lab.spawn("xlb", cmd);
    std::thread::sleep(Duration::from_millis(500));
    // The change the SIGHUP carries: a second service.
    std::fs::write(&config, slow_start_config(&[80, 81])).unwrap();
    assert!(
        !lab.log("xlb").contains("xlb running"),
        "start-up was over before the signal; the test needs a slower start"
    );
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log("xlb", "xlb running", Duration::from_secs(20));
    wait_line(
        &lab,
        "xlb",
        &["SIGHUP received", "once start-up is over"],
        Duration::from_secs(2),
    );
    lab.wait_log("xlb", "config reloaded", Duration::from_secs(10));
    let out = Command::new(xlb_bin())
        .args(["status", "--json", "--pin-path"])
        .arg(&lab.pins.0)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "xlb status --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let ports: Vec<u64> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, [80, 81], "{status}");
    assert_running(&lab, "xlb");
}

#[test]
fn dump_signals_write_root_only_files_and_every_other_signal_is_logged_not_fatal() {
    use std::os::unix::fs::PermissionsExt;

    let mut lab = ha_lab("sigs", 0);
    // What a script xlb runs inherits: no ignored and no blocked signal.
    let sigs = lab.tmp.join("child-signals");
    let script = lab.tmp.join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ngrep -E '^Sig(Blk|Ign)' /proc/$$/status > {}\n",
            sigs.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    start(&mut lab, "dir1", "xlb", &vrrp_config(200, Some(&script)));
    wait_addr(&lab, "dir1", LAB_VIP, true, Duration::from_secs(10));
    let inherited = wait_for(Duration::from_secs(5), "the notify script's output", || {
        let text = std::fs::read_to_string(&sigs).unwrap_or_default();
        (text.lines().count().eq(&2).then(|| text.clone()), text)
    });
    // Signals 32 and 33 are glibc's own (its posix_spawn leaves them ignored; glibc
    // installs its handlers again in every program it starts).
    let glibc_own = (1u64 << 31) | (1u64 << 32);
    for line in inherited.lines() {
        let mask = line.split_whitespace().nth(1).unwrap();
        let mask = u64::from_str_radix(mask, 16).unwrap();
        assert_eq!(mask & !glibc_own, 0, "script inherited {line}");
    }

    let pins = pins_of(&lab, "dir1");
    let dumps = [
        (libc::SIGUSR1, "data"),
        (libc::SIGUSR2, "stats"),
        (libc::SIGRTMIN() + 2, "json"),
        (libc::SIGRTMAX() - 1, "stats"),
    ];
    for (signal, suffix) in dumps {
        let path = run_file(&pins, suffix);
        let _ = std::fs::remove_file(&path);
        lab.signal("xlb", signal);
        let text = wait_for(
            Duration::from_secs(5),
            &format!("{}", path.display()),
            || {
                assert_running(&lab, "xlb");
                (std::fs::read_to_string(&path).ok(), String::new())
            },
        );
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}:\n{text}", path.display()));
        assert_eq!(v["vrrp"][0]["name"], "VI_1", "{text}");
        assert_eq!(v["vrrp"][0]["state"], "MASTER", "{text}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        wait_line(
            &lab,
            "xlb",
            &[&path.display().to_string()],
            Duration::from_secs(2),
        );
        let _ = std::fs::remove_file(&path);
    }

    // Signals with no meaning for xlb: logged, ignored, and never stop or end it.
    let ignored = [
        (libc::SIGWINCH, "SIGWINCH"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGURG, "SIGURG"),
        (libc::SIGTSTP, "SIGTSTP"),
        (libc::SIGTTIN, "SIGTTIN"),
        (libc::SIGTTOU, "SIGTTOU"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGPWR, "SIGPWR"),
        (libc::SIGSTKFLT, "SIGSTKFLT"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGSYS, "SIGSYS"),
        (libc::SIGRTMIN(), "SIGRTMIN"),
        (libc::SIGRTMIN() + 5, "SIGRTMIN+5"),
        (libc::SIGRTMAX() - 3, "SIGRTMAX-3"),
        (libc::SIGRTMAX(), "SIGRTMAX"),
    ];
    for (signal, name) in ignored {
        lab.signal("xlb", signal);
        wait_line(
            &lab,
            "xlb",
            &[&format!("{name} received: ignored")],
            Duration::from_secs(2),
        );
        assert_running(&lab, "xlb");
    }
    assert!(has_address(&lab, "dir1", LAB_VIP), "still MASTER");

    // SIGQUIT: a shutdown like SIGTERM's (the VIP is given up), not a core dump.
    let pid = lab.pid("xlb");
    lab.signal("xlb", libc::SIGQUIT);
    wait_line(
        &lab,
        "xlb",
        &["SIGQUIT received: shutting down"],
        Duration::from_secs(2),
    );
    wait_addr(&lab, "dir1", LAB_VIP, false, Duration::from_secs(5));
    wait_for(Duration::from_secs(5), "xlb to exit", || {
        let state = proc_state(pid);
        (
            matches!(state, None | Some('Z')).then_some(()),
            format!("{state:?}"),
        )
    });
}
