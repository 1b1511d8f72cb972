//! xlb's own paths with `BPF_PROG_TEST_RUN`, next to an empty program timed the same way:
//! an established flow (IPv4, IPv6), a new flow one call per frame, a new flow in the hot
//! loop of the new-flow driver (on the default table and on a cache-sized one), and a new
//! flow on a full table (every insert evicts).

use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf,
    maps::ProgramArray,
    programs::{ProgramFd, Xdp},
};
use integration_tests::Plane;
use lb_common::{CONN_SYN_RECV, Conn4, ConnBucket4, ConnValue, FlowKey4, conn_check, conn_hash4};

use super::{
    SMALL_TABLE,
    harness::{XDP_TX, established, established6, new_flow_frames, service_v4, timed, timed_each},
};
use crate::{
    objs,
    report::{Report, Section, Summary, f1, mmm},
};

/// The driver that makes every run a new flow, and what it tail-calls.
pub(super) const NEWFLOW_DRIVER: &str = "xlb_bench_newflow";

pub(super) fn set_newflow_target(nf: &mut Ebpf, fd: &ProgramFd) -> Result<()> {
    let m = nf
        .map_mut("xlb_bench_nf_progs")
        .context("xlb_bench_nf_progs")?;
    ProgramArray::try_from(m)?.set(0, fd, 0)?;
    Ok(())
}

/// Fills every slot of xlb's IPv4 connection table with a live half-open flow (SYN_RECV,
/// seen now), so that every new flow evicts one, as under a SYN flood.
fn fill_conns(p: &Plane) -> Result<()> {
    let mut tables = p.sync.maps().conn_tables(true)?;
    let now = xlb::dataplane::conn_table::now_ticks();
    let seed = tables.seed;
    for b in 0..tables.v4.len() {
        let mut bucket = ConnBucket4::default();
        for (w, slot) in bucket.slots.iter_mut().enumerate() {
            let mut key = FlowKey4::default();
            key.saddr
                .copy_from_slice(&((b * 4 + w) as u32).to_le_bytes());
            key.proto = 6;
            let check = conn_check(conn_hash4(&key, seed), 0, u16::MAX);
            *slot = Conn4 {
                key,
                value: ConnValue {
                    real: 0,
                    service_id: u16::MAX,
                    state: CONN_SYN_RECV,
                    proto: 6,
                    seen: now,
                    check,
                },
            };
        }
        tables.v4.set(b, bucket);
    }
    Ok(())
}

