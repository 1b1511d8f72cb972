//! NAT (`lb_kind = "NAT"`, IPVS's masquerading), both directions.
//!
//! - Client -> VIP:vport, once `forward` has chosen a real server flagged `REAL_F_NAT`:
//!   [`to_real`] rewrites the destination address to the real server's and the port to
//!   its port (port 0: kept), and fixes the IPv4 header checksum and the TCP / UDP
//!   checksum incrementally (RFC 1624; an IPv4 UDP checksum of 0 stays 0). `forward`
//!   then rewrites the MACs and transmits, as for DR. A new flow also gets an entry in
//!   `xlb_nat_rev` under its reply tuple ([`remember`]).
//! - Real server:port -> client:cport (the real server's default gateway is this
//!   director): [`reply`] finds the reply tuple in `xlb_nat_rev`, and accepts it only if
//!   the flow's connection-table slot is live and still on that real server, and this
//!   director forwards the service (else `inactive`, untouched). The
//!   server's FIN / RST move the flow's state (IPVS's output direction), its packets keep
//!   the slot alive. The source goes back to VIP:vport, checksums are fixed, the
//!   TTL / hop limit decremented (a packet with 1 left goes to the stack, which answers
//!   "time exceeded"), and `bpf_fib_lookup` gives the next hop towards the client: the
//!   frame leaves by `XDP_TX` / `bpf_redirect`. Without a neighbour entry for that next
//!   hop yet, the translated packet goes to the host stack, which resolves it and
//!   forwards the packet (that needs forwarding enabled, and for IPv4 `accept_local` on
//!   the interface: the source is the VIP, a local address); a FIB refusal (no route,
//!   forwarding disabled, too big for the egress MTU) drops it (`nat_no_route`).
//! - A packet with no `xlb_nat_rev` entry is no NAT reply: it keeps the verdict
//!   `forward` gave it (`not_virtual_service`), untouched, unless it comes from a NAT
//!   real server's address and port (`xlb_nat_reals`): then, as one whose flow is gone,
//!   it passes untouched counted as `nat_no_flow`.
//!
//! Only reached from the entry point for packets `forward` passed as for no virtual
//! service, and from `forward` for flows on NAT real servers: DR traffic is unchanged.

use aya_ebpf::{
    bindings::{bpf_fib_lookup as FibParams, xdp_action},
    btf_maps::PerCpuArray,
    helpers::{bpf_fib_lookup, bpf_redirect},
    macros::btf_map,
    programs::XdpContext,
};
use lb_common::{
    Addr, CONN_FIN, CONN_RST, ConnValue, DropReason, FlowKey, FlowKey4, NatEvent, NatReply,
    PROTO_UDP, PassReason, RealServer, SVC_F_ACTIVE, SVC_F_COUNT_CONNS, ServiceKey, TCP_FIN,
    TCP_RST, v4_mapped,
};

