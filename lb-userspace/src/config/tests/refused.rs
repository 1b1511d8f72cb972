//! Files `Config::parse` refuses, each at `file:line:column: key.path`.

use super::*;

#[test]
fn syntax_error_is_located() {
    assert_err("[global_defs]\nrouter_id = \n", "2:13", "invalid string");
    let e = Config::parse("[global_defs\n", "t.toml").unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Syntax(_)));
    assert!(e.to_string().starts_with("t.toml:1:"), "{e}");
}

#[test]
fn unknown_keys_are_refused() {
    assert_err(
        "[global_defs]\nrouter_idd = \"x\"\n",
        "2:1: global_defs.router_idd",
        "unknown field `router_idd`",
    );
    assert_err(
        "[golbal_defs]\n",
        "1:2: golbal_defs",
        "unknown field `golbal_defs`",
    );
    assert_err(
        &format!(
            "{VS}[[virtual_server.real_server]]\nip = \"198.18.0.21\"\ntcp_check = {{ connect_prt = 80 }}\n"
        ),
        "7:15: virtual_server[0].real_server[0].tcp_check.connect_prt",
        "unknown field `connect_prt`",
    );
    // A keepalived key xlb does not do is refused, not ignored.
    assert_err(
        &format!("{VS}persistence_granularity = \"255.255.255.0\"\n"),
        "5:1: virtual_server[0].persistence_granularity",
        "unknown field",
    );
}

#[test]
fn missing_required_key() {
    assert_err(
        "[[virtual_server]]\nport = 80\n",
        "1:1: virtual_server[0]",
        "missing field `ip`",
    );
}

#[test]
fn wrong_type() {
    assert_err(
        &format!("{VS}delay_loop = \"6\"\n"),
        "5:14: virtual_server[0].delay_loop",
        "invalid type",
    );
    assert_err(
        &format!("{VS}delay_loop = -1\n"),
        "5:14: virtual_server[0].delay_loop",
        "not a duration",
    );
    assert_err(
        "[[virtual_server]]\nip = \"198.18.0.300\"\nport = 80\n",
        "2:6: virtual_server[0].ip",
        "invalid IP address",
    );
}

#[test]
fn duplicate_virtual_service() {
    let text = format!("{VS}{VS}");
    assert_err(
        &text,
        "5:1: virtual_server[1]",
        "duplicate virtual service 198.18.0.100:80/TCP: already defined as virtual_server[0]",
    );
    // Same address and port over UDP is another service.
    parse(&format!("{VS}{VS}protocol = \"UDP\"\n"));
}

#[test]
fn real_server_family_must_match_the_vip() {
    assert_err(
        &format!("{VS}[[virtual_server.real_server]]\nip = \"2001:db8::21\"\n"),
        "6:6: virtual_server[0].real_server[0].ip",
        "real server 2001:db8::21 is IPv6 but the VIP 198.18.0.100 is IPv4",
    );
}

#[test]
fn port_zero_needs_persistence() {
    let text = "[[virtual_server]]\nip = \"198.18.0.100\"\nport = 0\ninterface = \"eth0\"\n";
    assert_err(
        text,
        "3:8: virtual_server[0].port",
        "port 0 (all ports) needs persistence_timeout > 0",
    );
    let cfg = parse(&format!(
        "{text}persistence_timeout = 300\n[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
         tcp_check = {{ connect_port = 22 }}\n"
    ));
    assert_eq!(cfg.virtual_server[0].real_server[0].port, 0);
}

#[test]
fn weight_out_of_range() {
    let text = format!(
        "{VS}[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\n\
         [[virtual_server.real_server]]\nip = \"198.18.0.22\"\nweight = 70000\n"
    );
    let e = Config::parse(&text, "xlb.toml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "xlb.toml:10:10: virtual_server[0].real_server[1].weight: 70000 is out of range (0..=65535)"
    );
    assert_eq!(e.key_path, "virtual_server[0].real_server[1].weight");
    assert_eq!(
        e.location.as_ref().map(|l| (l.line, l.column)),
        Some((10, 10))
    );
    assert_err(
        &format!("{VS}[[virtual_server.real_server]]\nip = \"198.18.0.21\"\nweight = -1\n"),
        "7:10: virtual_server[0].real_server[0].weight",
        "-1 is out of range (0..=65535)",
    );
}

