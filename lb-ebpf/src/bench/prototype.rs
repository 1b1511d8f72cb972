//! A prototype of a cheaper established path, to measure a suggestion. Not used by xlb.
//!
//! The flow is looked up first, in an IPv4-only connection table with a 16-byte key; the
//! service's state comes from an array indexed by the service id the flow entry holds, and
//! the director's source MAC from the real server's entry: one hash lookup per packet
//! instead of three (xlb_services, xlb_conns, xlb_ifaces). xlb's program took this shape in
//! 18c2dc8 with its 40-byte key of both families; the prototype now measures what an
//! IPv4-only 16-byte key would add to that.

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, LruHashMap, PerCpuArray},
    helpers::bpf_redirect,
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use lb_common::{
    SVC_F_ACTIVE,
    bench::{PROTO_REAL_USABLE, ProtoFlow, ProtoReal},
};

/// Key: saddr, daddr (network order), sport, dport (host order), proto, 3 bytes of pad.
#[btf_map(name = "xlb_bench_map_p_conns")]
static P_CONNS: LruHashMap<[u8; 16], ProtoFlow, 1> = LruHashMap::new();

/// Per service id: flags (`SVC_F_ACTIVE`).
#[btf_map(name = "xlb_bench_map_p_svc")]
static P_SVC: Array<u32, 1> = Array::new();

/// Real servers by index.
#[btf_map(name = "xlb_bench_map_p_reals")]
static P_REALS: Array<ProtoReal, 1> = Array::new();

/// Counters: 0 the service's, 1 the real server's.
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
    let ProtoFlow {
        real: real_index,
        service_id,
    } = unsafe { *flow };
    match P_SVC.get(service_id) {
        Some(flags) if flags & SVC_F_ACTIVE != 0 => {}
        _ => return xdp_action::XDP_PASS,
    }
    let Some(real) = P_REALS.get(real_index) else {
        return xdp_action::XDP_DROP;
    };
    if real.flags & PROTO_REAL_USABLE != PROTO_REAL_USABLE || real.service_id != service_id {
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
