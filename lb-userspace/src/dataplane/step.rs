//! The writes a map sync is made of: what [`crate::dataplane::plan`] lists, the map
//! writer in [`crate::dataplane::sync`] executes and [`crate::dataplane::view::MapView`]
//! records.

use lb_common::{RealServer, ServiceInfo, ServiceKey};

/// One write to the maps, in the order a plan lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Zeroes the per-CPU counters of a new service id (`xlb_svc_stats`).
    ResetServiceCounters { id: u32 },
    /// Zeroes the per-CPU counters of a newly taken real-server slot (`xlb_real_stats`).
    ResetRealCounters { slot: u32 },
    /// Writes a real-server slot (`xlb_reals`).
    WriteReal { slot: u32, real: RealServer },
    /// Writes a table into a freshly allocated region of `xlb_table`, not yet reachable.
    WriteTable { offset: u32, table: Vec<u32> },
    /// Sets a service id's state flags (`xlb_svc_state`).
    SetServiceState { id: u32, flags: u32 },
    /// Inserts or replaces a service entry whole (`xlb_services`): the swap to its table.
    PublishService { key: ServiceKey, info: ServiceInfo },
    /// Removes a service entry.
    RemoveService { key: ServiceKey },
    /// Gives back a region no service entry points at any more: it waits out the
    /// arena's grace period before reuse (bookkeeping only, nothing is written).
    QuarantineTable { offset: u32, len: u32 },
    /// Clears a real-server slot no table points at any more.
    ClearReal { slot: u32 },
}
