//! The map-sync plan: from what the maps hold ([`MapView`]) and what the controller wants
//! ([`DesiredService`]: the virtual services with their real servers' weights, health and
//! MACs), the ordered [`Step`]s that make the maps hold exactly that, changing only what
//! differs. Pure: no maps, no clock; [`crate::dataplane::sync`] writes the steps.
//!
//! Order matters because packets are in flight, and a plan keeps to it:
//! 1. new and changed real-server slots are written before any table points at them;
//! 2. each changed scheduling table is written into a fresh arena region, then the
//!    service entry is replaced whole to point at it (the swap), and the old region is
//!    quarantined rather than reused at once;
//! 3. slots of removed real servers are cleared only after no table points at them,
//!    which also makes their existing flows schedule again on their next packet.
//!
//! An unchanged service gives no step at all, and a table is rewritten only when its
//! content changes. A plan that cannot be made (too many services, real servers or table
//! entries) is an error before anything is written: the maps keep what they held.

use std::collections::{BTreeMap, BTreeSet};

use lb_common::{
    Addr, MAX_REALS, MAX_SERVICES, REAL_F_ALIVE, REAL_F_IN_USE, REAL_F_MAC_VALID, REAL_F_NAT,
    RealServer, SVC_F_ACTIVE, SVC_F_COUNT_CONNS, SVC_F_HASH_PORT, SVC_F_NAT, SchedAlgo,
    ServiceInfo, ServiceKey, TABLE_CAPACITY,
};
use thiserror::Error;

use crate::dataplane::{
    arena::TableArena,
    sched::{self, Candidate},
    step::Step,
    view::{MapView, RealKey},
};

#[cfg(test)]
mod tests;

#[derive(Debug, Error)]
pub enum PlanError {
    #[error("more than {MAX_SERVICES} virtual services")]
    TooManyServices,
    #[error(
        "every real-server slot of xlb_reals is taken (it holds {0}; a restart or reload \
         grows it to what the config needs, up to {MAX_REALS})"
    )]
    TooManyReals(u32),
    #[error(
        "the scheduling tables need more entries than xlb_table holds (a restart or reload \
         grows it to what the config needs, up to {TABLE_CAPACITY})"
    )]
    TableArenaFull,
    #[error("virtual service {} is listed twice", endpoint(&.0.vip, .0.port))]
    DuplicateService(ServiceKey),
    #[error(
        "real server {} is listed twice in virtual service {}",
        endpoint(&.real.addr, .real.port),
        endpoint(&.service.vip, .service.port)
    )]
    DuplicateReal { service: ServiceKey, real: RealKey },
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
    /// More keys of the same service (a fwmark service's other match entries): each
    /// published with the same service entry, so one id, table, persistence and counters.
    pub aliases: Vec<ServiceKey>,
    pub algo: SchedAlgo,
    pub hash_port: bool,
    /// Forward (this director is MASTER for the VIP, or the VIP has no VRRP instance).
    pub active: bool,
    pub persistence_timeout: u32,
    /// `lb_kind = "NAT"`: the XDP program rewrites addresses and ports both ways.
    pub nat: bool,
    pub reals: Vec<DesiredReal>,
}

/// Counts of what one plan changes, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub services_added: usize,
    pub services_removed: usize,
    pub services_changed: usize,
    pub tables_swapped: usize,
    pub reals_written: usize,
    pub reals_cleared: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub report: SyncReport,
}

/// The steps that make the maps `view` mirrors hold exactly `desired`.
pub fn plan(view: &MapView, desired: &[DesiredService]) -> Result<Plan, PlanError> {
    let mut planner = Planner {
        view,
        arena: view.arena().clone(),
        next_real: view.next_real(),
        taken: BTreeSet::new(),
        cleared: BTreeSet::new(),
        new_ids: BTreeSet::new(),
        kept_ids: BTreeSet::new(),
        plan: Plan::default(),
    };
    let mut wanted = BTreeSet::new();
    for want in desired {
        for key in std::iter::once(&want.key).chain(&want.aliases) {
            if !wanted.insert(*key) {
                return Err(PlanError::DuplicateService(*key));
            }
        }
    }
    for want in desired {
        planner.service(want)?;
    }
    // Keys no service wants are removed; a service id no wanted service kept (its every
    // key gone, or taken over by another service) is cleaned up once.
    let mut dead = BTreeMap::new();
    for (key, info) in view.services() {
        if !wanted.contains(key) {
            planner.push(Step::RemoveService { key: *key });
        }
        if !planner.kept_ids.contains(&info.id) {
            dead.entry(info.id).or_insert(*info);
        }
    }
    for info in dead.values() {
        planner.remove_service(info);
    }
    Ok(planner.plan)
}

