//! Commands the forwarding lab runs (`ip`, `sysctl`, `nft`, `ethtool`), with their failure
//! returned as an error (a scenario the machine cannot run is skipped, not a panic).

use std::process::Command;

use anyhow::{Context as _, Result, bail};
use integration_tests::netns::Lab;

/// Runs `cmd` to completion and returns its stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("spawning {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `script` in namespace `short`, returning an error instead of panicking.
pub fn sh(lab: &Lab, short: &str, script: &str) -> Result<String> {
    run(Command::new("ip").args(["netns", "exec", &lab.ns(short), "sh", "-c", script]))
}