/// The section of xlb's paths, timed on plane `p` (its IPv4 and IPv6 services applied)
/// against `empty`, the empty program; also returns the empty program's median (ns per
/// run, `repeat` runs a call), the baseline of the map operations.
pub fn measure(
    p: &mut Plane,
    empty: &Xdp,
    rounds: usize,
    repeat: u32,
    new_n: usize,
    report: &mut Report,
) -> Result<(Section, Option<Summary>)> {
    let est = established();
    let est6 = established6();
    for f in [&est, &est6] {
        let (a, _) = timed(p.dataplane.program()?, f, 1)?;
        if a != XDP_TX {
            bail!("xlb did not forward the test frame (action {a})");
        }
    }

    let mut empty_v = Vec::new();
    let mut est_v = Vec::new();
    let mut est6_v = Vec::new();
    let mut empty1_v = Vec::new();
    let mut new_v = Vec::new();
    let mut new_full_v = Vec::new();
    // New flows in a hot loop, as under a flood: the driver gives the frame a new source
    // on every run and tail-calls xlb, or the empty program for the baseline.
    let mut nf = objs::load(&[NEWFLOW_DRIVER, "xlb_pass"], &[])?;
    let nf_empty = objs::xdp(&nf, "xlb_pass")?.fd()?.try_clone()?;
    let nf_xlb = p.dataplane.program()?.fd()?.try_clone()?;
    set_newflow_target(&mut nf, &nf_xlb)?;
    let (a, _) = timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, 1)?;
    if a != XDP_TX {
        bail!("xlb did not forward the driver's new flow (action {a})");
    }
    // The same with a table sized for the caches (global_defs.connection_table_size).
    let mut small = Plane::sized("bench-small", SMALL_TABLE);
    small.apply(&[service_v4()]);
    let nf_small = small.dataplane.program()?.fd()?.try_clone()?;
    let mut hot_empty_v = Vec::new();
    let mut hot_new_v = Vec::new();
    let mut hot_small_v = Vec::new();
    for _ in 0..rounds {
        set_newflow_target(&mut nf, &nf_empty)?;
        hot_empty_v.push(timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, repeat)?.1);
        set_newflow_target(&mut nf, &nf_xlb)?;
        hot_new_v.push(timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, repeat)?.1);
        set_newflow_target(&mut nf, &nf_small)?;
        hot_small_v.push(timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, repeat)?.1);
    }
    for round in 0..rounds {
        empty_v.push(timed(empty, &est, repeat)?.1);
        est_v.push(timed(p.dataplane.program()?, &est, repeat)?.1);
        est6_v.push(timed(p.dataplane.program()?, &est6, repeat)?.1);
        let frames = new_flow_frames(new_n, round as u32 + 1);
        empty1_v.push(timed_each(empty, &frames)?);
        new_v.push(timed_each(p.dataplane.program()?, &frames)?);
    }
    // The same with the connection table full of half-open slots: every insert evicts
    // one (a SYN flood).
    let fill_started = Instant::now();
    match fill_conns(p) {
        Ok(()) => {
            for round in 0..rounds {
                let frames = new_flow_frames(new_n, 1000 + round as u32);
                new_full_v.push(timed_each(p.dataplane.program()?, &frames)?);
            }
        }
        Err(e) => report.note(format!(
            "filling xlb_conns4 for the evicting new-flow run: {e:#}"
        )),
    }
    let fill_secs = fill_started.elapsed().as_secs_f64();

    let s = |v: &[f64]| Summary::of(v);
    let empty_s = s(&empty_v);
    let empty1_s = s(&empty1_v);
    let over = |x: Option<Summary>, base: Option<Summary>| match (x, base) {
        (Some(x), Some(b)) => Some(x.median - b.median),
        _ => None,
    };
    let mut sec = Section::new(
        &format!(
            "BPF_PROG_TEST_RUN: ns per packet ({rounds} rounds; established: repeat {repeat}; \
             new flows: {new_n} frames, one call each)"
        ),
        &["path", "min", "median", "max", "over empty", "aim"],
    );
    /// A row: figure key, label, rounds, baseline to subtract, aim.
    type Row<'a> = (&'a str, &'a str, &'a [f64], Option<Summary>, &'a str);
    let hot_empty_s = s(&hot_empty_v);
    let rows: [Row; 9] = [
        (
            "testrun_ns_empty",
            "empty program (repeat)",
            &empty_v,
            None,
            "",
        ),
        (
            "testrun_ns_established",
            "xlb IPv4 established",
            &est_v,
            empty_s,
            "<= 60",
        ),
        (
            "testrun_ns_established_ipv6",
            "xlb IPv6 established",
            &est6_v,
            empty_s,
            "",
        ),
        (
            "testrun_ns_empty_repeat1",
            "empty program (one call per frame)",
            &empty1_v,
            None,
            "",
        ),
        (
            "testrun_ns_new_flow_one_call",
            "xlb IPv4 new flow (one call per frame)",
            &new_v,
            empty1_s,
            "",
        ),
        (
            "testrun_ns_newflow_driver",
            "new-flow driver + empty program (repeat)",
            &hot_empty_v,
            None,
            "",
        ),
        (
            "testrun_ns_new_flow",
            "xlb IPv4 new flow, hot loop (driver + xlb)",
            &hot_new_v,
            hot_empty_s,
            "<= 150",
        ),
        (
            "testrun_ns_new_flow_small_table",
            "the same, 16,384-slot table (512 KiB)",
            &hot_small_v,
            hot_empty_s,
            "<= 150",
        ),
        (
            "testrun_ns_new_flow_table_full",
            "xlb IPv4 new flow, table full of half-open slots (evicting; one call per frame)",
            &new_full_v,
            empty1_s,
            "",
        ),
    ];
    for (key, label, v, base, aim) in rows {
        let sum = s(v);
        let [a, b, c] = mmm(sum, f1);
        let delta = if base.is_some() {
            over(sum, base)
        } else {
            None
        };
        sec.row(vec![label.into(), a, b, c, f1(delta), aim.into()]);
        if let Some(x) = sum {
            report.set(key, x.median);
            report.detail(key, x.json(v));
        }
        if let Some(d) = delta {
            report.set(&format!("{key}_over_empty"), d);
        }
    }
    report.set("testrun_conns_fill_seconds", fill_secs);
    sec.note(
        "new flow: testrun_ns_new_flow is the hot loop (every run of a repeat a new flow, \
         the driver's own cost subtracted); a call per frame also pays the caches each \
         syscall cools, and moves by 2x between runs (testrun_ns_new_flow_one_call)",
    );
    Ok((sec, empty_s))
}
