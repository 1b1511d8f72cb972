//! `cargo xtask setup`: everything building and testing xlb needs, installed only when missing.
//!
//! Idempotent and fast (well under 2 s) when nothing is missing. What it provides:
//! - `rust-src` for the `nightly` toolchain (the eBPF crate is built with `-Z build-std=core`);
//! - `bpf-linker`, built from crates.io against the nightly's own libLLVM, under
//!   `target/tools/bpf-linker-llvm-<LLVM version>/` (no prebuilt download, no system LLVM);
//! - the Debian packages the tests and the demo use (root on Debian only);
//! - bpffs at `/sys/fs/bpf` (root only).

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::util::{cargo, is_root, on_path, output, run, step, workspace_root};

const TASK: &str = "setup";

/// The toolchain channel that builds the eBPF crate (a dated nightly would be a new download).
pub const NIGHTLY: &str = "nightly";

/// bpf-linker release built by `setup` (the newest that builds with the compilers here).
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Debian packages, each a list of alternatives: any one installed satisfies the entry,
/// the first one the archive knows is installed when none is.
const DEBIAN_PACKAGES: &[&[&str]] = &[
    &["bpftool"],
    &["keepalived"],
    // FRR's vrrpd, the second VRRP implementation tests/vmac.rs runs xlb against.
    &["frr"],
    // BIRD 2: the routing daemon of the scale-out lab (router and directors, BGP + BFD).
    &["bird2"],
    &["tcpdump"],
    &["tshark"],
    &["ethtool"],
    &["iproute2"],
    &["iputils-ping"],
    &["nftables"],
    &["python3"],
    &["curl"],
    &["util-linux"],
    // The install check: `man -l` renders a generated page, `systemd-analyze verify` the
    // unit (the package installs without systemd being PID 1).
    &["man-db"],
    &["systemd"],
];

/// What later steps need from `setup`.
pub struct Tools {
    /// The `bpf-linker` binary.
    pub bpf_linker: PathBuf,
}

impl Tools {
    /// `cargo` for builds that compile the eBPF crate (through `lb-userspace/build.rs`):
    /// bpf-linker's directory first on PATH, and `XLB_BPF_LINKER` naming the binary.
    pub fn cargo(&self) -> Command {
        let mut cmd = cargo();
        let dir = self
            .bpf_linker
            .parent()
            .expect("bpf-linker sits in a bin directory");
        let mut path = vec![dir.to_path_buf()];
        if let Some(old) = std::env::var_os("PATH") {
            path.extend(std::env::split_paths(&old));
        }
        cmd.env(
            "PATH",
            std::env::join_paths(path).expect("PATH entries contain no ':'"),
        );
        cmd.env("XLB_BPF_LINKER", &self.bpf_linker);
        cmd
    }
}

pub fn setup() -> Result<Tools> {
    let nightly = Nightly::find()?;
    rust_src(&nightly)?;
    let bpf_linker = bpf_linker(&nightly)?;
    debian_packages()?;
    bpffs()?;
    Ok(Tools { bpf_linker })
}

/// The nightly toolchain's sysroot and LLVM version.
struct Nightly {
    sysroot: PathBuf,
    llvm_version: String,
}

impl Nightly {
    fn find() -> Result<Self> {
        let query = || output(Command::new("rustc").arg(format!("+{NIGHTLY}")).arg("-vV"));
        let version = if let Ok(version) = query() {
            version
        } else {
            step(TASK, format!("{NIGHTLY} toolchain: missing, installing"));
            run(Command::new("rustup").args([
                "toolchain",
                "install",
                NIGHTLY,
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ]))?;
            query()?
        };
        let llvm_version = version
            .lines()
            .find_map(|line| line.strip_prefix("LLVM version:"))
            .map(|v| v.trim().to_owned())
            .with_context(|| format!("no LLVM version in `rustc +{NIGHTLY} -vV`:\n{version}"))?;
        let sysroot = output(
            Command::new("rustc")
                .arg(format!("+{NIGHTLY}"))
                .args(["--print", "sysroot"]),
        )?;
        Ok(Self {
            sysroot: PathBuf::from(sysroot.trim()),
            llvm_version,
        })
    }
}

fn rust_src(nightly: &Nightly) -> Result<()> {
    if nightly
        .sysroot
        .join("lib/rustlib/src/rust/library")
        .is_dir()
    {
        step(TASK, format!("rust-src ({NIGHTLY}): present"));
        return Ok(());
    }
    step(TASK, format!("rust-src ({NIGHTLY}): missing, installing"));
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]))
}

