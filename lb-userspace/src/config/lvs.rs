//! `[[virtual_server]]` and its `[[virtual_server.real_server]]`: keepalived's LVS
//! keywords, restricted to what xlb forwards (TCP/UDP, DR, rr/wrr/sh/mh).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Config;
use super::check::DEFAULT_DELAY_LOOP;
use super::check::{
    DnsCheck, HttpGet, MiscCheck, PingCheck, SmtpCheck, TcpCheck, TimingOptions, UdpCheck,
};
use super::de;
use super::fwmark::FwmarkMatch;
use super::vrrp::string_enum_serde;

fn default_delay_loop() -> f64 {
    DEFAULT_DELAY_LOOP
}
fn one() -> u32 {
    1
}
fn unspecified() -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
}

/// Transport protocol of a virtual service, TOML `"TCP"` or `"UDP"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Protocol {
    /// keepalived's default.
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

impl TryFrom<String> for Protocol {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Ok(Self::Tcp),
            "UDP" => Ok(Self::Udp),
            "SCTP" => Err("SCTP is not supported: xlb balances TCP and UDP".to_owned()),
            _ => Err(format!(
                "unknown protocol {s:?}: expected \"TCP\" or \"UDP\""
            )),
        }
    }
}

/// Scheduler, TOML `lb_algo` (keepalived's `lb_algo` / `lvs_sched`): IPVS's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LbAlgo {
    /// Round robin.
    Rr,
    /// Weighted round robin. xlb's default (keepalived's is `wlc`, which the importer
    /// writes out when a keepalived virtual_server has no `lb_algo`).
    #[default]
    Wrr,
    /// Source hash (client address; with `sh_port`, also its port).
    Sh,
    /// Weighted Maglev hash (with `mh_port`, the client port too).
    Mh,
    /// Least connection (overhead = active x 256 + inactive).
    Lc,
    /// Weighted least connection: overhead / weight.
    Wlc,
    /// Shortest expected delay: (active + 1) / weight.
    Sed,
    /// Never queue: an idle server at once, else as `sed`.
    Nq,
    /// Weighted failover: the server of the highest weight.
    Fo,
    /// Weighted overflow: the highest weight whose active connections do not exceed it.
    Ovf,
    /// Destination hash: by the VIP.
    Dh,
    /// Power of two choices: the lighter of two weighted random servers.
    Twos,
}

impl LbAlgo {
    const ALL: [Self; 12] = [
        Self::Rr,
        Self::Wrr,
        Self::Sh,
        Self::Mh,
        Self::Lc,
        Self::Wlc,
        Self::Sed,
        Self::Nq,
        Self::Fo,
        Self::Ovf,
        Self::Dh,
        Self::Twos,
    ];

    pub fn as_str(self) -> &'static str {
        self.sched_algo().name()
    }

    /// The data plane's scheduler.
    pub fn sched_algo(self) -> lb_common::SchedAlgo {
        use lb_common::SchedAlgo;
        match self {
            Self::Rr => SchedAlgo::Rr,
            Self::Wrr => SchedAlgo::Wrr,
            Self::Sh => SchedAlgo::Sh,
            Self::Mh => SchedAlgo::Mh,
            Self::Lc => SchedAlgo::Lc,
            Self::Wlc => SchedAlgo::Wlc,
            Self::Sed => SchedAlgo::Sed,
            Self::Nq => SchedAlgo::Nq,
            Self::Fo => SchedAlgo::Fo,
            Self::Ovf => SchedAlgo::Ovf,
            Self::Dh => SchedAlgo::Dh,
            Self::Twos => SchedAlgo::Twos,
        }
    }
}

/// The accepted names, for messages.
pub const LB_ALGO_NAMES: &str = "\"rr\", \"wrr\", \"sh\", \"mh\", \"lc\", \"wlc\", \"sed\", \"nq\", \"fo\", \"ovf\", \"dh\" or \"twos\"";

impl TryFrom<String> for LbAlgo {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(a) = Self::ALL.into_iter().find(|a| a.as_str() == lower) {
            return Ok(a);
        }
        match lower.as_str() {
            "lblc" | "lblcr" => Err(format!(
                "lb_algo {s:?} is not supported: xlb has no locality-based schedulers; \
                 use one of {LB_ALGO_NAMES}"
            )),
            _ => Err(format!("unknown lb_algo {s:?}: expected {LB_ALGO_NAMES}")),
        }
    }
}

