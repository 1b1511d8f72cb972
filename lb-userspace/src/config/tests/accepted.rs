//! Files `Config::parse` accepts: the annotated sample, defaults, inheritance,
//! keepalived spellings, serialization.

use super::*;

#[test]
fn annotated_sample_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/xlb.toml");
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e:#}"));

    assert_eq!(cfg.global_defs.router_id.as_deref(), Some("LVS_01"));
    assert_eq!(cfg.global_defs.smtp_connect_timeout, 30.0);
    let chk = &cfg.vrrp_script["chk_nginx"];
    assert_eq!(
        (chk.interval, chk.weight, chk.fall, chk.rise),
        (2.0, -30, 2, 2)
    );

    let vi = &cfg.vrrp_instance[0];
    assert_eq!(vi.name, "VI_1");
    assert_eq!(vi.state, InitialState::Master);
    assert_eq!(
        (vi.virtual_router_id, vi.priority, vi.version),
        (51, 100, 2)
    );
    assert_eq!(vi.vips(), vec![ip("198.18.0.100"), ip("198.18.0.101")]);
    assert_eq!(vi.virtual_addresses()[1].label.as_deref(), Some("eth0:1"));
    assert_eq!(vi.tracked_scripts()[0].name, "chk_nginx");
    assert_eq!(vi.unicast_peer, vec![ip("198.18.0.12")]);

    assert_eq!(cfg.virtual_server.len(), 2);
    let web = &cfg.virtual_server[0];
    assert_eq!(web.service_name(), "198.18.0.100:80/TCP");
    assert_eq!((web.lb_algo, web.lb_kind), (LbAlgo::Wrr, LbKind::Dr));
    assert_eq!(web.delay_loop, 6.0);
    assert_eq!(web.resolved_interface(&cfg), Some("eth0"));
    assert_eq!(
        web.vrrp_instance(&cfg).map(|v| v.name.as_str()),
        Some("VI_1")
    );
    let rs = &web.real_server;
    assert_eq!(
        rs.iter().map(|r| r.weight).collect::<Vec<_>>(),
        vec![3, 1, 1]
    );
    let in_force = |r: &RealServerConfig| r.checker_defaults(web, &cfg.global_defs);
    let tcp = rs[0].tcp_check.as_ref().unwrap();
    let t = tcp.timing_in_force(&in_force(&rs[0]));
    assert_eq!(
        (tcp.connect_port, t.retry, t.connect_timeout),
        (Some(80), 3, 3.0)
    );
    // Inherited: delay_loop from the virtual server, warmup from delay_loop.
    assert_eq!((t.delay_loop, t.warmup), (6.0, 6.0));
    let http = rs[1].http_get.as_ref().unwrap();
    assert_eq!(http.url[0].path, "/health");
    assert!(http.url[0].status_code.contains(200) && !http.url[0].status_code.contains(204));
    let t = http.timing_in_force(&in_force(&rs[1]));
    assert_eq!((t.retry, t.delay_before_retry), (1, 3.0));
    let misc = rs[2].misc_check.as_ref().unwrap();
    assert_eq!(rs[2].port, 80, "port defaults to the virtual server's");
    let t = misc.timing_in_force(&in_force(&rs[2]));
    assert_eq!((t.retry, t.connect_timeout), (0, 5.0));

    let dns = &cfg.virtual_server[1];
    assert_eq!(dns.service_name(), "198.18.0.100:53/UDP");
    assert_eq!(dns.lb_algo, LbAlgo::Sh);
    assert!(dns.hash_port && dns.hash_fallback);
    assert!(
        dns.real_server
            .iter()
            .all(|r| r.port == 53 && r.weight == 1)
    );
}

/// The config shape of DESIGN.md, verbatim.
const DESIGN_SAMPLE: &str = r#"
[global_defs]
router_id = "LVS_01"
notification_email = ["ops@example.org"]
notification_email_from = "xlb@lb1.example.org"
smtp_server = "127.0.0.1:25"
smtp_connect_timeout = 30
vrrp_garp_master_delay = 5
vrrp_garp_master_repeat = 5

