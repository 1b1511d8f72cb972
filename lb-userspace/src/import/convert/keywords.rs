//! The keyword tables of keepalived's blocks: for each block, the keywords that carry
//! over to an xlb key with a plain value ([`KeywordRule`]), and those dropped with a
//! warning or refused with an error, each with the reason given to the user
//! ([`KeywordReason`]). Keywords that need their own code are handled by the block's
//! module.

/// How a keyword's arguments become a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ValueKind {
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

/// A keepalived keyword that becomes an xlb key with a value of one kind.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeywordRule {
    pub keepalived: &'static str,
    pub xlb: &'static str,
    pub conversion: ValueKind,
}

/// A keyword xlb keeps under keepalived's name.
const fn kept(keyword: &'static str, conversion: ValueKind) -> KeywordRule {
    renamed(keyword, keyword, conversion)
}

/// A keyword xlb spells differently (an old keepalived name, usually).
const fn renamed(
    keepalived: &'static str,
    xlb: &'static str,
    conversion: ValueKind,
) -> KeywordRule {
    KeywordRule {
        keepalived,
        xlb,
        conversion,
    }
}

/// A keepalived keyword xlb drops or refuses, and why (shown to the user).
#[derive(Debug, Clone, Copy)]
pub(super) struct KeywordReason {
    pub keepalived: &'static str,
    pub why: &'static str,
}

const fn reason(keepalived: &'static str, why: &'static str) -> KeywordReason {
    KeywordReason { keepalived, why }
}

/// A keepalived checker block and the xlb key of its table.
#[derive(Debug, Clone, Copy)]
pub(super) struct CheckerBlock {
    pub keepalived: &'static str,
    pub xlb: &'static str,
}

const fn checker(keepalived: &'static str, xlb: &'static str) -> CheckerBlock {
    CheckerBlock { keepalived, xlb }
}

/// The rule for `keyword` in `rules`.
pub(super) fn find_rule(rules: &[KeywordRule], keyword: &str) -> Option<KeywordRule> {
    rules.iter().copied().find(|r| r.keepalived == keyword)
}

/// The reason for `keyword` in `reasons`.
pub(super) fn find_reason(reasons: &[KeywordReason], keyword: &str) -> Option<&'static str> {
    reasons
        .iter()
        .find(|r| r.keepalived == keyword)
        .map(|r| r.why)
}

pub(super) const GLOBAL: &[KeywordRule] = &[
    kept("router_id", ValueKind::Str),
    renamed("lvs_id", "router_id", ValueKind::Str),
    kept("notification_email_from", ValueKind::Str),
    kept("smtp_helo_name", ValueKind::Str),
    kept("smtp_connect_timeout", ValueKind::Num),
    kept("smtp_alert", ValueKind::Flag),
    kept("vrrp_version", ValueKind::Num),
    kept("vrrp_mcast_group4", ValueKind::Str),
    kept("vrrp_mcast_group6", ValueKind::Str),
    kept("vrrp_garp_master_delay", ValueKind::Num),
    kept("vrrp_garp_master_repeat", ValueKind::Num),
    kept("vrrp_garp_master_refresh", ValueKind::Num),
    kept("vrrp_garp_master_refresh_repeat", ValueKind::Num),
    // Kept so that 0 (what xlb does) imports silently; `Config::parse` refuses any
    // other value at its line.
    kept("vrrp_garp_interval", ValueKind::Num),
    kept("vrrp_gna_interval", ValueKind::Num),
    kept("vrrp_skip_check_adv_addr", ValueKind::Flag),
    kept("vrrp_check_unicast_src", ValueKind::Flag),
    kept("vrrp_down_timer_adverts", ValueKind::Num),
    kept("vrrp_strict", ValueKind::Flag),
    kept("script_user", ValueKind::Words),
    kept("enable_script_security", ValueKind::Flag),
    kept("checker_log_all_failures", ValueKind::Flag),
    kept("notify_fifo_script", ValueKind::Notify),
    kept("vrrp_notify_fifo_script", ValueKind::Notify),
    kept("lvs_notify_fifo_script", ValueKind::Notify),
];