/// Builds bpf-linker against the nightly's libLLVM, unless a working one is already there.
fn bpf_linker(nightly: &Nightly) -> Result<PathBuf> {
    let llvm = &nightly.llvm_version;
    let root = workspace_root().join(format!("target/tools/bpf-linker-llvm-{llvm}"));
    let bin = root.join("bin/bpf-linker");
    if runs(&bin) {
        step(
            TASK,
            format!(
                "bpf-linker {BPF_LINKER_VERSION} (LLVM {llvm}): {}",
                bin.display()
            ),
        );
        return Ok(bin);
    }
    step(
        TASK,
        format!(
            "bpf-linker {BPF_LINKER_VERSION} (LLVM {llvm}): missing, building (about a minute)"
        ),
    );

    // bpf-linker's build script links `$LLVM_PREFIX/lib/libLLVM.so` and puts that directory in
    // the binary's rpath, where the loader then looks for the library's soname.
    let lib_dir = nightly.sysroot.join("lib");
    let libllvm = libllvm_file(&lib_dir)?;
    let prefix = root.join("llvm");
    let prefix_lib = prefix.join("lib");
    fs::create_dir_all(&prefix_lib)
        .with_context(|| format!("cannot create {}", prefix_lib.display()))?;
    for name in [Path::new("libLLVM.so"), Path::new(&libllvm)] {
        let link = prefix_lib.join(name);
        if link.symlink_metadata().is_ok() {
            fs::remove_file(&link).with_context(|| format!("cannot remove {}", link.display()))?;
        }
        symlink(lib_dir.join(&libllvm), &link)
            .with_context(|| format!("cannot create symlink {}", link.display()))?;
    }

    let major = llvm.split('.').next().unwrap_or(llvm);
    let mut cmd = cargo();
    cmd.args([
        "install",
        "bpf-linker",
        "--version",
        BPF_LINKER_VERSION,
        "--locked",
        "--force",
    ])
    .args([
        "--no-default-features",
        "--features",
        &format!("llvm-{major}"),
    ])
    .arg("--root")
    .arg(&root)
    .env("LLVM_PREFIX", &prefix);
    // `cargo install` builds in a temporary directory unless told otherwise: keep it that way.
    for key in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
    ] {
        cmd.env_remove(key);
    }
    run(&mut cmd)?;
    if !runs(&bin) {
        bail!("{} was built but does not run `--version`", bin.display());
    }
    Ok(bin)
}

/// The nightly's LLVM shared library (`libLLVM.so.<ver>-rust-<ver>`), found by listing the
/// sysroot: its name changes with every toolchain.
fn libllvm_file(lib_dir: &Path) -> Result<String> {
    let mut found = Vec::new();
    for entry in
        fs::read_dir(lib_dir).with_context(|| format!("cannot list {}", lib_dir.display()))?
    {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("libLLVM.so.") {
            found.push(name);
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no libLLVM.so.* in {}: this nightly does not ship LLVM as a shared library",
            lib_dir.display()
        ),
        many => bail!("several libLLVM.so.* in {}: {many:?}", lib_dir.display()),
    }
}

/// Whether `bin` exists and answers `--version` with the expected release.
fn runs(bin: &Path) -> bool {
    bin.is_file()
        && Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|out| {
                out.status.success()
                    && String::from_utf8_lossy(&out.stdout).contains(BPF_LINKER_VERSION)
            })
}

fn debian_packages() -> Result<()> {
    if !Path::new("/etc/debian_version").exists() || on_path("dpkg-query").is_none() {
        step(
            TASK,
            format!(
                "Debian packages: not Debian, skipped (wanted: {})",
                wanted()
            ),
        );
        return Ok(());
    }
    let names: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .flat_map(|alts| alts.iter().copied())
        .collect();
    // dpkg-query exits 1 when a name is unknown to it: read stdout regardless.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${db:Status-Status}\n"])
        .args(&names)
        .output()
        .context("cannot run dpkg-query")?;
    let listing = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, status)| *status == "installed")
        .map(|(name, _)| name)
        .collect();
    let missing: Vec<&[&str]> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|alts| !alts.iter().any(|name| installed.contains(name)))
        .collect();
    if missing.is_empty() {
        step(
            TASK,
            format!("Debian packages: all {} present", DEBIAN_PACKAGES.len()),
        );
        return Ok(());
    }
    let first: Vec<&str> = missing.iter().map(|alts| alts[0]).collect();
    if !is_root() {
        step(
            TASK,
            format!(
                "Debian packages: missing {}; not root, skipped (run `sudo apt-get install {}`)",
                first.join(" "),
                first.join(" ")
            ),
        );
        return Ok(());
    }
    step(
        TASK,
        format!("Debian packages: missing {}, installing", first.join(" ")),
    );
    run(apt_get().arg("update"))?;
    let mut install = Vec::new();
    for alts in missing {
        let known = alts.iter().copied().find(|name| {
            Command::new("apt-cache")
                .args(["show", name])
                .output()
                .is_ok_and(|out| out.status.success() && !out.stdout.is_empty())
        });
        install.push(known.unwrap_or(alts[0]));
    }
    run(apt_get()
        .args(["install", "-y", "--no-install-recommends"])
        .args(&install))
}

fn wanted() -> String {
    DEBIAN_PACKAGES
        .iter()
        .map(|alts| alts[0])
        .collect::<Vec<_>>()
        .join(" ")
}

fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

/// Mounts bpffs at /sys/fs/bpf (the daemon pins its maps under /sys/fs/bpf/xlb).
fn bpffs() -> Result<()> {
    const BPFFS: &str = "/sys/fs/bpf";
    let mounts =
        fs::read_to_string("/proc/self/mounts").context("cannot read /proc/self/mounts")?;
    let mounted = mounts.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        fields.next() == Some(BPFFS) && fields.next() == Some("bpf")
    });
    if mounted {
        step(TASK, format!("bpffs at {BPFFS}: mounted"));
        return Ok(());
    }
    if !is_root() {
        step(
            TASK,
            format!("bpffs at {BPFFS}: not mounted; not root, skipped"),
        );
        return Ok(());
    }
    step(TASK, format!("bpffs at {BPFFS}: not mounted, mounting"));
    fs::create_dir_all(BPFFS).with_context(|| format!("cannot create {BPFFS}"))?;
    // 0700, as systemd mounts it: only root may create or replace pins.
    run(Command::new("mount").args(["-t", "bpf", "-o", "mode=0700", "bpf", BPFFS]))
}
