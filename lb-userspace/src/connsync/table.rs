//! The local side of sync: reading the connection tables (and persistence templates) as
//! wire entries, and installing received entries. Reads go through the tables' mapped
//! memory, so the XDP program pays nothing for being synced; writes take one slot under
//! the program's own victim rules (`lb_common::VictimSearch`): an active local flow is
//! never displaced.

use std::net::{IpAddr, SocketAddr};

use lb_common::{
    Conn4, Conn6, ConnValue, FlowKey, FlowKey4, PersistKey, PersistValue, Take, VictimSearch,
    addr_of, conn_check, conn_hash4, conn_hash6, ip_of, seconds, ticks,
};

use super::{
    directory::Directory,
    wire::{ENTRY_TEMPLATE, Entry},
};
use crate::dataplane::{Maps, conn_table::Tables};

/// Why a received entry was not installed (each a counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// No local service for its VIP, port and protocol.
    UnknownService,
    /// Its real server is not one of the service's here.
    UnknownReal,
    /// Every slot of its bucket holds an active local flow.
    BucketFull,
    /// The persistence map refused it (full).
    TemplateRefused,
}

impl Skip {
    pub fn reason(self) -> &'static str {
        match self {
            Self::UnknownService => "unknown_service",
            Self::UnknownReal => "unknown_real",
            Self::BucketFull => "bucket_full",
            Self::TemplateRefused => "template_refused",
        }
    }
}

/// `CLOCK_MONOTONIC` in ns (what `bpf_ktime_get_ns` reads, persistence's clock).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Every live connection of `tables` at tick `now` whose real server `dir` knows, as
/// entries, with the id of its service.
pub fn scan_conns(tables: &Tables, dir: &Directory, now: u32) -> Vec<(u32, Entry)> {
    let t = &tables.timeouts;
    tables
        .live(now)
        .into_iter()
        .filter_map(|c| {
            let v = c.value;
            let sid = u32::from(v.service_id);
            let real = dir.real_addr(v.real, sid)?;
            let left = v.timeout(t).saturating_sub(now.wrapping_sub(v.seen));
            Some((
                sid,
                Entry {
                    protocol: v.proto,
                    state: v.state,
                    flags: 0,
                    remaining_s: seconds(left) as u32,
                    virtual_service: c.virtual_service,
                    client: c.client,
                    real,
                },
            ))
        })
        .collect()
}

/// The persistence templates of `maps` (one syscall each) as entries.
pub fn scan_templates(maps: &Maps, dir: &Directory, now_ns: u64) -> Vec<(u32, Entry)> {
    maps.persist
        .iter()
        .filter_map(Result::ok)
        .filter_map(|(k, v)| {
            let s = dir.service_by_id(k.service_id)?;
            let real = dir.real_addr(v.real, k.service_id)?;
            let idle_s = now_ns.saturating_sub(v.last_seen_ns) / 1_000_000_000;
            let remaining = u64::from(s.persistence_timeout).checked_sub(idle_s)?;
            let client = ip_of(&k.client);
            // The wire wants one family per entry: an IPv4 client of an IPv4 service.
            if client.is_ipv4() != s.key.0.is_ipv4() {
                return None;
            }
            Some((
                k.service_id,
                Entry {
                    protocol: s.key.2,
                    state: 0,
                    flags: ENTRY_TEMPLATE,
                    remaining_s: remaining as u32,
                    virtual_service: SocketAddr::new(s.key.0, s.key.1),
                    client: SocketAddr::new(client, 0),
                    real,
                },
            ))
        })
        .collect()
}