const SNMP: &str = "SNMP is not served by xlb (`xlb status --json` gives the state)";
const TUNING: &str = "keepalived process tuning; xlb has no such setting";

pub(super) const GLOBAL_IGNORED: &[KeywordReason] = &[
    reason("enable_traps", SNMP),
    reason("enable_snmp_vrrp", SNMP),
    reason("enable_snmp_checker", SNMP),
    reason("enable_snmp_rfc", SNMP),
    reason("enable_snmp_rfcv2", SNMP),
    reason("enable_snmp_rfcv3", SNMP),
    reason("enable_snmp_keepalived", SNMP),
    reason("snmp_socket", SNMP),
    reason("enable_dbus", "D-Bus is not served by xlb"),
    reason("enable_dbus_create_instance", "D-Bus is not served by xlb"),
    reason(
        "vrrp_iptables",
        "xlb adds no firewall rules: with vrrp_strict, keepalived without this keyword \
         would have blocked traffic to the VIPs; xlb does not",
    ),
    reason("vrrp_ipsets", "xlb adds no firewall rules"),
    reason("nftables", "xlb adds no firewall rules"),
    reason("nftables_priority", "xlb adds no firewall rules"),
    reason("nftables_counters", "xlb adds no firewall rules"),
    reason("nftables_ifindex", "xlb adds no firewall rules"),
    reason("vrrp_priority", TUNING),
    reason("checker_priority", TUNING),
    reason("bfd_priority", TUNING),
    reason("vrrp_no_swap", TUNING),
    reason("checker_no_swap", TUNING),
    reason("bfd_no_swap", TUNING),
    reason("vrrp_rt_priority", TUNING),
    reason("checker_rt_priority", TUNING),
    reason("bfd_rt_priority", TUNING),
    reason("vrrp_rlimit_rttime", TUNING),
    reason("checker_rlimit_rttime", TUNING),
    reason("bfd_rlimit_rttime", TUNING),
    reason("vrrp_cpu_affinity", TUNING),
    reason("checker_cpu_affinity", TUNING),
    reason("bfd_cpu_affinity", TUNING),
    reason("process_names", TUNING),
    reason("process_name", TUNING),
    reason("vrrp_process_name", TUNING),
    reason("checker_process_name", TUNING),
    reason("bfd_process_name", TUNING),
    reason("umask", TUNING),
    reason("use_pid_dir", TUNING),
    reason("child_wait_time", TUNING),
    reason("instance", TUNING),
    reason("random_seed", TUNING),
    reason("vrrp_netlink_cmd_rcv_bufs", TUNING),
    reason("vrrp_netlink_cmd_rcv_bufs_force", TUNING),
    reason("vrrp_netlink_monitor_rcv_bufs", TUNING),
    reason("vrrp_netlink_monitor_rcv_bufs_force", TUNING),
    reason("lvs_netlink_cmd_rcv_bufs", TUNING),
    reason("lvs_netlink_cmd_rcv_bufs_force", TUNING),
    reason("lvs_netlink_monitor_rcv_bufs", TUNING),
    reason("lvs_netlink_monitor_rcv_bufs_force", TUNING),
    reason("vrrp_rx_bufs_policy", TUNING),
    reason("vrrp_rx_bufs_multiplier", TUNING),
    reason("vrrp_startup_delay", TUNING),
    reason(
        "dynamic_interfaces",
        "xlb follows interfaces appearing and disappearing anyway",
    ),
    reason("linkbeat_use_polling", "xlb reads link state from netlink"),
    reason(
        "lvs_flush",
        "xlb owns its maps and replaces their content at start anyway",
    ),
    reason("lvs_flush_onstop", "xlb owns its maps"),
    reason(
        "vrrp_garp_lower_prio_delay",
        "xlb answers a lower-priority advert with the vrrp_garp_master_* burst",
    ),
    reason(
        "vrrp_garp_lower_prio_repeat",
        "xlb answers a lower-priority advert with the vrrp_garp_master_* burst",
    ),
    reason("vrrp_lower_prio_no_advert", "xlb follows the RFC here"),
    reason("vrrp_higher_prio_send_advert", "xlb follows the RFC here"),
    reason(
        "vrrp_min_garp",
        "use vrrp_garp_master_delay / vrrp_garp_master_repeat",
    ),
    reason("max_auto_priority", TUNING),
    reason("min_auto_priority_delay", TUNING),
    reason(
        "no_email_faults",
        "xlb mails every transition when smtp_alert is set",
    ),
    reason(
        "no_checker_emails",
        "xlb mails every transition when smtp_alert is set",
    ),
    reason("reload_time_file", TUNING),
    reason("reload_repeat", TUNING),
    reason("reload_file", TUNING),
    reason("config_save_dir", TUNING),
    reason("data_use_instance", TUNING),
    reason("fifo_write_vrrp_states_on_reload", TUNING),
    reason("local_name", TUNING),
];

