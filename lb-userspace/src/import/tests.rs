//! The importer on the keepalived.conf files of the seed tutorial and on the usual
//! variants (master/master, unicast, scripts and notify, checkers, includes): each
//! converts, passes `Config::parse`, and gives the expected values.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::*;
use crate::config::{Config, InitialState, LbAlgo, Protocol, RealServerConfig};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Converts `text` (as `keepalived.conf`), panicking with the diagnostics on failure.
#[track_caller]
fn import(text: &str) -> Conversion {
    match import_str(text, "keepalived.conf", Path::new("/nonexistent")) {
        Ok(c) => c,
        Err(e) => panic!("conversion failed:\n{e}\nwarnings: {:#?}", e.warnings),
    }
}

/// Converts `text`, expecting failure; returns the errors as `FILE:LINE: message`.
#[track_caller]
fn import_err(text: &str) -> Vec<String> {
    match import_str(text, "keepalived.conf", Path::new("/nonexistent")) {
        Ok(c) => panic!("converted, expected errors:\n{}", c.toml),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

#[track_caller]
fn has(list: &[String], prefix: &str, fragment: &str) {
    assert!(
        list.iter()
            .any(|m| m.starts_with(prefix) && m.contains(fragment)),
        "no `{prefix}...{fragment}...` in {list:#?}"
    );
}

fn warnings(c: &Conversion) -> Vec<String> {
    c.warnings.iter().map(ToString::to_string).collect()
}

/// The output reads back (through `xlb check`'s parser) to the same configuration,
/// and serializing that configuration and reading it again changes nothing.
#[track_caller]
fn round_trip(c: &Conversion) {
    let again = Config::parse(&c.toml, "out.toml").unwrap_or_else(|e| panic!("{e:#}\n{}", c.toml));
    assert_eq!(again, c.config);
    let text = toml::to_string(&c.config).unwrap();
    let back = Config::parse(&text, "ser.toml").unwrap_or_else(|e| panic!("{e:#}\n{text}"));
    assert_eq!(back, c.config, "{text}");
}

// ---------------------------------------------------------------- the seed tutorial

/// The seed's "需要修改项" keepalived.conf of the MASTER director (LVS-DR, two web
/// servers with TCP_CHECK), comments as in the tutorial. The tutorial's excerpt stops
/// before the virtual_server's closing brace; it is added.
const SEED_MASTER: &str = "\
global_defs {
notification_email {
acassen@firewall.loc
failover@firewall.loc
sysadmin@firewall.loc
}
notification_email_from Alexandre.Cassen@firewall.loc
smtp_server 127.0.0.1
#修改邮箱指向自己(10行)
smtp_connect_timeout 30
router_id LVS_01
#指定服务器名称主备需要不一样(12行)
vrrp_skip_check_adv_addr
#vrrp_strict
#14行需要注释否则服务启动有问题
vrrp_garp_interval 0
vrrp_gna_interval 0
}
vrrp_instance VI_1 {
state MASTER
#指定服务器类型MASTER为主 BACKUP为备(20行)
interface ens33
#修改网卡名称为ens33(21)
virtual_router_id 10
#指定虚拟路由器的ID号主备需要一致
#nopreempt
#非抢占模式两个节点都需要配置去掉注释
priority 100
#设定优先级数字越大优先级越高,准备需要不一样
advert_int 1
#通告间隔(查看是否存活)
authentication {
auth_type PASS
#认证类型
auth_pass 123456
#修改验证密码,主备需要一样(27行)
}
virtual_ipaddress {
192.168.44.188
#指定群集vip地址
}
}
virtual_server 192.168.44.188 80 {
delay_loop 6
#健康间隔时间6秒
lb_algo rr
#调度算法轮询
lb_kind DR
#lvs模式为DR
persistence_timeout 0
#连接保持时间改为0 否则 无法体现效果
protocol TCP
#采用协议
real_server 192.168.44.10 80 {
#43行修改地址为真实主机地址
weight 1
#45行删除
#节点权重
TCP_CHECK{
connect_port 80
#检查目标端口
connect_timeout 3
#连接超时
nb_get_retry 3
#重试次数
delay_before_retry 3
#重试间隔时间
}
}
real_server 192.168.44.20 80 {
#第二个
weight 1
TCP_CHECK{
connect_port 80
connect_timeout 3
nb_get_retry 3
delay_before_retry 3
}
}
}
";

/// The seed's section 二 (7-2 主服务器设置) config, with trailing comments on the
/// keyword lines; `virtual_router_id`, which the tutorial keeps from the packaged
/// file, is written out.
const SEED_LVS_01: &str = "\
global_defs {                     #定义全局参数
smtp_server 127.0.0.1
router_id LVS_01
#vrrp_strict
}
vrrp_instance VI_1 {              #定义VRRP热备实例参数
state MASTER
interface ens33
virtual_router_id 10
priority 100
advert_int 1                      #通告间隔秒数(心跳频率)
authentication {                  #定义认证信息,每个热备组保持一致
auth_type PASS                    #认证类型
auth_pass 123123
}
virtual_ipaddress {               #指定群集vip地址
192.168.44.188
}
}
virtual_server 192.168.44.188 80 {
delay_loop 6                      #健康检查的间隔时间(秒)
lb_algo rr                        #指定调度算法,轮询(rr)
lb_kind DR
persistence_timeout 0             #连接保持时间(秒)
protocol TCP                      #应用服务采用的是 TCP协议
real_server 192.168.44.30 80 {
weight 1                          #节点的权重
TCP_CHECK {
connect_port 80                   #添加检查的目标端口
connect_timeout 3                 #添加连接超时(秒)
nb_get_retry 3                    #添加重试次数
delay_before_retry 3              #添加重试间隔
}
}
real_server 192.168.44.40 80 {    #添加第二个 Web节点的地址、端口
weight 1
TCP_CHECK {
connect_port 80
connect_timeout 3
nb_get_retry 3
delay_before_retry 3
}
}
##删除后面多余的配置##
}
";

