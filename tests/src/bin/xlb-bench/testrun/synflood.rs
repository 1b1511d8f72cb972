//! The SYN flood figure: how many SYNs a second xlb's default connection table absorbs
//! with no established flow lost. Established flows are put in through the program (two
//! ACKs each, as a flow taken over mid-stream); then the new-flow driver sends SYNs from
//! new sources through xlb in the hot loop (`repeat` runs, every run a new source) and
//! times them; then every established flow is looked up in the table. The table never
//! limits the rate (a full bucket gives up its oldest half-open slot, and an established
//! flow only after 60 s idle), so the rate absorbed is the rate one core runs the
//! program at, and the check is that none was lost.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Result, bail};
use integration_tests::{Plane, frames::Frame};
use lb_common::{CONN_OPEN, FlowKey4, TCP_ACK, conn_hash4};
use xlb::dataplane::conn_table::{Evictions, Tables, now_ticks};

use super::{
    harness::{VIP, XDP_TX, established, service_v4, timed},
    paths::{NEWFLOW_DRIVER, set_newflow_target},
};
use crate::{
    objs,
    report::{Report, Section},
};

/// Client `i` of the established flows: 198.18.128.0/17, 4,096 ports per address (apart
/// from the driver's SYN sources in 198.19.0.0/16).
fn client(i: u32) -> (Ipv4Addr, u16) {
    let base = u32::from(Ipv4Addr::new(198, 18, 128, 0));
    (Ipv4Addr::from(base + (i >> 12)), 2000 + (i & 0xfff) as u16)
}

fn key(i: u32) -> FlowKey4 {
    let (c, port) = client(i);
    FlowKey4 {
        saddr: c.octets(),
        daddr: VIP.octets(),
        sport: port,
        dport: 80,
        proto: 6,
        _pad: [0; 3],
    }
}

/// Whether flow `i` holds a live ESTABLISHED slot.
fn tracked(t: &Tables, i: u32, now: u32) -> bool {
    let k = key(i);
    let hash = conn_hash4(&k, t.seed);
    t.v4.get(t.bucket4(&k))
        .slots
        .iter()
        .any(|s| s.key == k && s.value.state == CONN_OPEN && s.value.live(hash, now, &t.timeouts))
}

fn count_tracked(t: &Tables, flows: u32) -> u32 {
    let now = now_ticks();
    (0..flows).filter(|&i| tracked(t, i, now)).count() as u32
}

/// Runs the flood on a fresh plane with the default table: `flows` established flows,
/// then `syns` SYNs in calls of `repeat`.
pub fn measure(flows: u32, syns: u32, repeat: u32, report: &mut Report) -> Result<Section> {
    let mut p = Plane::new("bench-synflood");
    p.apply(&[service_v4()]);
    for i in 0..flows {
        let (c, port) = client(i);
        let mut f = Frame::tcp(IpAddr::V4(c), port, IpAddr::V4(VIP), 80);
        f.tcp_flags = TCP_ACK;
        let frame = f.build();
        // The first ACK makes a half-open slot, the second establishes it.
        for _ in 0..2 {
            let (a, _) = timed(p.dataplane.program()?, &frame, 1)?;
            if a != XDP_TX {
                bail!("xlb did not forward established flow {i} (action {a})");
            }
        }
    }
    let tables = p.maps().conn_tables(false)?;
    let before = count_tracked(&tables, flows);

    let mut nf = objs::load(&[NEWFLOW_DRIVER], &[])?;
    let xlb_fd = p.dataplane.program()?.fd()?.try_clone()?;
    set_newflow_target(&mut nf, &xlb_fd)?;
    // The driver's frame is a SYN to the VIP; it gives every run a new source.
    let syn = established();
    let mut ns = Vec::new();
    let mut sent = 0;
    while sent < syns {
        let n = repeat.min(syns - sent);
        let (a, t) = timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &syn, n)?;
        if a != XDP_TX {
            bail!("xlb did not forward the flood's SYN (action {a})");
        }
        ns.push(t);
        sent += n;
    }
    let after = count_tracked(&tables, flows);
    let ev = Evictions::read(&p.maps().conn_evictions);
    let lost = before - after;
    let ns_per_syn = ns.iter().sum::<f64>() / ns.len() as f64;
    let per_s = 1e9 / ns_per_syn;

    report.set("synflood_established_flows", before as u64);
    report.set("synflood_syns", sent as u64);
    report.set("synflood_established_lost", lost as u64);
    report.set("synflood_ns_per_syn", ns_per_syn);
    report.set("synflood_syns_per_s_per_core", per_s);
    report.set("synflood_evicted_syn_recv", ev.syn_recv);
    report.set("synflood_evicted_established", ev.established);
    report.set("synflood_not_tracked", ev.not_tracked);

    let mut sec = Section::new(
        "SYN flood on the default table (BPF_PROG_TEST_RUN, one core)",
        &["figure", "value"],
    );
    let slots = tables.v4.len() * lb_common::CONN_WAYS;
    for (label, value) in [
        (
            "established flows in the table before / after".to_string(),
            format!("{before} / {after} of {flows}"),
        ),
        ("SYNs from new sources".into(), sent.to_string()),
        (
            "ns per SYN (driver + xlb)".into(),
            format!("{ns_per_syn:.1}"),
        ),
        (
            "SYNs absorbed per second per core, no established flow lost".into(),
            if lost == 0 {
                format!("{:.2} M", per_s / 1e6)
            } else {
                format!("none: {lost} lost")
            },
        ),
        (
            "half-open slots given up / established evicted / SYNs untracked".into(),
            format!("{} / {} / {}", ev.syn_recv, ev.established, ev.not_tracked),
        ),
    ] {
        sec.row(vec![label, value]);
    }
    sec.note(format!(
        "method: {flows} flows put in by two ACKs each, then {sent} SYNs from new sources \
         (the new-flow driver, repeat {repeat}) through xlb on the default {slots}-slot \
         table, then every flow looked up; the rate is one core's, the table does not \
         limit it (an active established slot is never given up; a SYN whose bucket holds \
         four of them goes untracked)"
    ));
    if lost > 0 {
        report.fail(format!(
            "SYN flood: {lost} of {before} established flows lost from the table"
        ));
    }
    Ok(sec)
}
