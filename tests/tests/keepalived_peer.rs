//! xlb and a real keepalived 2.2.7 in one VRRP group: users migrate one director at a
//! time, so each must accept the other as master or backup, for v2 with PASS
//! authentication over multicast, v3, and unicast.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use integration_tests::netns::{
    LAB_DIRECTOR, LAB_DIRECTOR2, LAB_VIP, Lab, ha_lab, has_address, start_xlb_in, wait_vip,
};

#[derive(Clone, Copy, Debug)]
enum Mode {
    V2PassMulticast,
    V3Multicast,
    V2Unicast,
}

/// xlb's config for `dir1` (VRRP only: no virtual server, so no XDP either).
fn xlb_config(mode: Mode, priority: u8) -> String {
    let body = match mode {
        Mode::V2PassMulticast => {
            "version = 2\nadvert_int = 1\nauthentication = { auth_type = \"PASS\", auth_pass = \"1111\" }".to_string()
        }
        Mode::V3Multicast => "version = 3\nadvert_int = 0.5".to_string(),
        Mode::V2Unicast => format!(
            "version = 2\nadvert_int = 1\nunicast_src_ip = \"{LAB_DIRECTOR}\"\nunicast_peer = [\"{LAB_DIRECTOR2}\"]"
        ),
    };
    format!(
        r#"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = {priority}
virtual_ipaddress = ["{LAB_VIP}/32"]
{body}
"#
    )
}

/// keepalived's config for `dir2`.
fn keepalived_config(mode: Mode, priority: u8) -> String {
    let body = match mode {
        Mode::V2PassMulticast => {
            "    advert_int 1\n    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n".to_string()
        }
        Mode::V3Multicast => "    advert_int 0.5\n".to_string(),
        Mode::V2Unicast => format!(
            "    advert_int 1\n    unicast_src_ip {LAB_DIRECTOR2}\n    unicast_peer {{\n        {LAB_DIRECTOR}\n    }}\n"
        ),
    };
    let version = if matches!(mode, Mode::V3Multicast) {
        3
    } else {
        2
    };
    format!(
        "global_defs {{\n    router_id kd2\n    vrrp_version {version}\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         priority {priority}\n{body}    virtual_ipaddress {{\n        {LAB_VIP}/32\n    }}\n}}\n"
    )
}

fn start_keepalived(lab: &mut Lab, label: &str, config: &str) {
    start_keepalived_in(lab, "dir2", label, config);
}

fn start_keepalived_in(lab: &mut Lab, ns: &str, label: &str, config: &str) {
    let dir = lab.tmp.join(label);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, config).unwrap();
    let pid = |n: &str| -> PathBuf { dir.join(n) };
    let mut cmd = lab.command(ns, Path::new("keepalived"));
    cmd.args(["-n", "-l", "-D", "-P", "-f"])
        .arg(&conf)
        .arg("-p")
        .arg(pid("keepalived.pid"))
        .arg("-r")
        .arg(pid("vrrp.pid"))
        .arg("-c")
        .arg(pid("checkers.pid"))
        .arg("-b")
        .arg(pid("bfd.pid"));
    lab.spawn(label, cmd);
    lab.wait_log(label, "(VI_1) Entering", Duration::from_secs(10));
}

/// Both directors on the lab's link; only VRRP runs (the real servers are not needed).
fn lab(tag: &str) -> Lab {
    ha_lab(tag, 0)
}

fn keepalived_master_then_crash(mode: Mode) {
    let mut lab = lab("kdm");
    start_keepalived(&mut lab, "keepalived", &keepalived_config(mode, 150));
    wait_vip(&lab, "dir2", true, Duration::from_secs(8));
    let conf = lab.tmp.join("xlb.toml");
    std::fs::write(&conf, xlb_config(mode, 100)).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &conf);
    // xlb hears keepalived's adverts and stays BACKUP.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !has_address(&lab, "dir1", LAB_VIP),
        "{mode:?}: xlb took the VIP from a higher-priority keepalived"
    );
    assert!(has_address(&lab, "dir2", LAB_VIP));
    assert!(
        !lab.log("xlb").contains("advert rejected"),
        "{}",
        lab.log("xlb")
    );

    // A crash: the link goes down first, so that keepalived's VRRP child, which resigns
    // when its parent dies, cannot send the priority-0 advert of a graceful stop.
    lab.sh("dir2", "ip link set eth0 down");
    lab.kill("keepalived", libc::SIGKILL);
    let took = wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    println!("{mode:?}: keepalived crashed, xlb took over after {took:?}");
    assert!(
        took > Duration::from_secs(1),
        "{mode:?}: a crash cannot be noticed before the master-down interval"
    );
}

