//! `cargo xtask run [--release] -- ARGS`: build, then `xlb run ARGS` as root.

use std::{ffi::OsString, os::unix::process::CommandExt as _, process::Command};

use anyhow::{Context as _, Result, bail};

use crate::util::{display, is_root, on_path, step};

const TASK: &str = "run";

pub fn run(release: bool, args: Vec<OsString>) -> Result<()> {
    let xlb = crate::build::build(release)?;
    // Only the daemon runs as root: the build above stays with the calling user.
    let mut cmd = if is_root() {
        Command::new(&xlb)
    } else {
        let Some(sudo) = on_path("sudo") else {
            bail!(
                "xlb needs root (XDP, netlink, raw sockets) and sudo is not installed: \
                 run `cargo xtask run` as root, or run {} as root",
                xlb.display()
            );
        };
        step(TASK, "not root: going through sudo");
        let mut cmd = Command::new(sudo);
        cmd.arg("--preserve-env=RUST_LOG").arg("--").arg(&xlb);
        cmd
    };
    cmd.arg("run").args(args);
    step(TASK, "xlb run (in the foreground; Ctrl-C stops it)");
    println!("  $ {}", display(&cmd));
    // exec: signals (Ctrl-C, systemd-style SIGTERM) reach xlb directly, and its exit code is ours.
    let err = cmd.exec();
    Err(err).with_context(|| format!("cannot exec {}", display(&cmd)))
}
