//! `xlb_real_conns`, the per-real-server ActiveConn / InActConn that the connection-
//! counting schedulers read (`lb_common::sched`). The XDP program counts flows as they
//! come, change state and are evicted; a flow that expires without a packet is seen only
//! by a recount of the connection tables (the one `xlb status` makes), which the daemon
//! runs on its publish tick ([`recount`]) and writes as a correction: the controller's
//! own field `fix`, so that `conns + fix` is the recount. The program's field is never
//! written here, so none of its concurrent updates is lost; a flow that changes state
//! while the tables are scanned is off by one until the next recount.

use std::collections::BTreeSet;

use lb_common::{RealConns, SVC_F_COUNT_CONNS, sched::pack};

use crate::dataplane::{conn_table::ConnCounts, mmap::MappedArray, view::MapView};

/// Reads the program's field of `slot` (a single aligned load).
fn program_field(arr: &mut MappedArray<RealConns>, slot: u32) -> i64 {
    let p = arr.ptr(slot as usize);
    // SAFETY: in bounds (checked by `ptr`), 8-byte aligned in a live shared mapping.
    unsafe { std::ptr::read_volatile(&raw const (*p).conns) }
}

/// Makes `slot`'s counts read `active`, `inactive` now, by writing only `fix`.
pub fn set_counts(arr: &mut MappedArray<RealConns>, slot: u32, active: u64, inactive: u64) {
    if slot as usize >= arr.len() {
        return;
    }
    let clamp = |v: u64| v.min(i32::MAX as u64) as i32;
    let want = pack(clamp(active), clamp(inactive));
    let now = program_field(arr, slot);
    let p = arr.ptr(slot as usize);
    // SAFETY: as above; the program never writes `fix`.
    unsafe { std::ptr::write_volatile(&raw mut (*p).fix, want.wrapping_sub(now)) };
}

/// The service ids whose scheduler counts connections.
pub fn counting_services(view: &MapView) -> BTreeSet<u32> {
    (view.services().values())
        .filter(|i| i.flags & SVC_F_COUNT_CONNS != 0)
        .map(|i| i.id)
        .collect()
}

/// Writes `counts` (a recount of the connection tables) as the counts of every real
/// server of a counting service. Returns how many slots it set.
pub fn recount(arr: &mut MappedArray<RealConns>, view: &MapView, counts: &ConnCounts) -> usize {
    let counting = counting_services(view);
    let mut n = 0;
    for (&slot, real) in view.reals() {
        if counting.contains(&real.service_id) {
            let c = counts.of_real(slot, real.service_id);
            set_counts(arr, slot, c.active, c.inactive);
            n += 1;
        }
    }
    n
}
