//! The connection-counting schedulers (`lc`, `wlc`, `sed`, `nq`, `ovf`, `twos`) and the
//! per-real-server counts they read (`xlb_real_conns`). The rules are
//! `lb_common::sched`'s, shared with the controller's model; here is only the walk over a
//! service's `(index, weight)` table and the counting at flow state changes (`conns`
//! calls [`count`] / [`uncount`] / [`moved`]).

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::helpers::bpf_get_prandom_u32;
use lb_common::{
    COUNTED_ENTRY, MAX_COUNTED, RealConns, SchedAlgo, ServiceInfo,
    sched::{ACTIVE_ONE, LeastConn, Twos, counts_active},
};

use crate::maps::{REAL_CONNS, TABLE};

/// Adds `delta` to the program's field of `xlb_real_conns[real]`.
#[inline(always)]
fn add(real: u32, delta: i64) {
    if let Some(c) = REAL_CONNS.get_ptr_mut(real) {
        // SAFETY: a map value, 8-byte aligned; other CPUs add to it too, hence atomic
        // (BPF's atomic add: the bpf target has no compare-and-swap, so no `AtomicI64`).
        unsafe {
            atomic_xadd::<i64, i64, { AtomicOrdering::Relaxed }>(&raw mut (*c).conns, delta)
        };
    }
}

/// What one flow of `proto` in `state` adds to a [`lb_common::RealConns`] field.
#[inline(always)]
fn one(proto: u8, state: u8) -> i64 {
    if counts_active(proto, state) {
        ACTIVE_ONE
    } else {
        1
    }
}

/// A flow of `proto` in `state` now counts for `real`.
#[inline(always)]
pub fn count(real: u32, proto: u8, state: u8) {
    add(real, one(proto, state));
}

/// A live flow of `proto` in `state` no longer counts for `real` (evicted, or its slot
/// taken again by a reopened connection).
#[inline(always)]
pub fn uncount(real: u32, proto: u8, state: u8) {
    add(real, one(proto, state).wrapping_neg());
}

/// A flow of `real` moved from state `from` to `to`: one add.
#[inline(always)]
pub fn moved(real: u32, proto: u8, from: u8, to: u8) {
    let delta = one(proto, to).wrapping_sub(one(proto, from));
    if delta != 0 {
        add(real, delta);
    }
}

/// Entry `pos` of the service's `(index, weight)` table and the counts of its server.
#[inline(always)]
fn candidate(svc: &ServiceInfo, pos: u32) -> Option<(u32, u32, RealConns)> {
    let at = svc.table_offset.wrapping_add(pos * COUNTED_ENTRY);
    let index = *TABLE.get(at)?;
    let weight = *TABLE.get(at.wrapping_add(1))?;
    let conns = *REAL_CONNS.get(index)?;
    Some((index, weight, conns))
}

/// The real-server index a counting scheduler picks for a new flow, if any candidate
/// qualifies (`ovf` may find none: every server over its weight).
#[inline(always)]
pub fn pick(svc: &ServiceInfo, algo: SchedAlgo) -> Option<u32> {
    let n = svc.table_len / COUNTED_ENTRY;
    let pos = match algo.rule() {
        Some(rule) => {
            let mut lc = LeastConn::new(rule);
            let mut i = 0;
            while i < MAX_COUNTED {
                if i >= n || lc.done() {
                    break;
                }
                let (_, weight, conns) = candidate(svc, i)?;
                lc.consider(i, weight, &conns);
                i += 1;
            }
            lc.choice()?
        }
        None => {
            // twos: the total weight, two draws, then the walk until both are placed.
            let mut t = Twos::new();
            let mut i = 0;
            while i < MAX_COUNTED {
                if i >= n {
                    break;
                }
                let at = svc.table_offset.wrapping_add(i * COUNTED_ENTRY + 1);
                t.add_weight(*TABLE.get(at)?);
                i += 1;
            }
            // SAFETY: plain helper calls.
            let (r1, r2) = unsafe { (bpf_get_prandom_u32(), bpf_get_prandom_u32()) };
            t.start(r1, r2);
            let mut i = 0;
            while i < MAX_COUNTED {
                if i >= n || t.done() {
                    break;
                }
                let (_, weight, conns) = candidate(svc, i)?;
                t.consider(i, weight, &conns);
                i += 1;
            }
            t.choice()?
        }
    };
    TABLE
        .get(svc.table_offset.wrapping_add(pos.wrapping_mul(COUNTED_ENTRY)))
        .copied()
}
