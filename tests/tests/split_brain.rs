//! Split-brain prevention by reference address (`track_reference`), in network
//! namespaces named `xsb-*`: two xlb directors and a gateway holding the reference
//! address on one switch. The master's switch port is cut (its link stays up, so only
//! the reference check can tell): the backup takes over, and the isolated master steps
//! down to FAULT and gives up the VIP instead of holding it beside the backup. Healed:
//! one master, the VIP on exactly one director, the client's ARP on its MAC.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use integration_tests::{
    PinDir,
    netns::{
        LAB_CLIENT, LAB_DIRECTOR, LAB_DIRECTOR2, LAB_VIP, Lab, has_address, mac_of, start_xlb_in,
        wait_for, wait_vip, xlb_status, xlb_status_json,
    },
};

/// The gateway, the reference the directors ping.
const GATEWAY: &str = "198.18.0.254";
const GATEWAY6: &str = "2001:db8::fe";

/// A lab named `xsb-<tag><pid>-*`: switch, client, gateway, dir1, dir2.
fn lab(tag: &str) -> Lab {
    let prefix = format!("xsb-{tag}{}", std::process::id());
    let mut lab = Lab::named(&prefix, PinDir::new(&format!("xsb{tag}")));
    for short in ["sw", "client", "gw", "dir1", "dir2"] {
        lab.add_ns(short);
    }
    lab.bridge("sw");
    lab.plug("sw", "client", &[&format!("{LAB_CLIENT}/24")]);
    lab.plug("sw", "gw", &[&format!("{GATEWAY}/24")]);
    lab.sh("gw", &format!("ip addr add {GATEWAY6}/64 dev eth0 nodad"));
    lab.plug("sw", "dir1", &[&format!("{LAB_DIRECTOR}/24")]);
    lab.plug("sw", "dir2", &[&format!("{LAB_DIRECTOR2}/24")]);
    lab.sh("dir1", "ip addr add 2001:db8::2/64 dev eth0 nodad");
    lab.sh("dir2", "ip addr add 2001:db8::3/64 dev eth0 nodad");
    lab
}

