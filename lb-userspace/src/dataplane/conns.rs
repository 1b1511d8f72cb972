//! The connection tables as userspace reads them (`xlb status`, `xlb conns`, tests, the
//! bench). The XDP program owns them (layout: `lb_common::conn`); they are mmap-able
//! arrays, so a whole table is read from memory instead of a syscall per bucket.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use aya::maps::MapData;
use lb_common::{
    CONN_FIN, CONN_RST, ConnBucket4, ConnBucket6, ConnValue, PROTO_UDP, Timeouts, clock_ticks,
    conn_hash4, conn_hash6,
};
use serde::Serialize;

use crate::dataplane::mmap::MappedArray;

/// The table clock now (`CLOCK_MONOTONIC_COARSE` is what `bpf_ktime_get_coarse_ns` reads).
pub fn now_ticks() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    clock_ticks(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Both tables, and the seed their hash uses.
pub struct Tables {
    pub v4: MappedArray<ConnBucket4>,
    pub v6: MappedArray<ConnBucket6>,
    pub seed: u32,
    /// The timeouts the program applies.
    pub timeouts: Timeouts,
}

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
        _ if v.proto == PROTO_UDP => "UDP",
        _ => "ESTABLISHED",
    }
}

fn conn_of(client: SocketAddr, vip: SocketAddr, v: &ConnValue, now: u32, t: &Timeouts) -> Conn {
    let left = v.timeout(t).saturating_sub(now.wrapping_sub(v.seen));
    Conn {
        protocol: if v.proto == PROTO_UDP { "UDP" } else { "TCP" },
        client,
        virtual_service: vip,
        real: v.real,
        real_server: None,
        service_id: v.service_id,
        state: state_name(v),
        expires_in_s: lb_common::seconds(left),
    }
}

impl Tables {
    /// Maps the tables of `b4` and `b6` buckets (read-only unless `writable`).
    pub fn open(
        v4: &MapData,
        b4: u32,
        v6: &MapData,
        b6: u32,
        meta: &lb_common::Meta,
        writable: bool,
    ) -> io::Result<Self> {
        if !b4.is_power_of_two() || !b6.is_power_of_two() {
            return Err(io::Error::other(format!(
                "connection tables of {b4} / {b6} buckets: not powers of two"
            )));
        }
        Ok(Self {
            v4: MappedArray::new(v4, b4, writable)?,
            v6: MappedArray::new(v6, b6, writable)?,
            seed: meta.conn_seed,
            timeouts: meta.timeouts,
        })
    }

    /// The bucket of an IPv4 flow.
    pub fn bucket4(&self, key: &lb_common::FlowKey4) -> usize {
        (conn_hash4(key, self.seed) as usize) & (self.v4.len() - 1)
    }

    /// Calls `f(client, virtual service, value)` for every live slot at tick `now`.
    fn each_live(&self, now: u32, mut f: impl FnMut(SocketAddr, SocketAddr, &ConnValue)) {
        let t = &self.timeouts;
        for i in 0..self.v4.len() {
            for s in self.v4.get(i).slots {
                let k = s.key;
                if s.value.live(conn_hash4(&k, self.seed), now, t) {
                    let ip = |a| IpAddr::V4(Ipv4Addr::from(a));
                    f(
                        SocketAddr::new(ip(k.saddr), k.sport),
                        SocketAddr::new(ip(k.daddr), k.dport),
                        &s.value,
                    );
                }
            }
        }
        for i in 0..self.v6.len() {
            for s in self.v6.get(i).slots {
                let k = s.key;
                if s.value.live(conn_hash6(&k, self.seed), now, t) {
                    let ip = |a| IpAddr::V6(Ipv6Addr::from(a));
                    f(
                        SocketAddr::new(ip(k.saddr), k.sport),
                        SocketAddr::new(ip(k.daddr), k.dport),
                        &s.value,
                    );
                }
            }
        }
    }

    /// Every live connection at tick `now`.
    pub fn live(&self, now: u32) -> Vec<Conn> {
        let mut out = Vec::new();
        self.each_live(now, |client, vip, v| {
            out.push(conn_of(client, vip, v, now, &self.timeouts));
        });
        out
    }

    /// How many live connections there are (without building the list).
    pub fn count_live(&self, now: u32) -> usize {
        let mut n = 0;
        self.each_live(now, |_, _, _| n += 1);
        n
    }
}

/// The live connections of the tables pinned under `pin_path`, with their real servers,
/// ordered by virtual service and client (`xlb conns`).
pub fn read(pin_path: &std::path::Path) -> anyhow::Result<Vec<Conn>> {
    let maps = crate::dataplane::Maps::from_pins(pin_path)?;
    let mut conns = maps.conn_tables(false)?.live(now_ticks());
    for c in &mut conns {
        if let Ok(r) = maps.reals.get(&c.real, 0) {
            if r.flags & lb_common::REAL_F_IN_USE != 0 && u32::from(c.service_id) == r.service_id {
                c.real_server = Some(SocketAddr::new(lb_common::ip_of(&r.addr), r.port));
            }
        }
    }
    conns.sort_by_key(|c| (c.virtual_service, c.client));
    Ok(conns)
}

/// `ipvsadm -Lnc`'s columns.
pub fn render(conns: &[Conn]) -> String {
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
    out
}