/// Forwarding method, TOML `"DR"` or `"NAT"` (keepalived's `lb_kind` / `lvs_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LbKind {
    /// Direct routing: only the destination MAC is rewritten. The default here
    /// (keepalived's default is NAT).
    #[default]
    Dr,
    /// IPVS's masquerading: the destination address and port become the real server's,
    /// and its replies, which come back through this director (their default gateway),
    /// get the VIP and virtual port back as their source.
    Nat,
}

impl LbKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dr => "DR",
            Self::Nat => "NAT",
        }
    }
}

impl TryFrom<String> for LbKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "DR" => Ok(Self::Dr),
            "NAT" => Ok(Self::Nat),
            "TUN" => Err(format!(
                "lb_kind {s:?} is not supported: xlb has no IP-in-IP encapsulation; use \
                 \"DR\" (real servers on-link, `xlb realserver setup`) or \"NAT\""
            )),
            _ => Err(format!("unknown lb_kind {s:?}: expected \"DR\" or \"NAT\"")),
        }
    }
}

string_enum_serde!(Protocol, LbAlgo, LbKind);

/// `sorry_server = { ip = "...", port = 80 }`: takes all new flows while the quorum
/// is lost.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SorryServer {
    pub ip: IpAddr,
    /// Default: the virtual server's port (DR does not change ports; NAT may).
    #[serde(default, deserialize_with = "de::opt_port")]
    pub port: Option<u16>,
}

/// `[[virtual_server]]`: a virtual service `ip:port/protocol` and its real servers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualServer {
    /// The VIP. Required, except in a `fwmark` service, which has none (it is set from
    /// its first `match` entry).
    #[serde(default = "unspecified")]
    pub ip: IpAddr,
    /// 1..=65535, or 0 for all ports (then `persistence_timeout` must be > 0, as IPVS
    /// requires). Required, except in a `fwmark` service (set from its first `match`
    /// entry).
    #[serde(default, deserialize_with = "de::port")]
    pub port: u16,
    /// keepalived's `virtual_server fwmark N`: a service of several VIP / port /
    /// protocol entries, listed in `match` (XDP sees no firewall mark), with no `ip` or
    /// `port` of its own. The number names it (`FWM N`, as ipvsadm). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    /// The packets of a `fwmark` service, `[tcp:|udp:]ADDRESS:PORTS` each (see
    /// [`FwmarkMatch`]); only with `fwmark`, which needs at least one.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub fwmark_match: Vec<FwmarkMatch>,
    /// Default `"TCP"`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Default `"wrr"` (see [`LbAlgo::Wrr`]).
    #[serde(default, alias = "lvs_sched")]
    pub lb_algo: LbAlgo,
    /// `"DR"` (the default) or `"NAT"`.
    #[serde(default, alias = "lvs_method")]
    pub lb_kind: LbKind,
    /// Seconds between health checks of each real server. Default 60.
    #[serde(default = "default_delay_loop", deserialize_with = "de::seconds")]
    pub delay_loop: f64,
    /// Seconds a client keeps its real server after its last packet; 0 (default):
    /// per-connection scheduling.
    #[serde(default, deserialize_with = "de::count")]
    pub persistence_timeout: u32,
    /// IPVS's `sh-port` / `mh-port` flag: hash the client port as well as its address.
    /// TOML `sh_port` or `mh_port` (also `sh-port` / `mh-port`); only with `sh` or
    /// `mh`. Default false.
    #[serde(
        default,
        rename = "mh_port",
        alias = "mh-port",
        alias = "sh_port",
        alias = "sh-port"
    )]
    pub hash_port: bool,
    /// IPVS's `sh-fallback` / `mh-fallback` flag: when the hashed server is down or
    /// has weight 0, pick another instead of dropping. TOML `sh_fallback` or
    /// `mh_fallback`; only with `sh` or `mh`. Default false.
    #[serde(
        default,
        rename = "mh_fallback",
        alias = "mh-fallback",
        alias = "sh_fallback",
        alias = "sh-fallback"
    )]
    pub hash_fallback: bool,
    /// One-packet scheduling: schedule every UDP datagram on its own (UDP only).
    /// Default false.
    #[serde(default)]
    pub ops: bool,
    /// Interface XDP attaches to. Default: the `interface` of the `vrrp_instance` whose
    /// `virtual_ipaddress` holds `ip`; required when no instance does. See
    /// [`VirtualServer::resolved_interface`].
    pub interface: Option<String>,
    /// `"bgp"`: active-active; the VIP is announced to the routers through BIRD while
    /// this director can serve it (see `config::announce`). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce: Option<super::AnnounceMode>,
    /// The real servers; may be empty (new flows are then dropped until one is added).
    #[serde(default)]
    pub real_server: Vec<RealServerConfig>,
    /// Minimum total weight of live real servers for the service to be "up"
    /// (below it, `sorry_server` takes over and `quorum_down` runs). Default 1.
    #[serde(default = "one", deserialize_with = "de::count")]
    pub quorum: u32,
    /// Flap damping around `quorum`, in weight units. Default 0.
    #[serde(default, deserialize_with = "de::count")]
    pub hysteresis: u32,
    /// Command run when the quorum is gained. Default: none.
    pub quorum_up: Option<String>,
    /// Command run when the quorum is lost. Default: none.
    pub quorum_down: Option<String>,
    /// Server taking all new flows while the quorum is lost. Default: none.
    pub sorry_server: Option<SorryServer>,
    /// Apply `inhibit_on_failure` to the sorry server. Default false.
    #[serde(default)]
    pub sorry_server_inhibit: bool,
    /// Default for the real servers: on a failed check set the weight to 0 (existing
    /// flows stay) instead of removing the server. Default false.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// Default for the real servers: consider them down until a first check passes.
    /// Default false.
    #[serde(default)]
    pub alpha: bool,
    /// On shutdown, run the quorum and real server down notifiers. Default false.
    #[serde(default)]
    pub omega: bool,
    /// Suspend health checks while this director does not hold the VIP. Default false.
    #[serde(default)]
    pub ha_suspend: bool,
    /// Mail on quorum changes. Default: `global_defs.smtp_alert`.
    pub smtp_alert: Option<bool>,
    /// Default `Host:` for HTTP/SSL checks. Default: none (the address).
    pub virtualhost: Option<String>,
    /// Default checker connection timeout, seconds. Default: the checker's (5).
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub connect_timeout: Option<f64>,
    /// Default checker retries. Default: the checker's (1; 0 for misc_check).
    #[serde(default, alias = "nb_get_retry", deserialize_with = "de::opt_count")]
    pub retry: Option<u32>,
    /// Default checker delay between retries, seconds. Default: the checker's
    /// (3 for http_get/ssl_get, 1 otherwise).
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub delay_before_retry: Option<f64>,
    /// Default checker warmup, seconds. Default: `delay_loop`.
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub warmup: Option<f64>,
}

