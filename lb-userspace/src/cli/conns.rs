//! `xlb conns`: the tracked connections, read straight from the pinned maps and listed
//! as `ipvsadm -Lnc` lists them. It needs no running controller.

use std::{net::SocketAddr, path::Path};

use lb_common::{
    CONN_FIN, CONN_RST, CONN_SYN_RECV, ConnValue, PROTO_UDP, REAL_F_IN_USE, Timeouts, ip_of,
};
use serde::Serialize;

use crate::dataplane::{
    Maps,
    conn_table::{Evictions, LiveConn, Tables, now_ticks},
};

/// One tracked connection, as `ipvsadm -Lnc` would list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conn {
    pub protocol: &'static str,
    pub client: SocketAddr,
    pub virtual_service: SocketAddr,
    /// Real-server index (`xlb_reals`).
    pub real: u32,
    /// The real server's address (filled in by [`read`]).
    pub real_server: Option<SocketAddr>,
    pub service_id: u16,
    pub state: &'static str,
    /// Seconds until the entry expires if no packet comes.
    pub expires_in_s: u64,
}

fn state_name(v: &ConnValue) -> &'static str {
    match v.state {
        CONN_FIN => "FIN_WAIT",
        CONN_RST => "CLOSE",
        CONN_SYN_RECV => "SYN_RECV",
        _ if v.proto == PROTO_UDP => "UDP",
        _ => "ESTABLISHED",
    }
}

impl Conn {
    /// `live` as listed at tick `now`, under the program's timeouts `t`.
    fn of(live: &LiveConn, now: u32, t: &Timeouts) -> Self {
        let v = &live.value;
        let left = v.timeout(t).saturating_sub(now.wrapping_sub(v.seen));
        Self {
            protocol: if v.proto == PROTO_UDP { "UDP" } else { "TCP" },
            client: live.client,
            virtual_service: live.virtual_service,
            real: v.real,
            real_server: None,
            service_id: v.service_id,
            state: state_name(v),
            expires_in_s: lb_common::seconds(left),
        }
    }
}

/// Every live connection of `tables` at tick `now` (real servers not filled in).
pub fn list(tables: &Tables, now: u32) -> Vec<Conn> {
    tables
        .live(now)
        .iter()
        .map(|c| Conn::of(c, now, &tables.timeouts))
        .collect()
}

/// What `xlb conns` shows: the connections, and what full buckets cost.
pub struct Listing {
    pub conns: Vec<Conn>,
    pub evictions: Evictions,
}

/// The live connections of the tables pinned under `pin_path`, with their real servers,
/// ordered by virtual service and client, and the eviction counters (`xlb conns`).
pub fn read(pin_path: &Path) -> anyhow::Result<Listing> {
    let maps = Maps::from_pins(pin_path)?;
    let mut conns = list(&maps.conn_tables(false)?, now_ticks());
    // From the mapped array, as `xlb status` reads it: no syscall per connection.
    for c in conns.iter_mut().filter(|c| c.real < maps.sizes().reals) {
        let r = maps.reals_view.get(c.real as usize);
        if r.flags & REAL_F_IN_USE != 0 && u32::from(c.service_id) == r.service_id {
            c.real_server = Some(SocketAddr::new(ip_of(&r.addr), r.port));
        }
    }
    conns.sort_by_key(|c| (c.virtual_service, c.client));
    Ok(Listing {
        conns,
        evictions: Evictions::read(&maps.conn_evictions),
    })
}

/// `ipvsadm -Lnc`'s columns, then the eviction counters that are not zero.
pub fn render(listing: &Listing) -> String {
    let conns = &listing.conns;
    use std::fmt::Write;
    let mut out = format!(
        "{:<4} {:>7} {:<12} {:<45} {:<45} {}\n",
        "pro", "expire", "state", "source", "virtual", "destination"
    );
    for c in conns {
        let dest = c
            .real_server
            .map_or_else(|| format!("(slot {}, gone)", c.real), |a| a.to_string());
        let _ = writeln!(
            out,
            "{:<4} {:>4}:{:02} {:<12} {:<45} {:<45} {}",
            c.protocol,
            c.expires_in_s / 60,
            c.expires_in_s % 60,
            c.state,
            c.client.to_string(),
            c.virtual_service.to_string(),
            dest
        );
    }
    let _ = writeln!(out, "{} connections", conns.len());
    for line in listing.evictions.lines() {
        let _ = writeln!(out, "{line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use lb_common::{CONN_OPEN, PROTO_TCP, ticks};

    use super::*;

    fn live(state: u8, proto: u8, seen: u32) -> LiveConn {
        LiveConn {
            client: "198.18.1.1:40000".parse().unwrap(),
            virtual_service: "198.18.0.100:80".parse().unwrap(),
            value: ConnValue {
                real: 3,
                service_id: 1,
                state,
                proto,
                seen,
                check: 0,
            },
        }
    }

    #[test]
    fn states_and_expiry_are_named_as_ipvsadm_does() {
        let t = Timeouts::IPVS;
        let now = 1000;
        let c = Conn::of(&live(CONN_OPEN, PROTO_TCP, now), now, &t);
        assert_eq!((c.protocol, c.state), ("TCP", "ESTABLISHED"));
        assert_eq!(c.expires_in_s, lb_common::seconds(t.tcp));
        let c = Conn::of(&live(CONN_FIN, PROTO_TCP, now - ticks(20)), now, &t);
        assert_eq!(c.state, "FIN_WAIT");
        assert_eq!(c.expires_in_s, lb_common::seconds(t.tcp_fin - ticks(20)));
        assert_eq!(
            Conn::of(&live(CONN_RST, PROTO_TCP, now), now, &t).state,
            "CLOSE"
        );
        let c = Conn::of(&live(CONN_OPEN, PROTO_UDP, now), now, &t);
        assert_eq!((c.protocol, c.state), ("UDP", "UDP"));
        let c = Conn::of(&live(CONN_SYN_RECV, PROTO_TCP, now - ticks(10)), now, &t);
        assert_eq!(c.state, "SYN_RECV");
        assert_eq!(c.expires_in_s, lb_common::seconds(t.syn_recv - ticks(10)));
    }

    #[test]
    fn render_lists_ipvsadm_columns_and_gone_slots() {
        let mut c = Conn::of(&live(CONN_OPEN, PROTO_TCP, 10), 10, &Timeouts::IPVS);
        c.expires_in_s = 125;
        let mut known = c.clone();
        known.real_server = Some("198.18.0.11:80".parse().unwrap());
        let listing = Listing {
            conns: vec![c, known],
            evictions: Evictions {
                syn_recv: 7,
                ..Default::default()
            },
        };
        let out = render(&listing);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert!(lines[0].starts_with("pro   expire state"), "{out}");
        assert!(lines[1].starts_with("TCP     2:05 ESTABLISHED  198.18.1.1:40000"));
        assert!(lines[1].ends_with("(slot 3, gone)"), "{out}");
        assert!(lines[2].ends_with("198.18.0.11:80"), "{out}");
        assert_eq!(lines[3], "2 connections");
        assert_eq!(
            lines[4],
            "half-open connections (SYN_RECV) evicted from full buckets: 7"
        );
    }
}