#[test]
fn dr_or_nat_forwarding_only() {
    assert_err(
        &format!("{VS}lb_kind = \"TUN\"\n"),
        "5:11: virtual_server[0].lb_kind",
        "lb_kind \"TUN\" is not supported: xlb has no IP-in-IP encapsulation",
    );
    assert_err(
        &format!("{VS}lvs_method = \"FOO\"\n"),
        "5:14: virtual_server[0].lvs_method",
        "unknown lb_kind \"FOO\": expected \"DR\" or \"NAT\"",
    );
}

#[test]
fn unsupported_scheduler() {
    assert_err(
        &format!("{VS}lb_algo = \"lblc\"\n"),
        "5:11: virtual_server[0].lb_algo",
        "lb_algo \"lblc\" is not supported",
    );
    assert_err(
        &format!("{VS}lb_algo = \"fastest\"\n"),
        "5:11: virtual_server[0].lb_algo",
        "unknown lb_algo \"fastest\": expected \"rr\", \"wrr\", \"sh\", \"mh\", \"lc\", \"wlc\"",
    );
}

#[test]
fn a_counting_scheduler_scans_at_most_256_real_servers() {
    let mut text = format!("{VS}lb_algo = \"wlc\"\n");
    for i in 0..257 {
        text.push_str(&format!(
            "[[virtual_server.real_server]]\nip = \"198.18.{}.{}\"\nport = 80\n",
            1 + i / 200,
            1 + i % 200
        ));
    }
    assert_err(
        &text,
        "6:1: virtual_server[0].real_server",
        "at most 256 of them: this service has 257",
    );
}

#[test]
fn virtual_server_without_interface_needs_a_vrrp_instance() {
    let text = "[[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\n";
    assert_err(
        text,
        "1:1: virtual_server[0].interface",
        "198.18.0.100 is not in any vrrp_instance's virtual_ipaddress, so there is no \
         interface to attach to: set `interface`",
    );
    // Another instance's VIP does not help.
    assert_err(
        &format!("{VI}[[virtual_server]]\nip = \"198.18.0.200\"\nport = 80\n"),
        "6:1: virtual_server[0].interface",
        "set `interface`",
    );
    parse(&format!("{VI}{text}"));
}

#[test]
fn virtual_router_id_range() {
    let head = "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n";
    assert_err(
        &format!("{head}virtual_router_id = 0\n"),
        "4:21: vrrp_instance[0].virtual_router_id",
        "0 is out of range (1..=255)",
    );
    assert_err(
        &format!("{head}virtual_router_id = 256\n"),
        "4:21: vrrp_instance[0].virtual_router_id",
        "256 is out of range (1..=255)",
    );
    assert_err(
        head,
        "1:1: vrrp_instance[0]",
        "missing field `virtual_router_id`",
    );
}

#[test]
fn priority_range() {
    assert_err(
        &format!("{VI}priority = 0\n"),
        "6:12: vrrp_instance[0].priority",
        "0 is out of range (1..=255)",
    );
    assert_err(
        &format!("{VI}priority = 256\n"),
        "6:12: vrrp_instance[0].priority",
        "256 is out of range (1..=255)",
    );
    assert_eq!(
        parse(&format!("{VI}priority = 255\n")).vrrp_instance[0].priority,
        255
    );
}

#[test]
fn duplicate_real_server() {
    let rs = "[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n";
    assert_err(
        &format!("{VS}{rs}{rs}"),
        "7:1: virtual_server[0].real_server[1]",
        "duplicate real server 198.18.0.21:80: already real_server[0]",
    );
}

#[test]
fn real_server_port_must_be_the_service_port() {
    assert_err(
        &format!("{VS}[[virtual_server.real_server]]\nip = \"198.18.0.21\"\nport = 8080\n"),
        "7:8: virtual_server[0].real_server[0].port",
        "DR forwards to the virtual server's port unchanged, so this must be 80",
    );
}

#[test]
fn real_server_cannot_be_the_vip() {
    assert_err(
        &format!("{VS}[[virtual_server.real_server]]\nip = \"198.18.0.100\"\n"),
        "6:6: virtual_server[0].real_server[0].ip",
        "cannot be the VIP itself",
    );
}

