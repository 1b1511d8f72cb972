//! The usual variants: master/master, unicast, scripts and notify, every checker kind,
//! one-line blocks, comments, long lists, lvs_timeouts; and the round trip of them all.

use super::seed::{SEED_BACKUP, SEED_LVS_01, SEED_MASTER};
use super::*;

/// Director 1 of a master/master pair: MASTER of VI_1, BACKUP of VI_2; director 2 is
/// the same file with the states and priorities swapped.
const MASTER_MASTER: &str = "\
! Configuration File for keepalived
global_defs {
   router_id LVS_01
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.168.200.16/24
    }
}
vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 90
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 2222
    }
    virtual_ipaddress {
        192.168.200.17/24
    }
}
virtual_server 192.168.200.16 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 192.168.200.2 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
virtual_server 192.168.200.17 80 {
    delay_loop 6
    lb_algo sh
    lb_kind DR
    protocol TCP
    real_server 192.168.200.3 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
";

#[test]
fn import_master_master_pair() {
    let c = import(MASTER_MASTER);
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    let vis = &c.config.vrrp_instance;
    assert_eq!(
        vis.iter()
            .map(|v| (v.name.as_str(), v.state, v.virtual_router_id, v.priority))
            .collect::<Vec<_>>(),
        [
            ("VI_1", InitialState::Master, 51, 100),
            ("VI_2", InitialState::Backup, 52, 90)
        ]
    );
    let vs = &c.config.virtual_server;
    assert_eq!(vs[0].vrrp_instance(&c.config).unwrap().name, "VI_1");
    assert_eq!(vs[1].vrrp_instance(&c.config).unwrap().name, "VI_2");
    assert_eq!((vs[0].lb_algo, vs[1].lb_algo), (LbAlgo::Wrr, LbAlgo::Sh));
    assert_eq!(vs[0].real_server[0].weight, 3);
    round_trip(&c);

    let other = MASTER_MASTER
        .replacen("state MASTER", "state X", 1)
        .replacen("state BACKUP", "state MASTER", 1)
        .replacen("state X", "state BACKUP", 1)
        .replacen("priority 100", "priority 90", 1)
        .replacen("priority 90\n    advert_int 1\n    authentication {\n        auth_type PASS\n        auth_pass 2222", "priority 100\n    advert_int 1\n    authentication {\n        auth_type PASS\n        auth_pass 2222", 1);
    let d = import(&other);
    let vis = &d.config.vrrp_instance;
    assert_eq!(
        vis.iter()
            .map(|v| (v.state, v.priority))
            .collect::<Vec<_>>(),
        [(InitialState::Backup, 90), (InitialState::Master, 100)]
    );
}

#[test]
fn import_unicast_and_multicast_group() {
    let c = import(
        "\
global_defs {
    router_id LVS_02
    vrrp_mcast_group4 234.6.6.6
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 66
    priority 80
    advert_int 1
    nopreempt
    preempt_delay 300
    unicast_src_ip 10.0.0.12
    unicast_peer {
        10.0.0.11
        10.0.0.13 min_ttl 255
    }
    virtual_ipaddress {
        10.0.0.100/24 dev eth0 label eth0:1
    }
}
",
    );
    let g = &c.config.global_defs;
    assert_eq!(g.vrrp_mcast_group4.to_string(), "234.6.6.6");
    let vi = &c.config.vrrp_instance[0];
    assert_eq!(vi.unicast_src_ip, Some(ip("10.0.0.12")));
    assert_eq!(vi.unicast_peer, [ip("10.0.0.11"), ip("10.0.0.13")]);
    assert!(vi.nopreempt);
    assert_eq!(vi.preempt_delay, 300.0);
    has(&warnings(&c), "keepalived.conf:16: ", "min_ttl 255");
    round_trip(&c);
}

