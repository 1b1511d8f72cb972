//! Scenarios 1-4: packets per second through a director, generator -> director -> sink.
//!
//! ```text
//!  gen ns                 dir ns                               rs ns
//!  [xbg] =====veth===== [xbd]  director program   [xbe] ===veth=== [xbr]
//!  live-frames gen       (ceiling / xlb / pass+nft)                 sink (XDP_DROP,
//!  + sink for XDP_TX                                                 counts)
//! ```
//! The generator is `xlb_bench_gen` run with `BPF_PROG_TEST_RUN` in live-frames mode on a
//! thread pinned alone to CPU 0, transmitting out of `xbg`; it offers more than any
//! director here forwards. Everything the director does runs in the threaded NAPI kthread
//! of `xbd`, pinned to CPU 1 (re-pinned after every XDP attach, which recreates it). The
//! sink, the real servers' stand-in, is one counting `XDP_DROP` program attached to `xbr`
//! (real servers behind a second interface: xlb redirects, nftables routes) and to `xbg`
//! (real servers on the client's segment, the one-armed DR layout: xlb and the ceiling
//! transmit back with `XDP_TX`). Its NAPI kthreads share CPU 1 with the director, at nice
//! -15: a sink that waits for its fair share lets its ring fill, and the director then
//! spends its CPU on frames that are dropped on transmit (measured here: the ceiling fell
//! from 4.2 to 3.1 Mpps). So every row is bound by CPU 1, which does the director's work
//! plus a fixed receive cost per frame; the `lost` column says how many frames the director
//! processed that never reached the sink (high: the row is not director-bound). On a shared
//! machine the generator (nice -10) and the director (nice -5) take their CPUs ahead of
//! other work for the few seconds of each window. Rates are what reaches the sink per
//! second over a fixed window, after a warm-up, with the generator paced at the rate where
//! the director forwarded the most (`peak.rs`: flat out, the generator's overflow charged
//! the slower rows extra); the rate flat out is reported next to it.
//!
//! Development knobs: `XLB_BENCH_FORWARD=ceiling,xlb_new_flows` runs only those scenarios,
//! `XLB_BENCH_WINDOW_MS=5000` changes the measuring window.
//!
//! The modules, by what they do:
//! - `scenarios`: what is measured (directors, VIPs, flows) and the order of a round;
//! - `lab`: the namespaces, veths, sinks and loaded programs;
//! - `director`: a director on the lab for one measurement;
//! - `nft`: the nftables baseline's rules;
//! - `napi`: where the forwarding work runs (NAPI kthreads pinned, reniced);
//! - `generator`: the live-frames generator, its pacing and one measuring window;
//! - `counters`: the director's CPU and received frames in a window;
//! - `shell`: the commands the lab runs, failures as errors;
//! - `table`: the figures, ratios and table from the rounds' samples;
//! - this module: the rounds, then the bpf_stats pass.

mod counters;
mod director;
mod generator;
mod lab;
mod napi;
mod nft;
mod scenarios;
mod shell;
mod table;

use std::time::Duration;

use anyhow::Result;

use crate::{Opts, report::Report};
use generator::{Offer, Sample, Window};
use lab::ForwardLab;
use scenarios::{GROUPS, Scenario, scenarios};
use table::Measured;

/// How long each measurement runs.
struct Timing {
    /// The generator's run before a measurement (and before a search for the peak), and
    /// what a rate is measured over.
    window: Window,
    /// One trial of the search for the peak.
    trial: Duration,
}