#[test]
fn hash_flags_need_a_hash_scheduler() {
    assert_err(
        &format!("{VS}sh_port = true\n"),
        "5:11: virtual_server[0].sh_port",
        "sh_port only applies to lb_algo \"sh\" or \"mh\" (this service uses \"wrr\")",
    );
    assert_err(
        &format!("{VS}mh-fallback = true\n"),
        "5:15: virtual_server[0].mh-fallback",
        "only applies",
    );
}

#[test]
fn unknown_track_script() {
    assert_err(
        &format!("{VI}track_script = [\"chk_nginx weight -10\"]\n"),
        "6:17: vrrp_instance[0].track_script[0]",
        "there is no [vrrp_script.chk_nginx]",
    );
}

#[test]
fn bad_virtual_ipaddress() {
    assert_err(
        &format!("{VI}virtual_ipaddress_excluded = [\"198.18.0.7/40\"]\n"),
        "6:31: vrrp_instance[0].virtual_ipaddress_excluded[0]",
        "/40 is not a prefix length (0..=32)",
    );
    let mixed = "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\n\
                 virtual_ipaddress = [\"198.18.0.100\", \"2001:db8::1\"]\n";
    assert_err(
        mixed,
        "5:38: vrrp_instance[0].virtual_ipaddress[1]",
        "a VRRP instance advertises one address family",
    );
}

#[test]
fn vip_owned_by_two_instances() {
    let second = VI.replace("VI_1", "VI_2").replace("= 51", "= 52");
    assert_err(
        &format!("{VI}{second}"),
        "10:22: vrrp_instance[1].virtual_ipaddress[0]",
        "198.18.0.100 is already a VIP of vrrp_instance \"VI_1\"",
    );
}

#[test]
fn duplicate_instances() {
    let second = VI.replace("198.18.0.100", "198.18.0.200");
    assert_err(
        &format!("{VI}{second}"),
        "7:8: vrrp_instance[1].name",
        "already used by vrrp_instance[0]",
    );
    let second = second.replace("VI_1", "VI_2");
    assert_err(
        &format!("{VI}{second}"),
        "9:21: vrrp_instance[1].virtual_router_id",
        "virtual_router_id 51 is already used on eth0 by vrrp_instance \"VI_1\"",
    );
}

#[test]
fn vrrp_version_rules() {
    assert_err(
        &format!("{VI}advert_int = 0.5\n"),
        "6:14: vrrp_instance[0].advert_int",
        "not a VRRPv2 advert_int",
    );
    assert_err(
        &format!("{VI}version = 3\nadvert_int = 0.005\n"),
        "7:14: vrrp_instance[0].advert_int",
        "not a VRRPv3 advert_int",
    );
    assert_err(
        &format!("{VI}version = 3\nauthentication = {{ auth_pass = \"x\" }}\n"),
        "7:18: vrrp_instance[0].authentication",
        "VRRPv3 has no authentication",
    );
    assert_err(
        &format!("{VI}authentication = {{ auth_type = \"PASS\", auth_pass = \"123456789\" }}\n"),
        "6:52: vrrp_instance[0].authentication.auth_pass",
        "1 to 8 ASCII characters",
    );
    assert_err(
        &format!("{VI}authentication = {{ auth_type = \"AH\", auth_pass = \"x\" }}\n"),
        "6:32: vrrp_instance[0].authentication.auth_type",
        "auth_type AH (IPsec AH) is not supported",
    );
    let v6 = "[[vrrp_instance]]\nname = \"VI_6\"\ninterface = \"eth0\"\nvirtual_router_id = 6\n\
              virtual_ipaddress = [\"2001:db8::1\"]\nversion = 2\n";
    assert_err(v6, "6:11: vrrp_instance[0].version", "VRRPv2 is IPv4 only");
}

#[test]
fn unicast_rules() {
    assert_err(
        &format!("{VI}unicast_src_ip = \"198.18.0.11\"\n"),
        "6:18: vrrp_instance[0].unicast_src_ip",
        "unicast_src_ip without unicast_peer",
    );
    assert_err(
        &format!("{VI}unicast_peer = [\"198.18.0.12\", \"2001:db8::12\"]\n"),
        "6:32: vrrp_instance[0].unicast_peer[1]",
        "2001:db8::12 is IPv6 but the virtual addresses are not",
    );
}