pub(super) const GLOBAL_REFUSED: &[KeywordReason] = &[
    reason(
        "smtp_alert_vrrp",
        "xlb has no separate VRRP mail switch: set smtp_alert in each vrrp_instance instead",
    ),
    reason(
        "smtp_alert_checker",
        "xlb has no separate checker mail switch: set smtp_alert in each virtual_server \
         instead",
    ),
    reason(
        "startup_script",
        "xlb runs no start-up script: run it from the service manager",
    ),
    reason("startup_script_timeout", "xlb runs no start-up script"),
    reason(
        "shutdown_script",
        "xlb runs no shutdown script: run it from the service manager",
    ),
    reason("shutdown_script_timeout", "xlb runs no shutdown script"),
    reason(
        "net_namespace",
        "xlb does not switch network namespaces: run it in the namespace",
    ),
    reason(
        "net_namespace_ipvs",
        "xlb does not switch network namespaces",
    ),
    reason(
        "namespace_with_ipsets",
        "xlb does not switch network namespaces",
    ),
];

pub(super) const SCRIPT: &[KeywordRule] = &[
    kept("script", ValueKind::Cmd),
    kept("interval", ValueKind::Num),
    kept("timeout", ValueKind::Num),
    kept("rise", ValueKind::Num),
    kept("fall", ValueKind::Num),
    kept("user", ValueKind::Words),
    kept("init_fail", ValueKind::Flag),
];

pub(super) const INSTANCE: &[KeywordRule] = &[
    kept("state", ValueKind::Str),
    kept("interface", ValueKind::Str),
    kept("virtual_router_id", ValueKind::Num),
    kept("priority", ValueKind::Num),
    kept("advert_int", ValueKind::Num),
    kept("version", ValueKind::Num),
    kept("nopreempt", ValueKind::Flag),
    kept("preempt_delay", ValueKind::Num),
    kept("unicast_src_ip", ValueKind::Str),
    kept("mcast_src_ip", ValueKind::Str),
    kept("dont_track_primary", ValueKind::Flag),
    kept("notify_master", ValueKind::Notify),
    kept("notify_backup", ValueKind::Notify),
    kept("notify_fault", ValueKind::Notify),
    kept("notify_stop", ValueKind::Notify),
    kept("notify", ValueKind::Notify),
    kept("smtp_alert", ValueKind::Flag),
    kept("garp_master_delay", ValueKind::Num),
    kept("garp_master_repeat", ValueKind::Num),
    kept("garp_master_refresh", ValueKind::Num),
    kept("garp_master_refresh_repeat", ValueKind::Num),
    kept("down_timer_adverts", ValueKind::Num),
    kept("v3_checksum_as_v2", ValueKind::Flag),
    kept("skip_check_adv_addr", ValueKind::Flag),
    kept("check_unicast_src", ValueKind::Flag),
    kept("vmac_xmit_base", ValueKind::Flag),
];

