//! keepalived.conf's tree into xlb's TOML tree.
//!
//! Each block has a table of keywords that carry over under xlb's name (mostly the
//! same), the keywords needing their own code, the ones that are harmless to drop
//! (a warning names them) and the ones whose loss would change behaviour (an error).
//! Anything else is an error too: nothing in the input is silently dropped. Values are
//! carried with their keepalived line; checking them is left to `Config::parse`, whose
//! errors are reported at that line.

use std::collections::HashMap;
use std::net::IpAddr;

use super::emit::{Elem, Table, V};
use super::parser::Node;
use super::{Diagnostics, Loc};
use crate::config::VirtualIpAddress;

/// How a keyword's arguments become a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    /// One number (integer or decimal).
    Num,
    /// One word.
    Str,
    /// No argument (true), or one of true/false, on/off, yes/no.
    Flag,
    /// One or more words, joined by spaces (`user USER [GROUP]`).
    Words,
    /// A command: keepalived 2 takes the first word (quote it to pass arguments).
    Cmd,
    /// A notify command: the first word; keepalived reads further words as the user
    /// and group to run it as.
    Notify,
}

/// keepalived keyword, xlb key, conversion.
type Spec = &'static [(&'static str, &'static str, K)];
/// keepalived keyword, why.
type Reasons = &'static [(&'static str, &'static str)];

const GLOBAL: Spec = &[
    ("router_id", "router_id", K::Str),
    ("lvs_id", "router_id", K::Str),
    ("notification_email_from", "notification_email_from", K::Str),
    ("smtp_helo_name", "smtp_helo_name", K::Str),
    ("smtp_connect_timeout", "smtp_connect_timeout", K::Num),
    ("smtp_alert", "smtp_alert", K::Flag),
    ("vrrp_version", "vrrp_version", K::Num),
    ("vrrp_mcast_group4", "vrrp_mcast_group4", K::Str),
    ("vrrp_mcast_group6", "vrrp_mcast_group6", K::Str),
    ("vrrp_garp_master_delay", "vrrp_garp_master_delay", K::Num),
    ("vrrp_garp_master_repeat", "vrrp_garp_master_repeat", K::Num),
    (
        "vrrp_garp_master_refresh",
        "vrrp_garp_master_refresh",
        K::Num,
    ),
    (
        "vrrp_garp_master_refresh_repeat",
        "vrrp_garp_master_refresh_repeat",
        K::Num,
    ),
    ("vrrp_garp_interval", "vrrp_garp_interval", K::Num),
    ("vrrp_gna_interval", "vrrp_gna_interval", K::Num),
    (
        "vrrp_skip_check_adv_addr",
        "vrrp_skip_check_adv_addr",
        K::Flag,
    ),
    ("vrrp_strict", "vrrp_strict", K::Flag),
    ("script_user", "script_user", K::Words),
    ("enable_script_security", "enable_script_security", K::Flag),
    (
        "checker_log_all_failures",
        "checker_log_all_failures",
        K::Flag,
    ),
    ("notify_fifo_script", "notify_fifo_script", K::Notify),
    (
        "vrrp_notify_fifo_script",
        "vrrp_notify_fifo_script",
        K::Notify,
    ),
    (
        "lvs_notify_fifo_script",
        "lvs_notify_fifo_script",
        K::Notify,
    ),
];

const SNMP: &str = "SNMP is not served by xlb (`xlb status --json` gives the state)";
const TUNING: &str = "keepalived process tuning; xlb has no such setting";

const GLOBAL_IGNORED: Reasons = &[
    ("enable_traps", SNMP),
    ("enable_snmp_vrrp", SNMP),
    ("enable_snmp_checker", SNMP),
    ("enable_snmp_rfc", SNMP),
    ("enable_snmp_rfcv2", SNMP),
    ("enable_snmp_rfcv3", SNMP),
    ("enable_snmp_keepalived", SNMP),
    ("snmp_socket", SNMP),
    ("enable_dbus", "D-Bus is not served by xlb"),
    ("enable_dbus_create_instance", "D-Bus is not served by xlb"),
    (
        "vrrp_iptables",
        "xlb adds no firewall rules: with vrrp_strict, keepalived without this keyword \
         would have blocked traffic to the VIPs; xlb does not",
    ),
    ("vrrp_ipsets", "xlb adds no firewall rules"),
    ("nftables", "xlb adds no firewall rules"),
    ("nftables_priority", "xlb adds no firewall rules"),
    ("nftables_counters", "xlb adds no firewall rules"),
    ("nftables_ifindex", "xlb adds no firewall rules"),
    ("vrrp_priority", TUNING),
    ("checker_priority", TUNING),
    ("bfd_priority", TUNING),
    ("vrrp_no_swap", TUNING),
    ("checker_no_swap", TUNING),
    ("bfd_no_swap", TUNING),
    ("vrrp_rt_priority", TUNING),
    ("checker_rt_priority", TUNING),
    ("bfd_rt_priority", TUNING),
    ("vrrp_rlimit_rttime", TUNING),
    ("checker_rlimit_rttime", TUNING),
    ("bfd_rlimit_rttime", TUNING),
    ("vrrp_cpu_affinity", TUNING),
    ("checker_cpu_affinity", TUNING),
    ("bfd_cpu_affinity", TUNING),
    ("process_names", TUNING),
    ("process_name", TUNING),
    ("vrrp_process_name", TUNING),
    ("checker_process_name", TUNING),
    ("bfd_process_name", TUNING),
    ("umask", TUNING),
    ("use_pid_dir", TUNING),
    ("child_wait_time", TUNING),
    ("instance", TUNING),
    ("random_seed", TUNING),
    ("vrrp_netlink_cmd_rcv_bufs", TUNING),
    ("vrrp_netlink_cmd_rcv_bufs_force", TUNING),
    ("vrrp_netlink_monitor_rcv_bufs", TUNING),
    ("vrrp_netlink_monitor_rcv_bufs_force", TUNING),
    ("lvs_netlink_cmd_rcv_bufs", TUNING),
    ("lvs_netlink_cmd_rcv_bufs_force", TUNING),
    ("lvs_netlink_monitor_rcv_bufs", TUNING),
    ("lvs_netlink_monitor_rcv_bufs_force", TUNING),
    ("vrrp_rx_bufs_policy", TUNING),
    ("vrrp_rx_bufs_multiplier", TUNING),
    ("vrrp_startup_delay", TUNING),
    (
        "dynamic_interfaces",
        "xlb follows interfaces appearing and disappearing anyway",
    ),
    ("linkbeat_use_polling", "xlb reads link state from netlink"),
    (
        "lvs_flush",
        "xlb owns its maps and replaces their content at start anyway",
    ),
    ("lvs_flush_onstop", "xlb owns its maps"),
    (
        "lvs_sync_daemon",
        "xlb does not synchronise connections between directors: after a failover \
         existing connections are scheduled again (lb_algo mh makes both directors \
         choose the same real server)",
    ),
    (
        "vrrp_garp_lower_prio_delay",
        "xlb answers a lower-priority advert with the vrrp_garp_master_* burst",
    ),
    (
        "vrrp_garp_lower_prio_repeat",
        "xlb answers a lower-priority advert with the vrrp_garp_master_* burst",
    ),
    ("vrrp_lower_prio_no_advert", "xlb follows the RFC here"),
    ("vrrp_higher_prio_send_advert", "xlb follows the RFC here"),
    ("vrrp_check_unicast_src", "not configurable in xlb"),
    (
        "vrrp_min_garp",
        "use vrrp_garp_master_delay / vrrp_garp_master_repeat",
    ),
    ("max_auto_priority", TUNING),
    ("min_auto_priority_delay", TUNING),
    (
        "no_email_faults",
        "xlb mails every transition when smtp_alert is set",
    ),
    (
        "no_checker_emails",
        "xlb mails every transition when smtp_alert is set",
    ),
    ("reload_time_file", TUNING),
    ("reload_repeat", TUNING),
    ("reload_file", TUNING),
    ("config_save_dir", TUNING),
    ("data_use_instance", TUNING),
    ("fifo_write_vrrp_states_on_reload", TUNING),
    ("local_name", TUNING),
];

