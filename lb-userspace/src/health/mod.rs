//! Health checks of real servers, with keepalived's checkers and semantics.
//!
//! - [`state`]: the pure per-real-server state machine (retry, delay_before_retry,
//!   delay_loop, warmup, alpha, misc_dynamic weights) on a clock passed in.
//! - [`monitor`]: [`HealthMonitor`], one tokio task per real server, which runs the
//!   checkers on the schedule the state machine gives and sends a [`Verdict`] each time
//!   a server's aliveness or dynamic weight changes.
//! - The checkers, one module each: [`tcp`] (`tcp_check`), [`http`] (`http_get`,
//!   `ssl_get`), [`misc`] (`misc_check`), [`dns`] (`dns_check`), [`udp`]
//!   (`udp_check`), [`ping`] (`ping_check`), [`smtp`] (`smtp_check`). Each is an async
//!   function from its spec to an [`Outcome`]; none blocks a thread, and every one is
//!   bounded by its timeout.
//!
//! [`targets_from_config`] turns the configuration into what the monitor runs.

pub mod dns;
pub mod http;
pub mod misc;
pub mod monitor;
pub mod ping;
pub mod smtp;
pub(crate) mod socket;
pub mod state;
pub mod tcp;
pub mod udp;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Protocol, RealServerConfig, VirtualServer};

pub use monitor::{HealthMonitor, Verdict};
pub use socket::ConnectOpts;
pub use state::{CheckerPolicy, Outcome};

/// A real server of a virtual service: the key of a [`Target`] and of its verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealKey {
    /// The virtual service: VIP, port, protocol.
    pub vip: IpAddr,
    pub vport: u16,
    pub protocol: Protocol,
    /// The real server: address and port.
    pub rip: IpAddr,
    pub rport: u16,
}

impl fmt::Display for RealKey {
    /// `198.18.0.100:80/TCP -> 198.18.0.21:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {}",
            SocketAddr::new(self.vip, self.vport),
            self.protocol.as_str(),
            SocketAddr::new(self.rip, self.rport)
        )
    }
}

/// A real server and its checkers: what [`HealthMonitor`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub key: RealKey,
    /// Alive only while every checker is up. Never empty in what
    /// [`targets_from_config`] returns (a server without checkers is always alive).
    pub checkers: Vec<CheckerSpec>,
}

impl Target {
    /// Whether the server counts as alive before any check ran: yes unless a checker
    /// has `alpha` (keepalived starts those checkers failed).
    pub fn initially_alive(&self) -> bool {
        self.checkers.iter().all(|c| !c.policy.alpha)
    }
}

/// One checker: what to probe and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckerSpec {
    pub kind: CheckKind,
    pub policy: CheckerPolicy,
}

/// What a checker probes. Each variant's spec holds values in force (addresses,
/// ports and timeouts resolved).
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    Tcp(tcp::TcpSpec),
    /// `http_get`, or `ssl_get` when its `tls` is set.
    Http(Arc<http::HttpSpec>),
    Misc(Arc<misc::MiscSpec>),
    Dns(dns::DnsSpec),
    Udp(Arc<udp::UdpSpec>),
    Ping(ping::PingSpec),
    Smtp(Arc<smtp::SmtpSpec>),
}

impl CheckKind {
    /// keepalived's keyword for the checker.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Tcp(_) => "tcp_check",
            Self::Http(h) if h.tls.is_some() => "ssl_get",
            Self::Http(_) => "http_get",
            Self::Misc(_) => "misc_check",
            Self::Dns(_) => "dns_check",
            Self::Udp(_) => "udp_check",
            Self::Ping(_) => "ping_check",
            Self::Smtp(_) => "smtp_check",
        }
    }

    /// `tcp_check 198.18.0.21:80`, `misc_check "/usr/local/bin/chk"`: how logs and
    /// verdict reasons name the checker.
    pub fn label(&self) -> String {
        let k = self.keyword();
        match self {
            Self::Tcp(s) => format!("{k} {}", s.conn.addr),
            Self::Http(s) => format!("{k} {}", s.conn.addr),
            Self::Misc(s) => format!("{k} {:?}", s.command),
            Self::Dns(s) => format!("{k} {}", s.conn.addr),
            Self::Udp(s) => format!("{k} {}", s.conn.addr),
            Self::Ping(s) => format!("{k} {}", s.target),
            Self::Smtp(s) => format!("{k} {}", s.conn.addr),
        }
    }
}