impl VirtualServer {
    /// The addresses of its real servers and its sorry server: where it forwards.
    pub fn server_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.real_server
            .iter()
            .map(|r| r.ip)
            .chain(self.sorry_server.as_ref().map(|s| s.ip))
    }

    /// The interface XDP attaches to for this service: its own `interface`, else the
    /// `interface` of the `vrrp_instance` whose `virtual_ipaddress` (or
    /// `virtual_ipaddress_excluded`) holds the VIP (its `dev` if the entry names one).
    pub fn resolved_interface<'a>(&'a self, cfg: &'a Config) -> Option<&'a str> {
        if let Some(i) = &self.interface {
            return Some(i);
        }
        let vi = self.vrrp_instance(cfg)?;
        let entries = vi
            .virtual_ipaddress
            .iter()
            .chain(&vi.virtual_ipaddress_excluded);
        for raw in entries {
            if let Ok(v) = raw.parse::<super::VirtualIpAddress>() {
                if v.addr == self.ip {
                    if v.dev.is_some() {
                        // Return a borrow of the raw entry's `dev` word.
                        return raw.split_whitespace().skip_while(|w| *w != "dev").nth(1);
                    }
                    return Some(&vi.interface);
                }
            }
        }
        None
    }

    /// Every (VIP, port, protocol) key of the data plane's service map that selects this
    /// service: its own, and for a fwmark service every port of every `match` entry
    /// (port 0 for `*`). The first is the service's own.
    pub fn service_keys(&self) -> Vec<(IpAddr, u16, Protocol)> {
        if self.fwmark.is_none() {
            return vec![(self.ip, self.port, self.protocol)];
        }
        let mut keys = Vec::new();
        for m in &self.fwmark_match {
            let proto = m.protocol_or(self.protocol);
            for port in m.port_list() {
                if !keys.contains(&(m.ip, port, proto)) {
                    keys.push((m.ip, port, proto));
                }
            }
        }
        keys
    }

    /// The `vrrp_instance` that owns this VIP, if any (without one the service is
    /// always active).
    pub fn vrrp_instance<'a>(&self, cfg: &'a Config) -> Option<&'a super::VrrpInstance> {
        cfg.vrrp_instance.iter().find(|vi| vi.owns(self.ip))
    }

    /// `ip:port/PROTO`, e.g. `198.18.0.100:80/TCP` (`[2001:db8::1]:80/TCP`); a fwmark
    /// service `FWM N (ip:port/PROTO)`, its first match entry (which names it in `xlb
    /// weight` and the other runtime edits).
    pub fn service_name(&self) -> String {
        if let Some(mark) = self.fwmark {
            return format!(
                "FWM {mark} ({}/{})",
                std::net::SocketAddr::new(self.ip, self.port),
                self.protocol.as_str()
            );
        }
        format!(
            "{}/{}",
            std::net::SocketAddr::new(self.ip, self.port),
            self.protocol.as_str()
        )
    }
}

