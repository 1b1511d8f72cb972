//! The TOML configuration: keepalived's keywords in TOML clothes.
//!
//! A keepalived user should recognise every key: `global_defs`, `vrrp_script`,
//! `vrrp_instance`, `virtual_server` / `real_server` and the checkers keep keepalived's
//! names and defaults; blocks become tables, lists become arrays, durations are seconds
//! (integers or decimals). `lb-userspace/examples/xlb.toml` is the annotated sample.
//!
//! Loading never falls back to defaults on a bad file: unknown keys, wrong types,
//! values out of range and inconsistent settings are refused with
//! `file:line:column: key.path: message` ([`ConfigError`]).
//!
//! [`Config::parse`] also resolves keepalived's inheritance, so consumers read values
//! in force: a real server's `port`, `inhibit_on_failure` and `alpha` default to its
//! virtual server's; an `http_get`'s `virtualhost` to the real server's, then the
//! virtual server's; a `vrrp_instance`'s `version` defaults to
//! `global_defs.vrrp_version` (3 with IPv6 VIPs). Checkers keep their timing options
//! as written; `timing_in_force` resolves them (the checker's, else the real
//! server's, else the virtual server's, else the kind's default) with
//! [`RealServerConfig::checker_defaults`].

mod announce;
mod check;
mod de;
mod error;
mod fwmark;
mod host;
mod locate;
mod lvs;
mod resolve;
pub mod route;
pub mod sync;
mod validate;
mod vrrp;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use announce::{AnnounceDefs, AnnounceMode, DEFAULT_ANNOUNCE_TABLE};
pub use check::{HttpGet, HttpProtocol, MiscCheck, SmtpHost, StatusCodes, TcpCheck, UrlCheck};
pub use error::{ConfigError, ConfigErrorKind, Location};
pub use fwmark::{FwmarkMatch, MAX_MATCH_KEYS, MatchPorts};
pub use host::{HostView, ThisHost};
pub use lvs::{
    LB_ALGO_NAMES, LbAlgo, LbKind, Protocol, RealServerConfig, SorryServer, VirtualServer,
};
pub use route::{IpRoute, IpRule, NextHop, Prefix, RouteType, RuleAction, RuleDraft};
pub use vrrp::{
    AuthType, Authentication, Heartbeat, InitialState, TrackEntry, TrackReference,
    VirtualIpAddress, VrrpInstance, VrrpScript, VrrpSyncGroup,
};

use locate::{Document, KeyPath};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// keepalived's `static_ipaddress`: addresses the daemon adds at start and removes
    /// at stop, whatever the VRRP state, in the VIP syntax with `dev` required:
    /// `ADDR[/PREFIX] dev IFNAME [brd ADDR] [scope SCOPE] [label LABEL]`. Default: none.
    #[serde(default)]
    pub static_ipaddress: Vec<String>,
    /// keepalived's `static_routes`: routes the daemon adds at start (and puts back when
    /// someone removes them, unless `no_track`) and removes at stop; syntax in
    /// [`IpRoute`]. Default: none.
    #[serde(default)]
    pub static_routes: Vec<String>,
    /// keepalived's `static_rules`: routing policy rules, like `static_routes`; syntax
    /// in [`IpRule`] (`preference` required). Default: none.
    #[serde(default)]
    pub static_rules: Vec<String>,
    /// `[global_defs]`; every key optional.
    #[serde(default)]
    pub global_defs: GlobalDefs,
    /// `[vrrp_script.NAME]` tables, by name.
    #[serde(default)]
    pub vrrp_script: BTreeMap<String, VrrpScript>,
    /// `[[vrrp_instance]]`; none means a single director that owns its VIPs.
    #[serde(default)]
    pub vrrp_instance: Vec<VrrpInstance>,
    /// `[[vrrp_sync_group]]`: instances that change state together.
    #[serde(default)]
    pub vrrp_sync_group: Vec<VrrpSyncGroup>,
    /// `[[virtual_server]]`.
    #[serde(default)]
    pub virtual_server: Vec<VirtualServer>,
    /// `[announce]`: the kernel table of the VIPs announced by BGP (`announce = "bgp"`).
    #[serde(default, skip_serializing_if = "AnnounceDefs::is_default")]
    pub announce: AnnounceDefs,
    /// `[sync]`: connection sync between directors (`connsync`). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<sync::SyncConfig>,
}

