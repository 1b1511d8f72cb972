//! `cargo xtask test [-- ARGS]`: every test, the privileged ones included.
//!
//! ARGS go to the test binaries (a name filter, `--nocapture`, ...).

use std::ffi::OsString;

use anyhow::{Result, bail};

use crate::{
    build::{TESTS_PACKAGE, build_xlb},
    setup::setup,
    util::{is_root, run, step},
};

const TASK: &str = "test";

/// The crate of privileged tests (network namespaces, real XDP): root, one test at a time.
const PRIVILEGED: &str = TESTS_PACKAGE;

pub fn test(args: &[OsString]) -> Result<()> {
    let tools = setup()?;

    step(TASK, "unit tests (workspace without the privileged crate)");
    let mut cmd = tools.cargo();
    // lb-ebpf only builds for the bpf target (through lb-userspace/build.rs): no host tests.
    cmd.args([
        "test",
        "--no-fail-fast",
        "--workspace",
        "--exclude",
        PRIVILEGED,
        "--exclude",
        "lb-ebpf",
    ]);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    run(&mut cmd)?;

    if !is_root() {
        bail!(
            "the privileged tests ({PRIVILEGED}) need root for network namespaces and XDP: \
             run `cargo xtask test` as root (e.g. `sudo -E env \"PATH=$PATH\" cargo xtask test`)"
        );
    }
    // Privileged tests that start daemons find the binary through XLB_BIN.
    let xlb = build_xlb(&tools, false)?;
    step(TASK, "privileged tests (root, one at a time)");
    let mut cmd = tools.cargo();
    cmd.args([
        "test",
        "--no-fail-fast",
        "--package",
        PRIVILEGED,
        "--tests",
        "--",
        "--test-threads=1",
    ])
    .args(args)
    .env("XLB_BIN", &xlb);
    run(&mut cmd)?;

    // `cargo xtask install` into a temporary DESTDIR (debug build: already built above),
    // then what a user does with it: --version, check on the sample, man, the unit.
    step(TASK, "install into a temporary DESTDIR, and check it");
    crate::install::self_test(&tools)?;

    // The README's first command must keep working: run it as part of the suite.
    step(TASK, "the demo (README's first command)");
    crate::demo::demo_with(&tools)?;

    // Every benchmark scenario, briefly, so that the benchmark never rots. No thresholds:
    // it fails only if a scenario breaks, not if a figure is low.
    step(TASK, "the benchmark, briefly (cargo xtask bench --quick)");
    crate::bench::bench_with(
        &tools,
        &crate::bench::BenchArgs {
            quick: true,
            release: None,
            args: Vec::new(),
        },
    )?;
    step(TASK, "all tests passed");
    Ok(())
}