#[test]
fn http_checks_need_urls() {
    let rs = "[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n";
    assert_err(
        &format!("{VS}{rs}http_get = {{ connect_timeout = 3 }}\n"),
        "7:12: virtual_server[0].real_server[0].http_get",
        "needs at least one url",
    );
    assert_err(
        &format!("{VS}{rs}http_get = {{ url = [{{ path = \"/\" }}], enable_sni = true }}\n"),
        "7:51: virtual_server[0].real_server[0].http_get.enable_sni",
        "enable_sni is for ssl_get",
    );
    assert_err(
        &format!("{VS}{rs}ssl_get = {{ url = [{{ path = \"/\", digest = \"abc\" }}] }}\n"),
        "7:43: virtual_server[0].real_server[0].ssl_get.url[0].digest",
        "32 hexadecimal digits",
    );
    assert_err(
        &format!(
            "{VS}{rs}http_get = {{ url = [{{ path = \"/\", status_code = \"200-299 700\" }}] }}\n"
        ),
        "7:49: virtual_server[0].real_server[0].http_get.url[0].status_code",
        "\"700\" is not an HTTP status code (100..=599)",
    );
}

#[test]
fn load_reports_unreadable_files() {
    let e = Config::load(Path::new("/nonexistent/xlb.toml")).unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Read(_)));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/xlb.toml: cannot read the file: "),
        "{e}"
    );
}

#[test]
fn connection_table_size_is_a_power_of_two_in_range() {
    let cfg = parse("[global_defs]\nconnection_table_size = 65536\n");
    assert_eq!(cfg.global_defs.connection_table_size, 65536);
    assert_eq!(
        parse("").global_defs.connection_table_size,
        lb_common::MAX_CONNS
    );
    assert_err(
        "[global_defs]\nconnection_table_size = 100000\n",
        "2:25: global_defs.connection_table_size",
        "not a power of two",
    );
    assert_err(
        "[global_defs]\nconnection_table_size = 1024\n",
        "2:25: global_defs.connection_table_size",
        "out of range",
    );
}

#[test]
fn connection_table_start_size_is_a_power_of_two_in_range() {
    assert_eq!(
        parse("").global_defs.connection_table_start_size,
        crate::dataplane::conn_grow::START_SLOTS
    );
    let cfg = parse("[global_defs]\nconnection_table_start_size = 4096\n");
    assert_eq!(cfg.global_defs.connection_table_start_size, 4096);
    assert_err(
        "[global_defs]\nconnection_table_start_size = 5000\n",
        "2:31: global_defs.connection_table_start_size",
        "not a power of two",
    );
}

#[test]
fn lvs_timeouts_as_keepalived_sets_them() {
    let cfg = parse("[global_defs]\nlvs_timeouts = { tcp = 7200, udp = 60 }\n");
    let t = cfg.global_defs.lvs_timeouts;
    assert_eq!(
        (t.tcp, t.tcpfin, t.udp, t.syn_recv),
        (7200.0, 120.0, 60.0, 60.0)
    );
    assert_eq!(lb_common::seconds(t.to_ticks().tcp), 7199);
    let t = parse("[global_defs]\nlvs_timeouts = { syn_recv = 10 }\n")
        .global_defs
        .lvs_timeouts;
    assert_eq!(t.to_ticks().syn_recv, lb_common::ticks(10));
    assert_err(
        "[global_defs]\nlvs_timeouts = { syn_recv = 0 }\n",
        "2:29: global_defs.lvs_timeouts.syn_recv",
        "out of range",
    );
    assert_eq!(
        parse("").global_defs.lvs_timeouts.to_ticks(),
        lb_common::Timeouts::IPVS
    );
    assert_err(
        "[global_defs]\nlvs_timeouts = { tcp = 0 }\n",
        "2:24: global_defs.lvs_timeouts.tcp",
        "out of range",
    );
    assert_err(
        "[global_defs]\nlvs_timeouts = { tcpfinwait = 3 }\n",
        "2:18: global_defs.lvs_timeouts.tcpfinwait",
        "expected one of `tcp`, `tcpfin`, `udp`",
    );
}

