//! What the BPF maps hold, kept in memory: the controller's mirror of `xlb_services`,
//! `xlb_reals`, the table regions of `xlb_table` and their arena. The planner
//! ([`crate::dataplane::plan`]) reads it; every step written to the maps is then
//! [`MapView::record`]ed here, so the mirror never runs ahead of the maps, even when a
//! write fails half-way through a plan.

use std::{collections::BTreeMap, time::Instant};

use lb_common::{
    Addr, MAX_REALS, REAL_F_IN_USE, RealServer, ServiceInfo, ServiceKey, TABLE_CAPACITY,
};

use crate::dataplane::{
    arena::{ArenaError, TableArena},
    sizing::MapSizes,
    step::Step,
};

/// A real server's identity within its service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RealKey {
    pub addr: Addr,
    /// Host byte order.
    pub port: u16,
}

/// Who a real-server slot belongs to: a real server of a service id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SlotOwner {
    service_id: u32,
    real: RealKey,
}

impl SlotOwner {
    fn of(real: &RealServer) -> Self {
        Self {
            service_id: real.service_id,
            real: RealKey {
                addr: real.addr,
                port: real.port,
            },
        }
    }
}

/// The maps' content as the controller last wrote (or adopted) it.
#[derive(Clone, Debug)]
pub struct MapView {
    services: BTreeMap<ServiceKey, ServiceInfo>,
    /// In-use real-server slots and what each holds.
    reals: BTreeMap<u32, RealServer>,
    /// The slot of each real server of each service id.
    slots: BTreeMap<SlotOwner, u32>,
    /// The table in each allocated region, by offset.
    tables: BTreeMap<u32, Vec<u32>>,
    arena: TableArena,
    /// Next slot to try: slots are handed out round the array so that a freed slot is
    /// not reused at once (a stale flow entry would otherwise follow it to a new server).
    next_real: u32,
    /// Real-server slots in `xlb_reals` (`sizing`).
    real_capacity: u32,
    /// The director's own MAC on each interface real servers are reached through (the
    /// source MAC of frames forwarded there, kept in each real server's slot).
    pub(in crate::dataplane) ifaces: BTreeMap<u32, [u8; 6]>,
}

impl Default for MapView {
    /// Empty maps.
    fn default() -> Self {
        Self::with_arena(TableArena::new(TABLE_CAPACITY))
    }
}

impl MapView {
    /// Empty maps whose table regions come from `arena`.
    pub(crate) fn with_arena(arena: TableArena) -> Self {
        Self {
            services: BTreeMap::new(),
            reals: BTreeMap::new(),
            slots: BTreeMap::new(),
            tables: BTreeMap::new(),
            arena,
            next_real: 0,
            real_capacity: MAX_REALS,
            ifaces: BTreeMap::new(),
        }
    }

    /// The view of maps a previous controller filled, so that established flows, which
    /// refer to slots, keep their real server: every service entry, every in-use slot
    /// (`reals` may list all of them), and each service's table, read by
    /// `read_table(offset, out)` once its region is known to lie inside the arena. The
    /// maps have `sizes` entries.
    pub fn adopt(
        sizes: MapSizes,
        services: impl IntoIterator<Item = (ServiceKey, ServiceInfo)>,
        reals: impl IntoIterator<Item = (u32, RealServer)>,
        mut read_table: impl FnMut(u32, &mut [u32]),
    ) -> Result<Self, ArenaError> {
        let mut view = Self::with_arena(TableArena::new(sizes.table));
        view.real_capacity = sizes.reals;
        for (slot, real) in reals {
            if real.flags & REAL_F_IN_USE != 0 {
                view.reals.insert(slot, real);
                view.slots.insert(SlotOwner::of(&real), slot);
                view.next_real = (slot + 1) % sizes.reals.max(1);
            }
        }
        for (key, info) in services {
            // A service with several keys (fwmark) points at one region from each.
            if info.table_len > 0 && !view.tables.contains_key(&info.table_offset) {
                // Checks the region against the arena's bounds before it is read.
                view.arena.reserve(info.table_offset, info.table_len)?;
                let mut table = vec![0; info.table_len as usize];
                read_table(info.table_offset, &mut table);
                view.tables.insert(info.table_offset, table);
            }
            view.services.insert(key, info);
        }
        for real in view.reals.values() {
            if real.src_mac != [0; 6] {
                view.ifaces.insert(real.ifindex, real.src_mac);
            }
        }
        Ok(view)
    }