use crate::{
    conns::{self, Flow},
    maps::{NAT_REALS, NAT_REPLIES, NAT_STATS, SVC_STATE},
    parse::{ETH_P_IP, IPV4_HLEN, IPV6_HLEN, l2, parse, ptr_at},
    verdict::Verdict,
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const FIB_SUCCESS: i64 = 0;
const FIB_NO_NEIGH: i64 = 7;

/// `struct bpf_fib_lookup` (64 bytes) without its unions, as this program fills it.
#[repr(C)]
struct Fib {
    family: u8,
    l4_protocol: u8,
    /// Network byte order, as the ports.
    sport: u16,
    dport: u16,
    /// Host byte order: the whole IP packet (the FIB compares it with the egress MTU).
    tot_len: u16,
    /// In: the ingress interface. Out: the egress one.
    ifindex: u32,
    tos_or_flowinfo: u32,
    src: [u32; 4],
    dst: [u32; 4],
    vlan: u32,
    smac: [u8; 6],
    dmac: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<Fib>() == core::mem::size_of::<FibParams>());

/// What the NAT paths build that is too big for the stack: the entry point's frame and
/// [`reply`]'s together must stay within the verifier's 512 bytes.
#[repr(C)]
struct Scratch {
    key: FlowKey,
    /// A real server's endpoint, as `xlb_nat_reals` keys it.
    real: ServiceKey,
    value: NatReply,
    fib: Fib,
}

/// One [`Scratch`] per CPU (the program never runs twice at once on one CPU). Not pinned:
/// nothing in it outlives a packet.
#[btf_map(name = "xlb_nat_scratch")]
static SCRATCH: PerCpuArray<Scratch, 1> = PerCpuArray::new();

#[inline(always)]
fn scratch() -> Result<*mut Scratch, Verdict> {
    SCRATCH
        .get_ptr_mut(0)
        .ok_or(Verdict::Pass(PassReason::NotVirtualService))
}

/// Folds a ones' complement sum to 16 bits.
#[inline(always)]
fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Writes `new` over the `N` 16-bit words at `offset`, and returns what the checksums
/// covering them must take in: the sum of `~old + new` per word (RFC 1624, eq. 3).
/// Words are read and written in memory order: ones' complement sums do not depend on
/// the byte order, as long as it is the same throughout.
#[inline(always)]
fn rewrite<const N: usize>(
    ctx: &XdpContext,
    offset: usize,
    new: &[u16; N],
) -> Result<u32, Verdict> {
    let p: *mut [u16; N] = ptr_at(ctx, offset)?;
    let mut diff = 0u32;
    let mut i = 0;
    while i < N {
        // SAFETY: bounds checked by ptr_at (N words).
        unsafe {
            let w = (p as *mut u16).add(i);
            diff += (!*w) as u32 + new[i] as u32;
            *w = new[i];
        }
        i += 1;
    }
    Ok(diff)
}

/// Applies `diff` (from [`rewrite`]) to the checksum at `offset`. `udp`: a result of 0 is
/// sent as 0xffff (0 means "no checksum" in UDP).
#[inline(always)]
fn fix_checksum(ctx: &XdpContext, offset: usize, diff: u32, udp: bool) -> Result<(), Verdict> {
    let p: *mut u16 = ptr_at(ctx, offset)?;
    // SAFETY: bounds checked by ptr_at.
    unsafe {
        let sum = (!*p) as u32 + fold(diff) as u32;
        let mut c = !fold(sum);
        if udp && c == 0 {
            c = 0xffff;
        }
        *p = c;
    }
    Ok(())
}

/// The 16-bit words of an address, in memory order: the last two of an IPv4-mapped one,
/// all eight of an IPv6 one.
#[inline(always)]
fn words4(a: &Addr) -> [u16; 2] {
    [
        u16::from_ne_bytes([a[12], a[13]]),
        u16::from_ne_bytes([a[14], a[15]]),
    ]
}

#[inline(always)]
fn words6(a: &Addr) -> [u16; 8] {
    let mut w = [0u16; 8];
    let mut i = 0;
    while i < 8 {
        w[i] = u16::from_ne_bytes([a[2 * i], a[2 * i + 1]]);
        i += 1;
    }
    w
}

/// Where a rewrite goes: the destination (towards the real server) or the source (a
/// reply, back to the VIP).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Destination,
    Source,
}

/// Rewrites one side's address and port, and fixes the IPv4 header checksum and the
/// TCP / UDP checksum. Returns where the IP header starts and whether it is IPv4.
#[inline(always)]
fn translate(
    ctx: &XdpContext,
    side: Side,
    proto: u8,
    addr: &Addr,
    port: u16,
) -> Result<(usize, bool), Verdict> {
    let (ethertype, l3) = l2(ctx)?;
    let v4 = ethertype == ETH_P_IP;
    let dst = side == Side::Destination;
    let (l4, mut diff) = if v4 {
        let at = l3 + if dst { 16 } else { 12 };
        let d = rewrite(ctx, at, &words4(addr))?;
        fix_checksum(ctx, l3 + 10, d, false)?;
        (l3 + IPV4_HLEN, d)
    } else {
        let at = l3 + if dst { 24 } else { 8 };
        (l3 + IPV6_HLEN, rewrite(ctx, at, &words6(addr))?)
    };
    if port != 0 {
        let at = l4 + if dst { 2 } else { 0 };
        diff += rewrite(ctx, at, &[port.to_be()])?;
    }
    let udp = proto == PROTO_UDP;
    let csum_at = l4 + if udp { 6 } else { 16 };
    if v4 && udp {
        let c: *const u16 = ptr_at(ctx, csum_at)?;
        // SAFETY: bounds checked by ptr_at.
        if unsafe { *c } == 0 {
            // An IPv4 UDP datagram without a checksum keeps none.
            return Ok((l3, v4));
        }
    }
    fix_checksum(ctx, csum_at, diff, udp)?;
    Ok((l3, v4))
}