/// `[[virtual_server.real_server]]`: one backend.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerConfig {
    /// The real server's address, of the VIP's family; it must have the VIP on a
    /// non-ARPing interface (`xlb realserver setup`).
    pub ip: IpAddr,
    /// Default: the virtual server's port. DR does not rewrite ports, so it must equal
    /// the virtual server's port unless that is 0; NAT rewrites the virtual port to this
    /// one (0: kept). It is the default check port.
    #[serde(default, deserialize_with = "de::port")]
    pub port: u16,
    /// 0..=65535. Default 1. 0: no new flows, existing ones continue.
    #[serde(default = "one", deserialize_with = "de::weight")]
    pub weight: u32,
    /// On a failed check, set the weight to 0 instead of removing the server.
    /// Default: the virtual server's `inhibit_on_failure`.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// Consider the server down until a first check passes. Default: the virtual
    /// server's `alpha`.
    #[serde(default)]
    pub alpha: bool,
    /// Command run when the checks declare the server up. Default: none.
    pub notify_up: Option<String>,
    /// Command run when the checks declare the server down. Default: none.
    pub notify_down: Option<String>,
    /// Mail on this server's transitions. Default: `global_defs.smtp_alert`.
    pub smtp_alert: Option<bool>,
    /// `Host:` for its HTTP/SSL checks. Default: the virtual server's `virtualhost`.
    pub virtualhost: Option<String>,
    /// Defaults for this server's checkers (see the virtual server's).
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub connect_timeout: Option<f64>,
    #[serde(default, alias = "nb_get_retry", deserialize_with = "de::opt_count")]
    pub retry: Option<u32>,
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub delay_before_retry: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub warmup: Option<f64>,
    /// Seconds between checks of this server. Default: the virtual server's.
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub delay_loop: Option<f64>,
    /// TCP connect check. Without any checker the server is always up.
    pub tcp_check: Option<TcpCheck>,
    /// HTTP check.
    pub http_get: Option<HttpGet>,
    /// HTTPS check (same options as `http_get`, plus `enable_sni`, `sni_name`,
    /// `tls_compliant`).
    pub ssl_get: Option<HttpGet>,
    /// External command check.
    pub misc_check: Option<MiscCheck>,
    /// DNS query check.
    pub dns_check: Option<DnsCheck>,
    /// UDP datagram check.
    pub udp_check: Option<UdpCheck>,
    /// ICMP echo check.
    pub ping_check: Option<PingCheck>,
    /// SMTP greeting check.
    pub smtp_check: Option<SmtpCheck>,
}

impl RealServerConfig {
    /// Whether any checker is configured (without one the server is always up).
    pub fn has_checker(&self) -> bool {
        self.tcp_check.is_some()
            || self.http_get.is_some()
            || self.ssl_get.is_some()
            || self.misc_check.is_some()
            || self.dns_check.is_some()
            || self.udp_check.is_some()
            || self.ping_check.is_some()
            || self.smtp_check.is_some()
    }

    /// What this real server hands down to the timing options of its checkers: its
    /// own values, else `vs`'s, as keepalived; `log_all_failures` from `global`.
    pub fn checker_defaults(
        &self,
        vs: &VirtualServer,
        global: &super::GlobalDefs,
    ) -> TimingOptions {
        let real_server = TimingOptions {
            connect_timeout: self.connect_timeout,
            retry: self.retry,
            delay_before_retry: self.delay_before_retry,
            warmup: self.warmup,
            delay_loop: self.delay_loop,
            alpha: Some(self.alpha),
            log_all_failures: None,
        };
        let virtual_server = TimingOptions {
            connect_timeout: vs.connect_timeout,
            retry: vs.retry,
            delay_before_retry: vs.delay_before_retry,
            warmup: vs.warmup,
            delay_loop: Some(vs.delay_loop),
            alpha: None,
            log_all_failures: Some(global.checker_log_all_failures),
        };
        real_server.over(&virtual_server)
    }
}
