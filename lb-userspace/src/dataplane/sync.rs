//! Makes the BPF maps match a desired state, changing only what differs.
//!
//! The controller describes what it wants ([`DesiredService`]: the virtual services with
//! their real servers' weights, health and MACs) and [`MapSync::apply`] diffs that against
//! what the maps hold. Order matters because packets are in flight:
//! 1. new and changed real-server slots are written before any table points at them;
//! 2. each changed scheduling table is written into a fresh arena region, then the
//!    service entry is replaced whole to point at it (the swap), and the old region is
//!    quarantined rather than reused at once;
//! 3. slots of removed real servers are cleared only after no table points at them,
//!    which also makes their existing flows schedule again on their next packet.
//!
//! A restarted controller calls [`MapSync::adopt`] first: service ids, real-server slots
//! and table regions are read back from the pinned maps, so established flows, which
//! refer to slots, keep their real server.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use aya::maps::{MapError, PerCpuValues};
use lb_common::{
    Addr, Counters, MAX_REALS, MAX_SERVICES, REAL_F_ALIVE, REAL_F_IN_USE, REAL_F_MAC_VALID,
    RealServer, SVC_F_ACTIVE, SVC_F_HASH_PORT, SchedAlgo, ServiceInfo, ServiceKey, TABLE_CAPACITY,
};
use thiserror::Error;

use crate::dataplane::{
    Maps,
    arena::TableArena,
    sched::{self, Candidate},
};

