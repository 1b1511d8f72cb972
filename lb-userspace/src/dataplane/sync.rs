//! Makes the BPF maps match a desired state: [`MapSync::apply`] asks the planner
//! ([`crate::dataplane::plan`], which holds the ordering rules) for the steps, and writes
//! them to the maps one by one, each recorded in the [`MapView`] once written.
//!
//! A restarted controller calls [`MapSync::adopt`] first: service ids, real-server slots
//! and table regions are read back from the pinned maps, so established flows, which
//! refer to slots, keep their real server.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use aya::maps::{MapData, MapError, PerCpuArray, PerCpuValues};
use lb_common::{Counters, RealServer, ServiceKey, map_names};
use thiserror::Error;

pub use crate::dataplane::plan::{DesiredReal, DesiredService};
use crate::dataplane::{
    arena::ArenaError,
    maps::Maps,
    plan::{self, PlanError, SyncReport},
    real_conns,
    step::Step,
    view::MapView,
};

#[derive(Debug, Error)]
pub enum SyncError {
    #[error("BPF map {map}: {source}")]
    Map { map: &'static str, source: MapError },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("scheduling-table regions in the pinned maps are inconsistent: {0}")]
    Arena(#[from] ArenaError),
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> SyncError {
    move |source| SyncError::Map { map, source }
}

/// The maps, and the controller's view of what they hold.
pub struct MapSync {
    maps: Maps,
    view: MapView,
    nr_cpus: usize,
}

impl MapSync {
    /// Takes over the maps, reading back what a previous controller left in them.
    pub fn adopt(maps: Maps) -> Result<Self, SyncError> {
        let nr_cpus = aya::util::nr_cpus().map(|n| n.max(1)).unwrap_or(1);
        let services = maps
            .services
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err(map_names::SERVICES))?;
        let sizes = maps.sizes();
        let reals = (0..sizes.reals).map(|slot| (slot, maps.reals_view.get(slot as usize)));
        let view = MapView::adopt(sizes, services, reals, |offset, out| {
            maps.table.read(offset as usize, out)
        })?;
        Ok(Self {
            maps,
            view,
            nr_cpus,
        })
    }

    /// Follows grown connection tables (`Maps::take_conn_tables`): nothing else changed.
    pub fn take_conn_tables(&mut self, grown: Maps) {
        self.maps.take_conn_tables(grown);
    }

    /// The maps, for reading counters and state.
    pub fn maps(&self) -> &Maps {
        &self.maps
    }

    /// The services currently in the maps (adopted or applied).
    pub fn service_count(&self) -> usize {
        self.view.services().len()
    }

    /// Sets the director's own MAC per interface that real servers are reached through:
    /// the source MAC of frames forwarded there, kept in each real server's slot. Slots on
    /// an interface whose MAC changed are rewritten at once.
    pub fn apply_ifaces(&mut self, want: &BTreeMap<u32, [u8; 6]>) -> Result<(), SyncError> {
        if *want == self.view.ifaces {
            return Ok(());
        }
        let steps = plan::plan_ifaces(&self.view, want);
        self.view.ifaces = want.clone();
        self.execute(steps, Instant::now())
    }

    /// Makes the maps hold exactly `desired`.
    pub fn apply(&mut self, desired: &[DesiredService]) -> Result<SyncReport, SyncError> {
        let now = Instant::now();
        self.view.release_quarantined(now);
        let plan = plan::plan(&self.view, desired)?;
        self.execute(plan.steps, now)?;
        self.sync_nat_reals(desired)?;
        Ok(plan.report)
    }

    /// Recounts the connections of the counting schedulers' real servers from the
    /// connection tables and corrects `xlb_real_conns` (`real_conns`). Returns how many
    /// real servers it set (0, without a scan, when no service counts connections).
    pub fn recount_conns(&mut self) -> Result<usize, crate::dataplane::DataPlaneError> {
        if real_conns::counting_services(&self.view).is_empty() {
            return Ok(0);
        }
        let tables = self.maps.conn_tables(false)?;
        let counts = tables.conn_counts(crate::dataplane::conn_table::now_ticks());
        Ok(real_conns::recount(
            &mut self.maps.real_conns,
            &self.view,
            &counts,
        ))
    }

    /// Makes real-server `slot`'s connection counts read `active`, `inactive` (the
    /// controller's correction field only: what a recount does), for tests and the bench.
    pub fn set_real_conns(&mut self, slot: u32, active: u64, inactive: u64) {
        real_conns::set_counts(&mut self.maps.real_conns, slot, active, inactive);
    }

    /// Real-server `slot`'s counts as the scheduler reads them: (active, inactive).
    pub fn real_conns(&self, slot: u32) -> (u32, u32) {
        self.maps.real_conns.get(slot as usize).now()
    }

    /// Makes `xlb_nat_reals` hold the endpoints of the NAT services' real (and sorry)
    /// servers, and nothing else. Only a counter depends on it: written after the plan.
    fn sync_nat_reals(&mut self, desired: &[DesiredService]) -> Result<(), SyncError> {
        let want: BTreeSet<ServiceKey> = desired
            .iter()
            .filter(|s| s.nat)
            .flat_map(|s| {
                s.reals.iter().map(move |r| ServiceKey {
                    vip: r.addr,
                    port: r.port,
                    proto: s.key.proto,
                    _pad: 0,
                })
            })
            .collect();
        let map = &mut self.maps.nat_reals;
        let have = map
            .keys()
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(map_err(map_names::NAT_REALS))?;
        for key in want.difference(&have) {
            map.insert(key, 1, 0)
                .map_err(map_err(map_names::NAT_REALS))?;
        }
        for key in have.difference(&want) {
            map.remove(key).map_err(map_err(map_names::NAT_REALS))?;
        }
        Ok(())
    }

    fn execute(&mut self, steps: Vec<Step>, now: Instant) -> Result<(), SyncError> {
        for step in steps {
            self.write(&step)?;
            self.view.record(step, now)?;
        }
        Ok(())
    }

    fn write(&mut self, step: &Step) -> Result<(), SyncError> {
        use map_names::*;
        let maps = &mut self.maps;
        match step {
            Step::ResetServiceCounters { id } => {
                zero_counters(&mut maps.service_stats, *id, self.nr_cpus, SERVICE_STATS)
            }
            Step::ResetRealCounters { slot } => {
                // A slot taken anew starts with no connections (until the next recount).
                real_conns::set_counts(&mut maps.real_conns, *slot, 0, 0);
                zero_counters(&mut maps.real_stats, *slot, self.nr_cpus, REAL_STATS)
            }
            Step::WriteReal { slot, real } => {
                maps.reals.set(*slot, *real, 0).map_err(map_err(REALS))
            }
            Step::ClearReal { slot } => maps
                .reals
                .set(*slot, RealServer::default(), 0)
                .map_err(map_err(REALS)),
            Step::WriteTable { offset, table } => {
                // Memory writes: the region is not reachable until the service entry that
                // points at it is updated, through a syscall, after this.
                maps.table.write(*offset as usize, table);
                Ok(())
            }
            Step::SetServiceState { id, flags } => maps
                .svc_state
                .set(*id, *flags, 0)
                .map_err(map_err(SVC_STATE)),
            Step::PublishService { key, info } => maps
                .services
                .insert(key, info, 0)
                .map_err(map_err(SERVICES)),
            Step::RemoveService { key } => maps.services.remove(key).map_err(map_err(SERVICES)),
            Step::QuarantineTable { .. } => Ok(()),
        }
    }
}

fn zero_counters(
    map: &mut PerCpuArray<MapData, Counters>,
    index: u32,
    nr_cpus: usize,
    name: &'static str,
) -> Result<(), SyncError> {
    let zeros = PerCpuValues::try_from(vec![Counters::default(); nr_cpus])
        .expect("one value per CPU, and at least one CPU");
    map.set(index, zeros, 0).map_err(map_err(name))
}