/// Installs a connection entry into `tables` at tick `now`.
pub fn install_conn(tables: &mut Tables, dir: &Directory, e: &Entry, now: u32) -> Result<(), Skip> {
    let s = dir
        .service(e.virtual_service, e.protocol)
        .ok_or(Skip::UnknownService)?;
    let real = dir.real_slot(s.id, e.real).ok_or(Skip::UnknownReal)?;
    let sid = s.id as u16;
    let mut value = ConnValue {
        real,
        service_id: sid,
        state: e.state,
        proto: e.protocol,
        seen: 0,
        check: 0,
    };
    let timeout = value.timeout(&tables.timeouts);
    let age = timeout.saturating_sub(ticks(u64::from(e.remaining_s)));
    value.seen = now.wrapping_sub(age).max(1);
    match (e.client.ip(), e.virtual_service.ip()) {
        (IpAddr::V4(c), IpAddr::V4(v)) => {
            let key = FlowKey4 {
                saddr: c.octets(),
                daddr: v.octets(),
                sport: e.client.port(),
                dport: e.virtual_service.port(),
                proto: e.protocol,
                _pad: [0; 3],
            };
            let hash = conn_hash4(&key, tables.seed);
            value.check = conn_check(hash, real, sid);
            let b = tables.bucket4(&key);
            let bucket = tables.v4.get(b);
            let slot = choose(
                bucket.slots.iter().map(|s| (s.key == key, s.value)),
                now,
                &tables.timeouts,
            )?;
            let p = tables.v4.ptr(b);
            // SAFETY: `p` points into the mapping (bucket `b` < len), `slot` < CONN_WAYS;
            // one volatile store of the slot (the program's `check` reads a torn one as
            // empty).
            unsafe {
                std::ptr::write_volatile(
                    std::ptr::addr_of_mut!((*p).slots[slot]),
                    Conn4 { key, value },
                )
            };
        }
        (IpAddr::V6(c), IpAddr::V6(v)) => {
            let key = FlowKey {
                saddr: c.octets(),
                daddr: v.octets(),
                sport: e.client.port(),
                dport: e.virtual_service.port(),
                proto: e.protocol,
                _pad: [0; 3],
            };
            let hash = conn_hash6(&key, tables.seed);
            value.check = conn_check(hash, real, sid);
            let b = tables.bucket6(&key);
            let bucket = tables.v6.get(b);
            let slot = choose(
                bucket.slots.iter().map(|s| (s.key == key, s.value)),
                now,
                &tables.timeouts,
            )?;
            let p = tables.v6.ptr(b);
            // SAFETY: as above.
            unsafe {
                std::ptr::write_volatile(
                    std::ptr::addr_of_mut!((*p).slots[slot]),
                    Conn6 {
                        key,
                        value,
                        _pad: [0; 8],
                    },
                )
            };
        }
        _ => return Err(Skip::UnknownService),
    }
    Ok(())
}

/// The slot an entry takes: the flow's own, else what a new flow of the program would
/// take ([`VictimSearch`]).
fn choose(
    slots: impl Iterator<Item = (bool, ConnValue)>,
    now: u32,
    t: &lb_common::Timeouts,
) -> Result<usize, Skip> {
    let mut search = VictimSearch::new();
    for (i, (same_key, v)) in slots.enumerate() {
        if same_key && v.seen != 0 {
            return Ok(i);
        }
        search.consider(i, v.seen, v.state, v.proto, now, t);
    }
    match search.choice() {
        Take::Free(i) | Take::Evict(i, _) => Ok(i),
        Take::None => Err(Skip::BucketFull),
    }
}

/// Installs a persistence template into `maps` at `now_ns`.
pub fn install_template(
    maps: &mut Maps,
    dir: &Directory,
    e: &Entry,
    now_ns: u64,
) -> Result<(), Skip> {
    let s = dir
        .service(e.virtual_service, e.protocol)
        .ok_or(Skip::UnknownService)?;
    let real = dir.real_slot(s.id, e.real).ok_or(Skip::UnknownReal)?;
    let age_s = u64::from(s.persistence_timeout).saturating_sub(u64::from(e.remaining_s));
    let key = PersistKey {
        client: addr_of(e.client.ip()),
        service_id: s.id,
    };
    let value = PersistValue {
        real,
        _pad: 0,
        last_seen_ns: now_ns.saturating_sub(age_s * 1_000_000_000),
    };
    maps.persist
        .insert(key, value, 0)
        .map_err(|_| Skip::TemplateRefused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::{CONN_OPEN, CONN_SYN_RECV, EVICTABLE_IDLE, Timeouts};

    fn v(seen: u32, state: u8) -> ConnValue {
        ConnValue {
            real: 1,
            service_id: 1,
            state,
            proto: 6,
            seen,
            check: 0,
        }
    }

    #[test]
    fn an_entry_takes_its_own_slot_a_free_one_or_none_from_active_flows() {
        let t = &Timeouts::IPVS;
        let now = 100_000;
        let active = v(now - 1, CONN_OPEN);
        // Its own slot first.
        let slots = [
            (false, active),
            (true, active),
            (false, v(0, 0)),
            (false, active),
        ];
        assert_eq!(choose(slots.into_iter(), now, t), Ok(1));
        // A free slot.
        let slots = [
            (false, active),
            (false, v(0, 0)),
            (false, active),
            (false, active),
        ];
        assert_eq!(choose(slots.into_iter(), now, t), Ok(1));
        // A half-open one before an established one.
        let slots = [
            (false, active),
            (false, active),
            (false, v(now - 2, CONN_SYN_RECV)),
            (false, active),
        ];
        assert_eq!(choose(slots.into_iter(), now, t), Ok(2));
        // Four active local flows: none is displaced.
        let slots = [(false, active); 4];
        assert_eq!(choose(slots.into_iter(), now, t), Err(Skip::BucketFull));
        // One idle beyond 60 s may go.
        let mut slots = [(false, active); 4];
        slots[3].1.seen = now - EVICTABLE_IDLE - 5;
        assert_eq!(choose(slots.into_iter(), now, t), Ok(3));
    }
}
