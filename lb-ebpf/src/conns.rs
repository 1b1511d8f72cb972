//! The connection tables: find a flow's slot, refresh it, record a new flow. The layout
//! and why it is not a kernel LRU hash: `lb_common::conn`.

use aya_ebpf::helpers::bpf_ktime_get_coarse_ns;
use lb_common::{
    CONN_BUCKETS4, CONN_BUCKETS6, CONN_FIN, CONN_RST, CONN_SYN_RECV, CONN_WAYS, Conn4, Conn6,
    ConnValue, FlowKey, FlowKey4, SVC_F_COUNT_CONNS, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Take,
    Timeouts, VictimSearch, clock_ticks, conn_check, conn_hash4, conn_hash6, initial_state,
    tcp_next,
};

use crate::{
    maps::{CONN_EVICTIONS, CONNS4, CONNS6, SVC_STATE},
    sched,
};

/// What [`record_in`] returns when no slot was evicted. A plain sentinel, not an
/// `Option`: LLVM shifted the `Option`'s payload register before testing it, and on the
/// `None` paths that register held a map pointer, which the verifier refuses.
const NO_EVICTION: u32 = u32::MAX;

/// Bucket counts of the tables as created (`global_defs.connection_table_size`): set by
/// the loader (`EbpfLoader::override_global`), constants to the verifier. Powers of two.
#[unsafe(no_mangle)]
static XLB_CONN_BUCKETS4: u32 = CONN_BUCKETS4;
#[unsafe(no_mangle)]
static XLB_CONN_BUCKETS6: u32 = CONN_BUCKETS6;

/// `Meta::timeouts`, copied in at load (keepalived's `lvs_timeouts`).
#[unsafe(no_mangle)]
static XLB_CONN_TIMEOUTS: Timeouts = Timeouts::IPVS;

#[inline(always)]
fn timeouts() -> Timeouts {
    // SAFETY: as `mask4`.
    unsafe { core::ptr::read_volatile(&XLB_CONN_TIMEOUTS) }
}

/// `Meta::conn_seed`, copied in at load: the established path then reads only constants.
#[unsafe(no_mangle)]
static XLB_CONN_SEED: u32 = 0;

#[inline(always)]
pub fn seed() -> u32 {
    // SAFETY: as `mask4`.
    unsafe { core::ptr::read_volatile(&XLB_CONN_SEED) }
}

#[inline(always)]
fn mask4() -> u32 {
    // SAFETY: a read of a constant the loader may have rewritten (volatile: not folded).
    unsafe { core::ptr::read_volatile(&XLB_CONN_BUCKETS4) }.wrapping_sub(1)
}

#[inline(always)]
fn mask6() -> u32 {
    // SAFETY: as above.
    unsafe { core::ptr::read_volatile(&XLB_CONN_BUCKETS6) }.wrapping_sub(1)
}

/// The table clock, now.
#[inline(always)]
pub fn now() -> u32 {
    // SAFETY: plain helper call.
    clock_ticks(unsafe { bpf_ktime_get_coarse_ns() })
}

/// A packet's connection-table key, whichever family it is.
pub enum Flow {
    V4(FlowKey4),
    V6(FlowKey),
}

/// A slot type of a table: a key of `WORDS` u64 words and a value.
trait Slot {
    type Key;
    const WORDS: usize;
    fn key(slot: *mut Self) -> *mut Self::Key;
    fn value(slot: *mut Self) -> *mut ConnValue;
}

impl Slot for Conn4 {
    type Key = FlowKey4;
    const WORDS: usize = 2;
    #[inline(always)]
    fn key(slot: *mut Self) -> *mut FlowKey4 {
        // SAFETY: a field of a valid slot pointer.
        unsafe { &raw mut (*slot).key }
    }
    #[inline(always)]
    fn value(slot: *mut Self) -> *mut ConnValue {
        // SAFETY: as above.
        unsafe { &raw mut (*slot).value }
    }
}

impl Slot for Conn6 {
    type Key = FlowKey;
    const WORDS: usize = 5;
    #[inline(always)]
    fn key(slot: *mut Self) -> *mut FlowKey {
        // SAFETY: a field of a valid slot pointer.
        unsafe { &raw mut (*slot).key }
    }
    #[inline(always)]
    fn value(slot: *mut Self) -> *mut ConnValue {
        // SAFETY: as above.
        unsafe { &raw mut (*slot).value }
    }
}