const GLOBAL_REFUSED: Reasons = &[
    (
        "smtp_alert_vrrp",
        "xlb has no separate VRRP mail switch: set smtp_alert in each vrrp_instance instead",
    ),
    (
        "smtp_alert_checker",
        "xlb has no separate checker mail switch: set smtp_alert in each virtual_server \
         instead",
    ),
    (
        "startup_script",
        "xlb runs no start-up script: run it from the service manager",
    ),
    ("startup_script_timeout", "xlb runs no start-up script"),
    (
        "shutdown_script",
        "xlb runs no shutdown script: run it from the service manager",
    ),
    ("shutdown_script_timeout", "xlb runs no shutdown script"),
    (
        "net_namespace",
        "xlb does not switch network namespaces: run it in the namespace",
    ),
    (
        "net_namespace_ipvs",
        "xlb does not switch network namespaces",
    ),
    (
        "namespace_with_ipsets",
        "xlb does not switch network namespaces",
    ),
];

const SCRIPT: Spec = &[
    ("script", "script", K::Cmd),
    ("interval", "interval", K::Num),
    ("timeout", "timeout", K::Num),
    ("rise", "rise", K::Num),
    ("fall", "fall", K::Num),
    ("user", "user", K::Words),
    ("init_fail", "init_fail", K::Flag),
];

const INSTANCE: Spec = &[
    ("state", "state", K::Str),
    ("interface", "interface", K::Str),
    ("virtual_router_id", "virtual_router_id", K::Num),
    ("priority", "priority", K::Num),
    ("advert_int", "advert_int", K::Num),
    ("version", "version", K::Num),
    ("nopreempt", "nopreempt", K::Flag),
    ("preempt_delay", "preempt_delay", K::Num),
    ("unicast_src_ip", "unicast_src_ip", K::Str),
    ("mcast_src_ip", "mcast_src_ip", K::Str),
    ("dont_track_primary", "dont_track_primary", K::Flag),
    ("notify_master", "notify_master", K::Notify),
    ("notify_backup", "notify_backup", K::Notify),
    ("notify_fault", "notify_fault", K::Notify),
    ("notify_stop", "notify_stop", K::Notify),
    ("notify", "notify", K::Notify),
    ("smtp_alert", "smtp_alert", K::Flag),
    ("garp_master_delay", "garp_master_delay", K::Num),
    ("garp_master_repeat", "garp_master_repeat", K::Num),
    ("garp_master_refresh", "garp_master_refresh", K::Num),
    (
        "garp_master_refresh_repeat",
        "garp_master_refresh_repeat",
        K::Num,
    ),
    ("down_timer_adverts", "down_timer_adverts", K::Num),
    ("v3_checksum_as_v2", "v3_checksum_as_v2", K::Flag),
];

const INSTANCE_BLOCKS: &[&str] = &[
    "preempt",
    "authentication",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_peer",
    "track_interface",
    "track_script",
    "accept",
    "no_accept",
];

const INSTANCE_IGNORED: Reasons = &[
    ("debug", "xlb's log level is set with XLB_LOG"),
    (
        "garp_lower_prio_delay",
        "xlb answers a lower-priority advert with the garp_master_* burst",
    ),
    (
        "garp_lower_prio_repeat",
        "xlb answers a lower-priority advert with the garp_master_* burst",
    ),
    ("lower_prio_no_advert", "xlb follows the RFC here"),
    ("higher_prio_send_advert", "xlb follows the RFC here"),
    (
        "skip_check_adv_addr",
        "only global_defs vrrp_skip_check_adv_addr exists in xlb",
    ),
    ("check_unicast_src", "not configurable in xlb"),
    ("linkbeat_use_polling", "xlb reads link state from netlink"),
    (
        "unicast_ttl",
        "xlb sends adverts with TTL 255, as the RFCs require",
    ),
    ("kernel_rx_buf_size", TUNING),
    (
        "native_ipv6",
        "xlb runs VRRPv3 for IPv6 addresses by itself",
    ),
    ("promote_secondaries", "not configurable in xlb"),
    (
        "lvs_sync_daemon_interface",
        "xlb does not synchronise connections between directors",
    ),
    (
        "no_virtual_ipaddress",
        "xlb accepts an instance without virtual_ipaddress anyway",
    ),
    (
        "unicast_fault_no_peer",
        "not configurable in xlb (an instance with unicast_src_ip needs unicast_peer)",
    ),
    (
        "garp_extra_if",
        "xlb sends gratuitous ARP / NA on the VIPs' interfaces only",
    ),
];

const INSTANCE_REFUSED: Reasons = &[
    (
        "use_vmac",
        "xlb does not use a virtual MAC: the VIPs move with gratuitous ARP / NA",
    ),
    ("vmac_xmit_base", "xlb does not use a virtual MAC"),
    (
        "track_file",
        "xlb tracks scripts and interfaces: replace the file by a vrrp_script testing it",
    ),
    (
        "track_process",
        "xlb tracks scripts and interfaces: replace it by a vrrp_script (e.g. pgrep)",
    ),
    ("track_bfd", "xlb has no BFD"),
    ("virtual_routes", "xlb adds no routes with the VIPs"),
    ("virtual_rules", "xlb adds no routing rules with the VIPs"),
    ("strict_mode", "use global_defs vrrp_strict"),
    ("use_vmac_addr", "xlb does not use a virtual MAC"),
    ("use_ipvlan", "xlb does not create ipvlan interfaces"),
    ("vrf", "xlb does not bind instances to a VRF"),
    (
        "mcast_dst_ip",
        "xlb sends adverts to global_defs vrrp_mcast_group4 / vrrp_mcast_group6",
    ),
    ("track_src_ip", "not configurable in xlb"),
    (
        "old_unicast_checksum",
        "xlb speaks the standard checksum only (keepalived before 1.3.6 did not)",
    ),
];

const VS: Spec = &[
    ("delay_loop", "delay_loop", K::Num),
    ("protocol", "protocol", K::Str),
    ("ops", "ops", K::Flag),
    ("hysteresis", "hysteresis", K::Num),
    ("quorum", "quorum", K::Num),
    ("quorum_up", "quorum_up", K::Notify),
    ("quorum_down", "quorum_down", K::Notify),
    ("sorry_server_inhibit", "sorry_server_inhibit", K::Flag),
    ("inhibit_on_failure", "inhibit_on_failure", K::Flag),
    ("alpha", "alpha", K::Flag),
    ("omega", "omega", K::Flag),
    ("ha_suspend", "ha_suspend", K::Flag),
    ("smtp_alert", "smtp_alert", K::Flag),
    ("virtualhost", "virtualhost", K::Str),
    ("connect_timeout", "connect_timeout", K::Num),
    ("retry", "retry", K::Num),
    ("nb_get_retry", "retry", K::Num),
    ("delay_before_retry", "delay_before_retry", K::Num),
    ("warmup", "warmup", K::Num),
    // Not keepalived's: xlb's, accepted so a service without VRRP can say where XDP
    // attaches.
    ("interface", "interface", K::Str),
    ("sh-port", "sh_port", K::Flag),
    ("sh_port", "sh_port", K::Flag),
    ("mh-port", "mh_port", K::Flag),
    ("mh_port", "mh_port", K::Flag),
    ("sh-fallback", "sh_fallback", K::Flag),
    ("sh_fallback", "sh_fallback", K::Flag),
    ("mh-fallback", "mh_fallback", K::Flag),
    ("mh_fallback", "mh_fallback", K::Flag),
];

