//! `use_vmac`: xlb's VRRP instance on the virtual MAC (a private macvlan over eth0), with
//! a real keepalived 2.2.7 using `use_vmac` as the peer, and with FRR's vrrpd (which
//! always uses the virtual MAC). On the wire (tcpdump in the client's namespace): the
//! adverts' source MAC, the VIP's MAC in the client's ARP table; XDP on eth0 forwards the
//! client's traffic sent to the virtual MAC; failover both ways; the macvlan and the
//! sysctls xlb changed are gone after it stops.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use integration_tests::netns::{
    LAB_VIP, Lab, ha_lab, has_address, http_get, lab_mh_service, mac_of, start_xlb_in, wait_vip,
    xlb_status, xlb_status_json,
};

const VRID: u8 = 51;
const VMAC: &str = "00:00:5e:00:01:33";
const VMAC_IF: &str = "vrrp.51";

fn xlb_config(priority: u8, extra: &str) -> String {
    format!(
        r#"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = {VRID}
priority = {priority}
advert_int = 1
use_vmac = true
virtual_ipaddress = ["{LAB_VIP}/32"]
{extra}
{service}"#,
        service = lab_mh_service()
    )
}

fn keepalived_config(priority: u8, extra: &str) -> String {
    format!(
        "global_defs {{\n    router_id kd2\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {VRID}\n    \
         priority {priority}\n    advert_int 1\n    use_vmac\n{extra}    virtual_ipaddress {{\n        {LAB_VIP}/32\n    }}\n}}\n"
    )
}

fn start_keepalived(lab: &mut Lab, label: &str, config: &str) {
    let dir = lab.tmp.join(label);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, config).unwrap();
    let pid = |n: &str| -> PathBuf { dir.join(n) };
    let mut cmd = lab.command("dir2", Path::new("keepalived"));
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

/// tcpdump in the client's namespace: every VRRP advert with its Ethernet header.
fn start_capture(lab: &mut Lab, label: &str) {
    let mut cmd = lab.command("client", Path::new("tcpdump"));
    cmd.args(["-i", "eth0", "-e", "-n", "-l", "-U", "ip proto 112"]);
    lab.spawn(label, cmd);
    lab.wait_log(label, "listening on", Duration::from_secs(10));
}