/// The seed's BACKUP director ("全局配置细讲"), with its `####` comments.
const SEED_BACKUP: &str = "\
global_defs {
router_id HA_TEST_R2 ####本路由器的服务器名称 HA_TEST_R2
}
vrrp_instance VI_1 { ####定义VRRP热备实列
state BACKUP ####热备状态,backup表示辅服务器
interface ens33 ####表示承载VIP地址的物理接口
virtual_router_id 1 ####虚拟路由器的ID号,每个热备组保持一致
priority 99 ####优先级,优先级越大优先级越高
advert_int 1 ####通告间隔秒数(心跳频率)
authentication { ####认证信息,每个热备组保持一致
auth_type PASS ####认证类型
auth_pass 123456 ####认证密码
}
virtual_ipaddress { ####漂移地址(VIP),可以是多个
192.168.100.10
}
}
";

#[test]
fn import_seed_master() {
    let c = import(SEED_MASTER);
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    let g = &c.config.global_defs;
    assert_eq!(
        g.notification_email,
        [
            "acassen@firewall.loc",
            "failover@firewall.loc",
            "sysadmin@firewall.loc"
        ]
    );
    assert_eq!(
        g.notification_email_from.as_deref(),
        Some("Alexandre.Cassen@firewall.loc")
    );
    assert_eq!(g.smtp_server.as_deref(), Some("127.0.0.1"));
    assert_eq!(g.smtp_connect_timeout, 30.0);
    assert_eq!(g.router_id.as_deref(), Some("LVS_01"));
    assert!(g.vrrp_skip_check_adv_addr);
    assert!(!g.vrrp_strict, "commented out in the tutorial");
    assert_eq!((g.vrrp_garp_interval, g.vrrp_gna_interval), (0.0, 0.0));

    let vi = &c.config.vrrp_instance[0];
    assert_eq!(vi.name, "VI_1");
    assert_eq!(vi.state, InitialState::Master);
    assert_eq!(vi.interface, "ens33");
    assert_eq!(
        (vi.virtual_router_id, vi.priority, vi.advert_int),
        (10, 100, 1.0)
    );
    assert!(!vi.nopreempt);
    assert_eq!(vi.authentication.as_ref().unwrap().auth_pass, "123456");
    assert_eq!(vi.virtual_ipaddress, ["192.168.44.188"]);

    let vs = &c.config.virtual_server[0];
    assert_eq!((vs.ip, vs.port), (ip("192.168.44.188"), 80));
    assert_eq!(vs.delay_loop, 6.0);
    assert_eq!(vs.lb_algo, LbAlgo::Rr);
    assert_eq!(vs.persistence_timeout, 0);
    assert_eq!(vs.protocol, Protocol::Tcp);
    assert_eq!(vs.interface, None, "owned by VI_1: its interface");
    assert_eq!(vs.resolved_interface(&c.config), Some("ens33"));
    let rs: Vec<_> = vs
        .real_server
        .iter()
        .map(|r| (r.ip, r.port, r.weight))
        .collect();
    assert_eq!(
        rs,
        [(ip("192.168.44.10"), 80, 1), (ip("192.168.44.20"), 80, 1)]
    );
    for r in &vs.real_server {
        let tcp = r.tcp_check.as_ref().unwrap();
        assert_eq!(tcp.connect_port, Some(80));
        let t = tcp.timing_in_force(&r.checker_defaults(vs, &c.config.global_defs));
        assert_eq!(
            (
                t.connect_timeout,
                t.retry,
                t.delay_before_retry,
                t.delay_loop
            ),
            (3.0, 3, 3.0, 6.0)
        );
    }
    assert!(c.toml.contains("tcp_check = { connect_port = 80, connect_timeout = 3, retry = 3, delay_before_retry = 3 }"), "{}", c.toml);
    assert!(
        c.toml
            .starts_with("# xlb configuration converted from keepalived.conf")
    );
    round_trip(&c);
}