    pub fn services(&self) -> &BTreeMap<ServiceKey, ServiceInfo> {
        &self.services
    }

    /// In-use real-server slots and what each holds.
    pub fn reals(&self) -> &BTreeMap<u32, RealServer> {
        &self.reals
    }

    /// The slot of each real server of service `id`.
    pub fn slots_of(&self, id: u32) -> BTreeMap<RealKey, u32> {
        let first = RealKey {
            addr: [0; 16],
            port: 0,
        };
        let last = RealKey {
            addr: [0xff; 16],
            port: u16::MAX,
        };
        let owner = |real| SlotOwner {
            service_id: id,
            real,
        };
        self.slots
            .range(owner(first)..=owner(last))
            .map(|(o, slot)| (o.real, *slot))
            .collect()
    }

    /// The scheduling table `info` points at (empty for a zero-length region).
    pub fn table(&self, info: &ServiceInfo) -> &[u32] {
        if info.table_len == 0 {
            return &[];
        }
        self.tables
            .get(&info.table_offset)
            .map_or(&[], Vec::as_slice)
    }

    /// The director's MAC on interface `ifindex`, zeros when unknown.
    pub fn iface_mac(&self, ifindex: u32) -> [u8; 6] {
        self.ifaces.get(&ifindex).copied().unwrap_or([0; 6])
    }

    pub fn ifaces(&self) -> &BTreeMap<u32, [u8; 6]> {
        &self.ifaces
    }

    pub fn arena(&self) -> &TableArena {
        &self.arena
    }

    /// Real-server slots the maps hold.
    pub fn real_capacity(&self) -> u32 {
        self.real_capacity
    }

    /// Where the round-robin search for a free slot starts.
    pub fn next_real(&self) -> u32 {
        self.next_real
    }

    /// Makes the table regions whose grace period is over allocatable again.
    pub fn release_quarantined(&mut self, now: Instant) {
        self.arena.release_quarantined(now);
    }

    /// Takes note of a step just written to the maps (`now`: when, for the quarantine).
    pub fn record(&mut self, step: Step, now: Instant) -> Result<(), ArenaError> {
        match step {
            Step::ResetServiceCounters { .. }
            | Step::ResetRealCounters { .. }
            | Step::SetServiceState { .. } => {}
            Step::WriteReal { slot, real } => {
                match self.reals.insert(slot, real) {
                    Some(old) => self.forget_owner(&old, slot),
                    None => self.next_real = (slot + 1) % self.real_capacity,
                }
                self.slots.insert(SlotOwner::of(&real), slot);
            }
            Step::ClearReal { slot } => {
                if let Some(old) = self.reals.remove(&slot) {
                    self.forget_owner(&old, slot);
                }
            }
            Step::WriteTable { offset, table } => {
                self.arena.reserve(offset, table.len() as u32)?;
                self.tables.insert(offset, table);
            }
            Step::PublishService { key, info } => {
                self.services.insert(key, info);
            }
            Step::RemoveService { key } => {
                self.services.remove(&key);
            }
            Step::QuarantineTable { offset, len } => {
                self.arena.free_at(offset, len, now)?;
                self.tables.remove(&offset);
            }
        }
        Ok(())
    }

    /// Drops the index entry of `old`, the previous content of `slot`, if it points there.
    fn forget_owner(&mut self, old: &RealServer, slot: u32) {
        let owner = SlotOwner::of(old);
        if self.slots.get(&owner) == Some(&slot) {
            self.slots.remove(&owner);
        }
    }
}