/// Client -> VIP: the destination becomes the NAT real server `real` (its port, unless
/// that is 0). `proto` is the flow's.
#[inline(always)]
pub fn to_real(ctx: &XdpContext, proto: u8, real: &RealServer) -> Result<(), Verdict> {
    match to_real_call(ctx, proto, real) {
        0 => Ok(()),
        // The only error of `translate` on a packet `parse` took: out of its bounds.
        _ => Err(Verdict::Pass(PassReason::Truncated)),
    }
}

/// [`to_real`] as a BPF call: inlined into the established path, the rewrite's registers
/// and stack cost every DR packet too (established 35 -> 46 ns over the empty program in
/// `BPF_PROG_TEST_RUN`). Returns 0, or 1 when the packet is shorter than its headers.
#[inline(never)]
fn to_real_call(ctx: &XdpContext, proto: u8, real: &RealServer) -> u32 {
    match translate(ctx, Side::Destination, proto, &real.addr, real.port) {
        Ok(_) => 0,
        Err(_) => 1,
    }
}

/// Records where the replies of a new NAT flow from `client`:`ports.0` to
/// `vip`:`ports.1` on real server `index` go back to.
#[inline(always)]
pub fn remember(
    client: &Addr,
    vip: &Addr,
    ports: (u16, u16),
    proto: u8,
    real: &RealServer,
    index: u32,
) {
    let Ok(s) = scratch() else {
        return;
    };
    // SAFETY: this CPU's scratch value; nothing else uses it while we run.
    let s = unsafe { &mut *s };
    s.key = FlowKey {
        saddr: real.addr,
        daddr: *client,
        sport: if real.port != 0 { real.port } else { ports.1 },
        dport: ports.0,
        proto,
        _pad: [0; 3],
    };
    s.value = NatReply {
        vip: *vip,
        vport: ports.1,
        _pad: 0,
        real: index,
    };
    // A full map evicts its least recently used entry; an error leaves the flow without
    // replies, as a full connection-table bucket does.
    #[expect(
        clippy::needless_borrows_for_generic_args,
        reason = "by value, the key and value would be copied onto the stack"
    )]
    let _ = NAT_REPLIES.insert(&s.key, &s.value, 0);
}

/// The server's FIN / RST close the flow, as the client's do; its packets keep it alive.
#[inline(always)]
fn server_state(slot: *mut ConnValue, v: &ConnValue, now: u32, tcp_flags: u8, counted: bool) {
    let state = if tcp_flags & TCP_RST != 0 {
        CONN_RST
    } else if tcp_flags & TCP_FIN != 0 && v.state != CONN_RST {
        CONN_FIN
    } else {
        v.state
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
    // A counting service's server closing its side moves the flow between ActiveConn
    // and InActConn, as the client's FIN does in `conns::refresh`.
    if counted && state != v.state {
        crate::sched::moved(v.real, v.proto, v.state, state);
    }
}

#[inline(always)]
fn bump(event: NatEvent) {
    if let Some(c) = NAT_STATS.get_ptr_mut(event as u32) {
        // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
        unsafe { *c += 1 };
    }
}

/// Why a packet with no `xlb_nat_rev` entry passes: `nat_no_flow` if it comes from a NAT
/// real server's address and port, `not_virtual_service` otherwise.
#[inline(always)]
fn from_nat_real(s: &mut Scratch) -> Verdict {
    s.real = ServiceKey {
        vip: s.key.saddr,
        port: s.key.sport,
        proto: s.key.proto,
        _pad: 0,
    };
    #[expect(
        clippy::needless_borrows_for_generic_args,
        reason = "by value, the key would be copied onto the stack"
    )]
    // SAFETY: only the presence is read. Two early returns, not `a || b`: LLVM would
    // OR the two pointers, which the verifier refuses.
    let exact = unsafe { NAT_REALS.get(&s.real) };
    if exact.is_some() {
        return Verdict::Pass(PassReason::NatNoFlow);
    }
    s.real.port = 0;
    #[expect(
        clippy::needless_borrows_for_generic_args,
        reason = "by value, the key would be copied onto the stack"
    )]
    // SAFETY: as above.
    let any_port = unsafe { NAT_REALS.get(&s.real) };
    if any_port.is_some() {
        return Verdict::Pass(PassReason::NatNoFlow);
    }
    Verdict::Pass(PassReason::NotVirtualService)
}