pub(super) const SYNC_GROUP: &[KeywordRule] = &[
    kept("notify_master", ValueKind::Notify),
    kept("notify_backup", ValueKind::Notify),
    kept("notify_fault", ValueKind::Notify),
    kept("notify_stop", ValueKind::Notify),
    kept("notify", ValueKind::Notify),
    kept("smtp_alert", ValueKind::Flag),
    kept("sync_group_tracking_weight", ValueKind::Flag),
];

pub(super) const INSTANCE_BLOCKS: &[&str] = &[
    "use_vmac",
    "preempt",
    "authentication",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "unicast_peer",
    "track_interface",
    "track_script",
    "accept",
    "no_accept",
    "virtual_routes",
    "virtual_rules",
    "lvs_sync_daemon_interface",
];

pub(super) const INSTANCE_IGNORED: &[KeywordReason] = &[
    reason("debug", "xlb's log level is set with XLB_LOG"),
    reason(
        "garp_lower_prio_delay",
        "xlb answers a lower-priority advert with the garp_master_* burst",
    ),
    reason(
        "garp_lower_prio_repeat",
        "xlb answers a lower-priority advert with the garp_master_* burst",
    ),
    reason("lower_prio_no_advert", "xlb follows the RFC here"),
    reason("higher_prio_send_advert", "xlb follows the RFC here"),
    reason("linkbeat_use_polling", "xlb reads link state from netlink"),
    reason(
        "unicast_ttl",
        "xlb sends adverts with TTL 255, as the RFCs require",
    ),
    reason("kernel_rx_buf_size", TUNING),
    reason(
        "native_ipv6",
        "xlb runs VRRPv3 for IPv6 addresses by itself",
    ),
    reason("promote_secondaries", "not configurable in xlb"),
    reason(
        "no_virtual_ipaddress",
        "xlb accepts an instance without virtual_ipaddress anyway",
    ),
    reason(
        "unicast_fault_no_peer",
        "not configurable in xlb (an instance with unicast_src_ip needs unicast_peer)",
    ),
    reason(
        "garp_extra_if",
        "xlb sends gratuitous ARP / NA on the VIPs' interfaces only",
    ),
];

pub(super) const INSTANCE_REFUSED: &[KeywordReason] = &[
    reason(
        "track_file",
        "xlb tracks scripts and interfaces: replace the file by a vrrp_script testing it",
    ),
    reason(
        "track_process",
        "xlb tracks scripts and interfaces: replace it by a vrrp_script (e.g. pgrep)",
    ),
    reason("track_bfd", "xlb has no BFD"),
    reason("strict_mode", "use global_defs vrrp_strict"),
    reason(
        "use_vmac_addr",
        "xlb puts a VMAC on the instance's own interface only (use_vmac)",
    ),
    reason(
        "use_ipvlan",
        "xlb does not create ipvlan interfaces: use use_vmac (a macvlan with the VRRP MAC)",
    ),
    reason("vrf", "xlb does not bind instances to a VRF"),
    reason(
        "mcast_dst_ip",
        "xlb sends adverts to global_defs vrrp_mcast_group4 / vrrp_mcast_group6",
    ),
    reason("track_src_ip", "not configurable in xlb"),
    reason(
        "old_unicast_checksum",
        "xlb speaks the standard checksum only (keepalived before 1.3.6 did not)",
    ),
];

/// The checker timing keys a checker, its real server and its virtual server all take
/// (the servers' values are their checkers' defaults).
pub(super) const CHECKER_TIMING: &[KeywordRule] = &[
    kept("connect_timeout", ValueKind::Num),
    kept("retry", ValueKind::Num),
    renamed("nb_get_retry", "retry", ValueKind::Num),
    kept("delay_before_retry", ValueKind::Num),
    kept("warmup", ValueKind::Num),
    kept("delay_loop", ValueKind::Num),
];