/// Compares two keys word by word, in place (keys are 8-byte aligned, no padding).
#[inline(always)]
fn same_key<S: Slot>(slot: *mut S, key: &S::Key) -> bool {
    let a = S::key(slot) as *const u64;
    let b = key as *const S::Key as *const u64;
    let mut i = 0;
    while i < S::WORDS {
        // SAFETY: both point at keys of S::WORDS words.
        if unsafe { *a.add(i) != *b.add(i) } {
            return false;
        }
        i += 1;
    }
    true
}

#[inline(always)]
fn find_in<S: Slot>(
    t: &Timeouts,
    slots: *mut [S; CONN_WAYS],
    key: &S::Key,
    hash: u32,
    now: u32,
) -> Option<*mut ConnValue> {
    let mut i = 0;
    while i < CONN_WAYS {
        // SAFETY: in bounds of the bucket, a map value.
        let slot = unsafe { (slots as *mut S).add(i) };
        // SAFETY: a racy read of a map value, validated by `live`.
        if same_key(slot, key) && unsafe { (*S::value(slot)).live(hash, now, t) } {
            return Some(S::value(slot));
        }
        i += 1;
    }
    None
}

/// Takes a slot for the flow and fills it: its own old slot, else what [`VictimSearch`]
/// chooses. Returns the `xlb_conn_evictions` index to count, if a live flow was evicted
/// or the new one could not be recorded.
#[inline(always)]
fn record_in<S: Slot>(
    t: &Timeouts,
    slots: *mut [S; CONN_WAYS],
    key: &S::Key,
    value: &ConnValue,
    hash: u32,
    now: u32,
) -> u32
where
    S::Key: Copy,
{
    let base = slots as *mut S;
    let mut search = VictimSearch::new();
    let mut own = CONN_WAYS;
    let mut i = 0;
    while i < CONN_WAYS {
        // SAFETY: in bounds of the bucket, a map value.
        let slot = unsafe { base.add(i) };
        if same_key(slot, key) {
            own = i;
            break;
        }
        let v = S::value(slot);
        // SAFETY: as above; a racy read only picks a worse victim.
        let (seen, state, proto) = unsafe { ((*v).seen, (*v).state, (*v).proto) };
        search.consider(i, seen, state, proto, now, t);
        i += 1;
    }
    let (victim, counted, live) = if own < CONN_WAYS {
        (own, NO_EVICTION, false)
    } else {
        match search.choice() {
            Take::Free(i) => (i, NO_EVICTION, false),
            Take::Evict(i, kind) => (i, kind, true),
            Take::None => return lb_common::CONN_NOT_TRACKED,
        }
    };
    // SAFETY: victim < CONN_WAYS; the mask is for the verifier, which cannot tell.
    let slot = unsafe { base.add(victim & (CONN_WAYS - 1)) };
    let v = S::value(slot);
    // A live flow leaving the table leaves its real server's counts (expired ones left
    // them at the controller's recount): an evicted flow, or the flow's own slot taken
    // again (a reopened connection, or one scheduled anew).
    // SAFETY: a racy read of a map value; a torn one only miscounts until the recount.
    let old = unsafe { *v };
    if live || (own < CONN_WAYS && old.live(hash, now, t)) {
        let counts = SVC_STATE
            .get(old.service_id as u32)
            .is_some_and(|f| f & SVC_F_COUNT_CONNS != 0);
        if counts {
            sched::uncount(old.real, old.proto, old.state);
        }
    }
    // SAFETY: a map value. `seen` = 0 first: a reader sees an empty slot until the last
    // store; volatile keeps the order, `check` covers two colliding writers.
    unsafe {
        core::ptr::write_volatile(&raw mut (*v).seen, 0);
        *S::key(slot) = *key;
        core::ptr::write_volatile(&raw mut (*v).real, value.real);
        core::ptr::write_volatile(&raw mut (*v).service_id, value.service_id);
        core::ptr::write_volatile(&raw mut (*v).state, value.state);
        core::ptr::write_volatile(&raw mut (*v).proto, value.proto);
        core::ptr::write_volatile(&raw mut (*v).check, value.check);
        core::ptr::write_volatile(&raw mut (*v).seen, value.seen);
    }
    counted
}

impl Flow {
    #[inline(always)]
    pub fn hash(&self, seed: u32) -> u32 {
        match self {
            Self::V4(k) => conn_hash4(k, seed),
            Self::V6(k) => conn_hash6(k, seed),
        }
    }

