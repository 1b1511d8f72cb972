//! Map sync and the mh table: loading the data plane, `MapSync::apply` of many virtual
//! services (the first sync, a no-op sync, a one-weight change), building a 100-server
//! Maglev table and applying a change of such a service.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use integration_tests::{Plane, TEST_IFINDEX, real_mac};
use lb_common::{MAX_REALS, PROTO_TCP, SchedAlgo, ServiceKey, addr_of};
use serde_json::json;
use xlb::{
    dataplane::sched::{self, Candidate},
    dataplane::sync::{DesiredReal, DesiredService},
};

use crate::{
    Opts,
    report::{Report, Section, Summary, f1},
};

fn desired(services: usize, reals: usize, algo: SchedAlgo, first: usize) -> Vec<DesiredService> {
    (0..services)
        .map(|s| {
            let s = s + first;
            DesiredService {
                key: ServiceKey {
                    vip: addr_of(IpAddr::V4(Ipv4Addr::new(
                        198,
                        18,
                        100 + (s >> 8) as u8,
                        s as u8,
                    ))),
                    port: 80,
                    proto: PROTO_TCP,
                    _pad: 0,
                },
                aliases: Vec::new(),
                algo,
                hash_port: false,
                active: true,
                persistence_timeout: 0,
                nat: false,
                reals: (0..reals)
                    .map(|r| {
                        let i = s * reals + r;
                        DesiredReal {
                            addr: addr_of(IpAddr::V4(Ipv4Addr::new(
                                198,
                                19,
                                (i >> 8) as u8,
                                i as u8,
                            ))),
                            port: 80,
                            weight: 1,
                            alive: true,
                            ifindex: TEST_IFINDEX,
                            mac: Some(real_mac((r % 250) as u8)),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn sync_bench(opts: &Opts, report: &mut Report, sec: &mut Section) -> Result<()> {
    let (want_services, want_reals) = if opts.quick { (100, 10) } else { (1000, 100) };
    // The ABI holds MAX_REALS real-server slots in all: keep the services, cut the servers.
    let reals = want_reals.min(MAX_REALS as usize / want_services);
    if reals < want_reals {
        report.note(format!(
            "{want_services} services x {want_reals} real servers exceed MAX_REALS ({MAX_REALS} \
             real-server slots in lb-common): measured {want_services} x {reals}"
        ));
    }
    report.set("control_sync_services", want_services as u64);
    report.set("control_sync_reals_per_service", reals as u64);

    let t = Instant::now();
    let mut p = Plane::new("benchcp");
    let load = t.elapsed();
    let mut want = desired(want_services, reals, SchedAlgo::Wrr, 0);
    let t = Instant::now();
    p.sync.apply(&want).context("the first sync")?;
    let first = t.elapsed();
    let t = Instant::now();
    p.sync.apply(&want).context("a no-op sync")?;
    let noop = t.elapsed();
    want[want_services / 2].reals[0].weight = 2;
    let t = Instant::now();
    p.sync.apply(&want).context("a one-weight change")?;
    let one = t.elapsed();
    let total = want_services * reals;
    sec.row(vec![
        "load the data plane (maps + program, pinned)".into(),
        f1(Some(ms(load))),
    ]);
    sec.row(vec![
        format!("first sync: {want_services} services x {reals} real servers (wrr)"),
        f1(Some(ms(first))),
    ]);
    sec.row(vec![
        format!(
            "  per real server: {:.1} us",
            ms(first) * 1e3 / total as f64
        ),
        String::new(),
    ]);
    if reals < want_reals {
        let extrapolated = ms(first) / total as f64 * (want_services * want_reals) as f64;
        report.set("control_sync_first_ms_extrapolated_full", extrapolated);
        sec.row(vec![
            format!("  {want_services} x {want_reals}, extrapolated (does not fit MAX_REALS)"),
            f1(Some(extrapolated)),
        ]);
    }
    sec.row(vec!["sync with nothing changed".into(), f1(Some(ms(noop)))]);
    sec.row(vec![
        "sync after one weight changed".into(),
        f1(Some(ms(one))),
    ]);
    report.set("control_load_ms", ms(load));
    report.set("control_sync_first_ms", ms(first));
    report.set("control_sync_noop_ms", ms(noop));
    report.set("control_sync_one_change_ms", ms(one));
    report.set("control_sync_us_per_real", ms(first) * 1e3 / total as f64);
    drop(p);

    // mh: a 100-server weighted Maglev table (65,521 slots), built and swapped in.
    let mh_reals = 100;
    let candidates: Vec<Candidate> = (0..mh_reals)
        .map(|i| Candidate {
            index: i as u32,
            addr: addr_of(IpAddr::V4(Ipv4Addr::new(198, 19, 0, i as u8))),
            port: 80,
            weight: 1 + (i % 3) as u32,
        })
        .collect();
    let mut builds = Vec::new();
    let mut len = 0;
    for _ in 0..if opts.quick { 3 } else { 10 } {
        let t = Instant::now();
        len = sched::build_table(SchedAlgo::Mh, &candidates).len();
        builds.push(ms(t.elapsed()));
    }
    let build = Summary::of(&builds).map(|s| s.median);
    let mut p = Plane::new("benchmh");
    let mut want = desired(1, mh_reals, SchedAlgo::Mh, 0);
    p.sync.apply(&want)?;
    let mut applies = Vec::new();
    for i in 0..if opts.quick { 2 } else { 5 } {
        want[0].reals[i].alive = !want[0].reals[i].alive;
        let t = Instant::now();
        p.sync.apply(&want)?;
        applies.push(ms(t.elapsed()));
    }
    let apply = Summary::of(&applies).map(|s| s.median);
    sec.row(vec![
        format!("mh table build, {mh_reals} servers ({len} slots)"),
        f1(build),
    ]);
    sec.row(vec![
        format!("mh service: one server down -> rebuild + write {len} slots + swap"),
        f1(apply),
    ]);
    report.set("control_mh_build_ms", build);
    report.set("control_mh_table_slots", len as u64);
    report.set("control_mh_apply_ms", apply);
    report.detail(
        "control_mh",
        json!({ "build_ms": builds, "apply_ms": applies, "servers": mh_reals, "slots": len }),
    );
    Ok(())
}