const VS_REFUSED: Reasons = &[
    (
        "persistence_engine",
        "xlb keeps persistence by client address only",
    ),
    (
        "flag-1",
        "write sh-fallback / mh-fallback (xlb's name for it) instead",
    ),
    (
        "flag-2",
        "write sh-port / mh-port (xlb's name for it) instead",
    ),
    ("flag-3", "IPVS scheduler flag 3 has no xlb equivalent"),
];

const RS: Spec = &[
    ("weight", "weight", K::Num),
    ("inhibit_on_failure", "inhibit_on_failure", K::Flag),
    ("alpha", "alpha", K::Flag),
    ("notify_up", "notify_up", K::Notify),
    ("notify_down", "notify_down", K::Notify),
    ("smtp_alert", "smtp_alert", K::Flag),
    ("virtualhost", "virtualhost", K::Str),
    ("connect_timeout", "connect_timeout", K::Num),
    ("retry", "retry", K::Num),
    ("nb_get_retry", "retry", K::Num),
    ("delay_before_retry", "delay_before_retry", K::Num),
    ("warmup", "warmup", K::Num),
    ("delay_loop", "delay_loop", K::Num),
];

const RS_REFUSED: Reasons = &[
    (
        "uthreshold",
        "a connection limit: xlb schedules in XDP without connection counts",
    ),
    (
        "lthreshold",
        "a connection limit: xlb schedules in XDP without connection counts",
    ),
    ("tunnel_encap", "xlb forwards in DR mode only"),
    ("tunnel_port", "xlb forwards in DR mode only"),
    ("tunnel_nocsum", "xlb forwards in DR mode only"),
    ("tunnel_csum", "xlb forwards in DR mode only"),
    ("tunnel_remcsum", "xlb forwards in DR mode only"),
    ("BFD_CHECK", "xlb has no BFD: use TCP_CHECK or PING_CHECK"),
    (
        "FILE_CHECK",
        "xlb has no FILE_CHECK: use a MISC_CHECK testing the file",
    ),
];

/// keepalived checker block, xlb key.
const CHECKERS: &[(&str, &str)] = &[
    ("TCP_CHECK", "tcp_check"),
    ("HTTP_GET", "http_get"),
    ("SSL_GET", "ssl_get"),
    ("MISC_CHECK", "misc_check"),
    ("DNS_CHECK", "dns_check"),
    ("UDP_CHECK", "udp_check"),
    ("PING_CHECK", "ping_check"),
    ("ICMP_CHECK", "ping_check"),
    ("SMTP_CHECK", "smtp_check"),
];

/// Options of every checker (xlb refuses, at their line, the ones a kind lacks).
const CHECK: Spec = &[
    ("connect_ip", "connect_ip", K::Str),
    ("connect_port", "connect_port", K::Num),
    ("bindto", "bindto", K::Str),
    ("bind_port", "bind_port", K::Num),
    ("bind_if", "bind_if", K::Str),
    ("fwmark", "fwmark", K::Num),
    ("connect_timeout", "connect_timeout", K::Num),
    ("retry", "retry", K::Num),
    ("nb_get_retry", "retry", K::Num),
    ("delay_before_retry", "delay_before_retry", K::Num),
    ("warmup", "warmup", K::Num),
    ("delay_loop", "delay_loop", K::Num),
    ("alpha", "alpha", K::Flag),
    ("log_all_failures", "log_all_failures", K::Flag),
    // HTTP_GET / SSL_GET
    ("http_protocol", "http_protocol", K::Str),
    ("virtualhost", "virtualhost", K::Str),
    ("fast_recovery", "fast_recovery", K::Flag),
    ("enable_sni", "enable_sni", K::Flag),
    ("sni_name", "sni_name", K::Str),
    ("tls_compliant", "tls_compliant", K::Flag),
    // MISC_CHECK
    ("misc_path", "misc_path", K::Cmd),
    ("misc_timeout", "misc_timeout", K::Num),
    ("misc_dynamic", "misc_dynamic", K::Flag),
    ("user", "user", K::Words),
    // DNS_CHECK
    ("type", "type", K::Str),
    ("name", "name", K::Str),
    // UDP_CHECK
    ("payload", "payload", K::Str),
    ("min_reply_length", "min_reply_length", K::Num),
    ("max_reply_length", "max_reply_length", K::Num),
    // SMTP_CHECK
    ("helo_name", "helo_name", K::Str),
];

const URL: Spec = &[
    ("path", "path", K::Str),
    ("digest", "digest", K::Str),
    ("virtualhost", "virtualhost", K::Str),
    ("regex", "regex", K::Str),
    ("regex_no_match", "regex_no_match", K::Flag),
];

/// A virtual server on its way out.
struct VsOut {
    table: Table,
    loc: Loc,
    ip: IpAddr,
    port: u16,
}

/// One `virtual_server_group` member.
#[derive(Clone)]
struct GroupMember {
    ip: IpAddr,
    port: u16,
    loc: Loc,
}

struct Cx<'d> {
    d: &'d mut Diagnostics,
    global: Table,
    scripts: Table,
    instances: Vec<Elem>,
    servers: Vec<VsOut>,
    groups: HashMap<String, Option<Vec<GroupMember>>>,
    default_interface: Option<(String, Loc)>,
}

/// Converts the top-level statements; problems go to `d`.
pub fn convert(nodes: &[Node], d: &mut Diagnostics) -> Table {
    let mut cx = Cx {
        d,
        global: Table::default(),
        scripts: Table::default(),
        instances: Vec::new(),
        servers: Vec::new(),
        groups: HashMap::new(),
        default_interface: None,
    };
    for n in nodes
        .iter()
        .filter(|n| n.keyword() == "virtual_server_group")
    {
        cx.vs_group(n);
    }
    for n in nodes {
        cx.top(n);
    }
    cx.finish()
}

fn parse_num(s: &str) -> Option<V> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(V::Int(i));
    }
    // Rust's float syntax is wider than keepalived's strtod in places that do not
    // matter here (`inf`, `nan` are refused below).
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && s.bytes().any(|b| b.is_ascii_digit()) => Some(V::Float(f)),
        _ => None,
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" => Some(true),
        "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

