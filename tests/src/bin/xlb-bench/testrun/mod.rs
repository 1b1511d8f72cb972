//! Scenario 5: `BPF_PROG_TEST_RUN` nanoseconds per packet of xlb's paths next to an empty
//! program, and of single map operations (what xlb's steps cost), plus the program's size.
//!
//! Established flows run with a large `repeat` (rewriting the MACs does not change the
//! decision, so the program's own output is a valid next input). A new flow needs a new
//! frame each time, so those run one call per frame (`repeat` = 1) and are compared with
//! the empty program timed the same way: the per-call timer overhead cancels out, but each
//! call starts with caches the syscall has cooled. Hence also the hot loop: a driver
//! program (`xlb_bench_newflow`) gives the frame a new source on every run of a `repeat`
//! and tail-calls xlb, against the same driver tail-calling the empty program.
//!
//! The modules:
//! - `harness`: the services, the frames, timing a program;
//! - `paths`: xlb's paths against the empty program;
//! - `map_ops`: single map operations and the prototype;
//! - `sched`: a new flow under `wrr`, `lc` and `wlc` with 100 real servers, as ratios;
//! - `synflood`: the SYN rate the default table absorbs with no established flow lost;
//! - this module: the order of the runs, and the program's size.

mod harness;
mod map_ops;
mod paths;
mod sched;
mod synflood;

use anyhow::Result;
use integration_tests::{Plane, pin_to_cpu};
use serde_json::json;

use crate::{Opts, objs, report::Report, threads::AffinityGuard};

/// Slots of the cache-sized table of the second hot-loop row (512 KiB).
const SMALL_TABLE: u32 = 1 << 14;

pub fn bench(opts: &Opts, report: &mut Report) -> Result<()> {
    let (rounds, repeat, new_n) = if opts.quick {
        (3, 200_000u32, 2_000usize)
    } else {
        (7, 2_000_000u32, 20_000usize)
    };
    // SYN flood: established flows in the default table, SYNs sent.
    let (flood_flows, flood_syns) = if opts.quick {
        (1 << 15, 400_000u32)
    } else {
        (1 << 17, 4_000_000u32)
    };
    // One CPU: per-CPU maps and caches behave the same in every round.
    let _restore = AffinityGuard::save();
    pin_to_cpu(0);

    let mut p = Plane::new("bench");
    p.apply(&[harness::service_v4(), harness::service_v6()]);
    let mut micro = map_ops::load_micro()?;
    let empty = objs::xdp(&micro, "xlb_pass")?;
    let (mut sec, empty_s) = paths::measure(&mut p, empty, rounds, repeat, new_n, report)?;
    let empty_ns = empty_s.map(|s| s.median).unwrap_or(f64::NAN);
    let est = harness::established();
    let msec = map_ops::measure(&mut micro, &est, empty_ns, repeat, rounds, report)?;

    // The program itself.
    let info = p.dataplane.program()?.info()?;
    let xlated = info.size_translated();
    let jited = info.size_jitted();
    let insns = info.verified_instruction_count();
    report.set("xlb_prog_xlated_bytes", xlated.map(|v| v as u64));
    report.set("xlb_prog_jited_bytes", jited as u64);
    report.set("xlb_prog_verified_insns", insns.map(|v| v as u64));
    report.set(
        "xlb_prog_map_count",
        info.map_ids()?.map(|m| m.len() as u64),
    );
    sec.note(format!(
        "xlb_xdp: {} xlated bytes ({} BPF instructions), {} JITed bytes, {} instructions \
         verified",
        xlated.map(|v| v.to_string()).unwrap_or("?".into()),
        xlated.map(|v| (v / 8).to_string()).unwrap_or("?".into()),
        jited,
        insns.map(|v| v.to_string()).unwrap_or("?".into()),
    ));
    report.detail(
        "testrun_program",
        json!({
            "xlated_bytes": xlated, "jited_bytes": jited, "verified_insns": insns,
            "repeat": repeat, "new_flow_frames": new_n, "rounds": rounds,
        }),
    );
    report.sections.push(sec);
    report.sections.push(msec);
    let ssec = sched::measure(rounds, repeat / 4, report)?;
    report.sections.push(ssec);
    let flood = synflood::measure(flood_flows, flood_syns, repeat, report)?;
    report.sections.push(flood);
    Ok(())
}
