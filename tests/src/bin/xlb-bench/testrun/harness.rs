//! What the test runs share: the services on xlb's data plane, the frames sent to them,
//! and timing an XDP program with `BPF_PROG_TEST_RUN` (one frame `repeat` times in one
//! call, or many frames one call each).

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use aya::programs::{TestRun, TestRunOptions, Xdp};
use integration_tests::{TEST_IFINDEX, frames::Frame, service};
use lb_common::SchedAlgo;
use xlb::dataplane::sync::DesiredService;

use crate::objs;

pub const XDP_DROP: u32 = 1;
pub const XDP_TX: u32 = 3;
/// The IPv4 and IPv6 services' VIPs (port 80, TCP).
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
pub const VIP6: &str = "2001:db8::100";
/// The client of the established test frame.
pub const EST_CLIENT: Ipv4Addr = Ipv4Addr::new(198, 19, 255, 1);
pub const EST_PORT: u16 = 40000;

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// The IPv4 service: VIP:80, four real servers of weight 1.
pub fn service_v4() -> DesiredService {
    let reals: Vec<(IpAddr, u32)> = (1..=4)
        .map(|i| (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10 + i)), 1))
        .collect();
    service(IpAddr::V4(VIP), 80, true, SchedAlgo::Wrr, &reals)
}

/// The IPv6 service: VIP6:80, four real servers of weight 1.
pub fn service_v6() -> DesiredService {
    let reals6: Vec<(IpAddr, u32)> = (1..=4)
        .map(|i| (ip(&format!("2001:db8::{}", 0x10 + i)), 1))
        .collect();
    service(ip(VIP6), 80, true, SchedAlgo::Wrr, &reals6)
}

/// The established flow's test frame, to VIP.
pub fn established() -> Vec<u8> {
    Frame::tcp(IpAddr::V4(EST_CLIENT), EST_PORT, IpAddr::V4(VIP), 80).build()
}

/// The same to VIP6.
pub fn established6() -> Vec<u8> {
    Frame::tcp(ip("2001:db8:1::1"), 40000, ip(VIP6), 80).build()
}

/// The action of one run and ns per run of `prog` on `frame`, `repeat` times in one call.
pub fn timed(prog: &Xdp, frame: &[u8], repeat: u32) -> Result<(u32, f64)> {
    let ctx = objs::xdp_md(TEST_IFINDEX, frame.len());
    let mut out = vec![0u8; frame.len() + 256];
    let r = prog.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ctx_in: Some(&ctx),
        repeat,
        ..TestRunOptions::default()
    })?;
    Ok((r.return_value, r.duration.as_nanos() as f64))
}

/// Average ns per call over `frames`, one call each.
pub fn timed_each(prog: &Xdp, frames: &[Vec<u8>]) -> Result<f64> {
    let mut total = 0.0;
    for f in frames {
        total += timed(prog, f, 1)?.1;
    }
    Ok(total / frames.len() as f64)
}

pub fn new_flow_frames(n: usize, seed: u32) -> Vec<Vec<u8>> {
    // Distinct 5-tuples: 198.19.x.y, ports from a simple LCG (no rand dependency here).
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|i| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let c = IpAddr::V4(Ipv4Addr::new(198, 19, (i >> 8) as u8, i as u8));
            let port = 1024 + (x >> 16) as u16 % 60_000;
            Frame::tcp(c, port, IpAddr::V4(VIP), 80).build()
        })
        .collect()
}
