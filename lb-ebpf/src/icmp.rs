//! ICMP errors about a tracked flow: an ICMP "fragmentation needed" (type 3 code 4) or an
//! ICMPv6 "packet too big" (type 2) that a router on the client side sends to the VIP
//! carries the real server's reply header (source VIP:port, destination client:port). As
//! IPVS does, the frame goes unchanged (DR: only the MACs) to the real server that owns
//! the flow, so that path-MTU discovery works; it is counted in `xlb_icmp_fwd` and in the
//! service's and real server's traffic counters.
//!
//! Only reached for packets `parse` passed as not TCP/UDP: the TCP/UDP path is unchanged.
//! The embedded header is never trusted: bounds-checked, of the outer family, IPv4 without
//! options, TCP or UDP, and its flow must be live in the connection table; else the frame
//! goes to the host stack, counted (`icmp_*` pass reasons). The ICMP checksum is left to
//! the real server's stack, as for every forwarded packet. Other ICMP stays with the host.

use aya_ebpf::{btf_maps::PerCpuArray, programs::XdpContext};
use lb_common::{FlowKey, FlowKey4, PROTO_TCP, PROTO_UDP, PassReason, REAL_F_NAT, SVC_F_ACTIVE};

use crate::{
    conns::{self, Flow},
    forward::{real_for, transmit},
    maps::{ICMP_FWD, SVC_STATE},
    parse::{ETH_P_IP, ETH_P_IPV6, IPV4_HLEN, IPV6_HLEN, l2, load, ptr_at},
    verdict::Verdict,
};

const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
const ICMPV6_PKT_TOOBIG: u8 = 2;
/// Type, code, checksum, and the 4 bytes before the embedded header (MTU among them).
const ICMP_HLEN: usize = 8;

const NOT_ICMP: Verdict = Verdict::Pass(PassReason::NotTcpUdp);
const MALFORMED: Verdict = Verdict::Pass(PassReason::IcmpMalformed);

/// The ports of an embedded reply header at `offset`, in the original direction:
/// (client port, VIP port).
#[inline(always)]
fn inner_ports(ctx: &XdpContext, offset: usize) -> Result<(u16, u16), Verdict> {
    let ports: *const [u8; 4] = ptr_at(ctx, offset).map_err(|_| MALFORMED)?;
    // SAFETY: bounds checked by ptr_at.
    let p = unsafe { *ports };
    // Reply: source = VIP port, destination = client port.
    Ok((
        u16::from_be_bytes([p[2], p[3]]),
        u16::from_be_bytes([p[0], p[1]]),
    ))
}

#[inline(always)]
fn tcp_or_udp(proto: u8) -> Result<u8, Verdict> {
    match proto {
        PROTO_TCP | PROTO_UDP => Ok(proto),
        _ => Err(Verdict::Pass(PassReason::IcmpInnerNotTcpUdp)),
    }
}