/// Capture lines of adverts from `mac` (source MAC) at priority `prio`.
fn adverts_from(lab: &Lab, label: &str, mac: &str, prio: u8) -> usize {
    lab.log(label)
        .lines()
        // `tcpdump -e` lines read `TIME SRC > DST, ...`.
        .filter(|l| {
            l.split_whitespace().nth(1) == Some(mac) && l.contains(&format!("prio {prio},"))
        })
        .count()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sysctl(lab: &Lab, ns: &str, key: &str) -> String {
    lab.sh(ns, &format!("cat /proc/sys/net/ipv4/conf/{key}"))
        .trim()
        .to_string()
}

fn link_exists(lab: &Lab, ns: &str, name: &str) -> bool {
    lab.sh(ns, &format!("ip -o link show {name} 2>/dev/null || true"))
        .contains(name)
}

/// The client's neighbour entry for the VIP.
fn client_arp(lab: &Lab) -> String {
    lab.sh("client", &format!("ip neigh show {LAB_VIP}"))
}

fn vip(port: u16) -> SocketAddr {
    format!("{LAB_VIP}:{port}").parse().unwrap()
}

/// A request from the client through the VIP, answered by a real server.
fn serve_ok(lab: &Lab) {
    let body = lab.within("client", || {
        http_get(vip(80), "/").expect("request through the VIP")
    });
    assert!(body.contains(LAB_VIP), "{body}");
}

fn forwarded_packets(lab: &Lab) -> u64 {
    let s = xlb_status_json(&lab.pins.0.join("dir1"));
    s["services"][0]["packets"].as_u64().unwrap_or(0)
}

/// The macvlan xlb made: private mode, the VRRP MAC, over eth0, up; the sysctls
/// keepalived sets.
fn assert_vmac_made(lab: &Lab) {
    let link = lab.sh("dir1", &format!("ip -d link show {VMAC_IF}"));
    assert!(link.contains("macvlan mode private"), "{link}");
    assert!(link.contains(&format!("link/ether {VMAC}")), "{link}");
    assert!(link.contains("@eth0"), "{link}");
    assert!(link.contains(",UP"), "{link}");
    assert!(link.contains("xlb vrrp_instance VI_1"), "alias: {link}");
    assert_eq!(sysctl(lab, "dir1", &format!("{VMAC_IF}/arp_ignore")), "1");
    assert_eq!(sysctl(lab, "dir1", &format!("{VMAC_IF}/accept_local")), "1");
    assert_eq!(sysctl(lab, "dir1", &format!("{VMAC_IF}/rp_filter")), "0");
    assert_eq!(sysctl(lab, "dir1", "eth0/arp_ignore"), "1");
    assert_eq!(sysctl(lab, "dir1", "eth0/arp_filter"), "1");
    let addrs = lab.sh("dir1", &format!("ip -o addr show dev {VMAC_IF}"));
    assert!(addrs.contains(LAB_VIP), "the VIP is on the VMAC: {addrs}");
}

#[test]
fn xlb_on_the_virtual_mac_with_a_keepalived_peer() {
    let mut lab = ha_lab("vmac", 2);
    start_capture(&mut lab, "capture");
    let dir1_mac = mac_of(&lab, "dir1");
    let conf = lab.tmp.join("dir1.toml");
    std::fs::write(&conf, xlb_config(150, "")).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &conf);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    assert_vmac_made(&lab);
    // `xlb status` names the VMAC.
    let pins = lab.pins.0.join("dir1");
    wait_until("xlb status shows the VMAC", Duration::from_secs(3), || {
        xlb_status(&pins, &[]).contains("(vrid 51, v2, eth0, vmac vrrp.51): MASTER")
    });
    assert_eq!(xlb_status_json(&pins)["vrrp"][0]["vmac"], VMAC_IF);
    start_keepalived(&mut lab, "keepalived", &keepalived_config(100, ""));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lab.log("keepalived").contains("Entering BACKUP STATE"),
        "{}",
        lab.log("keepalived")
    );
    assert!(!has_address(&lab, "dir2", LAB_VIP));

    // On the wire: xlb's adverts leave from the virtual MAC, never from eth0's own.
    wait_until(
        "xlb's adverts from the VMAC",
        Duration::from_secs(4),
        || adverts_from(&lab, "capture", VMAC, 150) >= 2,
    );
    assert_eq!(
        adverts_from(&lab, "capture", &dir1_mac, 150),
        0,
        "{}",
        lab.log("capture")
    );

    // The client reaches the VIP at the virtual MAC; XDP on eth0 forwards to a real server.
    let before = forwarded_packets(&lab);
    serve_ok(&lab);
    assert!(client_arp(&lab).contains(VMAC), "{}", client_arp(&lab));
    let after = forwarded_packets(&lab);
    assert!(
        after > before,
        "XDP forwarded nothing ({before} -> {after})"
    );
    println!("XDP forwarded {} packets sent to {VMAC}", after - before);

    // xlb stops: keepalived takes over on the same virtual MAC; xlb's macvlan is gone and
    // eth0's ARP sysctls are back.
    let t = Instant::now();
    lab.kill("xlb", libc::SIGTERM);
    wait_vip(&lab, "dir2", true, Duration::from_secs(4));
    println!("xlb stopped, keepalived MASTER after {:?}", t.elapsed());
    wait_until(
        "xlb's VMAC removed, eth0's sysctls back",
        Duration::from_secs(4),
        || {
            !link_exists(&lab, "dir1", VMAC_IF)
                && sysctl(&lab, "dir1", "eth0/arp_ignore") == "0"
                && sysctl(&lab, "dir1", "eth0/arp_filter") == "0"
        },
    );
    assert!(!has_address(&lab, "dir1", LAB_VIP));
    wait_until(
        "keepalived's adverts from the VMAC",
        Duration::from_secs(4),
        || adverts_from(&lab, "capture", VMAC, 100) >= 2,
    );

    // xlb back with the higher priority: it preempts keepalived.
    let t = Instant::now();
    start_xlb_in(&mut lab, "dir1", "xlb2", &conf);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    wait_vip(&lab, "dir2", false, Duration::from_secs(4));
    println!("xlb restarted and preempted after {:?}", t.elapsed());
    assert_vmac_made(&lab);
    serve_ok(&lab);

    // kill -9 leaves the macvlan; the next xlb adopts it, and removes it when it stops.
    lab.kill("xlb2", libc::SIGKILL);
    assert!(link_exists(&lab, "dir1", VMAC_IF));
    let index = lab.sh("dir1", &format!("cat /sys/class/net/{VMAC_IF}/ifindex"));
    start_xlb_in(&mut lab, "dir1", "xlb3", &conf);
    lab.wait_log("xlb3", "adopted", Duration::from_secs(5));
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    assert_eq!(
        lab.sh("dir1", &format!("cat /sys/class/net/{VMAC_IF}/ifindex")),
        index,
        "the macvlan was re-created, not adopted"
    );
    lab.kill("xlb3", libc::SIGTERM);
    wait_vip(&lab, "dir2", true, Duration::from_secs(4));
    wait_until("adopted VMAC removed", Duration::from_secs(4), || {
        !link_exists(&lab, "dir1", VMAC_IF)
    });
}

