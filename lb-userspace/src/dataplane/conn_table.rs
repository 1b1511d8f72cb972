//! The connection tables as userspace reads them (`xlb status`, `xlb conns`, tests, the
//! bench). The XDP program owns them (layout: `lb_common::conn`); they are mmap-able
//! arrays, so a whole table is read from memory instead of a syscall per bucket.

use std::{
    collections::BTreeMap,
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::{Duration, Instant},
};

use aya::maps::{MapData, PerCpuArray};
use lb_common::{
    CONN_EVICTED_ESTABLISHED, CONN_EVICTED_SYN_RECV, CONN_NOT_TRACKED, CONN_OPEN, ConnBucket4,
    ConnBucket6, ConnValue, PROTO_TCP, Timeouts, clock_ticks, conn_hash4, conn_hash6,
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

/// One live slot of a table: the flow as the client sent it, and what the program keeps.
#[derive(Clone, Copy, Debug)]
pub struct LiveConn {
    pub client: SocketAddr,
    pub virtual_service: SocketAddr,
    pub value: ConnValue,
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

    /// The bucket of an IPv6 flow.
    pub fn bucket6(&self, key: &lb_common::FlowKey) -> usize {
        (conn_hash6(key, self.seed) as usize) & (self.v6.len() - 1)
    }

    /// Calls `f` for every live slot at tick `now`.
    fn each_live(&self, now: u32, mut f: impl FnMut(LiveConn)) {
        let t = &self.timeouts;
        for i in 0..self.v4.len() {
            for s in self.v4.get(i).slots {
                let k = s.key;
                // An empty slot is not live: skip it before hashing its key.
                if s.value.seen != 0 && s.value.live(conn_hash4(&k, self.seed), now, t) {
                    let ip = |a| IpAddr::V4(Ipv4Addr::from(a));
                    f(LiveConn {
                        client: SocketAddr::new(ip(k.saddr), k.sport),
                        virtual_service: SocketAddr::new(ip(k.daddr), k.dport),
                        value: s.value,
                    });
                }
            }
        }
        for i in 0..self.v6.len() {
            for s in self.v6.get(i).slots {
                let k = s.key;
                if s.value.seen != 0 && s.value.live(conn_hash6(&k, self.seed), now, t) {
                    let ip = |a| IpAddr::V6(Ipv6Addr::from(a));
                    f(LiveConn {
                        client: SocketAddr::new(ip(k.saddr), k.sport),
                        virtual_service: SocketAddr::new(ip(k.daddr), k.dport),
                        value: s.value,
                    });
                }
            }
        }
    }

    /// Every live connection at tick `now`.
    pub fn live(&self, now: u32) -> Vec<LiveConn> {
        let mut out = Vec::new();
        self.each_live(now, |c| out.push(c));
        out
    }

    /// Live entries of the IPv4 and the IPv6 table (for `conn_grow`).
    pub fn count_live_each(&self, now: u32) -> (u64, u64) {
        let mut n = (0, 0);
        self.each_live(now, |c| match c.client {
            SocketAddr::V4(_) => n.0 += 1,
            SocketAddr::V6(_) => n.1 += 1,
        });
        n
    }

    /// IPv4 and IPv6 slots.
    pub fn slots(&self) -> (u32, u32) {
        let ways = lb_common::CONN_WAYS as u32;
        (self.v4.len() as u32 * ways, self.v6.len() as u32 * ways)
    }

    /// How many live connections there are (without building the list).
    pub fn count_live(&self, now: u32) -> usize {
        let mut n = 0;
        self.each_live(now, |_| n += 1);
        n
    }

    /// ActiveConn / InActConn of every real-server slot at tick `now`, in one pass over
    /// both tables (see [`ConnCounts`]).
    pub fn conn_counts(&self, now: u32) -> ConnCounts {
        let mut counts = ConnCounts::default();
        self.each_live(now, |c| counts.add(&c.value));
        counts
    }
}

/// ipvsadm's ActiveConn / InActConn of one real server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActiveInactive {
    /// ESTABLISHED TCP connections.
    pub active: u64,
    /// Every other live entry: TCP in SYN_RECV, FIN_WAIT or CLOSE, and every UDP flow
    /// (IPVS counts UDP as inactive).
    pub inactive: u64,
}

/// Live connection-table entries counted per real server as `ipvsadm -Ln` counts them.
/// Keyed by (real-server slot, service id): a slot handed to another service does not
/// inherit the entries of its previous owner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnCounts {
    by_slot: BTreeMap<(u32, u16), ActiveInactive>,
    /// Every live entry.
    pub total: usize,
}

impl ConnCounts {
    /// Counts `values`, each a live entry.
    pub fn of<'a>(values: impl IntoIterator<Item = &'a ConnValue>) -> Self {
        let mut counts = Self::default();
        for v in values {
            counts.add(v);
        }
        counts
    }

    /// Counts one live entry.
    pub fn add(&mut self, v: &ConnValue) {
        let e = self.by_slot.entry((v.real, v.service_id)).or_default();
        if v.proto == PROTO_TCP && v.state == CONN_OPEN {
            e.active += 1;
        } else {
            e.inactive += 1;
        }
        self.total += 1;
    }

    /// The counts of real-server `slot` as a server of service `service_id` (zeros when
    /// it has no entry).
    pub fn of_real(&self, slot: u32, service_id: u32) -> ActiveInactive {
        u16::try_from(service_id)
            .ok()
            .and_then(|id| self.by_slot.get(&(slot, id)).copied())
            .unwrap_or_default()
    }
}

