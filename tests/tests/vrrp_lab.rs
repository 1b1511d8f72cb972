//! Two xlb directors in one VRRP group, in network namespaces: election, failover,
//! graceful handover and preemption, with the client's traffic following the VIP.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use integration_tests::netns::{
    LAB_VIP, Lab, ha_lab, has_address, http_get, lab_mh_service, lab_real, mac_of, start_xlb_in,
    wait_for, wait_vip, xlb_bin,
};

fn vip(port: u16) -> SocketAddr {
    format!("{LAB_VIP}:{port}").parse().unwrap()
}

/// A director's config: one VRRP instance owning the VIP, one virtual server on it.
fn config(priority: u8, extra: &str) -> String {
    format!(
        r#"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = {priority}
advert_int = 1
virtual_ipaddress = ["{LAB_VIP}/32"]
{extra}
{service}"#,
        service = lab_mh_service()
    )
}

fn write(lab: &Lab, name: &str, text: &str) -> std::path::PathBuf {
    let p = lab.tmp.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The MAC the client's neighbour table has for the VIP.
fn client_arp(lab: &Lab) -> String {
    lab.sh("client", &format!("ip neigh show {LAB_VIP}"))
}

fn serve_ok(lab: &Lab) {
    let body = lab.within("client", || {
        http_get(vip(80), "/").expect("request through the VIP")
    });
    assert!(body.contains(LAB_VIP), "{body}");
}

#[test]
fn the_higher_priority_director_wins_and_a_crash_moves_the_vip() {
    let mut lab = ha_lab("vrrp", 2);
    let c1 = write(&lab, "dir1.toml", &config(150, ""));
    let c2 = write(&lab, "dir2.toml", &config(100, ""));
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    assert!(
        !has_address(&lab, "dir2", LAB_VIP),
        "both directors hold the VIP"
    );
    serve_ok(&lab);
    assert!(
        client_arp(&lab).contains(&mac_of(&lab, "dir1")),
        "{}",
        client_arp(&lab)
    );
    // `xlb status` shows each director's VRRP state next to its data plane.
    std::thread::sleep(Duration::from_millis(600));
    for (ns, state, active) in [("dir1", "MASTER", true), ("dir2", "BACKUP", false)] {
        let out = std::process::Command::new(xlb_bin())
            .args(["status", "--json", "--pin-path"])
            .arg(lab.pins.0.join(ns))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(s["vrrp"][0]["state"], state, "{ns}: {s}");
        assert_eq!(s["services"][0]["active"], active, "{ns}: {s}");
    }

    // Crash: kill -9 and the master's link goes down.
    lab.kill("xlb1", libc::SIGKILL);
    lab.sh("dir1", "ip link set eth0 down");
    let took = wait_vip(&lab, "dir2", true, Duration::from_secs(8));
    println!("crash failover: backup holds the VIP after {took:?}");
    // Gratuitous ARP moved the client.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !client_arp(&lab).contains(&mac_of(&lab, "dir2")) {
        assert!(
            Instant::now() < deadline,
            "client still has {}",
            client_arp(&lab)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    serve_ok(&lab);
}

#[test]
fn a_graceful_stop_hands_over_within_the_skew_time_and_preemption_takes_it_back() {
    let mut lab = ha_lab("vrrpstop", 2);
    let c1 = write(&lab, "dir1.toml", &config(150, ""));
    let c2 = write(&lab, "dir2.toml", &config(100, ""));
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));

    let t = Instant::now();
    lab.kill("xlb1", libc::SIGTERM);
    wait_vip(&lab, "dir2", true, Duration::from_secs(3));
    let took = t.elapsed();
    println!("graceful handover: {took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "priority 0 should hand over within skew time"
    );
    assert!(
        !has_address(&lab, "dir1", LAB_VIP),
        "a resigned master removes its VIP"
    );
    serve_ok(&lab);

    // dir1 comes back with the higher priority: it preempts.
    start_xlb_in(&mut lab, "dir1", "xlb1b", &c1);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    wait_vip(&lab, "dir2", false, Duration::from_secs(3));
    serve_ok(&lab);
}