/// `[global_defs]`. Each default is the one in [`GlobalDefs::default`], keepalived's.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalDefs {
    /// Name of this director in mails and logs. Default: the host name.
    pub router_id: Option<String>,
    /// Mail recipients of notifications. Default: none (no mail).
    pub notification_email: Vec<String>,
    /// Sender address. Default: `xlb@<host name>`.
    pub notification_email_from: Option<String>,
    /// `host[:port]` of the SMTP relay (port 25 if absent). Default: none.
    pub smtp_server: Option<String>,
    /// Name in the SMTP HELO. Default: the host name.
    pub smtp_helo_name: Option<String>,
    /// SMTP timeout, seconds. Default 30.
    #[serde(deserialize_with = "de::seconds")]
    pub smtp_connect_timeout: f64,
    /// Default of every `smtp_alert`. Default false.
    pub smtp_alert: bool,
    /// Default VRRP version of the instances, 2 or 3. Default 2.
    #[serde(deserialize_with = "de::vrrp_version")]
    pub vrrp_version: u8,
    /// IPv4 multicast group of the adverts. Default 224.0.0.18.
    pub vrrp_mcast_group4: Ipv4Addr,
    /// IPv6 multicast group of the adverts. Default ff02::12.
    pub vrrp_mcast_group6: Ipv6Addr,
    /// Seconds between the two gratuitous ARP/NA bursts on becoming MASTER (0: one
    /// burst). Default 5.
    #[serde(deserialize_with = "de::seconds")]
    pub vrrp_garp_master_delay: f64,
    /// Gratuitous ARP/NA messages per burst. Default 5.
    #[serde(deserialize_with = "de::count")]
    pub vrrp_garp_master_repeat: u32,
    /// Seconds between periodic gratuitous ARP/NA while MASTER (0: none). Default 0.
    #[serde(deserialize_with = "de::seconds")]
    pub vrrp_garp_master_refresh: f64,
    /// Messages per periodic refresh. Default 1.
    #[serde(deserialize_with = "de::count")]
    pub vrrp_garp_master_refresh_repeat: u32,
    /// Seconds between gratuitous ARP messages of one burst. Only 0 (back to back, as
    /// xlb sends them) is accepted. Default 0.
    #[serde(deserialize_with = "de::seconds")]
    pub vrrp_garp_interval: f64,
    /// Seconds between unsolicited neighbour adverts of one burst. Only 0. Default 0.
    #[serde(deserialize_with = "de::seconds")]
    pub vrrp_gna_interval: f64,
    /// Default of every instance's `skip_check_adv_addr`: compare a received advert's
    /// address list with ours only when it comes from another master than the last
    /// one. Default false (every advert is compared).
    pub vrrp_skip_check_adv_addr: bool,
    /// Default of every instance's `check_unicast_src`. Default false.
    pub vrrp_check_unicast_src: bool,
    /// Default of every instance's `down_timer_adverts`, 1..=100. Default 3.
    #[serde(deserialize_with = "de::down_timer_adverts")]
    pub vrrp_down_timer_adverts: u32,
    /// Strict RFC compliance: no authentication, no unicast, `down_timer_adverts` 3.
    /// keepalived also turns `accept` off by default; xlb cannot (see
    /// [`VrrpInstance::accept`]), so each instance must say `accept = true`. Default false.
    pub vrrp_strict: bool,
    /// `user [group]` every command runs as when its block does not say. Default:
    /// `keepalived_script` if that user exists, else root (keepalived's).
    pub script_user: Option<String>,
    /// Refuse commands run as root that a non-root user could change (the program or a
    /// directory on its way). Default false.
    pub enable_script_security: bool,
    /// Default of every checker's `log_all_failures`. Default false.
    pub checker_log_all_failures: bool,
    /// FIFO receiving every VRRP and checker event, one line each. Default: none.
    pub notify_fifo: Option<String>,
    /// Command started with `notify_fifo`'s path to read it. Default: none.
    pub notify_fifo_script: Option<String>,
    /// FIFO for VRRP events only. Default: none.
    pub vrrp_notify_fifo: Option<String>,
    pub vrrp_notify_fifo_script: Option<String>,
    /// FIFO for checker events only. Default: none.
    pub lvs_notify_fifo: Option<String>,
    pub lvs_notify_fifo_script: Option<String>,
    /// xlb: the most slots the IPv4 connection table grows to (IPv6: a quarter), a power
    /// of two; what IPVS's `conn_tab_bits` sizes. A slot costs 32 bytes. The tables start
    /// at `connection_table_start_size` and grow fourfold whenever more than half full
    /// (`dataplane::conn_grow`), up to this; they never shrink while pinned (a lower
    /// value keeps bigger pinned tables as they are, until `xlb teardown`). A reload
    /// applies a new value without teardown. Default 524288 (16 MiB).
    #[serde(deserialize_with = "de::conn_table_size")]
    pub connection_table_size: u32,
    /// xlb: the IPv4 slots new connection tables are created with (IPv6: a quarter), a
    /// power of two, capped at `connection_table_size`. Small tables dump quickly with
    /// `bpftool map dump`; they grow under load. Pinned tables keep their size. Default
    /// 16384 (512 KiB).
    #[serde(deserialize_with = "de::conn_table_size")]
    pub connection_table_start_size: u32,
    /// Idle timeouts of tracked connections, as keepalived's `lvs_timeouts tcp T tcpfin
    /// T udp T` (IPVS's `ipvsadm --set`), plus xlb's `syn_recv`. Each key optional.
    /// Default: IPVS's 900, 120, 300 and 60.
    pub lvs_timeouts: LvsTimeouts,
    /// xlb: `"IP:PORT"` where the daemon serves Prometheus metrics (OpenMetrics text on
    /// `GET /metrics`), e.g. `"127.0.0.1:9471"`. The endpoint has no authentication: a
    /// non-loopback address is logged as a warning. Default: none (no endpoint).
    #[serde(deserialize_with = "de::opt_socket_addr")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// `global_defs.lvs_timeouts`, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LvsTimeouts {
    /// An established TCP connection. Default 900.
    #[serde(deserialize_with = "de::conn_timeout")]
    pub tcp: f64,
    /// A TCP connection after the client's FIN. Default 120.
    #[serde(deserialize_with = "de::conn_timeout")]
    pub tcpfin: f64,
    /// A UDP flow. Default 300.
    #[serde(deserialize_with = "de::conn_timeout")]
    pub udp: f64,
    /// xlb: a TCP connection that has sent only its SYN (IPVS's SYN_RECV; keepalived has
    /// no key for it). Such slots are the first a full bucket gives up. Default 60.
    #[serde(deserialize_with = "de::conn_timeout")]
    pub syn_recv: f64,
}

