use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC, xdp_action},
    btf_maps::{Array, HashMap, LruHashMap, PerCpuArray},
    helpers::{bpf_ktime_get_ns, bpf_redirect},
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use lb_common::{
    Addr, Counters, DROP_REASONS, DropReason, FlowKey, FlowKey4, MAX_PERSIST, MAX_REALS,
    MAX_SERVICES, Meta, PASS_REASONS, PROTO_TCP, PROTO_UDP, PassReason, PersistKey, PersistValue,
    RealServer, SVC_F_ACTIVE, SVC_F_HASH_PORT, SchedAlgo, ServiceInfo, ServiceKey, TABLE_CAPACITY,
    flow_hash, v4_mapped,
};

use crate::conns::{self, Flow};

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const TCP_MIN_HLEN: usize = 20;
const UDP_HLEN: usize = 8;
const NS_PER_SEC: u64 = 1_000_000_000;

// The maps. Field names reach `bpftool map dump` through BTF; the userspace controller
// pins each one under its pin directory by name and adopts them on restart.
// Services change whole (no-prealloc hash: a reader never sees a half-written value).
#[btf_map(name = "xlb_services")]
static SERVICES: HashMap<
    ServiceKey,
    ServiceInfo,
    { MAX_SERVICES as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();

// Mmap-able: the controller reads all real-server slots and writes whole scheduling
// tables as memory (`lb-userspace/src/mmap.rs`).
#[btf_map(name = "xlb_reals")]
static REALS: Array<RealServer, { MAX_REALS as usize }, { BPF_F_MMAPABLE as usize }> = Array::new();

#[btf_map(name = "xlb_table")]
static TABLE: Array<u32, { TABLE_CAPACITY as usize }, { BPF_F_MMAPABLE as usize }> = Array::new();

#[btf_map(name = "xlb_persist")]
static PERSIST: LruHashMap<PersistKey, PersistValue, { MAX_PERSIST as usize }> = LruHashMap::new();

#[btf_map(name = "xlb_cursors")]
static CURSORS: PerCpuArray<u32, { MAX_SERVICES as usize }> = PerCpuArray::new();

/// `SVC_F_ACTIVE` per service id, for the established path (see `forward`).
#[btf_map(name = "xlb_svc_state")]
static SVC_STATE: Array<u32, { MAX_SERVICES as usize }> = Array::new();

#[btf_map(name = "xlb_svc_stats")]
static SERVICE_STATS: PerCpuArray<Counters, { MAX_SERVICES as usize }> = PerCpuArray::new();

#[btf_map(name = "xlb_real_stats")]
static REAL_STATS: PerCpuArray<Counters, { MAX_REALS as usize }> = PerCpuArray::new();

#[btf_map(name = "xlb_drops")]
static DROPS: PerCpuArray<u64, { DROP_REASONS as usize }> = PerCpuArray::new();

#[btf_map(name = "xlb_passes")]
static PASSES: PerCpuArray<u64, { PASS_REASONS as usize }> = PerCpuArray::new();

/// Written by userspace only: the layout version, and the connection tables' hash seed
/// (which the program gets as a load-time constant, `conns::seed`).
#[btf_map(name = "xlb_meta")]
static META: Array<Meta, 1> = Array::new();

#[xdp]
pub fn xlb_xdp(ctx: XdpContext) -> u32 {
    match forward(&ctx) {
        Ok(action) => action,
        Err(Verdict::Pass(reason)) => {
            bump(&PASSES, reason as u32);
            xdp_action::XDP_PASS
        }
        Err(Verdict::Drop(reason)) => {
            bump(&DROPS, reason as u32);
            xdp_action::XDP_DROP
        }
    }
}

enum Verdict {
    Pass(PassReason),
    Drop(DropReason),
}

/// What the parser extracts: the flow, and the TCP flags that move its state.
struct Packet {
    flow: Flow,
    /// 0 for UDP.
    tcp_flags: u8,
}

/// A new flow's addresses in their 16-byte forms, and its ports: what the service lookup
/// and the schedulers take. Aligned, so that LLVM moves the addresses in words, not bytes.
#[repr(C, align(8))]
struct Endpoints {
    client: Addr,
    vip: Addr,
    client_port: u16,
    port: u16,
}

/// The IPv4-mapped form (`::ffff:a.b.c.d`) of an address held in the low 32 bits of `a`
/// (network byte order in memory).
#[inline(always)]
fn mapped(a: u64) -> Addr {
    // SAFETY: [u64; 2] and [u8; 16] have the same size; any bytes are an address.
    unsafe { core::mem::transmute::<[u64; 2], Addr>([0, 0xffff_0000 | (a << 32)]) }
}

impl Packet {
    /// Only new flows need these: the established path never builds them.
    #[inline(always)]
    fn endpoints(&self) -> Endpoints {
        match &self.flow {
            Flow::V4(k) => {
                let [addrs, _] = k.words();
                Endpoints {
                    client: mapped(addrs & 0xffff_ffff),
                    vip: mapped(addrs >> 32),
                    client_port: k.sport,
                    port: k.dport,
                }
            }
            Flow::V6(k) => Endpoints {
                client: k.saddr,
                vip: k.daddr,
                client_port: k.sport,
                port: k.dport,
            },
        }
    }
}

#[inline(always)]
fn bump<const N: usize>(map: &PerCpuArray<u64, N>, index: u32) {
    if let Some(counter) = map.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
        unsafe { *counter += 1 };
    }
}