/// The seed's VRRP Script section: a script tracking nginx, notify scripts, delayed
/// preemption.
#[test]
fn import_vrrp_script_and_notify() {
    let c = import(
        r#"
vrrp_script chk_nginx {
    script "/usr/bin/killall -0 nginx"
    interval 2
    timeout 3
    weight -20
    fall 2
    rise 1
    user nobody nogroup
    init_fail
}
vrrp_script chk_haproxy {
    script "/etc/keepalived/chk_haproxy.sh"
    weight 10 reverse
}
vrrp_instance VI_1 {
    state MASTER
    interface ens33
    virtual_router_id 10
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.168.44.188
    }
    track_script {
        chk_nginx
        chk_haproxy weight 5
    }
    track_interface {
        eth1 weight -10
    }
    notify_master "/opt/keepalive.sh master"
    notify_backup "/opt/keepalive.sh backup"
    notify_fault "/opt/keepalive.sh fault"
    notify_stop /opt/stop.sh
    notify "/opt/notify.sh"
    smtp_alert
}
"#,
    );
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    let s = &c.config.vrrp_script["chk_nginx"];
    assert_eq!(s.script, "/usr/bin/killall -0 nginx");
    assert_eq!((s.interval, s.timeout, s.weight), (2.0, Some(3.0), -20));
    assert_eq!((s.fall, s.rise), (2, 1));
    assert_eq!(s.user.as_deref(), Some("nobody nogroup"));
    assert!(s.init_fail && !s.reverse);
    let h = &c.config.vrrp_script["chk_haproxy"];
    assert_eq!((h.weight, h.reverse), (10, true));
    let vi = &c.config.vrrp_instance[0];
    assert_eq!(vi.track_script, ["chk_nginx", "chk_haproxy weight 5"]);
    assert_eq!(vi.tracked_scripts()[1].weight, Some(5));
    assert_eq!(vi.track_interface, ["eth1 weight -10"]);
    assert_eq!(
        vi.notify_master.as_deref(),
        Some("/opt/keepalive.sh master")
    );
    assert_eq!(
        vi.notify_backup.as_deref(),
        Some("/opt/keepalive.sh backup")
    );
    assert_eq!(vi.notify_fault.as_deref(), Some("/opt/keepalive.sh fault"));
    assert_eq!(vi.notify_stop.as_deref(), Some("/opt/stop.sh"));
    assert_eq!(vi.notify.as_deref(), Some("/opt/notify.sh"));
    assert_eq!(vi.smtp_alert, Some(true));
    round_trip(&c);
}

#[test]
fn import_script_pitfalls() {
    // keepalived 2 runs only the first word of an unquoted script: converted whole,
    // with a warning.
    let c = import("vrrp_script chk {\n script killall -0 nginx\n}\n");
    assert_eq!(c.config.vrrp_script["chk"].script, "killall -0 nginx");
    has(
        &warnings(&c),
        "keepalived.conf:2: ",
        "keepalived 2 runs only \"killall\"",
    );
    // For notify scripts keepalived reads the next words as the user (and group) to
    // run as: xlb's notify_*_user.
    let c = import(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n notify_master /opt/x.sh master\n \
         notify \"/opt/n.sh\" nobody nogroup\n}\n",
    );
    let vi = &c.config.vrrp_instance[0];
    assert_eq!(vi.notify_master.as_deref(), Some("/opt/x.sh"));
    assert_eq!(vi.notify_master_user.as_deref(), Some("master"));
    assert_eq!(vi.notify_user.as_deref(), Some("nobody nogroup"));
    round_trip(&c);
    // A real server's notify_up has no user in xlb: still refused, naming the user.
    let errs = import_err(
        "virtual_server 10.4.0.100 80 {\n lb_kind DR\n lb_algo rr\n real_server 10.4.0.2 80 {\n  \
         notify_up /opt/up.sh master\n }\n}\n",
    );
    has(&errs, "keepalived.conf:5: ", "as user/group \"master\"");
}

