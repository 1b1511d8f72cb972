//! XDP programs for `cargo xtask bench` only; xlb itself never loads them.
//!
//! - `xlb_bench_gen`: the traffic generator. Run with `BPF_PROG_TEST_RUN` in live-frames
//!   mode (`BPF_F_TEST_XDP_LIVE_FRAMES`) it transmits every frame it returns `XDP_TX` for
//!   out of the interface named in the run's context. The kernel recycles its pages without
//!   resetting their bytes (and the director rewrites the MACs in place), so it writes the
//!   whole Ethernet + IPv4 + UDP header every time, the flow taken from a per-CPU counter.
//!   Paced by `gap_ns` in its config (the bench searches for the director's peak rate).
//! - `xlb_bench_sink`: counts and drops: the real server's stand-in.
//! - `xlb_bench_swap`: the ceiling, the least a forwarder can do: swap MACs, `XDP_TX`.
//! - `xlb_bench_fwd`: the ceiling for a real server behind another interface: set both
//!   MACs and `bpf_redirect`, as xlb does there.
//! - `xlb_bench_newflow`: gives the test frame a new source address and port on every
//!   run, then tail-calls slot 0 of `xlb_bench_nf_progs` (xlb, or the empty program for
//!   the baseline): new flows timed in a hot loop with `repeat`, as under a flood.
//! - `xlb_bench_m_*`: one map operation each, timed with `BPF_PROG_TEST_RUN` against an
//!   empty program, to tell what xlb's per-packet steps cost.
//!
//! Every map here is declared with one entry (or a few): the object is shared with xlb,
//! which creates all of its maps on load. The bench sets real sizes with
//! `EbpfLoader::map_max_entries`. The config structs are mirrored in the bench driver
//! (tests/src/bin/xlb-bench/).

use aya_ebpf::{
    bindings::{BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC, xdp_action},
    btf_maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray},
    helpers::{bpf_ktime_get_ns, bpf_redirect},
    macros::{btf_map, xdp},
    programs::XdpContext,
};

/// `xlb_bench_gen_cfg[0]`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GenCfg {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// First client address, host byte order; flow `i` comes from `saddr + (i & 0xffff)`.
    pub saddr: u32,
    /// The VIP, host byte order.
    pub daddr: u32,
    /// Distinct flows cycled through; 0: every frame a new flow.
    pub flows: u32,
    pub dport: u16,
    /// Flow `i` comes from port `sport + (i >> 16)` (`% 60000` for new flows).
    pub sport: u16,
    /// IPv4 total length (the frame length - 14).
    pub ip_len: u16,
    pub _pad: u16,
    /// Nanoseconds between frames; 0: as fast as the CPU goes.
    pub gap_ns: u32,
}

/// `xlb_bench_fwd_cfg[0]`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FwdCfg {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ifindex: u32,
}

#[btf_map(name = "xlb_bench_gen_cfg")]
static GEN_CFG: Array<GenCfg, 1> = Array::new();

/// Frames the generator produced (per CPU).
#[btf_map(name = "xlb_bench_gen_n")]
static GEN_N: PerCpuArray<u64, 1> = PerCpuArray::new();

/// When the generator may send its next frame (per CPU, ns of `bpf_ktime_get_ns`).
#[btf_map(name = "xlb_bench_gen_clock")]
static GEN_CLOCK: PerCpuArray<u64, 1> = PerCpuArray::new();

/// Frames the sink received (per CPU).
#[btf_map(name = "xlb_bench_sink_n")]
static SINK_N: PerCpuArray<u64, 1> = PerCpuArray::new();

#[btf_map(name = "xlb_bench_fwd_cfg")]
static FWD_CFG: Array<FwdCfg, 1> = Array::new();

const GEN_HLEN: usize = 14 + 20 + 8;

#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Waits until the generator's clock allows the next frame, then moves the clock on by
/// `gap`. A generator that fell behind by more than a few batches starts afresh from now
/// (no burst to catch up).
#[inline(always)]
fn pace(gap: u64) {
    let Some(clock) = GEN_CLOCK.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
    let next = unsafe { *clock };
    // SAFETY: plain helper call.
    let mut now = unsafe { bpf_ktime_get_ns() };
    let mut spins = 0;
    while now < next && spins < 256 {
        // SAFETY: as above.
        now = unsafe { bpf_ktime_get_ns() };
        spins += 1;
    }
    let base = if now > next + 256 * gap { now } else { next };
    // SAFETY: as above.
    unsafe { *clock = base + gap };
}

