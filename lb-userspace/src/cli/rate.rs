//! `xlb status --rate`: packets, bytes and new flows per second per service and real
//! server, as `ipvsadm -Ln --rate` shows them, from two readings of the per-CPU counters
//! ([`crate::cli::status::read`]) some time apart, with each real server's ActiveConn /
//! InActConn from the second reading.
//!
//! A counter lower in the second reading than in the first was reset in between (the
//! maps were made anew, a real server's slot was given to another one): it counts from
//! zero, as Prometheus' `rate()` takes a reset, never as a negative rate.

use std::net::IpAddr;

use serde::Serialize;

use crate::cli::status::Status;

/// Per-second rates of one service or real server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rates {
    /// New flows (connections) per second: ipvsadm's CPS.
    pub new_flows_per_s: f64,
    pub packets_per_s: f64,
    pub bytes_per_s: f64,
}

/// Cumulative counters of one reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
}

/// How much a counter grew from `before` to `after`: all of `after` when it went down
/// (a reset: it counts from zero since).
pub fn growth(before: u64, after: u64) -> u64 {
    after.checked_sub(before).unwrap_or(after)
}

impl Rates {
    /// The rates of counters read as `before` (`None`: absent then, so counted from
    /// zero) and as `after`, `secs` seconds later (`secs` > 0).
    pub fn between(before: Option<Totals>, after: Totals, secs: f64) -> Rates {
        let b = before.unwrap_or_default();
        let per_s = |b, a| growth(b, a) as f64 / secs;
        Rates {
            new_flows_per_s: per_s(b.new_flows, after.new_flows),
            packets_per_s: per_s(b.packets, after.packets),
            bytes_per_s: per_s(b.bytes, after.bytes),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RateStatus {
    /// Seconds between the two readings, as measured.
    pub interval_s: f64,
    pub services: Vec<ServiceRate>,
}

#[derive(Debug, Serialize)]
pub struct ServiceRate {
    pub vip: IpAddr,
    pub port: u16,
    pub protocol: &'static str,
    pub scheduler: &'static str,
    #[serde(flatten)]
    pub rates: Rates,
    pub real_servers: Vec<RealRate>,
}

#[derive(Debug, Serialize)]
pub struct RealRate {
    pub ip: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub active_conns: u64,
    pub inactive_conns: u64,
    #[serde(flatten)]
    pub rates: Rates,
}

/// The rates from reading `before` to reading `after`, `secs` seconds later. Services
/// and real servers are the ones of `after`, matched by address, port and protocol.
pub fn between(before: &Status, after: &Status, secs: f64) -> RateStatus {
    let services = after
        .services
        .iter()
        .map(|s| {
            let old = before
                .services
                .iter()
                .find(|o| (o.vip, o.port, o.protocol) == (s.vip, s.port, s.protocol));
            let totals = |p, b, n| Totals {
                packets: p,
                bytes: b,
                new_flows: n,
            };
            let real_servers = s
                .real_servers
                .iter()
                .map(|r| {
                    let was = old
                        .and_then(|o| {
                            o.real_servers
                                .iter()
                                .find(|x| (x.ip, x.port) == (r.ip, r.port))
                        })
                        .map(|x| totals(x.packets, x.bytes, x.new_flows));
                    RealRate {
                        ip: r.ip,
                        port: r.port,
                        weight: r.weight,
                        active_conns: r.active_conns,
                        inactive_conns: r.inactive_conns,
                        rates: Rates::between(was, totals(r.packets, r.bytes, r.new_flows), secs),
                    }
                })
                .collect();
            ServiceRate {
                vip: s.vip,
                port: s.port,
                protocol: s.protocol,
                scheduler: s.scheduler,
                rates: Rates::between(
                    old.map(|o| totals(o.packets, o.bytes, o.new_flows)),
                    totals(s.packets, s.bytes, s.new_flows),
                    secs,
                ),
                real_servers,
            }
        })
        .collect();
    RateStatus {
        interval_s: secs,
        services,
    }
}

fn addr(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// `ipvsadm -Ln --rate`'s table (one direction: DR sees only what clients send), with
/// ActiveConn / InActConn per real server. Rates are rounded to whole units.
pub fn render(r: &RateStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let row = |out: &mut String, head: String, active: String, inactive: String, x: &Rates| {
        let _ = writeln!(
            out,
            "{:<40} {:>10} {:>10} {:>10} {:>10} {:>12}",
            head,
            active,
            inactive,
            x.new_flows_per_s.round(),
            x.packets_per_s.round(),
            x.bytes_per_s.round()
        );
    };
    let _ = writeln!(
        out,
        "{:<40} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "Prot LocalAddress:Port", "", "", "CPS", "PPS", "BPS"
    );
    let header = format!(
        "{:<40} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "  -> RemoteAddress:Port Weight", "ActiveConn", "InActConn", "", "", ""
    );
    let _ = writeln!(out, "{}", header.trim_end());
    for s in &r.services {
        let head = format!("{} {} {}", s.protocol, addr(s.vip, s.port), s.scheduler);
        row(&mut out, head, String::new(), String::new(), &s.rates);
        for rs in &s.real_servers {
            row(
                &mut out,
                format!("  -> {} {}", addr(rs.ip, rs.port), rs.weight),
                rs.active_conns.to_string(),
                rs.inactive_conns.to_string(),
                &rs.rates,
            );
        }
    }
    let _ = writeln!(out, "rates over {:.1} s", r.interval_s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::status::{RealStatus, ServiceStatus};

    fn t(packets: u64, bytes: u64, new_flows: u64) -> Totals {
        Totals {
            packets,
            bytes,
            new_flows,
        }
    }

    #[test]
    fn a_rate_is_the_growth_over_the_interval() {
        let r = Rates::between(Some(t(100, 10_000, 4)), t(300, 30_000, 8), 2.0);
        assert_eq!(
            r,
            Rates {
                new_flows_per_s: 2.0,
                packets_per_s: 100.0,
                bytes_per_s: 10_000.0
            }
        );
    }

    #[test]
    fn a_counter_that_went_down_was_reset_and_counts_from_zero() {
        assert_eq!(growth(1_000, 30), 30);
        assert_eq!(
            growth(u64::MAX, 5),
            5,
            "a wrap counts as a reset, not a huge rate"
        );
        let r = Rates::between(Some(t(1_000, 50_000, 10)), t(40, 4_000, 2), 1.0);
        assert_eq!(
            (r.packets_per_s, r.bytes_per_s, r.new_flows_per_s),
            (40.0, 4000.0, 2.0)
        );
        let r = Rates::between(None, t(10, 20, 1), 0.5);
        assert_eq!(r.packets_per_s, 20.0, "absent before: counted from zero");
        let still = Rates::between(Some(t(7, 7, 7)), t(7, 7, 7), 1.0);
        assert_eq!(still, Rates::default());
    }

    fn status(packets: u64, rs: Vec<(&str, u64)>) -> Status {
        Status {
            daemon: None,
            vrrp: Vec::new(),
            interfaces: Vec::new(),
            services: vec![ServiceStatus {
                vip: "198.18.0.100".parse().unwrap(),
                port: 80,
                protocol: "TCP",
                scheduler: "rr",
                active: true,
                table_len: 0,
                persistence_timeout: 0,
                lb_kind: "DR",
                packets,
                bytes: packets * 100,
                new_flows: packets / 10,
                real_servers: rs
                    .into_iter()
                    .map(|(ip, packets)| RealStatus {
                        ip: ip.parse().unwrap(),
                        port: 80,
                        weight: 1,
                        alive: true,
                        mac: None,
                        ifindex: 2,
                        packets,
                        bytes: packets * 100,
                        new_flows: packets / 10,
                        active_conns: 3,
                        inactive_conns: 1,
                    })
                    .collect(),
                also: Vec::new(),
            }],
            drops: Vec::new(),
            passes: Vec::new(),
            icmp_forwarded: Default::default(),
            nat_replies: Default::default(),
            connections: 0,
            conn_evictions: Default::default(),
            conn_slots: None,
            conn_sync: None,
        }
    }

    #[test]
    fn readings_are_matched_by_service_and_real_server() {
        let before = status(100, vec![("198.18.0.21", 60), ("198.18.0.22", 40)]);
        // .22 reset (its slot made anew), .23 added meanwhile.
        let after = status(
            400,
            vec![
                ("198.18.0.21", 260),
                ("198.18.0.22", 10),
                ("198.18.0.23", 30),
            ],
        );
        let r = between(&before, &after, 2.0);
        assert_eq!(r.services[0].rates.packets_per_s, 150.0);
        let pps: Vec<f64> = r.services[0]
            .real_servers
            .iter()
            .map(|x| x.rates.packets_per_s)
            .collect();
        assert_eq!(pps, [100.0, 5.0, 15.0]);
        let out = render(&r);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].ends_with("CPS        PPS          BPS"), "{out}");
        assert!(lines[2].starts_with("TCP 198.18.0.100:80 rr"), "{out}");
        let cols: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(
            cols,
            ["->", "198.18.0.21:80", "1", "3", "1", "10", "100", "10000"],
            "{out}"
        );
        assert_eq!(lines.last(), Some(&"rates over 2.0 s"));
    }
}