/// A director's config: one VRRP instance owning the VIP, with `reference` (TOML of
/// `track_reference`, or empty).
fn config(lab: &Lab, name: &str, priority: u8, reference: &str) -> PathBuf {
    let text = format!(
        r#"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 61
priority = {priority}
advert_int = 1
virtual_ipaddress = ["{LAB_VIP}/32"]
{reference}
"#
    );
    let p = lab.tmp.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn reference(addresses: &str) -> String {
    format!(
        "track_reference = {{ addresses = [{addresses}], interval = 0.2, timeout = 0.2, fall = 3, rise = 2 }}"
    )
}

fn pins(lab: &Lab, ns: &str) -> PathBuf {
    lab.pins.0.join(ns)
}

/// (state, reference) of the director in `ns`, from `xlb status --json`.
fn vrrp_status(lab: &Lab, ns: &str) -> (String, String) {
    let s = xlb_status_json(&pins(lab, ns));
    let i = &s["vrrp"][0];
    (
        i["state"].as_str().unwrap_or_default().to_string(),
        i["reference"].as_str().unwrap_or_default().to_string(),
    )
}

/// Waits until the director in `ns` reports `state`.
fn wait_state(lab: &Lab, ns: &str, state: &str, timeout: Duration) -> (String, String) {
    wait_for(timeout, &format!("{ns} in {state}"), || {
        let st = vrrp_status(lab, ns);
        ((st.0 == state).then(|| st.clone()), format!("{st:?}"))
    })
}

/// Cuts `ns`'s switch port from the bridge: its eth0 stays up (no carrier change), but
/// nothing reaches the peer or the gateway.
fn cut(lab: &Lab, ns: &str) {
    lab.sh("sw", &format!("ip link set p-{ns} nomaster"));
}

fn heal(lab: &Lab, ns: &str) {
    lab.sh("sw", &format!("ip link set p-{ns} master br0"));
}

fn client_arp(lab: &Lab) -> String {
    lab.sh("client", &format!("ip neigh show {LAB_VIP}"))
}

#[test]
fn an_isolated_master_steps_down_to_fault_and_one_master_remains_after_healing() {
    let mut lab = lab("ref");
    let refs = reference(&format!("\"{GATEWAY}\""));
    let c1 = config(&lab, "dir1.toml", 150, &refs);
    let c2 = config(&lab, "dir2.toml", 100, &refs);
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    wait_state(&lab, "dir2", "BACKUP", Duration::from_secs(3));
    for ns in ["dir1", "dir2"] {
        let (_, r) = vrrp_status(&lab, ns);
        assert!(r.starts_with("reachable"), "{ns}: reference {r}");
        assert!(r.contains(GATEWAY), "{ns}: reference {r}");
    }
    let text = xlb_status(&pins(&lab, "dir1"), &[]);
    assert!(
        text.contains(&format!("reference reachable ({GATEWAY})")),
        "{text}"
    );

    // The master's service link is cut: the backup no longer hears it and takes over; the
    // master no longer reaches the gateway and gives up MASTER.
    let t = Instant::now();
    cut(&lab, "dir1");
    let (_, r) = wait_state(&lab, "dir1", "FAULT", Duration::from_secs(4));
    println!("isolated master in FAULT after {:?}", t.elapsed());
    assert!(r.starts_with("unreachable"), "dir1: reference {r}");
    assert!(
        !has_address(&lab, "dir1", LAB_VIP),
        "the isolated master kept the VIP"
    );
    wait_vip(&lab, "dir2", true, Duration::from_secs(8));
    wait_state(&lab, "dir2", "MASTER", Duration::from_secs(2));
    assert!(
        lab.log("xlb1").contains("no reference address answers"),
        "{}",
        lab.log("xlb1")
    );
    // And it stays so: FAULT, no VIP, while cut.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(vrrp_status(&lab, "dir1").0, "FAULT");
    assert!(!has_address(&lab, "dir1", LAB_VIP));
    let text = xlb_status(&pins(&lab, "dir1"), &[]);
    assert!(
        text.contains("FAULT") && text.contains(&format!("reference unreachable ({GATEWAY})")),
        "{text}"
    );

    // Healed: dir1 reaches the gateway again, comes back as BACKUP and (higher priority,
    // preempt) takes the VIP back; exactly one director holds it.
    heal(&lab, "dir1");
    wait_for(Duration::from_secs(10), "one master after healing", || {
        let s1 = vrrp_status(&lab, "dir1").0;
        let s2 = vrrp_status(&lab, "dir2").0;
        let v1 = has_address(&lab, "dir1", LAB_VIP);
        let v2 = has_address(&lab, "dir2", LAB_VIP);
        (
            (s1 == "MASTER" && s2 == "BACKUP" && v1 && !v2).then_some(()),
            format!("dir1 {s1} vip {v1}, dir2 {s2} vip {v2}"),
        )
    });
    // Steady: still one master, and the client's ARP on it.
    std::thread::sleep(Duration::from_secs(2));
    assert!(has_address(&lab, "dir1", LAB_VIP) && !has_address(&lab, "dir2", LAB_VIP));
    lab.sh(
        "client",
        &format!("ping -c 1 -W 1 {LAB_VIP} >/dev/null || true"),
    );
    wait_for(Duration::from_secs(3), "client ARP on dir1", || {
        let arp = client_arp(&lab);
        (arp.contains(&mac_of(&lab, "dir1")).then_some(()), arp)
    });
}

/// The same cut without `track_reference`: both directors hold the VIP (the split brain
/// the reference check prevents; this is what the test above would see without it).
#[test]
fn without_a_reference_the_cut_master_keeps_the_vip_beside_the_backup() {
    let mut lab = lab("noref");
    let c1 = config(&lab, "dir1.toml", 150, "");
    let c2 = config(&lab, "dir2.toml", 100, "");
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    cut(&lab, "dir1");
    wait_vip(&lab, "dir2", true, Duration::from_secs(8));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        has_address(&lab, "dir1", LAB_VIP),
        "dual master expected without a reference"
    );
    assert_eq!(vrrp_status(&lab, "dir1").0, "MASTER");
}

