//! `xlb_bench_newflow`: gives the test frame a new source address and port on every run,
//! then tail-calls slot 0 of `xlb_bench_nf_progs` (xlb, or the empty program for the
//! baseline): new flows timed in a hot loop with `BPF_PROG_TEST_RUN`'s `repeat`, as under
//! a flood.

use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{PerCpuArray, ProgramArray},
    macros::{btf_map, xdp},
    programs::XdpContext,
};

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
