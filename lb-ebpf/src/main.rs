//! xlb's XDP program: direct-routing (DR) forwarding with in-kernel scheduling.
//!
//! Per packet: parse Ethernet (+ one 802.1Q/802.1ad tag), IPv4 / IPv6, TCP / UDP; look up
//! the virtual service; keep an existing flow on its real server or schedule a new one
//! from the service's table; rewrite the MACs and transmit. IP header, ports and TTL are
//! never touched: that is DR. Everything that is not for an active virtual service goes
//! to the host stack untouched (`XDP_PASS`), and every verdict is counted.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod bench_programs;
#[cfg(target_arch = "bpf")]
mod conns;
#[cfg(target_arch = "bpf")]
mod program;

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("lb-ebpf builds only for the bpf target: use `cargo xtask build`");
}