#[test]
fn a_failing_vrrp_script_lowers_the_priority_and_notify_scripts_report_transitions() {
    let mut lab = ha_lab("vrrptrack", 2);
    let flag = lab.tmp.join("healthy");
    std::fs::write(&flag, "").unwrap();
    let notes1 = lab.tmp.join("notify-dir1.log");
    let notes2 = lab.tmp.join("notify-dir2.log");
    let notify = |file: &std::path::Path| {
        format!(
            "notify_master = \"sh -c 'echo MASTER >> {f}'\"\n\
             notify_backup = \"sh -c 'echo BACKUP >> {f}'\"\n\
             notify = \"sh -c 'echo \\\"$0 $@\\\" >> {f}.all'\"",
            f = file.display()
        )
    };
    let script = format!(
        "\n[vrrp_script.chk_app]\nscript = \"test -f {}\"\ninterval = 0.2\nweight = -60\nfall = 2\nrise = 1\n",
        flag.display()
    );
    let c1 = write(
        &lab,
        "dir1.toml",
        &format!(
            "{}{script}",
            config(
                150,
                &format!("track_script = [\"chk_app\"]\n{}", notify(&notes1))
            )
        ),
    );
    let c2 = write(&lab, "dir2.toml", &config(100, &notify(&notes2)));
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    serve_ok(&lab);

    // The checked application fails: 150 - 60 = 90 < 100, dir2 preempts.
    std::fs::remove_file(&flag).unwrap();
    let took = wait_vip(&lab, "dir2", true, Duration::from_secs(8));
    wait_vip(&lab, "dir1", false, Duration::from_secs(3));
    println!("script failure moved the VIP after {took:?}");
    serve_ok(&lab);

    // It recovers: dir1 is back at 150 and preempts.
    std::fs::write(&flag, "").unwrap();
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    wait_vip(&lab, "dir2", false, Duration::from_secs(3));

    std::thread::sleep(Duration::from_millis(300));
    let n1 = std::fs::read_to_string(&notes1).unwrap_or_default();
    let n2 = std::fs::read_to_string(&notes2).unwrap_or_default();
    // Both start in BACKUP, as keepalived does (and says so to notify_backup).
    assert_eq!(
        n1.lines().collect::<Vec<_>>(),
        ["BACKUP", "MASTER", "BACKUP", "MASTER"],
        "dir1: {n1}"
    );
    assert_eq!(
        n2.lines().collect::<Vec<_>>(),
        ["BACKUP", "MASTER", "BACKUP"],
        "dir2: {n2}"
    );
    let all = std::fs::read_to_string(format!("{}.all", notes1.display())).unwrap_or_default();
    assert!(
        all.contains("INSTANCE VI_1 MASTER 150"),
        "generic notify: {all}"
    );
    assert!(
        all.contains("INSTANCE VI_1 BACKUP 90"),
        "generic notify: {all}"
    );
}

/// A real SMTP server (the `smtpd` module of Debian's Python 3.11, which `cargo xtask
/// setup` installs, printing what it receives) in namespace `ns` on 127.0.0.1:`port`, up
/// and listening when this returns.
fn start_smtp_relay(lab: &mut Lab, ns: &str, label: &str, port: u16) {
    let mut cmd = lab.command(ns, std::path::Path::new("/usr/bin/python3"));
    cmd.args([
        "-u",
        "-W",
        "ignore",
        "-m",
        "smtpd",
        "-n",
        "-c",
        "DebuggingServer",
    ])
    .arg(format!("127.0.0.1:{port}"));
    lab.spawn(label, cmd);
    let listening = format!("127.0.0.1:{port}");
    wait_for(
        Duration::from_secs(10),
        "the SMTP relay listening (python3 -m smtpd needs Python <= 3.11)",
        || {
            let up = lab.sh(ns, "ss -Hltn").contains(&listening);
            (up.then_some(()), lab.log(label))
        },
    );
}

