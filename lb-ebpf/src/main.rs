//! xlb's XDP program: direct-routing (DR) forwarding with in-kernel scheduling.
//!
//! Per packet: parse Ethernet (+ one 802.1Q/802.1ad tag), IPv4 / IPv6, TCP / UDP; look up
//! the virtual service; keep an existing flow on its real server or schedule a new one
//! from the service's table; rewrite the MACs and transmit. IP header, ports and TTL are
//! never touched in DR; NAT services rewrite them both ways (`nat`). Everything that is
//! not for an active virtual service goes to the host stack untouched (`XDP_PASS`), and
//! every verdict is counted.
//!
//! - `maps`: every map of the program, the kernel/user interface (types in `lb-common`).
//! - `parse`: the headers, and the one bounds-checked access to packet memory.
//! - `conns`: the connection tables (find, refresh, record a flow).
//! - `forward`: established flows, service lookup, scheduling, MAC rewrite, transmit.
//! - `icmp`: "fragmentation needed" / "packet too big" about a tracked flow, to its real
//!   server (path-MTU discovery); reached only by packets that are not TCP/UDP.
//! - `nat`: NAT services (`lb_kind = "NAT"`): the destination rewrite towards the real
//!   server, and its replies translated back to the VIP; reached by packets `forward`
//!   passed as for no virtual service.
//! - `sched`: the schedulers that count connections (`lc`, `wlc`, ...) and the counts.
//! - `verdict`: why a packet was not forwarded.
//! - `bench`: programs for `cargo xtask bench` only, in the same object.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// `sched`: BPF's atomic add, without the compare-and-swap `AtomicI64` needs.
#![cfg_attr(target_arch = "bpf", allow(internal_features))]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]

#[cfg(target_arch = "bpf")]
mod bench;
#[cfg(target_arch = "bpf")]
mod conns;
#[cfg(target_arch = "bpf")]
mod forward;
#[cfg(target_arch = "bpf")]
mod icmp;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod nat;
#[cfg(target_arch = "bpf")]
mod parse;
#[cfg(target_arch = "bpf")]
mod sched;
#[cfg(target_arch = "bpf")]
mod verdict;

#[cfg(target_arch = "bpf")]
mod entry {
    use aya_ebpf::{
        bindings::xdp_action, btf_maps::PerCpuArray, macros::xdp, programs::XdpContext,
    };

    use lb_common::PassReason;

    use crate::{
        forward::forward,
        icmp::forward_icmp,
        maps::{DROPS, PASSES},
        verdict::Verdict,
    };

    /// The production program: forwards, or counts why not.
    #[xdp]
    pub fn xlb_xdp(ctx: XdpContext) -> u32 {
        let result = match forward(&ctx) {
            Err(Verdict::Pass(PassReason::NotTcpUdp)) => forward_icmp(&ctx),
            Err(Verdict::Pass(PassReason::NotVirtualService)) => crate::nat::reply(&ctx),
            result => result,
        };
        match result {
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

    #[inline(always)]
    fn bump<const N: usize>(map: &PerCpuArray<u64, N>, index: u32) {
        if let Some(counter) = map.get_ptr_mut(index) {
            // SAFETY: a per-CPU slot; no other writer on this CPU while we run.
            unsafe { *counter += 1 };
        }
    }

    /// Passes every frame. Test and demo labs attach it to the veth peers that receive the
    /// director's `XDP_TX` frames: a veth delivers those only when its peer runs XDP.
    #[xdp]
    pub fn xlb_pass(_ctx: XdpContext) -> u32 {
        xdp_action::XDP_PASS
    }

    #[cfg(not(test))]
    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("lb-ebpf builds only for the bpf target: use `cargo xtask build`");
}