/// What new flows did in full buckets since the tables were made (`xlb_conn_evictions`,
/// summed over CPUs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Evictions {
    /// Half-open slots (SYN_RECV, never established) given up: what a SYN flood costs.
    pub syn_recv: u64,
    /// Established slots idle over 60 s given up: the table is too small.
    pub established: u64,
    /// Packets of new flows forwarded untracked, every slot of their bucket active (each
    /// packet of such a flow is scheduled anew): the table is too small.
    pub not_tracked: u64,
}

impl Evictions {
    /// Reads the counters (a counter that cannot be read counts 0).
    pub fn read(map: &PerCpuArray<MapData, u64>) -> Self {
        let total = |i: u32| map.get(&i, 0).map(|v| v.iter().sum()).unwrap_or(0);
        Self {
            syn_recv: total(CONN_EVICTED_SYN_RECV),
            established: total(CONN_EVICTED_ESTABLISHED),
            not_tracked: total(CONN_NOT_TRACKED),
        }
    }

    /// One line per non-zero counter, as `xlb status` and `xlb conns` print them.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.syn_recv > 0 {
            out.push(format!(
                "half-open connections (SYN_RECV) evicted from full buckets: {}",
                self.syn_recv
            ));
        }
        if self.established > 0 {
            out.push(format!(
                "established connections evicted after 60 s idle (table too small): {}",
                self.established
            ));
        }
        if self.not_tracked > 0 {
            out.push(format!(
                "packets forwarded untracked, their bucket full of active connections \
                 (table too small): {}",
                self.not_tracked
            ));
        }
        out
    }
}

/// How often the daemon may say what full buckets cost: a flood makes a line per period,
/// not a line per SYN.
pub const EVICTION_LOG_PERIOD: Duration = Duration::from_secs(10);

/// The daemon's view of [`Evictions`]: what grew since it last said so.
#[derive(Debug)]
pub struct EvictionWatch {
    said: Evictions,
    at: Option<Instant>,
}

impl EvictionWatch {
    /// Starts from the counters as they are (an adopted table's past is not news).
    pub fn new(start: Evictions) -> Self {
        Self {
            said: start,
            at: None,
        }
    }

    /// The growth since the last report, when there is some and the last report is at
    /// least [`EVICTION_LOG_PERIOD`] old; it then counts as reported.
    pub fn due(&mut self, now: Evictions, at: Instant) -> Option<Evictions> {
        let grown = Evictions {
            syn_recv: now.syn_recv.saturating_sub(self.said.syn_recv),
            established: now.established.saturating_sub(self.said.established),
            not_tracked: now.not_tracked.saturating_sub(self.said.not_tracked),
        };
        if grown == Evictions::default()
            || self
                .at
                .is_some_and(|last| at.duration_since(last) < EVICTION_LOG_PERIOD)
        {
            return None;
        }
        self.said = now;
        self.at = Some(at);
        Some(grown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_counts_follow_ipvsadm_active_and_inactive() {
        use lb_common::{CONN_FIN, CONN_RST, CONN_SYN_RECV, PROTO_UDP};
        let v = |real, service_id, proto, state| ConnValue {
            real,
            service_id,
            state,
            proto,
            seen: 1,
            check: 0,
        };
        let entries = [
            v(3, 1, PROTO_TCP, CONN_OPEN),
            v(3, 1, PROTO_TCP, CONN_OPEN),
            v(3, 1, PROTO_TCP, CONN_SYN_RECV),
            v(3, 1, PROTO_TCP, CONN_FIN),
            v(3, 1, PROTO_TCP, CONN_RST),
            // UDP is inactive whatever its state byte (IPVS: UDP has no ESTABLISHED).
            v(4, 2, PROTO_UDP, CONN_OPEN),
            // Slot 3 once served service 7: not service 1's.
            v(3, 7, PROTO_TCP, CONN_OPEN),
        ];
        let c = ConnCounts::of(&entries);
        assert_eq!(c.total, 7);
        let ai = |active, inactive| ActiveInactive { active, inactive };
        assert_eq!(c.of_real(3, 1), ai(2, 3));
        assert_eq!(c.of_real(4, 2), ai(0, 1));
        assert_eq!(c.of_real(3, 7), ai(1, 0));
        assert_eq!(c.of_real(5, 1), ai(0, 0), "no entry: zeros");
        assert_eq!(
            c.of_real(3, 1 << 16 | 1),
            ai(0, 0),
            "ids past u16 own nothing"
        );
    }

    #[test]
    fn the_watch_reports_growth_at_most_once_a_period() {
        let c = |syn_recv, established| Evictions {
            syn_recv,
            established,
            not_tracked: 0,
        };
        let t0 = Instant::now();
        let mut w = EvictionWatch::new(c(500, 1));
        assert_eq!(w.due(c(500, 1), t0), None, "the adopted past is not news");
        assert_eq!(w.due(c(900, 1), t0), Some(c(400, 0)));
        assert_eq!(
            w.due(c(1000, 2), t0 + Duration::from_secs(3)),
            None,
            "too soon"
        );
        assert_eq!(
            w.due(c(1200, 2), t0 + EVICTION_LOG_PERIOD),
            Some(c(300, 1)),
            "what grew meanwhile, once"
        );
        assert_eq!(w.due(c(1200, 2), t0 + 3 * EVICTION_LOG_PERIOD), None);
    }

    #[test]
    fn eviction_lines_name_each_non_zero_counter() {
        assert!(Evictions::default().lines().is_empty());
        let e = Evictions {
            syn_recv: 199_000,
            established: 0,
            not_tracked: 3,
        };
        assert_eq!(
            e.lines(),
            [
                "half-open connections (SYN_RECV) evicted from full buckets: 199000",
                "packets forwarded untracked, their bucket full of active connections \
                 (table too small): 3",
            ]
        );
    }
}