#[test]
fn vmac_xmit_base_sends_adverts_from_the_base_mac() {
    let mut lab = ha_lab("vmacx", 2);
    start_capture(&mut lab, "capture");
    let dir1_mac = mac_of(&lab, "dir1");
    let conf = lab.tmp.join("dir1.toml");
    std::fs::write(&conf, xlb_config(150, "vmac_xmit_base = true")).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &conf);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    assert_vmac_made(&lab);
    start_keepalived(
        &mut lab,
        "keepalived",
        &keepalived_config(100, "    vmac_xmit_base\n"),
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(!has_address(&lab, "dir2", LAB_VIP));
    wait_until(
        "xlb's adverts from eth0's MAC",
        Duration::from_secs(4),
        || adverts_from(&lab, "capture", &dir1_mac, 150) >= 2,
    );
    assert_eq!(
        adverts_from(&lab, "capture", VMAC, 150),
        0,
        "{}",
        lab.log("capture")
    );
    // The VIP still answers at the virtual MAC (gratuitous ARP from the VMAC).
    serve_ok(&lab);
    assert!(client_arp(&lab).contains(VMAC), "{}", client_arp(&lab));
    // keepalived takes over when xlb goes, and xlb, back, preempts it.
    lab.kill("xlb", libc::SIGTERM);
    wait_vip(&lab, "dir2", true, Duration::from_secs(4));
    start_xlb_in(&mut lab, "dir1", "xlb2", &conf);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    wait_vip(&lab, "dir2", false, Duration::from_secs(4));
}