/// dir1's config for the notification tests: `global` in `[global_defs]`, the VRRP
/// instance, and a service on port 8080 whose one real server's check port is closed.
fn notifying_config(global: &str) -> String {
    format!(
        r#"
[global_defs]
router_id = "dir1"
{global}
{}
[[virtual_server]]
ip = "{LAB_VIP}"
port = 8080
protocol = "TCP"
lb_algo = "rr"
delay_loop = 1

[[virtual_server.real_server]]
ip = "{rs}"
port = 8080
tcp_check = {{ connect_timeout = 1, retry = 0 }}
"#,
        config(150, ""),
        rs = lab_real(2)
    )
}

#[test]
fn mail_alerts_reach_a_real_smtp_relay_on_transitions_and_real_server_failures() {
    let mut lab = ha_lab("vrrpmail", 2);
    start_smtp_relay(&mut lab, "dir1", "smtp", 2525);
    let text = notifying_config(
        r#"notification_email = ["ops@example.org", "noc@example.org"]
notification_email_from = "xlb@dir1.example.org"
smtp_server = "127.0.0.1:2525"
smtp_connect_timeout = 5
smtp_alert = true"#,
    );
    let c1 = write(&lab, "dir1.toml", &text);
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    let master = "Subject: [dir1] VRRP Instance VI_1 - Entering MASTER state";
    let down = format!(
        "Subject: [dir1] Realserver [{}]:tcp:8080 - DOWN",
        lab_real(2)
    );
    lab.wait_log("smtp", master, Duration::from_secs(10));
    lab.wait_log("smtp", &down, Duration::from_secs(10));
    let mail = lab.log("smtp");
    // keepalived's order: every instance starts in BACKUP, then wins the election.
    let backup = mail
        .find("Subject: [dir1] VRRP Instance VI_1 - Entering BACKUP state")
        .expect("a BACKUP mail first");
    assert!(backup < mail.find(master).unwrap(), "{mail}");
    assert!(mail.contains("From: xlb@dir1.example.org"), "{mail}");
    assert!(
        mail.contains("To: ops@example.org, noc@example.org"),
        "{mail}"
    );
    assert!(
        mail.contains("=> VRRP Instance is now owning VRRP VIPs <="),
        "{mail}"
    );
    assert!(
        mail.contains("=> CHECK failed on service: tcp_check"),
        "{mail}"
    );
    assert!(
        lab.log("xlb1").contains("mail alert sent"),
        "{}",
        lab.log("xlb1")
    );
}

