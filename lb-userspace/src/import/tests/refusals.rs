//! What xlb refuses or drops, reported at the keepalived line: TUN, schedulers
//! without an XDP equivalent, unknown keywords, values `Config::parse` refuses; and
//! syntax errors.

use super::*;

#[test]
fn import_tun_and_mixed_forwarding_are_errors_at_their_line() {
    let errs = import_err(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n    lb_kind FOO\n}}\n\
         virtual_server 10.4.0.100 81 {{\n    lvs_method TUN\n}}\n"
    ));
    has(
        &errs,
        "keepalived.conf:9: ",
        "unknown `lb_kind` \"FOO\": xlb forwards in DR or NAT mode",
    );
    has(
        &errs,
        "keepalived.conf:12: ",
        "`lvs_method TUN` cannot be converted: xlb has no IP-in-IP encapsulation",
    );
    // A real server forwarded otherwise than its service.
    let errs = import_err(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n lb_kind DR\n real_server 10.4.0.2 80 {{\n  lvs_method NAT\n }}\n}}\n"
    ));
    has(
        &errs,
        "keepalived.conf:10: ",
        "this real server's lb_kind NAT differs from its virtual server's DR",
    );
}

#[test]
fn import_nat_keeps_the_real_server_ports() {
    let c = import(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n    lb_kind NAT\n    lb_algo rr\n\
         real_server 10.4.0.2 8080 {{\n  TCP_CHECK {{\n  }}\n }}\n}}\n\
         virtual_server 10.4.0.100 81 {{\n    lb_algo rr\n\
         real_server 10.4.0.3 8081 {{\n  lvs_method NAT\n }}\n}}\n"
    ));
    let vs = &c.config.virtual_server;
    assert_eq!(vs[0].lb_kind, crate::config::LbKind::Nat);
    assert_eq!(vs[0].real_server[0].port, 8080);
    assert_eq!(
        vs[0].real_server[0]
            .tcp_check
            .as_ref()
            .unwrap()
            .connect_port,
        None
    );
    // Without lb_kind, a real server that says NAT makes the service NAT.
    assert_eq!(vs[1].lb_kind, crate::config::LbKind::Nat);
    assert_eq!(vs[1].real_server[0].port, 8081);
}

#[test]
fn import_keeps_ipvs_schedulers_and_turns_locality_ones_into_wrr_with_a_warning() {
    let mut text = String::from(VI);
    let names = [
        "lc", "wlc", "sed", "nq", "fo", "ovf", "dh", "twos", "rr", "wrr", "sh", "mh",
    ];
    for (k, algo) in names.iter().enumerate() {
        text.push_str(&format!(
            "virtual_server 10.4.0.100 {} {{\n    lb_algo {algo}\n    lb_kind DR\n}}\n",
            80 + k
        ));
    }
    text.push_str("virtual_server 10.4.0.100 99 {\n    lb_algo lblc\n    lb_kind DR\n}\n");
    let c = import(&text);
    let got: Vec<&str> = c
        .config
        .virtual_server
        .iter()
        .map(|v| v.lb_algo.as_str())
        .collect();
    let mut want = names.to_vec();
    want.push("wrr");
    assert_eq!(got, want);
    let w = warnings(&c);
    assert!(!w.iter().any(|l| l.contains("lb_algo wlc")), "{w:?}");
    has(&w, "keepalived.conf:", "lb_algo lblc");
}

#[test]
fn import_defaults_that_differ_from_keepalived_are_warned() {
    // No lb_kind (keepalived: NAT) and no lb_algo (keepalived: wlc).
    let c = import(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n    delay_loop 5\n}}\n"
    ));
    let vs = &c.config.virtual_server[0];
    // keepalived's default scheduler, written out (xlb's own default is wrr).
    assert_eq!(vs.lb_algo, LbAlgo::Wlc);
    assert!(c.toml.contains("lb_algo = \"wlc\""), "{}", c.toml);
    let w = warnings(&c);
    has(
        &w,
        "keepalived.conf:8: ",
        "no lb_kind: keepalived's default is NAT",
    );
    assert!(!w.iter().any(|l| l.contains("no lb_algo")), "{w:?}");
}