#[test]
fn an_interface_xlb_did_not_create_is_never_touched() {
    let mut lab = ha_lab("vmacn", 0);
    // Someone else's macvlan under the VMAC's name, in bridge mode.
    lab.sh(
        "dir1",
        &format!("ip link add {VMAC_IF} link eth0 type macvlan mode bridge"),
    );
    let conf = lab.tmp.join("dir1.toml");
    std::fs::write(&conf, xlb_config(150, "").replace(&lab_mh_service(), "")).unwrap();
    // `xlb check` says so first, at the key.
    let out = lab
        .command("dir1", &integration_tests::netns::xlb_bin())
        .arg("check")
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "vrrp_instance[0].use_vmac: interface {VMAC_IF} exists and is a macvlan with another MAC than {VMAC}"
        )),
        "{err}"
    );
    let mut cmd = lab.command("dir1", &integration_tests::netns::xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(&conf)
        .arg("--pin-path")
        .arg(lab.pins.0.join("dir1"));
    lab.spawn("xlb", cmd);
    lab.wait_log(
        "xlb",
        "does not change an interface it did not create",
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(500));
    let link = lab.sh("dir1", &format!("ip -d link show {VMAC_IF}"));
    assert!(link.contains("macvlan mode bridge"), "{link}");
    assert!(!has_address(&lab, "dir1", LAB_VIP));
}

/// FRR's macvlan for VRID 51, made by hand as FRR's documentation says (vrrpd finds it
/// by its MAC over eth0, and turns it on and off with protodown).
const FRR_IF: &str = "vrrp4-2-51";

/// zebra and vrrpd in dir2, with their own config, pid and socket files under the lab's
/// directory, as the `frr` user (FRR refuses a user outside its vty group).
fn start_frr(lab: &mut Lab, priority: u8) {
    lab.sh(
        "dir2",
        &format!(
            "ip link add {FRR_IF} link eth0 type macvlan mode bridge && \
             ip link set {FRR_IF} address {VMAC} && \
             ip addr add {LAB_VIP}/32 dev {FRR_IF} && ip link set {FRR_IF} up"
        ),
    );
    let dir = lab.tmp.join("frr");
    std::fs::create_dir_all(&dir).unwrap();
    lab.sh("dir2", &format!("chmod 777 {}", dir.display()));
    std::fs::write(dir.join("zebra.conf"), "hostname vmac-zebra\n").unwrap();
    std::fs::write(
        dir.join("vrrpd.conf"),
        format!(
            "hostname vmac-vrrpd\ninterface eth0\n vrrp {VRID} version 2\n vrrp {VRID} priority {priority}\n \
             vrrp {VRID} advertisement-interval 1000\n vrrp {VRID} ip {LAB_VIP}\n"
        ),
    )
    .unwrap();
    for daemon in ["zebra", "vrrpd"] {
        let mut cmd = lab.command("dir2", &Path::new("/usr/lib/frr").join(daemon));
        cmd.arg("-f")
            .arg(dir.join(format!("{daemon}.conf")))
            .arg("-i")
            .arg(dir.join(format!("{daemon}.pid")))
            .arg("-z")
            .arg(dir.join("zserv.api"))
            .arg("--vty_socket")
            .arg(&dir)
            .args(["-u", "frr", "-g", "frr", "-P", "0", "--log", "stdout"])
            .args(["--log-level", "debug"]);
        lab.spawn(daemon, cmd);
        let ready = if daemon == "zebra" {
            "starting"
        } else {
            "[VRID 51] [IPv4]"
        };
        lab.wait_log(daemon, ready, Duration::from_secs(10));
    }
}

/// Whether FRR's macvlan is on (vrrpd clears protodown as MASTER).
fn frr_active(lab: &Lab) -> bool {
    !lab.sh("dir2", &format!("ip -d link show {FRR_IF}"))
        .contains("protodown on")
}

