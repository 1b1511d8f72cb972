//! A new flow's cost by scheduler with 100 real servers: `wrr` reads one table entry,
//! `lc` and `wlc` walk all 100 `(index, weight)` pairs and their `xlb_real_conns`
//! counts. Timed in the new-flow driver's hot loop (`paths`), all in the same run, so
//! that the ratios compare like with like.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Result, bail};
use integration_tests::{Plane, service};
use lb_common::SchedAlgo;
use serde_json::json;

use super::{
    harness::{VIP, XDP_TX, established, timed},
    paths::{NEWFLOW_DRIVER, set_newflow_target},
};
use crate::{
    objs,
    report::{Report, Section, Summary, f1, f2, mmm},
};

/// Real servers of each service.
const REALS: u8 = 100;

pub fn measure(rounds: usize, repeat: u32, report: &mut Report) -> Result<Section> {
    let reals: Vec<(IpAddr, u32)> = (0..REALS)
        .map(|i| {
            (
                IpAddr::V4(Ipv4Addr::new(198, 18, 2, 1 + i)),
                1 + u32::from(i % 3),
            )
        })
        .collect();
    let algos = [SchedAlgo::Wrr, SchedAlgo::Lc, SchedAlgo::Wlc];
    let mut planes = Vec::new();
    for algo in algos {
        let mut p = Plane::new(&format!("bench-{}", algo.name()));
        p.apply(&[service(IpAddr::V4(VIP), 80, true, algo, &reals)]);
        planes.push(p);
    }
    let est = established();
    let mut nf = objs::load(&[NEWFLOW_DRIVER, "xlb_pass"], &[])?;
    let empty = objs::xdp(&nf, "xlb_pass")?.fd()?.try_clone()?;
    let fds = (planes.iter_mut())
        .map(|p| Ok(p.dataplane.program()?.fd()?.try_clone()?))
        .collect::<Result<Vec<_>>>()?;
    for fd in &fds {
        set_newflow_target(&mut nf, fd)?;
        let (a, _) = timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, 1)?;
        if a != XDP_TX {
            bail!("xlb did not forward the driver's new flow (action {a})");
        }
    }
    let mut base_v = Vec::new();
    let mut v: Vec<Vec<f64>> = vec![Vec::new(); algos.len()];
    for _ in 0..rounds {
        set_newflow_target(&mut nf, &empty)?;
        base_v.push(timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, repeat)?.1);
        for (k, fd) in fds.iter().enumerate() {
            set_newflow_target(&mut nf, fd)?;
            v[k].push(timed(objs::xdp(&nf, NEWFLOW_DRIVER)?, &est, repeat)?.1);
        }
    }
    let base = Summary::of(&base_v).map(|s| s.median);
    let over = |k: usize| Summary::of(&v[k]).zip(base).map(|(s, b)| s.median - b);
    let wrr = over(0);
    let mut sec = Section::new(
        &format!(
            "BPF_PROG_TEST_RUN: a new flow by scheduler, {REALS} real servers (hot loop, \
             {rounds} rounds of {repeat})"
        ),
        &[
            "scheduler",
            "min",
            "median",
            "max",
            "over driver",
            "/ wrr",
            "aim",
        ],
    );
    for (k, algo) in algos.iter().enumerate() {
        let sum = Summary::of(&v[k]);
        let [a, b, c] = mmm(sum, f1);
        let cost = over(k);
        let ratio = cost.zip(wrr).map(|(x, w)| x / w);
        let aim = if *algo == SchedAlgo::Wlc {
            "<= 1.5"
        } else {
            ""
        };
        sec.row(vec![
            algo.name().into(),
            a,
            b,
            c,
            f1(cost),
            f2(ratio),
            aim.into(),
        ]);
        let key = format!("testrun_ns_new_flow_{}_100", algo.name());
        if let Some(x) = cost {
            report.set(&key, x);
        }
        if let Some(r) = ratio {
            report.set(&format!("{key}_over_wrr"), r);
        }
        if let Some(s) = sum {
            report.detail(&key, s.json(&v[k]));
        }
    }
    report.detail(
        "testrun_sched_100",
        json!({ "rounds": rounds, "repeat": repeat }),
    );
    sec.note(
        "the driver's own cost is subtracted; lc/wlc walk every real server's counts \
         (bpf_loop over the service's (index, weight) pairs, 16 a turn) where wrr reads one table \
         entry; each new flow also adds to its server's count (one atomic add)",
    );
    Ok(sec)
}
