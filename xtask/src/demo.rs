//! `cargo xtask demo`: direct-routing load balancing with real kernel XDP and two
//! directors in one VRRP group, in network namespaces on this machine.
//!
//! Builds `xlb` and the demo driver `xlb-demo` (tests/src/bin/xlb-demo/, in the
//! privileged-tests crate: it runs on the same labs as the tests; its module doc says what
//! it shows) and runs the driver as root. Ctrl-C is passed on to the driver, which tears
//! its lab down before it exits.

use std::process::Command;

use anyhow::{Result, bail};

use crate::{
    build::{build_driver, build_xlb},
    setup::{Tools, setup},
    util::{check, display, is_root, on_path, run_forwarding_signals, step},
};

const TASK: &str = "demo";
const BIN: &str = "xlb-demo";

pub fn demo(scale_out: bool) -> Result<()> {
    check_root()?;
    let tools = setup()?;
    demo_of(&tools, scale_out)
}

/// The demo, after `setup` (for `cargo xtask test`, which has run it already).
pub fn demo_with(tools: &Tools) -> Result<()> {
    demo_of(tools, false)
}

/// The HA demo, or with `scale_out` the active-active one (BIRD, ECMP, three directors).
fn demo_of(tools: &Tools, scale_out: bool) -> Result<()> {
    check_root()?;
    let xlb = build_xlb(tools, false)?;
    let bird: &[&str] = if scale_out { &["bird", "birdc"] } else { &[] };
    let missing: Vec<&str> = ["ip", "nsenter", "ethtool", "python3", "curl", "bpftool"]
        .into_iter()
        .chain(bird.iter().copied())
        .filter(|tool| on_path(tool).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing on PATH: {} (on Debian `cargo xtask setup` installs them)",
            missing.join(", ")
        );
    }
    step(TASK, format!("the demo driver {BIN}"));
    let driver = build_driver(tools, BIN, false)?;
    let mut cmd = Command::new(&driver);
    cmd.env("XLB_BIN", &xlb);
    if scale_out {
        cmd.arg("--scale-out");
    }
    println!("  $ {}", display(&cmd));
    // The driver removes what it built, even when interrupted: nothing to do after it.
    let status = run_forwarding_signals(&mut cmd, |_pid| {})?;
    check(&cmd, status)
}

fn check_root() -> Result<()> {
    if !is_root() {
        bail!(
            "the demo needs root for network namespaces and XDP: run `cargo xtask demo` as \
             root (e.g. `sudo -E env \"PATH=$PATH\" cargo xtask demo`)"
        );
    }
    Ok(())
}
