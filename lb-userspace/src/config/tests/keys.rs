//! keepalived keys xlb once accepted and ignored: each now does what it says, or is
//! refused where it is written.

use super::*;

#[test]
fn down_timer_adverts_defaults_to_the_global_one() {
    let cfg = parse(&format!(
        "[global_defs]\nvrrp_down_timer_adverts = 5\n{VI}\n{}",
        VI.replace("VI_1", "VI_2")
            .replace("51", "52")
            .replace("198.18.0.100", "198.18.0.101")
            + "down_timer_adverts = 2\n"
    ));
    assert_eq!(cfg.vrrp_instance[0].down_timer_adverts, 5);
    assert_eq!(cfg.vrrp_instance[1].down_timer_adverts, 2);
    assert_eq!(parse(VI).vrrp_instance[0].down_timer_adverts, 3);
    assert_err(
        "[global_defs]\nvrrp_down_timer_adverts = 0\n",
        "2:27: global_defs.vrrp_down_timer_adverts",
        "0 is out of range (1..=100)",
    );
}

#[test]
fn vrrp_strict_refuses_another_down_timer_and_needs_accept_written() {
    let strict = "[global_defs]\nvrrp_strict = true\n";
    // Lines 3 to 7 are VI, line 8 the instance's extra key.
    assert_err(
        &format!("{strict}{VI}accept = true\ndown_timer_adverts = 4\n"),
        "9:22: vrrp_instance[0].down_timer_adverts",
        "global_defs.vrrp_strict requires the RFCs' 3 missed adverts; 4 deviates",
    );
    assert_err(
        &format!("{strict}vrrp_down_timer_adverts = 4\n{VI}accept = true\n"),
        "3:27: global_defs.vrrp_down_timer_adverts",
        "requires the RFCs' 3 missed adverts",
    );
    assert_err(
        &format!("{strict}{VI}"),
        "3:1: vrrp_instance[0]",
        "global_defs.vrrp_strict turns accept mode off for vrrp_instance \"VI_1\"",
    );
    parse(&format!("{strict}{VI}accept = true\n"));
    // The address owner accepts in keepalived's strict mode too.
    parse(&format!("{strict}{VI}priority = 255\n"));
}

#[test]
fn no_accept_is_refused() {
    assert_err(
        &format!("{VI}accept = false\n"),
        "6:10: vrrp_instance[0].accept",
        "accept = false (keepalived's no_accept) is not supported",
    );
    parse(&format!("{VI}accept = true\n"));
}

#[test]
fn garp_and_gna_intervals_other_than_zero_are_refused() {
    assert_err(
        "[global_defs]\nvrrp_garp_interval = 0.001\n",
        "2:22: global_defs.vrrp_garp_interval",
        "vrrp_garp_interval = 0.001 is not supported: xlb sends the gratuitous ARPs of a \
         burst back to back",
    );
    assert_err(
        "[global_defs]\nvrrp_gna_interval = 1\n",
        "2:21: global_defs.vrrp_gna_interval",
        "unsolicited neighbour adverts",
    );
    parse("[global_defs]\nvrrp_garp_interval = 0\nvrrp_gna_interval = 0\n");
}

#[test]
fn check_unicast_src_needs_unicast_peers() {
    assert_err(
        &format!("{VI}check_unicast_src = true\n"),
        "6:21: vrrp_instance[0].check_unicast_src",
        "has no unicast_peer",
    );
    let cfg = parse(&format!(
        "{VI}check_unicast_src = true\nunicast_peer = [\"198.18.0.2\"]\n"
    ));
    assert!(cfg.vrrp_instance[0].check_unicast_src);
    // The global switch applies to unicast instances and leaves multicast ones alone.
    let cfg = parse(&format!(
        "[global_defs]\nvrrp_check_unicast_src = true\n{VI}"
    ));
    assert!(cfg.vrrp_instance[0].check_unicast_src);
}

#[test]
fn skip_check_adv_addr_defaults_to_the_global_one() {
    let cfg = parse(&format!(
        "[global_defs]\nvrrp_skip_check_adv_addr = true\n{VI}"
    ));
    assert!(cfg.vrrp_instance[0].skip_check_adv_addr);
    let cfg = parse(&format!(
        "[global_defs]\nvrrp_skip_check_adv_addr = true\n{VI}skip_check_adv_addr = false\n"
    ));
    assert!(!cfg.vrrp_instance[0].skip_check_adv_addr);
}

#[test]
fn one_packet_scheduling_and_sorry_server_inhibit_are_refused() {
    assert_err(
        &format!("{VS}protocol = \"UDP\"\nops = true\n"),
        "6:7: virtual_server[0].ops",
        "ops (one-packet scheduling) is not supported",
    );
    assert_err(
        &format!("{VS}sorry_server = {{ ip = \"198.18.0.30\" }}\nsorry_server_inhibit = true\n"),
        "6:24: virtual_server[0].sorry_server_inhibit",
        "sorry_server_inhibit is not supported",
    );
}

#[test]
fn an_ipv4_mapped_vip_is_refused_naming_the_service_it_shadows() {
    let v6 = "[[virtual_server]]\nip = \"::ffff:198.18.0.100\"\nport = 80\ninterface = \"eth0\"\n";
    assert_err(
        &format!("{VS}{v6}"),
        "6:6: virtual_server[1].ip",
        "::ffff:198.18.0.100 is an IPv4-mapped IPv6 address: the data plane keys IPv4 \
         services by that form, so it would be the IPv4 service 198.18.0.100 and shadow \
         virtual_server[0] (198.18.0.100:80/TCP); write ip = \"198.18.0.100\"",
    );
    assert_err(
        v6,
        "2:6: virtual_server[0].ip",
        "so it would be the IPv4 service 198.18.0.100; write",
    );
}

#[test]
fn metrics_listen_is_off_by_default_and_takes_ip_port() {
    assert_eq!(parse("").global_defs.metrics_listen, None);
    let g = parse("[global_defs]\nmetrics_listen = \"127.0.0.1:9471\"\n").global_defs;
    assert_eq!(g.metrics_listen, Some("127.0.0.1:9471".parse().unwrap()));
    let g = parse("[global_defs]\nmetrics_listen = \"[::1]:9471\"\n").global_defs;
    assert_eq!(g.metrics_listen, Some("[::1]:9471".parse().unwrap()));
    assert_err(
        "[global_defs]\nmetrics_listen = \"127.0.0.1\"\n",
        "2:18: global_defs.metrics_listen",
        "is not an address to listen on: expected \"IP:PORT\"",
    );
    assert_err(
        "[global_defs]\nmetrics_listen = 9471\n",
        "2:18: global_defs.metrics_listen",
        "invalid type",
    );
}
