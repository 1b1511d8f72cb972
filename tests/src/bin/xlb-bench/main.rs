//! `xlb-bench`: the benchmark behind `cargo xtask bench` (xtask builds and runs it as root).
//!
//! It measures, in one run and interleaved so that ratios compare like with like on a
//! shared machine:
//! 1. the ceiling: MAC swap + `XDP_TX` (and set MACs + redirect) on a veth;
//! 2. xlb with 1, 1,024 and 65,536 established flows;
//! 3. xlb with every frame a new flow (the connection-table insert);
//! 4. nftables `dnat to numgen inc mod N map {...}` and a netdev DSR rule;
//! 5. `BPF_PROG_TEST_RUN` nanoseconds per packet of xlb's paths and of single map
//!    operations, next to an empty program;
//! 6. failover between two xlb directors (VRRP v2 at 1 s, v3 at 0.1 s adverts);
//! 7. the control plane: map sync of many services, the mh table build, health checks;
//! 8. aggregate UDP forwarding through 1, 2 and 3 active-active directors behind an ECMP
//!    router (BIRD, BGP), with each director's share.
//! 9. connection sync: established forwarding with the sender scanning against without
//!    (ratio), the scan, the install rate, the bytes of 10,000 new flows.
//!
//! It prints a table and writes every figure as JSON (`--out`). Scenarios the machine
//! cannot run (no native XDP, no live frames, ...) are skipped with a note, not failed.
//! Network safety: everything runs in network namespaces it creates (198.18.0.0/15),
//! removed on exit; the only processes it ends are its own children.
//!
//! Usage: `xlb-bench [--quick] [--out FILE] [--commit SHA] [--only forward,testrun,...]`
//!
//! Modules: one per group of scenarios (`forward` 1-4, `testrun` 5, `failover` 6,
//! `control` 7, `scaleout` 8, `connsync` 9); `peak` the search for the peak rate; `objs` the bench
//! programs; `threads`
//! where the driver's threads run; `report` the figures, the table and latest.json;
//! `machine` what the run measured on.

mod connsync;
mod control;
mod failover;
mod forward;
mod machine;
mod objs;
mod peak;
mod report;
mod scaleout;
mod testrun;
mod threads;

use std::{
    path::PathBuf,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result, bail};

use report::Report;

pub struct Opts {
    pub quick: bool,
    pub out: Option<PathBuf>,
    pub commit: String,
    pub only: Option<Vec<String>>,
}

const SCENARIOS: [&str; 6] = [
    "forward", "testrun", "failover", "control", "scaleout", "connsync",
];

fn parse_args() -> Result<Opts> {
    let mut opts = Opts {
        quick: false,
        out: None,
        commit: "unknown".into(),
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--out" => opts.out = Some(args.next().context("--out FILE")?.into()),
            "--commit" => opts.commit = args.next().context("--commit SHA")?,
            "--only" => {
                let list: Vec<String> = args
                    .next()
                    .context("--only LIST")?
                    .split(',')
                    .map(str::to_string)
                    .collect();
                for s in &list {
                    if !SCENARIOS.contains(&s.as_str()) {
                        bail!("--only: unknown scenario {s:?} (known: {SCENARIOS:?})");
                    }
                }
                opts.only = Some(list);
            }
            "-h" | "--help" => {
                println!(
                    "xlb-bench [--quick] [--out FILE] [--commit SHA] [--only {}]",
                    SCENARIOS.join(",")
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(opts)
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xlb-bench: {e:#}");
            std::process::exit(2);
        }
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("xlb-bench: needs root (network namespaces, XDP)");
        std::process::exit(2);
    }
    integration_tests::bpffs_root();
    let started = Instant::now();
    let wanted = |s: &str| opts.only.as_ref().is_none_or(|l| l.iter().any(|x| x == s));
    let mut report = Report::default();
    type Bench = fn(&Opts, &mut Report) -> Result<()>;
    let benches: [(&str, Bench); 6] = [
        ("forward", forward::bench),
        ("testrun", testrun::bench),
        ("failover", failover::bench),
        ("control", control::bench),
        ("scaleout", scaleout::bench),
        ("connsync", connsync::bench),
    ];
    for (name, f) in benches {
        if !wanted(name) {
            continue;
        }
        eprintln!("[bench] == {name} ==");
        let t = Instant::now();
        // A scenario that fails (or panics) is reported, and the others still run.
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&opts, &mut report)));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => report.fail(format!("{name}: {e:#}")),
            Err(_) => report.fail(format!("{name}: panicked (see stderr)")),
        }
        report.set(&format!("seconds_{name}"), t.elapsed().as_secs_f64());
    }
    let elapsed = started.elapsed().as_secs_f64();
    report.set("seconds_total", elapsed);

    println!(
        "\nxlb benchmark ({}): {} CPUs, kernel {}, commit {}",
        if opts.quick { "--quick" } else { "full" },
        machine::cpus(),
        machine::kernel_release(),
        opts.commit
    );
    print!("{}", report.render());
    println!("\nbenchmark took {elapsed:.0} s");

    if let Some(out) = &opts.out {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut head = serde_json::Map::new();
        head.insert("machine".into(), machine::description());
        head.insert("kernel".into(), machine::kernel().into());
        head.insert("commit".into(), opts.commit.clone().into());
        head.insert("quick".into(), opts.quick.into());
        head.insert(
            "profile".into(),
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .into(),
        );
        head.insert("unix_time".into(), now.into());
        if let Some(dir) = out.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match serde_json::to_string_pretty(&report.document(head)) {
            Ok(text) => {
                if let Err(e) = std::fs::write(out, text + "\n") {
                    eprintln!("xlb-bench: writing {}: {e}", out.display());
                    std::process::exit(1);
                }
                println!("figures written to {}", out.display());
            }
            Err(e) => {
                eprintln!("xlb-bench: {e}");
                std::process::exit(1);
            }
        }
    }
    if report.failures > 0 {
        eprintln!(
            "xlb-bench: {} scenario(s) failed (see the notes)",
            report.failures
        );
        std::process::exit(1);
    }
}