#[test]
fn import_seed_lvs_01_and_backup() {
    let c = import(SEED_LVS_01);
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    assert_eq!(c.config.global_defs.router_id.as_deref(), Some("LVS_01"));
    let vi = &c.config.vrrp_instance[0];
    assert_eq!(vi.authentication.as_ref().unwrap().auth_pass, "123123");
    let vs = &c.config.virtual_server[0];
    assert_eq!(vs.real_server[1].ip, ip("192.168.44.40"));
    let rs = &vs.real_server[1];
    let tcp = rs.tcp_check.as_ref().unwrap();
    let t = tcp.timing_in_force(&rs.checker_defaults(vs, &c.config.global_defs));
    assert_eq!(t.retry, 3);
    round_trip(&c);

    let b = import(SEED_BACKUP);
    let vi = &b.config.vrrp_instance[0];
    assert_eq!(
        b.config.global_defs.router_id.as_deref(),
        Some("HA_TEST_R2")
    );
    assert_eq!(vi.state, InitialState::Backup);
    assert_eq!((vi.virtual_router_id, vi.priority), (1, 99));
    assert_eq!(vi.virtual_ipaddress, ["192.168.100.10"]);
    round_trip(&b);
}

#[test]
fn import_seed_without_virtual_router_id_names_the_instance_line() {
    // The tutorial's 7-2 excerpt leaves virtual_router_id to the packaged file: without
    // it the instance is refused (keepalived refuses it too), at its line.
    let text = SEED_LVS_01.replace("virtual_router_id 10\n", "");
    let errs = import_err(&text);
    has(
        &errs,
        "keepalived.conf:6: ",
        "missing field `virtual_router_id`",
    );
}

/// The seed's global_defs walkthrough (1.7.2), with its vrrp_strict and firewall keys.
#[test]
fn import_seed_global_defs_walkthrough() {
    let c = import(
        "\
# /etc/keepalived/keepalived.conf
global_defs {
notification_email {
root@localhost
#keepalived 发生故障切换时邮件发送的目标邮箱,可以按行区分写多个
root@localhost
2860596835@qq.com
}
notification_email_from keepalived@localhost
#发邮件的地址
smtp_server 127.0.0.1
smtp_connect_timeout 30
router_id R1
vrrp_skip_check_adv_addr
vrrp_strict
vrrp_garp_interval 0
vrrp_gna_interval 0
vrrp_mcast_group4 224.0.0.18
vrrp_iptables
}
",
    );
    let g = &c.config.global_defs;
    assert_eq!(
        g.notification_email,
        ["root@localhost", "root@localhost", "2860596835@qq.com"]
    );
    assert!(g.vrrp_strict);
    assert_eq!(g.vrrp_mcast_group4.to_string(), "224.0.0.18");
    let w = warnings(&c);
    has(&w, "keepalived.conf:19: ", "`vrrp_iptables` ignored");
    assert!(
        c.toml
            .contains("#   keepalived.conf:19: `vrrp_iptables` ignored"),
        "{}",
        c.toml
    );
    round_trip(&c);
}