/// An IPv6 reference (ICMPv6 echo): a lone director whose only reference goes away
/// gives up MASTER, and takes it again when the reference answers.
#[test]
fn an_ipv6_reference_is_pinged_with_icmpv6() {
    let mut lab = lab("ref6");
    let c1 = config(
        &lab,
        "dir1.toml",
        150,
        &reference(&format!("\"{GATEWAY6}\"")),
    );
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    let (_, r) = vrrp_status(&lab, "dir1");
    assert!(r.starts_with("reachable"), "{r}");
    lab.sh("gw", &format!("ip addr del {GATEWAY6}/64 dev eth0"));
    wait_state(&lab, "dir1", "FAULT", Duration::from_secs(4));
    assert!(!has_address(&lab, "dir1", LAB_VIP));
    lab.sh("gw", &format!("ip addr add {GATEWAY6}/64 dev eth0 nodad"));
    wait_state(&lab, "dir1", "MASTER", Duration::from_secs(8));
    wait_vip(&lab, "dir1", true, Duration::from_secs(2));
}

/// A dedicated heartbeat link between the directors (`hb0`, 198.19.0.1 and .2).
fn heartbeat_link(lab: &Lab) {
    lab.sh(
        "dir1",
        &format!(
            "ip link add hb0 type veth peer name hb0 netns {} && ip addr add 198.19.0.1/24 dev hb0 && ip link set hb0 up",
            lab.ns("dir2")
        ),
    );
    lab.sh(
        "dir2",
        "ip addr add 198.19.0.2/24 dev hb0 && ip link set hb0 up",
    );
}

fn heartbeat(src: &str, peer: &str) -> String {
    format!(
        "heartbeat = {{ interface = \"hb0\", unicast_src_ip = \"{src}\", unicast_peer = [\"{peer}\"] }}"
    )
}