[vrrp_script.chk_nginx]
script = "/usr/bin/pgrep -x nginx"
interval = 2
weight = -30
fall = 2
rise = 2

[[vrrp_instance]]
name = "VI_1"
state = "MASTER"                 # initial state: MASTER | BACKUP
interface = "eth0"
virtual_router_id = 51
priority = 100
advert_int = 1                   # v3 allows 0.01 steps
version = 2
nopreempt = false
preempt_delay = 0
authentication = { auth_type = "PASS", auth_pass = "123123" }
virtual_ipaddress = ["198.18.0.100/24", "198.18.0.101/24 dev eth0 label eth0:1"]
unicast_src_ip = "198.18.0.11"   # optional: unicast adverts instead of multicast
unicast_peer = ["198.18.0.12"]
track_interface = ["eth1"]
track_script = ["chk_nginx"]
notify_master = "/etc/xlb/notify.sh master"
notify_backup = "/etc/xlb/notify.sh backup"
notify_fault = "/etc/xlb/notify.sh fault"

[[virtual_server]]
ip = "198.18.0.100"
port = 80                        # 0 = all ports (needs persistence_timeout)
protocol = "TCP"
lb_algo = "wrr"                  # rr | wrr | sh | mh | lc | wlc | ...
lb_kind = "DR"
delay_loop = 6
persistence_timeout = 0
# interface = "eth0"             # where XDP attaches; default: the interface of the
                                 # vrrp_instance that owns this VIP; required without VRRP

[[virtual_server.real_server]]
ip = "198.18.0.21"
port = 80
weight = 3
tcp_check = { connect_port = 80, connect_timeout = 3, retry = 3, delay_before_retry = 3 }

[[virtual_server.real_server]]
ip = "198.18.0.22"
port = 80
weight = 1
http_get = { url = [{ path = "/health", status_code = 200 }], connect_timeout = 3 }
"#;

#[test]
fn design_sample_parses() {
    let cfg = parse(DESIGN_SAMPLE);
    assert_eq!(cfg.virtual_server[0].real_server.len(), 2);
    assert_eq!(cfg.virtual_server[0].resolved_interface(&cfg), Some("eth0"));
    let vs = &cfg.virtual_server[0];
    let rs = &vs.real_server[0];
    let tcp = rs.tcp_check.as_ref().unwrap();
    let tcp = tcp.timing_in_force(&rs.checker_defaults(vs, &cfg.global_defs));
    assert_eq!((tcp.retry, tcp.delay_before_retry), (3, 3.0));
}

#[test]
fn empty_file_is_the_default_config() {
    assert_eq!(parse(""), Config::default());
    assert_eq!(
        parse("").global_defs.vrrp_mcast_group4.to_string(),
        "224.0.0.18"
    );
}

#[test]
fn keepalived_defaults_apply() {
    let cfg = parse(&format!(
        "{VS}[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n"
    ));
    let vs = &cfg.virtual_server[0];
    assert_eq!(vs.protocol, Protocol::Tcp);
    assert_eq!(vs.lb_algo, LbAlgo::Wrr);
    assert_eq!(vs.lb_kind, LbKind::Dr);
    assert_eq!(vs.delay_loop, 60.0);
    assert_eq!(vs.persistence_timeout, 0);
    assert_eq!(vs.quorum, 1);
    assert!(!vs.hash_port && !vs.hash_fallback && !vs.inhibit_on_failure);
    let rs = &vs.real_server[0];
    assert_eq!((rs.port, rs.weight, rs.inhibit_on_failure), (80, 1, false));
    assert!(!rs.has_checker());
    assert_eq!(vs.resolved_interface(&cfg), Some("eth0"));

    let cfg = parse(VI);
    let vi = &cfg.vrrp_instance[0];
    assert_eq!(vi.state, InitialState::Backup);
    assert_eq!((vi.priority, vi.advert_int, vi.version), (100, 1.0, 2));
    assert_eq!(vi.down_timer_adverts, 3);
    assert!(vi.authentication.is_none() && vi.unicast_peer.is_empty());
}