/// The flow a "fragmentation needed" / "packet too big" is about, and its
/// `xlb_icmp_fwd` index; `NOT_ICMP` for any other packet.
#[inline(always)]
fn parse_icmp(ctx: &XdpContext) -> Result<(Flow, u32), Verdict> {
    let (ethertype, l3) = l2(ctx)?;
    match ethertype {
        ETH_P_IP => {
            let outer: *const [u8; IPV4_HLEN] = ptr_at(ctx, l3)?;
            // SAFETY: bounds checked by ptr_at.
            let outer = unsafe { &*outer };
            // `parse` passed options and fragments already; checked again, cheaply.
            if outer[0] != 0x45 || outer[9] != PROTO_ICMP {
                return Err(NOT_ICMP);
            }
            let icmp: *const [u8; 2] = ptr_at(ctx, l3 + IPV4_HLEN)?;
            // SAFETY: bounds checked by ptr_at.
            let icmp = unsafe { *icmp };
            if icmp != [ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED] {
                return Err(NOT_ICMP);
            }
            let inner_at = l3 + IPV4_HLEN + ICMP_HLEN;
            let inner: *const [u8; IPV4_HLEN] = ptr_at(ctx, inner_at).map_err(|_| MALFORMED)?;
            // SAFETY: bounds checked by ptr_at.
            let inner = unsafe { &*inner };
            if inner[0] != 0x45 {
                return Err(MALFORMED);
            }
            let proto = tcp_or_udp(inner[9])?;
            let (sport, dport) = inner_ports(ctx, inner_at + IPV4_HLEN)?;
            // Inner source VIP, destination client: the original direction swaps them.
            let addrs = load::<u64>(inner.as_ptr(), 12).rotate_left(32);
            let mut key = FlowKey4::from_words([addrs, (proto as u64) << 32]);
            (key.sport, key.dport) = (sport, dport);
            Ok((Flow::V4(key), 0))
        }
        ETH_P_IPV6 => {
            let outer: *const [u8; IPV6_HLEN] = ptr_at(ctx, l3)?;
            // SAFETY: bounds checked by ptr_at.
            let outer = unsafe { &*outer };
            if outer[0] >> 4 != 6 || outer[6] != PROTO_ICMPV6 {
                return Err(NOT_ICMP);
            }
            let icmp: *const u8 = ptr_at(ctx, l3 + IPV6_HLEN)?;
            // SAFETY: bounds checked by ptr_at.
            if unsafe { *icmp } != ICMPV6_PKT_TOOBIG {
                return Err(NOT_ICMP);
            }
            let inner_at = l3 + IPV6_HLEN + ICMP_HLEN;
            let inner: *const [u8; IPV6_HLEN] = ptr_at(ctx, inner_at).map_err(|_| MALFORMED)?;
            // SAFETY: bounds checked by ptr_at.
            let inner = unsafe { &*inner };
            if inner[0] >> 4 != 6 {
                return Err(MALFORMED);
            }
            let proto = tcp_or_udp(inner[6])?;
            let (sport, dport) = inner_ports(ctx, inner_at + IPV6_HLEN)?;
            let a = |i: usize| load::<u64>(inner.as_ptr(), 8 + 8 * i);
            // Inner source (words 0, 1) is the VIP, destination (2, 3) the client.
            let mut key = FlowKey::from_words([a(2), a(3), a(0), a(1), (proto as u64) << 32]);
            (key.sport, key.dport) = (sport, dport);
            Ok((Flow::V6(key), 1))
        }
        _ => Err(NOT_ICMP),
    }
}

/// Sends a "fragmentation needed" / "packet too big" about a live flow to its real
/// server; any other packet keeps the verdict `parse` gave it (not TCP/UDP).
#[inline(always)]
pub fn forward_icmp(ctx: &XdpContext) -> Result<u32, Verdict> {
    let (flow, kind) = parse_icmp(ctx)?;
    let hash = flow.hash(conns::seed());
    let slot = flow
        .find(hash, conns::now())
        .ok_or(Verdict::Pass(PassReason::IcmpNoFlow))?;
    // SAFETY: a map value (`lb_common::conn` says why a racy copy is fine).
    let v = unsafe { *slot };
    let service_id = v.service_id as u32;
    if !SVC_STATE
        .get(service_id)
        .is_some_and(|f| f & SVC_F_ACTIVE != 0)
    {
        return Err(Verdict::Pass(PassReason::Inactive));
    }
    let real = real_for(v.real, service_id).ok_or(Verdict::Pass(PassReason::IcmpNoFlow))?;
    if real.flags & REAL_F_NAT != 0 {
        // Its embedded header names the VIP, which a NAT real server does not hold.
        return Err(Verdict::Pass(PassReason::IcmpNat));
    }
    // The flow's clock and state are left alone: an ICMP error is not traffic of the flow.
    let action = transmit(ctx, service_id, v.real, &real, false)?;
    bump(&ICMP_FWD, kind);
    Ok(action)
}

#[inline(always)]
fn bump<const N: usize>(map: &PerCpuArray<u64, N>, index: u32) {
    if let Some(counter) = map.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
        unsafe { *counter += 1 };
    }
}
