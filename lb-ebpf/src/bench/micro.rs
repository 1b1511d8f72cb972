//! One map operation each, timed with `BPF_PROG_TEST_RUN` against an empty program, to
//! tell what xlb's per-packet steps cost. The bench inserts the looked-up keys first.

use aya_ebpf::{
    bindings::{BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC, xdp_action},
    btf_maps::{Array, HashMap, LruHashMap, PerCpuArray},
    macros::{btf_map, xdp},
    programs::XdpContext,
};

#[btf_map(name = "xlb_bench_map_hash4")]
static M_HASH4: HashMap<u32, [u8; 8], 1> = HashMap::new();

/// As `xlb_services`: 20-byte key, no-prealloc.
#[btf_map(name = "xlb_bench_map_hash20")]
static M_HASH20: HashMap<[u8; 20], [u8; 24], 1, { BPF_F_NO_PREALLOC as usize }> = HashMap::new();

/// As `xlb_reals`: an array of 48-byte values.
#[btf_map(name = "xlb_bench_map_array")]
static M_ARRAY: Array<[u8; 48], 1> = Array::new();

/// As `xlb_conns`: 40-byte key -> 8 bytes, common LRU.
#[btf_map(name = "xlb_bench_map_lru40")]
static M_LRU40: LruHashMap<[u8; 40], [u8; 8], 1> = LruHashMap::new();

/// An IPv4-only connection key (saddr, daddr, ports, proto + pad): 16 bytes.
#[btf_map(name = "xlb_bench_map_lru16")]
static M_LRU16: LruHashMap<[u8; 16], [u8; 8], 1> = LruHashMap::new();

/// As `xlb_conns` with per-CPU LRU lists (BPF_F_NO_COMMON_LRU).
#[btf_map(name = "xlb_bench_map_lru40p")]
static M_LRU40P: LruHashMap<[u8; 40], [u8; 8], 1, { BPF_F_NO_COMMON_LRU as usize }> =
    LruHashMap::new();

/// A plain (not LRU) preallocated hash with the connection key, for comparison.
#[btf_map(name = "xlb_bench_map_hash40")]
static M_HASH40: HashMap<[u8; 40], [u8; 8], 1> = HashMap::new();

/// As `xlb_svc_stats` / `xlb_real_stats`: 24-byte per-CPU counters.
#[btf_map(name = "xlb_bench_map_stats")]
static M_STATS: PerCpuArray<[u64; 3], 2> = PerCpuArray::new();

/// Makes every run's insert key unique.
#[btf_map(name = "xlb_bench_map_seq")]
static M_SEQ: PerCpuArray<u64, 1> = PerCpuArray::new();

#[inline(always)]
fn next_seq() -> u64 {
    match M_SEQ.get_ptr_mut(0) {
        // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
        Some(p) => unsafe {
            let c = *p;
            *p = c + 1;
            c
        },
        None => 0,
    }
}

#[inline(always)]
fn found(hit: bool) -> u32 {
    if hit {
        xdp_action::XDP_DROP
    } else {
        xdp_action::XDP_ABORTED
    }
}

#[xdp]
pub fn xlb_bench_m_hash4(_ctx: XdpContext) -> u32 {
    found(M_HASH4.get_ptr(1u32).is_some())
}

#[xdp]
pub fn xlb_bench_m_hash20(_ctx: XdpContext) -> u32 {
    let key = [1u8; 20];
    found(M_HASH20.get_ptr(key).is_some())
}

#[xdp]
pub fn xlb_bench_m_array(_ctx: XdpContext) -> u32 {
    found(M_ARRAY.get_ptr(0).is_some())
}

#[xdp]
pub fn xlb_bench_m_lru40(_ctx: XdpContext) -> u32 {
    let key = [1u8; 40];
    found(M_LRU40.get_ptr(key).is_some())
}

#[xdp]
pub fn xlb_bench_m_lru16(_ctx: XdpContext) -> u32 {
    let key = [1u8; 16];
    found(M_LRU16.get_ptr(key).is_some())
}

#[xdp]
pub fn xlb_bench_m_stats(_ctx: XdpContext) -> u32 {
    for i in 0..2u32 {
        if let Some(c) = M_STATS.get_ptr_mut(i) {
            // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
            unsafe {
                (*c)[0] += 1;
                (*c)[1] += 60;
            }
        }
    }
    xdp_action::XDP_DROP
}

