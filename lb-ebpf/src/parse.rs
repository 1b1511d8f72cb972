//! The headers xlb reads: Ethernet (+ one 802.1Q / 802.1ad tag), IPv4 without options or
//! IPv6 without extension headers, TCP / UDP. Everything else is a `Verdict::Pass`.
//! All packet access goes through [`ptr_at`].

use aya_ebpf::programs::XdpContext;
use lb_common::{FlowKey, FlowKey4, PROTO_TCP, PROTO_UDP, PassReason};

use crate::{conns::Flow, verdict::Verdict};

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
pub const IPV4_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;
const TCP_MIN_HLEN: usize = 20;
const UDP_HLEN: usize = 8;

/// What the parser extracts: the flow, and the TCP flags that move its state.
pub struct Packet {
    pub flow: Flow,
    /// 0 for UDP.
    pub tcp_flags: u8,
}

/// The one bounds-checked way to read (and write) packet memory.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*mut T, Verdict> {
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
pub fn load<T: Copy>(header: *const u8, offset: usize) -> T {
    // SAFETY: the caller bounds-checked `header` past `offset + size_of::<T>()`.
    unsafe { *(header.add(offset) as *const T) }
}

#[inline(always)]
fn read_be16(ctx: &XdpContext, offset: usize) -> Result<u16, Verdict> {
    let p: *const [u8; 2] = ptr_at(ctx, offset)?;
    // SAFETY: bounds checked by ptr_at.
    Ok(u16::from_be_bytes(unsafe { *p }))
}

/// The ethertype after at most one VLAN tag, and where the IP header starts; what `parse`
/// does first (and `icmp` again, for the rare packets it looks at).
#[inline(always)]
pub fn l2(ctx: &XdpContext) -> Result<(u16, usize), Verdict> {
    let mut l3 = ETH_HLEN;
    let mut ethertype = read_be16(ctx, 12)?;
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        ethertype = read_be16(ctx, ETH_HLEN + 2)?;
        l3 += VLAN_HLEN;
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            return Err(Verdict::Pass(PassReason::StackedVlan));
        }
    }
    Ok((ethertype, l3))
}

/// IPv4 goes straight into its 16-byte flow key, IPv6 into its 40-byte one: the
/// established path hashes the key as parsed.
#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Result<Packet, Verdict> {
    let (ethertype, l3) = l2(ctx)?;
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