pub(super) const VS: &[KeywordRule] = &[
    kept("protocol", ValueKind::Str),
    kept("hysteresis", ValueKind::Num),
    kept("quorum", ValueKind::Num),
    kept("quorum_up", ValueKind::Notify),
    kept("quorum_down", ValueKind::Notify),
    kept("inhibit_on_failure", ValueKind::Flag),
    kept("alpha", ValueKind::Flag),
    kept("omega", ValueKind::Flag),
    kept("ha_suspend", ValueKind::Flag),
    kept("smtp_alert", ValueKind::Flag),
    kept("virtualhost", ValueKind::Str),
    // Not keepalived's: xlb's, accepted so a service without VRRP can say where XDP
    // attaches.
    kept("interface", ValueKind::Str),
    renamed("sh-port", "sh_port", ValueKind::Flag),
    kept("sh_port", ValueKind::Flag),
    renamed("mh-port", "mh_port", ValueKind::Flag),
    kept("mh_port", ValueKind::Flag),
    renamed("sh-fallback", "sh_fallback", ValueKind::Flag),
    kept("sh_fallback", ValueKind::Flag),
    renamed("mh-fallback", "mh_fallback", ValueKind::Flag),
    kept("mh_fallback", ValueKind::Flag),
];

pub(super) const VS_REFUSED: &[KeywordReason] = &[
    reason(
        "ops",
        "xlb has no one-packet scheduling: it tracks UDP flows like TCP connections, \
         each flow staying on its real server until idle for lvs_timeouts udp",
    ),
    reason(
        "sorry_server_inhibit",
        "xlb removes the sorry server from the data plane when the quorum is back (its \
         existing flows move to the real servers)",
    ),
    reason(
        "persistence_engine",
        "xlb keeps persistence by client address only",
    ),
    reason(
        "flag-1",
        "write sh-fallback / mh-fallback (xlb's name for it) instead",
    ),
    reason(
        "flag-2",
        "write sh-port / mh-port (xlb's name for it) instead",
    ),
    reason("flag-3", "IPVS scheduler flag 3 has no xlb equivalent"),
];

pub(super) const RS: &[KeywordRule] = &[
    kept("weight", ValueKind::Num),
    kept("inhibit_on_failure", ValueKind::Flag),
    kept("alpha", ValueKind::Flag),
    kept("notify_up", ValueKind::Notify),
    kept("notify_down", ValueKind::Notify),
    kept("smtp_alert", ValueKind::Flag),
    kept("virtualhost", ValueKind::Str),
];

pub(super) const RS_REFUSED: &[KeywordReason] = &[
    reason(
        "uthreshold",
        "a connection limit: xlb schedules in XDP without connection counts",
    ),
    reason(
        "lthreshold",
        "a connection limit: xlb schedules in XDP without connection counts",
    ),
    reason("tunnel_encap", "xlb has no IP-in-IP tunnels (lb_kind TUN)"),
    reason("tunnel_port", "xlb has no IP-in-IP tunnels (lb_kind TUN)"),
    reason("tunnel_nocsum", "xlb has no IP-in-IP tunnels (lb_kind TUN)"),
    reason("tunnel_csum", "xlb has no IP-in-IP tunnels (lb_kind TUN)"),
    reason(
        "tunnel_remcsum",
        "xlb has no IP-in-IP tunnels (lb_kind TUN)",
    ),
    reason("BFD_CHECK", "xlb has no BFD: use TCP_CHECK or PING_CHECK"),
    reason(
        "FILE_CHECK",
        "xlb has no FILE_CHECK: use a MISC_CHECK testing the file",
    ),
];

