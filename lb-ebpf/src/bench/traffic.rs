//! The forwarding benchmark's stand-ins around the director, run on veths of its lab:
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

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, PerCpuArray},
    helpers::{bpf_ktime_get_ns, bpf_redirect},
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use lb_common::bench::{FwdCfg, GenCfg};

/// What the generator sends (`GenCfg`).
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

/// The redirect ceiling's MACs and interface (`FwdCfg`).
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
    #[expect(
        clippy::manual_swap,
        reason = "the ceiling as measured so far; `ptr::swap` compiles to other code"
    )]
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