#[test]
fn a_notify_fifo_reader_gets_every_event_and_the_fifo_goes_with_xlb() {
    let mut lab = ha_lab("vrrpfifo", 2);
    let fifo = lab.tmp.join("xlb.fifo");
    let events = lab.tmp.join("events");
    let reader = lab.tmp.join("reader.sh");
    std::fs::write(
        &reader,
        format!("#!/bin/sh\nexec cat \"$1\" >> {}\n", events.display()),
    )
    .unwrap();
    std::fs::set_permissions(&reader, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let text = notifying_config(&format!(
        "notify_fifo = \"{}\"\nnotify_fifo_script = \"{}\"",
        fifo.display(),
        reader.display()
    ));
    let c1 = write(&lab, "dir1.toml", &text);
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    let rs_down = format!("RS [{}]:tcp:8080 [{LAB_VIP}]:tcp:8080 DOWN", lab_real(2));
    let got = wait_for(Duration::from_secs(10), "the DOWN and MASTER lines", || {
        let got = std::fs::read_to_string(&events).unwrap_or_default();
        let both = got.contains(&rs_down) && got.contains("INSTANCE \"VI_1\" MASTER");
        (both.then(|| got.clone()), got)
    });
    let lines: Vec<&str> = got.lines().filter(|l| l.starts_with("INSTANCE")).collect();
    assert_eq!(
        lines[..2],
        [
            "INSTANCE \"VI_1\" BACKUP 150",
            "INSTANCE \"VI_1\" MASTER 150"
        ],
        "{got}"
    );
    // xlb made the FIFO: it goes at exit, and so does the reader.
    lab.kill("xlb1", libc::SIGTERM);
    assert!(!fifo.exists(), "the FIFO outlived xlb");
    // The reader execs `cat <fifo>`.
    let cats = lab.sh("dir1", "pgrep -a -x cat || true");
    let fifo_name = fifo.display().to_string();
    assert!(
        !cats.lines().any(|l| l.contains(&fifo_name)),
        "reader still runs: {cats}"
    );
}

#[test]
fn a_reload_that_changes_only_notify_settings_keeps_the_master() {
    let mut lab = ha_lab("vrrpnotify", 0);
    let log = |name: &str| lab.tmp.join(name);
    let (first, second, backup_log) = (log("fault-1"), log("fault-2"), log("dir2-master"));
    let c1 = write(
        &lab,
        "dir1.toml",
        &config(
            150,
            &format!("notify_fault = \"touch {}\"", first.display()),
        ),
    );
    let c2 = write(
        &lab,
        "dir2.toml",
        &config(
            100,
            &format!("notify_master = \"touch {}\"", backup_log.display()),
        ),
    );
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));

    std::fs::write(
        &c1,
        config(
            150,
            &format!("notify_fault = \"touch {}\"", second.display()),
        ),
    )
    .unwrap();
    lab.signal("xlb1", libc::SIGHUP);
    lab.wait_log(
        "xlb1",
        "new settings applied in place",
        Duration::from_secs(5),
    );
    // A restart would have resigned: dir2 would have taken the VIP for a moment.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(has_address(&lab, "dir1", LAB_VIP));
    assert!(!backup_log.exists(), "dir2 became MASTER during the reload");

    // The next transition runs the new command, not the old one.
    lab.sh("dir1", "ip link set eth0 down");
    wait_for(Duration::from_secs(5), "the new notify_fault", || {
        (second.exists().then_some(()), String::new())
    });
    assert!(!first.exists(), "the old notify_fault ran");
}

#[test]
fn a_vip_left_by_a_crashed_predecessor_is_removed_at_startup() {
    let mut lab = ha_lab("vrrpstale", 0);
    let c1 = write(&lab, "dir1.toml", &config(150, ""));
    let c2 = write(&lab, "dir2.toml", &config(100, ""));
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    // What a kill -9 of a master leaves behind when its link stays up.
    lab.sh("dir2", &format!("ip addr add {LAB_VIP}/32 dev eth0"));
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir2", false, Duration::from_secs(2));
    assert!(has_address(&lab, "dir1", LAB_VIP));
}

#[test]
fn vrrp_v3_over_ipv6_elects_and_fails_over() {
    let mut lab = ha_lab("vrrp6", 0);
    let cfg = |prio: u8| {
        format!(
            "[[vrrp_instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvirtual_router_id = 61\n\
             priority = {prio}\nversion = 3\nadvert_int = 0.2\nvirtual_ipaddress = [\"2001:db8::100/128\"]\n"
        )
    };
    let c1 = write(&lab, "dir1.toml", &cfg(150));
    let c2 = write(&lab, "dir2.toml", &cfg(100));
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    let has6 = |lab: &Lab, ns: &str| has_address(lab, ns, "2001:db8::100");
    let deadline = Instant::now() + Duration::from_secs(8);
    while !has6(&lab, "dir1") {
        assert!(
            Instant::now() < deadline,
            "dir1 never became IPv6 master:\n{}",
            lab.log("xlb1")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !has6(&lab, "dir2"),
        "both hold the IPv6 VIP:\n{}",
        lab.log("xlb2")
    );
    assert!(
        !lab.log("xlb2").contains("advert rejected"),
        "{}",
        lab.log("xlb2")
    );
    let t = Instant::now();
    lab.kill("xlb1", libc::SIGTERM);
    while !has6(&lab, "dir2") {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "no IPv6 takeover:\n{}",
            lab.log("xlb2")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("IPv6 v3 graceful handover after {:?}", t.elapsed());
}