#[test]
fn empty_real_server_list_is_allowed() {
    let cfg = parse(VS);
    assert!(cfg.virtual_server[0].real_server.is_empty());
}

#[test]
fn interface_comes_from_the_vrrp_instance_owning_the_vip() {
    let text = format!(
        "{VI}virtual_ipaddress_excluded = [\"198.18.1.1 dev eth2\"]\n\
         [[virtual_server]]\nip = \"198.18.0.100\"\nport = 443\n\
         [[virtual_server]]\nip = \"198.18.1.1\"\nport = 443\n\
         [[virtual_server]]\nip = \"198.18.1.1\"\nport = 80\ninterface = \"eth9\"\n"
    );
    let cfg = parse(&text);
    let ifs: Vec<_> = cfg
        .virtual_server
        .iter()
        .map(|vs| vs.resolved_interface(&cfg))
        .collect();
    assert_eq!(ifs, vec![Some("eth0"), Some("eth2"), Some("eth9")]);
}

#[test]
fn durations_take_integers_and_decimals() {
    let text = format!(
        "{VI}version = 3\nadvert_int = 0.25\npreempt_delay = 1.5\n\
         [[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\ndelay_loop = 2.5\n\
         warmup = 0\n[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
         tcp_check = {{ connect_timeout = 0.5 }}\n"
    );
    let cfg = parse(&text);
    assert_eq!(cfg.vrrp_instance[0].advert_int, 0.25);
    assert_eq!(cfg.vrrp_instance[0].preempt_delay, 1.5);
    let vs = &cfg.virtual_server[0];
    let rs = &vs.real_server[0];
    let tcp = rs.tcp_check.as_ref().unwrap();
    let tcp = tcp.timing_in_force(&rs.checker_defaults(vs, &cfg.global_defs));
    assert_eq!(
        (tcp.connect_timeout, tcp.delay_loop, tcp.warmup),
        (0.5, 2.5, 0.0)
    );
}