impl Default for LvsTimeouts {
    fn default() -> Self {
        Self {
            tcp: 900.0,
            tcpfin: 120.0,
            udp: 300.0,
            syn_recv: 60.0,
        }
    }
}

impl LvsTimeouts {
    /// The data plane's form (ticks of about 1.07 s, rounded down, at least one).
    pub fn to_ticks(self) -> lb_common::Timeouts {
        lb_common::Timeouts::from_seconds(self.tcp as u64, self.tcpfin as u64, self.udp as u64)
            .with_syn_recv(self.syn_recv as u64)
    }
}

impl Default for GlobalDefs {
    fn default() -> Self {
        Self {
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_helo_name: None,
            smtp_connect_timeout: 30.0,
            smtp_alert: false,
            vrrp_version: 2,
            vrrp_mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            vrrp_mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            vrrp_garp_master_delay: 5.0,
            vrrp_garp_master_repeat: 5,
            vrrp_garp_master_refresh: 0.0,
            vrrp_garp_master_refresh_repeat: 1,
            vrrp_garp_interval: 0.0,
            vrrp_gna_interval: 0.0,
            vrrp_skip_check_adv_addr: false,
            vrrp_check_unicast_src: false,
            vrrp_down_timer_adverts: 3,
            vrrp_strict: false,
            script_user: None,
            enable_script_security: false,
            checker_log_all_failures: false,
            notify_fifo: None,
            notify_fifo_script: None,
            vrrp_notify_fifo: None,
            vrrp_notify_fifo_script: None,
            lvs_notify_fifo: None,
            lvs_notify_fifo_script: None,
            connection_table_size: lb_common::MAX_CONNS,
            connection_table_start_size: crate::dataplane::conn_grow::START_SLOTS,
            lvs_timeouts: LvsTimeouts::default(),
            metrics_listen: None,
        }
    }
}