#[inline(always)]
fn key40(seq: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    let b = seq.to_le_bytes();
    key[..8].copy_from_slice(&b);
    key
}

/// A lookup that misses, then an insert of a new key: the new-flow path of an LRU
/// connection table.
#[inline(always)]
fn miss_then_insert<Key: Copy, const FLAGS: usize>(
    map: &LruHashMap<Key, [u8; 8], 1, FLAGS>,
    key: Key,
) -> u32 {
    if map.get_ptr(key).is_some() {
        return xdp_action::XDP_ABORTED;
    }
    found(map.insert(key, [0u8; 8], 0).is_ok())
}

/// A new flow on an LRU hash with xlb's former 40-byte `xlb_conns` key.
#[xdp]
pub fn xlb_bench_m_lru40_new(_ctx: XdpContext) -> u32 {
    miss_then_insert(&M_LRU40, key40(next_seq()))
}

/// The same with per-CPU LRU lists.
#[xdp]
pub fn xlb_bench_m_lru40p_new(_ctx: XdpContext) -> u32 {
    miss_then_insert(&M_LRU40P, key40(next_seq()))
}

/// The same with a 16-byte key.
#[xdp]
pub fn xlb_bench_m_lru16_new(_ctx: XdpContext) -> u32 {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&next_seq().to_le_bytes());
    // Not `miss_then_insert`: through it LLVM emits 32 more instructions for this key.
    if M_LRU16.get_ptr(key).is_some() {
        return xdp_action::XDP_ABORTED;
    }
    found(M_LRU16.insert(key, [0u8; 8], 0).is_ok())
}

/// A write into a plain preallocated hash: keys cycle through half its capacity, so after
/// the first lap each write replaces an element (allocates one, frees the old one).
#[xdp]
pub fn xlb_bench_m_hash40_new(_ctx: XdpContext) -> u32 {
    let key = key40(next_seq() % 262_144);
    found(M_HASH40.insert(key, [0u8; 8], 0).is_ok())
}

/// Just the per-CPU sequence counter the `_new` programs use (their baseline).
#[xdp]
pub fn xlb_bench_m_seq(_ctx: XdpContext) -> u32 {
    found(next_seq() != u64::MAX)
}

// Random 128-byte buckets, read one after the other: each read's address depends on the
// last read's value, so the time is the memory latency a new flow's bucket costs on a table
// of that size (independent reads would overlap and hide it). Both cache lines of the bucket
// are read, as a new flow's scan of the four slots does.
#[btf_map(name = "xlb_bench_map_bucket_big")]
static M_BUCKET_BIG: Array<[u64; 16], 1> = Array::new();

#[btf_map(name = "xlb_bench_map_bucket_small")]
static M_BUCKET_SMALL: Array<[u64; 16], 1> = Array::new();

/// `buckets`: the map's size, a power of two (set at load).
#[inline(always)]
fn chase(map: &Array<[u64; 16], 1>, buckets: u32) -> u32 {
    let Some(p) = M_SEQ.get_ptr_mut(0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
    let s = unsafe { *p };
    // Non-linear in `s`: a linear hash of a counter is a constant stride, which the
    // hardware prefetcher follows, hiding the latency.
    let mut h = (s.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32;
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    match map.get(h & (buckets - 1)) {
        Some(b) => {
            // The buckets hold zeros: adding the words keeps the chain dependent on both
            // lines.
            // SAFETY: as above.
            unsafe { *p = s + 1 + b[3] + b[11] };
            found(true)
        }
        None => xdp_action::XDP_ABORTED,
    }
}

/// As `lb_common::CONN_BUCKETS4`: the default IPv4 connection table, 16 MiB.
#[xdp]
pub fn xlb_bench_m_bucket_big(_ctx: XdpContext) -> u32 {
    chase(&M_BUCKET_BIG, lb_common::CONN_BUCKETS4)
}

/// 4,096 buckets, 512 KiB: a 16,384-slot table (the driver's `SMALL_TABLE`).
#[xdp]
pub fn xlb_bench_m_bucket_small(_ctx: XdpContext) -> u32 {
    chase(&M_BUCKET_SMALL, 1 << 12)
}