/// The seed's virtual_ipaddress / track_interface reference, with its `include` of a
/// directory that does not exist (keepalived skips it; so does the importer, warning).
#[test]
fn import_seed_vip_syntax_and_missing_include() {
    let c = import(
        "\
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
include /etc/keealived/conf.d/*.conf
virtual_ipaddress {
#虚拟IP,生产环境可能指定上百个IP地址
192.168.200.100
#指定VIP,不指定网卡,默认为,注意:不指定/prefix,默认为/32
192.168.200.101/24 dev eth1
#指定VIP的网卡,建议和interface指令指定的岗卡不在一个网卡
192.168.200.102/24 dev eth2 label eth2:1
#指定VIP的网卡label
}
track_interface {
#配置监控网络接口,一旦出现故障,则转为FAULT状态实现地址转移
eth0
eth1
}
}
",
    );
    let vi = &c.config.vrrp_instance[0];
    assert_eq!(
        vi.virtual_ipaddress,
        [
            "192.168.200.100",
            "192.168.200.101/24 dev eth1",
            "192.168.200.102/24 dev eth2 label eth2:1"
        ]
    );
    let vips = vi.virtual_addresses();
    assert_eq!(vips[0].prefix_len, 32);
    assert_eq!(vips[2].label.as_deref(), Some("eth2:1"));
    assert_eq!(vi.track_interface, ["eth0", "eth1"]);
    has(&warnings(&c), "keepalived.conf:11: ", "no file matches");
    round_trip(&c);
}

// ---------------------------------------------------------------- common variants

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
    // For notify scripts keepalived reads the next words as the user to run as.
    let errs = import_err(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n notify_master /opt/x.sh master\n}\n",
    );
    has(&errs, "keepalived.conf:4: ", "as user/group \"master\"");
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

// ---------------------------------------------------------------- includes

/// A fresh directory under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xlb-import-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn import_includes_globs_relative_paths_and_lines() {
    let dir = temp_dir("include");
    fs::create_dir_all(dir.join("conf.d/vs")).unwrap();
    fs::write(
        dir.join("keepalived.conf"),
        "\
global_defs {
    include conf.d/global.inc
}
include conf.d/vrrp.conf
include conf.d/vs/*.conf
include conf.d/vs/{none,empty}.txt
",
    )
    .unwrap();
    fs::write(dir.join("conf.d/global.inc"), "router_id FROM_INCLUDE\n").unwrap();
    fs::write(
        dir.join("conf.d/vrrp.conf"),
        "\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.3.0.100/24
    }
}
",
    )
    .unwrap();
    // Read in sorted order: a_web before b_dns.
    fs::write(
        dir.join("conf.d/vs/b_dns.conf"),
        "virtual_server 10.3.0.100 53 {\n protocol UDP\n lb_algo rr\n lb_kind DR\n}\n",
    )
    .unwrap();
    fs::write(
        dir.join("conf.d/vs/a_web.conf"),
        "virtual_server 10.3.0.100 80 {\n lb_algo rr\n lb_kind DR\n include ../rs.inc\n}\n",
    )
    .unwrap();
    // Relative to the file that includes it (conf.d/vs/), as keepalived does.
    fs::write(
        dir.join("conf.d/rs.inc"),
        "real_server 10.3.0.21 80 {\n weight 2\n}\n",
    )
    .unwrap();

    let c = import_file(&dir.join("keepalived.conf")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.config.global_defs.router_id.as_deref(),
        Some("FROM_INCLUDE")
    );
    assert_eq!(c.config.vrrp_instance[0].name, "VI_1");
    let ports: Vec<u16> = c.config.virtual_server.iter().map(|v| v.port).collect();
    assert_eq!(ports, [80, 53]);
    assert_eq!(c.config.virtual_server[0].real_server[0].weight, 2);
    let w = warnings(&c);
    has(
        &w,
        &format!("{}:6: ", dir.join("keepalived.conf").display()),
        "no file matches",
    );
    round_trip(&c);

    // Errors in an included file name that file and line.
    fs::write(
        dir.join("conf.d/vs/b_dns.conf"),
        "virtual_server 10.3.0.100 53 {\n protocol UDP\n lb_kind NAT\n}\n",
    )
    .unwrap();
    let e = import_file(&dir.join("keepalived.conf")).unwrap_err();
    let errs: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
    has(
        &errs,
        &format!("{}:3: ", dir.join("conf.d/vs/b_dns.conf").display()),
        "xlb forwards in DR mode only",
    );

    // A missing literal include is an error (the converted file would lack it).
    fs::write(dir.join("loop.conf"), "include missing.conf\n").unwrap();
    let e = import_file(&dir.join("loop.conf")).unwrap_err();
    assert!(
        e.errors[0]
            .to_string()
            .contains("cannot read included file"),
        "{e}"
    );
    // An include loop is refused.
    fs::write(dir.join("loop.conf"), "include loop.conf\n").unwrap();
    let e = import_file(&dir.join("loop.conf")).unwrap_err();
    assert!(e.errors[0].to_string().contains("include loop"), "{e}");
    let _ = fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------- refusals and warnings

const VI: &str = "\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.4.0.100/24
    }
}
";

#[test]
fn import_nat_and_tun_are_errors_at_their_line() {
    let errs = import_err(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n    lb_kind NAT\n}}\n\
         virtual_server 10.4.0.100 81 {{\n    lvs_method TUN\n}}\n"
    ));
    has(
        &errs,
        "keepalived.conf:9: ",
        "`lb_kind NAT` cannot be converted: xlb forwards in DR mode only",
    );
    has(
        &errs,
        "keepalived.conf:12: ",
        "`lvs_method TUN` cannot be converted",
    );
    // On a real server too.
    let errs = import_err(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n lb_kind DR\n real_server 10.4.0.2 80 {{\n  lvs_method NAT\n }}\n}}\n"
    ));
    has(
        &errs,
        "keepalived.conf:11: ",
        "xlb forwards in DR mode only",
    );
}

#[test]
fn import_connection_counting_schedulers_become_wrr_with_a_warning() {
    let c = import(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n    lb_algo wlc\n    lb_kind DR\n}}\n\
         virtual_server 10.4.0.100 81 {{\n    lb_algo lblc\n    lb_kind DR\n}}\n"
    ));
    assert!(
        c.config
            .virtual_server
            .iter()
            .all(|v| v.lb_algo == LbAlgo::Wrr)
    );
    let w = warnings(&c);
    has(
        &w,
        "keepalived.conf:9: ",
        "lb_algo wlc counts active connections",
    );
    has(&w, "keepalived.conf:13: ", "lb_algo lblc");
    assert!(
        c.toml.contains("#   keepalived.conf:9: lb_algo wlc"),
        "{}",
        c.toml
    );
    // dh and fo have no equivalent at all.
    let errs = import_err(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n    lb_algo dh\n    lb_kind DR\n}}\n"
    ));
    has(
        &errs,
        "keepalived.conf:9: ",
        "lb_algo dh has no xlb equivalent",
    );
}

#[test]
fn import_defaults_that_differ_from_keepalived_are_warned() {
    // No lb_kind (keepalived: NAT) and no lb_algo (keepalived: wlc).
    let c = import(&format!(
        "{VI}virtual_server 10.4.0.100 80 {{\n    delay_loop 5\n}}\n"
    ));
    let vs = &c.config.virtual_server[0];
    assert_eq!(vs.lb_algo, LbAlgo::Wrr);
    let w = warnings(&c);
    has(
        &w,
        "keepalived.conf:8: ",
        "no lb_kind: keepalived's default is NAT",
    );
    has(
        &w,
        "keepalived.conf:8: ",
        "no lb_algo: keepalived's default is wlc",
    );
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
        "keepalived.conf:13: ",
        "vrrp_sync_group is not supported",
    );
    has(
        &errs,
        "keepalived.conf:22: ",
        "`uthreshold` is not supported",
    );
    has(&errs, "keepalived.conf:24: ", "`connect_prot` in TCP_CHECK");
    has(
        &errs,
        "keepalived.conf:28: ",
        "`virtual_server fwmark` is not supported",
    );
    assert_eq!(errs.len(), 6, "{errs:#?}");
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
    let errs = import_err("@lb1 global_defs {\n}\n");
    has(&errs, "keepalived.conf:1: ", "conditional");
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