#[xdp]
pub fn xlb_bench_gen(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + GEN_HLEN > ctx.data_end() {
        return xdp_action::XDP_ABORTED;
    }
    let Some(cfg) = GEN_CFG.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    let Some(n) = GEN_N.get_ptr_mut(0) else {
        return xdp_action::XDP_ABORTED;
    };
    if cfg.gap_ns != 0 {
        pace(cfg.gap_ns as u64);
    }
    // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
    let c = unsafe {
        let c = *n;
        *n = c + 1;
        c
    };
    let (i, sport) = if cfg.flows == 0 {
        (
            c as u32,
            cfg.sport.wrapping_add(((c >> 16) % 60_000) as u16),
        )
    } else {
        let i = (c % cfg.flows as u64) as u32;
        (i, cfg.sport.wrapping_add((i >> 16) as u16))
    };
    let saddr = cfg.saddr.wrapping_add(i & 0xffff);
    let daddr = cfg.daddr;
    let ttl_proto: u16 = (64 << 8) | 17;
    let sum = 0x4500u32
        + cfg.ip_len as u32
        + 0x4000
        + ttl_proto as u32
        + (saddr >> 16)
        + (saddr & 0xffff)
        + (daddr >> 16)
        + (daddr & 0xffff);
    let csum = fold(sum);
    let udp_len = cfg.ip_len - 20;
    let s = saddr.to_be_bytes();
    let d = daddr.to_be_bytes();
    let sp = sport.to_be_bytes();
    let dp = cfg.dport.to_be_bytes();
    let ul = udp_len.to_be_bytes();
    let il = cfg.ip_len.to_be_bytes();
    let cs = csum.to_be_bytes();
    let m = cfg.dst_mac;
    let sm = cfg.src_mac;
    let hdr: [u8; GEN_HLEN] = [
        m[0], m[1], m[2], m[3], m[4], m[5], sm[0], sm[1], sm[2], sm[3], sm[4], sm[5], 0x08,
        0x00, // Ethernet
        0x45, 0, il[0], il[1], 0, 0, 0x40, 0, 64, 17, cs[0], cs[1], s[0], s[1], s[2], s[3], d[0],
        d[1], d[2], d[3], // IPv4, DF, TTL 64, UDP
        sp[0], sp[1], dp[0], dp[1], ul[0], ul[1], 0, 0, // UDP, no checksum
    ];
    // SAFETY: bounds checked above.
    unsafe { *(start as *mut [u8; GEN_HLEN]) = hdr };
    xdp_action::XDP_TX
}

#[xdp]
pub fn xlb_bench_sink(_ctx: XdpContext) -> u32 {
    if let Some(n) = SINK_N.get_ptr_mut(0) {
        // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
        unsafe { *n += 1 };
    }
    xdp_action::XDP_DROP
}

#[xdp]
pub fn xlb_bench_swap(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + 12 > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: bounds checked above.
    unsafe {
        let dst = start as *mut [u8; 6];
        let src = (start + 6) as *mut [u8; 6];
        let d = *dst;
        *dst = *src;
        *src = d;
    }
    xdp_action::XDP_TX
}

#[xdp]
pub fn xlb_bench_fwd(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    if start + 12 > ctx.data_end() {
        return xdp_action::XDP_PASS;
    }
    let Some(cfg) = FWD_CFG.get(0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: bounds checked above.
    unsafe {
        *(start as *mut [u8; 6]) = cfg.dst_mac;
        *((start + 6) as *mut [u8; 6]) = cfg.src_mac;
        bpf_redirect(cfg.ifindex, 0) as u32
    }
}

// ---- One map operation each (BPF_PROG_TEST_RUN against an empty program). ----
// The bench inserts the looked-up keys first; sizes are set at load time.

/// As `xlb_ifaces`: u32 key -> 8 bytes.
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

/// A lookup that misses, then an insert of a new key: xlb's new-flow path on `xlb_conns`.
#[xdp]
pub fn xlb_bench_m_lru40_new(_ctx: XdpContext) -> u32 {
    let key = key40(next_seq());
    if M_LRU40.get_ptr(key).is_some() {
        return xdp_action::XDP_ABORTED;
    }
    found(M_LRU40.insert(key, [0u8; 8], 0).is_ok())
}

/// The same with per-CPU LRU lists.
#[xdp]
pub fn xlb_bench_m_lru40p_new(_ctx: XdpContext) -> u32 {
    let key = key40(next_seq());
    if M_LRU40P.get_ptr(key).is_some() {
        return xdp_action::XDP_ABORTED;
    }
    found(M_LRU40P.insert(key, [0u8; 8], 0).is_ok())
}

/// The same with a 16-byte key.
#[xdp]
pub fn xlb_bench_m_lru16_new(_ctx: XdpContext) -> u32 {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&next_seq().to_le_bytes());
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

// ---- A prototype of a cheaper established path, to measure a suggestion. ----
// The flow is looked up first, in an IPv4-only connection table with a 16-byte key; the
// service's state comes from an array indexed by the service id the flow entry holds, and
// the director's source MAC from the real server's entry: one hash lookup per packet
// instead of three (xlb_services, xlb_conns, xlb_ifaces). xlb's program took this shape in
// 18c2dc8 with its 40-byte key of both families; the prototype now measures what an
// IPv4-only 16-byte key would add to that. Not used by xlb.

/// A real server as the prototype keeps it: its MAC and the director's on its link.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ProtoReal {
    pub mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ifindex: u32,
    pub flags: u32,
    pub service_id: u32,
}