#[test]
fn notification_email_takes_local_recipients_not_empty_ones() {
    // keepalived mails `root` as written: a local recipient of the SMTP server.
    let c = Config::parse(
        "[global_defs]\nnotification_email = [\"root\", \"ops@example.org\"]\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(
        c.global_defs.notification_email,
        ["root", "ops@example.org"]
    );
    assert_err(
        "[global_defs]\nnotification_email = [\"root\", \" \"]\n",
        "2:31: global_defs.notification_email[1]",
        "is not a mail address",
    );
}

#[test]
fn use_vmac_rules() {
    // Accepted: the default name, a name, false (no VMAC).
    let c = parse(&format!("{VI}use_vmac = true\nvmac_xmit_base = true\n"));
    assert_eq!(c.vrrp_instance[0].vmac_name().as_deref(), Some("vrrp.51"));
    let c = parse(&format!("{VI}use_vmac = \"vip51\"\n"));
    assert_eq!(c.vrrp_instance[0].vmac_name().as_deref(), Some("vip51"));
    assert_eq!(
        parse(&format!("{VI}use_vmac = false\n")).vrrp_instance[0].vmac_name(),
        None
    );
    assert_err(
        &format!("{VI}vmac_xmit_base = true\n"),
        "6:18: vrrp_instance[0].vmac_xmit_base",
        "vmac_xmit_base is only valid with use_vmac",
    );
    assert_err(
        &format!("{VI}use_vmac = \"a-very-long-interface\"\n"),
        "6:12: vrrp_instance[0].use_vmac",
        "is not an interface name",
    );
    assert_err(
        &format!("{VI}use_vmac = \"eth0\"\n"),
        "6:12: vrrp_instance[0].use_vmac",
        "the instance's own interface",
    );
    assert_err(
        &format!("{VI}use_vmac = 3\n"),
        "6:12: vrrp_instance[0].use_vmac",
        "",
    );
    let second = "[[vrrp_instance]]\nname = \"VI_2\"\ninterface = \"eth1\"\nvirtual_router_id = 52\nvirtual_ipaddress = [\"198.18.0.101/24\"]\nuse_vmac = \"vrrp.51\"\n";
    assert_err(
        &format!("{VI}use_vmac = true\n{second}"),
        "12:12: vrrp_instance[1].use_vmac",
        "is already the VMAC of vrrp_instance \"VI_1\"",
    );
    assert_err(
        &format!(
            "[global_defs]\nvrrp_strict = true\n{VI}accept = true\nuse_vmac = true\nvmac_xmit_base = true\n"
        ),
        "10:18: vrrp_instance[0].vmac_xmit_base",
        "incompatible with vrrp_strict",
    );
}

#[test]
fn sync_group_members_must_exist_and_be_in_one_group() {
    let two = "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 1\n\
               [[vrrp_instance]]\nname = \"VI_2\"\ninterface = \"eth1\"\nvirtual_router_id = 2\n";
    assert_err(
        &format!("{two}[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\", \"VI_3\"]\n"),
        "11:18: vrrp_sync_group[0].group[1]",
        "there is no vrrp_instance \"VI_3\"",
    );
    assert_err(
        &format!(
            "{two}[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\", \"VI_2\"]\n\
             [[vrrp_sync_group]]\nname = \"H\"\ngroup = [\"VI_2\"]\n"
        ),
        "14:10: vrrp_sync_group[1].group[0]",
        "is already in vrrp_sync_group \"G\"",
    );
    assert_err(
        &format!(
            "{two}[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\"]\ntrack_script = [\"nope\"]\n"
        ),
        "12:17: vrrp_sync_group[0].track_script[0]",
        "there is no [vrrp_script.nope]",
    );
    assert_err(
        &format!(
            "{two}[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\"]\nnotify = \"/bin/echo a > b\"\n"
        ),
        "12:10: vrrp_sync_group[0].notify",
        "outside quotes",
    );
    // The name goes into mail subjects.
    assert_err(
        &format!("{two}[[vrrp_sync_group]]\nname = \"G\\r\"\ngroup = [\"VI_1\"]\n"),
        "10:8: vrrp_sync_group[0].name",
        "control characters (CR, LF, ...) are refused",
    );
    // A group of one is accepted (keepalived only warns).
    Config::parse(
        &format!("{two}[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\"]\n"),
        "t.toml",
    )
    .unwrap();
}

