//! From the configuration to what [`HealthMonitor`](super::HealthMonitor) runs: a
//! [`Target`] per real server with checkers, each checker's spec with the values in
//! force (addresses, ports, timeouts resolved) and its [`CheckerPolicy`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::http::{BodyRegex, HttpSpec, TlsOpts, UrlSpec, parse_digest};
use super::{
    CheckKind, CheckerPolicy, CheckerSpec, ConnectOpts, RealKey, Target, dns, misc, ping, smtp,
    tcp, udp,
};
use crate::config::{Config, HttpGet, RealServerConfig, VirtualServer};

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

/// The [`ConnectOpts`] of a checker from its `connection` keys (the same on every
/// checker table, whose types this module cannot name either): to `connect_ip`, else
/// `default_ip`, port `connect_port`, else `default_port`, within `connect_timeout`
/// seconds.
macro_rules! connect_opts {
    ($checker:expr, $default_ip:expr, $default_port:expr, $connect_timeout:expr) => {{
        let c = $checker;
        ConnectOpts {
            addr: SocketAddr::new(
                c.connect_ip.unwrap_or($default_ip),
                c.connect_port.unwrap_or($default_port),
            ),
            bindto: c.bindto,
            bind_port: c.bind_port,
            bind_if: c.bind_if.clone(),
            fwmark: c.fwmark,
            timeout: secs($connect_timeout),
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

    if let Some(c) = &rs.tcp_check {
        let t = c.timing_in_force(&defaults);
        let conn = connect_opts!(c, rs.ip, rs.port, t.connect_timeout);
        push!(CheckKind::Tcp(tcp::TcpSpec { conn }), t);
    }
    for (c, tls) in [(&rs.http_get, false), (&rs.ssl_get, true)] {
        if let Some(c) = c {
            let t = c.timing_in_force(&defaults);
            let conn = connect_opts!(c, rs.ip, rs.port, t.connect_timeout);
            push!(CheckKind::Http(Arc::new(http_spec(c, conn, tls))), t);
        }
    }
    if let Some(c) = &rs.misc_check {
        let t = c.timing_in_force(&defaults);
        push!(
            CheckKind::Misc(Arc::new(misc::MiscSpec::new(
                &c.misc_path,
                secs(t.connect_timeout),
                c.misc_dynamic,
                c.user.as_deref(),
                &crate::process::Policy::of(&cfg.global_defs),
            ))),
            t,
        );
    }
    if let Some(c) = &rs.dns_check {
        let t = c.timing_in_force(&defaults);
        let port = if rs.port == 0 { 53 } else { rs.port };
        let conn = connect_opts!(c, rs.ip, port, t.connect_timeout);
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
        let conn = connect_opts!(c, rs.ip, rs.port, t.connect_timeout);
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
                timeout: secs(t.connect_timeout),
            }),
            t,
        );
    }
    if let Some(c) = &rs.smtp_check {
        let t = c.timing_in_force(&defaults);
        let helo_name = c
            .helo_name
            .clone()
            .or_else(|| cfg.global_defs.smtp_helo_name.clone())
            .unwrap_or_else(crate::net::host_name);
        // The check's own target and one checker per `host` (keepalived 2 makes each a
        // checker of its own): the server is alive only while all pass. A target listed
        // twice is checked once.
        let mut seen = Vec::new();
        for h in c.hosts() {
            let conn = connect_opts!(
                &h,
                rs.ip,
                25,
                h.connect_timeout.unwrap_or(t.connect_timeout)
            );
            if seen.contains(&conn) {
                continue;
            }
            seen.push(conn.clone());
            push!(
                CheckKind::Smtp(Arc::new(smtp::SmtpSpec {
                    conn,
                    helo_name: helo_name.clone()
                })),
                t,
            );
        }
    }
    out
}