/// The slot rewrites for new director MACs per interface (`want`): every slot on an
/// interface whose MAC changed.
pub fn plan_ifaces(view: &MapView, want: &BTreeMap<u32, [u8; 6]>) -> Vec<Step> {
    let mac = |ifindex| want.get(&ifindex).copied().unwrap_or([0; 6]);
    view.reals()
        .iter()
        .filter(|(_, real)| mac(real.ifindex) != real.src_mac)
        .map(|(&slot, real)| Step::WriteReal {
            slot,
            real: RealServer {
                src_mac: mac(real.ifindex),
                ..*real
            },
        })
        .collect()
}

/// One plan in the making: the view as it was, and what the plan has taken so far.
struct Planner<'a> {
    view: &'a MapView,
    /// The view's arena with this plan's regions allocated.
    arena: TableArena,
    next_real: u32,
    /// Slots this plan hands out.
    taken: BTreeSet<u32>,
    /// Slots this plan clears (free again for a later service of the same plan).
    cleared: BTreeSet<u32>,
    /// Service ids this plan hands out.
    new_ids: BTreeSet<u32>,
    /// Ids of the map's services that a wanted service keeps.
    kept_ids: BTreeSet<u32>,
    plan: Plan,
}

impl Planner<'_> {
    fn push(&mut self, step: Step) {
        self.plan.steps.push(step);
    }

    fn alloc_service_id(&mut self) -> Result<u32, PlanError> {
        let used: BTreeSet<u32> = self.view.services().values().map(|i| i.id).collect();
        let id = (0..MAX_SERVICES)
            .find(|i| !used.contains(i) && !self.new_ids.contains(i))
            .ok_or(PlanError::TooManyServices)?;
        self.new_ids.insert(id);
        Ok(id)
    }

    fn slot_is_free(&self, slot: u32) -> bool {
        !self.taken.contains(&slot)
            && (!self.view.reals().contains_key(&slot) || self.cleared.contains(&slot))
    }

    fn alloc_slot(&mut self) -> Result<u32, PlanError> {
        let capacity = self.view.real_capacity();
        for step in 0..capacity {
            let slot = (self.next_real + step) % capacity;
            if self.slot_is_free(slot) {
                self.next_real = (slot + 1) % capacity;
                self.taken.insert(slot);
                return Ok(slot);
            }
        }
        Err(PlanError::TooManyReals(capacity))
    }

    /// What `slot` holds when this plan reaches it.
    fn slot_content(&self, slot: u32) -> Option<&RealServer> {
        if self.cleared.contains(&slot) {
            return None;
        }
        self.view.reals().get(&slot)
    }

    fn service(&mut self, want: &DesiredService) -> Result<(), PlanError> {
        let view = self.view;
        // The service's entry as the maps hold it: under its own key, unless another
        // wanted service already kept that id (the key moved between services).
        let current = view
            .services()
            .get(&want.key)
            .copied()
            .filter(|info| !self.kept_ids.contains(&info.id));
        if let Some(info) = current {
            self.kept_ids.insert(info.id);
        }
        let is_new = current.is_none();
        let old_info = match current {
            Some(info) => info,
            None => ServiceInfo {
                id: self.alloc_service_id()?,
                ..ServiceInfo::default()
            },
        };
        let id = old_info.id;
        if is_new {
            self.push(Step::ResetServiceCounters { id });
        }
        let old_slots = if is_new {
            BTreeMap::new()
        } else {
            view.slots_of(id)
        };

        // 1. Real-server slots: new ones taken, all written if changed.
        let mut slots = BTreeMap::new();
        let mut candidates = Vec::new();
        for r in &want.reals {
            let key = RealKey {
                addr: r.addr,
                port: r.port,
            };
            if slots.contains_key(&key) {
                return Err(PlanError::DuplicateReal {
                    service: want.key,
                    real: key,
                });
            }
            let slot = match old_slots.get(&key) {
                Some(&slot) => slot,
                None => {
                    let slot = self.alloc_slot()?;
                    self.push(Step::ResetRealCounters { slot });
                    slot
                }
            };
            let real = slot_value(id, r, view.iface_mac(r.ifindex), want.nat);
            if self.slot_content(slot) != Some(&real) {
                self.push(Step::WriteReal { slot, real });
                self.plan.report.reals_written += 1;
            }
            slots.insert(key, slot);
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
        // Sized for every real server of the service, eligible or not (see
        // `build_table_in`): a server going down or drained does not resize an `mh` table.
        let table = sched::build_table_in(want.algo, &candidates, want.reals.len());
        let mut info = old_info;
        info.algo = want.algo as u32;
        info.flags = if want.active { SVC_F_ACTIVE } else { 0 }
            | if want.hash_port { SVC_F_HASH_PORT } else { 0 }
            | if want.algo.counts_conns() {
                SVC_F_COUNT_CONNS
            } else {
                0
            }
            | if want.nat { SVC_F_NAT } else { 0 };
        info.persistence_timeout = want.persistence_timeout;
        let old_table = current.map_or(&[][..], |i| view.table(&i));
        let table_changed = table != old_table;
        if table_changed {
            let len = table.len() as u32;
            info.table_len = len;
            info.table_offset = 0;
            if len > 0 {
                info.table_offset = self
                    .arena
                    .alloc(len)
                    .map_err(|_| PlanError::TableArenaFull)?;
                self.push(Step::WriteTable {
                    offset: info.table_offset,
                    table,
                });
            }
        }
        if is_new || info.flags != old_info.flags {
            self.push(Step::SetServiceState {
                id,
                flags: info.flags,
            });
        }
        if is_new || info != old_info {
            self.push(Step::PublishService {
                key: want.key,
                info,
            });
            if !is_new {
                self.plan.report.services_changed += 1;
            }
        }
        for &key in &want.aliases {
            if view.services().get(&key) != Some(&info) {
                self.push(Step::PublishService { key, info });
            }
        }
        if is_new {
            self.plan.report.services_added += 1;
        }
        if table_changed {
            self.plan.report.tables_swapped += 1;
            if old_info.table_len > 0 {
                self.push(Step::QuarantineTable {
                    offset: old_info.table_offset,
                    len: old_info.table_len,
                });
            }
        }

        // 3. Slots no table points at any more.
        for (key, &slot) in &old_slots {
            if !slots.contains_key(key) {
                self.clear(slot);
            }
        }
        Ok(())
    }

    /// Cleans up service id `info.id`, whose keys are gone or taken by other services.
    fn remove_service(&mut self, info: &ServiceInfo) {
        self.push(Step::SetServiceState {
            id: info.id,
            flags: 0,
        });
        if info.table_len > 0 {
            self.push(Step::QuarantineTable {
                offset: info.table_offset,
                len: info.table_len,
            });
        }
        for slot in self.view.slots_of(info.id).into_values() {
            self.clear(slot);
        }
        self.plan.report.services_removed += 1;
    }

    fn clear(&mut self, slot: u32) {
        self.push(Step::ClearReal { slot });
        self.cleared.insert(slot);
        self.plan.report.reals_cleared += 1;
    }
}

/// `addr`:`port` as written in the configuration.
fn endpoint(addr: &Addr, port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::new(lb_common::ip_of(addr), port)
}

/// The slot value of real server `r` of service `id`; `src_mac` is the director's MAC on
/// its interface; `nat`: of a NAT service.
fn slot_value(id: u32, r: &DesiredReal, src_mac: [u8; 6], nat: bool) -> RealServer {
    let mut flags = REAL_F_IN_USE;
    if nat {
        flags |= REAL_F_NAT;
    }
    if r.alive {
        flags |= REAL_F_ALIVE;
    }
    if r.mac.is_some() {
        flags |= REAL_F_MAC_VALID;
    }
    RealServer {
        addr: r.addr,
        port: r.port,
        _pad: 0,
        service_id: id,
        flags,
        weight: r.weight,
        ifindex: r.ifindex,
        mac: r.mac.unwrap_or([0; 6]),
        src_mac,
    }
}