#[test]
fn bad_routes_rules_and_static_addresses_are_located() {
    assert_err(
        "static_routes = [\"198.18.9.0/24 via 198.18.0.1\", \"198.18.8.0/24 mtu 1400\"]\n",
        "1:50: static_routes[1]",
        "`mtu` is neither a keyword xlb knows in a route",
    );
    assert_err(
        "static_rules = [\"from 198.18.0.0/24 table 1\"]\n",
        "1:17: static_rules[0]",
        "a rule needs its `preference N`",
    );
    assert_err(
        "static_ipaddress = [\"198.18.1.1/24\"]\n",
        "1:21: static_ipaddress[0]",
        "`dev IFNAME` is required",
    );
    assert_err(
        &format!("static_ipaddress = [\"198.18.0.100/24 dev eth0\"]\n{VI}"),
        "1:21: static_ipaddress[0]",
        "also a VIP of vrrp_instance",
    );
    assert_err(
        &format!("{VI}virtual_routes = [\"default via 2001:db8::1 src 198.18.0.100\"]\n"),
        "6:19: vrrp_instance[0].virtual_routes[0]",
        "different address families",
    );
    assert_err(
        &format!(
            "static_routes = [\"198.18.9.0/24 via 198.18.0.1 table 7\"]\n{VI}\
             virtual_routes = [\"198.18.9.0/24 via 198.18.0.2 table 7\"]\n"
        ),
        "7:19: vrrp_instance[0].virtual_routes[0]",
        "route 198.18.9.0/24 table 7 is already static_routes[0]",
    );
    assert_err(
        &format!("{VI}virtual_rules = [\"from 198.18.0.100 preference 5 goto 3\"]\n"),
        "6:18: vrrp_instance[0].virtual_rules[0]",
        "needs a preference below 3",
    );
}

#[test]
fn track_reference_needs_addresses_that_can_be_pinged() {
    assert_err(
        &format!("{VI}track_reference = {{ addresses = [] }}\n"),
        "6:33: vrrp_instance[0].track_reference.addresses",
        "at least one address",
    );
    assert_err(
        &format!("{VI}track_reference = {{ addresses = [\"198.18.0.1\", \"224.0.0.1\"] }}\n"),
        "6:48: vrrp_instance[0].track_reference.addresses[1]",
        "224.0.0.1 cannot be pinged",
    );
    assert_err(
        &format!("{VI}track_reference = {{ addresses = [\"198.18.0.1\"], fall = 0 }}\n"),
        "6:56: vrrp_instance[0].track_reference.fall",
        "0 is out of range",
    );
    assert_err(
        &format!("{VI}track_reference = {{ addresses = [\"198.18.0.1\"], every = 1 }}\n"),
        "6:49: vrrp_instance[0].track_reference.every",
        "unknown field `every`",
    );
    assert_err(
        &format!("{VI}track_reference = {{ addresses = [\"gateway\"] }}\n"),
        "6:34: vrrp_instance[0].track_reference.addresses[0]",
        "invalid IP address syntax",
    );
}

#[test]
fn heartbeat_needs_another_interface_and_peers_of_the_family() {
    let hb = |body: &str| format!("{VI}heartbeat = {{ {body} }}\n");
    assert_err(
        &hb(
            "interface = \"eth0\", unicast_src_ip = \"198.19.0.1\", unicast_peer = [\"198.19.0.2\"]",
        ),
        "6:27: vrrp_instance[0].heartbeat.interface",
        "another interface",
    );
    assert_err(
        &hb("interface = \"hb0\", unicast_src_ip = \"198.19.0.1\", unicast_peer = []"),
        "6:80: vrrp_instance[0].heartbeat.unicast_peer",
        "at least one unicast_peer",
    );
    assert_err(
        &hb(
            "interface = \"hb0\", unicast_src_ip = \"198.19.0.1\", unicast_peer = [\"2001:db8::2\"]",
        ),
        "6:81: vrrp_instance[0].heartbeat.unicast_peer[0]",
        "2001:db8::2 cannot be a heartbeat peer",
    );
    assert_err(
        &hb("interface = \"hb0\", unicast_peer = [\"198.19.0.2\"]"),
        "6:13: vrrp_instance[0].heartbeat",
        "missing field `unicast_src_ip`",
    );
}