/// Whether `prefix` of `net` holds `ip`.
fn in_subnet(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// A command for `sh -c`: words joined, those with blanks single-quoted.
fn shell_join(words: &[String]) -> String {
    if words.len() == 1 {
        return words[0].clone();
    }
    words
        .iter()
        .map(|w| {
            if w.is_empty()
                || w.contains(|c: char| c.is_whitespace() || "'\"$`\\;&|<>()*?".contains(c))
            {
                format!("'{}'", w.replace('\'', r"'\''"))
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Cx<'_> {
    // ---- generic helpers ----------------------------------------------------------

    fn err(&mut self, n: &Node, msg: impl Into<String>) {
        self.d.error(&n.loc, msg);
    }

    fn warn(&mut self, n: &Node, msg: impl Into<String>) {
        self.d.warning(&n.loc, msg);
    }

    /// Exactly one argument.
    fn one<'n>(&mut self, n: &'n Node) -> Option<&'n str> {
        match n.args() {
            [] => {
                self.err(n, format!("`{}` needs a value", n.keyword()));
                None
            }
            [w] => Some(&w.text),
            [w, extra, ..] => {
                self.err(
                    n,
                    format!(
                        "unexpected `{}` after `{} {}`: one value expected",
                        extra.text,
                        n.keyword(),
                        w.text
                    ),
                );
                None
            }
        }
    }

    fn value(&mut self, k: K, n: &Node) -> Option<V> {
        if n.block.is_some() {
            self.err(n, format!("`{}` takes no {{ }} block", n.keyword()));
            return None;
        }
        let args: Vec<String> = n.args().iter().map(|w| w.text.clone()).collect();
        match k {
            K::Num => {
                let s = self.one(n)?;
                let v = parse_num(s);
                if v.is_none() {
                    self.err(n, format!("`{}`: {s:?} is not a number", n.keyword()));
                }
                v
            }
            K::Str => self.one(n).map(|s| V::Str(s.to_owned())),
            K::Flag => match n.args() {
                [] => Some(V::Bool(true)),
                [w] => {
                    let b = bool_word(&w.text);
                    if b.is_none() {
                        self.err(
                            n,
                            format!(
                                "`{}` takes no value, or true/false (on/off, yes/no), not {:?}",
                                n.keyword(),
                                w.text
                            ),
                        );
                    }
                    b.map(V::Bool)
                }
                _ => {
                    self.err(n, format!("`{}` takes at most one value", n.keyword()));
                    None
                }
            },
            K::Words => {
                if args.is_empty() {
                    self.err(n, format!("`{}` needs a value", n.keyword()));
                    return None;
                }
                Some(V::Str(args.join(" ")))
            }
            K::Cmd => {
                if args.is_empty() {
                    self.err(n, format!("`{}` needs a command", n.keyword()));
                    return None;
                }
                if args.len() > 1 {
                    self.warn(
                        n,
                        format!(
                            "`{}`: keepalived 2 runs only {:?} (the first word; quote the \
                             command to pass arguments); converted as the whole line {:?}",
                            n.keyword(),
                            args[0],
                            shell_join(&args)
                        ),
                    );
                }
                Some(V::Str(shell_join(&args)))
            }
            K::Notify => match args.as_slice() {
                [] => {
                    self.err(n, format!("`{}` needs a command", n.keyword()));
                    None
                }
                [cmd] => Some(V::Str(cmd.clone())),
                [cmd, user @ ..] => {
                    self.err(
                        n,
                        format!(
                            "`{}`: keepalived runs {cmd:?} as user/group {:?}; xlb runs \
                             these commands as global_defs script_user: drop the user, or \
                             quote the whole command if {:?} are arguments (`{} \"{}\"`)",
                            n.keyword(),
                            user.join(" "),
                            user.join(" "),
                            n.keyword(),
                            args.join(" ")
                        ),
                    );
                    None
                }
            },
        }
    }

    /// Sets `key`, warning when a keyword sets it again.
    fn set(&mut self, t: &mut Table, key: &str, v: V, n: &Node) {
        if let Some(old) = t.set(key, v, &n.loc) {
            self.warn(
                n,
                format!(
                    "`{}` overrides the value set at {old} (the last one counts, as in \
                     keepalived)",
                    n.keyword()
                ),
            );
        }
    }

    /// Handles `n` if `spec` lists its keyword.
    fn simple(&mut self, spec: Spec, n: &Node, t: &mut Table) -> bool {
        let Some(&(_, key, k)) = spec.iter().find(|(kw, _, _)| *kw == n.keyword()) else {
            return false;
        };
        if let Some(v) = self.value(k, n) {
            self.set(t, key, v, n);
        }
        true
    }

    /// Warns and drops `n` if `list` names its keyword.
    fn ignored(&mut self, list: Reasons, n: &Node) -> bool {
        let Some((_, why)) = list.iter().find(|(kw, _)| *kw == n.keyword()) else {
            return false;
        };
        self.warn(n, format!("`{}` ignored: {why}", n.keyword()));
        true
    }

    /// Refuses `n` if `list` names its keyword.
    fn refused(&mut self, list: Reasons, n: &Node) -> bool {
        let Some((_, why)) = list.iter().find(|(kw, _)| *kw == n.keyword()) else {
            return false;
        };
        self.err(n, format!("`{}` is not supported: {why}", n.keyword()));
        true
    }

    fn unknown(&mut self, n: &Node, block: &str) {
        self.err(
            n,
            format!(
                "`{}` in {block}: not a keyword xlb knows, or a keepalived keyword xlb has \
                 no equivalent for",
                n.keyword()
            ),
        );
    }

    /// The block's children, with one-line blocks (`url { path / status_code 200 }`)
    /// split at each keyword of `keywords` (keepalived reads one keyword per line).
    fn lines(&mut self, parent: &Node, keywords: &[&str]) -> Vec<Node> {
        let Some(children) = &parent.block else {
            self.err(
                parent,
                format!("`{}` needs a {{ }} block", parent.display()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for n in children {
            let cut: Vec<usize> = n
                .words
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, w)| !w.quoted && keywords.contains(&w.text.as_str()))
                .map(|(i, _)| i)
                .collect();
            if !n.inline || cut.is_empty() {
                out.push(n.clone());
                continue;
            }
            self.warn(
                n,
                format!(
                    "several keywords on one line (`{}`): keepalived reads one keyword per \
                     line; converted as one line each",
                    n.display()
                ),
            );
            let mut start = 0;
            for &end in cut.iter().chain(std::iter::once(&n.words.len())) {
                let last = end == n.words.len();
                out.push(Node {
                    loc: n.loc.clone(),
                    words: n.words[start..end].to_vec(),
                    inline: false,
                    block: if last { n.block.clone() } else { None },
                });
                start = end;
            }
        }
        out
    }

    /// The entries of a value block: the words of each line.
    fn entries(&mut self, parent: &Node) -> Vec<(Loc, Vec<String>)> {
        self.entries_after(parent, 0)
    }

    /// [`Self::entries`] of a block whose keyword takes `nargs` arguments.
    fn entries_after(&mut self, parent: &Node, nargs: usize) -> Vec<(Loc, Vec<String>)> {
        if parent.args().len() > nargs {
            self.err(
                parent,
                format!(
                    "unexpected `{}` after `{}`",
                    parent.args()[nargs].text,
                    parent.keyword()
                ),
            );
        }
        let Some(children) = &parent.block else {
            self.err(
                parent,
                format!("`{}` needs a {{ }} block", parent.keyword()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for n in children {
            if n.block.is_some() {
                self.err(n, format!("unexpected block in `{}`", parent.keyword()));
                continue;
            }
            out.push((
                n.loc.clone(),
                n.words.iter().map(|w| w.text.clone()).collect(),
            ));
        }
        out
    }

    fn keywords(spec: Spec, extra: &[&'static str]) -> Vec<&'static str> {
        spec.iter()
            .map(|(k, _, _)| *k)
            .chain(extra.iter().copied())
            .collect()
    }

    // ---- top level ------------------------------------------------------------------

    fn top(&mut self, n: &Node) {
        match n.keyword() {
            "global_defs" => self.global_defs(n),
            "vrrp_script" => self.vrrp_script(n),
            "vrrp_instance" => self.vrrp_instance(n),
            "virtual_server" => self.virtual_server(n),
            "virtual_server_group" => {} // read first
            "vrrp_sync_group" => self.err(
                n,
                "vrrp_sync_group is not supported: xlb moves each vrrp_instance on its \
                 own; put the addresses that must move together in one vrrp_instance \
                 (virtual_ipaddress_excluded takes those of the other family)",
            ),
            "static_ipaddress" | "static_routes" | "static_rules" => self.err(
                n,
                format!(
                    "`{}` is not supported: xlb does not configure static addresses or \
                     routes; configure them with the system's network configuration",
                    n.keyword()
                ),
            ),
            "vrrp_track_file" | "track_file" => self.err(
                n,
                format!(
                    "`{}` is not supported: xlb tracks scripts and interfaces; replace it \
                     by a vrrp_script that tests the file",
                    n.keyword()
                ),
            ),
            "vrrp_track_process" | "track_process" => self.err(
                n,
                format!(
                    "`{}` is not supported: replace it by a vrrp_script (e.g. `pgrep -x NAME`)",
                    n.keyword()
                ),
            ),
            "bfd_instance" => self.err(n, "bfd_instance is not supported: xlb has no BFD"),
            "garp_group" => self.warn(
                n,
                "`garp_group` ignored: xlb sends gratuitous ARP / NA with the \
                 vrrp_garp_master_* settings",
            ),
            "interface_up_down_delays" => self.warn(
                n,
                "`interface_up_down_delays` ignored: xlb acts on link changes at once",
            ),
            "linkbeat_interfaces" => self.warn(
                n,
                "`linkbeat_interfaces` ignored: xlb reads link state from netlink",
            ),
            "net_namespace" | "namespace_with_ipsets" | "instance" | "use_pid_dir" => self.err(
                n,
                format!("`{}` is not supported at the top level by xlb", n.keyword()),
            ),
            _ => self.unknown(n, "the top level"),
        }
    }

    fn global_defs(&mut self, n: &Node) {
        let mut g = std::mem::take(&mut self.global);
        if g.comment.is_none() {
            g.comment = Some(format!("global_defs ({})", n.loc));
        }
        let words = Self::keywords(
            GLOBAL,
            &["smtp_server", "notification_email", "lvs_timeouts"],
        );
        for c in self.lines(n, &words) {
            if self.simple(GLOBAL, &c, &mut g)
                || self.ignored(GLOBAL_IGNORED, &c)
                || self.refused(GLOBAL_REFUSED, &c)
            {
                continue;
            }
            match c.keyword() {
                "notification_email" => {
                    for (loc, words) in self.entries(&c) {
                        for w in words {
                            g.push("notification_email", V::Str(w), &c.loc, &loc);
                        }
                    }
                }
                "smtp_server" => {
                    let args: Vec<&str> = c.args().iter().map(|w| w.text.as_str()).collect();
                    let v = match args.as_slice() {
                        [host] => Some(host.to_string()),
                        [host, port] if port.parse::<u16>().is_ok() => {
                            Some(match host.parse::<IpAddr>() {
                                Ok(IpAddr::V6(a)) => format!("[{a}]:{port}"),
                                _ => format!("{host}:{port}"),
                            })
                        }
                        _ => {
                            self.err(&c, "smtp_server takes HOST [PORT]");
                            None
                        }
                    };
                    if let Some(v) = v {
                        self.set(&mut g, "smtp_server", V::Str(v), &c);
                    }
                }
                "notify_fifo" | "vrrp_notify_fifo" | "lvs_notify_fifo" => {
                    let Some(first) = c.args().first() else {
                        self.err(&c, format!("`{}` needs a path", c.keyword()));
                        continue;
                    };
                    if c.args().len() > 1 {
                        self.warn(
                            &c,
                            format!(
                                "`{}`: the owner of the FIFO ({}) is ignored: xlb creates \
                                 it owned by its own user",
                                c.keyword(),
                                c.args()[1..]
                                    .iter()
                                    .map(|w| w.text.as_str())
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            ),
                        );
                    }
                    let key = c.keyword().to_owned();
                    self.set(&mut g, &key, V::Str(first.text.clone()), &c);
                }
                "lvs_timeouts" => {
                    // `lvs_timeouts tcp 7200 tcpfin 120 udp 300`, any subset, any order.
                    let args: Vec<&str> = c.args().iter().map(|w| w.text.as_str()).collect();
                    let mut t = Table::default();
                    for pair in args.chunks(2) {
                        match pair {
                            [k @ ("tcp" | "tcpfin" | "udp"), v] => match parse_num(v) {
                                Some(n) => {
                                    t.set(k, n, &c.loc);
                                }
                                None => {
                                    self.err(&c, format!("lvs_timeouts {k}: {v:?} is not a number"))
                                }
                            },
                            [k, _] => self.err(
                                &c,
                                format!("lvs_timeouts: unknown protocol {k:?} (tcp, tcpfin, udp)"),
                            ),
                            _ => self.err(&c, "lvs_timeouts takes pairs: tcp T tcpfin T udp T"),
                        }
                    }
                    if !t.is_empty() {
                        self.set(&mut g, "lvs_timeouts", V::Inline(t), &c);
                    }
                }
                "default_interface" => {
                    if let Some(v) = self.one(&c) {
                        self.default_interface = Some((v.to_owned(), c.loc.clone()));
                    }
                }
                _ => self.unknown(&c, "global_defs"),
            }
        }
        self.global = g;
    }

    fn vrrp_script(&mut self, n: &Node) {
        let Some(name) = self.one(n).map(str::to_owned) else {
            return;
        };
        let mut t = Table {
            comment: Some(format!("vrrp_script {name} ({})", n.loc)),
            ..Table::default()
        };
        for c in self.lines(n, &Self::keywords(SCRIPT, &["weight"])) {
            if self.simple(SCRIPT, &c, &mut t) {
                continue;
            }
            match c.keyword() {
                "weight" => self.weight(&c, &mut t),
                _ => self.unknown(&c, "vrrp_script"),
            }
        }
        if t.get("script").is_none() {
            self.err(n, format!("vrrp_script {name} has no `script`"));
        }
        if self.scripts.get(&name).is_some() {
            self.err(n, format!("vrrp_script {name} is defined twice"));
            return;
        }
        self.scripts.set(&name, V::Section(t), &n.loc);
    }

    /// `weight N [reverse|noreverse]`.
    fn weight(&mut self, n: &Node, t: &mut Table) {
        let args: Vec<&str> = n.args().iter().map(|w| w.text.as_str()).collect();
        let (w, rest) = match args.split_first() {
            Some((w, rest)) => (*w, rest),
            None => {
                self.err(n, "`weight` needs a number");
                return;
            }
        };
        let Ok(w) = w.parse::<i64>() else {
            self.err(n, format!("`weight`: {w:?} is not an integer"));
            return;
        };
        let reverse = match rest {
            [] | ["noreverse"] => false,
            ["reverse"] => true,
            _ => {
                self.err(n, "`weight` takes N [reverse|noreverse]");
                return;
            }
        };
        self.set(t, "weight", V::Int(w), n);
        if reverse {
            self.set(t, "reverse", V::Bool(true), n);
        }
    }

    fn vrrp_instance(&mut self, n: &Node) {
        let Some(name) = self.one(n).map(str::to_owned) else {
            return;
        };
        let mut t = Table {
            comment: Some(format!("vrrp_instance {name} ({})", n.loc)),
            ..Table::default()
        };
        t.set("name", V::Str(name.clone()), &n.loc);
        for c in self.lines(n, &Self::keywords(INSTANCE, INSTANCE_BLOCKS)) {
            if self.simple(INSTANCE, &c, &mut t)
                || self.ignored(INSTANCE_IGNORED, &c)
                || self.refused(INSTANCE_REFUSED, &c)
            {
                continue;
            }
            match c.keyword() {
                "preempt" => {
                    if c.args().is_empty() && c.block.is_none() {
                        self.set(&mut t, "nopreempt", V::Bool(false), &c);
                    } else {
                        self.err(&c, "`preempt` takes no value");
                    }
                }
                "accept" | "no_accept" => {
                    if c.args().is_empty() && c.block.is_none() {
                        self.set(&mut t, "accept", V::Bool(c.keyword() == "accept"), &c);
                    } else {
                        self.err(&c, format!("`{}` takes no value", c.keyword()));
                    }
                }
                "authentication" => self.authentication(&c, &mut t),
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    let key = c.keyword().to_owned();
                    for (loc, words) in self.entries(&c) {
                        t.push(&key, V::Str(words.join(" ")), &c.loc, &loc);
                    }
                    if t.get(&key).is_none() {
                        t.set(&key, V::Array(Vec::new()), &c.loc);
                    }
                }
                "unicast_peer" => {
                    for (loc, words) in self.entries(&c) {
                        let mut it = words.iter().peekable();
                        while let Some(w) = it.next() {
                            match w.as_str() {
                                "min_ttl" | "max_ttl" => {
                                    let v = it.next().cloned().unwrap_or_default();
                                    self.d.warning(
                                        &loc,
                                        format!(
                                            "unicast_peer `{w} {v}` ignored: xlb accepts \
                                             unicast adverts with TTL 255 only, as the RFCs say"
                                        ),
                                    );
                                }
                                _ => t.push("unicast_peer", V::Str(w.clone()), &c.loc, &loc),
                            }
                        }
                    }
                }
                "track_interface" | "track_script" => {
                    let key = c.keyword().to_owned();
                    for (loc, words) in self.entries(&c) {
                        t.push(&key, V::Str(words.join(" ")), &c.loc, &loc);
                    }
                }
                _ => self.unknown(&c, "vrrp_instance"),
            }
        }
        self.instances.push(Elem {
            value: V::Section(t),
            loc: n.loc.clone(),
        });
    }

    fn authentication(&mut self, n: &Node, t: &mut Table) {
        let mut a = Table::default();
        for c in self.lines(n, &["auth_type", "auth_pass"]) {
            match c.keyword() {
                "auth_type" => {
                    if let Some(v) = self.value(K::Str, &c) {
                        self.set(&mut a, "auth_type", v, &c);
                    }
                }
                "auth_pass" => {
                    let Some(mut p) = self.value(K::Str, &c) else {
                        continue;
                    };
                    if let V::Str(s) = &p {
                        if s.chars().count() > 8 && s.is_ascii() {
                            let short: String = s.chars().take(8).collect();
                            self.warn(
                                &c,
                                format!(
                                    "auth_pass is longer than 8 characters: keepalived uses \
                                     the first 8 ({short:?}), and so does the converted file"
                                ),
                            );
                            p = V::Str(short);
                        }
                    }
                    self.set(&mut a, "auth_pass", p, &c);
                }
                _ => self.unknown(&c, "authentication"),
            }
        }
        self.set(t, "authentication", V::Inline(a), n);
    }

    // ---- virtual servers ------------------------------------------------------------

    fn vs_group(&mut self, n: &Node) {
        let Some(name) = self.one(n).map(str::to_owned) else {
            return;
        };
        let mut members = Vec::new();
        let mut ok = true;
        for (loc, words) in self.entries_after(n, 1) {
            match words.as_slice() {
                [first, ..] if first == "fwmark" => {
                    self.d.error(
                        &loc,
                        "fwmark entries are not supported: xlb matches packets by VIP, port \
                         and protocol",
                    );
                    ok = false;
                }
                [addr, port] => {
                    let Ok(port) = port.parse::<u16>() else {
                        self.d.error(&loc, format!("{port:?} is not a port"));
                        ok = false;
                        continue;
                    };
                    match expand_range(addr) {
                        Some(ips) => members.extend(ips.into_iter().map(|ip| GroupMember {
                            ip,
                            port,
                            loc: loc.clone(),
                        })),
                        None => {
                            self.d.error(
                                &loc,
                                format!(
                                    "{addr:?} is not an address or an address range (A.B.C.D-E)"
                                ),
                            );
                            ok = false;
                        }
                    }
                }
                _ => {
                    self.d.error(
                        &loc,
                        "a virtual_server_group entry is `ADDRESS[-LAST] PORT`",
                    );
                    ok = false;
                }
            }
        }
        if self.groups.contains_key(&name) {
            self.err(n, format!("virtual_server_group {name} is defined twice"));
        }
        self.groups.insert(name, ok.then_some(members));
    }

    fn virtual_server(&mut self, n: &Node) {
        let args: Vec<&str> = n.args().iter().map(|w| w.text.as_str()).collect();
        let members = match args.as_slice() {
            ["fwmark", ..] => {
                return self.err(
                    n,
                    "`virtual_server fwmark` is not supported: xlb matches packets by VIP, \
                     port and protocol; write one virtual_server IP PORT per service",
                );
            }
            ["group", name] => match self.groups.get(*name) {
                Some(Some(m)) => m.clone(),
                Some(None) => return, // already reported
                None => {
                    return self.err(n, format!("there is no virtual_server_group {name}"));
                }
            },
            [ip, port] => {
                let (Some(ip), Ok(port)) = (parse_ip(ip), port.parse::<u16>()) else {
                    return self.err(
                        n,
                        format!("`virtual_server {ip} {port}`: expected an IP address and a port"),
                    );
                };
                vec![GroupMember {
                    ip,
                    port,
                    loc: n.loc.clone(),
                }]
            }
            _ => {
                return self.err(n, "virtual_server takes IP PORT (or `group NAME`)");
            }
        };
        let body = self.vs_body(n);
        for m in members {
            let mut t = Table {
                comment: Some(if m.loc == n.loc {
                    format!("virtual_server {} {} ({})", m.ip, m.port, n.loc)
                } else {
                    format!(
                        "virtual_server {} {} ({}, group member at {})",
                        m.ip, m.port, n.loc, m.loc
                    )
                }),
                ..Table::default()
            };
            t.set("ip", V::Str(m.ip.to_string()), &m.loc);
            t.set("port", V::Int(m.port.into()), &m.loc);
            t.entries.extend(body.entries.iter().cloned());
            let mut vs = VsOut {
                table: t,
                loc: n.loc.clone(),
                ip: m.ip,
                port: m.port,
            };
            self.dr_ports(&mut vs);
            self.servers.push(vs);
        }
    }

    fn vs_body(&mut self, n: &Node) -> Table {
        let mut t = Table::default();
        let extra = [
            "lb_algo",
            "lvs_sched",
            "lb_kind",
            "lvs_method",
            "persistence_timeout",
            "persistence_granularity",
            "sorry_server",
            "sorry_server_lvs_method",
            "real_server",
        ];
        let mut kind_seen = false;
        let mut algo_seen = false;
        let mut all_rs_dr = true;
        let mut rs_count = 0;
        for c in self.lines(n, &Self::keywords(VS, &extra)) {
            if self.simple(VS, &c, &mut t) || self.refused(VS_REFUSED, &c) {
                continue;
            }
            match c.keyword() {
                "lb_algo" | "lvs_sched" => {
                    algo_seen = true;
                    if let Some(v) = self.lb_algo(&c) {
                        self.set(&mut t, "lb_algo", V::Str(v), &c);
                    }
                }
                "lb_kind" | "lvs_method" => {
                    kind_seen = true;
                    if self.dr_only(&c) {
                        self.set(&mut t, "lb_kind", V::Str("DR".into()), &c);
                    }
                }
                "persistence_timeout" => {
                    let v = if c.args().is_empty() && c.block.is_none() {
                        Some(V::Int(360)) // keepalived's value for the bare keyword
                    } else {
                        self.value(K::Num, &c)
                    };
                    if let Some(v) = v {
                        self.set(&mut t, "persistence_timeout", v, &c);
                    }
                }
                "persistence_granularity" => {
                    if let Some(g) = self.one(&c) {
                        if !matches!(g, "255.255.255.255" | "32" | "/32" | "128" | "/128") {
                            self.err(
                                &c,
                                format!(
                                    "persistence_granularity {g} is not supported: xlb keeps \
                                     persistence per client address (255.255.255.255)"
                                ),
                            );
                        }
                    }
                }
                "sorry_server" => {
                    let args: Vec<&str> = c.args().iter().map(|w| w.text.as_str()).collect();
                    let mut s = Table::default();
                    match args.as_slice() {
                        [ip] => {
                            s.set("ip", V::Str(ip.to_string()), &c.loc);
                        }
                        [ip, port] => {
                            s.set("ip", V::Str(ip.to_string()), &c.loc);
                            match port.parse::<i64>() {
                                Ok(p) => {
                                    s.set("port", V::Int(p), &c.loc);
                                }
                                Err(_) => self.err(&c, format!("{port:?} is not a port")),
                            }
                        }
                        _ => self.err(&c, "sorry_server takes IP [PORT]"),
                    }
                    if !s.is_empty() {
                        self.set(&mut t, "sorry_server", V::Inline(s), &c);
                    }
                }
                "sorry_server_lvs_method" => {
                    self.dr_only(&c);
                }
                "real_server" => {
                    rs_count += 1;
                    let (rs, dr) = self.real_server(&c);
                    all_rs_dr &= dr;
                    if let Some(rs) = rs {
                        t.push("real_server", V::Section(rs), &c.loc, &c.loc);
                    }
                }
                _ => self.unknown(&c, "virtual_server"),
            }
        }
        if !kind_seen {
            if rs_count == 0 || !all_rs_dr {
                self.warn(
                    n,
                    "no lb_kind: keepalived's default is NAT, xlb forwards in DR mode only; \
                     converted as DR: each real server must hold the VIP on a non-ARPing \
                     interface (`xlb realserver setup --vip VIP`)",
                );
            }
            t.set("lb_kind", V::Str("DR".into()), &n.loc);
        }
        if !algo_seen {
            self.warn(
                n,
                "no lb_algo: keepalived's default is wlc, which counts connections and has \
                 no XDP equivalent; converted to wrr",
            );
            t.set("lb_algo", V::Str("wrr".into()), &n.loc);
        }
        t
    }

    fn lb_algo(&mut self, n: &Node) -> Option<String> {
        let algo = self.one(n)?.to_ascii_lowercase();
        match algo.as_str() {
            "rr" | "wrr" | "sh" | "mh" => Some(algo),
            "lc" | "wlc" | "sed" | "nq" | "twos" | "ovf" => {
                self.warn(
                    n,
                    format!(
                        "lb_algo {algo} counts active connections per real server, which \
                         IPVS does and xlb's XDP scheduler cannot: converted to wrr (the \
                         same weights, without connection counts)"
                    ),
                );
                Some("wrr".into())
            }
            "lblc" | "lblcr" => {
                self.warn(
                    n,
                    format!(
                        "lb_algo {algo} (locality-based least-connection) counts \
                         connections, which xlb's XDP scheduler cannot: converted to wrr \
                         (sh or mh keep a client on one server, if that is what matters)"
                    ),
                );
                Some("wrr".into())
            }
            "dh" | "fo" => {
                self.err(
                    n,
                    format!(
                        "lb_algo {algo} has no xlb equivalent (xlb schedules with rr, wrr, \
                         sh or mh): choose one of those"
                    ),
                );
                None
            }
            _ => {
                self.err(
                    n,
                    format!("unknown lb_algo {algo:?}: xlb schedules with rr, wrr, sh or mh"),
                );
                None
            }
        }
    }

    /// `lb_kind` / `lvs_method`: DR, or an error naming the line.
    fn dr_only(&mut self, n: &Node) -> bool {
        let Some(kind) = self.one(n).map(str::to_ascii_uppercase) else {
            return false;
        };
        match kind.as_str() {
            "DR" => true,
            "NAT" | "TUN" => {
                self.err(
                    n,
                    format!(
                        "`{} {kind}` cannot be converted: xlb forwards in DR mode only \
                         (it rewrites MAC addresses; the real servers answer clients \
                         directly and must hold the VIP, see `xlb realserver setup`)",
                        n.keyword()
                    ),
                );
                false
            }
            _ => {
                self.err(
                    n,
                    format!(
                        "unknown `{}` {kind:?}: xlb forwards in DR mode",
                        n.keyword()
                    ),
                );
                false
            }
        }
    }

    /// A `real_server` block, and whether it said nothing but DR about forwarding.
    fn real_server(&mut self, n: &Node) -> (Option<Table>, bool) {
        let args: Vec<&str> = n.args().iter().map(|w| w.text.as_str()).collect();
        let mut t = Table {
            comment: Some(format!("real_server {} ({})", args.join(" "), n.loc)),
            ..Table::default()
        };
        match args.as_slice() {
            [ip] => {
                t.set("ip", V::Str(ip.trim_matches(['[', ']']).to_owned()), &n.loc);
            }
            [ip, port] => {
                t.set("ip", V::Str(ip.trim_matches(['[', ']']).to_owned()), &n.loc);
                match port.parse::<i64>() {
                    Ok(p) => {
                        t.set("port", V::Int(p), &n.loc);
                    }
                    Err(_) => self.err(n, format!("real_server: {port:?} is not a port")),
                }
            }
            _ => {
                self.err(n, "real_server takes IP [PORT]");
                return (None, false);
            }
        }
        let mut dr = false;
        let extra: Vec<&str> = CHECKERS
            .iter()
            .map(|(k, _)| *k)
            .chain(["lb_kind", "lvs_method"])
            .collect();
        for c in self.lines(n, &Self::keywords(RS, &extra)) {
            if self.simple(RS, &c, &mut t) || self.refused(RS_REFUSED, &c) {
                continue;
            }
            if let Some((_, key)) = CHECKERS.iter().find(|(k, _)| *k == c.keyword()) {
                if t.get(key).is_some() {
                    self.err(
                        &c,
                        format!(
                            "a second {} on this real server: xlb runs at most one checker \
                             of each kind per real server (all must pass)",
                            c.keyword()
                        ),
                    );
                    continue;
                }
                if let Some(check) = self.checker(&c) {
                    t.set(key, V::Inline(check), &c.loc);
                }
                continue;
            }
            match c.keyword() {
                "lb_kind" | "lvs_method" => dr = self.dr_only(&c),
                _ => self.unknown(&c, "real_server"),
            }
        }
        (Some(t), dr)
    }

    fn checker(&mut self, n: &Node) -> Option<Table> {
        if !n.args().is_empty() {
            self.err(
                n,
                format!("unexpected `{}` after {}", n.args()[0].text, n.keyword()),
            );
        }
        let mut t = Table::default();
        let extra = ["url", "require_reply", "host"];
        for c in self.lines(n, &Self::keywords(CHECK, &extra)) {
            if self.simple(CHECK, &c, &mut t) {
                continue;
            }
            match c.keyword() {
                "url" => {
                    let u = self.url(&c);
                    t.push("url", V::Inline(u), &c.loc, &c.loc);
                }
                "require_reply" => {
                    let v = match c.args() {
                        [] => Some(V::Bool(true)),
                        _ => self.value(K::Words, &c),
                    };
                    if let Some(v) = v {
                        self.set(&mut t, "require_reply", v, &c);
                    }
                }
                "host" => self.err(
                    &c,
                    "SMTP_CHECK `host` blocks are not supported: xlb checks the real server \
                     itself (connect_ip / connect_port select another address)",
                ),
                _ => self.unknown(&c, n.keyword()),
            }
        }
        Some(t)
    }

    fn url(&mut self, n: &Node) -> Table {
        let mut u = Table::default();
        for c in self.lines(n, &Self::keywords(URL, &["status_code"])) {
            if self.simple(URL, &c, &mut u) {
                continue;
            }
            match c.keyword() {
                "status_code" => {
                    let words: Vec<&str> = c.args().iter().map(|w| w.text.as_str()).collect();
                    let v = match words.as_slice() {
                        [] => {
                            self.err(&c, "`status_code` needs a value");
                            continue;
                        }
                        [one] => match one.parse::<i64>() {
                            Ok(code) => V::Int(code),
                            Err(_) => V::Str(one.to_string()),
                        },
                        many => V::Str(many.join(" ")),
                    };
                    self.set(&mut u, "status_code", v, &c);
                }
                "regex_options" | "regex_stack" | "regex_min_offset" | "regex_max_offset" => {
                    self.err(
                        &c,
                        format!(
                            "`{}` is not supported: xlb matches `regex` (Rust regex syntax) \
                             against the whole body",
                            c.keyword()
                        ),
                    );
                }
                _ => self.unknown(&c, "url"),
            }
        }
        if u.get("path").is_none() {
            self.err(n, "url without `path`");
        }
        u
    }

    /// DR forwards to the virtual server's port: a real server (or sorry server) on
    /// another port receives the traffic on the VIP's port anyway, while keepalived
    /// checks the written port. Converted so: the service port, checks on the old one.
    fn dr_ports(&mut self, vs: &mut VsOut) {
        if vs.port == 0 {
            return;
        }
        let vs_port = i64::from(vs.port);
        if let Some(V::Array(items)) = vs.table.get_mut("real_server") {
            for el in items.iter_mut() {
                let V::Section(rs) = &mut el.value else {
                    continue;
                };
                let Some(port_entry) = rs.entry("port").cloned() else {
                    continue;
                };
                let V::Int(p) = port_entry.value else {
                    continue;
                };
                if p == vs_port {
                    continue;
                }
                rs.set("port", V::Int(vs_port), &port_entry.loc);
                for key in [
                    "tcp_check",
                    "http_get",
                    "ssl_get",
                    "dns_check",
                    "udp_check",
                    "smtp_check",
                ] {
                    if let Some(V::Inline(c)) = rs.get_mut(key) {
                        if c.get("connect_port").is_none() {
                            c.set("connect_port", V::Int(p), &port_entry.loc);
                        }
                    }
                }
                self.d.warning(
                    &port_entry.loc,
                    format!(
                        "real_server port {p} differs from the virtual server's {vs_port}: \
                         DR forwards to port {vs_port} unchanged (as IPVS does), so the port \
                         is {vs_port} and the checks keep connecting to {p}"
                    ),
                );
            }
        }
        if let Some(V::Inline(s)) = vs.table.get_mut("sorry_server") {
            if let Some(e) = s.entry("port").cloned() {
                if e.value != V::Int(vs_port) {
                    s.remove("port");
                    self.d.warning(
                        &e.loc,
                        format!(
                            "sorry_server port differs from the virtual server's \
                             {vs_port}: DR forwards to port {vs_port} unchanged, so it is \
                             left out (the sorry server gets port {vs_port})"
                        ),
                    );
                }
            }
        }
    }

    // ---- the whole file ---------------------------------------------------------------

    fn finish(mut self) -> Table {
        if let Some((ifname, loc)) = self.default_interface.clone() {
            for el in &mut self.instances {
                if let V::Section(t) = &mut el.value {
                    if t.get("interface").is_none() {
                        t.set("interface", V::Str(ifname.clone()), &loc);
                    }
                }
            }
        }
        let owners = self.vip_owners();
        let mut servers = std::mem::take(&mut self.servers);
        for vs in &mut servers {
            if vs.table.get("interface").is_some() || owners.iter().any(|o| o.addr == vs.ip) {
                continue;
            }
            let holder = owners
                .iter()
                .filter(|o| o.prefix_len > 0 && in_subnet(o.addr, o.prefix_len, vs.ip))
                .max_by_key(|o| o.prefix_len);
            match holder {
                Some(o) => {
                    self.d.warning(
                        &vs.loc,
                        format!(
                            "{} is not a VIP of any vrrp_instance, so the service is always \
                             active (as an IPVS service is); xlb attaches it to {} because \
                             {}/{} of vrrp_instance {} holds it",
                            vs.ip, o.interface, o.addr, o.prefix_len, o.instance
                        ),
                    );
                    let loc = vs.loc.clone();
                    vs.table.set("interface", V::Str(o.interface.clone()), &loc);
                }
                None => {
                    let mut names: Vec<&str> =
                        owners.iter().map(|o| o.interface.as_str()).collect();
                    names.sort_unstable();
                    names.dedup();
                    let hint = if names.is_empty() {
                        "the interface that receives its traffic, e.g. `interface eth0`".to_owned()
                    } else {
                        format!("e.g. `interface {}`", names.join("` or `interface "))
                    };
                    self.d.error(
                        &vs.loc,
                        format!(
                            "virtual_server {} {}: {} is not a VIP of any vrrp_instance, and \
                             no vrrp_instance's subnet holds it, so xlb cannot tell where to \
                             attach: add `interface IFNAME` to this virtual_server block ({hint}), \
                             or add {} to a vrrp_instance's virtual_ipaddress",
                            vs.ip, vs.port, vs.ip, vs.ip
                        ),
                    );
                }
            }
        }

        let mut root = Table::default();
        if !self.global.is_empty() {
            let loc = self.global.entries[0].loc.clone();
            root.set("global_defs", V::Section(self.global), &loc);
        }
        if !self.scripts.is_empty() {
            let loc = self.scripts.entries[0].loc.clone();
            root.set("vrrp_script", V::Section(self.scripts), &loc);
        }
        if let Some(first) = self.instances.first() {
            let loc = first.loc.clone();
            root.set("vrrp_instance", V::Array(self.instances), &loc);
        }
        if let Some(first) = servers.first() {
            let loc = first.loc.clone();
            let items = servers
                .into_iter()
                .map(|vs| Elem {
                    value: V::Section(vs.table),
                    loc: vs.loc,
                })
                .collect();
            root.set("virtual_server", V::Array(items), &loc);
        }
        root
    }

    /// Every VIP of every instance, with the interface it lives on.
    fn vip_owners(&self) -> Vec<Owner> {
        let mut out = Vec::new();
        for el in &self.instances {
            let V::Section(t) = &el.value else { continue };
            let name = match t.get("name") {
                Some(V::Str(s)) => s.clone(),
                _ => continue,
            };
            let interface = match t.get("interface") {
                Some(V::Str(s)) => s.clone(),
                _ => continue,
            };
            for key in ["virtual_ipaddress", "virtual_ipaddress_excluded"] {
                let Some(V::Array(items)) = t.get(key) else {
                    continue;
                };
                for item in items {
                    let V::Str(raw) = &item.value else { continue };
                    if let Ok(v) = raw.parse::<VirtualIpAddress>() {
                        out.push(Owner {
                            addr: v.addr,
                            prefix_len: v.prefix_len,
                            interface: v.dev.unwrap_or_else(|| interface.clone()),
                            instance: name.clone(),
                        });
                    }
                }
            }
        }
        out
    }
}

struct Owner {
    addr: IpAddr,
    prefix_len: u8,
    interface: String,
    instance: String,
}

/// `A.B.C.D` or `A.B.C.D-E` (last byte range; for IPv6 the last group, in hex).
fn expand_range(s: &str) -> Option<Vec<IpAddr>> {
    let Some((first, last)) = s.rsplit_once('-') else {
        return parse_ip(s).map(|ip| vec![ip]);
    };
    match parse_ip(first)? {
        IpAddr::V4(a) => {
            let last: u8 = last.parse().ok()?;
            let o = a.octets();
            (last >= o[3]).then(|| {
                (o[3]..=last)
                    .map(|b| IpAddr::from([o[0], o[1], o[2], b]))
                    .collect()
            })
        }
        IpAddr::V6(a) => {
            let last = u16::from_str_radix(last, 16).ok()?;
            let mut g = a.segments();
            let start = g[7];
            (last >= start).then(|| {
                (start..=last)
                    .map(|x| {
                        g[7] = x;
                        IpAddr::from(g)
                    })
                    .collect()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_convert_helpers() {
        assert_eq!(parse_num("3"), Some(V::Int(3)));
        assert_eq!(parse_num("-20"), Some(V::Int(-20)));
        assert_eq!(parse_num("0.5"), Some(V::Float(0.5)));
        assert_eq!(parse_num("inf"), None);
        assert_eq!(parse_num("3s"), None);
        assert!(in_subnet(
            "10.0.0.0".parse().unwrap(),
            24,
            "10.0.0.77".parse().unwrap()
        ));
        assert!(!in_subnet(
            "10.0.0.0".parse().unwrap(),
            24,
            "10.0.1.1".parse().unwrap()
        ));
        assert!(in_subnet(
            "2001:db8::1".parse().unwrap(),
            64,
            "2001:db8::99".parse().unwrap()
        ));
        assert_eq!(expand_range("10.0.0.1-3").map(|v| v.len()), Some(3));
        assert_eq!(expand_range("10.0.0.5-3"), None);
        assert_eq!(shell_join(&["/x.sh".into(), "a b".into()]), "/x.sh 'a b'");
        assert_eq!(shell_join(&["/x.sh a".into()]), "/x.sh a");
    }
}