pub fn bench(opts: &Opts, report: &mut Report) -> Result<()> {
    let (rounds, mut timing) = if opts.quick {
        (
            2,
            Timing {
                window: Window {
                    warm: Duration::from_millis(150),
                    length: Duration::from_millis(300),
                },
                trial: Duration::from_millis(40),
            },
        )
    } else {
        (
            5,
            Timing {
                window: Window {
                    warm: Duration::from_millis(400),
                    length: Duration::from_millis(1500),
                },
                trial: Duration::from_millis(200),
            },
        )
    };
    let mut fwd = match ForwardLab::setup(report) {
        Ok(f) => f,
        Err(e) => {
            report.note(format!(
                "forwarding scenarios (1-4) skipped: the lab could not be set up: {e:#}"
            ));
            return Ok(());
        }
    };
    let nft_installed = nft::binary().is_some();
    if !nft_installed {
        report.note("nft not found: the nftables scenarios are skipped");
    }
    if fwd.cpus < 2 {
        report
            .note("one CPU only: generator and director share it, rates are not meaningful alone");
    }
    if let Err(e) = fwd.generator.probe_live_frames() {
        report.note(format!(
            "forwarding scenarios (1-4) skipped: BPF_PROG_TEST_RUN live frames unsupported: {e:#}"
        ));
        return Ok(());
    }
    // Development knobs: a subset of scenarios and another window.
    let mut all = scenarios();
    if let Ok(keys) = std::env::var("XLB_BENCH_FORWARD") {
        all.retain(|s| keys.split(',').any(|k| k == s.key));
    }
    if let Some(window) = std::env::var("XLB_BENCH_WINDOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
    {
        timing.window.length = window;
    }
    let mut measured = Measured::default();
    for round in 0..rounds {
        eprintln!("[bench] forwarding round {}/{rounds}", round + 1);
        one_round(
            &mut fwd,
            &all,
            nft_installed,
            &timing,
            &mut measured,
            report,
        );
    }

    // The programs' own cost per packet while forwarding (bpf_stats, one pass).
    for sc in all
        .iter()
        .filter(|s| s.director.is_xdp() && !measured.skipped.contains_key(s.key))
    {
        // At the peak's pacing (the median of the rounds'): the cost of a miss depends on
        // how hard the other CPU hammers the same cache lines.
        let mut gaps = measured.column(sc.key, |s| s.gap_ns);
        gaps.sort_unstable();
        let gap = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
        let window = Window {
            length: timing.window.length.min(Duration::from_millis(800)),
            ..timing.window
        };
        match fwd.program_ns(sc, gap, window) {
            Ok(ns) => {
                measured.prog_ns.insert(sc.key, ns);
            }
            Err(e) => {
                report.note(format!(
                    "bpf_stats run time of {} not measured: {e:#}",
                    sc.key
                ));
                break;
            }
        }
    }
    table::report(report, &all, &measured, rounds, timing.window.length);
    Ok(())
}

/// One round: every group of [`GROUPS`] back to back, each scenario of `all` at its peak.
fn one_round(
    fwd: &mut ForwardLab,
    all: &[Scenario],
    nft_installed: bool,
    timing: &Timing,
    measured: &mut Measured,
    report: &mut Report,
) {
    let mut measured_this_round: Vec<&'static str> = Vec::new();
    for group in GROUPS {
        let members: Vec<&Scenario> = group
            .iter()
            .filter_map(|k| all.iter().find(|s| s.key == *k))
            .collect();
        // A group left with nothing new (a filtered run) is not measured again.
        if members.iter().all(|m| measured_this_round.contains(&m.key)) {
            continue;
        }
        let mut lead: Option<(&'static str, Sample)> = None;
        for (i, sc) in members.iter().enumerate() {
            if measured.skipped.contains_key(sc.key) {
                continue;
            }
            if !sc.director.is_xdp() && !nft_installed {
                measured.skipped.insert(sc.key, "nft not installed".into());
                continue;
            }
            match fwd.measure(sc, Offer::Peak(timing.trial), timing.window) {
                Ok(s) => {
                    eprintln!(
                        "[bench]   {:<24} {:6.2} Mpps at the sink ({:.2} Mpps offered, \
                         {:.0}% lost after the director, its CPU {:.0}% busy; flat out \
                         {:.2})",
                        sc.key,
                        s.sink_mpps,
                        s.gen_mpps,
                        s.lost * 100.0,
                        s.director_busy * 100.0,
                        s.flat_sink_mpps,
                    );
                    if i == 0 {
                        lead = Some((sc.key, s));
                    } else if let Some((lk, ls)) = lead {
                        measured
                            .lead_of
                            .entry(sc.key)
                            .or_insert((lk, Vec::new()))
                            .1
                            .push(ls);
                    }
                    // A baseline that leads several groups: its row keeps the first.
                    if !measured_this_round.contains(&sc.key) {
                        measured_this_round.push(sc.key);
                        measured.samples.entry(sc.key).or_default().push(s);
                    }
                }
                Err(e) => {
                    report.fail(format!("forwarding scenario {}: {e:#}", sc.key));
                    measured.skipped.insert(sc.key, format!("{e:#}"));
                }
            }
        }
    }
}
