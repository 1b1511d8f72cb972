//! `vrrp_sync_group` against a real keepalived 2.2.7: xlb on `dir1` and keepalived on
//! `dir2` each run VI_1 (on eth0, link A) and VI_2 (on eth1, link B) in a sync group G.
//! xlb is MASTER of both; when VI_1's track_script fails on xlb, VI_2 (whose own link
//! and tracking are fine) must leave MASTER too, so that keepalived takes both: seen on
//! link B's wire (xlb's priority-0 advert for VI_2, then keepalived's adverts), in the
//! addresses, in `xlb status` and in the group's notify commands (`GROUP G STATE`, once
//! per group transition). When the script passes again, xlb takes both back together.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    time::{Duration, Instant},
};

use integration_tests::{
    PinDir,
    netns::{
        LAB_VIP, Lab, build_ha_lab, has_address, keepalived::start_keepalived, start_xlb_in,
        wait_addr, xlb_status,
    },
};

/// VI_2's VIP, on link B.
const VIP_B: &str = "198.18.1.100";
const DIR1_B: &str = "198.18.1.2";
const DIR2_B: &str = "198.18.1.3";

/// The HA lab (link A: eth0 of dir1 and dir2 on bridge `sw`) plus link B: eth1 of both
/// on a second bridge, `sw2`. Names carry `xsync` and this process's PID.
fn lab() -> Lab {
    let lab = Lab::named(&format!("xsync{}", std::process::id()), PinDir::new("sync"));
    let mut lab = build_ha_lab(lab, 0);
    lab.add_ns("sw2");
    lab.bridge("sw2");
    for (short, addr) in [("dir1", DIR1_B), ("dir2", DIR2_B)] {
        let ns = lab.ns(short);
        lab.sh(
            "sw2",
            &format!(
                "ip link add q-{short} type veth peer name eth1 netns {ns} && \
                 ip link set q-{short} master br0 && ip link set q-{short} up"
            ),
        );
        lab.sh(
            short,
            &format!("ip link set eth1 up && ip addr add {addr}/24 dev eth1"),
        );
    }
    lab
}

/// xlb's config: VI_1 tracks a script that fails while `fail_file` exists; group G's
/// `notify` and `notify_fault` run `notify`; its `notify_master` writes who it runs as
/// to `who` (as user nobody, keepalived's `notify_master CMD nobody`).
fn xlb_config(fail_file: &Path, notify: &Path, who: &Path) -> String {
    let (fail, notify, who) = (fail_file.display(), notify.display(), who.display());
    format!(
        r#"
[vrrp_script.chk]
script = "/usr/bin/test ! -e {fail}"
interval = 0.5

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 61
priority = 150
virtual_ipaddress = ["{LAB_VIP}/32"]
track_script = ["chk"]

[[vrrp_instance]]
name = "VI_2"
interface = "eth1"
virtual_router_id = 62
priority = 150
virtual_ipaddress = ["{VIP_B}/32"]

[[vrrp_sync_group]]
name = "G"
group = ["VI_1", "VI_2"]
notify = "{notify}"
notify_fault = "{notify} fault-command"
notify_master = "/bin/sh -c 'id -un > {who}'"
notify_master_user = "nobody"
"#
    )
}

fn keepalived_config() -> String {
    keepalived_config_with(100, 100)
}

/// keepalived's config with VI_1 and VI_2 at these priorities.
fn keepalived_config_with(vi1_priority: u8, vi2_priority: u8) -> String {
    format!(
        "global_defs {{\n    router_id kd2\n}}\n\
         vrrp_sync_group G {{\n    group {{\n        VI_1\n        VI_2\n    }}\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 61\n    \
         priority {vi1_priority}\n    advert_int 1\n    virtual_ipaddress {{\n        {LAB_VIP}/32\n    }}\n}}\n\
         vrrp_instance VI_2 {{\n    state BACKUP\n    interface eth1\n    virtual_router_id 62\n    \
         priority {vi2_priority}\n    advert_int 1\n    virtual_ipaddress {{\n        {VIP_B}/32\n    }}\n}}\n"
    )
}