/// A DR service with every checker kind the seed mentions, a sorry server, quorum and
/// the other virtual server options.
const DR_CHECKS: &str = r#"
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.100/24
    }
}
virtual_server 198.18.0.100 80 {
    delay_loop 10
    lvs_sched wrr
    lvs_method DR
    protocol TCP
    persistence_timeout 300
    persistence_granularity 255.255.255.255
    quorum 2
    hysteresis 1
    quorum_up "/etc/keepalived/up.sh"
    quorum_down "/etc/keepalived/down.sh"
    sorry_server 198.18.0.250 80
    inhibit_on_failure
    alpha
    omega
    ha_suspend
    virtualhost www.example.org
    real_server 198.18.0.21 80 {
        weight 3
        notify_up "/etc/keepalived/rs.sh up"
        notify_down "/etc/keepalived/rs.sh down"
        TCP_CHECK {
            connect_port 80
            connect_timeout 3
            retry 3
            delay_before_retry 3
        }
        HTTP_GET {
            url {
                path /health
                digest 9b3a0c85a887a256d6939da88aabd8cd
                status_code 200
            }
            url { path /ready status_code 200-299 503 }
            connect_timeout 3
            nb_get_retry 2
            delay_before_retry 1
        }
    }
    real_server 198.18.0.22 80 {
        weight 1
        SSL_GET {
            url {
                path /
            }
            enable_sni
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check.sh 198.18.0.22"
            misc_timeout 5
            misc_dynamic
            user nobody
        }
    }
    real_server 198.18.0.23 80 {
        PING_CHECK {
            retry 2
        }
        SMTP_CHECK {
            connect_port 25
            helo_name lb1.example.org
        }
    }
}
virtual_server 198.18.0.100 53 {
    protocol UDP
    lb_algo mh
    mh-port
    lb_kind DR
    real_server 198.18.0.31 53 {
        DNS_CHECK {
            type A
            name www.example.org
        }
        UDP_CHECK {
            payload 00ff
            require_reply
        }
    }
}
"#;

#[test]
fn import_dr_virtual_server_with_checkers() {
    let c = import(DR_CHECKS);
    // The one-line `url { ... }` reads differently in keepalived: said so.
    let w = warnings(&c);
    assert_eq!(w.len(), 1, "{w:#?}");
    has(&w, "keepalived.conf:42: ", "several keywords on one line");
    let vs = &c.config.virtual_server[0];
    assert_eq!(vs.lb_algo, LbAlgo::Wrr);
    assert_eq!((vs.delay_loop, vs.persistence_timeout), (10.0, 300));
    assert_eq!((vs.quorum, vs.hysteresis), (2, 1));
    assert_eq!(vs.quorum_up.as_deref(), Some("/etc/keepalived/up.sh"));
    assert_eq!(vs.quorum_down.as_deref(), Some("/etc/keepalived/down.sh"));
    let sorry = vs.sorry_server.as_ref().unwrap();
    assert_eq!((sorry.ip, sorry.port), (ip("198.18.0.250"), Some(80)));
    assert!(vs.inhibit_on_failure && vs.alpha && vs.omega && vs.ha_suspend);
    assert_eq!(vs.virtualhost.as_deref(), Some("www.example.org"));

    let rs = &vs.real_server[0];
    assert_eq!(rs.weight, 3);
    assert_eq!(rs.notify_up.as_deref(), Some("/etc/keepalived/rs.sh up"));
    assert!(rs.inhibit_on_failure, "inherited from the virtual server");
    let in_force = |r: &RealServerConfig| r.checker_defaults(vs, &c.config.global_defs);
    let tcp = rs.tcp_check.as_ref().unwrap();
    let t = tcp.timing_in_force(&in_force(rs));
    assert_eq!(
        (tcp.connect_port, t.retry, t.delay_loop),
        (Some(80), 3, 10.0)
    );
    let http = rs.http_get.as_ref().unwrap();
    let t = http.timing_in_force(&in_force(rs));
    assert_eq!(
        (t.connect_timeout, t.retry, t.delay_before_retry),
        (3.0, 2, 1.0)
    );
    assert_eq!(http.url.len(), 2);
    assert_eq!(http.url[0].path, "/health");
    assert_eq!(
        http.url[0].digest.as_deref(),
        Some("9b3a0c85a887a256d6939da88aabd8cd")
    );
    assert!(http.url[0].status_code.contains(200) && !http.url[0].status_code.contains(204));
    assert_eq!(http.url[1].status_code.to_string(), "200-299 503");
    assert_eq!(http.virtualhost.as_deref(), Some("www.example.org"));

    let rs = &vs.real_server[1];
    let ssl = rs.ssl_get.as_ref().unwrap();
    assert!(ssl.enable_sni);
    assert_eq!(ssl.url[0].path, "/");
    let misc = rs.misc_check.as_ref().unwrap();
    assert_eq!(misc.misc_path, "/usr/local/bin/check.sh 198.18.0.22");
    assert_eq!(misc.misc_timeout, Some(5.0));
    assert!(misc.misc_dynamic);
    assert_eq!(misc.user.as_deref(), Some("nobody"));

    let rs = &vs.real_server[2];
    assert_eq!(rs.port, 80, "port inherited from the virtual server");
    assert_eq!(rs.ping_check.as_ref().unwrap().retry, Some(2));
    let smtp = rs.smtp_check.as_ref().unwrap();
    assert_eq!(
        (smtp.connect_port, smtp.helo_name.as_deref()),
        (Some(25), Some("lb1.example.org"))
    );

    let dns_vs = &c.config.virtual_server[1];
    assert_eq!(
        (dns_vs.protocol, dns_vs.lb_algo),
        (Protocol::Udp, LbAlgo::Mh)
    );
    assert!(dns_vs.hash_port);
    let rs = &dns_vs.real_server[0];
    let dns = rs.dns_check.as_ref().unwrap();
    assert_eq!(
        (dns.query_type.as_str(), dns.name.as_str()),
        ("A", "www.example.org")
    );
    let udp = rs.udp_check.as_ref().unwrap();
    assert_eq!(udp.payload.as_ref().unwrap().0, [0x00, 0xff]);
    assert!(udp.require_reply.is_required());
    round_trip(&c);
}