/// keepalived checker block, xlb key.
pub(super) const CHECKERS: &[CheckerBlock] = &[
    checker("TCP_CHECK", "tcp_check"),
    checker("HTTP_GET", "http_get"),
    checker("SSL_GET", "ssl_get"),
    checker("MISC_CHECK", "misc_check"),
    checker("DNS_CHECK", "dns_check"),
    checker("UDP_CHECK", "udp_check"),
    checker("PING_CHECK", "ping_check"),
    checker("ICMP_CHECK", "ping_check"),
    checker("SMTP_CHECK", "smtp_check"),
];

/// Options of every checker (xlb refuses, at their line, the ones a kind lacks).
pub(super) const CHECK: &[KeywordRule] = &[
    kept("connect_ip", ValueKind::Str),
    kept("connect_port", ValueKind::Num),
    kept("bindto", ValueKind::Str),
    kept("bind_port", ValueKind::Num),
    kept("bind_if", ValueKind::Str),
    kept("fwmark", ValueKind::Num),
    kept("alpha", ValueKind::Flag),
    kept("log_all_failures", ValueKind::Flag),
    // HTTP_GET / SSL_GET
    kept("http_protocol", ValueKind::Str),
    kept("virtualhost", ValueKind::Str),
    kept("fast_recovery", ValueKind::Flag),
    kept("enable_sni", ValueKind::Flag),
    kept("sni_name", ValueKind::Str),
    kept("tls_compliant", ValueKind::Flag),
    // MISC_CHECK
    kept("misc_path", ValueKind::Cmd),
    kept("misc_timeout", ValueKind::Num),
    kept("misc_dynamic", ValueKind::Flag),
    kept("user", ValueKind::Words),
    // DNS_CHECK
    kept("type", ValueKind::Str),
    kept("name", ValueKind::Str),
    // UDP_CHECK
    kept("payload", ValueKind::Str),
    kept("min_reply_length", ValueKind::Num),
    kept("max_reply_length", ValueKind::Num),
    // SMTP_CHECK
    kept("helo_name", ValueKind::Str),
];

pub(super) const URL: &[KeywordRule] = &[
    kept("path", ValueKind::Str),
    kept("digest", ValueKind::Str),
    kept("virtualhost", ValueKind::Str),
    kept("regex", ValueKind::Str),
    kept("regex_no_match", ValueKind::Flag),
];

/// Every keyword the importer knows (converted, dropped or refused), for the "did you
/// mean" hint on an unknown one.
pub(super) fn known_keywords() -> impl Iterator<Item = &'static str> {
    let rules = [
        GLOBAL,
        SCRIPT,
        INSTANCE,
        SYNC_GROUP,
        CHECKER_TIMING,
        VS,
        RS,
        CHECK,
        URL,
    ];
    let reasons = [
        GLOBAL_IGNORED,
        GLOBAL_REFUSED,
        INSTANCE_IGNORED,
        INSTANCE_REFUSED,
        VS_REFUSED,
        RS_REFUSED,
    ];
    const BLOCKS: &[&str] = &[
        "global_defs",
        "vrrp_script",
        "vrrp_instance",
        "vrrp_sync_group",
        "group",
        "global_tracking",
        "virtual_server",
        "virtual_server_group",
        "real_server",
        "authentication",
        "virtual_ipaddress",
        "virtual_ipaddress_excluded",
        "track_script",
        "track_interface",
        "unicast_peer",
        "lb_algo",
        "lb_kind",
        "persistence_timeout",
        "persistence_granularity",
        "sorry_server",
        "nat_mask",
        "include",
    ];
    rules
        .into_iter()
        .flat_map(|r| r.iter().map(|k| k.keepalived))
        .chain(
            reasons
                .into_iter()
                .flat_map(|r| r.iter().map(|k| k.keepalived)),
        )
        .chain(INSTANCE_BLOCKS.iter().copied())
        .chain(CHECKERS.iter().map(|c| c.keepalived))
        .chain(BLOCKS.iter().copied())
}