#[inline(always)]
fn count<const N: usize>(map: &PerCpuArray<Counters, N>, index: u32, bytes: u64, new_flow: bool) {
    if let Some(c) = map.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
            if new_flow {
                (*c).new_flows += 1;
            }
        }
    }
}

/// The one bounds-checked way to read packet memory.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*mut T, Verdict> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return Err(Verdict::Pass(PassReason::Truncated));
    }
    Ok((start + offset) as *mut T)
}

/// A word of a header already bounds-checked as a whole, read with one load. Packet data
/// is only 2-byte aligned (the IP header follows 14 bytes of Ethernet), and the verifier
/// allows unaligned packet loads where the CPU does them cheaply (x86-64, arm64); a
/// `read_unaligned` would cost eight byte loads and shifts instead.
#[inline(always)]
fn load<T: Copy>(header: *const u8, offset: usize) -> T {
    // SAFETY: the caller bounds-checked `header` past `offset + size_of::<T>()`.
    unsafe { *(header.add(offset) as *const T) }
}

#[inline(always)]
fn read_be16(ctx: &XdpContext, offset: usize) -> Result<u16, Verdict> {
    let p: *const [u8; 2] = ptr_at(ctx, offset)?;
    // SAFETY: bounds checked by ptr_at.
    Ok(u16::from_be_bytes(unsafe { *p }))
}

/// IPv4 goes straight into its 16-byte flow key, IPv6 into its 40-byte one: the
/// established path hashes the key as parsed.
#[inline(always)]
fn parse(ctx: &XdpContext) -> Result<Packet, Verdict> {
    let mut l3 = ETH_HLEN;
    let mut ethertype = read_be16(ctx, 12)?;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        ethertype = read_be16(ctx, ETH_HLEN + 2)?;
        l3 += VLAN_HLEN;
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            return Err(Verdict::Pass(PassReason::StackedVlan));
        }
    }
    let (mut flow, l4, proto) = match ethertype {
        ETH_P_IP => {
            let hdr: *const [u8; IPV4_HLEN] = ptr_at(ctx, l3)?;
            // SAFETY: bounds checked by ptr_at.
            let hdr = unsafe { &*hdr };
            if hdr[0] >> 4 != 4 {
                return Err(Verdict::Pass(PassReason::NotIp));
            }
            if hdr[0] & 0x0f != 5 {
                return Err(Verdict::Pass(PassReason::IpOptions));
            }
            // More-fragments flag or a fragment offset: only the first fragment has ports.
            if u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3fff != 0 {
                return Err(Verdict::Pass(PassReason::Fragment));
            }
            // Source and destination address: one word, as the key holds them.
            let addrs = load::<u64>(hdr.as_ptr(), 12);
            let key = FlowKey4::from_words([addrs, (hdr[9] as u64) << 32]);
            (Flow::V4(key), l3 + IPV4_HLEN, hdr[9])
        }
        ETH_P_IPV6 => {
            let hdr: *const [u8; IPV6_HLEN] = ptr_at(ctx, l3)?;
            // SAFETY: bounds checked by ptr_at.
            let hdr = unsafe { &*hdr };
            if hdr[0] >> 4 != 6 {
                return Err(Verdict::Pass(PassReason::NotIp));
            }
            let a = |i: usize| load::<u64>(hdr.as_ptr(), 8 + 8 * i);
            let key = FlowKey::from_words([a(0), a(1), a(2), a(3), (hdr[6] as u64) << 32]);
            // Extension headers (fragments among them) go to the host stack.
            (Flow::V6(key), l3 + IPV6_HLEN, hdr[6])
        }
        _ => return Err(Verdict::Pass(PassReason::NotIp)),
    };
    let min_l4 = match proto {
        PROTO_TCP => TCP_MIN_HLEN,
        PROTO_UDP => UDP_HLEN,
        _ => return Err(Verdict::Pass(PassReason::NotTcpUdp)),
    };
    // The whole minimal L4 header must be there, not only the ports.
    if ctx.data() + l4 + min_l4 > ctx.data_end() {
        return Err(Verdict::Pass(PassReason::Truncated));
    }
    let ports: *const u32 = ptr_at(ctx, l4)?;
    // SAFETY: bounds checked by ptr_at; a word load, as `load` explains.
    let ports = unsafe { *ports };
    let sport = u16::from_be(ports as u16);
    let dport = u16::from_be((ports >> 16) as u16);
    match &mut flow {
        Flow::V4(k) => (k.sport, k.dport) = (sport, dport),
        Flow::V6(k) => (k.sport, k.dport) = (sport, dport),
    }
    let tcp_flags = if proto == PROTO_TCP {
        let flags: *const u8 = ptr_at(ctx, l4 + 13)?;
        // SAFETY: bounds checked by ptr_at.
        unsafe { *flags }
    } else {
        0
    };
    Ok(Packet { flow, tcp_flags })
}

