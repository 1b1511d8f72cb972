//! `lvs_sync_daemon` (global_defs) and `lvs_sync_daemon_interface` (vrrp_instance) into
//! `[sync]`.

use super::*;

const INSTANCE: &str = "\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    unicast_src_ip 198.18.0.2
    unicast_peer {
        198.18.0.3
    }
    virtual_ipaddress {
        198.18.0.100
    }
}
virtual_server 198.18.0.100 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.21 80 {
        weight 1
    }
}
";

#[test]
fn lvs_sync_daemon_becomes_the_sync_table() {
    let text = format!(
        "global_defs {{\n    lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 224.0.0.82\n}}\n{INSTANCE}"
    );
    let c = import(&text);
    let s = c.config.sync.as_ref().expect("[sync]");
    assert_eq!(s.instance, "VI_1");
    assert_eq!(s.interface.as_deref(), Some("eth1"));
    assert_eq!((s.id, s.maxlen, s.port, s.ttl), (7, 1400, 8849, 2));
    assert_eq!(s.group.to_string(), "224.0.0.82");
    assert_eq!(s.key_file, None, "unicast peers restrict the sources");
    assert_eq!(s.peers_in_force(&c.config), [ip("198.18.0.3")]);
    round_trip(&c);
}

#[test]
fn the_old_interface_keyword_names_its_instance_and_multicast_gets_a_key_file() {
    // The keepalived sample vrrp.lvs_syncd: no unicast peers, so IPVS would multicast.
    let text = INSTANCE
        .replace(
            "    unicast_src_ip 198.18.0.2\n    unicast_peer {\n        198.18.0.3\n    }\n",
            "",
        )
        .replace(
            "    interface eth0\n",
            "    interface eth0\n    lvs_sync_daemon_interface eth1\n",
        );
    let c = import(&text);
    let s = c.config.sync.as_ref().expect("[sync]");
    assert_eq!(
        (s.instance.as_str(), s.interface.as_deref()),
        ("VI_1", Some("eth1"))
    );
    assert_eq!(s.key_file.as_deref(), Some(Path::new("/etc/xlb/sync.key")));
    has(
        &warnings(&c),
        "keepalived.conf:3:",
        "create /etc/xlb/sync.key",
    );
    round_trip(&c);
}

#[test]
fn bad_lvs_sync_daemon_lines_are_refused_at_their_line() {
    let e = import_err(&format!(
        "global_defs {{\n    lvs_sync_daemon eth1\n}}\n{INSTANCE}"
    ));
    has(&e, "keepalived.conf:2:", "INTERFACE VRRP_INSTANCE");
    let e = import_err(&format!(
        "global_defs {{\n    lvs_sync_daemon eth1 VI_1 speed 3\n}}\n{INSTANCE}"
    ));
    has(&e, "keepalived.conf:2:", "unknown option \"speed\"");
    let e = import_err(&format!(
        "global_defs {{\n    lvs_sync_daemon eth1 VI_1 id x\n}}\n{INSTANCE}"
    ));
    has(&e, "keepalived.conf:2:", "is not a number");
    let vrrp_only = INSTANCE.split("virtual_server").next().unwrap();
    let c = import(&format!(
        "global_defs {{\n    lvs_sync_daemon eth1 VI_1\n}}\n{vrrp_only}"
    ));
    has(
        &warnings(&c),
        "keepalived.conf:2:",
        "connection sync dropped: no virtual_server",
    );
    assert_eq!(c.config.sync, None);
    let both = INSTANCE.replace(
        "    interface eth0\n",
        "    interface eth0\n    lvs_sync_daemon_interface eth1\n",
    );
    let c = import(&format!(
        "global_defs {{\n    lvs_sync_daemon eth2 VI_1\n}}\n{both}"
    ));
    has(
        &warnings(&c),
        "keepalived.conf:6:",
        "`lvs_sync_daemon_interface` ignored",
    );
    assert_eq!(
        c.config.sync.unwrap().interface.as_deref(),
        Some("eth2"),
        "the first wins"
    );
}