#[test]
fn import_unknown_and_unsupported_keywords_are_errors_at_their_line() {
    let errs = import_err(&format!(
        "global_defs {{\n    router_id A\n    frobnicate 3\n    startup_script /x.sh\n}}\n\
         {VI}vrrp_sync_group G {{\n    group {{\n        VI_1\n    }}\n}}\n\
         virtual_server 10.4.0.100 80 {{\n    lb_kind DR\n    lb_algo rr\n    \
         real_server 10.4.0.2 80 {{\n        uthreshold 100\n        TCP_CHECK {{\n            \
         connect_prot 80\n        }}\n    }}\n}}\n\
         virtual_server fwmark 1 {{\n}}\n"
    ));
    has(&errs, "keepalived.conf:3: ", "`frobnicate` in global_defs");
    has(
        &errs,
        "keepalived.conf:4: ",
        "`startup_script` is not supported",
    );
    has(
        &errs,
        "keepalived.conf:22: ",
        "`uthreshold` is not supported",
    );
    has(
        &errs,
        "keepalived.conf:28: ",
        "pass `--fwmark 1=tcp:VIP:PORT[,...]`",
    );
    // `connect_prot` (line 24) is a misspelling keepalived skips: a warning, see
    // import_what_keepalived_skips_or_ignores_is_a_warning.
    assert_eq!(errs.len(), 4, "{errs:#?}");
}

#[test]
fn import_harmless_keywords_are_warnings() {
    let c = import(&format!(
        "global_defs {{\n    lvs_id LVS_A\n    enable_traps\n    vrrp_iptables\n}}\n{VI}"
    ));
    assert_eq!(c.config.global_defs.router_id.as_deref(), Some("LVS_A"));
    let w = warnings(&c);
    has(&w, "keepalived.conf:3: ", "`enable_traps` ignored: SNMP");
    has(&w, "keepalived.conf:4: ", "`vrrp_iptables` ignored");
    assert_eq!(w.len(), 2, "{w:#?}");
}

#[test]
fn import_values_xlb_refuses_are_reported_at_the_keepalived_line() {
    // Config::parse's errors come back at the keepalived line of the value.
    let errs = import_err(&VI.replace(
        "virtual_router_id 51",
        "virtual_router_id 51\n    priority 300",
    ));
    has(
        &errs,
        "keepalived.conf:4: ",
        "300 is out of range (1..=255)",
    );
    has(
        &errs,
        "keepalived.conf:4: ",
        "(xlb key vrrp_instance[0].priority)",
    );
    let errs = import_err(&VI.replace("10.4.0.100/24", "10.4.0.100/24 nodad"));
    has(
        &errs,
        "keepalived.conf:5: ",
        "`nodad` is not supported here",
    );
    let errs = import_err(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n lb_algo rr\n lb_kind DR\n real_server 10.4.0.2 80 {{\n  \
         HTTP_GET {{\n   url {{\n    path /\n    digest xyz\n   }}\n  }}\n }}\n}}\n"
    ));
    has(&errs, "keepalived.conf:15: ", "digest is an MD5 sum");
    let errs = import_err(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n lb_algo rr\n lb_kind DR\n protocol SCTP\n}}\n"
    ));
    has(&errs, "keepalived.conf:11: ", "SCTP is not supported");
}

#[test]
fn import_virtual_server_interface_is_inferred_or_required() {
    // 10.4.0.7 is no VIP, but VI_1's 10.4.0.100/24 holds it: its interface, warned.
    let c = import(&format!(
        "{VI}virtual_server 10.4.0.7 80 {{\n lb_algo rr\n lb_kind DR\n}}\n"
    ));
    assert_eq!(
        c.config.virtual_server[0].interface.as_deref(),
        Some("eth0")
    );
    has(
        &warnings(&c),
        "keepalived.conf:8: ",
        "xlb attaches it to eth0",
    );
    // Nothing holds 172.16.0.1: an error suggesting the interface.
    let errs = import_err(&format!(
        "{VI}virtual_server 172.16.0.1 80 {{\n lb_algo rr\n lb_kind DR\n}}\n"
    ));
    has(
        &errs,
        "keepalived.conf:8: ",
        "add `interface IFNAME` to this virtual_server block (e.g. `interface eth0`)",
    );
    has(&errs, "keepalived.conf:8: ", "pass `--interface IFNAME`");
    // --interface supplies it, with a warning.
    let opts = Options {
        interface: Some("eth3".into()),
        ..Options::default()
    };
    let c = import_str_with(
        &format!("{VI}virtual_server 172.16.0.1 80 {{\n lb_algo rr\n lb_kind DR\n}}\n"),
        "keepalived.conf",
        Path::new("/nonexistent"),
        &opts,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.config.virtual_server[0].interface.as_deref(),
        Some("eth3")
    );
    has(
        &warnings(&c),
        "keepalived.conf:8: ",
        "xlb attaches it to eth3 (--interface)",
    );
    // Without VRRP at all, `interface` in the block (xlb's keyword) does it.
    let c =
        import("virtual_server 172.16.0.1 80 {\n interface eth2\n lb_algo rr\n lb_kind DR\n}\n");
    assert_eq!(
        c.config.virtual_server[0].interface.as_deref(),
        Some("eth2")
    );
}

