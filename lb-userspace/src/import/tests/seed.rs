//! The keepalived.conf files of the seed tutorial.

use super::*;

/// The seed's "需要修改项" keepalived.conf of the MASTER director (LVS-DR, two web
/// servers with TCP_CHECK), comments as in the tutorial. The tutorial's excerpt stops
/// before the virtual_server's closing brace; it is added.
pub(super) const SEED_MASTER: &str = "\
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
pub(super) const SEED_LVS_01: &str = "\
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
pub(super) const SEED_BACKUP: &str = "\
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