#[test]
fn import_one_line_blocks_and_braces() {
    // Braces glued to keywords, blocks on one line, `{` on its own line, several
    // keywords of a one-line block (keepalived reads one per line: a warning).
    let c = import(
        "\
vrrp_instance VI_1
{
    interface eth0
    virtual_router_id 51
    authentication { auth_type PASS auth_pass secret }
    virtual_ipaddress { 10.1.1.1/24 dev eth0 label eth0:1 }
    track_script { chk weight -20 }
}
vrrp_script chk{
    script \"/bin/true\"
}
virtual_server 10.1.1.1 443 { lb_algo rr
    lb_kind DR
    real_server 10.1.1.2 443 { weight 2 SSL_GET { url { path /healthz status_code 204 } } }
}
",
    );
    let vi = &c.config.vrrp_instance[0];
    assert_eq!(vi.authentication.as_ref().unwrap().auth_pass, "secret");
    assert_eq!(vi.virtual_ipaddress, ["10.1.1.1/24 dev eth0 label eth0:1"]);
    assert_eq!(vi.track_script, ["chk weight -20"]);
    let rs = &c.config.virtual_server[0].real_server[0];
    assert_eq!(rs.weight, 2);
    let url = &rs.ssl_get.as_ref().unwrap().url[0];
    assert_eq!(
        (url.path.as_str(), url.status_code.to_string()),
        ("/healthz", "204".into())
    );
    let w = warnings(&c);
    has(&w, "keepalived.conf:5: ", "several keywords on one line");
    has(&w, "keepalived.conf:14: ", "several keywords on one line");
    round_trip(&c);
}

#[test]
fn import_comments_and_definitions() {
    let c = import(
        "\
! keepalived.conf with every kind of comment
# a hash comment
$VIP=10.2.0.10
$IF = eth3
global_defs { ! bang after a brace
    router_id \"LB #1\"   # the quoted hash stays
    notification_email_from ops\\#lb@example.org
}
vrrp_instance VI_1 {
    interface $IF
    virtual_router_id 7 !comment
    virtual_ipaddress {
        ${VIP}/24
    }
}
",
    );
    let g = &c.config.global_defs;
    assert_eq!(g.router_id.as_deref(), Some("LB #1"));
    assert_eq!(
        g.notification_email_from.as_deref(),
        Some("ops#lb@example.org")
    );
    let vi = &c.config.vrrp_instance[0];
    assert_eq!((vi.interface.as_str(), vi.virtual_router_id), ("eth3", 7));
    assert_eq!(vi.virtual_ipaddress, ["10.2.0.10/24"]);
    round_trip(&c);
}