#[test]
fn xlb_on_the_virtual_mac_with_frr_vrrpd() {
    assert!(
        Path::new("/usr/lib/frr/vrrpd").exists(),
        "FRR is not installed (cargo xtask setup installs the Debian package frr)"
    );
    let mut lab = ha_lab("vmacf", 2);
    start_capture(&mut lab, "capture");
    let conf = lab.tmp.join("dir1.toml");
    std::fs::write(&conf, xlb_config(150, "")).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &conf);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    // The client resolves the VIP before FRR starts: FRR's macvlan holds the VIP in
    // every state (vrrpd only sets protodown on it as BACKUP), and the kernel still
    // answers a broadcast ARP request there from the virtual MAC, which moves the
    // bridge's entry for that MAC to dir2 (seen here: the client's SYN then reached
    // dir2 and was refused). That is FRR's set-up, not the protocol between the two.
    serve_ok(&lab);
    start_frr(&mut lab, 100);
    // FRR hears xlb's higher priority on the virtual MAC and stays backup.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !lab.log("vrrpd").contains("Backup -> Master"),
        "{}",
        lab.log("vrrpd")
    );
    assert!(!frr_active(&lab), "FRR's macvlan is up while xlb is MASTER");
    assert_eq!(adverts_from(&lab, "capture", VMAC, 100), 0);
    assert!(adverts_from(&lab, "capture", VMAC, 150) >= 3);
    let before = forwarded_packets(&lab);
    serve_ok(&lab);
    assert!(forwarded_packets(&lab) > before);
    assert!(client_arp(&lab).contains(VMAC), "{}", client_arp(&lab));

    // xlb goes: FRR becomes master on the same MAC.
    let t = Instant::now();
    lab.kill("xlb", libc::SIGTERM);
    wait_until("FRR MASTER", Duration::from_secs(5), || {
        lab.log("vrrpd").contains("Backup -> Master") && frr_active(&lab)
    });
    println!("xlb stopped, FRR MASTER after {:?}", t.elapsed());
    assert!(!has_address(&lab, "dir1", LAB_VIP));
    wait_until(
        "FRR's adverts from the VMAC",
        Duration::from_secs(4),
        || adverts_from(&lab, "capture", VMAC, 100) >= 2,
    );

    // xlb back at 150 preempts FRR's 100.
    start_xlb_in(&mut lab, "dir1", "xlb2", &conf);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    wait_until("FRR back to backup", Duration::from_secs(5), || {
        lab.log("vrrpd").contains("Master -> Backup") && !frr_active(&lab)
    });
    serve_ok(&lab);

    // And at 50 it stays BACKUP under FRR's 100.
    lab.kill("xlb2", libc::SIGTERM);
    wait_until("FRR MASTER again", Duration::from_secs(5), || {
        frr_active(&lab)
    });
    std::fs::write(&conf, xlb_config(50, "")).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb3", &conf);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !has_address(&lab, "dir1", LAB_VIP),
        "xlb at priority 50 took the VIP from FRR at 100"
    );
    assert!(frr_active(&lab));
}