#[test]
fn import_dr_real_server_on_another_port_keeps_checking_that_port() {
    let c = import(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n lb_algo rr\n lb_kind DR\n \
         real_server 10.4.0.2 8080 {{\n  TCP_CHECK {{\n   connect_timeout 2\n  }}\n }}\n}}\n"
    ));
    let rs = &c.config.virtual_server[0].real_server[0];
    assert_eq!(rs.port, 80);
    assert_eq!(rs.tcp_check.as_ref().unwrap().connect_port, Some(8080));
    has(
        &warnings(&c),
        "keepalived.conf:11: ",
        "real_server port 8080 differs",
    );
    round_trip(&c);
}

#[test]
fn import_virtual_server_group_expands() {
    let c = import(&format!(
        "{VI}virtual_server_group WEB {{\n 10.4.0.100 80\n 10.4.0.101-102 80\n}}\n\
         virtual_server group WEB {{\n lb_algo rr\n lb_kind DR\n real_server 10.4.0.2 80 {{\n }}\n}}\n"
    ));
    let vips: Vec<_> = c.config.virtual_server.iter().map(|v| v.ip).collect();
    assert_eq!(vips, [ip("10.4.0.100"), ip("10.4.0.101"), ip("10.4.0.102")]);
    assert!(
        c.config
            .virtual_server
            .iter()
            .all(|v| v.real_server.len() == 1)
    );
    round_trip(&c);
}

#[test]
fn import_syntax_errors_are_located() {
    let errs = import_err("global_defs {\n router_id A\n");
    has(&errs, "keepalived.conf:1: ", "not closed");
    let errs = import_err("global_defs {\n router_id \"A\n}\n");
    has(&errs, "keepalived.conf:2: ", "unterminated quote");
    let errs = import_err("}\n");
    has(&errs, "keepalived.conf:1: ", "unexpected `}`");
    // `@lb1 global_defs {` is dropped without a config id: its `}` is left alone.
    let errs = import_err("@lb1 global_defs {\n}\n");
    has(&errs, "keepalived.conf:2: ", "unexpected `}`");
}

#[test]
fn import_receive_checks_and_down_timer_carry_over() {
    let c = import(&format!(
        "global_defs {{\n    vrrp_check_unicast_src\n    vrrp_down_timer_adverts 5\n}}\n{}",
        VI.replace(
            "virtual_router_id 51",
            "virtual_router_id 51\n    skip_check_adv_addr\n    unicast_peer {\n        \
             10.4.0.2\n    }\n    check_unicast_src",
        )
    ));
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    let vi = &c.config.vrrp_instance[0];
    assert!(vi.skip_check_adv_addr && vi.check_unicast_src);
    assert_eq!(vi.down_timer_adverts, 5);
    round_trip(&c);
}

#[test]
fn import_keys_xlb_cannot_honour_are_errors_at_their_line() {
    let errs = import_err(&VI.replace(
        "virtual_router_id 51",
        "virtual_router_id 51\n    no_accept",
    ));
    has(&errs, "keepalived.conf:4: ", "`no_accept` is not supported");
    let errs = import_err(&format!(
        "global_defs {{\n    vrrp_garp_interval 0.001\n}}\n{VI}"
    ));
    has(
        &errs,
        "keepalived.conf:2: ",
        "vrrp_garp_interval = 0.001 is not supported",
    );
    let errs = import_err(&format!(
        "{VI}virtual_server 10.4.0.100 53 {{\n lb_algo rr\n lb_kind DR\n protocol UDP\n ops\n \
         sorry_server 10.4.0.9 53\n sorry_server_inhibit\n}}\n"
    ));
    has(&errs, "keepalived.conf:12: ", "`ops` is not supported");
    has(
        &errs,
        "keepalived.conf:14: ",
        "`sorry_server_inhibit` is not supported",
    );
}