/// A packet for no virtual service: if it is the reply of a NAT flow, translated back to
/// the VIP and sent towards the client; else `NotVirtualService`, untouched.
#[inline(always)]
pub fn reply(ctx: &XdpContext) -> Result<u32, Verdict> {
    let pkt = parse(ctx)?;
    // SAFETY: this CPU's scratch value; nothing else uses it while we run.
    let s = unsafe { &mut *scratch()? };
    let proto = match &pkt.flow {
        Flow::V4(k) => {
            s.key = FlowKey {
                saddr: v4_mapped(k.saddr),
                daddr: v4_mapped(k.daddr),
                sport: k.sport,
                dport: k.dport,
                proto: k.proto,
                _pad: [0; 3],
            };
            k.proto
        }
        Flow::V6(k) => {
            s.key = *k;
            k.proto
        }
    };
    // SAFETY: an LRU hash value: copied at once (a recycled entry is re-validated below).
    #[expect(
        clippy::needless_borrows_for_generic_args,
        reason = "by value, the key would be copied onto the stack"
    )]
    let r = match unsafe { NAT_REPLIES.get(&s.key) } {
        Some(r) => *r,
        None => return Err(from_nat_real(s)),
    };
    // The flow as the client sent it.
    let flow = match &pkt.flow {
        Flow::V4(k) => Flow::V4(FlowKey4 {
            saddr: k.daddr,
            daddr: [r.vip[12], r.vip[13], r.vip[14], r.vip[15]],
            sport: k.dport,
            dport: r.vport,
            proto,
            _pad: [0; 3],
        }),
        Flow::V6(k) => Flow::V6(FlowKey {
            saddr: k.daddr,
            daddr: r.vip,
            sport: k.dport,
            dport: r.vport,
            proto,
            _pad: [0; 3],
        }),
    };
    let now = conns::now();
    let slot = flow
        .find(flow.hash(conns::seed()), now)
        .ok_or(Verdict::Pass(PassReason::NatNoFlow))?;
    // SAFETY: a map value (`lb_common::conn` says why a racy copy is fine).
    let v = unsafe { *slot };
    if v.real != r.real {
        return Err(Verdict::Pass(PassReason::NatNoFlow));
    }
    // A director that does not forward the service (BACKUP) does not translate for it.
    let flags = SVC_STATE.get(v.service_id as u32).copied().unwrap_or(0);
    if flags & SVC_F_ACTIVE == 0 {
        return Err(Verdict::Pass(PassReason::Inactive));
    }

    // TTL (IPv4, byte 8) / hop limit (IPv6, byte 7), before anything is rewritten.
    let (ethertype, l3) = l2(ctx)?;
    let ttl_at = l3 + if ethertype == ETH_P_IP { 8 } else { 7 };
    let ttl: *mut u8 = ptr_at(ctx, ttl_at)?;
    // SAFETY: bounds checked by ptr_at.
    if unsafe { *ttl } <= 1 {
        return Err(Verdict::Pass(PassReason::NatTtl));
    }
    server_state(slot, &v, now, pkt.tcp_flags, flags & SVC_F_COUNT_CONNS != 0);

    let (l3, v4) = translate(ctx, Side::Source, proto, &r.vip, r.vport)?;
    s.fib = Fib {
        family: if v4 { AF_INET } else { AF_INET6 },
        l4_protocol: proto,
        sport: r.vport.to_be(),
        dport: 0,
        tot_len: 0,
        ifindex: ctx.ingress_ifindex() as u32,
        tos_or_flowinfo: 0,
        src: [0; 4],
        dst: [0; 4],
        vlan: 0,
        smac: [0; 6],
        dmac: [0; 6],
    };
    let fib = &mut s.fib;
    if v4 {
        let hdr: *const [u8; IPV4_HLEN] = ptr_at(ctx, l3)?;
        // SAFETY: bounds checked by ptr_at.
        let h = unsafe { &*hdr };
        fib.tos_or_flowinfo = h[1] as u32;
        fib.tot_len = u16::from_be_bytes([h[2], h[3]]);
        fib.src[0] = u32::from_ne_bytes([h[12], h[13], h[14], h[15]]);
        fib.dst[0] = u32::from_ne_bytes([h[16], h[17], h[18], h[19]]);
    } else {
        let hdr: *const [u32; IPV6_HLEN / 4] = ptr_at(ctx, l3)?;
        // SAFETY: bounds checked by ptr_at.
        let h = unsafe { &*hdr };
        // Traffic class and flow label, as the kernel's own lookup takes them.
        fib.tos_or_flowinfo = h[0] & u32::to_be(0x0fff_ffff);
        let [p0, p1, _, _] = h[1].to_ne_bytes();
        fib.tot_len = u16::from_be_bytes([p0, p1]).wrapping_add(IPV6_HLEN as u16);
        fib.src = [h[2], h[3], h[4], h[5]];
        fib.dst = [h[6], h[7], h[8], h[9]];
    }
    fib.dport = match &pkt.flow {
        Flow::V4(k) => k.dport,
        Flow::V6(k) => k.dport,
    }
    .to_be();
    // SAFETY: a helper call with its 64-byte parameter block (this CPU's scratch value).
    let ret = unsafe {
        bpf_fib_lookup(
            ctx.ctx as *mut _,
            fib as *mut Fib as *mut FibParams,
            core::mem::size_of::<Fib>() as i32,
            0,
        )
    };
    match ret {
        FIB_SUCCESS => {}
        FIB_NO_NEIGH => {
            bump(NatEvent::ToStack);
            return Ok(xdp_action::XDP_PASS);
        }
        _ => return Err(Verdict::Drop(DropReason::NatNoRoute)),
    }

    if v4 {
        // TTL and protocol are one word of the header checksum.
        let w: *const u16 = ptr_at(ctx, l3 + 8)?;
        // SAFETY: bounds checked by ptr_at.
        let old = unsafe { *w };
        let mut b = old.to_ne_bytes();
        b[0] -= 1;
        let d = rewrite(ctx, l3 + 8, &[u16::from_ne_bytes(b)])?;
        fix_checksum(ctx, l3 + 10, d, false)?;
    } else {
        let hop: *mut u8 = ptr_at(ctx, l3 + 7)?;
        // SAFETY: bounds checked by ptr_at; > 1, checked above.
        unsafe { *hop -= 1 };
    }
    let dmac: *mut [u8; 6] = ptr_at(ctx, 0)?;
    let smac: *mut [u8; 6] = ptr_at(ctx, 6)?;
    // SAFETY: bounds checked by ptr_at.
    unsafe {
        *dmac = fib.dmac;
        *smac = fib.smac;
    }
    bump(NatEvent::Forwarded);
    if fib.ifindex as usize == ctx.ingress_ifindex() {
        return Ok(xdp_action::XDP_TX);
    }
    // SAFETY: plain helper call.
    let action = unsafe { bpf_redirect(fib.ifindex, 0) } as u32;
    if action != xdp_action::XDP_REDIRECT {
        return Err(Verdict::Drop(DropReason::RedirectFailed));
    }
    Ok(action)
}