fn xlb_master_then_graceful_stop(mode: Mode) {
    let mut lab = lab("xlbm");
    let conf = lab.tmp.join("xlb.toml");
    std::fs::write(&conf, xlb_config(mode, 150)).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &conf);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    start_keepalived(&mut lab, "keepalived", &keepalived_config(mode, 100));
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !has_address(&lab, "dir2", LAB_VIP),
        "{mode:?}: keepalived took the VIP from a higher-priority xlb:\n{}",
        lab.log("keepalived")
    );
    assert!(
        lab.log("keepalived").contains("Entering BACKUP STATE"),
        "{}",
        lab.log("keepalived")
    );
    assert!(
        !lab.log("keepalived").to_lowercase().contains("invalid")
            && !lab.log("keepalived").contains("bad checksum"),
        "keepalived complains about xlb's adverts:\n{}",
        lab.log("keepalived")
    );

    let t = Instant::now();
    lab.kill("xlb", libc::SIGTERM);
    wait_vip(&lab, "dir2", true, Duration::from_secs(4));
    println!(
        "{mode:?}: xlb stopped gracefully, keepalived took over after {:?}",
        t.elapsed()
    );
    assert!(!has_address(&lab, "dir1", LAB_VIP));
}

#[test]
fn v2_pass_multicast_keepalived_master_xlb_backup() {
    keepalived_master_then_crash(Mode::V2PassMulticast);
}

#[test]
fn v2_pass_multicast_xlb_master_keepalived_backup() {
    xlb_master_then_graceful_stop(Mode::V2PassMulticast);
}

#[test]
fn v3_keepalived_master_xlb_backup() {
    keepalived_master_then_crash(Mode::V3Multicast);
}

#[test]
fn v3_xlb_master_keepalived_backup() {
    xlb_master_then_graceful_stop(Mode::V3Multicast);
}

#[test]
fn unicast_keepalived_master_xlb_backup() {
    keepalived_master_then_crash(Mode::V2Unicast);
}

#[test]
fn unicast_xlb_master_keepalived_backup() {
    xlb_master_then_graceful_stop(Mode::V2Unicast);
}

/// The same topology with keepalived on both directors: the reference figures that xlb's
/// failover times are compared with (printed; the test asserts only that it fails over).
#[test]
fn keepalived_pair_reference_failover_times() {
    for mode in [Mode::V2PassMulticast, Mode::V3Multicast] {
        let mut lab = lab("kdref");
        // keepalived_config() is written for dir2; for dir1 swap the unicast roles (not used
        // in these modes) and raise the priority.
        start_keepalived_in(
            &mut lab,
            "dir1",
            "kd1",
            &keepalived_config(mode, 150).replace("kd2", "kd1"),
        );
        wait_vip(&lab, "dir1", true, Duration::from_secs(8));
        start_keepalived_in(&mut lab, "dir2", "kd2", &keepalived_config(mode, 100));
        std::thread::sleep(Duration::from_secs(2));
        assert!(!has_address(&lab, "dir2", LAB_VIP));
        // Graceful: SIGTERM, keepalived resigns with priority 0.
        let t = Instant::now();
        lab.kill("kd1", libc::SIGTERM);
        wait_vip(&lab, "dir2", true, Duration::from_secs(4));
        let graceful = t.elapsed();
        // Back, then a crash: link down first.
        start_keepalived_in(
            &mut lab,
            "dir1",
            "kd1b",
            &keepalived_config(mode, 150).replace("kd2", "kd1"),
        );
        wait_vip(&lab, "dir1", true, Duration::from_secs(8));
        wait_vip(&lab, "dir2", false, Duration::from_secs(4));
        std::thread::sleep(Duration::from_secs(1));
        let t = Instant::now();
        lab.sh("dir1", "ip link set eth0 down");
        lab.kill("kd1b", libc::SIGKILL);
        wait_vip(&lab, "dir2", true, Duration::from_secs(8));
        let crash = t.elapsed();
        println!("keepalived <-> keepalived {mode:?}: graceful {graceful:?}, crash {crash:?}");
    }
}

/// The migration path: dir1's keepalived.conf is converted with `xlb import-keepalived`
/// and xlb runs it; keepalived on dir2 accepts xlb as the master.
#[test]
fn an_imported_keepalived_conf_runs_in_the_keepalived_group() {
    let mut lab = lab("kdimport");
    let original = lab.tmp.join("dir1-keepalived.conf");
    std::fs::write(
        &original,
        keepalived_config(Mode::V2PassMulticast, 150).replace("kd2", "kd1"),
    )
    .unwrap();
    let imported = lab.tmp.join("dir1.toml");
    let out = std::process::Command::new(integration_tests::netns::xlb_bin())
        .arg("import-keepalived")
        .arg(&original)
        .arg("-o")
        .arg(&imported)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start_keepalived(
        &mut lab,
        "keepalived",
        &keepalived_config(Mode::V2PassMulticast, 100),
    );
    start_xlb_in(&mut lab, "dir1", "xlb", &imported);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    wait_vip(&lab, "dir2", false, Duration::from_secs(4));
    assert!(
        !lab.log("xlb").contains("advert rejected"),
        "{}",
        lab.log("xlb")
    );
}