#[test]
fn import_round_trip_is_stable() {
    // import -> Config -> TOML -> Config: equal, for every fixture above.
    for text in [
        SEED_MASTER,
        SEED_LVS_01,
        SEED_BACKUP,
        MASTER_MASTER,
        DR_CHECKS,
    ] {
        let c = import(text);
        round_trip(&c);
        // And the converted file, imported into a Config, serializes to the same thing.
        let a = toml::to_string(&c.config).unwrap();
        let b = toml::to_string(&Config::parse(&c.toml, "x.toml").unwrap()).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn import_long_lists_preempt_and_granularity() {
    let mails: Vec<String> = (0..8).map(|i| format!("ops{i}@example.org")).collect();
    let c = import(&format!(
        "global_defs {{\n notification_email {{\n  {}\n }}\n}}\n{}",
        mails.join("\n  "),
        VI.replace(
            "interface eth0",
            "interface eth0\n    nopreempt\n    preempt\n    v3_checksum_as_v2"
        )
    ));
    assert_eq!(c.config.global_defs.notification_email, mails);
    assert!(
        c.toml
            .contains("notification_email = [\n    \"ops0@example.org\",\n"),
        "{}",
        c.toml
    );
    let vi = &c.config.vrrp_instance[0];
    assert!(!vi.nopreempt, "the later `preempt` wins");
    assert!(vi.v3_checksum_as_v2);
    has(
        &warnings(&c),
        "keepalived.conf:16: ",
        "overrides the value set at keepalived.conf:15",
    );
    round_trip(&c);

    let errs = import_err(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n lb_algo rr\n lb_kind DR\n persistence_timeout\n \
         persistence_granularity 255.255.255.0\n}}\n"
    ));
    has(
        &errs,
        "keepalived.conf:12: ",
        "persistence_granularity 255.255.255.0 is not supported",
    );
    let c = import(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n lb_algo rr\n lb_kind DR\n persistence_timeout\n}}\n"
    ));
    assert_eq!(
        c.config.virtual_server[0].persistence_timeout, 360,
        "keepalived's bare keyword"
    );
}

#[test]
fn import_lvs_timeouts() {
    let c = import("global_defs {\n  lvs_timeouts tcp 7200 udp 60\n}\n");
    let t = c.config.global_defs.lvs_timeouts;
    assert_eq!((t.tcp, t.tcpfin, t.udp), (7200.0, 120.0, 60.0));
    round_trip(&c);
    let e = import_err("global_defs {\n  lvs_timeouts tcp 7200 sctp 3\n}\n");
    has(&e, "keepalived.conf:2: ", "unknown protocol \"sctp\"");
}

#[test]
fn import_vrrp_sync_group_as_keepalived_reads_it() {
    let text = "vrrp_script chk {\n script /bin/true\n weight -20\n}\n\
        vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n  VI_9\n }\n \
        notify_master \"/opt/g.sh master\" nobody\n notify /opt/n.sh\n smtp_alert\n \
        track_interface {\n  eth2\n }\n}\n\
        vrrp_sync_group H {\n group {\n  VI_1\n }\n}\n\
        vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n track_script {\n  chk\n }\n}\n\
        vrrp_instance VI_2 {\n interface eth1\n virtual_router_id 2\n}\n";
    let c = import(text);
    let g = &c.config.vrrp_sync_group;
    assert_eq!(g.len(), 1, "H has no member left: removed");
    assert_eq!(g[0].name, "G");
    assert_eq!(g[0].group, ["VI_1", "VI_2"]);
    assert_eq!(g[0].notify_master.as_deref(), Some("/opt/g.sh master"));
    assert_eq!(g[0].notify_master_user.as_deref(), Some("nobody"));
    assert_eq!(g[0].notify.as_deref(), Some("/opt/n.sh"));
    assert_eq!(g[0].smtp_alert, Some(true));
    assert_eq!(g[0].track_interface, ["eth2"]);
    let w = warnings(&c);
    has(
        &w,
        "keepalived.conf:9: ",
        "VI_9 of sync group G does not exist",
    );
    has(
        &w,
        "keepalived.conf:20: ",
        "VI_1 is already in sync group G",
    );
    has(
        &w,
        "keepalived.conf:18: ",
        "sync group H has no virtual router",
    );
    has(
        &w,
        "keepalived.conf:27: ",
        "has a weight and vrrp_instance VI_1 is in sync group G",
    );
    round_trip(&c);
    // The weighted script is left out of VI_1, the group's interface added to both.
    let vi1 = &c.config.vrrp_instance[0];
    assert!(c.config.tracked_scripts(vi1).is_empty());
    let names: Vec<String> = (c.config.tracked_interfaces(vi1).into_iter())
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["eth2"]);
    // A group of one is kept, with keepalived's warning.
    let one = import(
        "vrrp_sync_group G {\n group {\n  VI_1\n }\n}\n\
         vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n}\n",
    );
    assert_eq!(one.config.vrrp_sync_group[0].group, ["VI_1"]);
    has(
        &warnings(&one),
        "keepalived.conf:1: ",
        "has only 1 virtual router(s)",
    );
}

