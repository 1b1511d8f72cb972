//! keepalived's static and virtual routing entries, in network namespaces:
//! `static_ipaddress` / `static_routes` / `static_rules` present while the daemon runs
//! (put back when deleted by hand, changed by a reload, gone after it stops), and
//! `virtual_routes` / `virtual_rules` following MASTER between two xlb directors (put
//! back when deleted by hand from the MASTER), changed in place by a reload of the MASTER. Read back with `ip route` / `ip rule` / `ip addr`.

use std::{path::PathBuf, time::Duration};

use integration_tests::netns::{
    LAB_VIP, Lab, ha_lab, has_address, start_xlb_in, wait_addr, wait_for,
};

const WAIT: Duration = Duration::from_secs(10);

fn write(lab: &Lab, name: &str, text: &str) -> PathBuf {
    let p = lab.tmp.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// What `ip` shows in `ns` for `args` (route / rule listings), one string; `ip route
/// show table N` of a table that does not exist (yet, or any more) shows nothing.
fn ip(lab: &Lab, ns: &str, args: &str) -> String {
    lab.sh(ns, &format!("ip {args} 2>/dev/null || true"))
}

/// Waits until `ip ARGS` in `ns` shows `needle` (or no longer does).
fn wait_shown(lab: &Lab, ns: &str, args: &str, needle: &str, present: bool) {
    wait_for(
        WAIT,
        &format!(
            "{ns}: `ip {args}` {} {needle:?}",
            if present {
                "showing"
            } else {
                "no longer showing"
            }
        ),
        || {
            let out = ip(lab, ns, args);
            ((out.contains(needle) == present).then_some(()), out)
        },
    );
}

fn statics(routes: &str) -> String {
    format!(
        r#"static_ipaddress = ["198.18.1.1/24 dev eth0"]
static_routes = [{routes}]
static_rules = [
    "from 198.18.1.0/24 preference 100 table 100",
    "from 2001:db8:50::/64 preference 101 table 100",
    "fwmark 0x10/0xff preference 102 blackhole no_track",
]
"#
    )
}

#[test]
fn static_routes_rules_and_addresses_live_with_the_daemon() {
    let mut lab = ha_lab("routes", 0);
    let conf = write(
        &lab,
        "static.toml",
        &statics(
            r#""198.18.50.0/24 via 198.18.0.1 dev eth0 table 100", "blackhole 198.18.51.0/24",
               "2001:db8:50::/64 dev eth0 metric 5""#,
        ),
    );
    start_xlb_in(&mut lab, "dir1", "xlb", &conf);
    assert!(has_address(&lab, "dir1", "198.18.1.1"));
    let t100 = ip(&lab, "dir1", "route show table 100");
    assert!(
        t100.contains("198.18.50.0/24 via 198.18.0.1 dev eth0 proto keepalived"),
        "{t100}"
    );
    let main = ip(&lab, "dir1", "route show");
    assert!(
        main.contains("blackhole 198.18.51.0/24 proto keepalived"),
        "{main}"
    );
    let main6 = ip(&lab, "dir1", "-6 route show");
    assert!(
        main6.contains("2001:db8:50::/64 dev eth0 proto keepalived metric 5"),
        "{main6}"
    );
    let rules = ip(&lab, "dir1", "rule show");
    assert!(
        rules.contains("100:\tfrom 198.18.1.0/24 lookup 100 proto keepalived"),
        "{rules}"
    );
    assert!(
        rules.contains("102:\tfrom all fwmark 0x10/0xff blackhole proto keepalived"),
        "{rules}"
    );
    let rules6 = ip(&lab, "dir1", "-6 rule show");
    assert!(
        rules6.contains("101:\tfrom 2001:db8:50::/64 lookup 100 proto keepalived"),
        "{rules6}"
    );

    // Deleted by hand: put back at once, as keepalived reinstates them.
    lab.sh("dir1", "ip route del 198.18.50.0/24 table 100");
    wait_shown(
        &lab,
        "dir1",
        "route show table 100",
        "198.18.50.0/24 via 198.18.0.1",
        true,
    );
    lab.sh("dir1", "ip rule del pref 100");
    wait_shown(
        &lab,
        "dir1",
        "rule show",
        "100:\tfrom 198.18.1.0/24 lookup 100",
        true,
    );
    lab.sh("dir1", "ip addr del 198.18.1.1/24 dev eth0");
    wait_addr(&lab, "dir1", "198.18.1.1", true, WAIT);
    let log = lab.log("xlb");
    assert!(log.contains("static route 198.18.50.0/24 via 198.18.0.1 dev eth0 table 100 removed by someone else; restoring"), "{log}");
    assert!(log.contains("static rule from 198.18.1.0/24 preference 100 table 100 removed by someone else; restoring"), "{log}");
    assert!(
        log.contains("static_ipaddress 198.18.1.1/24 removed from eth0 by someone else; restoring"),
        "{log}"
    );
    // A no_track rule is left deleted.
    lab.sh("dir1", "ip rule del pref 102");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!ip(&lab, "dir1", "rule show").contains("102:"));

    // The interface goes down (the kernel drops the routes through it, silently) and
    // comes back: the routes are added again.
    lab.sh("dir1", "ip link set eth0 down");
    wait_shown(
        &lab,
        "dir1",
        "route show table 100",
        "198.18.50.0/24",
        false,
    );
    lab.sh("dir1", "ip link set eth0 up");
    wait_shown(
        &lab,
        "dir1",
        "route show table 100",
        "198.18.50.0/24 via 198.18.0.1",
        true,
    );
    assert!(
        lab.log("xlb")
            .contains("interface up again: adding the static entries again")
    );

    // Someone else's route to a prefix of ours, in another table: never touched.
    lab.sh(
        "dir1",
        "ip route add 198.18.50.0/24 via 198.18.0.1 table 101",
    );

    // A reload: the blackhole goes, a route comes, the others stay as they are.
    std::fs::write(
        &conf,
        statics(r#""198.18.50.0/24 via 198.18.0.1 dev eth0 table 100", "198.18.52.0/24 via 198.18.0.1 table 100""#),
    )
    .unwrap();
    lab.signal("xlb", libc::SIGHUP);
    wait_shown(
        &lab,
        "dir1",
        "route show table 100",
        "198.18.52.0/24 via 198.18.0.1",
        true,
    );
    wait_shown(
        &lab,
        "dir1",
        "route show",
        "blackhole 198.18.51.0/24",
        false,
    );
    assert!(ip(&lab, "dir1", "route show table 100").contains("198.18.50.0/24"));
    assert!(!ip(&lab, "dir1", "-6 route show").contains("2001:db8:50::/64"));

    // Stopped: everything it added is gone, someone else's route is not.
    lab.kill("xlb", libc::SIGTERM);
    let t100 = ip(&lab, "dir1", "route show table 100");
    assert!(!t100.contains("198.18.5"), "{t100}");
    let rules = ip(&lab, "dir1", "rule show") + &ip(&lab, "dir1", "-6 rule show");
    assert!(!rules.contains("lookup 100"), "{rules}");
    assert!(!has_address(&lab, "dir1", "198.18.1.1"));
    assert!(ip(&lab, "dir1", "route show table 101").contains("198.18.50.0/24 via 198.18.0.1"));
}

/// dir1 and dir2 run the same instance with virtual routes and rules (one route takes
/// the VIP as its source: it can only be added once the VIP is there).
fn vrrp(priority: u8, routes: &str) -> String {
    format!(
        r#"[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 71
priority = {priority}
advert_int = 1
virtual_ipaddress = ["{LAB_VIP}/32"]
virtual_routes = [{routes}]
virtual_rules = ["from {LAB_VIP} preference 200 table 201"]
"#
    )
}

const ROUTES: &str = r#""198.18.70.0/24 via 198.18.0.1 table 200", "default via 198.18.0.1 src 198.18.0.100 table 201""#;

fn has_virtual(lab: &Lab, ns: &str) -> bool {
    ip(lab, ns, "route show table 201")
        .contains("default via 198.18.0.1 dev eth0 proto keepalived src 198.18.0.100")
        && ip(lab, ns, "rule show").contains("200:\tfrom 198.18.0.100 lookup 201 proto keepalived")
}

fn wait_virtual(lab: &Lab, ns: &str, present: bool) {
    wait_for(
        WAIT,
        &format!(
            "{ns}: virtual routes {}",
            if present { "added" } else { "removed" }
        ),
        || {
            let out = ip(lab, ns, "route show table all") + &ip(lab, ns, "rule show");
            ((has_virtual(lab, ns) == present).then_some(()), out)
        },
    );
}

#[test]
fn virtual_routes_follow_master_and_reload_in_place() {
    let mut lab = ha_lab("routesv", 0);
    let c1 = write(&lab, "dir1.toml", &vrrp(100, ROUTES));
    start_xlb_in(&mut lab, "dir1", "xlb1", &c1);
    // Alone: dir1 becomes MASTER, the VIP and then its routes and rule arrive.
    wait_addr(&lab, "dir1", LAB_VIP, true, WAIT);
    wait_virtual(&lab, "dir1", true);
    assert!(ip(&lab, "dir1", "route show table 200").contains("198.18.70.0/24 via 198.18.0.1"));
    // Deleted by hand from the MASTER: put back, no transition.
    lab.sh(
        "dir1",
        "ip route del default table 201 && ip rule del pref 200",
    );
    wait_virtual(&lab, "dir1", true);
    let log = lab.log("xlb1");
    assert!(
        log.contains("virtual route default src 198.18.0.100 via 198.18.0.1 table 201 removed by someone else; restoring"),
        "{log}"
    );
    assert!(log.contains("virtual rule from 198.18.0.100/32 preference 200 table 201 removed by someone else; restoring"), "{log}");
    assert_eq!(
        log.matches("VRRP transition").count(),
        2,
        "INIT->BACKUP->MASTER only:\n{log}"
    );

    // A higher priority takes over: dir1's routes and rule leave with MASTER.
    let c2 = write(&lab, "dir2.toml", &vrrp(200, ROUTES));
    start_xlb_in(&mut lab, "dir2", "xlb2", &c2);
    wait_virtual(&lab, "dir2", true);
    wait_virtual(&lab, "dir1", false);
    assert!(!ip(&lab, "dir1", "route show table 200").contains("198.18.70.0/24"));
    assert!(!has_address(&lab, "dir1", LAB_VIP));

    // The MASTER's routes change by a reload: the new one added, the gone one removed,
    // no transition.
    std::fs::write(
        &c2,
        vrrp(200, r#""198.18.71.0/24 via 198.18.0.1 table 200", "default via 198.18.0.1 src 198.18.0.100 table 201""#),
    )
    .unwrap();
    lab.signal("xlb2", libc::SIGHUP);
    wait_shown(
        &lab,
        "dir2",
        "route show table 200",
        "198.18.71.0/24 via 198.18.0.1",
        true,
    );
    wait_shown(
        &lab,
        "dir2",
        "route show table 200",
        "198.18.70.0/24",
        false,
    );
    assert!(has_virtual(&lab, "dir2"));
    let log = lab.log("xlb2");
    assert!(log.contains("new settings applied in place"), "{log}");
    assert_eq!(
        log.matches("VRRP transition").count(),
        2,
        "INIT->BACKUP->MASTER only:\n{log}"
    );

    // dir2 stops: its routes go, dir1 is MASTER again and has them.
    lab.kill("xlb2", libc::SIGTERM);
    assert!(!has_virtual(&lab, "dir2"));
    assert!(!ip(&lab, "dir2", "route show table 200").contains("198.18.71.0/24"));
    wait_virtual(&lab, "dir1", true);
}