#[derive(Debug, Error)]
pub enum SyncError {
    #[error("BPF map {map}: {source}")]
    Map { map: &'static str, source: MapError },
    #[error("more than {MAX_SERVICES} virtual services")]
    TooManyServices,
    #[error("more than {MAX_REALS} real servers in all")]
    TooManyReals,
    #[error("the scheduling tables need more than {TABLE_CAPACITY} entries in all")]
    TableArenaFull,
    #[error("scheduling-table regions in the pinned maps are inconsistent: {0}")]
    Arena(#[from] crate::dataplane::arena::ArenaError),
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> SyncError {
    move |source| SyncError::Map { map, source }
}

/// Where and how a real server is reached, once its neighbour entry is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2 {
    pub ifindex: u32,
    pub mac: [u8; 6],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredReal {
    pub addr: Addr,
    pub port: u16,
    pub weight: u32,
    /// Health verdict; a dead server gets no flows and its existing flows move.
    pub alive: bool,
    /// The interface it is on; `mac` None while unresolved (then it gets no new flows).
    pub ifindex: u32,
    pub mac: Option<[u8; 6]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredService {
    pub key: ServiceKey,
    pub algo: SchedAlgo,
    pub hash_port: bool,
    /// Forward (this director is MASTER for the VIP, or the VIP has no VRRP instance).
    pub active: bool,
    pub persistence_timeout: u32,
    pub reals: Vec<DesiredReal>,
}

/// What one service looks like in the maps now.
#[derive(Clone, Debug, Default)]
struct Current {
    info: ServiceInfo,
    table: Vec<u32>,
    reals: BTreeMap<(Addr, u16), u32>,
}

/// Counts of what one `apply` changed, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub services_added: usize,
    pub services_removed: usize,
    pub services_changed: usize,
    pub tables_swapped: usize,
    pub reals_written: usize,
    pub reals_cleared: usize,
}

pub struct MapSync {
    maps: Maps,
    arena: TableArena,
    services: BTreeMap<ServiceKey, Current>,
    /// What each in-use real-server slot holds, as last written.
    reals: BTreeMap<u32, RealServer>,
    /// Next slot to try: slots are handed out round the array so that a freed slot is
    /// not reused at once (a stale flow entry would otherwise follow it to a new server).
    next_real: u32,
    ifaces: BTreeMap<u32, [u8; 6]>,
    nr_cpus: usize,
}

impl MapSync {
    /// Takes over the maps, reading back what a previous controller left in them.
    pub fn adopt(maps: Maps) -> Result<Self, SyncError> {
        let nr_cpus = aya::util::nr_cpus().map(|n| n.max(1)).unwrap_or(1);
        let mut me = Self {
            maps,
            arena: TableArena::new(TABLE_CAPACITY),
            services: BTreeMap::new(),
            reals: BTreeMap::new(),
            next_real: 0,
            ifaces: BTreeMap::new(),
            nr_cpus,
        };
        let mut entries = Vec::new();
        for item in me.maps.services.iter() {
            entries.push(item.map_err(map_err("xlb_services"))?);
        }
        for i in 0..MAX_REALS {
            let r = me.maps.reals_view.get(i as usize);
            if r.flags & REAL_F_IN_USE != 0 {
                me.reals.insert(i, r);
                me.next_real = i + 1;
            }
        }
        for (key, info) in entries {
            let mut table = vec![0; info.table_len as usize];
            if info.table_len > 0 {
                // Checks the region against the arena's bounds before it is read.
                me.arena.reserve(info.table_offset, info.table_len)?;
                me.maps.table.read(info.table_offset as usize, &mut table);
            }
            let reals = me
                .reals
                .iter()
                .filter(|(_, r)| r.service_id == info.id)
                .map(|(i, r)| ((r.addr, r.port), *i))
                .collect();
            me.services.insert(key, Current { info, table, reals });
        }
        for r in me.reals.values() {
            if r.src_mac != [0; 6] {
                me.ifaces.insert(r.ifindex, r.src_mac);
            }
        }
        Ok(me)
    }

    /// The maps, for reading counters and state.
    pub fn maps(&self) -> &Maps {
        &self.maps
    }

    /// The services currently in the maps (adopted or applied).
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Sets the director's own MAC per interface that real servers are reached through:
    /// the source MAC of frames forwarded there, kept in each real server's slot. Slots on
    /// an interface whose MAC changed are rewritten at once.
    pub fn apply_ifaces(&mut self, want: &BTreeMap<u32, [u8; 6]>) -> Result<(), SyncError> {
        if *want == self.ifaces {
            return Ok(());
        }
        self.ifaces = want.clone();
        let stale: Vec<(u32, RealServer)> = self
            .reals
            .iter()
            .filter(|(_, r)| self.ifaces.get(&r.ifindex).copied().unwrap_or([0; 6]) != r.src_mac)
            .map(|(i, r)| (*i, *r))
            .collect();
        for (index, mut real) in stale {
            real.src_mac = self.ifaces.get(&real.ifindex).copied().unwrap_or([0; 6]);
            self.write_real(index, real)?;
        }
        Ok(())
    }

    fn alloc_service_id(&self) -> Result<u32, SyncError> {
        let used: BTreeSet<u32> = self.services.values().map(|c| c.info.id).collect();
        (0..MAX_SERVICES)
            .find(|i| !used.contains(i))
            .ok_or(SyncError::TooManyServices)
    }

    fn alloc_real(&mut self) -> Result<u32, SyncError> {
        for step in 0..MAX_REALS {
            let i = (self.next_real + step) % MAX_REALS;
            if !self.reals.contains_key(&i) {
                self.next_real = (i + 1) % MAX_REALS;
                return Ok(i);
            }
        }
        Err(SyncError::TooManyReals)
    }

    fn zero_counters(
        map: &mut aya::maps::PerCpuArray<aya::maps::MapData, Counters>,
        index: u32,
        nr_cpus: usize,
        name: &'static str,
    ) -> Result<(), SyncError> {
        let zeros = PerCpuValues::try_from(vec![Counters::default(); nr_cpus])
            .expect("one value per CPU, and at least one CPU");
        map.set(index, zeros, 0).map_err(map_err(name))
    }

    fn write_real(&mut self, index: u32, real: RealServer) -> Result<bool, SyncError> {
        if self.reals.get(&index) == Some(&real) {
            return Ok(false);
        }
        self.maps
            .reals
            .set(index, real, 0)
            .map_err(map_err("xlb_reals"))?;
        self.reals.insert(index, real);
        Ok(true)
    }

    fn clear_real(&mut self, index: u32) -> Result<(), SyncError> {
        self.maps
            .reals
            .set(index, RealServer::default(), 0)
            .map_err(map_err("xlb_reals"))?;
        self.reals.remove(&index);
        Ok(())
    }

    fn write_table(&mut self, table: &[u32]) -> Result<u32, SyncError> {
        if table.is_empty() {
            return Ok(0);
        }
        let offset = self
            .arena
            .alloc(table.len() as u32)
            .map_err(|_| SyncError::TableArenaFull)?;
        // Memory writes: the region is not reachable until the service entry that points
        // at it is updated, through a syscall, after this.
        self.maps.table.write(offset as usize, table);
        Ok(offset)
    }

    /// Makes the maps hold exactly `desired`.
    pub fn apply(&mut self, desired: &[DesiredService]) -> Result<SyncReport, SyncError> {
        let now = Instant::now();
        self.arena.release_quarantined(now);
        let mut report = SyncReport::default();
        let wanted: BTreeSet<ServiceKey> = desired.iter().map(|d| d.key).collect();

        for want in desired {
            let is_new = !self.services.contains_key(&want.key);
            let mut cur = match self.services.get(&want.key) {
                Some(c) => c.clone(),
                None => Current {
                    info: ServiceInfo {
                        id: self.alloc_service_id()?,
                        ..ServiceInfo::default()
                    },
                    ..Current::default()
                },
            };
            if is_new {
                Self::zero_counters(
                    &mut self.maps.service_stats,
                    cur.info.id,
                    self.nr_cpus,
                    "xlb_svc_stats",
                )?;
            }
            let id = cur.info.id;

            // 1. Real-server slots: new ones allocated, all written if changed.
            let mut reals = BTreeMap::new();
            let mut candidates = Vec::new();
            for r in &want.reals {
                let slot = match cur.reals.get(&(r.addr, r.port)) {
                    Some(s) => *s,
                    None => {
                        let s = self.alloc_real()?;
                        Self::zero_counters(
                            &mut self.maps.real_stats,
                            s,
                            self.nr_cpus,
                            "xlb_real_stats",
                        )?;
                        s
                    }
                };
                let mut flags = REAL_F_IN_USE;
                if r.alive {
                    flags |= REAL_F_ALIVE;
                }
                if r.mac.is_some() {
                    flags |= REAL_F_MAC_VALID;
                }
                let value = RealServer {
                    addr: r.addr,
                    port: r.port,
                    _pad: 0,
                    service_id: id,
                    flags,
                    weight: r.weight,
                    ifindex: r.ifindex,
                    mac: r.mac.unwrap_or([0; 6]),
                    src_mac: self.ifaces.get(&r.ifindex).copied().unwrap_or([0; 6]),
                };
                if self.write_real(slot, value)? {
                    report.reals_written += 1;
                }
                reals.insert((r.addr, r.port), slot);
                if r.alive && r.weight > 0 && r.mac.is_some() {
                    candidates.push(Candidate {
                        index: slot,
                        addr: r.addr,
                        port: r.port,
                        weight: r.weight,
                    });
                }
            }

            // 2. The table, swapped in with the service entry.
            let table = sched::build_table(want.algo, &candidates);
            let mut info = cur.info;
            info.algo = want.algo as u32;
            info.flags = if want.active { SVC_F_ACTIVE } else { 0 }
                | if want.hash_port { SVC_F_HASH_PORT } else { 0 };
            info.persistence_timeout = want.persistence_timeout;
            let old_region = (cur.info.table_offset, cur.info.table_len);
            let table_changed = table != cur.table;
            if table_changed {
                info.table_offset = self.write_table(&table)?;
                info.table_len = table.len() as u32;
            }
            if is_new || info.flags != cur.info.flags {
                self.maps
                    .svc_state
                    .set(info.id, info.flags, 0)
                    .map_err(map_err("xlb_svc_state"))?;
            }
            if is_new || info != cur.info {
                self.maps
                    .services
                    .insert(want.key, info, 0)
                    .map_err(map_err("xlb_services"))?;
                if !is_new {
                    report.services_changed += 1;
                }
            }
            if is_new {
                report.services_added += 1;
            }
            if table_changed {
                report.tables_swapped += 1;
                if old_region.1 > 0 {
                    self.arena.free(old_region.0, old_region.1)?;
                }
            }

            // 3. Slots no table points at any more.
            for (key, slot) in &cur.reals {
                if !reals.contains_key(key) {
                    self.clear_real(*slot)?;
                    report.reals_cleared += 1;
                }
            }
            cur.info = info;
            cur.table = table;
            cur.reals = reals;
            self.services.insert(want.key, cur);
        }

        let gone: Vec<ServiceKey> = self
            .services
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in gone {
            let cur = self.services.remove(&key).expect("listed above");
            self.maps
                .services
                .remove(&key)
                .map_err(map_err("xlb_services"))?;
            self.maps
                .svc_state
                .set(cur.info.id, 0, 0)
                .map_err(map_err("xlb_svc_state"))?;
            if cur.info.table_len > 0 {
                self.arena.free(cur.info.table_offset, cur.info.table_len)?;
            }
            for slot in cur.reals.values() {
                self.clear_real(*slot)?;
                report.reals_cleared += 1;
            }
            report.services_removed += 1;
        }
        Ok(report)
    }
}