#[inline(always)]
fn find_service(e: &Endpoints, proto: u8) -> Option<ServiceInfo> {
    let mut key = ServiceKey {
        vip: e.vip,
        port: e.port,
        proto,
        _pad: 0,
    };
    // SAFETY: no-prealloc hash map: the value is not reused while we hold it (RCU).
    if let Some(svc) = unsafe { SERVICES.get(&key) } {
        return Some(*svc);
    }
    key.port = 0;
    unsafe { SERVICES.get(&key) }.copied()
}

#[inline(always)]
fn real_for(index: u32, service_id: u32) -> Option<RealServer> {
    let real = REALS.get(index)?;
    if real.serves(service_id) {
        Some(*real)
    } else {
        None
    }
}

/// Picks a real server for a new flow of `client`:`client_port` from the service's table.
#[inline(always)]
fn schedule(svc: &ServiceInfo, client: &Addr, client_port: u16) -> Result<u32, Verdict> {
    let len = svc.table_len;
    if len == 0 {
        return Err(Verdict::Drop(DropReason::NoRealServer));
    }
    let slot = match SchedAlgo::from_u32(svc.algo) {
        Some(SchedAlgo::Sh) | Some(SchedAlgo::Mh) => {
            let port = if svc.flags & SVC_F_HASH_PORT != 0 {
                client_port
            } else {
                0
            };
            flow_hash(client, port) % len
        }
        // rr, wrr (and anything unknown): the per-CPU cursor walks the table.
        _ => match CURSORS.get_ptr_mut(svc.id) {
            Some(cursor) => {
                // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
                unsafe {
                    let c = *cursor % len;
                    *cursor = c + 1;
                    c
                }
            }
            None => 0,
        },
    };
    match TABLE.get(svc.table_offset.wrapping_add(slot)) {
        Some(real) => Ok(*real),
        None => Err(Verdict::Drop(DropReason::RealServerUnusable)),
    }
}

/// Client affinity (`persistence_timeout`): the real server this client used last, if it
/// was within the timeout and the server still serves; refreshes the entry's clock.
#[inline(always)]
fn persistent_real(svc: &ServiceInfo, key: &PersistKey, now: u64) -> Option<u32> {
    let entry = PERSIST.get_ptr_mut(key)?;
    // SAFETY: LRU entries can be recycled under us; a stale read here only costs a
    // re-schedule, and `real_for` re-validates the index.
    let (real, last_seen) = unsafe { ((*entry).real, (*entry).last_seen_ns) };
    if now.saturating_sub(last_seen) > svc.persistence_timeout as u64 * NS_PER_SEC {
        return None;
    }
    real_for(real, svc.id)?;
    // Refresh at most once a second: a write per packet would bounce the cache line.
    if now.saturating_sub(last_seen) > NS_PER_SEC {
        unsafe { (*entry).last_seen_ns = now };
    }
    Some(real)
}