/// IPv6: the VMAC is 00:00:5e:00:02:VRID, carries the base's link-local address (the
/// adverts' source) and no automatic one; keepalived with `use_vmac` is the peer.
#[test]
fn ipv6_vmac_with_a_keepalived_peer() {
    const VMAC6: &str = "00:00:5e:00:02:33";
    const VIP6: &str = "2001:db8::100";
    let mut lab = ha_lab("vmac6", 0);
    start_capture6(&mut lab, "capture");
    let conf = lab.tmp.join("dir1.toml");
    std::fs::write(
        &conf,
        format!(
            "[[vrrp_instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvirtual_router_id = {VRID}\n\
             priority = 150\nversion = 3\nadvert_int = 1\nuse_vmac = true\n\
             virtual_ipaddress = [\"{VIP6}/128\"]\n"
        ),
    )
    .unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &conf);
    wait_until("IPv6 VIP on dir1", Duration::from_secs(8), || {
        has_address(&lab, "dir1", VIP6)
    });
    let link = lab.sh("dir1", &format!("ip -d link show {VMAC_IF}"));
    assert!(link.contains(&format!("link/ether {VMAC6}")), "{link}");
    assert!(link.contains("macvlan mode private"), "{link}");
    let base_ll = lab.sh("dir1", "ip -6 -o addr show dev eth0 scope link");
    let vmac_addrs = lab.sh("dir1", &format!("ip -6 -o addr show dev {VMAC_IF}"));
    let ll = base_ll
        .split_whitespace()
        .nth(3)
        .expect("eth0's link-local address")
        .to_string();
    assert!(
        vmac_addrs.contains(&ll),
        "{ll} not on the VMAC: {vmac_addrs}"
    );
    assert!(vmac_addrs.contains(VIP6), "{vmac_addrs}");
    assert_eq!(
        vmac_addrs.matches("scope link").count(),
        1,
        "an automatic link-local address on the VMAC: {vmac_addrs}"
    );
    let keepalived = format!(
        "global_defs {{\n    router_id kd2\n}}\n\
         vrrp_instance VI_6 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {VRID}\n    \
         priority 100\n    advert_int 1\n    use_vmac\n    virtual_ipaddress {{\n        {VIP6}/128\n    }}\n}}\n"
    );
    let dir = lab.tmp.join("kd6");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keepalived.conf"), &keepalived).unwrap();
    let mut cmd = lab.command("dir2", Path::new("keepalived"));
    cmd.args(["-n", "-l", "-D", "-P", "-f"])
        .arg(dir.join("keepalived.conf"))
        .arg("-p")
        .arg(dir.join("k.pid"))
        .arg("-r")
        .arg(dir.join("v.pid"))
        .arg("-c")
        .arg(dir.join("c.pid"))
        .arg("-b")
        .arg(dir.join("b.pid"));
    lab.spawn("keepalived", cmd);
    lab.wait_log("keepalived", "(VI_6) Entering", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !has_address(&lab, "dir2", VIP6),
        "{}",
        lab.log("keepalived")
    );
    assert!(
        lab.log("keepalived").contains("Entering BACKUP STATE"),
        "{}",
        lab.log("keepalived")
    );
    wait_until(
        "xlb's IPv6 adverts from the VMAC",
        Duration::from_secs(4),
        || adverts_from(&lab, "capture", VMAC6, 150) >= 2,
    );
    lab.kill("xlb", libc::SIGTERM);
    wait_until(
        "keepalived takes the IPv6 VIP",
        Duration::from_secs(5),
        || has_address(&lab, "dir2", VIP6),
    );
    wait_until("xlb's VMAC removed", Duration::from_secs(4), || {
        !link_exists(&lab, "dir1", VMAC_IF)
    });
}

/// tcpdump in the client's namespace: VRRP over IPv6, with Ethernet headers.
fn start_capture6(lab: &mut Lab, label: &str) {
    let mut cmd = lab.command("client", Path::new("tcpdump"));
    cmd.args(["-i", "eth0", "-e", "-n", "-l", "-U", "ip6 proto 112"]);
    lab.spawn(label, cmd);
    lab.wait_log(label, "listening on", Duration::from_secs(10));
}

/// The base interface deleted (its macvlan goes with it) and created again: xlb makes the
/// VMAC again over the new one and takes the VIP back there, with no restart.
#[test]
fn the_vmac_follows_a_re_created_base_interface() {
    let mut lab = ha_lab("vmacr", 0);
    let conf = lab.tmp.join("dir1.toml");
    std::fs::write(&conf, xlb_config(150, "").replace(&lab_mh_service(), "")).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &conf);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    assert_vmac_made(&lab);
    // A VIP deleted by hand from the VMAC is put back there at once.
    lab.sh("dir1", &format!("ip addr del {LAB_VIP}/32 dev {VMAC_IF}"));
    wait_until(
        "the VIP restored on the VMAC",
        Duration::from_secs(2),
        || {
            lab.sh("dir1", &format!("ip -o addr show dev {VMAC_IF}"))
                .contains(LAB_VIP)
        },
    );
    assert!(
        lab.log("xlb").contains(&format!(
            "removed from {VMAC_IF} by someone else; restoring"
        )),
        "{}",
        lab.log("xlb")
    );
    lab.sh("dir1", "ip link del eth0");
    wait_until("the VMAC gone with eth0", Duration::from_secs(2), || {
        !link_exists(&lab, "dir1", VMAC_IF)
    });
    std::thread::sleep(Duration::from_secs(1));
    lab.plug("sw", "dir1", &["198.18.0.2/24"]);
    let pin = lab.pins.0.join("pass_dir1");
    let _ = std::fs::remove_file(&pin);
    lab.pass_xdp("sw", "p-dir1", &pin);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    assert_vmac_made(&lab);
    assert!(lab.has_process("xlb"), "{}", lab.log("xlb"));
}

