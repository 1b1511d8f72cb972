//! `cargo xtask deb`: a Debian package of xlb with cargo-deb, holding what
//! `cargo xtask install --prefix /usr` installs (lb-userspace's `[package.metadata.deb]`;
//! `install`'s tests check that the two lists agree). The unit is enabled on install, not
//! started (the config has to be written first); an upgrade restarts a running xlb, which
//! adopts its pinned data plane, so forwarding does not stop.
//!
//! cargo-deb is built from crates.io under `target/tools/cargo-deb-<version>/` the first
//! time, like bpf-linker (no prebuilt download).

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::{
    build::build_xlb,
    install::generate_man,
    setup::setup,
    util::{cargo, output, run, step, target_dir, workspace_root},
};

const TASK: &str = "deb";

/// The cargo-deb release `deb` builds and uses.
const CARGO_DEB_VERSION: &str = "3.8.0";

pub fn deb() -> Result<()> {
    let tools = setup()?;
    let cargo_deb = cargo_deb()?;
    let xlb = build_xlb(&tools, true)?;
    step(TASK, "man pages into target/release/man/");
    let man = target_dir().join("release/man");
    let _ = std::fs::remove_dir_all(&man);
    generate_man(&xlb, &man)?;

    step(TASK, format!("cargo-deb {CARGO_DEB_VERSION}"));
    let out_dir = target_dir().join("debian");
    let mut cmd = tools.cargo();
    // `cargo deb` finds cargo-deb on PATH: its directory goes first.
    let mut path = vec![cargo_deb.parent().expect("bin dir").to_path_buf()];
    if let Some(old) = std::env::var_os("PATH") {
        path.extend(std::env::split_paths(&old));
    }
    cmd.env("PATH", std::env::join_paths(path)?)
        .args(["deb", "--package", "lb-userspace", "--no-build", "--output"])
        .arg(&out_dir);
    run(&mut cmd)?;
    let debs: Vec<PathBuf> = std::fs::read_dir(&out_dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    match debs.as_slice() {
        [one] => step(TASK, format!("{}", one.display())),
        _ => step(TASK, format!("packages in {}", out_dir.display())),
    }
    Ok(())
}

/// cargo-deb under target/tools, built when missing.
fn cargo_deb() -> Result<PathBuf> {
    let root = workspace_root().join(format!("target/tools/cargo-deb-{CARGO_DEB_VERSION}"));
    let bin = root.join("bin/cargo-deb");
    let works = || {
        bin.is_file()
            && output(std::process::Command::new(&bin).arg("--version"))
                .is_ok_and(|v| v.contains(CARGO_DEB_VERSION))
    };
    if works() {
        step(
            TASK,
            format!("cargo-deb {CARGO_DEB_VERSION}: {}", bin.display()),
        );
        return Ok(bin);
    }
    step(
        TASK,
        format!("cargo-deb {CARGO_DEB_VERSION}: missing, building (a few minutes)"),
    );
    let mut cmd = cargo();
    cmd.args([
        "install",
        "cargo-deb",
        "--version",
        CARGO_DEB_VERSION,
        "--locked",
        "--force",
        "--root",
    ])
    .arg(&root);
    for key in ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR", "RUSTFLAGS"] {
        cmd.env_remove(key);
    }
    run(&mut cmd)?;
    if !works() {
        bail!("{} was built but does not run `--version`", bin.display());
    }
    Ok(bin)
}