#[test]
fn ipv6_instances_run_vrrpv3() {
    let text = "\
[[vrrp_instance]]
name = \"VI_6\"
interface = \"eth0\"
virtual_router_id = 60
virtual_ipaddress = [\"2001:db8::100/64\"]
[[virtual_server]]
ip = \"2001:db8::100\"
port = 80
[[virtual_server.real_server]]
ip = \"2001:db8::21\"
";
    let cfg = parse(text);
    assert_eq!(cfg.vrrp_instance[0].version, 3);
    assert_eq!(
        cfg.virtual_server[0].service_name(),
        "[2001:db8::100]:80/TCP"
    );
    assert_eq!(cfg.virtual_server[0].resolved_interface(&cfg), Some("eth0"));
}

#[test]
fn global_vrrp_version_is_the_instance_default() {
    let cfg = parse(&format!("[global_defs]\nvrrp_version = 3\n{VI}"));
    assert_eq!(cfg.vrrp_instance[0].version, 3);
}

#[test]
fn checker_options_inherit_like_keepalived() {
    let text = format!(
        "{VS}retry = 4\ndelay_before_retry = 2\nconnect_timeout = 7\ninhibit_on_failure = true\n\
         virtualhost = \"www.example.org\"\n\
         [[virtual_server.real_server]]\nip = \"198.18.0.21\"\ndelay_loop = 9\n\
         tcp_check = {{ nb_get_retry = 1 }}\n\
         http_get = {{ url = [{{ path = \"/\" }}] }}\n\
         [[virtual_server.real_server]]\nip = \"198.18.0.22\"\ninhibit_on_failure = false\n\
         misc_check = {{ misc_path = \"/bin/true\" }}\n"
    );
    let cfg = parse(&text);
    let vs = &cfg.virtual_server[0];
    let rs = &vs.real_server;
    let in_force = |r: &RealServerConfig| r.checker_defaults(vs, &cfg.global_defs);
    let tcp = rs[0]
        .tcp_check
        .as_ref()
        .unwrap()
        .timing_in_force(&in_force(&rs[0]));
    // Set on the checker (under keepalived's old name): kept.
    assert_eq!(tcp.retry, 1);
    // Set on the virtual server only: inherited.
    assert_eq!((tcp.delay_before_retry, tcp.connect_timeout), (2.0, 7.0));
    // Set on the real server: inherited, and warmup follows it.
    assert_eq!((tcp.delay_loop, tcp.warmup), (9.0, 9.0));
    let http = rs[0].http_get.as_ref().unwrap();
    let t = http.timing_in_force(&in_force(&rs[0]));
    assert_eq!((t.retry, t.delay_before_retry), (4, 2.0));
    assert_eq!(http.virtualhost.as_deref(), Some("www.example.org"));
    assert!(
        rs[0].inhibit_on_failure,
        "inherited from the virtual server"
    );
    assert!(!rs[1].inhibit_on_failure, "overridden on the real server");
    let misc = rs[1].misc_check.as_ref().unwrap();
    let misc = misc.timing_in_force(&in_force(&rs[1]));
    assert_eq!(
        (misc.retry, misc.delay_loop, misc.connect_timeout),
        (4, 60.0, 60.0)
    );
}

#[test]
fn keepalived_spellings_are_accepted() {
    let text = "\
[[virtual_server]]
ip = \"198.18.0.100\"
port = 80
interface = \"eth0\"
lvs_sched = \"mh\"
lvs_method = \"DR\"
mh-port = true
mh-fallback = true
protocol = \"tcp\"
";
    let vs = &parse(text).virtual_server[0];
    assert_eq!(
        (vs.lb_algo, vs.lb_kind, vs.protocol),
        (LbAlgo::Mh, LbKind::Dr, Protocol::Tcp)
    );
    assert!(vs.hash_port && vs.hash_fallback);
}

#[test]
fn status_codes_take_keepalived_ranges() {
    let text = format!(
        "{VS}[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
         http_get = {{ url = [{{ path = \"/a\", status_code = \"200-299 503\" }}, \
         {{ path = \"/b\", status_code = [204, \"300-302\"] }}, {{ path = \"/c\" }}] }}\n"
    );
    let cfg = parse(&text);
    let url = &cfg.virtual_server[0].real_server[0]
        .http_get
        .as_ref()
        .unwrap()
        .url;
    assert!(url[0].status_code.contains(250) && url[0].status_code.contains(503));
    assert!(!url[0].status_code.contains(502));
    assert_eq!(url[1].status_code.to_string(), "204 300-302");
    assert_eq!(url[2].status_code, StatusCodes::default());
}

#[test]
fn virtual_ipaddress_syntax() {
    let v: VirtualIpAddress =
        "198.18.0.101/24 brd 198.18.0.255 dev eth0 scope global label eth0:1 no_track"
            .parse()
            .unwrap();
    assert_eq!(v.addr, ip("198.18.0.101"));
    assert_eq!(v.prefix_len, 24);
    assert_eq!(v.dev.as_deref(), Some("eth0"));
    assert!(v.no_track);
    assert_eq!(
        v.to_string(),
        "198.18.0.101/24 brd 198.18.0.255 dev eth0 scope global label eth0:1 no_track"
    );
    let v: VirtualIpAddress = "2001:db8::1".parse().unwrap();
    assert_eq!(v.prefix_len, 128);
    assert!("198.18.0.1/33".parse::<VirtualIpAddress>().is_err());
    assert!(
        "198.18.0.1 peer 198.18.0.2"
            .parse::<VirtualIpAddress>()
            .is_err()
    );
    assert!("198.18.0.1 dev".parse::<VirtualIpAddress>().is_err());

    let t: TrackEntry = "chk weight -20 reverse".parse().unwrap();
    assert_eq!(
        (t.name.as_str(), t.weight, t.reverse),
        ("chk", Some(-20), true)
    );
    assert!("chk weight 300".parse::<TrackEntry>().is_err());
}

#[test]
fn serializes_back_to_an_equivalent_file() {
    // What `xlb import-keepalived` relies on: a Config written as TOML reads back equal.
    let cfg = parse(include_str!("../../../examples/xlb.toml"));
    let text = toml::to_string(&cfg).unwrap();
    assert_eq!(parse(&text), cfg, "{text}");
}

#[test]
fn alternate_display_shows_the_line() {
    let e = Config::parse(&format!("{VS}persistence_timeout = -1\n"), "t.toml").unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        "t.toml:5:23: virtual_server[0].persistence_timeout: -1 is out of range (0..=4294967295)\n  \
         |\n5 | persistence_timeout = -1\n  |                       ^^"
    );
}

#[test]
fn nat_real_and_sorry_servers_may_use_other_ports() {
    let cfg = parse(&format!(
        "{VS}lb_kind = \"NAT\"\nsorry_server = {{ ip = \"198.18.0.30\", port = 8081 }}\n\
         [[virtual_server.real_server]]\nip = \"198.18.0.21\"\nport = 8080\n\
         [[virtual_server.real_server]]\nip = \"198.18.0.22\"\n"
    ));
    let vs = &cfg.virtual_server[0];
    assert_eq!(vs.lb_kind, LbKind::Nat);
    assert_eq!(vs.real_server[0].port, 8080);
    assert_eq!(vs.real_server[1].port, 80, "default: the virtual port");
    assert_eq!(vs.sorry_server.as_ref().unwrap().port, Some(8081));
    // `lvs_method`, any case.
    let cfg = parse(&format!("{VS}lvs_method = \"nat\"\n"));
    assert_eq!(cfg.virtual_server[0].lb_kind, LbKind::Nat);
}

#[test]
fn track_reference_defaults_and_values() {
    let cfg = parse(&format!(
        "{VI}track_reference = {{ addresses = [\"198.18.0.254\", \"2001:db8::fe\"] }}\n"
    ));
    let r = cfg.vrrp_instance[0].track_reference.clone().unwrap();
    assert_eq!(r.addresses, [ip("198.18.0.254"), ip("2001:db8::fe")]);
    assert_eq!((r.interval, r.timeout, r.fall, r.rise), (1.0, None, 3, 2));
    let cfg = parse(&format!(
        "{VI}[vrrp_instance.track_reference]\naddresses = [\"198.18.0.254\"]\n\
         interval = 0.2\ntimeout = 0.5\nfall = 5\nrise = 1\n"
    ));
    let r = cfg.vrrp_instance[0].track_reference.clone().unwrap();
    assert_eq!(
        (r.interval, r.timeout, r.fall, r.rise),
        (0.2, Some(0.5), 5, 1)
    );
    assert!(parse(VI).vrrp_instance[0].track_reference.is_none());
}

#[test]
fn heartbeat_path() {
    let cfg = parse(&format!(
        "{VI}heartbeat = {{ interface = \"hb0\", unicast_src_ip = \"198.19.0.1\", unicast_peer = [\"198.19.0.2\"] }}\n"
    ));
    let h = cfg.vrrp_instance[0].heartbeat.clone().unwrap();
    assert_eq!(h.interface, "hb0");
    assert_eq!(h.unicast_src_ip, ip("198.19.0.1"));
    assert_eq!(h.unicast_peer, [ip("198.19.0.2")]);
}
