//! `cargo xtask build [--release]`: setup, then the `xlb` binary with its embedded XDP object.
//! Also the drivers of the tests crate that `demo` and `bench` run.

use std::path::PathBuf;

use anyhow::Result;

use crate::{
    setup::{Tools, setup},
    util::{run, step, target_dir},
};

const TASK: &str = "build";

pub fn build(release: bool) -> Result<PathBuf> {
    let tools = setup()?;
    build_xlb(&tools, release)
}

/// `cargo build -p lb-userspace`; its build script compiles lb-ebpf for the bpf target.
pub fn build_xlb(tools: &Tools, release: bool) -> Result<PathBuf> {
    let profile = if release { "release" } else { "debug" };
    step(
        TASK,
        format!("xlb ({profile}) with the XDP object from lb-ebpf"),
    );
    let mut cmd = tools.cargo();
    cmd.args(["build", "--package", "lb-userspace", "--bin", "xlb"]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd)?;
    let xlb = target_dir().join(profile).join("xlb");
    step(TASK, format!("xlb is at {}", xlb.display()));
    Ok(xlb)
}

/// The crate of privileged tests, whose binaries drive the demo and the benchmark on its labs.
pub const TESTS_PACKAGE: &str = "integration-tests";

/// `cargo build -p integration-tests --bin BIN`; the binary's path.
pub fn build_driver(tools: &Tools, bin: &str, release: bool) -> Result<PathBuf> {
    let mut cmd = tools.cargo();
    cmd.args(["build", "--package", TESTS_PACKAGE, "--bin", bin]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd)?;
    let profile = if release { "release" } else { "debug" };
    Ok(target_dir().join(profile).join(bin))
}