/// A reload that turns `use_vmac` on restarts the instance onto a new VMAC; one that
/// turns it off removes the VMAC and puts the VIP back on eth0.
#[test]
fn a_reload_turns_use_vmac_on_and_off() {
    let mut lab = ha_lab("vmacl", 0);
    let conf = lab.tmp.join("dir1.toml");
    let without = xlb_config(150, "")
        .replace(&lab_mh_service(), "")
        .replace("use_vmac = true\n", "");
    std::fs::write(&conf, &without).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &conf);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    assert!(!link_exists(&lab, "dir1", VMAC_IF));
    let on_eth0 = |lab: &Lab| {
        lab.sh("dir1", "ip -o addr show dev eth0")
            .contains(&format!("{LAB_VIP}/32"))
    };
    assert!(on_eth0(&lab));

    std::fs::write(&conf, xlb_config(150, "").replace(&lab_mh_service(), "")).unwrap();
    lab.signal("xlb", libc::SIGHUP);
    wait_until("the VMAC after the reload", Duration::from_secs(8), || {
        link_exists(&lab, "dir1", VMAC_IF) && has_address(&lab, "dir1", LAB_VIP)
    });
    wait_until("the VIP on the VMAC", Duration::from_secs(8), || {
        lab.sh("dir1", &format!("ip -o addr show dev {VMAC_IF}"))
            .contains(LAB_VIP)
    });
    assert!(!on_eth0(&lab), "the VIP is on eth0 and the VMAC");
    assert!(
        lab.log("xlb").contains("use_vmac none -> vrrp.51"),
        "{}",
        lab.log("xlb")
    );

    std::fs::write(&conf, &without).unwrap();
    lab.signal("xlb", libc::SIGHUP);
    wait_until(
        "the VMAC removed by the reload",
        Duration::from_secs(8),
        || {
            !link_exists(&lab, "dir1", VMAC_IF)
                && on_eth0(&lab)
                && sysctl(&lab, "dir1", "eth0/arp_ignore") == "0"
        },
    );
}

/// keepalived's `clear_rp_filter`: with `all.rp_filter` set, the VMAC could not get 0, so
/// the value moves onto `default` and every interface, `all` goes to 0, and back at stop.
#[test]
fn all_rp_filter_is_moved_aside_and_restored() {
    let mut lab = ha_lab("vmacrp", 0);
    lab.sh(
        "dir1",
        "sysctl -qw net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=0 \
         net.ipv4.conf.eth0.rp_filter=0",
    );
    let conf = lab.tmp.join("dir1.toml");
    std::fs::write(&conf, xlb_config(150, "").replace(&lab_mh_service(), "")).unwrap();
    start_xlb_in(&mut lab, "dir1", "xlb", &conf);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    assert_eq!(sysctl(&lab, "dir1", "all/rp_filter"), "0");
    assert_eq!(sysctl(&lab, "dir1", "default/rp_filter"), "2");
    assert_eq!(sysctl(&lab, "dir1", "eth0/rp_filter"), "2");
    assert_eq!(sysctl(&lab, "dir1", &format!("{VMAC_IF}/rp_filter")), "0");
    lab.kill("xlb", libc::SIGTERM);
    wait_until(
        "the VMAC removed, all.rp_filter back",
        Duration::from_secs(4),
        || !link_exists(&lab, "dir1", VMAC_IF) && sysctl(&lab, "dir1", "all/rp_filter") == "2",
    );
    assert_eq!(sysctl(&lab, "dir1", "default/rp_filter"), "0");
}
