//! The connection-counting schedulers (`lc`, `wlc`, `sed`, `nq`, `ovf`, `twos`) and the
//! per-real-server counts they read (`xlb_real_conns`). The rules are
//! `lb_common::sched`'s, shared with the controller's model; here is only the walk over a
//! service's `(index, weight)` table and the counting at flow state changes (`conns`
//! calls [`count`] / [`uncount`] / [`moved`]).

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use core::mem::size_of;

use aya_ebpf::{
    btf_maps::PerCpuArray,
    cty::c_void,
    helpers::{bpf_get_prandom_u32, bpf_loop},
    macros::btf_map,
};
use lb_common::{
    COUNTED_ENTRY, MAX_COUNTED, RealConns, SchedAlgo, ServiceInfo,
    sched::{ACTIVE_ONE, LeastConn, Twos, counts_active},
};

use crate::maps::{REAL_CONNS, TABLE};

/// Adds `delta` to the program's field of `xlb_real_conns[real]`. A call, not inlined:
/// inlined into `record` beside NAT's code, LLVM computed the key from a register that
/// held a map pointer on another path, which the verifier refuses (pointer `<<=`).
#[inline(never)]
fn add(real: u32, delta: i64) {
    if let Some(c) = REAL_CONNS.get_ptr_mut(real) {
        // SAFETY: a map value, 8-byte aligned; other CPUs add to it too, hence atomic
        // (BPF's atomic add: the bpf target has no compare-and-swap, so no `AtomicI64`).
        unsafe { atomic_xadd::<i64, i64, { AtomicOrdering::Relaxed }>(&raw mut (*c).conns, delta) };
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

/// Entry `pos` of a counting table at `offset` and the counts of its server.
#[inline(always)]
fn candidate(offset: u32, pos: u32) -> Option<(u32, RealConns)> {
    let at = offset.wrapping_add(pos.wrapping_mul(COUNTED_ENTRY));
    let index = *TABLE.get(at)?;
    let weight = *TABLE.get(at.wrapping_add(1))?;
    let conns = *REAL_CONNS.get(index)?;
    Some((weight, conns))
}

/// What a `bpf_loop` callback walks: the table, and the scheduler's state in
/// [`SCRATCH`]. A bounded loop of 256 turns took the verifier past its million
/// instructions (it walks every turn), and so did a `bpf_loop` over state on the stack
/// (the verifier follows callback turns until their states repeat, and tracked values
/// never repeat). The state lives in a map value, whose contents the verifier does not
/// track: the callback's second turn looks like its first.
#[repr(C)]
struct Walk<S> {
    state: *mut S,
    offset: u32,
    n: u32,
}

/// The scheduler's state during a walk, one per CPU (not pinned: nothing outlives a
/// packet here).
#[btf_map(name = "xlb_sched_scratch")]
static SCRATCH: PerCpuArray<[u64; 12], 1> = PerCpuArray::new();

const _: () = {
    assert!(size_of::<LeastConn>() <= size_of::<[u64; 12]>());
    assert!(size_of::<Twos>() <= size_of::<[u64; 12]>());
};

/// Candidates per turn of the `lc`/`wlc`/`sed`/`nq`/`ovf` walk: a turn is a call.
const PER_TURN: u32 = 16;

/// One turn of the `lc`/`wlc`/`sed`/`nq`/`ovf` walk, [`PER_TURN`] candidates: 0 goes
/// on, 1 stops. The state stays in [`SCRATCH`] (read and written through the pointer,
/// never copied to the stack: see [`Walk`]).
extern "C" fn least_turn(turn: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the `Walk` on `pick`'s stack, which bpf_loop hands back.
    let w = unsafe { &*(ctx as *const Walk<LeastConn>) };
    let first = (turn as u32).wrapping_mul(PER_TURN);
    let mut k = 0;
    while k < PER_TURN {
        let i = first.wrapping_add(k);
        // SAFETY: `state` points into SCRATCH's value for this CPU.
        let state = unsafe { &mut *w.state };
        if i >= w.n || state.done() {
            return 1;
        }
        match candidate(w.offset, i) {
            Some((weight, conns)) => state.consider(i, weight, &conns),
            None => return 1,
        }
        k += 1;
    }
    0
}

/// One turn of `twos`' first walk: the total weight.
extern "C" fn twos_weight_turn(i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: as `least_turn`.
    let w = unsafe { &*(ctx as *const Walk<Twos>) };
    // SAFETY: as `least_turn`.
    let state = unsafe { &mut *w.state };
    let i = i as u32;
    if i >= w.n {
        return 1;
    }
    let at = w
        .offset
        .wrapping_add(i.wrapping_mul(COUNTED_ENTRY).wrapping_add(1));
    match TABLE.get(at) {
        Some(weight) => {
            state.add_weight(*weight);
            0
        }
        None => 1,
    }
}

/// One turn of `twos`' second walk: placing the two draws.
extern "C" fn twos_turn(i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: as `least_turn`.
    let w = unsafe { &*(ctx as *const Walk<Twos>) };
    // SAFETY: as `least_turn`.
    let state = unsafe { &mut *w.state };
    let i = i as u32;
    if i >= w.n || state.done() {
        return 1;
    }
    match candidate(w.offset, i) {
        Some((weight, conns)) => {
            state.consider(i, weight, &conns);
            0
        }
        None => 1,
    }
}

/// The real-server index a counting scheduler picks for a new flow, if any candidate
/// qualifies (`ovf` may find none: every server over its weight).
#[inline(always)]
pub fn pick(svc: &ServiceInfo, algo: SchedAlgo) -> Option<u32> {
    let n = svc.table_len / COUNTED_ENTRY;
    let turns = if n > MAX_COUNTED { MAX_COUNTED } else { n };
    let scratch = SCRATCH.get_ptr_mut(0)?;
    let pos = match algo.rule() {
        Some(rule) => {
            let state = scratch as *mut LeastConn;
            // SAFETY: a per-CPU map value big enough (asserted), 8-byte aligned.
            unsafe { *state = LeastConn::new(rule) };
            let mut w = Walk {
                state,
                offset: svc.table_offset,
                n: turns,
            };
            // SAFETY: helper call; the callback and its context as bpf_loop wants them.
            unsafe {
                bpf_loop(
                    turns.div_ceil(PER_TURN),
                    least_turn as *mut c_void,
                    &raw mut w as *mut c_void,
                    0,
                )
            };
            // SAFETY: as above.
            unsafe { (*state).choice()? }
        }
        None => {
            let state = scratch as *mut Twos;
            // SAFETY: as above.
            unsafe { *state = Twos::new() };
            let mut w = Walk {
                state,
                offset: svc.table_offset,
                n: turns,
            };
            // SAFETY: as above.
            unsafe {
                bpf_loop(
                    turns,
                    twos_weight_turn as *mut c_void,
                    &raw mut w as *mut c_void,
                    0,
                )
            };
            // SAFETY: plain helper calls.
            let (r1, r2) = unsafe { (bpf_get_prandom_u32(), bpf_get_prandom_u32()) };
            // SAFETY: as above.
            unsafe { (*state).start(r1, r2) };
            // SAFETY: as above.
            unsafe {
                bpf_loop(
                    turns,
                    twos_turn as *mut c_void,
                    &raw mut w as *mut c_void,
                    0,
                )
            };
            // SAFETY: as above.
            unsafe { (*state).choice()? }
        }
    };
    TABLE
        .get(
            svc.table_offset
                .wrapping_add(pos.wrapping_mul(COUNTED_ENTRY)),
        )
        .copied()
}