/// Key: saddr, daddr (network order), sport, dport (host order), proto, 3 bytes of pad.
#[btf_map(name = "xlb_bench_map_p_conns")]
static P_CONNS: LruHashMap<[u8; 16], [u32; 2], 1> = LruHashMap::new();

/// Per service id: flags (bit 0: active).
#[btf_map(name = "xlb_bench_map_p_svc")]
static P_SVC: Array<u32, 1> = Array::new();

#[btf_map(name = "xlb_bench_map_p_reals")]
static P_REALS: Array<ProtoReal, 1> = Array::new();

#[btf_map(name = "xlb_bench_map_p_stats")]
static P_STATS: PerCpuArray<[u64; 3], 2> = PerCpuArray::new();

#[inline(always)]
fn p_count(index: u32, bytes: u64) {
    if let Some(c) = P_STATS.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
        unsafe {
            (*c)[0] += 1;
            (*c)[1] += bytes;
        }
    }
}

#[xdp]
pub fn xlb_bench_proto_established(ctx: XdpContext) -> u32 {
    let start = ctx.data();
    let end = ctx.data_end();
    // Ethernet + IPv4 without options + the L4 ports (the same checks as xlb's parser).
    if start + 14 + 20 + 20 > end {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: bounds checked above.
    let (eth_type, ip) = unsafe {
        (
            u16::from_be_bytes(*((start + 12) as *const [u8; 2])),
            *((start + 14) as *const [u8; 20]),
        )
    };
    if eth_type != 0x0800 || ip[0] != 0x45 || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return xdp_action::XDP_PASS;
    }
    let proto = ip[9];
    if proto != 6 && proto != 17 {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: bounds checked above.
    let ports = unsafe { *((start + 34) as *const [u8; 4]) };
    let sport = u16::from_be_bytes([ports[0], ports[1]]).to_le_bytes();
    let dport = u16::from_be_bytes([ports[2], ports[3]]).to_le_bytes();
    let key: [u8; 16] = [
        ip[12], ip[13], ip[14], ip[15], ip[16], ip[17], ip[18], ip[19], sport[0], sport[1],
        dport[0], dport[1], proto, 0, 0, 0,
    ];
    let Some(flow) = P_CONNS.get_ptr(key) else {
        return xdp_action::XDP_PASS; // a new flow: the full path (not prototyped)
    };
    // SAFETY: LRU values may be recycled; the copy is re-validated below.
    let [real_index, service_id] = unsafe { *flow };
    match P_SVC.get(service_id) {
        Some(flags) if flags & 1 != 0 => {}
        _ => return xdp_action::XDP_PASS,
    }
    let Some(real) = P_REALS.get(real_index) else {
        return xdp_action::XDP_DROP;
    };
    if real.flags & 7 != 7 || real.service_id != service_id {
        return xdp_action::XDP_PASS; // would re-schedule
    }
    // SAFETY: bounds checked above.
    unsafe {
        *(start as *mut [u8; 6]) = real.mac;
        *((start + 6) as *mut [u8; 6]) = real.src_mac;
    }
    let bytes = (end - start) as u64;
    p_count(0, bytes); // the service's counters
    p_count(1, bytes); // the real server's
    if real.ifindex as usize == ctx.ingress_ifindex() {
        xdp_action::XDP_TX
    } else {
        // SAFETY: plain helper call.
        unsafe { bpf_redirect(real.ifindex, 0) as u32 }
    }
}

/// What `xlb_bench_newflow` tail-calls: slot 0.
#[btf_map(name = "xlb_bench_nf_progs")]
static NF_PROGS: ProgramArray<1> = ProgramArray::new();

/// Runs of `xlb_bench_newflow` (per CPU): the flow number.
#[btf_map(name = "xlb_bench_nf_n")]
static NF_N: PerCpuArray<u64, 1> = PerCpuArray::new();

#[xdp]
pub fn xlb_bench_newflow(ctx: XdpContext) -> u32 {
    // Ethernet + IPv4 without options + the ports.
    const SADDR: usize = 14 + 12;
    const SPORT: usize = 14 + 20;
    let start = ctx.data();
    if start + SPORT + 2 > ctx.data_end() {
        return xdp_action::XDP_ABORTED;
    }
    let Some(n) = NF_N.get_ptr_mut(0) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
    let c = unsafe {
        let c = *n;
        *n = c + 1;
        c
    };
    // 198.19.0.0/16 and 60,000 ports: 3.9 billion flows before one repeats.
    let a = ((c & 0xffff) as u16).to_be_bytes();
    let port = (1024 + ((c >> 16) % 60_000) as u16).to_be_bytes();
    // SAFETY: bounds checked above.
    unsafe {
        *((start + SADDR) as *mut [u8; 4]) = [198, 19, a[0], a[1]];
        *((start + SPORT) as *mut [u8; 2]) = port;
        NF_PROGS.tail_call(&ctx, 0);
    }
    xdp_action::XDP_ABORTED
}