/// The spec of an `http_get`, or with `tls` an `ssl_get`, connecting as `conn` says.
fn http_spec(c: &HttpGet, conn: ConnectOpts, tls: bool) -> HttpSpec {
    let addr = conn.addr;
    let default_port = if tls { 443 } else { 80 };
    // A virtualhost is sent as written; the address gets `:port` unless the port
    // is the scheme's default.
    let host_of = |vhost: Option<&str>| match vhost {
        Some(v) => v.to_owned(),
        None if addr.port() == default_port => match addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        },
        None => addr.to_string(),
    };
    let urls = c
        .url
        .iter()
        .map(|u| UrlSpec {
            path: u.path.clone(),
            host: host_of(u.virtualhost.as_deref().or(c.virtualhost.as_deref())),
            status: u.status_code.clone(),
            digest: u.digest.as_deref().and_then(parse_digest),
            // Validated when the config was parsed.
            regex: u
                .regex
                .as_deref()
                .and_then(|r| regex::bytes::Regex::new(r).ok())
                .map(BodyRegex),
            regex_no_match: u.regex_no_match,
        })
        .collect();
    let tls = tls.then(|| TlsOpts {
        sni: if c.enable_sni {
            c.sni_name.clone().or_else(|| c.virtualhost.clone())
        } else {
            None
        },
        close_notify: c.tls_compliant,
    });
    HttpSpec {
        conn,
        tls,
        protocol: c.http_protocol,
        urls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Protocol;

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
        assert_eq!(m.command, "/usr/local/bin/chk --fast");
        assert!(m.dynamic);
        assert_eq!(
            m.timeout,
            Duration::from_secs(6),
            "misc_timeout: delay_loop"
        );
        assert_eq!(
            m.policy.script_user.as_deref(),
            Some("nobody"),
            "global script_user"
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

#[cfg(test)]
mod connection_tests {
    use super::*;

    /// Every connection key of every checker on one real server of port 0, and each
    /// kind's default port on another.
    const CONFIG: &str = r#"
[[virtual_server]]
ip = "198.18.0.100"
port = 0
persistence_timeout = 300
interface = "eth0"

[[virtual_server.real_server]]
ip = "198.18.0.21"
port = 0
tcp_check = { connect_ip = "198.18.0.41", connect_port = 81, bindto = "198.18.0.2", bind_port = 4001, bind_if = "eth1", fwmark = 7, connect_timeout = 1.5 }
http_get = { url = [{ path = "/" }], connect_ip = "198.18.0.42", connect_port = 82, bindto = "198.18.0.2", bind_port = 4002, bind_if = "eth1", fwmark = 7, connect_timeout = 1.5 }
ssl_get = { url = [{ path = "/" }], connect_ip = "198.18.0.43", connect_port = 83, bindto = "198.18.0.2", bind_port = 4003, bind_if = "eth1", fwmark = 7, connect_timeout = 1.5 }
dns_check = { name = "example.org", connect_ip = "198.18.0.44", connect_port = 84, bindto = "198.18.0.2", bind_port = 4004, bind_if = "eth1", fwmark = 7, connect_timeout = 1.5 }
udp_check = { connect_ip = "198.18.0.45", connect_port = 85, bindto = "198.18.0.2", bind_port = 4005, bind_if = "eth1", fwmark = 7, connect_timeout = 1.5 }
smtp_check = { connect_ip = "198.18.0.46", connect_port = 86, bindto = "198.18.0.2", bind_port = 4006, bind_if = "eth1", fwmark = 7, connect_timeout = 1.5 }

[[virtual_server.real_server]]
ip = "198.18.0.22"
port = 0
dns_check = { name = "example.org" }
smtp_check = {}
"#;

    fn conn(kind: &CheckKind) -> &ConnectOpts {
        match kind {
            CheckKind::Tcp(s) => &s.conn,
            CheckKind::Http(s) => &s.conn,
            CheckKind::Dns(s) => &s.conn,
            CheckKind::Udp(s) => &s.conn,
            CheckKind::Smtp(s) => &s.conn,
            CheckKind::Misc(_) | CheckKind::Ping(_) => panic!("{kind:?} does not connect"),
        }
    }

    #[test]
    fn every_checker_connects_as_its_connection_keys_say() {
        let cfg = Config::parse(CONFIG, "t.toml").unwrap_or_else(|e| panic!("{e:#}"));
        let targets = targets_from_config(&cfg);
        let all = &targets[0].checkers;
        assert_eq!(all.len(), 6);
        for (i, c) in all.iter().enumerate() {
            let n = 1 + i as u16;
            let conn = conn(&c.kind);
            assert_eq!(
                *conn,
                ConnectOpts {
                    addr: SocketAddr::new([198, 18, 0, 40 + n as u8].into(), 80 + n),
                    bindto: Some([198, 18, 0, 2].into()),
                    bind_port: Some(4000 + n),
                    bind_if: Some("eth1".to_owned()),
                    fwmark: Some(7),
                    timeout: Duration::from_millis(1500),
                },
                "{}",
                c.kind.keyword()
            );
        }

        // Without connect_port, on a real server of port 0: DNS's and SMTP's ports.
        let defaults: Vec<_> = targets[1]
            .checkers
            .iter()
            .map(|c| conn(&c.kind).addr.to_string())
            .collect();
        assert_eq!(defaults, vec!["198.18.0.22:53", "198.18.0.22:25"]);
    }
}