impl Config {
    /// The parsed `static_ipaddress` entries ([`Config::parse`] refused bad ones; on a
    /// hand-built config they are skipped, as for every list below).
    pub fn static_addresses(&self) -> Vec<VirtualIpAddress> {
        self.static_ipaddress
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// The parsed `static_routes`.
    pub fn static_route_list(&self) -> Vec<IpRoute> {
        self.static_routes
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// The parsed `static_rules`.
    pub fn static_rule_list(&self) -> Vec<IpRule> {
        self.static_rules
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// Reads, parses and validates `path`. Errors name the file as given.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (text, file) = read(path)?;
        Self::parse(&text, &file)
    }

    /// Parses and validates `text`; `file_name` only prefixes error messages.
    pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigError> {
        let error = |span: Option<std::ops::Range<usize>>, path: &KeyPath, kind| ConfigError {
            file: file_name.to_owned(),
            location: span.map(|s| Box::new(Location::from_span(text, s))),
            key_path: path.to_string(),
            kind,
        };

        let doc = Document::parse(text).map_err(|e| {
            error(
                e.span(),
                &KeyPath::root(),
                ConfigErrorKind::Syntax(one_line(e.message())),
            )
        })?;

        let mut cfg: Config = toml_edit::de::from_document(doc.inner().clone()).map_err(|e| {
            let path = e.span().map(|s| doc.path_at(s.start)).unwrap_or_default();
            error(
                e.span(),
                &path,
                ConfigErrorKind::Invalid(one_line(e.message())),
            )
        })?;

        resolve::resolve(&mut cfg, &doc);
        validate::validate(&cfg, &doc).map_err(|v| {
            error(
                doc.span_of(&v.path),
                &v.path,
                ConfigErrorKind::Invalid(v.message),
            )
        })?;
        Ok(cfg)
    }

    /// Warnings about `self`, loaded from `path`, each `file:line:column: warning: key: message`:
    /// settings that are valid but likely to surprise (see `validate::advise`). The file
    /// is read again for the positions; if it changed meanwhile, positions are left out.
    pub fn warnings(&self, path: &Path) -> Vec<String> {
        let advice = validate::advise(self);
        if advice.is_empty() {
            return Vec::new();
        }
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let doc = Document::parse(&text).ok();
        advice
            .into_iter()
            .map(|a| {
                let at = (doc.as_ref())
                    .and_then(|d| d.span_of(&a.path))
                    .map(|s| Location::from_span(&text, s))
                    .map_or(String::new(), |l| format!(":{}:{}", l.line, l.column));
                format!("{file}{at}: warning: {}: {}", a.path, a.message)
            })
            .collect()
    }

    /// What this config needs of the data-plane maps sized from it (real-server slots,
    /// scheduling-table entries, all real servers up): see `dataplane::sizing`.
    pub fn map_needs(&self) -> crate::dataplane::sizing::Needs {
        validate::map_needs(self)
    }

    /// The `vrrp_sync_group` instance `name` is in.
    pub fn sync_group_of(&self, name: &str) -> Option<&VrrpSyncGroup> {
        self.vrrp_sync_group
            .iter()
            .find(|g| g.group.iter().any(|m| m == name))
    }

    /// What `inst` tracks of interfaces: its own `track_interface` entries, then its sync
    /// group's for interfaces it does not list itself (keepalived adds a group's tracking
    /// to each member).
    /// In a sync group without `sync_group_tracking_weight`, entries with a weight are
    /// left out, as keepalived leaves them out.
    pub fn tracked_interfaces(&self, inst: &VrrpInstance) -> Vec<TrackEntry> {
        let group = self.sync_group_of(&inst.name);
        let all = merge_tracking(
            inst.tracked_interfaces(),
            group.map(|g| g.track_interface.as_slice()).unwrap_or(&[]),
        );
        without_weights_in(group, all, |e| e.weight.is_some_and(|w| w != 0))
    }

    /// What `inst` tracks of `vrrp_script`s: its own entries, then its sync group's.
    /// Weighted ones are left out in a sync group, as for interfaces.
    pub fn tracked_scripts(&self, inst: &VrrpInstance) -> Vec<TrackEntry> {
        let group = self.sync_group_of(&inst.name);
        let all = merge_tracking(
            inst.tracked_scripts(),
            group.map(|g| g.track_script.as_slice()).unwrap_or(&[]),
        );
        without_weights_in(group, all, |e| {
            e.weight
                .or_else(|| self.vrrp_script.get(&e.name).map(|s| s.weight))
                .is_some_and(|w| w != 0)
        })
    }

    /// The `vrrp_script` a `track_script` entry names.
    pub fn script(&self, name: &str) -> Option<&VrrpScript> {
        self.vrrp_script.get(name)
    }
}

/// `entries` without the weighted ones when `group` does not let weights count.
fn without_weights_in(
    group: Option<&VrrpSyncGroup>,
    entries: Vec<TrackEntry>,
    weighted: impl Fn(&TrackEntry) -> bool,
) -> Vec<TrackEntry> {
    match group {
        Some(g) if !g.sync_group_tracking_weight => {
            entries.into_iter().filter(|e| !weighted(e)).collect()
        }
        _ => entries,
    }
}

/// `own` entries, then those of `group` for names `own` lacks.
fn merge_tracking(mut own: Vec<TrackEntry>, group: &[String]) -> Vec<TrackEntry> {
    for entry in group.iter().filter_map(|s| s.parse::<TrackEntry>().ok()) {
        if !own.iter().any(|e| e.name == entry.name) {
            own.push(entry);
        }
    }
    own
}

/// The text of `path` and its name for messages.
fn read(path: &Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, file)),
        Err(e) => Err(ConfigError {
            file,
            location: None,
            key_path: String::new(),
            kind: ConfigErrorKind::Read(e),
        }),
    }
}

/// Deserializer and parser messages may span lines; a located error is one line.
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