#[test]
fn import_vrrp_strict_writes_accept_with_a_warning() {
    let c = import(&format!("global_defs {{\n    vrrp_strict\n}}\n{VI}"));
    assert_eq!(c.config.vrrp_instance[0].accept, Some(true));
    has(
        &warnings(&c),
        "keepalived.conf:4: ",
        "vrrp_strict: keepalived would drop packets to the VIPs",
    );
    round_trip(&c);
}

#[test]
fn import_what_keepalived_skips_or_ignores_is_a_warning() {
    let c = import(
        "global_defs {\n    notification_email {\n        root\n    }\n    \
         router_idd A\n}\n\
         vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    \
         nopreempt off\n    virtual_ipaddress {\n        10.4.0.100/24\n    }\n}\n\
         virtual_server 10.4.0.100 80 {\n    lb_kind DR\n    lb_algo rr\n    \
         nat_mask 255.255.255.0\n    ha_suspend no\n    \
         real_server 10.4.0.2 80 {\n        alpha false\n        TCP_CHECK {\n            \
         connect_prot 80\n        }\n    }\n}\n",
    );
    let w = warnings(&c);
    has(
        &w,
        "keepalived.conf:5: ",
        "`router_idd` in global_defs is not a keyword the importer knows (did you mean `router_id`?)",
    );
    has(
        &w,
        "keepalived.conf:10: ",
        "keepalived ignores the argument of `nopreempt`",
    );
    has(&w, "keepalived.conf:18: ", "`nat_mask` ignored");
    has(
        &w,
        "keepalived.conf:19: ",
        "keepalived ignores the argument of `ha_suspend`",
    );
    has(
        &w,
        "keepalived.conf:21: ",
        "keepalived ignores the argument of `alpha`",
    );
    has(&w, "keepalived.conf:23: ", "did you mean `connect_port`?");
    assert_eq!(w.len(), 6, "{w:#?}");
    // The flags are set, as keepalived sets them, whatever their argument says.
    let v = &c.config.vrrp_instance[0];
    assert!(v.nopreempt, "nopreempt off sets nopreempt in keepalived");
    let vs = &c.config.virtual_server[0];
    assert!(vs.ha_suspend);
    assert!(vs.real_server[0].alpha);
    // A local recipient, as keepalived (and its SMTP server) takes it.
    assert_eq!(
        c.config.global_defs.notification_email,
        vec!["root".to_string()]
    );
    // The skipped misspelling sets nothing.
    assert_eq!(c.config.global_defs.router_id, None);
}

#[test]
fn import_unknown_keyword_far_from_any_known_is_still_an_error() {
    let errs = import_err(&format!("global_defs {{\n    frobnicate 3\n}}\n{VI}"));
    has(&errs, "keepalived.conf:2: ", "`frobnicate` in global_defs");
    assert!(!errs[0].contains("did you mean"), "{errs:#?}");
}

#[test]
fn import_drops_what_keepalived_drops_with_a_warning() {
    let c = import(
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    \
         version 3\n    authentication {\n        auth_type PASS\n        auth_pass x\n    }\n    \
         virtual_ipaddress {\n        10.4.0.100/24\n        10.4.0.100/24\n    }\n}\n\
         virtual_server_group G {\n    10.4.0.100 80\n}\n\
         virtual_server_group NOBODY {\n    10.4.0.100 81\n}\n\
         virtual_server group G {\n    lb_kind DR\n    lb_algo rr\n    \
         real_server 10.4.0.2 80 {\n    }\n}\n",
    );
    let w = warnings(&c);
    has(&w, "keepalived.conf:5: ", "authentication ignored: VRRPv3");
    has(
        &w,
        "keepalived.conf:11: ",
        "10.4.0.100 is already a VIP of vrrp_instance VI_1",
    );
    has(
        &w,
        "keepalived.conf:17: ",
        "virtual_server_group NOBODY is used by no virtual_server",
    );
    assert_eq!(w.len(), 3, "{w:#?}");
    let v = &c.config.vrrp_instance[0];
    assert!(v.authentication.is_none());
    assert_eq!(v.virtual_ipaddress.len(), 1);
    round_trip(&c);

    // vrrp_strict: authentication dropped too.
    let c = import(&format!(
        "global_defs {{\n    vrrp_strict\n}}\n{}",
        VI.replace(
            "    virtual_ipaddress",
            "    authentication {\n        auth_type PASS\n        auth_pass x\n    }\n    \
             virtual_ipaddress"
        )
    ));
    has(
        &warnings(&c),
        "keepalived.conf:7: ",
        "authentication ignored: strict mode",
    );
    assert!(c.config.vrrp_instance[0].authentication.is_none());
}