/// The lines the group's notify commands wrote, once `want` of them are there.
fn notify_lines(path: &Path, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        if lines.len() >= want || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn both(lab: &Lab, ns: &str) -> (bool, bool) {
    (has_address(lab, ns, LAB_VIP), has_address(lab, ns, VIP_B))
}

/// The lab with xlb MASTER of G (both VIPs) and keepalived BACKUP; returns xlb's pins
/// and the file the group's notify commands write to.
fn xlb_master_of_both(lab: &mut Lab) -> (std::path::PathBuf, std::path::PathBuf) {
    let fail = lab.tmp.join("fail");
    let notified = lab.tmp.join("notified");
    let script = lab.tmp.join("notify.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", notified.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A directory user nobody can write to, for the notify_master that runs as nobody.
    let open = lab.tmp.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let conf = lab.tmp.join("xlb.toml");
    std::fs::write(&conf, xlb_config(&fail, &script, &open.join("who"))).unwrap();
    start_xlb_in(lab, "dir1", "xlb", &conf);
    wait_addr(lab, "dir1", LAB_VIP, true, Duration::from_secs(12));
    wait_addr(lab, "dir1", VIP_B, true, Duration::from_secs(12));
    start_keepalived(
        lab,
        "dir2",
        "keepalived",
        &keepalived_config(),
        "(VI_2) Entering BACKUP STATE",
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(both(lab, "dir1"), (true, true));
    assert_eq!(both(lab, "dir2"), (false, false));
    (lab.pins.0.join("dir1"), notified)
}

/// keepalived is reloaded with priority 200 on both instances: its group preempts xlb's
/// (keepalived goes MASTER only when both its members can, and both can), and xlb's
/// group steps down to BACKUP, notified once, and stays there.
#[test]
fn a_better_keepalived_group_takes_both_and_xlb_s_group_steps_down_once() {
    let mut lab = lab();
    let (pins, notified) = xlb_master_of_both(&mut lab);
    let conf = lab.tmp.join("keepalived").join("keepalived.conf");
    std::fs::write(&conf, keepalived_config_with(200, 200)).unwrap();
    lab.signal("keepalived", libc::SIGHUP);
    wait_addr(&lab, "dir2", VIP_B, true, Duration::from_secs(10));
    wait_addr(&lab, "dir2", LAB_VIP, true, Duration::from_secs(10));
    wait_addr(&lab, "dir1", VIP_B, false, Duration::from_secs(2));
    wait_addr(&lab, "dir1", LAB_VIP, false, Duration::from_secs(2));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(both(&lab, "dir1"), (false, false), "{}", lab.log("xlb"));
    assert_eq!(both(&lab, "dir2"), (true, true));
    let status = xlb_status(&pins, &[]);
    assert!(
        status.contains("VRRP sync group G: BACKUP (VI_1, VI_2)"),
        "{status}"
    );
    assert_eq!(
        notify_lines(&notified, 4),
        ["GROUP G BACKUP", "GROUP G MASTER", "GROUP G BACKUP"],
        "the group's BACKUP notified once, no flapping"
    );
}

#[test]
fn a_member_s_fault_takes_the_whole_group_out_of_master_and_keepalived_takes_both() {
    let mut lab = lab();
    let (pins, notified) = xlb_master_of_both(&mut lab);
    let fail = lab.tmp.join("fail");
    let status = xlb_status(&pins, &[]);
    assert!(
        status.contains("VRRP sync group G: MASTER (VI_1, VI_2)"),
        "{status}"
    );
    assert_eq!(
        notify_lines(&notified, 2),
        ["GROUP G BACKUP", "GROUP G MASTER"],
        "startup: BACKUP, then MASTER, once each"
    );
    assert_eq!(
        notify_lines(&lab.tmp.join("open").join("who"), 1),
        ["nobody"],
        "the group's notify_master runs as its notify_master_user"
    );

    // Link B's wire, from keepalived's side.
    let mut tcpdump = lab.command("dir2", Path::new("tcpdump"));
    tcpdump.args(["-i", "eth1", "-nn", "-l", "ip proto 112"]);
    lab.spawn("tcpdump", tcpdump);
    lab.wait_log("tcpdump", "listening on", Duration::from_secs(10));

    // VI_1's script fails on xlb: VI_1 goes FAULT, and the group takes VI_2 with it.
    let t = Instant::now();
    std::fs::write(&fail, "").unwrap();
    wait_addr(&lab, "dir1", VIP_B, false, Duration::from_secs(5));
    let vi2_left = t.elapsed();
    wait_addr(&lab, "dir2", VIP_B, true, Duration::from_secs(8));
    wait_addr(&lab, "dir2", LAB_VIP, true, Duration::from_secs(8));
    println!(
        "VI_1's script failed: xlb's VI_2 left MASTER after {vi2_left:?}, keepalived held \
         both after {:?}",
        t.elapsed()
    );
    assert_eq!(both(&lab, "dir1"), (false, false));
    let status = xlb_status(&pins, &[]);
    println!("{status}");
    assert!(
        status.contains("VRRP sync group G: FAULT (VI_1, VI_2)"),
        "{status}"
    );
    for name in ["VI_1", "VI_2"] {
        assert!(
            status
                .lines()
                .any(|l| l.starts_with(&format!("VRRP {name} "))
                    && l.contains("sync group G): FAULT")),
            "{name} not in FAULT:\n{status}"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let wire = lab.log("tcpdump");
    let resigned = format!("{DIR1_B} > 224.0.0.18: VRRPv2, Advertisement, vrid 62, prio 0");
    let keepalived_b = format!("{DIR2_B} > 224.0.0.18: VRRPv2, Advertisement, vrid 62, prio 100");
    let at = |needle: &str| {
        wire.find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` on link B:\n{wire}"))
    };
    assert!(
        at(&resigned) < at(&keepalived_b),
        "xlb resigns VI_2, then keepalived advertises it:\n{wire}"
    );
    let after = &wire[at(&keepalived_b)..];
    assert!(
        !after.contains(&format!("{DIR1_B} > 224.0.0.18")),
        "xlb's VI_2 (in FAULT with its group) still advertises:\n{wire}"
    );
    let kd = lab.log("keepalived");
    assert!(kd.contains("(VI_1) Entering MASTER STATE"), "{kd}");
    assert!(kd.contains("(VI_2) Entering MASTER STATE"), "{kd}");
    // notify and notify_fault run side by side: either may write first.
    let mut fault = notify_lines(&notified, 4)[2..].to_vec();
    fault.sort();
    assert_eq!(
        fault,
        ["GROUP G FAULT", "fault-command"],
        "the group's FAULT notified once, by notify and by notify_fault"
    );

    // The script passes again: xlb's group leaves FAULT and takes both VIPs back
    // (priority 150 over 100).
    let t = Instant::now();
    std::fs::remove_file(&fail).unwrap();
    wait_addr(&lab, "dir1", LAB_VIP, true, Duration::from_secs(15));
    wait_addr(&lab, "dir1", VIP_B, true, Duration::from_secs(15));
    println!("script passes again: xlb held both after {:?}", t.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(both(&lab, "dir1"), (true, true));
    assert_eq!(both(&lab, "dir2"), (false, false));
    assert!(
        xlb_status(&pins, &[]).contains("VRRP sync group G: MASTER (VI_1, VI_2)"),
        "{}",
        xlb_status(&pins, &[])
    );
    assert_eq!(
        notify_lines(&notified, 6)[4..],
        ["GROUP G BACKUP", "GROUP G MASTER"]
    );
}

/// A reload takes VI_2 out of the group (G keeps VI_1 alone): no transition, xlb stays
/// MASTER of both; from then on VI_1's fault leaves VI_2 MASTER.
#[test]
fn a_reload_takes_a_member_out_of_the_group_in_place() {
    let mut lab = lab();
    let (pins, _notified) = xlb_master_of_both(&mut lab);
    let conf = lab.tmp.join("xlb.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    let out = text.replace(r#"group = ["VI_1", "VI_2"]"#, r#"group = ["VI_1"]"#);
    assert_ne!(out, text);
    std::fs::write(&conf, out).unwrap();
    let transitions = |lab: &Lab| lab.log("xlb").matches("VRRP transition").count();
    let before = transitions(&lab);
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log(
        "xlb",
        "sync group membership changed by reload",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(transitions(&lab), before, "{}", lab.log("xlb"));
    assert_eq!(both(&lab, "dir1"), (true, true));
    assert!(
        lab.log("xlb")
            .contains("vrrp_instance VI_2: changed in place, state kept: vrrp_sync_group"),
        "{}",
        lab.log("xlb")
    );
    // VI_1 fails: it alone leaves MASTER on xlb. (keepalived, whose G still holds both,
    // does not take VI_1 either: its VI_2 hears xlb's, so its group cannot be MASTER,
    // the rule xlb follows too.)
    std::fs::write(lab.tmp.join("fail"), "").unwrap();
    wait_addr(&lab, "dir1", LAB_VIP, false, Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(both(&lab, "dir1"), (false, true), "{}", lab.log("xlb"));
    assert_eq!(
        both(&lab, "dir2"),
        (false, false),
        "{}",
        lab.log("keepalived")
    );
    let status = xlb_status(&pins, &[]);
    assert!(
        status.contains("VRRP sync group G: FAULT (VI_1)"),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("VRRP VI_2 (vrid 62, v2, eth1): MASTER")),
        "{status}"
    );
}