fn secs(s: f64) -> Duration {
    // Config values are validated finite and within u32 seconds.
    Duration::from_secs_f64(s.max(0.0))
}

/// The [`CheckerPolicy`] of a checker from its timing in force (a `CheckTiming` of the
/// config, which this module cannot name: the config keeps its checker types private).
macro_rules! policy {
    ($label:expr, $t:expr, $from_start:expr) => {{
        let t = $t;
        CheckerPolicy {
            label: $label,
            retry: t.retry,
            delay_before_retry: secs(t.delay_before_retry),
            delay_loop: secs(t.delay_loop),
            warmup: secs(t.warmup),
            alpha: t.alpha,
            log_all_failures: t.log_all_failures,
            from_start: $from_start,
        }
    }};
}

/// The real servers of `cfg` that have checkers, with their checkers built from the
/// values in force. Servers without a checker are left out: they are always alive.
/// Resolves `misc_check` users with the system's user database (`getpwnam`), once.
pub fn targets_from_config(cfg: &Config) -> Vec<Target> {
    let mut out = Vec::new();
    for vs in &cfg.virtual_server {
        for rs in &vs.real_server {
            let checkers = checkers_of(cfg, vs, rs);
            if checkers.is_empty() {
                continue;
            }
            out.push(Target {
                key: RealKey {
                    vip: vs.ip,
                    vport: vs.port,
                    protocol: vs.protocol,
                    rip: rs.ip,
                    rport: rs.port,
                },
                checkers,
            });
        }
    }
    out
}