#[test]
fn import_reads_non_utf8_comments_and_reports_other_bytes_at_their_line() {
    let dir = std::env::temp_dir().join(format!("xlb-import-utf8-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let ok = dir.join("ok.conf");
    let mut text = b"# caf\xe9 (Latin-1)\n".to_vec();
    text.extend_from_slice(VI.as_bytes());
    text.extend_from_slice(b"! r\xe9sum\xe9\n");
    fs::write(&ok, &text).unwrap();
    let c = import_file(&ok).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.config.vrrp_instance[0].name, "VI_1");

    // Outside a comment: an error at its line, and the file's other errors too.
    let bad = dir.join("bad.conf");
    let mut text = VI.as_bytes().to_vec();
    text.extend_from_slice(b"vrrp_script caf\xe9 {\n    script /bin/true\n}\nfrobnicate 1\n");
    fs::write(&bad, &text).unwrap();
    let e = import_file(&bad).unwrap_err();
    let errs: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
    let name = bad.display().to_string();
    has(
        &errs,
        &format!("{name}:8: "),
        "byte 0xe9 (column 16) is not UTF-8",
    );
    has(&errs, &format!("{name}:11: "), "`frobnicate`");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn import_warns_once_per_virtual_server_not_per_group_member() {
    let c = import(&format!(
        "{VI}virtual_server_group G {{\n    10.4.0.100 80\n    10.4.0.100 81\n    \
         10.4.0.100 82\n}}\n\
         virtual_server group G {{\n    lb_kind DR\n    lb_algo rr\n    \
         nat_mask 255.255.255.0\n    \
         real_server 10.4.0.2 80 {{\n    }}\n}}\n"
    ));
    assert_eq!(c.config.virtual_server.len(), 3);
    let w = warnings(&c);
    assert_eq!(
        w.iter()
            .filter(|m| m.contains("`nat_mask` ignored"))
            .count(),
        1,
        "{w:#?}"
    );
}

#[test]
fn import_use_vmac_and_its_refused_relatives() {
    let vmac = |line: &str| {
        VI.replace(
            "    virtual_router_id 51\n",
            &format!("    virtual_router_id 51\n{line}"),
        )
    };
    let c = import(&vmac("    use_vmac\n    vmac_xmit_base\n"));
    assert_eq!(
        c.config.vrrp_instance[0].vmac_name().as_deref(),
        Some("vrrp.51")
    );
    assert!(c.config.vrrp_instance[0].vmac_xmit_base);
    let c = import(&vmac("    use_vmac vip51\n"));
    assert_eq!(
        c.config.vrrp_instance[0].vmac_name().as_deref(),
        Some("vip51")
    );
    let c = import(&vmac("    use_vmac name vip51\n"));
    assert_eq!(
        c.config.vrrp_instance[0].vmac_name().as_deref(),
        Some("vip51")
    );
    let errs = import_err(&vmac("    use_vmac vip51 mac 02:00:00:00:00:01\n"));
    has(
        &errs,
        "keepalived.conf:4: ",
        "`mac`, `group` and `netlink_notify_msg` options have no equivalent",
    );
    let errs = import_err(&vmac("    use_ipvlan\n"));
    has(
        &errs,
        "keepalived.conf:4: ",
        "xlb does not create ipvlan interfaces",
    );
    let errs = import_err(&vmac("    use_vmac_addr\n"));
    has(&errs, "keepalived.conf:4: ", "use_vmac_addr");
}