    #[inline(always)]
    pub fn proto(&self) -> u8 {
        match self {
            Self::V4(k) => k.proto,
            Self::V6(k) => k.proto,
        }
    }

    /// The flow's live slot, if it has one.
    #[inline(always)]
    pub fn find(&self, hash: u32, now: u32) -> Option<*mut ConnValue> {
        match self {
            Self::V4(k) => {
                let bucket = CONNS4.get_ptr_mut(hash & mask4())?;
                // SAFETY: a map value.
                find_in(
                    &timeouts(),
                    unsafe { &raw mut (*bucket).slots },
                    k,
                    hash,
                    now,
                )
            }
            Self::V6(k) => {
                let bucket = CONNS6.get_ptr_mut(hash & mask6())?;
                // SAFETY: a map value.
                find_in(
                    &timeouts(),
                    unsafe { &raw mut (*bucket).slots },
                    k,
                    hash,
                    now,
                )
            }
        }
    }

    /// Records a new flow (or a flow scheduled again) on `real`, in the state its first
    /// packet's `tcp_flags` give it (a FIN, RST or flagless first packet makes no slot);
    /// `counted`: the service counts connections (`xlb_real_conns`).
    #[inline(always)]
    pub fn record(
        &self,
        hash: u32,
        now: u32,
        real: u32,
        service_id: u32,
        tcp_flags: u8,
        counted: bool,
    ) {
        let proto = self.proto();
        let Some(state) = initial_state(proto, tcp_flags) else {
            return;
        };
        let value = ConnValue {
            real,
            service_id: service_id as u16,
            state,
            proto,
            seen: now,
            check: conn_check(hash, real, service_id as u16),
        };
        let outcome = match self {
            Self::V4(k) => match CONNS4.get_ptr_mut(hash & mask4()) {
                // SAFETY: a map value.
                Some(b) => record_in(
                    &timeouts(),
                    unsafe { &raw mut (*b).slots },
                    k,
                    &value,
                    hash,
                    now,
                ),
                None => NO_EVICTION,
            },
            Self::V6(k) => match CONNS6.get_ptr_mut(hash & mask6()) {
                // SAFETY: a map value.
                Some(b) => record_in(
                    &timeouts(),
                    unsafe { &raw mut (*b).slots },
                    k,
                    &value,
                    hash,
                    now,
                ),
                None => NO_EVICTION,
            },
        };
        if counted && outcome != lb_common::CONN_NOT_TRACKED {
            sched::count(real, proto, state);
        }
        if outcome != NO_EVICTION {
            if let Some(c) = CONN_EVICTIONS.get_ptr_mut(outcome) {
                // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
                unsafe { *c += 1 };
            }
        }
    }
}

/// Whether a packet of a flow whose slot is `v` starts a new connection on the same
/// 5-tuple (a SYN after the old one closed): IPVS schedules those again. A SYN in
/// SYN_RECV is a retransmission and stays.
#[inline(always)]
pub fn reopens(v: &ConnValue, tcp_flags: u8) -> bool {
    (v.state == CONN_FIN || v.state == CONN_RST) && tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
}

/// Keeps a live slot alive and follows the client's TCP state (`lb_common::tcp_next`;
/// UDP packets carry no flags, so their state stays). Writes only on a change: once a
/// tick, not once a packet. `counted`: the service counts connections, and a move
/// between ActiveConn and InActConn is counted.
#[inline(always)]
pub fn refresh(slot: *mut ConnValue, v: &ConnValue, now: u32, tcp_flags: u8, counted: bool) {
    // The common packet (an ACK, or UDP, of a flow past SYN_RECV) changes nothing: tested
    // first, in two instructions.
    let state = if tcp_flags & (TCP_RST | TCP_SYN | TCP_FIN) == 0 && v.state != CONN_SYN_RECV {
        v.state
    } else {
        tcp_next(v.state, tcp_flags)
    };
    // SAFETY: `slot` points into a map value; single aligned stores.
    unsafe {
        if v.seen != now {
            core::ptr::write_volatile(&raw mut (*slot).seen, now);
        }
        if state != v.state {
            core::ptr::write_volatile(&raw mut (*slot).state, state);
        }
    }
    if counted && state != v.state {
        sched::moved(v.real, v.proto, v.state, state);
    }
}
