//! What happens to a parsed packet of a virtual service: an established flow goes to its
//! real server after one connection-table bucket and two array reads; a new one takes the
//! service lookup, the scheduler (or client affinity), and is recorded. Either way the MACs
//! are rewritten and the frame leaves by `XDP_TX` or `bpf_redirect`. IP header, ports and
//! TTL are never touched: that is DR. A real server of a NAT service (`REAL_F_NAT`) gets
//! its destination address and port rewritten first (`nat`).

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::PerCpuArray,
    helpers::{bpf_ktime_get_ns, bpf_redirect},
    programs::XdpContext,
};
use lb_common::{
    Addr, Counters, DropReason, PassReason, PersistKey, PersistValue, REAL_F_NAT, RealServer,
    SVC_F_ACTIVE, SVC_F_COUNT_CONNS, SVC_F_HASH_PORT, SchedAlgo, ServiceInfo, ServiceKey,
    flow_hash,
};

use crate::{
    conns::{self, Flow},
    maps::{CURSORS, PERSIST, REAL_STATS, REALS, SERVICE_STATS, SERVICES, SVC_STATE, TABLE},
    nat,
    parse::{Packet, parse, ptr_at},
    sched,
    verdict::Verdict,
};

const NS_PER_SEC: u64 = 1_000_000_000;

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

impl Endpoints {
    /// Only new flows need these: the established path never builds them.
    #[inline(always)]
    fn of(flow: &Flow) -> Self {
        match flow {
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

/// Adds a forwarded packet to a service's or a real server's counters.
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

/// The service at the VIP and port, else the VIP's every-port service.
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "a key passed by value costs xlb_xdp 12 more instructions"
)]
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
    // SAFETY: as above.
    unsafe { SERVICES.get(&key) }.copied()
}

/// Real server `index`, if it is usable for a flow of `service_id`.
#[inline(always)]
pub fn real_for(index: u32, service_id: u32) -> Option<RealServer> {
    let real = REALS.get(index)?;
    if real.serves(service_id) {
        Some(*real)
    } else {
        None
    }
}

/// Picks a real server for a new flow of `client`:`client_port` to `vip` from the
/// service's table: one entry (a cursor or a hash), or a walk over it for the schedulers
/// that count connections (`sched`).
#[inline(always)]
fn schedule(svc: &ServiceInfo, e: &Endpoints) -> Result<u32, Verdict> {
    let len = svc.table_len;
    if len == 0 {
        return Err(Verdict::Drop(DropReason::NoRealServer));
    }
    let algo = SchedAlgo::from_u32(svc.algo);
    let slot = match algo {
        Some(SchedAlgo::Sh) | Some(SchedAlgo::Mh) => {
            let port = if svc.flags & SVC_F_HASH_PORT != 0 {
                e.client_port
            } else {
                0
            };
            flow_hash(&e.client, port) % len
        }
        Some(SchedAlgo::Dh) => flow_hash(&e.vip, 0) % len,
        Some(a) if a.counts_conns() => {
            return sched::pick(svc, a).ok_or(Verdict::Drop(DropReason::NoRealServer));
        }
        // rr, wrr, fo (a table of one) and anything unknown: the per-CPU cursor walks
        // the table.
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
        // SAFETY: a map value; a single aligned store (a racing writer stores a clock too).
        unsafe { (*entry).last_seen_ns = now };
    }
    Some(real)
}

/// Established flows first: one bucket of the connection table, then two array reads (the
/// service's active flag, the real server). Only a miss, or a flow whose service or real
/// server changed, takes the full path through the service hash and the scheduler.
#[inline(always)]
pub fn forward(ctx: &XdpContext) -> Result<u32, Verdict> {
    let pkt = parse(ctx)?;
    let hash = pkt.flow.hash(conns::seed());
    let now = conns::now();
    if let Some(slot) = pkt.flow.find(hash, now) {
        // SAFETY: a map value (`lb_common::conn` says why a racy copy is fine).
        let v = unsafe { *slot };
        let service_id = v.service_id as u32;
        let flags = SVC_STATE.get(service_id).copied().unwrap_or(0);
        if flags & SVC_F_ACTIVE != 0 && !conns::reopens(&v, pkt.tcp_flags) {
            if let Some(real) = real_for(v.real, service_id) {
                let counted = flags & SVC_F_COUNT_CONNS != 0;
                conns::refresh(slot, &v, now, pkt.tcp_flags, counted);
                if real.flags & REAL_F_NAT != 0 {
                    nat::to_real(ctx, pkt.flow.proto(), &real)?;
                }
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
    let e = Endpoints::of(&pkt.flow);
    let svc =
        find_service(&e, pkt.flow.proto()).ok_or(Verdict::Pass(PassReason::NotVirtualService))?;
    if svc.flags & SVC_F_ACTIVE == 0 {
        return Err(Verdict::Pass(PassReason::Inactive));
    }
    let index = if svc.persistence_timeout != 0 {
        // SAFETY: plain helper call.
        let now_ns = unsafe { bpf_ktime_get_ns() };
        let key = PersistKey {
            client: e.client,
            service_id: svc.id,
        };
        match persistent_real(&svc, &key, now_ns) {
            Some(index) => index,
            None => {
                let index = schedule(&svc, &e)?;
                let value = PersistValue {
                    real: index,
                    _pad: 0,
                    last_seen_ns: now_ns,
                };
                #[expect(
                    clippy::needless_borrows_for_generic_args,
                    reason = "by value costs xlb_xdp 12 more instructions"
                )]
                let _ = PERSIST.insert(&key, &value, 0);
                index
            }
        }
    } else {
        schedule(&svc, &e)?
    };
    let real = real_for(index, svc.id).ok_or(Verdict::Drop(DropReason::RealServerUnusable))?;
    let counted = svc.flags & SVC_F_COUNT_CONNS != 0;
    pkt.flow
        .record(hash, now, index, svc.id, pkt.tcp_flags, counted);
    if real.flags & REAL_F_NAT != 0 {
        let proto = pkt.flow.proto();
        nat::remember(
            &e.client,
            &e.vip,
            (e.client_port, e.port),
            proto,
            &real,
            index,
        );
        nat::to_real(ctx, proto, &real)?;
    }
    transmit(ctx, svc.id, index, &real, true)
}

/// Rewrites the MACs, counts, and sends the frame to the real server.
#[inline(always)]
pub fn transmit(
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
