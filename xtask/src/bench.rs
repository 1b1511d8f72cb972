//! `cargo xtask bench [--quick] [--release | --debug] [-- ARGS]`: xlb against the XDP
//! ceiling and nftables, side by side in one run.
//!
//! Builds `xlb` and the benchmark driver `xlb-bench` (tests/src/bin/xlb-bench/, in the
//! privileged-tests crate: it reuses its labs and its loaded-data-plane helper), runs the
//! driver as root and leaves every figure, with the machine, kernel and commit, in
//! `target/bench/latest.json`. The driver prints the table: rates and times as
//! min / median / max over interleaved rounds, and ratios (xlb / ceiling, xlb / nftables)
//! taken round by round, since absolute numbers on a shared machine move by 2x between
//! runs. ARGS go to the driver (`--only forward,testrun,failover,control,scaleout,connsync`).
//! A `--quick` run writes `target/bench/latest-quick.json` instead.
//!
//! `--quick` runs every scenario briefly (well under a minute once built) and builds in
//! the debug profile unless `--release` is given; the full run builds optimised. The
//! driver cleans up after itself; if it dies anyway (Ctrl-C, a crash), this task removes
//! what it left: namespaces and the processes inside them, pins, temporary directories.

use std::{ffi::OsString, path::Path, process::Command, time::Instant};

use anyhow::{Result, bail};

use crate::{
    build::{build_driver, build_xlb},
    setup::{Tools, setup},
    util::{
        CommandFailed, display, is_root, output, run_forwarding_signals, step, target_dir,
        workspace_root,
    },
};

const TASK: &str = "bench";
const BIN: &str = "xlb-bench";

pub struct BenchArgs {
    pub quick: bool,
    /// Optimised build; default: yes for the full run, no for `--quick`.
    pub release: Option<bool>,
    pub args: Vec<OsString>,
}

pub fn bench(opts: &BenchArgs) -> Result<()> {
    let tools = setup()?;
    bench_with(&tools, opts)
}

/// The benchmark, after `setup` (for `cargo xtask test`, which has run it already).
pub fn bench_with(tools: &Tools, opts: &BenchArgs) -> Result<()> {
    if !is_root() {
        bail!(
            "the benchmark needs root for network namespaces and XDP: run `cargo xtask bench` \
             as root (e.g. `sudo -E env \"PATH=$PATH\" cargo xtask bench`)"
        );
    }
    let started = Instant::now();
    let release = opts.release.unwrap_or(!opts.quick);
    let profile = if release { "release" } else { "debug" };
    let xlb = build_xlb(tools, release)?;
    step(TASK, format!("the benchmark driver {BIN} ({profile})"));
    let driver = build_driver(tools, BIN, release)?;

    // A quick run (as `cargo xtask test` makes) leaves the last full run's figures alone.
    let name = if opts.quick {
        "latest-quick.json"
    } else {
        "latest.json"
    };
    let out = target_dir().join("bench").join(name);
    let commit = commit();
    step(
        TASK,
        format!(
            "running {} (figures to {})",
            if opts.quick {
                "every scenario briefly (--quick)"
            } else {
                "the full benchmark"
            },
            out.display()
        ),
    );
    let mut cmd = Command::new(&driver);
    if opts.quick {
        cmd.arg("--quick");
    }
    cmd.arg("--out")
        .arg(&out)
        .arg("--commit")
        .arg(&commit)
        .args(&opts.args)
        .env("XLB_BIN", &xlb);
    println!("  $ {}", display(&cmd));
    // However the driver ended, remove what it may have left.
    let status = run_forwarding_signals(&mut cmd, cleanup_after)?;
    let took = started.elapsed().as_secs_f64();
    if status.success() {
        step(
            TASK,
            format!(
                "took {took:.0} s in all (build included); figures in {}",
                out.display()
            ),
        );
    } else {
        step(
            TASK,
            format!("the benchmark failed or was interrupted after {took:.0} s"),
        );
    }
    if !status.success() {
        return Err(CommandFailed {
            code: status.code().unwrap_or(1),
            what: display(&cmd),
        }
        .into());
    }
    Ok(())
}

/// The commit benchmarked, `-dirty` when tracked files differ from it (read-only git).
fn commit() -> String {
    let root = workspace_root();
    let git = |args: &[&str]| {
        output(
            Command::new("git")
                .arg("--no-optional-locks")
                .arg("-C")
                .arg(&root)
                .args(args),
        )
    };
    match git(&["rev-parse", "HEAD"]) {
        Ok(sha) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .map(|s| !s.trim().is_empty())
                .unwrap_or(false);
            format!("{}{}", sha.trim(), if dirty { "-dirty" } else { "" })
        }
        Err(_) => "unknown".into(),
    }
}

/// Removes what driver `pid` may have left: its namespaces (`xlbb<tag><pid>-<host>`) and
/// the processes in them, its pins (`/sys/fs/bpf/xlbtest_<tag>_<pid>_<n>`), the status
/// files of daemons it started, its temporary directories.
fn cleanup_after(pid: u32) {
    let mut removed = Vec::new();
    let marker = format!("{pid}-");
    if let Ok(list) = output(Command::new("ip").args(["netns", "list"])) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            let ours = ns.starts_with("xlbb")
                && ns
                    .strip_prefix("xlbb")
                    .and_then(|rest| rest.find(&marker).map(|i| (rest, i)))
                    .is_some_and(|(rest, i)| rest[..i].chars().all(|c| c.is_ascii_lowercase()));
            if !ours {
                continue;
            }
            // Processes the driver started inside its namespace (real servers, xlb).
            if let Ok(pids) = output(Command::new("ip").args(["netns", "pids", ns])) {
                for p in pids
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    // SAFETY: a PID inside a namespace that this driver created.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            removed.push(format!("netns {ns}"));
        }
    }
    let tag = format!("_{pid}_");
    for (dir, prefix) in [
        ("/sys/fs/bpf", "xlbtest_"),
        ("/run/xlb", "sys_fs_bpf_xlbtest_"),
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) && name.contains(&tag) {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                removed.push(p.display().to_string());
            }
        }
    }
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let letters = name
                .strip_prefix("xlbb")
                .and_then(|rest| rest.strip_suffix(&pid.to_string()))
                .is_some_and(|tag| tag.chars().all(|c| c.is_ascii_lowercase()));
            if letters && e.path().is_dir() {
                let _ = std::fs::remove_dir_all(e.path());
                removed.push(Path::new(&tmp).join(name).display().to_string());
            }
        }
    }
    if !removed.is_empty() {
        step(
            TASK,
            format!(
                "removed what the driver left behind: {}",
                removed.join(", ")
            ),
        );
    }
}