fn checkers_of(cfg: &Config, vs: &VirtualServer, rs: &RealServerConfig) -> Vec<CheckerSpec> {
    let mut out = Vec::new();
    // misc_check runs every delay_loop from the start of the previous run (keepalived's
    // `last_ran`); the others from the end of the previous check.
    macro_rules! push {
        ($kind:expr, $t:expr $(,)?) => {{
            let kind = $kind;
            let from_start = matches!(kind, CheckKind::Misc(_));
            let policy = policy!(kind.label(), $t, from_start);
            out.push(CheckerSpec { kind, policy });
        }};
    }
    let defaults = rs.checker_defaults(vs, &cfg.global_defs);
    let timeout = |t: f64| secs(t);

    if let Some(c) = &rs.tcp_check {
        let t = c.timing_in_force(&defaults);
        let conn = ConnectOpts {
            addr: SocketAddr::new(
                c.connect_ip.unwrap_or(rs.ip),
                c.connect_port.unwrap_or(rs.port),
            ),
            bindto: c.bindto,
            bind_port: c.bind_port,
            bind_if: c.bind_if.clone(),
            fwmark: c.fwmark,
            timeout: timeout(t.connect_timeout),
        };
        push!(CheckKind::Tcp(tcp::TcpSpec { conn }), t);
    }
    for (c, tls) in [(&rs.http_get, false), (&rs.ssl_get, true)] {
        if let Some(c) = c {
            let t = c.timing_in_force(&defaults);
            push!(
                CheckKind::Http(Arc::new(http::HttpSpec::from_config(
                    c,
                    rs,
                    t.connect_timeout,
                    tls
                ))),
                t,
            );
        }
    }
    if let Some(c) = &rs.misc_check {
        let t = c.timing_in_force(&defaults);
        let user = c.user.as_deref().or(cfg.global_defs.script_user.as_deref());
        push!(
            CheckKind::Misc(Arc::new(misc::MiscSpec::new(
                &c.misc_path,
                timeout(t.connect_timeout),
                c.misc_dynamic,
                user,
            ))),
            t,
        );
    }
    if let Some(c) = &rs.dns_check {
        let t = c.timing_in_force(&defaults);
        let port = c
            .connect_port
            .unwrap_or(if rs.port == 0 { 53 } else { rs.port });
        let conn = ConnectOpts {
            addr: SocketAddr::new(c.connect_ip.unwrap_or(rs.ip), port),
            bindto: c.bindto,
            bind_port: c.bind_port,
            bind_if: c.bind_if.clone(),
            fwmark: c.fwmark,
            timeout: timeout(t.connect_timeout),
        };
        push!(
            CheckKind::Dns(dns::DnsSpec {
                conn,
                qtype: c.query_type.code(),
                qtype_name: c.query_type.as_str(),
                name: c.name.clone(),
            }),
            t,
        );
    }
    if let Some(c) = &rs.udp_check {
        let t = c.timing_in_force(&defaults);
        let conn = ConnectOpts {
            addr: SocketAddr::new(
                c.connect_ip.unwrap_or(rs.ip),
                c.connect_port.unwrap_or(rs.port),
            ),
            bindto: c.bindto,
            bind_port: c.bind_port,
            bind_if: c.bind_if.clone(),
            fwmark: c.fwmark,
            timeout: timeout(t.connect_timeout),
        };
        let require = match (c.require_reply.is_required(), c.require_reply.data()) {
            (false, _) => udp::Reply::NotRequired,
            (true, None) => udp::Reply::Any,
            (true, Some(d)) => udp::Reply::StartsWith(d.to_vec()),
        };
        push!(
            CheckKind::Udp(Arc::new(udp::UdpSpec {
                conn,
                payload: c
                    .payload
                    .as_ref()
                    .map(|p| p.0.clone())
                    .unwrap_or_else(udp::default_payload),
                reply: require,
                min_reply_length: c.min_reply_length.into(),
                max_reply_length: c.max_reply_length.into(),
            })),
            t,
        );
    }
    if let Some(c) = &rs.ping_check {
        let t = c.timing_in_force(&defaults);
        push!(
            CheckKind::Ping(ping::PingSpec {
                target: c.connect_ip.unwrap_or(rs.ip),
                bindto: c.bindto,
                bind_if: c.bind_if.clone(),
                fwmark: c.fwmark,
                timeout: timeout(t.connect_timeout),
            }),
            t,
        );
    }
    if let Some(c) = &rs.smtp_check {
        let t = c.timing_in_force(&defaults);
        let conn = ConnectOpts {
            addr: SocketAddr::new(c.connect_ip.unwrap_or(rs.ip), c.connect_port.unwrap_or(25)),
            bindto: c.bindto,
            bind_port: c.bind_port,
            bind_if: c.bind_if.clone(),
            fwmark: c.fwmark,
            timeout: timeout(t.connect_timeout),
        };
        let helo_name = c
            .helo_name
            .clone()
            .or_else(|| cfg.global_defs.smtp_helo_name.clone())
            .unwrap_or_else(crate::net::host_name);
        push!(
            CheckKind::Smtp(Arc::new(smtp::SmtpSpec { conn, helo_name })),
            t,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[global_defs]
script_user = "nobody"
smtp_helo_name = "lb1.example.org"

[[virtual_server]]
ip = "198.18.0.100"
port = 80
interface = "eth0"
delay_loop = 6
retry = 2
virtualhost = "www.example.org"

[[virtual_server.real_server]]
ip = "198.18.0.21"
tcp_check = { connect_timeout = 3 }
http_get = { url = [{ path = "/health", digest = "0123456789abcdef0123456789abcdef" }] }
ssl_get = { url = [{ path = "/", regex = "ok" }], connect_port = 443, enable_sni = true }

[[virtual_server.real_server]]
ip = "198.18.0.22"
alpha = true
misc_check = { misc_path = "/usr/local/bin/chk --fast", misc_dynamic = true }
smtp_check = {}
ping_check = { connect_ip = "198.18.0.99" }

[[virtual_server.real_server]]
ip = "198.18.0.23"

[[virtual_server]]
ip = "198.18.0.100"
port = 53
protocol = "UDP"
interface = "eth0"

[[virtual_server.real_server]]
ip = "198.18.0.31"
dns_check = { name = "example.org", type = "A" }
udp_check = { payload = "00ff" }
"#;

    #[test]
    fn check_targets_from_config() {
        let cfg = Config::parse(CONFIG, "t.toml").unwrap_or_else(|e| panic!("{e:#}"));
        let targets = targets_from_config(&cfg);
        assert_eq!(targets.len(), 3, "the server without checkers is left out");

        let web = &targets[0];
        assert_eq!(web.key.to_string(), "198.18.0.100:80/TCP -> 198.18.0.21:80");
        assert!(web.initially_alive());
        let kinds: Vec<_> = web.checkers.iter().map(|c| c.kind.keyword()).collect();
        assert_eq!(kinds, vec!["tcp_check", "http_get", "ssl_get"]);
        let tcp = &web.checkers[0];
        assert_eq!(tcp.policy.label, "tcp_check 198.18.0.21:80");
        assert_eq!(
            (tcp.policy.retry, tcp.policy.delay_loop, tcp.policy.warmup),
            (2, Duration::from_secs(6), Duration::from_secs(6))
        );
        let CheckKind::Tcp(t) = &tcp.kind else {
            panic!("{tcp:?}")
        };
        assert_eq!(t.conn.timeout, Duration::from_secs(3));
        let CheckKind::Http(h) = &web.checkers[1].kind else {
            panic!()
        };
        assert_eq!(h.tls, None);
        assert_eq!(h.urls[0].host, "www.example.org");
        assert_eq!(h.urls[0].digest.map(|d| d[1]), Some(0x23));
        assert_eq!(
            web.checkers[1].policy.delay_before_retry,
            Duration::from_secs(3)
        );
        let CheckKind::Http(s) = &web.checkers[2].kind else {
            panic!()
        };
        assert_eq!(s.conn.addr.to_string(), "198.18.0.21:443");
        assert_eq!(
            s.tls.as_ref().unwrap().sni.as_deref(),
            Some("www.example.org")
        );
        assert!(s.urls[0].regex.is_some());

        let other = &targets[1];
        assert!(!other.initially_alive(), "alpha");
        let CheckKind::Misc(m) = &other.checkers[0].kind else {
            panic!()
        };
        assert_eq!(m.argv, vec!["/usr/local/bin/chk", "--fast"]);
        assert!(m.dynamic);
        assert_eq!(
            m.timeout,
            Duration::from_secs(6),
            "misc_timeout: delay_loop"
        );
        assert!(
            matches!(&m.run_as, crate::process::RunAs::User { name, .. } if name == "nobody"),
            "global script_user: {:?}",
            m.run_as
        );
        assert!(other.checkers[0].policy.from_start);
        assert_eq!(other.checkers[0].policy.retry, 2, "inherited");
        let CheckKind::Smtp(smtp) = &other.checkers[2].kind else {
            panic!()
        };
        assert_eq!(smtp.conn.addr.to_string(), "198.18.0.22:25");
        assert_eq!(smtp.helo_name, "lb1.example.org");
        let CheckKind::Ping(p) = &other.checkers[1].kind else {
            panic!()
        };
        assert_eq!(p.target.to_string(), "198.18.0.99");
        assert_eq!(other.checkers[1].policy.label, "ping_check 198.18.0.99");

        let dns = &targets[2];
        assert_eq!(dns.key.protocol, Protocol::Udp);
        let CheckKind::Dns(d) = &dns.checkers[0].kind else {
            panic!()
        };
        assert_eq!(
            (d.conn.addr.port(), d.qtype, d.name.as_str()),
            (53, 1, "example.org")
        );
        assert_eq!(dns.checkers[0].policy.retry, 3, "DNS_CHECK's own default");
        let CheckKind::Udp(u) = &dns.checkers[1].kind else {
            panic!()
        };
        assert_eq!(u.payload, vec![0x00, 0xff]);
        assert_eq!(u.reply, udp::Reply::NotRequired);

        // The same config twice gives equal targets: a reload changes nothing.
        assert_eq!(targets_from_config(&cfg), targets);
    }
}