/// Established flows first: one bucket of the connection table, then two array reads (the
/// service's active flag, the real server). Only a miss, or a flow whose service or real
/// server changed, takes the full path through the service hash and the scheduler.
#[inline(always)]
fn forward(ctx: &XdpContext) -> Result<u32, Verdict> {
    let pkt = parse(ctx)?;
    let hash = pkt.flow.hash(conns::seed());
    let now = conns::now();
    if let Some(slot) = pkt.flow.find(hash, now) {
        // SAFETY: a map value (see conns.rs for why a racy copy is fine).
        let v = unsafe { *slot };
        let service_id = v.service_id as u32;
        let active = SVC_STATE
            .get(service_id)
            .is_some_and(|f| f & SVC_F_ACTIVE != 0);
        if active && !conns::reopens(&v, pkt.tcp_flags) {
            if let Some(real) = real_for(v.real, service_id) {
                conns::refresh(slot, &v, now, pkt.tcp_flags);
                return transmit(ctx, service_id, v.real, &real, false);
            }
        }
    }
    new_flow(ctx, &pkt, hash, now)
}

/// The full path: find the service, schedule (or follow persistence), record the flow.
/// Inlined: as a BPF-to-BPF call it cost every packet, established ones too, 11 ns in
/// `BPF_PROG_TEST_RUN` (27 -> 16 ns over the empty program; new flow 130 -> 111).
#[inline(always)]
fn new_flow(ctx: &XdpContext, pkt: &Packet, hash: u32, now: u32) -> Result<u32, Verdict> {
    let e = pkt.endpoints();
    let svc =
        find_service(&e, pkt.flow.proto()).ok_or(Verdict::Pass(PassReason::NotVirtualService))?;
    if svc.flags & SVC_F_ACTIVE == 0 {
        return Err(Verdict::Pass(PassReason::Inactive));
    }
    let index = if svc.persistence_timeout != 0 {
        let now_ns = unsafe { bpf_ktime_get_ns() };
        let key = PersistKey {
            client: e.client,
            service_id: svc.id,
        };
        match persistent_real(&svc, &key, now_ns) {
            Some(index) => index,
            None => {
                let index = schedule(&svc, &e.client, e.client_port)?;
                let value = PersistValue {
                    real: index,
                    _pad: 0,
                    last_seen_ns: now_ns,
                };
                let _ = PERSIST.insert(&key, &value, 0);
                index
            }
        }
    } else {
        schedule(&svc, &e.client, e.client_port)?
    };
    let real = real_for(index, svc.id).ok_or(Verdict::Drop(DropReason::RealServerUnusable))?;
    pkt.flow.record(hash, now, index, svc.id);
    transmit(ctx, svc.id, index, &real, true)
}

/// Rewrites the MACs, counts, and sends the frame to the real server.
#[inline(always)]
fn transmit(
    ctx: &XdpContext,
    service_id: u32,
    index: u32,
    real: &RealServer,
    new_flow: bool,
) -> Result<u32, Verdict> {
    let macs = real.mac_words();
    // The source MAC is bytes 6..12: unknown (all zero) means no egress interface.
    if macs[1] >> 16 == 0 && macs[2] == 0 {
        return Err(Verdict::Drop(DropReason::NoEgressIface));
    }
    // Destination and source MAC in three word stores, as `load` explains for loads.
    let header: *mut [u32; 3] = ptr_at(ctx, 0)?;
    // SAFETY: bounds checked by ptr_at.
    unsafe { *header = macs };
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    count(&SERVICE_STATS, service_id, bytes, new_flow);
    count(&REAL_STATS, index, bytes, new_flow);

    if real.ifindex as usize == ctx.ingress_ifindex() {
        return Ok(xdp_action::XDP_TX);
    }
    // SAFETY: plain helper call.
    let action = unsafe { bpf_redirect(real.ifindex, 0) } as u32;
    if action != xdp_action::XDP_REDIRECT {
        return Err(Verdict::Drop(DropReason::RedirectFailed));
    }
    Ok(action)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// Passes every frame. Test and demo labs attach it to the veth peers that receive the
/// director's `XDP_TX` frames: a veth delivers those only when its peer runs XDP.
#[xdp]
pub fn xlb_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}
