//! `cargo xtask build [--release]`: setup, then the `xlb` binary with its embedded XDP object.

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