#[test]
fn import_smtp_check_host_blocks_are_checks_of_their_own() {
    let c = import(&format!(
        "{VI}virtual_server 10.4.0.100 25 {{\n lb_algo rr\n lb_kind DR\n \
         real_server 10.4.0.2 25 {{\n  SMTP_CHECK {{\n   connect_timeout 10\n   retry 2\n   \
         helo_name foo.bar.com\n   bindto 10.4.0.1\n   host {{\n    connect_ip 10.4.0.2\n   }}\n   \
         host {{\n    connect_ip 10.4.0.12\n    connect_port 587\n    bindto 10.4.0.9\n    \
         connect_timeout 3\n   }}\n  }}\n }}\n}}\n"
    ));
    let smtp = c.config.virtual_server[0].real_server[0]
        .smtp_check
        .as_ref()
        .unwrap();
    assert_eq!(smtp.host.len(), 2);
    // The check's own target (the real server), then the hosts.
    let hosts = smtp.hosts();
    assert_eq!(hosts.len(), 3);
    assert_eq!(hosts[0].connect_ip, None);
    assert_eq!(hosts[1].connect_ip, Some(ip("10.4.0.2")));
    assert_eq!(hosts[1].connect_port, None, "the check's: 25");
    assert_eq!(hosts[1].bindto, Some(ip("10.4.0.1")), "the check's bindto");
    assert_eq!(hosts[2].connect_port, Some(587));
    assert_eq!(hosts[2].bindto, Some(ip("10.4.0.9")));
    assert_eq!(hosts[2].connect_timeout, Some(3.0));
    round_trip(&c);
    // Each host is a checker of the real server, which the first host names again
    // (checked once): all must pass.
    let targets = crate::health::targets_from_config(&c.config);
    let addrs: Vec<String> = targets[0].checkers.iter().map(|k| k.kind.label()).collect();
    assert_eq!(
        addrs,
        ["smtp_check 10.4.0.2:25", "smtp_check 10.4.0.12:587"]
    );
    assert!(targets[0].checkers.iter().all(|k| k.policy.retry == 2));

    // A setting after a host block reaches only later hosts in keepalived: warned.
    let c = import(&format!(
        "{VI}virtual_server 10.4.0.100 25 {{\n lb_algo rr\n lb_kind DR\n \
         real_server 10.4.0.2 25 {{\n  SMTP_CHECK {{\n   host {{\n    connect_ip 10.4.0.12\n   }}\n   \
         connect_port 2525\n  }}\n }}\n}}\n"
    ));
    has(
        &warnings(&c),
        "keepalived.conf:16: ",
        "`connect_port` after a `host` block",
    );
    // A keyword a host cannot take is refused at its line.
    let errs = import_err(&format!(
        "{VI}virtual_server 10.4.0.100 25 {{\n lb_algo rr\n lb_kind DR\n \
         real_server 10.4.0.2 25 {{\n  SMTP_CHECK {{\n   host {{\n    retry 3\n   }}\n  }}\n }}\n}}\n"
    ));
    has(&errs, "keepalived.conf:14: ", "retry");
}
