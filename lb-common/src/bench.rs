//! Config structs of the benchmark programs (`lb-ebpf/src/bench/`), which `cargo xtask
//! bench` loads out of xlb's object and the bench driver (`tests/src/bin/xlb-bench/`)
//! fills in. xlb itself never uses them.

/// Value of `xlb_bench_gen_cfg[0]`: what the traffic generator sends.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
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
    /// Nanoseconds between frames; 0: as fast as the CPU goes (the bench's peak search
    /// sets it).
    pub gap_ns: u32,
}

/// Value of `xlb_bench_fwd_cfg[0]`: the MACs and egress interface of the redirect ceiling.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FwdCfg {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ifindex: u32,
}

/// Value of `xlb_bench_map_p_conns`: where the established-path prototype sends a flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProtoFlow {
    /// Index into `xlb_bench_map_p_reals`.
    pub real: u32,
    /// Index into `xlb_bench_map_p_svc`.
    pub service_id: u32,
}

/// Value of `xlb_bench_map_p_reals`: a real server as the established-path prototype
/// keeps it, its MAC and the director's on its link.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProtoReal {
    pub mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub ifindex: u32,
    /// [`PROTO_REAL_USABLE`] when the prototype may forward to it.
    pub flags: u32,
    pub service_id: u32,
}

/// `ProtoReal::flags` of a usable real server: in use, alive, MAC known (as
/// [`crate::RealServer::serves`] requires of xlb's real servers).
pub const PROTO_REAL_USABLE: u32 =
    crate::REAL_F_IN_USE | crate::REAL_F_ALIVE | crate::REAL_F_MAC_VALID;

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: #[repr(C)], integers and byte arrays only, no implicit padding (asserted
    // below).
    unsafe impl aya::Pod for GenCfg {}
    unsafe impl aya::Pod for FwdCfg {}
    unsafe impl aya::Pod for ProtoFlow {}
    unsafe impl aya::Pod for ProtoReal {}
}

// No implicit padding: the sum of the fields is the size.
const _: () = {
    use core::mem::size_of;
    assert!(size_of::<GenCfg>() == 6 + 6 + 4 * 3 + 2 * 4 + 4);
    assert!(size_of::<FwdCfg>() == 6 + 6 + 4);
    assert!(size_of::<ProtoFlow>() == 4 + 4);
    assert!(size_of::<ProtoReal>() == 6 + 6 + 4 * 3);
};