/// Holds for `d`: dir1 MASTER with the VIP, dir2 BACKUP without it.
fn steady_dir1_master(lab: &Lab, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        assert_eq!(vrrp_status(lab, "dir2").0, "BACKUP");
        assert!(!has_address(lab, "dir2", LAB_VIP), "dir2 took the VIP");
        assert!(has_address(lab, "dir1", LAB_VIP), "dir1 lost the VIP");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_second_heartbeat_path_keeps_the_backup_quiet_until_every_path_is_lost() {
    let mut lab = lab("hb");
    heartbeat_link(&lab);
    let c1 = config(
        &lab,
        "dir1.toml",
        150,
        &heartbeat("198.19.0.1", "198.19.0.2"),
    );
    let c2 = config(
        &lab,
        "dir2.toml",
        100,
        &heartbeat("198.19.0.2", "198.19.0.1"),
    );
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    wait_state(&lab, "dir2", "BACKUP", Duration::from_secs(3));

    // The heartbeat link cut, the service link up: no move.
    lab.sh("dir1", "ip link set hb0 down");
    steady_dir1_master(&lab, Duration::from_secs(5));
    lab.sh("dir1", "ip link set hb0 up");

    // The service link cut, the heartbeat link up: the backup still hears the master
    // (without the second path it takes over: the test without a reference above).
    cut(&lab, "dir1");
    steady_dir1_master(&lab, Duration::from_secs(5));

    // Both cut: now the master is down for the backup.
    lab.sh("dir1", "ip link set hb0 down");
    wait_vip(&lab, "dir2", true, Duration::from_secs(8));

    // Healed: one master again.
    heal(&lab, "dir1");
    lab.sh("dir1", "ip link set hb0 up");
    wait_for(Duration::from_secs(10), "one master after healing", || {
        let v1 = has_address(&lab, "dir1", LAB_VIP);
        let v2 = has_address(&lab, "dir2", LAB_VIP);
        (
            (v1 && !v2).then_some(()),
            format!("dir1 vip {v1}, dir2 vip {v2}"),
        )
    });
}

/// Both methods: the master cut from the service network (its heartbeat link up) finds
/// no reference, resigns, and its priority-0 advert reaches the backup over the
/// heartbeat link: the backup takes over within the skew time, not a master-down
/// interval.
#[test]
fn with_a_heartbeat_path_an_isolated_master_hands_over_at_once() {
    let mut lab = lab("hbref");
    heartbeat_link(&lab);
    let refs = reference(&format!("\"{GATEWAY}\""));
    let c1 = config(
        &lab,
        "dir1.toml",
        150,
        &format!("{refs}\n{}", heartbeat("198.19.0.1", "198.19.0.2")),
    );
    let c2 = config(
        &lab,
        "dir2.toml",
        100,
        &format!("{refs}\n{}", heartbeat("198.19.0.2", "198.19.0.1")),
    );
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    wait_state(&lab, "dir2", "BACKUP", Duration::from_secs(3));
    let t = Instant::now();
    cut(&lab, "dir1");
    wait_state(&lab, "dir1", "FAULT", Duration::from_secs(4));
    let resigned = t.elapsed();
    let took = wait_vip(&lab, "dir2", true, Duration::from_secs(8));
    println!("isolated master resigned after {resigned:?}, backup took over {took:?} later");
    assert!(
        took < Duration::from_millis(2500),
        "the backup waited {took:?}: it did not hear the resignation over the heartbeat link"
    );
    assert!(!has_address(&lab, "dir1", LAB_VIP));
    heal(&lab, "dir1");
    wait_for(Duration::from_secs(12), "one master after healing", || {
        let v1 = has_address(&lab, "dir1", LAB_VIP);
        let v2 = has_address(&lab, "dir2", LAB_VIP);
        (
            (v1 && !v2).then_some(()),
            format!("dir1 vip {v1}, dir2 vip {v2}"),
        )
    });
}

/// A reload adds, then removes, `track_reference` in place: the running MASTER goes to
/// FAULT when its new reference (an address nobody holds) does not answer, and back to
/// MASTER when the reference is gone; the daemon is never restarted.
#[test]
fn a_reload_applies_track_reference_in_place() {
    let mut lab = lab("reload");
    let path = config(&lab, "dir1.toml", 150, "");
    start_xlb_in(&mut lab, "dir1", "xlb1", &path);
    wait_vip(&lab, "dir1", true, Duration::from_secs(8));
    let pid = lab.pid("xlb1");
    // 198.18.0.253: on the lab's subnet, held by no one.
    config(&lab, "dir1.toml", 150, &reference("\"198.18.0.253\""));
    lab.signal("xlb1", libc::SIGHUP);
    let (_, r) = wait_state(&lab, "dir1", "FAULT", Duration::from_secs(6));
    assert!(r.starts_with("unreachable (198.18.0.253)"), "{r}");
    assert!(!has_address(&lab, "dir1", LAB_VIP));
    assert!(
        lab.log("xlb1").contains("track_reference"),
        "{}",
        lab.log("xlb1")
    );
    config(&lab, "dir1.toml", 150, "");
    lab.signal("xlb1", libc::SIGHUP);
    wait_state(&lab, "dir1", "MASTER", Duration::from_secs(8));
    wait_vip(&lab, "dir1", true, Duration::from_secs(2));
    assert_eq!(
        vrrp_status(&lab, "dir1").1,
        "",
        "no reference shown any more"
    );
    assert_eq!(lab.pid("xlb1"), pid, "the same daemon");
}
